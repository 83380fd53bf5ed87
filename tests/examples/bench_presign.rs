//! Pre-signing throughput: 10,000 UploadPart URLs (content-length signed, session token present),
//! one derived key for the batch as the API does. Prints µs per URL (best of 5 runs).
//!   cargo run --release --example bench_presign [-- COUNT]

use std::time::{Duration, Instant};

use vu_aws::presign::{Credentials, Presigner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(10_000), |c| c.parse())?;
    let creds = Credentials {
        access_key_id: "ASIAVERIFIEDUPLOADS1".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("IQoJb3JpZ2luX2VjE".repeat(40)),
    };
    let p = Presigner::new(None, "us-east-1", "verified-uploads-bench")?;
    let key = "uploads/01JF0000000000000000000000/archive.tar";
    let upload_id = "VXBsb2FkSWQgZm9yIDZjN2I0ZjgyLTk4YzQtNDQwZS1hNWE2LWI4ZTJmY2QzZDFhNg";
    let mut best = f64::INFINITY;
    let mut bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let batch = p.batch(
            &creds,
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(3600),
        );
        bytes = 0;
        for n in 1..=count {
            let part = n.to_string();
            let url = batch.sign(
                "PUT",
                key,
                &[("partNumber", &part), ("uploadId", upload_id)],
                &[("content-length", "16777216")],
            );
            bytes += url.len();
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{{\"urls\":{count},\"seconds\":{best:.5},\"us_per_url\":{:.3},\"avg_url_bytes\":{}}}",
        best * 1e6 / count as f64,
        bytes / count
    );
    Ok(())
}
