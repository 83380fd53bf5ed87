//! A file-backed S3 server on loopback for benchmarks (s3s + s3s-fs, SigV4 checked): unlike the
//! moto emulator, it serves a ranged GET by seeking the file rather than copying the object.
//!   cargo run --release --example s3_server -- ROOT_DIR PORT   (credentials: test / test)

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: s3_server ROOT_DIR PORT")?;
    let port: u16 = args
        .next()
        .ok_or("usage: s3_server ROOT_DIR PORT")?
        .parse()?;
    std::fs::create_dir_all(&root)?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("{e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single("test", "test"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "s3 server on http://{} serving {root}",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
