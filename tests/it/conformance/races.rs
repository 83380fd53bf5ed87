//! Racing pairs of changes on one record, sent to dynalite at once: each round must end as the
//! memory store ends one order or the other (one winner where the guards exclude each other).

use std::sync::Arc;

use vu_core::domain::{Change, Guard, LeaseToken, Progress, Saved, Sha256, Status, UploadRecord};
use vu_core::memory::MemorySessions;
use vu_core::ports::SessionStore;

use super::{Dynalite, EPOCH, claim, fresh, states, verified, written};

/// Rounds per racing pair.
const ROUNDS: usize = 50;

/// One side of a race: a change, the guard its caller writes under, and when.
#[derive(Clone)]
struct Step {
    guard: Guard,
    change: Change,
    now: &'static str,
}

struct Race {
    name: &'static str,
    start: UploadRecord,
    a: Step,
    b: Step,
    /// The guards exclude each other: in either order exactly one is written.
    exclusive: bool,
}

/// How a round ended: what each side's write returned (`None`: refused), and the record.
#[derive(Debug, PartialEq)]
struct Ending {
    a: Option<UploadRecord>,
    b: Option<UploadRecord>,
    stored: UploadRecord,
}

fn step(guard: Guard, change: Change, now: &'static str) -> Step {
    Step { guard, change, now }
}

fn state(label: &str) -> UploadRecord {
    states()
        .into_iter()
        .find_map(|(l, r)| (l == label).then_some(r))
        .unwrap()
}

fn pairs() -> Vec<Race> {
    const A: &str = "2030-03-17T17:46:40.001Z";
    const B: &str = "2030-03-17T17:46:40.002Z";
    let pending = Guard::status(Status::Pending);
    let run_out = Guard {
        lease_expired_by: Some(EPOCH),
        ..Guard::status(Status::Completing)
    };
    let (sized, open) = (state("pending sized"), state("pending open size"));
    let (held, expired) = (state("completing"), state("completing, lease run out"));
    let failing = Change::Failing {
        sha256: Some(Sha256::of(b"other")),
        etag: Some("\"etag-5\"".into()),
        version_id: Some("v5".into()),
        error: "digest mismatch".into(),
        chained: vu_core::domain::Chained::default(),
    };
    let saved = Saved {
        etag: "\"etag-3\"".into(),
        version_id: Some("v3".into()),
        progress: Progress {
            hashed: 5 << 20,
            state: vec![1; 112],
            seal: None,
        },
    };
    let reopen = Change::Reopen {
        expires_at: EPOCH + 86_400,
        unmeasure: true,
    };
    // The holder `held` names took the completion over from a stale one.
    let stale = Guard {
        holder: Some(LeaseToken::generate()),
        ..Guard::status(Status::Completing)
    };
    let race = |name, start: &UploadRecord, a, b, exclusive| Race {
        name,
        start: start.clone(),
        a,
        b,
        exclusive,
    };
    let t = LeaseToken::generate;
    vec![
        race(
            "two claims",
            &sized,
            step(pending, claim(t()), A),
            step(pending, claim(t()), B),
            true,
        ),
        race(
            "claim vs abort",
            &sized,
            step(pending, claim(t()), A),
            step(pending, Change::Aborted, B),
            true,
        ),
        race(
            "declare vs claim",
            &open,
            step(
                pending,
                Change::Declare {
                    expected_sha256: Sha256::of(b"late"),
                },
                A,
            ),
            step(pending, claim(t()), B),
            false,
        ),
        race(
            "two take-overs",
            &expired,
            step(run_out, claim(t()), A),
            step(run_out, claim(t()), B),
            true,
        ),
        race(
            "verified vs release",
            &held,
            step(Guard::held(&held), verified(Some("v4")), A),
            step(
                Guard::held(&held),
                Change::Release {
                    fault: None,
                    retry_at: None,
                },
                B,
            ),
            true,
        ),
        race(
            "verified vs take-over",
            &expired,
            step(Guard::held(&expired), verified(None), A),
            step(run_out, claim(t()), B),
            true,
        ),
        race(
            "stale holder's release vs verified",
            &held,
            step(
                stale,
                Change::Release {
                    fault: None,
                    retry_at: None,
                },
                A,
            ),
            step(Guard::held(&held), verified(Some("v4")), B),
            true,
        ),
        race(
            "failing vs failed",
            &held,
            step(Guard::held(&held), failing, A),
            step(
                Guard::held(&held),
                Change::Failed {
                    error: "mismatch".into(),
                    sha256: None,
                },
                B,
            ),
            false,
        ),
        race(
            "hand-over vs take-over",
            &expired,
            step(
                Guard::held(&expired),
                Change::HandOver {
                    saved: Some(saved),
                    resume_by: EPOCH + 900,
                },
                A,
            ),
            step(run_out, claim(t()), B),
            true,
        ),
        race(
            "reopen vs abort",
            &held,
            step(Guard::held(&held), reopen, A),
            step(pending, Change::Aborted, B),
            false,
        ),
    ]
}

/// How the memory store ends the race when one side runs to completion before the other.
async fn in_order(start: &UploadRecord, race: &Race, a_first: bool) -> Ending {
    let memory = MemorySessions::new();
    memory.put(start.clone());
    let id = start.upload_id;
    let run = |s: &Step| {
        let (guard, change, now) = (s.guard, s.change.clone(), s.now);
        let memory = memory.clone();
        async move { memory.transition(id, guard, change, now).await }
    };
    let (a, b) = if a_first {
        let a = run(&race.a).await;
        (a, run(&race.b).await)
    } else {
        let b = run(&race.b).await;
        (run(&race.a).await, b)
    };
    Ending {
        a: written(&a).cloned(),
        b: written(&b).cloned(),
        stored: memory.peek(id).unwrap(),
    }
}

/// Both sides at once against dynalite; `b_sent_first` alternates who leaves first, so neither
/// side wins by being sent first.
async fn at_once(
    db: &Arc<Dynalite>,
    start: &UploadRecord,
    race: &Race,
    b_sent_first: bool,
) -> Ending {
    db.sessions.create(start).await.unwrap();
    let id = start.upload_id;
    let send = |s: &Step| {
        let (db, s) = (db.clone(), s.clone());
        tokio::spawn(async move { db.sessions.transition(id, s.guard, s.change, s.now).await })
    };
    let (a, b) = if b_sent_first {
        let b = send(&race.b);
        let a = send(&race.a);
        (a.await, b.await)
    } else {
        let a = send(&race.a);
        let b = send(&race.b);
        (a.await, b.await)
    };
    Ending {
        a: written(&a.unwrap()).cloned(),
        b: written(&b.unwrap()).cloned(),
        stored: db.sessions.get(id).await.unwrap().unwrap(),
    }
}

/// What the races showed: how many, the rounds by the order each ended in (a line per pair),
/// and the differences.
pub(super) struct Shown {
    pub races: usize,
    pub rounds: String,
    pub pairs: Vec<String>,
    pub differences: Vec<String>,
}

/// Every racing pair, `ROUNDS` times.
pub(super) async fn run(db: &Arc<Dynalite>) -> Shown {
    let races = pairs();
    let mut differences = Vec::new();
    let mut pairs = Vec::new();
    let mut total = [0; 3];
    for race in &races {
        // Ended as A then B, as B then A, alike either way.
        let mut seen = [0; 3];
        for round in 0..ROUNDS {
            let start = fresh(&race.start);
            let ab = in_order(&start, race, true).await;
            let ba = in_order(&start, race, false).await;
            if race.exclusive {
                for e in [&ab, &ba] {
                    assert!(
                        e.a.is_some() != e.b.is_some(),
                        "{}: one winner: {e:?}",
                        race.name
                    );
                }
            }
            let ended = at_once(db, &start, race, round % 2 == 1).await;
            match (ended == ab, ended == ba) {
                (true, true) => seen[2] += 1,
                (true, false) => seen[0] += 1,
                (false, true) => seen[1] += 1,
                (false, false) => differences.push(format!(
                    "{} (round {round}): DynamoDB ended {ended:?}; memory {ab:?} or {ba:?}",
                    race.name
                )),
            }
        }
        pairs.push(format!(
            "race {}: {} as A then B, {} as B then A, {} alike either way",
            race.name, seen[0], seen[1], seen[2]
        ));
        for (t, s) in total.iter_mut().zip(seen) {
            *t += s;
        }
    }
    let [a_first, b_first, alike] = total;
    Shown {
        races: races.len(),
        rounds: format!(
            "{ROUNDS} rounds each: {a_first} as A then B, {b_first} as B then A, {alike} alike either way"
        ),
        pairs,
        differences,
    }
}
