//! Form POSTs: S3 takes only what the policy names.

use super::*;

/// POSTs the signed `form` with some fields replaced, then the file: S3's answer.
async fn post_form(form: &Value, replace: &[(&str, &str)], body: Vec<u8>) -> S3Answer {
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in form["fields"].as_object().unwrap() {
        let v = replace
            .iter()
            .find(|(rk, _)| rk == k)
            .map_or(v.as_str().unwrap(), |(_, rv)| rv);
        multipart = multipart.text(k.clone(), v.to_owned());
    }
    multipart = multipart.part(
        "file",
        reqwest::multipart::Part::bytes(body).file_name("form.txt"),
    );
    let res = reqwest::Client::new()
        .post(form["url"].as_str().unwrap())
        .timeout(Duration::from_secs(30))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// LocalStack checks a POST policy's conditions (key, content type, size range) and its
/// expiration, but not its signature: a rewritten policy would pass there. The s3s server checks
/// that one (`presigned::a_post_policy_takes_only_its_key_type_and_size_range`).
#[tokio::test]
async fn s3_refuses_a_form_post_outside_its_policy() {
    let Some(s) = Strict::new("s3_refuses_a_form_post_outside_its_policy").await else {
        return;
    };
    // A declared size: the policy's content-length-range ends there.
    let (id, key, form) = signed_form(&s.client, "form.txt", "&metadata%5Bsize%5D=100").await;
    assert!(
        form["url"].as_str().unwrap().starts_with(&s.endpoint),
        "{form}"
    );
    let file = data(100, 25);

    let got = post_form(&form, &[], data(101, 25)).await;
    s.refused(&got, 400, "EntityTooLarge", "one byte over the size range");
    let elsewhere = format!("{key}.exe");
    let got = post_form(&form, &[("key", &elsewhere)], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "another key");
    assert!(got.body.contains("Policy Condition failed"), "{}", got.body);
    let got = post_form(&form, &[("Content-Type", "text/html")], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "another content type");
    assert!(got.body.contains("Policy Condition failed"), "{}", got.body);
    assert!(!object_on(&s, &key).await && !object_on(&s, &elsewhere).await);

    let ok = post_form(&form, &[], file.clone()).await;
    assert_eq!(ok.status, 201, "{ok:?}");
    // Its owner's read verifies it.
    let r = s.client.record(&id).await.body;
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["sha256"], sha256_hex(&file));
    s.done();
}

/// Whether the strict S3 holds an object under `key`.
async fn object_on(s: &Strict, key: &str) -> bool {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&s.sdk)
            .force_path_style(true)
            .build(),
    )
    .head_object()
    .bucket(bucket())
    .key(key)
    .send()
    .await
    .is_ok()
}
