//! Segment results landing at once on one record fanned out by segments (issue 24), through the
//! verifier worker's own entry point (`Uploads::on_segment`): S3 in memory, the sessions on
//! dynalite through the adapter (wrapped to log every transition tried). The fan-out's holder is
//! taken over (its lease ran out), the new holder sends its `SEGMENTS` messages, and `RACERS`
//! callers are released at once: each of the new holder's messages delivered twice, some of the
//! old holder's messages (refused by the worker's read), and workers of the old holder that read
//! the record before the take-over and now record their end as `record_end` does (refused by the
//! write's condition on the lease token). Each end is recorded once, with its segment's value,
//! none by the old holder; the record stays `completing` until exactly one verdict, `verified`
//! over `SEGMENTS` segments.

use std::sync::Mutex;

use vu_core::domain::{
    ChainState, Change, Guard, Kind, LeaseToken, PartStates, Sha256, Status, UploadRecord,
    timestamp_now,
};
use vu_core::ports::{Continuation, PortError, SegmentMessage};
use vu_core::service::{Budget, Clock, EventOutcome};

use super::leases::{Counted, Logged};
use super::*;

/// Segments of one part each (5 MiB; the last 1000 bytes), a state declared between each two.
const SEGMENTS: usize = 16;
const PART: usize = crate::helpers::MIB * 5;
const SIZE: usize = (SEGMENTS - 1) * PART + 1000;
/// The old holder's messages delivered in the race, and its workers writing their end.
const STALE_MESSAGES: usize = 4;
const STALE_WRITERS: usize = 4;
const _: () = assert!(2 * SEGMENTS + STALE_MESSAGES + STALE_WRITERS == RACERS);
/// What the old holder's workers write: not the segment's end (as if they hashed other bytes),
/// so one that landed shows in the record too.
const STALE_END: [u8; 32] = [0xA5; 32];
const VERIFY: VerifyConfig = VerifyConfig {
    concurrency: 2,
    range_bytes: 1024 * 1024,
    prefetch: 1,
    stall_timeout: Duration::from_secs(5),
    fan_out: true,
};

/// A verifier queue that carries segments: what was sent, for the test to deliver.
#[derive(Default)]
struct Queue(Mutex<Vec<SegmentMessage>>);

#[async_trait::async_trait]
impl Continuation for Queue {
    async fn schedule(&self, _: UploadId) -> Result<(), PortError> {
        Ok(())
    }

    fn carries_segments(&self) -> bool {
        true
    }

    async fn send_segments(&self, segments: &[SegmentMessage]) -> Result<(), PortError> {
        self.0.lock().unwrap().extend_from_slice(segments);
        Ok(())
    }
}

impl Queue {
    fn take(&self) -> Vec<SegmentMessage> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// What one racer did.
enum Racer {
    /// One of the new holder's messages, or (`stale`) one of the old holder's.
    Deliver { msg: SegmentMessage, stale: bool },
    /// A worker of the old holder recording segment `index`'s end.
    StaleWrite { index: u16, bytes: u64 },
}

/// What came of it: the worker's outcome (and whether stale), or whether the stale worker's end
/// was written.
enum Outcome {
    Delivered(Result<EventOutcome, vu_core::error::Error>, bool),
    StaleWritten(Result<bool, PortError>),
}

/// A worker of the holder of `record` (read before the take-over) recording segment `index`'s
/// end as `record_end` does: over the ends it read, under its token, re-reading on a conflict
/// and giving up once the lease is another's. Whether its end was written.
async fn stale_write(
    sessions: &Counted,
    mut record: UploadRecord,
    index: u16,
    bytes: u64,
    lease_until: i64,
) -> Result<bool, PortError> {
    let token = record.lease_token();
    let guard = Guard {
        holder: token,
        ..Guard::status(Status::Completing)
    };
    for _ in 0..=SEGMENTS {
        let (Some(before), Some(etag)) = (record.fanned().cloned(), record.etag()) else {
            return Ok(false);
        };
        if before.ends.get(index).is_some() {
            return Ok(false);
        }
        let mut after = before.clone();
        after.hashed += bytes;
        after.ends.insert(index, STALE_END);
        let done = Change::SegmentDone {
            etag: etag.to_owned(),
            version_id: record.version_id().map(str::to_owned),
            before,
            after,
            lease_until,
        };
        let id = record.upload_id;
        match sessions.transition(id, guard, done, &timestamp_now()).await {
            Ok(_) => return Ok(true),
            Err(PortError::PreconditionFailed) => match sessions.get(id).await? {
                Some(r) if r.lease_token() == token => record = r,
                _ => return Ok(false),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// What a read of the record during the race breaks: held by `token` with only right ends
/// while `completing`; then `verified` for good.
fn broken(
    r: &UploadRecord,
    token: LeaseToken,
    ends: &[[u8; 32]],
    verdict: &mut bool,
) -> Vec<String> {
    let mut out = Vec::new();
    match r.status() {
        Status::Completing if !*verdict => {
            if r.lease_token() != Some(token) {
                out.push(format!("completing under {:?}", r.lease_token()));
            }
            let fanned = r.fanned().cloned().unwrap_or_default();
            for (i, want) in ends.iter().enumerate() {
                if fanned.ends.get(i as u16).is_some_and(|end| end != *want) {
                    out.push(format!("segment {i}'s end wrong"));
                }
            }
        }
        Status::Verified if r.chained.segments == SEGMENTS as u32 => *verdict = true,
        other => out.push(format!("read {other:?} (after the verdict: {verdict})")),
    }
    out
}

/// What the log of transitions tried shows.
#[derive(Default)]
struct Tally {
    /// How many times each segment's end was written.
    recorded: Vec<usize>,
    /// The new holder's `SegmentDone`s refused (another worker wrote first): retried.
    conflicts: usize,
    /// The old holder's `SegmentDone`s refused.
    stale_refused: usize,
    /// The final statuses written.
    verdicts: Vec<Status>,
    problems: Vec<String>,
}

impl Tally {
    /// Each end written once, with its value (`ends`), under `token`; the verdicts.
    fn of(log: &[Logged], token: LeaseToken, stale: LeaseToken, ends: &[[u8; 32]]) -> Self {
        let mut t = Self {
            recorded: vec![0; ends.len()],
            ..Self::default()
        };
        for l in log {
            if l.written && l.change.status().is_final() {
                t.verdicts.push(l.change.status());
            }
            let Change::SegmentDone { before, after, .. } = &l.change else {
                continue;
            };
            match l.guard.holder {
                Some(h) if l.refused && h == token => t.conflicts += 1,
                Some(h) if l.refused && h == stale => t.stale_refused += 1,
                _ => {}
            }
            if !l.written {
                continue;
            }
            if l.guard.holder != Some(token) {
                let holder = l.guard.holder;
                t.problems
                    .push(format!("SegmentDone written under {holder:?}"));
            }
            for (i, want) in ends.iter().enumerate() {
                let index = u16::try_from(i).unwrap();
                if before.ends.get(index).is_none() && after.ends.get(index).is_some() {
                    t.recorded[i] += 1;
                    if after.ends.get(index) != Some(*want) {
                        t.problems.push(format!("segment {i}'s end written wrong"));
                    }
                }
            }
        }
        if t.once() != ends.len() {
            t.problems.push(format!("ends written: {:?}", t.recorded));
        }
        if t.verdicts != [Status::Verified] {
            t.problems
                .push(format!("verdicts written: {:?}", t.verdicts));
        }
        t
    }

    /// The segments whose end was written exactly once.
    fn once(&self) -> usize {
        self.recorded.iter().filter(|&&n| n == 1).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_segment_results_are_each_recorded_once_and_a_stale_holders_never() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let (objects, clock) = (MemoryObjects::new(), Clock::default());
    let queue = Arc::new(Queue::default());
    let sessions = Arc::new(Counted::new(db.sessions.clone()));
    let limits = Limits {
        verify_inline_max_bytes: 0,
        ..Limits::default()
    };
    let lease = limits.completion_lease;
    let uploads = Arc::new(
        Uploads::new(objects.clone(), sessions.clone(), limits, VERIFY)
            .with_clock(clock.clone())
            .with_verifier(queue.clone()),
    );

    // A session of SEGMENTS parts, every part uploaded, its states declared at `complete`.
    let (owner, data) = (owner(), crate::helpers::data(SIZE, 24));
    let req = NewUpload {
        sha256: Some(Sha256::of(&data)),
        part_size: Some(PART as u64),
        ..new_upload(SIZE as u64)
    };
    let record = uploads.create(&owner, req).await.unwrap().record;
    let (Kind::Multipart { s3_upload_id, .. }, Some(plan)) = (&record.kind, record.plan) else {
        panic!("a sized session is multipart");
    };
    let (mut states, mut chain, mut ends) =
        (PartStates::default(), vu_contract::Chain::new(), Vec::new());
    for n in plan.parts() {
        let start = usize::try_from(n.index() * plan.part_size()).unwrap();
        let part = &data[start..start + usize::try_from(plan.part_len(n)).unwrap()];
        objects.put_part(s3_upload_id, n, part, None).unwrap();
        chain.update(part);
        if start + part.len() < SIZE {
            let state: ChainState = chain.state().unwrap();
            states.insert(n.get(), state);
            ends.push(state.to_bytes());
        }
    }
    ends.push(Sha256::of(&data).to_bytes());
    let id = record.upload_id;
    let budget = Budget::request(uploads.limits());
    let handed = (uploads.complete_chained(&owner, id, None, None, &states, budget)).await;
    assert_eq!(handed.unwrap().status(), Status::Verifying);

    // The verifier fans it out; its holder dies; a re-drive takes it over and sends them again.
    let fanned = |out| match out {
        Ok(EventOutcome::Segments(r)) => *r,
        other => panic!("expected the verification fanned out, got {other:?}"),
    };
    let run = || uploads.continue_verification(id, Budget::verifier(None));
    let stale = fanned(run().await);
    let old = queue.take();
    clock.advance(lease + Duration::from_secs(1));
    let taken = fanned(run().await);
    let sent = queue.take();
    let token = taken.lease_token().unwrap();
    assert_eq!([old.len(), sent.len(), ends.len()], [SEGMENTS; 3]);
    assert_ne!(stale.lease_token(), Some(token));

    let mut racers: Vec<Racer> = (sent.iter().chain(&sent).cloned())
        .map(|msg| Racer::Deliver { msg, stale: false })
        .collect();
    let step = SEGMENTS / STALE_MESSAGES;
    racers
        .extend((old.iter().step_by(step).cloned()).map(|msg| Racer::Deliver { msg, stale: true }));
    racers.extend(
        old.iter()
            .skip(step / 2)
            .step_by(step)
            .map(|m| Racer::StaleWrite {
                index: m.index,
                bytes: m.end - m.start,
            }),
    );
    assert_eq!(racers.len(), RACERS);
    let barrier = Arc::new(Barrier::new(RACERS));
    let lease_until = clock.now() + i64::try_from(lease.as_secs()).unwrap();
    let tasks: Vec<_> = racers
        .into_iter()
        .map(|racer| {
            let (uploads, sessions, barrier, stale) = (
                uploads.clone(),
                sessions.clone(),
                barrier.clone(),
                stale.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                match racer {
                    Racer::Deliver { msg, stale } => {
                        let out = uploads.on_segment(&msg, Budget::verifier(None)).await;
                        Outcome::Delivered(out, stale)
                    }
                    Racer::StaleWrite { index, bytes } => Outcome::StaleWritten(
                        stale_write(&sessions, stale, index, bytes, lease_until).await,
                    ),
                }
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sessions, done, ends) = (db.sessions.clone(), done.clone(), ends.clone());
        tokio::spawn(async move {
            let (mut problems, mut reads, mut verdict) = (Vec::new(), 0, false);
            while !done.load(Ordering::Relaxed) {
                reads += 1;
                let r = sessions.get(id).await.unwrap().unwrap();
                problems.extend(broken(&r, token, &ends, &mut verdict));
            }
            (problems, reads)
        })
    };
    let mut problems = Vec::new();
    let (mut by_read, mut late) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Outcome::Delivered(Ok(EventOutcome::Ignored(_)), true) => by_read += 1,
            // A copy read after the verdict: acknowledged, nothing written.
            Outcome::Delivered(Ok(EventOutcome::Ignored(_)), false) => late += 1,
            Outcome::Delivered(Ok(EventOutcome::Segments(_) | EventOutcome::Done(_)), false) => {}
            Outcome::Delivered(other, stale) => {
                problems.push(format!("delivered (stale: {stale}): {other:?}"));
            }
            Outcome::StaleWritten(Ok(false)) => {}
            Outcome::StaleWritten(other) => problems.push(format!("stale write: {other:?}")),
        }
    }
    done.store(true, Ordering::Relaxed);
    let (broke, reads) = reader.await.unwrap();

    let log = std::mem::take(&mut *sessions.log.lock().unwrap());
    let tally = Tally::of(&log, token, stale.lease_token().unwrap(), &ends);
    let (once, conflicts, by_write) = (tally.once(), tally.conflicts, tally.stale_refused);
    problems.extend(tally.problems);
    let verdicts = tally.verdicts;
    let stored = db.sessions.get(id).await.unwrap().unwrap();
    let right = (
        Status::Verified,
        Some(Sha256::of(&data)),
        SEGMENTS as u32,
        SIZE as u64,
    );
    let got = (
        stored.status(),
        stored.sha256(),
        stored.chained.segments,
        stored.verified_bytes(),
    );
    if got != right {
        problems.push(format!("stored {got:?}, not {right:?}"));
    }
    println!(
        "races: {RACERS} concurrent segment results ({SEGMENTS} segments each delivered twice, \
         {STALE_MESSAGES} messages and {STALE_WRITERS} workers' writes of a holder taken over): \
         {once} recorded once each, {} stale refused ({by_read} by the worker's read, {by_write} \
         by the write's condition), {conflicts} conflicts retried, {} verdict written ({:?}, {} \
         segments), late copies {late}; {reads} record reads meanwhile, {} broke an \
         invariant; {} problems",
        by_read + by_write,
        verdicts.len(),
        stored.status(),
        stored.chained.segments,
        broke.len(),
        problems.len(),
    );
    for p in problems.iter().chain(&broke).take(10) {
        println!("  {p}");
    }
    assert!(problems.is_empty() && broke.is_empty());
    assert_eq!((by_read, by_write), (STALE_MESSAGES, STALE_WRITERS));
}
