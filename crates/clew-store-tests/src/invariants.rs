//! The store's invariants, checked from the outside (through the engine's
//! own commands, as any client sees the store), and a property test that
//! random sequences of API calls never break them.
//!
//! [`check`] asserts, at one instant:
//! * every job a listing names is in exactly one listing: one queue's
//!   `waiting`, `running`, `stalled`, `scheduled`, `depends` or
//!   `throttled` set, one failure group, or the completed list;
//! * `get` returns each listed job, in the state its listing stands for
//!   (`waiting` or `stalled` in the work list, `running` under a lock,
//!   `failed` in its own group, ...), in the listing's queue, with a
//!   worker when running (and none unless running or timed out);
//! * every queue's counts (`queues`) equal the lengths of its listings,
//!   and every failure group's count its listing's (qless's one exception:
//!   a lock expiring exactly now is listed as running and as stalled, and
//!   counted stalled; the checker allows exactly that);
//! * every job `get` returns (among the jids the caller knows of) is
//!   listed somewhere: no job is lost between sets. (The queues are those
//!   `queues` names plus those of the known jobs: `queue.forget` drops a
//!   name from `queues` and leaves its jobs where they are, as in qless.)
//!
//! [`run_property`] applies random sequences of calls (puts with delays,
//! priorities, dependencies, throttles and retries; pops, heartbeats,
//! completes with and without a next queue, fails, retries, cancels,
//! dependency changes, priority, requeue, tags, pauses, timeouts,
//! recurring templates, unfail, queue.forget, config changes, and clock jumps past lock
//! expiry and delays) to a fresh store through [`Harness`], and runs
//! [`check`] after every step. A call may be refused (a wrong worker, a
//! job in the wrong state): that is part of the test, as long as the
//! refusal is not a store error. `PROPTEST_CASES` sets the number of
//! sequences (default: the caller's).

use std::collections::{BTreeMap, BTreeSet};

use clew_core::command::JobsListing;
use clew_core::{Command, Engine, ErrorKind, JobState, Reply, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::{Harness, TestStore};

/// Enough to list every job of a small store in one page.
const ALL: i64 = 1_000_000;

/// The queue sets a listing reads, and the states a job in it may have.
const LISTINGS: [(JobsListing, &str, &[JobState]); 6] = [
    (
        JobsListing::Waiting,
        "waiting",
        &[JobState::Waiting, JobState::Stalled],
    ),
    (JobsListing::Running, "running", &[JobState::Running]),
    (JobsListing::Stalled, "stalled", &[JobState::Running]),
    (JobsListing::Scheduled, "scheduled", &[JobState::Scheduled]),
    (JobsListing::Depends, "depends", &[JobState::Depends]),
    (JobsListing::Throttled, "throttled", &[JobState::Throttled]),
];

/// What [`check`] saw: where each job is listed.
#[derive(Debug, Default)]
pub struct Seen {
    /// Listing (`queue/waiting`, `failed/GROUP`, `complete`) of each job.
    pub place: BTreeMap<String, String>,
}

async fn exec(engine: &Engine, now: Timestamp, command: Command) -> Result<Reply, String> {
    let what = format!("{command:?}");
    engine
        .execute_at(now, command)
        .await
        .map_err(|e| format!("{what} failed: {e} ({:?})", e.kind()))
}

fn strings(reply: Reply, what: &str) -> Result<Vec<String>, String> {
    match reply {
        Reply::Strings(v) => Ok(v),
        other => Err(format!("{what}: unexpected reply {other:?}")),
    }
}

/// Checks the invariants at `now`; `known` are jids the caller has put or
/// seen (each must be either listed or gone). Returns where each listed
/// job is, or a description of the first broken invariant.
pub async fn check(
    engine: &Engine,
    now: Timestamp,
    known: &BTreeSet<String>,
) -> Result<Seen, String> {
    let mut seen = Seen::default();
    let mut place = |jid: String, at: String| -> Result<(), String> {
        if let Some(before) = seen.place.insert(jid.clone(), at.clone()) {
            return Err(format!(
                "job {jid} is listed twice: in {before} and in {at}"
            ));
        }
        Ok(())
    };
    let mut queues = match exec(engine, now, Command::Queues { queue: None }).await? {
        Reply::Queues(q) => q,
        other => return Err(format!("queues: unexpected reply {other:?}")),
    };
    // `queue.forget` (DELETE /v1/queues/NAME) forgets a name and leaves its
    // jobs alone (qless's rule): the queues of known jobs are read too.
    let mut names: BTreeSet<String> = queues.iter().map(|c| c.name.clone()).collect();
    for jid in known {
        if let Reply::Job(Some(j)) = exec(engine, now, Command::Get { jid: jid.clone() }).await? {
            let q = &j.record.queue;
            if !q.is_empty() && names.insert(q.clone()) {
                match exec(
                    engine,
                    now,
                    Command::Queues {
                        queue: Some(q.clone()),
                    },
                )
                .await?
                {
                    Reply::Queue(c) => queues.push(c),
                    other => return Err(format!("queues {q}: unexpected reply {other:?}")),
                }
            }
        }
    }
    let mut expect: BTreeMap<String, (String, &'static [JobState])> = BTreeMap::new();
    // qless's rule, kept for compatibility (conformance case
    // `jobs_running_and_stalled_both_include_expiry_equal_to_now`): a lock
    // expiring exactly at `now` is listed by both `jobs running` (>= now)
    // and `jobs stalled` (<= now), while `queues` counts it stalled only.
    let mut boundary: BTreeSet<String> = BTreeSet::new();
    for counts in &queues {
        let q = &counts.name;
        let mut listed: Vec<(JobsListing, &str, &[JobState], Vec<String>)> = Vec::new();
        for (listing, name, states) in LISTINGS {
            let jids = strings(
                exec(
                    engine,
                    now,
                    Command::Jobs {
                        listing,
                        queue: q.clone(),
                        offset: 0,
                        count: ALL,
                    },
                )
                .await?,
                name,
            )?;
            listed.push((listing, name, states, jids));
        }
        let running: BTreeSet<&String> = listed[1].3.iter().collect();
        let both: BTreeSet<String> = listed[2]
            .3
            .iter()
            .filter(|j| running.contains(j))
            .cloned()
            .collect();
        for (listing, name, states, jids) in &listed {
            let c = &counts.counts;
            let counted = match listing {
                JobsListing::Waiting => c.waiting,
                JobsListing::Running => c.running + both.len() as i64,
                JobsListing::Stalled => c.stalled,
                JobsListing::Scheduled => c.scheduled,
                JobsListing::Depends => c.depends,
                _ => c.throttled,
            };
            if counted != jids.len() as i64 {
                return Err(format!(
                    "queue {q}: the count of {name} is {counted}, its listing has {} ({jids:?})",
                    jids.len()
                ));
            }
            for jid in jids {
                if *listing == JobsListing::Stalled && both.contains(jid) {
                    continue; // placed as running; its expiry is checked below
                }
                place(jid.clone(), format!("{q}/{name}"))?;
                expect.insert(jid.clone(), (q.clone(), states));
            }
        }
        boundary.extend(both);
    }
    let groups = match exec(
        engine,
        now,
        Command::Failed {
            group: None,
            start: 0,
            limit: ALL,
        },
    )
    .await?
    {
        Reply::FailedGroups(g) => g,
        other => return Err(format!("failed: unexpected reply {other:?}")),
    };
    let mut failed_group: BTreeMap<String, String> = BTreeMap::new();
    for (group, count) in groups {
        let (total, jids) = match exec(
            engine,
            now,
            Command::Failed {
                group: Some(group.clone()),
                start: 0,
                limit: ALL,
            },
        )
        .await?
        {
            Reply::Page { total, jobs } => (total, jobs),
            other => return Err(format!("failed {group}: unexpected reply {other:?}")),
        };
        if total != count || jids.len() as i64 != count {
            return Err(format!(
                "failure group {group}: counted {count}, total {total}, listed {}",
                jids.len()
            ));
        }
        for jid in jids {
            place(jid.clone(), format!("failed/{group}"))?;
            failed_group.insert(jid, group.clone());
        }
    }
    let complete = strings(
        exec(
            engine,
            now,
            Command::JobsComplete {
                offset: 0,
                count: ALL,
            },
        )
        .await?,
        "jobs complete",
    )?;
    for jid in complete {
        place(jid, "complete".into())?;
    }
    // Every listed job exists, in the listing's state and queue.
    for (jid, at) in &seen.place {
        let job = match exec(engine, now, Command::Get { jid: jid.clone() }).await? {
            Reply::Job(Some(j)) => j,
            Reply::Job(None) => {
                return Err(format!("job {jid} is listed in {at} but get finds nothing"))
            }
            other => return Err(format!("get {jid}: unexpected reply {other:?}")),
        };
        let r = &job.record;
        let state = r.state;
        let ok = if let Some((queue, states)) = expect.get(jid) {
            states.contains(&state) && r.queue == *queue
        } else if let Some(group) = failed_group.get(jid) {
            state == JobState::Failed && r.failure.as_ref().map(|f| &f.group) == Some(group)
        } else {
            state == JobState::Complete
        };
        if !ok {
            return Err(format!(
                "job {jid} is listed in {at} but is {} in queue {:?} (failure {:?})",
                state.as_str(),
                r.queue,
                r.failure.as_ref().map(|f| &f.group)
            ));
        }
        if boundary.contains(jid) && r.expires != now {
            return Err(format!(
                "job {jid} is listed as running and as stalled, its lock expiring at {:?}, not now ({now:?})",
                r.expires
            ));
        }
        // A timed-out job keeps its worker's name (qless's `timeout`).
        let holds = !r.worker.is_empty();
        if (state == JobState::Running && !holds)
            || (holds && !matches!(state, JobState::Running | JobState::Stalled))
        {
            return Err(format!(
                "job {jid} is {} with worker {:?}",
                state.as_str(),
                r.worker
            ));
        }
    }
    // No job the caller knows of exists unlisted.
    for jid in known {
        if seen.place.contains_key(jid) {
            continue;
        }
        if let Reply::Job(Some(j)) = exec(engine, now, Command::Get { jid: jid.clone() }).await? {
            return Err(format!(
                "job {jid} exists ({} in queue {:?}) but no listing has it",
                j.record.state.as_str(),
                j.record.queue
            ));
        }
    }
    Ok(seen)
}

/// One call of a random sequence (indices pick from small pools so that
/// calls meet the same jobs, queues and workers).
#[derive(Clone, Debug)]
pub enum Op {
    /// `put` (or `requeue` with `must_exist`).
    Put {
        /// Job index.
        jid: u8,
        /// Queue index.
        queue: u8,
        /// Delay in seconds.
        delay: u8,
        /// Priority.
        priority: i8,
        /// Retries.
        retries: u8,
        /// Jobs it depends on.
        depends: Vec<u8>,
        /// Tag index, if any.
        tag: Option<u8>,
        /// Throttle index, if any.
        throttle: Option<u8>,
        /// `requeue` instead of `put`.
        must_exist: bool,
    },
    /// `pop`.
    Pop {
        /// Queue index.
        queue: u8,
        /// Worker index.
        worker: u8,
        /// How many.
        count: u8,
    },
    /// `heartbeat`.
    Heartbeat {
        /// Job index.
        jid: u8,
        /// Worker index.
        worker: u8,
    },
    /// `complete`, maybe into a next queue with a delay.
    Complete {
        /// Job index.
        jid: u8,
        /// Worker index.
        worker: u8,
        /// Queue index the job was popped from (may be wrong).
        queue: u8,
        /// Next queue index, and delay.
        next: Option<(u8, u8)>,
    },
    /// `fail`.
    Fail {
        /// Job index.
        jid: u8,
        /// Worker index.
        worker: u8,
        /// Group index.
        group: u8,
    },
    /// `retry`.
    Retry {
        /// Job index.
        jid: u8,
        /// Queue index.
        queue: u8,
        /// Worker index.
        worker: u8,
        /// Delay.
        delay: u8,
    },
    /// `cancel`.
    Cancel {
        /// Job index.
        jid: u8,
    },
    /// `depends on` / `depends off`.
    Depends {
        /// Job index.
        jid: u8,
        /// The other job.
        on: u8,
        /// Add (else remove).
        add: bool,
    },
    /// `priority`.
    Priority {
        /// Job index.
        jid: u8,
        /// Priority.
        priority: i8,
    },
    /// `tag add`.
    Tag {
        /// Job index.
        jid: u8,
        /// Tag index.
        tag: u8,
    },
    /// `pause` / `unpause`.
    Pause {
        /// Queue index.
        queue: u8,
        /// Pause (else unpause).
        pause: bool,
    },
    /// `timeout`.
    Timeout {
        /// Job index.
        jid: u8,
    },
    /// `recur` with an interval.
    Recur {
        /// Template index.
        template: u8,
        /// Queue index.
        queue: u8,
        /// Interval in seconds.
        interval: u8,
    },
    /// `unrecur`.
    Unrecur {
        /// Template index.
        template: u8,
    },
    /// `unfail`.
    Unfail {
        /// Queue index.
        queue: u8,
        /// Group index.
        group: u8,
    },
    /// `throttle.set`.
    Throttle {
        /// Throttle index.
        throttle: u8,
        /// Slots.
        max: u8,
    },
    /// `queue.forget` (its jobs stay).
    Forget {
        /// Queue index.
        queue: u8,
    },
    /// `config.set heartbeat` (seconds).
    Heartbeats {
        /// Seconds.
        secs: u8,
    },
    /// The clock moves on.
    Wait {
        /// Seconds.
        secs: u16,
    },
}

const JOBS: u8 = 8;
const QUEUES: u8 = 3;
const WORKERS: u8 = 2;

fn jid(i: u8) -> String {
    format!("j{}", i % JOBS)
}
fn queue(i: u8) -> String {
    format!("q{}", i % QUEUES)
}
fn worker(i: u8) -> String {
    format!("w{}", i % WORKERS)
}

/// A strategy for one call.
pub fn op() -> impl Strategy<Value = Op> {
    let j = 0..JOBS;
    let q = 0..QUEUES;
    let w = 0..WORKERS;
    prop_oneof![
        6 => (
            j.clone(),
            q.clone(),
            prop_oneof![3 => Just(0u8), 1 => 1u8..90],
            -2i8..3,
            0u8..3,
            proptest::collection::vec(0..JOBS, 0..2),
            proptest::option::of(0u8..3),
            proptest::option::weighted(0.15, 0u8..2),
            proptest::bool::weighted(0.15),
        )
            .prop_map(
                |(jid, queue, delay, priority, retries, depends, tag, throttle, must_exist)| {
                    Op::Put {
                        jid,
                        queue,
                        delay,
                        priority,
                        retries,
                        depends,
                        tag,
                        throttle,
                        must_exist,
                    }
                }
            ),
        6 => (q.clone(), w.clone(), 1u8..4)
            .prop_map(|(queue, worker, count)| Op::Pop { queue, worker, count }),
        2 => (j.clone(), w.clone()).prop_map(|(jid, worker)| Op::Heartbeat { jid, worker }),
        5 => (
            j.clone(),
            w.clone(),
            q.clone(),
            proptest::option::weighted(0.3, (0..QUEUES, prop_oneof![Just(0u8), 1u8..60]))
        )
            .prop_map(|(jid, worker, queue, next)| Op::Complete {
                jid,
                worker,
                queue,
                next
            }),
        3 => (j.clone(), w.clone(), 0u8..2)
            .prop_map(|(jid, worker, group)| Op::Fail { jid, worker, group }),
        2 => (j.clone(), q.clone(), w.clone(), prop_oneof![Just(0u8), 1u8..60])
            .prop_map(|(jid, queue, worker, delay)| Op::Retry {
                jid,
                queue,
                worker,
                delay
            }),
        1 => j.clone().prop_map(|jid| Op::Cancel { jid }),
        2 => (j.clone(), j.clone(), any::<bool>())
            .prop_map(|(jid, on, add)| Op::Depends { jid, on, add }),
        1 => (j.clone(), -3i8..4).prop_map(|(jid, priority)| Op::Priority { jid, priority }),
        1 => (j.clone(), 0u8..3).prop_map(|(jid, tag)| Op::Tag { jid, tag }),
        1 => (q.clone(), any::<bool>()).prop_map(|(queue, pause)| Op::Pause { queue, pause }),
        1 => j.clone().prop_map(|jid| Op::Timeout { jid }),
        1 => (0u8..2, q.clone(), 1u8..120).prop_map(|(template, queue, interval)| Op::Recur {
            template,
            queue,
            interval
        }),
        1 => (0u8..2).prop_map(|template| Op::Unrecur { template }),
        1 => (q.clone(), 0u8..2).prop_map(|(queue, group)| Op::Unfail { queue, group }),
        1 => (0u8..2, 0u8..3).prop_map(|(throttle, max)| Op::Throttle { throttle, max }),
        1 => (1u8..90).prop_map(|secs| Op::Heartbeats { secs }),
        1 => q.clone().prop_map(|queue| Op::Forget { queue }),
        4 => prop_oneof![1u16..30, 30u16..200, Just(60u16), Just(70u16)]
            .prop_map(|secs| Op::Wait { secs }),
    ]
}

impl Op {
    /// The qless call (command name and arguments), or `None` for a wait.
    pub fn call(&self) -> Option<(&'static str, Vec<String>)> {
        let s = |v: &str| v.to_owned();
        Some(match self {
            Op::Put {
                jid: j,
                queue: q,
                delay,
                priority,
                retries,
                depends,
                tag,
                throttle,
                must_exist,
            } => {
                let mut a = vec![
                    s("fuzz"),
                    queue(*q),
                    jid(*j),
                    s("Klass"),
                    s("{}"),
                    delay.to_string(),
                    s("priority"),
                    priority.to_string(),
                    s("retries"),
                    retries.to_string(),
                ];
                let deps: Vec<String> = depends.iter().map(|d| jid(*d)).collect();
                a.push(s("depends"));
                a.push(serde_json::to_string(&deps).unwrap_or_default());
                if let Some(t) = tag {
                    a.push(s("tags"));
                    a.push(format!("[\"t{t}\"]"));
                }
                if let Some(t) = throttle {
                    a.push(s("throttles"));
                    a.push(format!("[\"th{t}\"]"));
                }
                (if *must_exist { "requeue" } else { "put" }, a)
            }
            Op::Pop {
                queue: q,
                worker: w,
                count,
            } => ("pop", vec![queue(*q), worker(*w), count.to_string()]),
            Op::Heartbeat { jid: j, worker: w } => ("heartbeat", vec![jid(*j), worker(*w)]),
            Op::Complete {
                jid: j,
                worker: w,
                queue: q,
                next,
            } => {
                let mut a = vec![jid(*j), worker(*w), queue(*q), s("{}")];
                if let Some((n, delay)) = next {
                    a.extend([s("next"), queue(*n), s("delay"), delay.to_string()]);
                }
                ("complete", a)
            }
            Op::Fail {
                jid: j,
                worker: w,
                group,
            } => (
                "fail",
                vec![jid(*j), worker(*w), format!("g{group}"), s("it broke")],
            ),
            Op::Retry {
                jid: j,
                queue: q,
                worker: w,
                delay,
            } => (
                "retry",
                vec![jid(*j), queue(*q), worker(*w), delay.to_string()],
            ),
            Op::Cancel { jid: j } => ("cancel", vec![jid(*j)]),
            Op::Depends { jid: j, on, add } => (
                "depends",
                vec![jid(*j), s(if *add { "on" } else { "off" }), jid(*on)],
            ),
            Op::Priority { jid: j, priority } => ("priority", vec![jid(*j), priority.to_string()]),
            Op::Tag { jid: j, tag } => ("tag", vec![s("add"), jid(*j), format!("t{tag}")]),
            Op::Pause { queue: q, pause } => {
                (if *pause { "pause" } else { "unpause" }, vec![queue(*q)])
            }
            Op::Timeout { jid: j } => ("timeout", vec![jid(*j)]),
            Op::Recur {
                template,
                queue: q,
                interval,
            } => (
                "recur",
                vec![
                    queue(*q),
                    format!("r{template}"),
                    s("Klass"),
                    s("{}"),
                    s("interval"),
                    interval.to_string(),
                    s("0"),
                ],
            ),
            Op::Unrecur { template } => ("unrecur", vec![format!("r{template}")]),
            Op::Unfail { queue: q, group } => ("unfail", vec![queue(*q), format!("g{group}")]),
            Op::Throttle { throttle, max } => (
                "throttle.set",
                vec![format!("th{throttle}"), max.to_string()],
            ),
            Op::Forget { queue: q } => ("queue.forget", vec![queue(*q)]),
            Op::Heartbeats { secs } => ("config.set", vec![s("heartbeat"), secs.to_string()]),
            Op::Wait { .. } => return None,
        })
    }
}

/// Runs `ops` on `h` (from 1,700,000,000 s), checking the invariants after
/// every call.
pub fn run_ops(h: &Harness, ops: &[Op]) -> Result<(), String> {
    let mut now = 1_700_000_000.0_f64;
    let mut known: BTreeSet<String> = (0..JOBS).map(jid).collect();
    for (i, op) in ops.iter().enumerate() {
        match op.call() {
            None => {
                if let Op::Wait { secs } = op {
                    now += f64::from(*secs);
                }
            }
            Some((command, args)) => {
                if let Err(e) = h.call(
                    command,
                    now,
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                ) {
                    if e.kind() == ErrorKind::Store {
                        return Err(format!("step {i}: {command} {args:?}: store error: {e}"));
                    }
                }
            }
        }
        let at = Timestamp::from_secs_f64(now).ok_or("time out of range")?;
        let seen = h
            .block_on(check(h.engine(), at, &known))
            .map_err(|e| format!("after step {i} ({op:?}) at {now}: {e}"))?;
        known.extend(seen.place.into_keys());
    }
    Ok(())
}

/// The property test: `cases` random sequences of up to `steps` calls,
/// each on a fresh store from `factory` (`None`: skipped). The
/// `PROPTEST_CASES` environment variable overrides `cases`.
///
/// # Panics
/// With the shortest failing sequence found, when an invariant breaks.
pub fn run_property(factory: fn() -> Option<TestStore>, cases: u32, steps: usize) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let skipped = std::cell::Cell::new(false);
    let result = runner.run(&proptest::collection::vec(op(), 1..steps), |ops| {
        let Some(store) = factory() else {
            skipped.set(true);
            return Ok(());
        };
        let h = Harness::new(store);
        let r = run_ops(&h, &ops);
        h.close();
        r.map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("store invariants broken: {e}");
    }
    if skipped.get() {
        eprintln!("store unavailable: invariant property skipped");
    }
}
