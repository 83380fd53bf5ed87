//! The local server (`make dev`) verifies large objects although no S3 event ever reaches it.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use serde_json::json;
use verified_uploads::config::Limits;
use verified_uploads::local;

#[tokio::test]
async fn a_large_object_verifies_locally_without_any_event() {
    let every_object_is_large = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    let (queue, jobs) = local::verifier_queue();
    let service = service_with(every_object_is_large, small_ranges()).await;
    let uploads = Arc::new(service.with_verifier(Arc::new(queue)));
    tokio::spawn(local::run_verifier(uploads.clone(), jobs));
    let client = Client::over(uploads);

    let part = 5 * MIB;
    let file = data(part + 123_456, 51);
    let c = client
        .create(json!({"filename": "big.bin", "size": file.len(), "part_size": part, "sha256": sha256_hex(&file)}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, part).await;
    let id = c.body["upload_id"].as_str().unwrap();
    let handed = client.complete(id).await;
    assert_eq!(
        (handed.status.as_u16(), handed.body["status"].clone()),
        (202, json!("verifying"))
    );

    let mut record = handed.body;
    for _ in 0..100 {
        if record["status"] != "verifying" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        record = client.record(id).await.body;
    }
    assert_eq!(record["status"], "verified", "{record}");
    assert_eq!(record["sha256"], sha256_hex(&file));
}
