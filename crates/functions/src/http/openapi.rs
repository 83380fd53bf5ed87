//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request and response types' derives; served at `GET /openapi.json`, committed as
//! `docs/openapi.json`. Every error answer is a problem document whose `type` is one of
//! `Slug::ALL`, each served as a page at `GET /problems/<slug>`.

use axum::Json;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::problem::{CONTENT_TYPE as PROBLEM, Slug};
use super::{companion, handlers, pages};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "verified-uploads",
        description = "Direct-to-S3 multipart uploads with pre-signed URLs, verified end to end \
            by SHA-256. Deployed with a `JwtIssuer`, every route sits behind API Gateway's JWT \
            authorizer, which itself answers `401` `{\"message\":\"Unauthorized\"}` to a request \
            without a valid token before any route runs; the token's `sub` is the caller. Under \
            `make dev` (and a stack deployed with `AllowAnonymous=true`) callers are anonymous. \
            Every error the API answers is `application/problem+json` whose `type` resolves to a \
            page (`GET /problems/<slug>`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        handlers::healthz,
        handlers::sessions::create,
        handlers::sessions::list_uploads,
        handlers::sessions::get_upload,
        handlers::sessions::abort,
        handlers::parts::sign_parts,
        handlers::parts::list_parts,
        handlers::completion::complete,
        handlers::download::download,
        handlers::receipts::receipt,
        handlers::receipts::jwks,
        companion::form::params,
        companion::sessions::create,
        companion::parts::sign_part,
        companion::parts::sign_batch,
        companion::parts::list_parts,
        companion::completion::complete,
        companion::sessions::abort,
        openapi_json,
        pages::problem_page,
    ),
    tags(
        (name = "uploads", description = "Multipart uploads, verified at completion"),
        (name = "companion", description = "Uppy Companion's S3 routes, for stock `@uppy/aws-s3`"),
        (name = "service", description = "Liveness, this document and the problem pages"),
    )
)]
struct ApiDoc;

/// The operations' ids, for links: what an upload's id or key leads to.
const UPLOAD_OPS: &[&str] = &[
    "getUpload",
    "signParts",
    "listParts",
    "completeUpload",
    "downloadUpload",
    "getReceipt",
    "abortUpload",
];
const COMPANION_OPS: &[&str] = &[
    "companionSignPart",
    "companionSignBatch",
    "companionListParts",
    "companionComplete",
    "companionAbort",
];

/// Routes that take no caller: the router answers them no 401, and no 5xx but those they document
/// (the keys: KMS failing).
const STATIC_OPS: &[&str] = &["healthz", "openapi", "problemPage", "jwks"];

/// Routes anyone may call, token or not (the template exempts them from the authorizer).
const PUBLIC_OPS: &[&str] = &["jwks"];

fn problem_schema() -> Value {
    let types: Vec<String> = Slug::ALL
        .iter()
        .map(|s| format!("/problems/{}", s.as_str()))
        .collect();
    json!({
        "type": "object",
        "description": "RFC 9457 problem details. `type` resolves to a page: GET it.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": { "type": "string", "enum": types },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": { "type": "string" },
            "field": { "type": "string", "description": "The input at fault, where there is one" },
            "missing_parts": {
                "type": "array",
                "items": { "$ref": "#/components/schemas/PartNumber" },
                "description": "`upload-incomplete`: the first 20 missing parts",
            },
            "upload": {
                "$ref": "#/components/schemas/Record",
                "description": "`verification-failed`: the failed record",
            },
            "allowed_content_types": {
                "type": "array",
                "items": { "type": "string" },
                "description": "`content-type-not-allowed`: the types an upload may declare (`type/*`: any subtype)",
            },
        },
    })
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } },
    })
}

/// Links from a created upload to the operations its id (and key) lead to. Signing asks for the
/// first part and completing lists no parts (the server asks S3), so a sequence
/// create → sign → complete → read is one a client makes.
fn links(ops: &[&str], params: Value) -> Value {
    ops.iter()
        .map(|op| {
            let mut link = json!({ "operationId": op, "parameters": params });
            match *op {
                "signParts" => link["requestBody"] = json!({ "part_numbers": [1] }),
                "completeUpload" => link["requestBody"] = json!({}),
                _ => {}
            }
            ((*op).to_owned(), link)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The document, as served and committed.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["components"]["schemas"]["Problem"] = problem_schema();
    doc["components"]["securitySchemes"] = json!({
        "jwt": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                 "description": "API Gateway's JWT authorizer; the token's `sub` is the caller" }
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                let caller = !STATIC_OPS.contains(&id.as_str());
                // The authorizer guards every route of a stack deployed with one, but the keys.
                op["security"] = if PUBLIC_OPS.contains(&id.as_str()) {
                    json!([])
                } else {
                    json!([{ "jwt": [] }])
                };
                let Some(responses) = op["responses"].as_object_mut() else {
                    continue;
                };
                if caller {
                    let common = [
                        (
                            "401",
                            "Behind the JWT authorizer, a request without a `sub` claim",
                        ),
                        ("500", "A fault of the service itself; retry"),
                        ("502", "S3 failed; retry"),
                        ("503", "DynamoDB failed; retry"),
                    ];
                    for (code, why) in common {
                        responses.insert(code.into(), json!({ "description": why }));
                    }
                }
                for (code, response) in responses.iter_mut() {
                    if code.as_str() >= "400" {
                        let why = response["description"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        *response = problem_response(&why);
                    }
                }
                let link = match id.as_str() {
                    "createUpload" => Some((
                        "201",
                        links(
                            UPLOAD_OPS,
                            json!({ "upload_id": "$response.body#/upload_id" }),
                        ),
                    )),
                    "companionCreate" => Some((
                        "200",
                        links(
                            COMPANION_OPS,
                            json!({ "upload_id": "$response.body#/uploadId",
                                    "key": "$response.body#/key" }),
                        ),
                    )),
                    _ => None,
                };
                if let Some((code, l)) = link
                    && let Some(r) = responses.get_mut(code)
                {
                    r["links"] = l;
                }
            }
        }
    }
    doc
}

/// This OpenAPI document
#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document",
        content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make openapi` (`UPDATE_OPENAPI=1 cargo test -p vu-functions --lib openapi`) rewrites the committed document.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap_or_default() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            assert!(
                std::fs::write(path, &generated).is_ok(),
                "could not write {path}"
            );
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the generated document: run \
             `make openapi` (UPDATE_OPENAPI=1 cargo test --lib openapi)"
        );
    }

    #[test]
    fn the_document_lists_every_problem_type() {
        let doc = document();
        let listed = &doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"];
        let want: Vec<Value> = Slug::ALL
            .iter()
            .map(|s| json!(format!("/problems/{}", s.as_str())))
            .collect();
        assert_eq!(listed, &Value::Array(want));
    }

    #[test]
    fn every_error_answer_is_a_problem_document_and_every_route_is_covered() {
        let doc = document();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let want = [
            "/healthz",
            "/uploads",
            "/uploads/{upload_id}",
            "/uploads/{upload_id}/parts",
            "/uploads/{upload_id}/complete",
            "/uploads/{upload_id}/object",
            "/uploads/{upload_id}/receipt",
            "/.well-known/jwks.json",
            "/s3/params",
            "/s3/multipart",
            "/s3/multipart/{upload_id}",
            "/s3/multipart/{upload_id}/batch",
            "/s3/multipart/{upload_id}/complete",
            "/s3/multipart/{upload_id}/{part_number}",
            "/openapi.json",
            "/problems/{slug}",
        ];
        let mut have: Vec<&str> = paths.keys().map(String::as_str).collect();
        have.sort_unstable();
        let mut want = want.to_vec();
        want.sort_unstable();
        assert_eq!(have, want);
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                for (code, r) in op["responses"].as_object().into_iter().flatten() {
                    let problem = r["content"].get(PROBLEM).is_some();
                    assert_eq!(code.as_str() >= "400", problem, "{method} {path} {code}");
                }
            }
        }
    }
}
