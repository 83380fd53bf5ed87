//! Each binary's settings: what they require, their defaults and bounds, and what they refuse.

use super::*;
use std::collections::HashMap;

const MIB: u64 = 1024 * 1024;

/// `pairs` as an environment.
fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |k| env.get(k).cloned()
}

/// The API's settings, as the local server reads them.
fn cfg(pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
    ApiConfig::from_lookup(lookup(pairs), Runtime::Local)
}

#[test]
fn requires_bucket_and_table_and_applies_defaults() {
    assert!(matches!(cfg(&[]), Err(ConfigError::Missing("BUCKET_NAME"))));
    assert!(matches!(
        cfg(&[("BUCKET_NAME", "b")]),
        Err(ConfigError::Missing("TABLE_NAME"))
    ));
    let c = cfg(&[("BUCKET_NAME", "b"), ("TABLE_NAME", "t")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.limits.default_part_size, 16 * MIB);
    let local = c
        .local
        .unwrap_or_else(|| panic!("no local server settings"));
    assert_eq!(local.listen_addr.port(), 3000);
}

#[test]
fn refuses_out_of_range_values() {
    let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
    let with = |k, v| {
        let mut p = base.to_vec();
        p.push((k, v));
        cfg(&p)
    };
    assert!(with("MAX_OBJECT_BYTES", "60000000000000").is_err());
    assert!(with("DEFAULT_PART_SIZE", "1024").is_err());
    assert!(with("URL_EXPIRY_SECONDS", "ten").is_err());
    assert!(with("LISTEN_ADDR", "nope").is_err());
    assert!(with("FUNCTION_TIMEOUT_SECONDS", "901").is_err());
    assert!(with("POST_FORM_EXPIRY_SECONDS", "3600").is_ok());
    let outliving = cfg(&[
        ("BUCKET_NAME", "b"),
        ("TABLE_NAME", "t"),
        ("SESSION_TTL_SECONDS", "600"),
    ]);
    assert!(
        matches!(
            outliving,
            Err(ConfigError::Invalid {
                name: "POST_FORM_EXPIRY_SECONDS",
                ..
            })
        ),
        "{outliving:?}"
    );
    let short = cfg(&[
        ("BUCKET_NAME", "b"),
        ("TABLE_NAME", "t"),
        ("FUNCTION_TIMEOUT_SECONDS", "900"),
        ("COMPLETION_LEASE_SECONDS", "600"),
    ]);
    assert!(
        matches!(
            short,
            Err(ConfigError::Invalid {
                name: "COMPLETION_LEASE_SECONDS",
                ..
            })
        ),
        "{short:?}"
    );
    assert!(with("FUNCTION_TIMEOUT_SECONDS", "900").is_ok());
    assert_eq!(
        with("MAX_OBJECT_BYTES", "1000")
            .map(|c| c.limits.max_object_bytes)
            .ok(),
        Some(1000)
    );
}

#[test]
fn verify_read_ahead_is_bounded_and_configurable() {
    let verify = |pairs: &[(&str, &str)]| limits::verify(&lookup(pairs));
    let d = verify(&[]).unwrap_or_else(|e| panic!("{e}"));
    // The default bound, (concurrency + prefetch + 1) × range, stays small for Lambda.
    let bound = (d.concurrency + d.prefetch + 1) as u64 * d.range_bytes;
    assert!(bound <= 32 * MIB, "{bound}");
    let p = verify(&[("VERIFY_PREFETCH", "3")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.prefetch, 3);
    assert!(verify(&[("VERIFY_PREFETCH", "0")]).is_err());
    assert!(verify(&[("VERIFY_PREFETCH", "65")]).is_err());
}

#[test]
fn in_lambda_an_anonymous_api_must_be_asked_for() {
    let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
    let deployed = |pairs: &[(&str, &str)]| ApiConfig::from_lookup(lookup(pairs), Runtime::Lambda);
    match deployed(&base) {
        Err(e) => assert!(e.to_string().contains("ALLOW_ANONYMOUS"), "{e}"),
        Ok(_) => panic!("an anonymous API started in Lambda"),
    }
    let mut anonymous = base.to_vec();
    anonymous.push(("ALLOW_ANONYMOUS", "true"));
    assert!(deployed(&anonymous).is_ok());
    let mut jwt = base.to_vec();
    jwt.push(("AUTH_REQUIRED", "true"));
    assert!(deployed(&jwt).is_ok());
}

#[test]
fn unsized_sessions_are_off_unless_allowed() {
    let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
    let with = |extra: &[(&str, &str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        cfg(&p).map(|c| c.limits.unsized_sessions)
    };
    assert!(!with(&[]).unwrap_or_else(|e| panic!("{e}")));
    assert!(!with(&[("ALLOW_UNSIZED_SESSIONS", "")]).unwrap_or_else(|e| panic!("{e}")));
    assert!(!with(&[("ALLOW_UNSIZED_SESSIONS", "false")]).unwrap_or_else(|e| panic!("{e}")));
    assert!(with(&[("ALLOW_UNSIZED_SESSIONS", "true")]).unwrap_or_else(|e| panic!("{e}")));
    assert!(with(&[("ALLOW_UNSIZED_SESSIONS", "1")]).unwrap_or_else(|e| panic!("{e}")));
    assert!(
        matches!(
            with(&[("ALLOW_UNSIZED_SESSIONS", "yes")]),
            Err(ConfigError::Invalid {
                name: "ALLOW_UNSIZED_SESSIONS",
                ..
            })
        ),
        "a value that is not a flag stops the start"
    );
}

#[test]
fn kms_acceleration_and_content_types_are_checked_at_load() {
    let base = [("BUCKET_NAME", "vu-123-us-east-1-abc"), ("TABLE_NAME", "t")];
    let with = |extra: &[(&str, &str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        cfg(&p)
    };
    let c = with(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.store.s3.kms_key_arn.is_none() && !c.store.s3.accelerate);
    assert!(c.limits.allowed_content_types.allows_all());

    let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let c =
        with(&[("KMS_KEY_ARN", arn), ("S3_ACCELERATE", "true")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.store.s3.kms_key_arn.as_deref(), Some(arn));
    assert!(c.store.s3.accelerate);
    assert!(with(&[("KMS_KEY_ARN", " ")]).is_ok_and(|c| c.store.s3.kms_key_arn.is_none()));
    for not_a_key_arn in [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "alias/uploads",
        "arn:aws:kms:eu-west-1:123456789012:alias/uploads",
        "arn:aws:s3:::bucket",
        "arn:aws:kms:eu-west-1:1234:key/x",
    ] {
        assert!(
            matches!(
                with(&[("KMS_KEY_ARN", not_a_key_arn)]),
                Err(ConfigError::Invalid {
                    name: "KMS_KEY_ARN",
                    ..
                })
            ),
            "{not_a_key_arn}"
        );
    }

    // Acceleration needs a DNS-compatible bucket name without dots.
    let dotted = cfg(&[
        ("BUCKET_NAME", "uploads.example.com"),
        ("TABLE_NAME", "t"),
        ("S3_ACCELERATE", "true"),
    ]);
    match dotted {
        Err(
            e @ ConfigError::Invalid {
                name: "S3_ACCELERATE",
                ..
            },
        ) => assert!(e.to_string().contains("without dots"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(
        cfg(&[("BUCKET_NAME", "uploads.example.com"), ("TABLE_NAME", "t")]).is_ok(),
        "dots are fine without acceleration"
    );
    assert!(with(&[("S3_ACCELERATE", "yes")]).is_err());

    let c = with(&[("ALLOWED_CONTENT_TYPES", "image/*,application/pdf")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.limits.allowed_content_types.to_string(),
        "image/*, application/pdf"
    );
    match with(&[("ALLOWED_CONTENT_TYPES", "image/*,pdf")]) {
        Err(
            e @ ConfigError::Invalid {
                name: "ALLOWED_CONTENT_TYPES",
                ..
            },
        ) => assert!(e.to_string().contains("\"pdf\""), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_caller_policy_is_read_once_and_in_lambda_the_local_settings_are_not() {
    let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
    let policy = |runtime, extra: &[(&str, &str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        ApiConfig::from_lookup(lookup(&p), runtime).map(|c| c.callers)
    };
    let (lambda, local) = (Runtime::Lambda, Runtime::Local);
    assert!(matches!(
        policy(local, &[]),
        Ok(CallerPolicy::AnonymousAllowed)
    ));
    assert!(matches!(
        policy(local, &[("AUTH_REQUIRED", "true")]),
        Ok(CallerPolicy::AuthorizerRequired)
    ));
    assert!(matches!(
        policy(
            lambda,
            &[("AUTH_REQUIRED", "1"), ("ALLOW_ANONYMOUS", "true")]
        ),
        Ok(CallerPolicy::AuthorizerRequired)
    ));
    assert!(matches!(
        policy(lambda, &[("ALLOW_ANONYMOUS", "1")]),
        Ok(CallerPolicy::AnonymousAllowed)
    ));
    assert!(matches!(
        policy(local, &[("ALLOW_ANONYMOUS", "maybe")]),
        Err(ConfigError::Invalid {
            name: "ALLOW_ANONYMOUS",
            ..
        })
    ));

    // Lambda serves on its runtime API: the local server's settings are not read there.
    let deployed = ApiConfig::from_lookup(
        lookup(&[
            ("BUCKET_NAME", "b"),
            ("TABLE_NAME", "t"),
            ("AUTH_REQUIRED", "true"),
            ("LISTEN_ADDR", "nope"),
            ("SWEEP_INTERVAL_SECONDS", "0"),
            ("WEBHOOK_URL", "ftp://x"),
        ]),
        Runtime::Lambda,
    );
    assert!(deployed.is_ok_and(|c| c.local.is_none()));
    let local = cfg(&[
        ("BUCKET_NAME", "b"),
        ("TABLE_NAME", "t"),
        ("WEBHOOK_URL", "https://example.com/h"),
        ("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("WEBHOOK_QUEUE_URL", "http://127.0.0.1:4566/123456789012/q"),
        ("WEB_DIR", " "),
    ])
    .unwrap_or_else(|e| panic!("{e}"))
    .local
    .unwrap_or_else(|| panic!("no local server settings"));
    assert_eq!(local.web_dir, std::path::Path::new("web"));
    assert_eq!(local.sweep_interval.as_secs(), 60);
    assert!(local.webhooks.is_some_and(|d| d.queue_url.is_some()));
}

#[test]
fn the_verifier_reads_the_store_its_leases_and_its_queue_only() {
    let verifier = |pairs: &[(&str, &str)]| VerifierConfig::from_lookup(lookup(pairs));
    assert!(matches!(
        verifier(&[]),
        Err(ConfigError::Missing("BUCKET_NAME"))
    ));
    assert!(matches!(
        verifier(&[("BUCKET_NAME", "b"), ("TABLE_NAME", "t")]),
        Err(ConfigError::Missing("VERIFIER_QUEUE_URL"))
    ));
    let base = [
        ("BUCKET_NAME", "b"),
        ("TABLE_NAME", "t"),
        (
            "VERIFIER_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/v",
        ),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        verifier(&p)
    };
    // What only the API reads cannot stop the verifier.
    let c = with(&[
        ("MAX_OBJECT_BYTES", "60000000000000"),
        ("ALLOWED_CONTENT_TYPES", "image/*,pdf"),
        ("ALLOW_UNSIZED_SESSIONS", "maybe"),
        ("AUTH_REQUIRED", "maybe"),
        ("LISTEN_ADDR", "nope"),
        ("WEBHOOK_URL", "ftp://x"),
        ("VERIFY_CONCURRENCY", "8"),
        ("FUNCTION_TIMEOUT_SECONDS", "900"),
        ("SESSION_TTL_SECONDS", "600"),
        ("EVENT_BUS_NAME", "bus"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.verify.concurrency, 8);
    assert_eq!(c.limits.session_ttl.as_secs(), 600);
    assert_eq!(
        c.limits.max_object_bytes,
        Limits::default().max_object_bytes
    );
    assert_eq!(c.event_bus.as_deref(), Some("bus"));
    // What it does read is checked as the API checks it.
    let short = with(&[
        ("FUNCTION_TIMEOUT_SECONDS", "900"),
        ("COMPLETION_LEASE_SECONDS", "600"),
    ]);
    assert!(
        matches!(
            short,
            Err(ConfigError::Invalid {
                name: "COMPLETION_LEASE_SECONDS",
                ..
            })
        ),
        "{short:?}"
    );
    assert!(with(&[("VERIFY_PREFETCH", "0")]).is_err());
    assert!(with(&[("KMS_KEY_ARN", "alias/uploads")]).is_err());
}

#[test]
fn a_local_caller_header_is_read_by_the_local_server_only() {
    let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
    let local = |extra: &[(&'static str, &'static str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        cfg(&p).map(|c| c.local.and_then(|l| l.caller_header))
    };
    // Off by default: every local caller is anonymous.
    assert!(local(&[]).is_ok_and(|h| h.is_none()));
    assert!(
        local(&[("LOCAL_CALLER_HEADER", " X-Local-Caller ")])
            .is_ok_and(|h| h.is_some_and(|h| h == "x-local-caller"))
    );
    assert!(matches!(
        local(&[("LOCAL_CALLER_HEADER", "no spaces allowed")]),
        Err(ConfigError::Invalid {
            name: "LOCAL_CALLER_HEADER",
            ..
        })
    ));
    // In Lambda the caller is the authorizer's claim alone: the setting is not read there.
    let mut p = base.to_vec();
    p.extend([
        ("AUTH_REQUIRED", "true"),
        ("LOCAL_CALLER_HEADER", "x-local-caller"),
    ]);
    let deployed = ApiConfig::from_lookup(lookup(&p), Runtime::Lambda);
    assert!(deployed.is_ok_and(|c| c.local.is_none()));
}
