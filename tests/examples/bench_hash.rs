//! Hashing-core throughput: SHA-256 over a file read in 8 MiB chunks (the verifier's range size),
//! the same `sha2` code path the verifier uses. Prints MiB/s.
//!   cargo run --release --example bench_hash -- FILE [ROUNDS]

use std::io::Read;
use std::time::Instant;

use sha2::Digest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: bench_hash FILE [ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let mut buf = vec![0u8; 8 << 20];
    let mut best = f64::INFINITY;
    let mut digest = String::new();
    let mut size = 0u64;
    for _ in 0..rounds {
        let mut f = std::fs::File::open(&path)?;
        let started = Instant::now();
        let mut h = sha2::Sha256::new();
        size = 0;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(&buf[..n]);
        }
        digest = hex::encode(h.finalize());
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{{\"bytes\":{size},\"seconds\":{best:.4},\"mib_per_s\":{:.1},\"sha256\":\"{digest}\"}}",
        size as f64 / 1_048_576.0 / best
    );
    Ok(())
}
