//! Verification by segments end to end (issue 24): a client that sends `part_states` at
//! `complete` (as curl would: plain JSON) gets a verdict resting on several segments, the same as
//! the sequential one; wrong bytes fail naming the part; malformed states are refused before
//! anything changes. The real Router over the S3 + DynamoDB emulator.

use crate::helpers::*;
use serde_json::{Value, json};
use vu_contract::Chain;

pub(crate) const PART: usize = 5 * MIB;

/// The chaining value (64 hex) after each of the first `n` parts of `file`, as a client that
/// hashes while it reads declares them.
pub(crate) fn part_states(file: &[u8], parts: &[usize]) -> Value {
    let mut states = serde_json::Map::new();
    for &n in parts {
        let mut c = Chain::new();
        c.update(&file[..n * PART]);
        states.insert(n.to_string(), json!(c.state().unwrap().to_hex()));
    }
    Value::Object(states)
}

/// A 4-part session (the last short) declaring `file`'s digest, with `landed` PUT as its parts.
pub(crate) async fn uploaded(client: &Client, file: &[u8], landed: &[u8]) -> String {
    let c = client
        .create(
            json!({"filename": "chain.bin", "size": file.len(), "part_size": PART,
                       "sha256": sha256_hex(file)}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, landed, PART).await;
    c.body["upload_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_sending_part_states_is_verified_in_several_segments() {
    let client = Client::new().await;
    let file = data(3 * PART + 4321, 61);
    let id = uploaded(&client, &file, &file).await;
    let body = json!({"part_states": part_states(&file, &[1, 2, 3])});
    let done = client.complete_with(&id, body).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "verified");
    assert_eq!(done.body["sha256"], sha256_hex(&file));
    assert_eq!(done.body["segments"], 4);
    assert_eq!(done.body["mismatch_part"], Value::Null);
    // Stored so: the record read back from DynamoDB says the same.
    let read = client.record(&id).await;
    assert_eq!(read.body["segments"], 4, "{}", read.body);

    // Without states: one sequential segment.
    let other = data(3 * PART + 4321, 62);
    let id = uploaded(&client, &other, &other).await;
    let done = client.complete(&id).await;
    assert_eq!(
        (done.body["status"].as_str(), done.body["segments"].as_u64()),
        (Some("verified"), Some(1)),
        "{}",
        done.body
    );
}

#[tokio::test]
async fn a_wrong_state_verifies_and_a_changed_part_fails_naming_it() {
    let client = Client::new().await;
    let file = data(3 * PART + 99, 63);
    let id = uploaded(&client, &file, &file).await;
    let mut states = part_states(&file, &[1, 2, 3]);
    states["2"] = json!("ab".repeat(32));
    let done = client
        .complete_with(&id, json!({"part_states": states}))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "verified");

    let mut landed = file.clone();
    landed[2 * PART + 10] ^= 1;
    let id = uploaded(&client, &file, &landed).await;
    let body = json!({"part_states": part_states(&file, &[1, 2, 3])});
    let done = client.complete_with(&id, body).await;
    assert_eq!(done.status, 422, "{}", done.body);
    let failed = &done.body["upload"];
    assert_eq!(failed["status"], "failed", "{}", done.body);
    assert_eq!(failed["mismatch_part"], 3);
    assert_eq!(failed["sha256"], sha256_hex(&landed));
    assert!(!object_exists(failed["key"].as_str().unwrap()).await);
}

#[tokio::test]
async fn uppys_complete_route_takes_part_states_too() {
    let client = Client::new().await;
    let file = data(2 * PART + 5, 66);
    let c = client
        .uppy_create(
            json!({"filename": "uppy-chain.bin", "type": "application/octet-stream",
                            "metadata": {"size": file.len()}}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let (id, key) = (
        c.body["uploadId"].as_str().unwrap(),
        c.body["key"].as_str().unwrap(),
    );
    // The session's own plan (the service's default part size).
    let planned = client.record(id).await.body;
    let part_size = usize::try_from(planned["part_size"].as_u64().unwrap()).unwrap();
    let count = usize::try_from(planned["part_count"].as_u64().unwrap()).unwrap();
    assert!(count >= 2, "{planned}");
    let mut parts = Vec::new();
    let mut states = serde_json::Map::new();
    let mut chain = Chain::new();
    for n in 1..=count {
        let s = client.uppy_sign(id, key, n).await;
        assert_eq!(s.status, 200, "{}", s.body);
        let signed = json!({"url": s.body["url"], "headers": {}});
        let bytes = slice(&file, part_size, n);
        chain.update(&bytes);
        if n < count {
            states.insert(n.to_string(), json!(chain.state().unwrap().to_hex()));
        }
        let (status, etag) = put_part(&signed, bytes).await;
        assert_eq!(status, 200);
        parts.push(json!({"PartNumber": n, "ETag": etag.unwrap()}));
    }
    let body = json!({"parts": parts, "part_states": states});
    let done = client.uppy_complete(id, key, Some(body)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["sha256"], chain.finish().to_hex());
    assert_eq!(client.record(id).await.body["segments"], count);
}

#[tokio::test]
async fn malformed_part_states_are_refused_and_nothing_changes() {
    let client = Client::new().await;
    let file = data(2 * PART + 7, 64);
    let id = uploaded(&client, &file, &file).await;
    let good = part_states(&file, &[1]);
    let state = good["1"].clone();
    for bad in [
        json!(["not", "an", "object"]),
        json!({"1": "abc"}),
        json!({"0": state}),
        json!({"3": state}),
        json!({"01": state}),
        json!({"1": 5}),
    ] {
        let r = client.complete_with(&id, json!({"part_states": bad})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.content_type, "application/problem+json", "{bad}");
        assert_eq!(client.record(&id).await.body["status"], "pending", "{bad}");
    }
    // Still completes, with its states, afterwards.
    let done = client
        .complete_with(&id, json!({"part_states": good}))
        .await;
    assert_eq!(
        (done.status.as_u16(), done.body["segments"].as_u64()),
        (200, Some(2)),
        "{}",
        done.body
    );
}

#[tokio::test]
async fn ten_thousand_states_fit_the_complete_routes_body_limit() {
    let client = Client::new().await;
    let file = data(2 * PART + 7, 65);
    let id = uploaded(&client, &file, &file).await;
    // 9,999 states (the largest a session can have): over 700 KB of JSON. Parts past this
    // session's count are refused as invalid (400), not as too large (413).
    let state = "00".repeat(32);
    let states: serde_json::Map<String, Value> =
        (1..10_000).map(|n| (n.to_string(), json!(state))).collect();
    let r = client
        .complete_with(&id, json!({"part_states": states}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["detail"].to_string().contains("part_states"),
        "{}",
        r.body
    );
}
