//! Conformance cases: throttles (at most N jobs holding a named throttle
//! run at once, across queues; see `clew_core::throttle`).

#[allow(unused_imports)]
use crate::prelude::*;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clew_core::Engine;

/// Puts a job holding the throttles `names` (a JSON list).
#[track_caller]
fn put_t(t: &Harness, now: f64, queue: &str, jid: &str, names: &str) {
    t.ok(
        "put",
        now,
        &["w", queue, jid, "K", "{}", "0", "throttles", names],
    );
}

/// `throttle.get NAME` as `(running, pending)`.
#[track_caller]
fn counts(t: &Harness, name: &str) -> (i64, i64) {
    let v = t.ok("throttle.get", 50.0, &[name]);
    (
        v["running"].as_i64().expect("running"),
        v["pending"].as_i64().expect("pending"),
    )
}

/// A throttle `t` of 1; `a` and `b` in `q` hold it; `a` runs on `w`, `b`
/// was held back by the pop that found the throttle full.
#[track_caller]
fn one_running_one_held(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1"]);
    put_t(t, 1.0, "q", "a", r#"["t"]"#);
    put_t(t, 2.0, "q", "b", r#"["t"]"#);
    assert_eq!(t.pop_jids(3.0, "q", "w", "1"), vec!["a"]);
    assert_eq!(t.pop_jids(4.0, "q", "w2", "1"), Vec::<String>::new());
    assert_eq!(t.state("b"), "throttled");
    assert_eq!(counts(t, "t"), (1, 1));
}

/// After `a` let go of its slot: `b` is waiting again and the next pop
/// takes it.
#[track_caller]
fn b_runs_next(t: &Harness) {
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(counts(t, "t"), (0, 0));
    assert_eq!(t.pop_jids(20.0, "q", "w3", "5"), vec!["b"]);
    assert_eq!(counts(t, "t"), (1, 0));
}

/// Set, get, list and delete; the reply shapes.
pub fn throttle_set_get_list_delete(t: &Harness) {
    assert_eq!(
        t.ok("throttle.set", 0.0, &["cust-1", "3"]),
        json!({"name": "cust-1", "max": 3, "running": 0, "pending": 0})
    );
    t.ok("throttle.set", 0.0, &["api", "0"]);
    t.ok("throttle.set", 0.0, &["cust-1", "4"]);
    assert_eq!(t.ok("throttle.get", 0.0, &["cust-1"])["max"], json!(4));
    assert_eq!(
        t.ok("throttle.list", 0.0, &[]),
        json!([
            {"name": "api", "max": 0, "running": 0, "pending": 0},
            {"name": "cust-1", "max": 4, "running": 0, "pending": 0},
        ])
    );
    assert_eq!(t.ok("throttle.delete", 0.0, &["api"]), Value::Null);
    assert_eq!(t.ok("throttle.list", 0.0, &[]).as_array().unwrap().len(), 1);
    t.err_with(
        "throttle.get",
        0.0,
        &["api"],
        ErrorKind::NotFound,
        "No throttle api",
    );
    t.err_with(
        "throttle.delete",
        0.0,
        &["api"],
        ErrorKind::NotFound,
        "No throttle api",
    );
}

/// Bad arguments are refused and change nothing.
pub fn throttle_bad_arguments_are_refused(t: &Harness) {
    t.err_with(
        "throttle.set",
        0.0,
        &["t", "-1"],
        ErrorKind::Invalid,
        "must not be negative",
    );
    t.err_with("throttle.set", 0.0, &["t", "x"], ErrorKind::Invalid, "max");
    t.err_with("throttle.set", 0.0, &["", "1"], ErrorKind::Invalid, "name");
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j", "K", "{}", "0", "throttles", r#"["ok", ""]"#],
        ErrorKind::Invalid,
        "throttles",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j", "K", "{}", "0", "throttles", "t"],
        ErrorKind::Invalid,
        "throttles",
    );
    assert_eq!(t.ok("throttle.list", 0.0, &[]), json!([]));
    assert_eq!(t.get("j"), Value::Null);
}

/// The job JSON shows its throttles (deduplicated), only when it has some;
/// a re-put without throttles keeps them, an empty list clears them.
pub fn throttle_job_shows_its_throttles(t: &Harness) {
    t.put(0.0, "q", "plain");
    assert!(t.get("plain").get("throttles").is_none());
    put_t(t, 1.0, "q", "j", r#"["a", "b", "a"]"#);
    assert_eq!(t.get("j")["throttles"], json!(["a", "b"]));
    t.put(2.0, "q", "j");
    assert_eq!(t.get("j")["throttles"], json!(["a", "b"]));
    put_t(t, 3.0, "q", "j", "[]");
    assert!(t.get("j").get("throttles").is_none());
}

/// A full throttle holds jobs back: they leave the work list in the
/// throttled state with a history entry naming the throttle, and are
/// listed and counted as throttled.
pub fn throttle_holds_back_jobs_beyond_max(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "2"]);
    for (i, j) in ["a", "b", "c", "d"].iter().enumerate() {
        put_t(t, i as f64, "q", j, r#"["t"]"#);
    }
    t.put(5.0, "q", "free");
    assert_eq!(t.pop_jids(10.0, "q", "w", "5"), vec!["a", "b", "free"]);
    assert_eq!(t.state("c"), "throttled");
    let c = t.get("c");
    let last = c["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["what"], "throttled");
    assert_eq!(last["throttle"], "t");
    assert_eq!(t.ok("jobs", 10.0, &["throttled", "q"]), json!(["c", "d"]));
    let q = t.ok("queues", 10.0, &["q"]);
    assert_eq!(q["throttled"], 2);
    assert_eq!(q["waiting"], 0);
    assert_eq!(q["running"], 3);
    assert_eq!(counts(t, "t"), (2, 2));
    // Held back jobs are not in the work list: peek and length skip them.
    assert_eq!(t.ok("peek", 10.0, &["q", "5"]), json!([]));
    assert_eq!(t.ok("length", 10.0, &["q"]), json!(3));
}

/// One throttle spans queues: a job of another queue waits for the slot.
pub fn throttle_spans_queues(t: &Harness) {
    t.ok("throttle.set", 0.0, &["cust", "1"]);
    put_t(t, 1.0, "q1", "a", r#"["cust"]"#);
    put_t(t, 2.0, "q2", "b", r#"["cust"]"#);
    assert_eq!(t.pop_jids(3.0, "q1", "w", "1"), vec!["a"]);
    assert_eq!(t.pop_jids(4.0, "q2", "w", "1"), Vec::<String>::new());
    assert_eq!(t.state("b"), "throttled");
    t.ok("complete", 5.0, &["a", "w", "q1", "{}"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(t.pop_jids(6.0, "q2", "w", "1"), vec!["b"]);
}

/// A job needs a slot of every one of its throttles; an undefined
/// throttle or a maximum of 0 is unlimited.
pub fn throttle_job_needs_every_throttle(t: &Harness) {
    t.ok("throttle.set", 0.0, &["x", "1"]);
    t.ok("throttle.set", 0.0, &["y", "2"]);
    t.ok("throttle.set", 0.0, &["zero", "0"]);
    put_t(t, 1.0, "q", "a", r#"["x", "zero", "undefined"]"#);
    put_t(t, 2.0, "q", "b", r#"["y"]"#);
    put_t(t, 3.0, "q", "c", r#"["y", "x"]"#);
    put_t(t, 4.0, "q", "d", r#"["undefined", "zero"]"#);
    assert_eq!(t.pop_jids(5.0, "q", "w", "10"), vec!["a", "b", "d"]);
    assert_eq!(t.state("c"), "throttled");
    let c = t.get("c");
    let last = c["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["throttle"], "x", "waits on the full one");
    assert_eq!(counts(t, "y"), (1, 0));
    assert_eq!(counts(t, "x"), (1, 1));
    assert_eq!(counts(t, "zero"), (2, 0));
    t.ok("complete", 6.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.pop_jids(7.0, "q", "w", "10"), vec!["c"]);
    assert_eq!(counts(t, "y"), (2, 0));
}

/// Freed slots promote waiting jobs in their original order (priority,
/// then put order), only as many as there are free slots.
pub fn throttle_promotes_in_original_order(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1"]);
    put_t(t, 1.0, "q", "a", r#"["t"]"#);
    put_t(t, 2.0, "q", "b", r#"["t"]"#);
    put_t(t, 3.0, "q", "c", r#"["t"]"#);
    t.ok(
        "put",
        4.0,
        &[
            "w",
            "q",
            "d",
            "K",
            "{}",
            "0",
            "throttles",
            r#"["t"]"#,
            "priority",
            "5",
        ],
    );
    assert_eq!(t.pop_jids(5.0, "q", "w", "1"), vec!["d"]);
    assert_eq!(t.pop_jids(6.0, "q", "w", "5"), Vec::<String>::new());
    assert_eq!(counts(t, "t"), (1, 3));
    t.ok("complete", 7.0, &["d", "w", "q", "{}"]);
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.state("b"), "throttled");
    assert_eq!(t.pop_jids(8.0, "q", "w", "5"), vec!["a"]);
    t.ok("complete", 9.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.pop_jids(10.0, "q", "w", "5"), vec!["b"]);
    t.ok("complete", 11.0, &["b", "w", "q", "{}"]);
    assert_eq!(t.pop_jids(12.0, "q", "w", "5"), vec!["c"]);
}

/// Raising a throttle promotes as many waiting jobs as it frees; deleting
/// it promotes them all.
pub fn throttle_raise_and_delete_promote(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1"]);
    for (i, j) in ["a", "b", "c", "d"].iter().enumerate() {
        put_t(t, i as f64, "q", j, r#"["t"]"#);
    }
    assert_eq!(t.pop_jids(5.0, "q", "w", "5"), vec!["a"]);
    assert_eq!(counts(t, "t"), (1, 3));
    assert_eq!(
        t.ok("throttle.set", 6.0, &["t", "2"]),
        json!({"name": "t", "max": 2, "running": 1, "pending": 2})
    );
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(t.state("c"), "throttled");
    t.ok("throttle.delete", 7.0, &["t"]);
    assert_eq!(t.state("c"), "waiting");
    assert_eq!(t.state("d"), "waiting");
    assert_eq!(t.pop_jids(8.0, "q", "w", "5"), vec!["b", "c", "d"]);
}

/// Complete frees the slot.
pub fn throttle_freed_by_complete(t: &Harness) {
    one_running_one_held(t);
    t.ok("complete", 10.0, &["a", "w", "q", "{}"]);
    b_runs_next(t);
}

/// Complete into another queue (advance) frees the slot.
pub fn throttle_freed_by_complete_next(t: &Harness) {
    one_running_one_held(t);
    t.ok("complete", 10.0, &["a", "w", "q", "{}", "next", "q2"]);
    assert_eq!(t.state("a"), "waiting");
    b_runs_next(t);
}

/// Fail frees the slot.
pub fn throttle_freed_by_fail(t: &Harness) {
    one_running_one_held(t);
    t.ok("fail", 10.0, &["a", "w", "g", "boom", "{}"]);
    b_runs_next(t);
}

/// Retry frees the slot (the retried job waits behind `b` for it).
pub fn throttle_freed_by_retry(t: &Harness) {
    one_running_one_held(t);
    t.ok("retry", 10.0, &["a", "q", "w"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(counts(t, "t"), (0, 0));
    assert_eq!(t.pop_jids(20.0, "q", "w3", "5"), vec!["b"]);
    assert_eq!(t.state("a"), "throttled");
}

/// Release frees the slot.
pub fn throttle_freed_by_release(t: &Harness) {
    one_running_one_held(t);
    t.ok("release", 10.0, &["a", "w"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(counts(t, "t"), (0, 0));
}

/// Cancel frees the slot; cancelling a held-back job forgets it.
pub fn throttle_freed_by_cancel(t: &Harness) {
    one_running_one_held(t);
    put_t(t, 5.0, "q", "c", r#"["t"]"#);
    assert_eq!(t.pop_jids(6.0, "q", "w2", "1"), Vec::<String>::new());
    assert_eq!(counts(t, "t"), (1, 2));
    t.ok("cancel", 7.0, &["c"]);
    assert_eq!(counts(t, "t"), (1, 1));
    t.ok("cancel", 10.0, &["a"]);
    b_runs_next(t);
}

/// Timeout frees the slot (the timed-out job goes to the front, so it is
/// taken before `b`, which was promoted).
pub fn throttle_freed_by_timeout(t: &Harness) {
    one_running_one_held(t);
    t.ok("timeout", 10.0, &["a"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(counts(t, "t"), (0, 0));
    assert_eq!(t.pop_jids(20.0, "q", "w3", "5"), vec!["a"]);
    assert_eq!(t.state("b"), "throttled");
}

/// A re-put of the running job (and a move to another queue) frees the slot.
pub fn throttle_freed_by_put_and_move(t: &Harness) {
    one_running_one_held(t);
    t.put(10.0, "q2", "a");
    assert_eq!(t.state("a"), "waiting");
    b_runs_next(t);
    // Re-putting a held-back job takes it out of the throttle's waiters.
    put_t(t, 21.0, "q", "c", r#"["t"]"#);
    assert_eq!(t.pop_jids(22.0, "q", "w", "1"), Vec::<String>::new());
    assert_eq!(counts(t, "t"), (1, 1));
    t.put(23.0, "q", "c");
    assert_eq!(t.state("c"), "waiting");
    assert_eq!(counts(t, "t"), (1, 0));
    // A re-put that drops the throttles frees the slot as well.
    put_t(t, 24.0, "q", "d", r#"["t"]"#);
    assert_eq!(t.pop_jids(25.0, "q", "w", "5"), Vec::<String>::new());
    assert_eq!(counts(t, "t"), (1, 2));
    put_t(t, 26.0, "q", "b", "[]");
    assert_eq!(t.state("c"), "waiting");
    assert_eq!(t.state("d"), "throttled");
    assert_eq!(counts(t, "t"), (0, 1));
}

/// An expired lock keeps its slot until a pop hands it over (the new
/// holder keeps it) or fails it (then it frees).
pub fn throttle_expired_lock_holds_until_handed_over(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok("config.set", 0.0, &["heartbeat", "10"]);
    t.ok("throttle.set", 0.0, &["t", "1"]);
    t.ok(
        "put",
        1.0,
        &[
            "w",
            "q",
            "a",
            "K",
            "{}",
            "0",
            "throttles",
            r#"["t"]"#,
            "retries",
            "1",
        ],
    );
    put_t(t, 2.0, "q2", "b", r#"["t"]"#);
    assert_eq!(t.pop_jids(3.0, "q", "w", "1"), vec!["a"]);
    // Expired at 13, but still holding: b is held back.
    assert_eq!(t.pop_jids(20.0, "q2", "w", "1"), Vec::<String>::new());
    assert_eq!(t.state("b"), "throttled");
    // Handed over to w2: still holding.
    assert_eq!(t.pop_jids(21.0, "q", "w2", "1"), vec!["a"]);
    assert_eq!(counts(t, "t"), (1, 1));
    // Expires again with no retries left: the pop fails it, b goes back.
    assert_eq!(t.pop_jids(40.0, "q", "w3", "1"), Vec::<String>::new());
    assert_eq!(t.state("a"), "failed");
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(t.pop_jids(41.0, "q2", "w", "1"), vec!["b"]);
}

/// Completed jobs that expire, and the holders' rows, leave no trace: the
/// counts stay exact through a long mixed run.
pub fn throttle_counts_stay_exact(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "2"]);
    t.ok("config.set", 0.0, &["jobs-history-count", "3"]);
    for i in 0..12 {
        put_t(
            t,
            i as f64,
            &format!("q{}", i % 3),
            &format!("j{i}"),
            r#"["t"]"#,
        );
    }
    let mut now = 20.0;
    let mut done = 0;
    while done < 12 {
        assert!(now < 100.0, "stuck after {done} jobs");
        now += 1.0;
        let mut got = Vec::new();
        for q in ["q0", "q1", "q2"] {
            for jid in t.pop_jids(now, q, "w", "5") {
                got.push((q, jid));
            }
        }
        let (running, _) = counts(t, "t");
        assert!(running <= 2, "at most 2 hold the throttle, {running} do");
        assert!(got.len() <= 2);
        for (q, jid) in got {
            t.ok("complete", now, &[&jid, "w", q, "{}"]);
            done += 1;
        }
    }
    assert_eq!(counts(t, "t"), (0, 0));
}

/// How long the race may run before it is declared stuck.
const RACE_DEADLINE: Duration = Duration::from_secs(120);

/// Several workers (each on its own thread, round-robin over the engines)
/// pop and complete 60 jobs holding a throttle of 3 across three queues,
/// at once. Each worker counts the throttled jobs it holds into a shared
/// counter between its pop's reply and its complete (so the counter never
/// exceeds the store's count of holders): it must never pass 3, nor the
/// throttle's own running count; and every job completes.
pub fn race(engines: &[Engine]) {
    const JOBS: usize = 60;
    const WORKERS: usize = 6;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = &engines[0];
    let qless = |engine: &Engine, cmd: &str, args: &[&str]| -> Value {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        rt.block_on(engine.qless(cmd, Some(10.0), &args))
            .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"))
    };
    qless(first, "throttle.set", &["cust", "3"]);
    for i in 0..JOBS {
        let q = format!("q{}", i % 3);
        let jid = format!("j{i:03}");
        if i % 5 == 4 {
            qless(first, "put", &["w", &q, &jid, "K", "{}", "0"]);
        } else {
            let names = if i % 2 == 0 {
                r#"["cust"]"#
            } else {
                r#"["cust", "other"]"#
            };
            qless(
                first,
                "put",
                &["w", &q, &jid, "K", "{}", "0", "throttles", names],
            );
        }
    }
    let holding = Arc::new(AtomicI64::new(0));
    let peak = Arc::new(AtomicI64::new(0));
    let completed = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut threads = Vec::new();
    for w in 0..WORKERS {
        let engine = engines[w % engines.len()].clone();
        let (holding, peak, completed, stop) = (
            holding.clone(),
            peak.clone(),
            completed.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let worker = format!("w{w}");
            let call = |cmd: &str, args: &[&str]| -> Value {
                let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
                rt.block_on(engine.qless(cmd, Some(10.0), &args))
                    .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"))
            };
            let mut round = w;
            while !stop.load(Ordering::SeqCst) && completed.load(Ordering::SeqCst) < JOBS as i64 {
                assert!(started.elapsed() < RACE_DEADLINE, "the race is stuck");
                round += 1;
                let q = format!("q{}", round % 3);
                let popped = call("pop", &[&q, &worker, "2"]);
                let jobs = popped.as_array().cloned().unwrap_or_default();
                let mine: Vec<(String, bool)> = jobs
                    .iter()
                    .map(|j| {
                        let throttled = j["throttles"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|n| n == "cust"));
                        (j["jid"].as_str().unwrap().to_owned(), throttled)
                    })
                    .collect();
                let n = mine.iter().filter(|(_, t)| *t).count() as i64;
                let now = holding.fetch_add(n, Ordering::SeqCst) + n;
                peak.fetch_max(now, Ordering::SeqCst);
                if now > 3 {
                    stop.store(true, Ordering::SeqCst);
                    panic!("{now} jobs holding a throttle of 3 run at once");
                }
                let running = call("throttle.get", &["cust"])["running"].as_i64().unwrap();
                assert!(running <= 3, "the throttle counts {running} holders");
                if jobs.is_empty() {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                std::thread::sleep(Duration::from_millis(1));
                for (jid, throttled) in mine {
                    if throttled {
                        holding.fetch_sub(1, Ordering::SeqCst);
                    }
                    call("complete", &[&jid, &worker, &q, "{}"]);
                    completed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for th in threads {
        th.join().expect("a worker panicked");
    }
    assert_eq!(completed.load(Ordering::SeqCst), JOBS as i64);
    assert!(peak.load(Ordering::SeqCst) >= 1);
    let info = qless(first, "throttle.get", &["cust"]);
    assert_eq!(info["running"], 0);
    assert_eq!(info["pending"], 0);
    let done = qless(first, "jobs", &["complete", "0", "1000"]);
    assert_eq!(done.as_array().map(Vec::len), Some(JOBS));
}

/// The race on this store's engine (several threads through one engine).
pub fn throttle_of_3_never_runs_a_fourth_under_concurrent_pops(t: &Harness) {
    race(&[t.engine().clone()]);
}

/// `Store::flush` forgets throttles and their slots.
pub fn throttle_flush_forgets_throttles_and_slots(t: &Harness) {
    one_running_one_held(t);
    t.block_on(t.engine().store().flush()).expect("flush");
    assert_eq!(t.ok("throttle.list", 30.0, &[]), json!([]));
    t.ok("throttle.set", 30.0, &["t", "1"]);
    assert_eq!(counts(t, "t"), (0, 0));
}
