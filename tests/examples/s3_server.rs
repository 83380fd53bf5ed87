//! A file-backed S3 server on loopback for benchmarks (s3s + s3s-fs, SigV4 checked): unlike the
//! moto emulator, it serves a ranged GET by seeking the file rather than copying the object.
//!   cargo run --release --example s3_server -- ROOT_DIR PORT [--get-cap MB_PER_S]
//!       [--link-cap MB_PER_S]   (flags in any order; credentials: test / test)
//!
//! `--get-cap` limits what each connection sends to that many MB/s (10^6 bytes): one verifier
//! connection then reads as one Lambda function's network would (~75 MB/s), so N segment workers,
//! each on its own connection, read N times as fast as one, and the sequential verifier (run with
//! one connection) as fast as one function. Only responses are paced, so in practice GET bodies.
//!
//! `--link-cap` limits what the server receives, over all its connections together, to that many
//! MB/s: one token bucket shared by every connection, as a client's uplink is shared by all of its
//! connections (the upload page sends several parts at once). Only requests are paced, so in
//! practice PUT bodies: an upload then runs at most at that rate, whatever the client's CPU.
//!
//! Every operation is s3s-fs's own, except that a GET's body is read from the file in 1 MiB
//! blocks: s3s-fs streams it in 4 KiB reads, each a round trip through tokio's blocking pool,
//! which measured 6–8 s of the server's CPU per GiB served — more than the two cores of the
//! bench machine allow, so every GET-side figure measured that, not the client. Uploads are
//! untouched, so both clients of an upload comparison still meet the same server.

use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// A token bucket: `rate` bytes a second, holding at most `BURST` bytes, so an idle link saves
/// up no more than that. Tokens are taken before a read or write and what it did not use is given
/// back, so connections sharing one bucket cannot overdraw it together.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

/// The most a paced link passes at once after a pause: small against the ranges read.
const BURST: f64 = 256.0 * 1024.0;

impl Bucket {
    fn shared(rate: f64) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            rate,
            tokens: BURST,
            last: Instant::now(),
        }))
    }

    /// Up to `want` bytes taken now, or how long to wait: for 16 KiB (or `want`, if less) at once
    /// rather than waking, and passing, a few bytes at a time.
    fn take(&mut self, want: usize) -> Result<usize, Duration> {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(BURST);
        self.last = now;
        let least = want.clamp(1, 16_384) as f64;
        if self.tokens < least {
            return Err(Duration::from_secs_f64((least - self.tokens) / self.rate));
        }
        let n = want.min(self.tokens as usize);
        self.tokens -= n as f64;
        Ok(n)
    }
}

/// The bucket; a panic while it was held left no state worth refusing.
fn lock(bucket: &Mutex<Bucket>) -> MutexGuard<'_, Bucket> {
    bucket.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One direction of a connection paced by a bucket (its own, or one shared by all connections),
/// with the timer that wakes it when the bucket has refilled.
struct Pace {
    bucket: Arc<Mutex<Bucket>>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pace {
    fn new(bucket: Arc<Mutex<Bucket>>) -> Self {
        Self {
            bucket,
            sleep: None,
        }
    }

    /// Up to `want` bytes this direction may pass now; when none, a timer wakes it when it may.
    fn allowance(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            let taken = lock(&self.bucket).take(want);
            match taken {
                Ok(n) => return Poll::Ready(n),
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
    }

    /// Gives back the tokens taken for bytes that did not pass.
    fn refund(&self, unused: usize) {
        if unused > 0 {
            lock(&self.bucket).tokens += unused as f64;
        }
    }
}

/// A connection whose reads (`--link-cap`) and writes (`--get-cap`) may be paced.
struct Paced<S> {
    inner: S,
    read: Option<Pace>,
    write: Option<Pace>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let Some(pace) = this.read.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let want = buf.remaining();
        let allowed = ready!(pace.allowance(cx, want));
        // Read into at most `allowed` bytes of the buffer (zeroed first if never written).
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(allowed));
        let polled = Pin::new(&mut this.inner).poll_read(cx, &mut part);
        let n = match polled {
            Poll::Ready(Ok(())) => part.filled().len(),
            _ => 0,
        };
        pace.refund(allowed - n);
        buf.advance(n);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let Some(pace) = this.write.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        let allowed = ready!(pace.allowance(cx, buf.len()));
        let polled = Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]);
        let written = match polled {
            Poll::Ready(Ok(n)) => n,
            _ => 0,
        };
        pace.refund(allowed - written);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

const USAGE: &str = "usage: s3_server ROOT_DIR PORT [--get-cap MB_PER_S] [--link-cap MB_PER_S]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    // Bytes a second: each connection's sending, and all connections' receiving together.
    let (mut get_cap, mut link_cap) = (None, None);
    while let Some(flag) = args.next() {
        let cap = match flag.as_str() {
            "--get-cap" => &mut get_cap,
            "--link-cap" => &mut link_cap,
            _ => return Err(USAGE.into()),
        };
        *cap = Some(args.next().ok_or(USAGE)?.parse::<f64>()? * 1e6).filter(|r: &f64| *r > 0.0);
    }
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
    let mb = |cap: Option<f64>, what: &str| {
        cap.map_or(String::new(), |r| {
            format!(", {what} capped at {} MB/s", r / 1e6)
        })
    };
    println!(
        "s3 server on http://{} serving {}{}{}",
        listener.local_addr()?,
        root.display(),
        mb(get_cap, "each connection's sending"),
        mb(link_cap, "all connections' receiving together"),
    );
    // The uplink: one bucket for every connection.
    let link = link_cap.map(Bucket::shared);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        let http = hyper::server::conn::http1::Builder::new();
        let read = link.clone().map(Pace::new);
        let write = get_cap.map(|rate| Pace::new(Bucket::shared(rate)));
        tokio::spawn(async move {
            let _ = if read.is_none() && write.is_none() {
                http.serve_connection(TokioIo::new(stream), service).await
            } else {
                let paced = TokioIo::new(Paced {
                    inner: stream,
                    read,
                    write,
                });
                http.serve_connection(paced, service).await
            };
        });
    }
}
