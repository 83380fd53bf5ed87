//! The real `api` binary under a Lambda runtime: a minimal Runtime API on loopback (the protocol
//! Lambda and its emulators serve) hands it events and records what it answers.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::Value;

#[derive(Default)]
struct Runtime {
    events: Mutex<Vec<Value>>,
    answers: Mutex<Vec<(String, Value)>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, String) {
    loop {
        let event = rt.events.lock().unwrap().pop();
        if let Some(event) = event {
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(30);
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
            headers.insert(
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string().parse().unwrap(),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:api"
                    .parse()
                    .unwrap(),
            );
            return (headers, event.to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn answer(
    State(rt): State<Arc<Runtime>>,
    Path((id, kind)): Path<(String, String)>,
    body: String,
) {
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    rt.answers
        .lock()
        .unwrap()
        .push((format!("{id}/{kind}"), body));
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: String) {
    rt.answers
        .lock()
        .unwrap()
        .push(("init/error".into(), Value::String(body)));
}

async fn runtime_api() -> (String, Arc<Runtime>) {
    let rt = Arc::new(Runtime::default());
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rt)
}

/// The `api` binary as Lambda starts it (the emulator's settings come from the test's environment).
fn lambda_api(runtime: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(crate::helpers::bin("api"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env_remove("AUTH_REQUIRED")
        .env_remove("ALLOW_ANONYMOUS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn deployed_without_an_authorizer_the_api_refuses_to_start_unless_told_to() {
    let _ = crate::helpers::endpoint();
    let (addr, rt) = runtime_api().await;
    let out = tokio::time::timeout(Duration::from_secs(30), lambda_api(&addr).output())
        .await
        .expect("the api exits at init")
        .unwrap();
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("ALLOW_ANONYMOUS"), "{said}");
    assert!(
        rt.answers.lock().unwrap().is_empty(),
        "no invocation was served"
    );

    // Asked for explicitly, it starts and serves API Gateway's events.
    let event_file = std::path::Path::new(crate::helpers::REPO).join("events/list-uploads.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(event_file).unwrap()).unwrap();
    rt.events.lock().unwrap().push(event);
    let mut api = lambda_api(&addr)
        .env("ALLOW_ANONYMOUS", "true")
        .spawn()
        .unwrap();
    let mut answered = None;
    for _ in 0..300 {
        if let Some(a) = rt.answers.lock().unwrap().first().cloned() {
            answered = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.kill().await.unwrap();
    let (path, body) = answered.expect("the api answered the invocation");
    assert_eq!(path, "req-1/response", "{body}");
    assert_eq!(body["statusCode"], 200, "{body}");
}
