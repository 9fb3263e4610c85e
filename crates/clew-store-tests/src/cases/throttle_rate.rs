//! Conformance cases: throttle rate limits (at most N starts per PERIOD
//! seconds, a sliding window; see `clew_core::throttle::ThrottleRate`).

#[allow(unused_imports)]
use crate::prelude::*;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use clew_core::Engine;

/// Puts jobs `jids` in `q` holding throttle `t`, one a second from 1.0.
#[track_caller]
fn put_all(t: &Harness, jids: &[&str]) {
    for (i, jid) in jids.iter().enumerate() {
        t.ok(
            "put",
            1.0 + i as f64,
            &["w", "q", jid, "K", "{}", "0", "throttles", r#"["t"]"#],
        );
    }
}

/// The `reason` of a job's last `throttled` history entry (`None`: no
/// reason, i.e. a full concurrency maximum).
fn last_reason(t: &Harness, jid: &str) -> Option<String> {
    let job = t.get(jid);
    job["history"]
        .as_array()
        .expect("history")
        .iter()
        .rev()
        .find(|h| h["what"] == "throttled")
        .expect("a throttled entry")
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// N starts, then held back (state `throttled`, reason `rate`) until the
/// window passes; then the next pop takes it with no other write between.
/// `throttle.get` shows the rate and the starts in the window.
pub fn throttle_rate_n_starts_then_held_until_window_passes(t: &Harness) {
    assert_eq!(
        t.ok("throttle.set", 0.0, &["t", "0", "rate", "2", "60"]),
        json!({"name": "t", "max": 0, "running": 0, "pending": 0,
               "rate": {"limit": 2, "period": 60}, "started": 0})
    );
    put_all(t, &["a", "b", "c"]);
    assert_eq!(t.pop_jids(10.0, "q", "w", "5"), vec!["a", "b"]);
    assert_eq!(t.state("c"), "throttled");
    assert_eq!(last_reason(t, "c").as_deref(), Some("rate"));
    let info = t.ok("throttle.get", 10.0, &["t"]);
    assert_eq!(
        (info["started"].clone(), info["pending"].clone()),
        (json!(2), json!(1))
    );
    // Completing frees no start: the window still holds two.
    t.ok("complete", 11.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.state("c"), "throttled");
    assert_eq!(t.pop_jids(69.9, "q", "w", "5"), Vec::<String>::new());
    assert_eq!(t.state("c"), "throttled");
    // The queue's only waiting job is rate-held: the pop after the window
    // passed promotes and takes it.
    assert_eq!(t.pop_jids(70.0, "q", "w", "5"), vec!["c"]);
    assert_eq!(t.ok("throttle.get", 70.0, &["t"])["started"], json!(1));
    // Old starts leave the window (and the count) as time passes.
    assert_eq!(t.ok("throttle.get", 200.0, &["t"])["started"], json!(0));
    // Setting without a rate clears it.
    assert_eq!(
        t.ok("throttle.set", 200.0, &["t", "0"]),
        json!({"name": "t", "max": 0, "running": 2, "pending": 0})
    );
}

/// A peek after the window passed shows the rate-held job back in its
/// queue (peek promotes as pop does).
pub fn throttle_rate_peek_promotes_after_window(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "0", "rate", "1", "30"]);
    put_all(t, &["a", "b"]);
    assert_eq!(t.pop_jids(10.0, "q", "w", "5"), vec!["a"]);
    assert_eq!(jids(&t.ok("peek", 20.0, &["q", "5"])), Vec::<String>::new());
    assert_eq!(t.state("b"), "throttled");
    assert_eq!(jids(&t.ok("peek", 40.0, &["q", "5"])), vec!["b"]);
    assert_eq!(t.state("b"), "waiting");
}

/// With a concurrency maximum too: a freed slot promotes only up to the
/// window's room, and the job held by the rate waits for the window.
pub fn throttle_rate_with_concurrency_max(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1", "rate", "2", "60"]);
    put_all(t, &["a", "b", "c"]);
    assert_eq!(t.pop_jids(10.0, "q", "w", "1"), vec!["a"]);
    assert_eq!(t.pop_jids(11.0, "q", "w", "1"), Vec::<String>::new());
    assert_eq!(
        (t.state("b"), t.state("c")),
        ("throttled".into(), "throttled".into())
    );
    assert_eq!(last_reason(t, "b"), None);
    t.ok("complete", 12.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(t.pop_jids(13.0, "q", "w", "5"), vec!["b"]);
    // Its slot frees, but the window (starts at 10 and 13) is full.
    t.ok("complete", 14.0, &["b", "w", "q", "{}"]);
    assert_eq!(t.state("c"), "throttled");
    assert_eq!(t.pop_jids(15.0, "q", "w", "5"), Vec::<String>::new());
    assert_eq!(t.pop_jids(70.5, "q", "w", "5"), vec!["c"]);
    let info = t.ok("throttle.get", 70.5, &["t"]);
    assert_eq!(
        (info["running"].clone(), info["started"].clone()),
        (json!(1), json!(2))
    );
}

/// Bad rates are refused and define nothing.
pub fn throttle_rate_bad_arguments_are_refused(t: &Harness) {
    let bad: [(&[&str], &str); 6] = [
        (&["t", "1", "rate", "0", "60"], "limit"),
        (&["t", "1", "rate", "-3", "60"], "limit"),
        (&["t", "1", "rate", "2", "0"], "period"),
        (&["t", "1", "rate", "2", "-1"], "period"),
        (&["t", "1", "rate", "2"], "period"),
        (&["t", "1", "speed", "2", "3"], "rate"),
    ];
    for (args, needle) in bad {
        t.err_with("throttle.set", 0.0, args, ErrorKind::Invalid, needle);
    }
    assert_eq!(t.ok("throttle.list", 0.0, &[]), json!([]));
}

/// Workers on their own threads (round-robin over `engines`) pop at once
/// from a queue of 30 jobs under a rate of 5 per 60 s, all at the same
/// `now`: exactly 5 are handed out; at a `now` past the window, exactly 5
/// more. Never more than 5 starts in a window.
pub fn rate_race(engines: &[Engine]) {
    const JOBS: usize = 30;
    const WORKERS: usize = 6;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = &engines[0];
    let qless = |cmd: &str, now: f64, args: &[&str]| -> Value {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        rt.block_on(first.qless(cmd, Some(now), &args))
            .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"))
    };
    qless("throttle.set", 0.0, &["t", "0", "rate", "5", "60"]);
    for i in 0..JOBS {
        let jid = format!("j{i:03}");
        qless(
            "put",
            1.0,
            &["w", "q", &jid, "K", "{}", "0", "throttles", r#"["t"]"#],
        );
    }
    for (round, now) in [(1, 10.0), (2, 70.0)] {
        let popped = Arc::new(AtomicI64::new(0));
        let mut threads = Vec::new();
        for w in 0..WORKERS {
            let engine = engines[w % engines.len()].clone();
            let popped = popped.clone();
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let worker = format!("w{w}");
                for _ in 0..4 {
                    let args = vec!["q".to_owned(), worker.clone(), "2".to_owned()];
                    let got = rt
                        .block_on(engine.qless("pop", Some(now), &args))
                        .unwrap_or_else(|e| panic!("pop: {e}"));
                    let n = got.as_array().map_or(0, Vec::len) as i64;
                    popped.fetch_add(n, Ordering::SeqCst);
                }
            }));
        }
        for th in threads {
            th.join().expect("a worker panicked");
        }
        assert_eq!(popped.load(Ordering::SeqCst), 5, "starts in window {round}");
        assert_eq!(qless("throttle.get", now, &["t"])["started"], json!(5));
    }
    assert_eq!(qless("throttle.get", 70.0, &["t"])["running"], json!(10));
}

/// The race on this store's engine (several threads through one engine).
pub fn throttle_rate_never_exceeds_n_starts_under_concurrent_pops(t: &Harness) {
    rate_race(&[t.engine().clone()]);
}

/// `Store::flush` forgets the starts with the throttles.
pub fn throttle_rate_flush_forgets_starts(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "0", "rate", "1", "60"]);
    put_all(t, &["a"]);
    assert_eq!(t.pop_jids(10.0, "q", "w", "1"), vec!["a"]);
    t.block_on(t.engine().store().flush()).expect("flush");
    t.ok("throttle.set", 20.0, &["t", "0", "rate", "1", "60"]);
    assert_eq!(t.ok("throttle.get", 20.0, &["t"])["started"], json!(0));
    put_all(t, &["b"]);
    assert_eq!(t.pop_jids(21.0, "q", "w", "1"), vec!["b"]);
}
