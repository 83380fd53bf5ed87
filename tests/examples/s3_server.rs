//! A file-backed S3 server on loopback for benchmarks (s3s + s3s-fs, SigV4 checked): unlike the
//! moto emulator, it serves a ranged GET by seeking the file rather than copying the object.
//!   cargo run --release --example s3_server -- ROOT_DIR PORT [--get-cap MB_PER_S]
//!   (credentials: test / test)
//!
//! `--get-cap` limits what each connection sends to that many MB/s (10^6 bytes): one verifier
//! connection then reads as one Lambda function's network would (~75 MB/s), so N segment workers,
//! each on its own connection, read N times as fast as one, and the sequential verifier (run with
//! one connection) as fast as one function. Only responses are paced, so in practice GET bodies.
//!
//! Every operation is s3s-fs's own, except that a GET's body is read from the file in 1 MiB
//! blocks: s3s-fs streams it in 4 KiB reads, each a round trip through tokio's blocking pool,
//! which measured 6–8 s of the server's CPU per GiB served — more than the two cores of the
//! bench machine allow, so every GET-side figure measured that, not the client. Uploads are
//! untouched, so both clients of an upload comparison still meet the same server.

use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes per read (and per body frame) of a GET.
const BLOCK: u64 = 1 << 20;

struct Fs {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

/// `start..end` of `file`, read in `BLOCK`s off the runtime.
fn file_body(file: std::fs::File, start: u64, end: u64) -> StreamingBlob {
    let blocks =
        futures::stream::try_unfold((Arc::new(file), start), move |(file, at)| async move {
            if at >= end {
                return Ok(None);
            }
            let len = (end - at).min(BLOCK);
            let reader = file.clone();
            let buf = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
                reader.read_exact_at(&mut buf, at).map(|()| buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok::<_, std::io::Error>(Some((Bytes::from(buf), (file, at + len))))
        });
    StreamingBlob::wrap(blocks)
}

/// `(start, len)` of a GET's body, from the headers s3s-fs answered with.
fn body_range(out: &GetObjectOutput) -> Option<(u64, u64)> {
    let len = u64::try_from(out.content_length?).ok()?;
    let start = match &out.content_range {
        // "bytes FIRST-LAST/SIZE"
        Some(r) => r.strip_prefix("bytes ")?.split('-').next()?.parse().ok()?,
        None => 0,
    };
    Some((start, len))
}

macro_rules! delegate {
    ($($op:ident: $input:ident => $output:ident,)*) => {
        #[async_trait::async_trait]
        impl S3 for Fs {
            async fn get_object(
                &self,
                req: S3Request<GetObjectInput>,
            ) -> S3Result<S3Response<GetObjectOutput>> {
                let path = self.root.join(&req.input.bucket).join(&req.input.key);
                // s3s-fs checks the key, the range and the preconditions, and sets the headers.
                let mut res = self.fs.get_object(req).await?;
                if let Some((start, len)) = body_range(&res.output) {
                    let file = tokio::fs::File::open(&path)
                        .await
                        .map_err(s3s::S3Error::internal_error)?
                        .into_std()
                        .await;
                    res.output.body = Some(file_body(file, start, start + len));
                }
                Ok(res)
            }
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$op(req).await
                }
            )*
        }
    };
}

delegate! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    put_object: PutObjectInput => PutObjectOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
}

/// A connection whose writes are paced to `rate` bytes a second (a token bucket holding at most
/// `BURST` bytes, so an idle connection saves up no more than that).
struct Paced<S> {
    inner: S,
    rate: f64,
    tokens: f64,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The most a paced connection sends at once after a pause: small against the ranges read.
const BURST: f64 = 256.0 * 1024.0;

impl<S> Paced<S> {
    fn new(inner: S, rate: f64) -> Self {
        Self {
            inner,
            rate,
            tokens: BURST,
            last: Instant::now(),
            sleep: None,
        }
    }

    /// Bytes this connection may send now; when none, a timer that wakes it when it may.
    fn allowance(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            let now = Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(BURST);
            self.last = now;
            if self.tokens >= 1.0 {
                return Poll::Ready(self.tokens as usize);
            }
            // Wait for 16 KiB at once rather than waking per byte.
            let wait = (16_384.0 - self.tokens) / self.rate;
            self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_secs_f64(wait))));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let allowed = ready!(self.allowance(cx));
        let n = buf.len().min(allowed);
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        self.tokens -= written as f64;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

const USAGE: &str = "usage: s3_server ROOT_DIR PORT [--get-cap MB_PER_S]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let cap: Option<f64> = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--get-cap"), Some(mb)) => Some(mb.parse::<f64>()? * 1e6).filter(|r| *r > 0.0),
        _ => return Err(USAGE.into()),
    };
    std::fs::create_dir_all(&root)?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("{e:?}"))?;
    let root = std::fs::canonicalize(&root)?;
    let mut builder = S3ServiceBuilder::new(Fs {
        fs,
        root: root.clone(),
    });
    builder.set_auth(SimpleAuth::from_single("test", "test"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "s3 server on http://{} serving {}{}",
        listener.local_addr()?,
        root.display(),
        cap.map_or(String::new(), |r| format!(
            ", each connection capped at {} MB/s",
            r / 1e6
        ))
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        let http = hyper::server::conn::http1::Builder::new();
        tokio::spawn(async move {
            let _ = match cap {
                Some(rate) => {
                    let paced = TokioIo::new(Paced::new(stream, rate));
                    http.serve_connection(paced, service).await
                }
                None => http.serve_connection(TokioIo::new(stream), service).await,
            };
        });
    }
}
