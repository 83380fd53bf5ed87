//! Each problem type's page, `GET /problems/<slug>`: what happened and what to do, in HTML. Every
//! error answer's `type` resolves to one.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::path::{PathParams, SlugParam};
use super::problem::{Problem, Slug};

/// A problem type's page
///
/// What happened and what to do, for each problem `type`.
#[utoipa::path(get, path = "/problems/{slug}", tag = "service", operation_id = "problemPage",
    params(SlugParam),
    responses(
        (status = 200, description = "The problem's page", content_type = "text/html", body = String),
        (status = 404, description = "No such problem type"),
    ))]
pub async fn problem_page(
    PathParams(SlugParam { slug }): PathParams<SlugParam>,
) -> Result<Response, Problem> {
    let Some(kind) = Slug::ALL.iter().find(|s| s.as_str() == slug) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            Slug::NoRoute,
            "No such route",
            "no problem type by this name; see /openapi.json",
        ));
    };
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page(*kind),
    )
        .into_response())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `code` spans for the text's backquoted words.
fn inline_code(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

pub fn page(kind: Slug) -> String {
    let (title, what, todo) = kind.page();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} — verified-uploads</title></head><body>\n\
         <h1>{title}</h1>\n<p><code>/problems/{slug}</code></p>\n\
         <h2>What happened</h2>\n<p>{what}</p>\n<h2>What to do</h2>\n<p>{todo}</p>\n\
         <p><a href=\"/openapi.json\">The API's OpenAPI document</a></p>\n</body></html>\n",
        title = escape(title),
        slug = kind.as_str(),
        what = inline_code(what),
        todo = inline_code(todo),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_has_a_page_saying_what_happened_and_what_to_do() {
        for kind in Slug::ALL {
            let (title, what, todo) = kind.page();
            let html = page(*kind);
            assert!(!what.is_empty() && !todo.is_empty(), "{kind:?}");
            assert!(html.contains(&escape(title)), "{kind:?}");
            assert!(html.contains(&format!("/problems/{}", kind.as_str())));
        }
    }
}
