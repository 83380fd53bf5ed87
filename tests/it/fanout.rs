//! Verification fanned out by segments end to end (issue 24), as `make dev` runs it: the
//! verifier's queue on the emulator's SQS, the local server consuming it (up to 8 messages at
//! once), one message per segment, the verdict the sequential one.

use crate::chain::{PART, part_states, uploaded};
use crate::helpers::*;
use crate::queue::{eventually, local_server};
use serde_json::json;
use vu_core::domain::{Status, UploadId};
use vu_functions::config::Limits;

#[tokio::test]
async fn a_large_object_with_part_states_verifies_fanned_out_by_the_local_verifier() {
    let stack = EventsStack::new("vu-fanout").await;
    let every_object_is_large = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    let (uploads, client) = local_server(&stack, every_object_is_large).await;
    let file = data(3 * PART + 4321, 71);
    let id = uploaded(&client, &file, &file).await;
    let handed = client
        .complete_with(&id, json!({"part_states": part_states(&file, &[1, 2, 3])}))
        .await;
    assert_eq!(
        (handed.status.as_u16(), handed.body["status"].clone()),
        (202, json!("verifying")),
        "{}",
        handed.body
    );
    let uid = UploadId::parse(&id).unwrap();
    let record = eventually(|| async {
        let r = uploads.get("anonymous", uid).await.unwrap();
        (r.status().is_final(), r)
    })
    .await;
    assert_eq!(record.status(), Status::Verified, "{record:?}");
    assert_eq!(record.sha256().map(|d| d.to_hex()), Some(sha256_hex(&file)));
    // Four segments, each its own queue message: the verdict rests on all four.
    assert_eq!(record.chained.segments, 4);
    assert_eq!(record.verified_bytes(), file.len() as u64);
    // The verified version is the only one under the key, its bytes the file's.
    assert_eq!(
        stack.current_sha256(record.key.as_str()).await,
        Some(sha256_hex(&file))
    );
}
