//! Conformance cases: pop.

#[allow(unused_imports)]
use crate::prelude::*;

/// Pop hands out at most `count` jobs, in queue order, and leaves the rest waiting.
pub fn pop_returns_at_most_count(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.put(3.0, "q", "c");
    assert_eq!(t.pop_jids(4.0, "q", "w", "2"), vec!["a", "b"]);
    assert_eq!(t.state("c"), "waiting");
    assert_eq!(t.pop_jids(5.0, "q", "w", "2"), vec!["c"]);
}

/// A count larger than the queue hands out everything there is.
pub fn pop_count_larger_than_queue_returns_all(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    assert_eq!(t.pop_jids(3.0, "q", "w", "25"), vec!["a", "b"]);
    assert_eq!(t.ok("pop", 3.0, &["q", "w", "25"]), json!([]));
}

/// Popping an empty or unknown queue returns an empty array.
pub fn pop_empty_queue_returns_empty_array(t: &Harness) {
    assert_eq!(t.ok("pop", 0.0, &["nothing-here", "w", "5"]), json!([]));
}

/// Pop only takes jobs of the named queue.
pub fn pop_only_takes_from_named_queue(t: &Harness) {
    t.put(0.0, "q1", "a");
    assert_eq!(t.ok("pop", 1.0, &["q2", "w", "5"]), json!([]));
    assert_eq!(t.state("a"), "waiting");
}

/// The popped job is running under the worker, locked until now + 60, with a `popped` history entry.
pub fn pop_returns_running_job_object(t: &Harness) {
    t.put(0.0, "q", "j1");
    let r = t.ok("pop", 10.0, &["q", "w1", "1"]);
    let expected = json!({
        "jid": "j1",
        "klass": "klass",
        "state": "running",
        "queue": "q",
        "worker": "w1",
        "priority": 0,
        "expires": 70,
        "retries": 5,
        "remaining": 5,
        "data": "{}",
        "tags": [],
        "history": [
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 10, "worker": "w1"},
        ],
        "failure": {},
        "tracked": false,
        "dependencies": [],
        "dependents": [],
        "spawned_from_jid": null,
    });
    assert_eq!(r, json!([expected.clone()]));
    assert_eq!(t.get("j1"), expected);
}

/// The lock expiry keeps fractional seconds; the history `when` is floored.
pub fn pop_fractional_now_expiry_and_history(t: &Harness) {
    t.put(0.0, "q", "j1");
    let r = t.ok("pop", 12.5, &["q", "w", "1"]);
    assert_eq!(r[0]["expires"], json!(72.5));
    assert_eq!(
        r[0]["history"][1],
        json!({"what": "popped", "when": 12, "worker": "w"})
    );
}

/// Popped jobs are listed as running in the queue and under the worker.
pub fn pop_locks_job_for_worker(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    assert_eq!(t.ok("jobs", 2.0, &["running", "q"]), json!(["j1"]));
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": ["j1"], "stalled": []})
    );
    let counts = t.ok("queues", 2.0, &["q"]);
    assert_eq!(counts["running"], json!(1));
    assert_eq!(counts["waiting"], json!(0));
}

/// Pop registers the worker as active, even when it gets nothing.
pub fn pop_registers_worker(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.ok("pop", 2.0, &["empty", "w2", "1"]);
    assert_eq!(
        t.ok("workers", 3.0, &[]),
        json!([
            {"name": "w2", "jobs": 0, "stalled": 0},
            {"name": "w1", "jobs": 1, "stalled": 0},
        ])
    );
}

/// Popping a paused queue returns nothing and does not register the worker.
pub fn pop_paused_queue_returns_empty_without_registering(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.ok("pause", 0.0, &["q"]);
    assert_eq!(t.ok("pop", 1.0, &["q", "w", "1"]), json!([]));
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(t.ok("workers", 1.0, &[]), json!([]));
    t.ok("unpause", 2.0, &["q"]);
    assert_eq!(t.pop_jids(3.0, "q", "w", "1"), vec!["j1"]);
}

/// A popped job is taken off the work list: a second pop gets the next job.
pub fn pop_removes_job_from_work(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    assert_eq!(t.pop_jids(3.0, "q", "w1", "1"), vec!["a"]);
    assert_eq!(t.pop_jids(3.0, "q", "w2", "1"), vec!["b"]);
    assert_eq!(t.ok("queues", 3.0, &["q"])["waiting"], json!(0));
}

/// The `heartbeat` config sets the lock length.
pub fn pop_lock_expiry_uses_heartbeat_config(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "120"]);
    t.put(0.0, "q", "j1");
    let r = t.ok("pop", 5.0, &["q", "w", "1"]);
    assert_eq!(r[0]["expires"], json!(125));
}

/// `<queue>-heartbeat` overrides `heartbeat` for that queue only.
pub fn pop_lock_expiry_uses_queue_heartbeat(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "120"]);
    t.ok("config.set", 0.0, &["q1-heartbeat", "30"]);
    t.put(0.0, "q1", "a");
    t.put(0.0, "q2", "b");
    assert_eq!(t.ok("pop", 5.0, &["q1", "w", "1"])[0]["expires"], json!(35));
    assert_eq!(
        t.ok("pop", 5.0, &["q2", "w", "1"])[0]["expires"],
        json!(125)
    );
}

/// A popped tracked job publishes its jid on `ql:popped`.
pub fn pop_tracked_job_publishes_popped(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.put(0.0, "q", "j2");
    t.ok("track", 0.0, &["track", "j1"]);
    t.take_events();
    t.ok("pop", 1.0, &["q", "w", "2"]);
    let evs: Vec<(String, String)> = t
        .take_events()
        .into_iter()
        .map(|e| (e.channel, e.message))
        .collect();
    assert_eq!(evs, vec![("ql:popped".to_owned(), "j1".to_owned())]);
}

/// `<queue>-max-concurrency` caps how many jobs run at once.
pub fn pop_max_concurrency_limits_count(t: &Harness) {
    t.ok("config.set", 0.0, &["q-max-concurrency", "2"]);
    for (i, j) in ["a", "b", "c"].iter().enumerate() {
        t.put(i as f64, "q", j);
    }
    assert_eq!(t.pop_jids(5.0, "q", "w", "5"), vec!["a", "b"]);
    assert_eq!(t.ok("pop", 6.0, &["q", "w2", "5"]), json!([]));
    assert_eq!(t.state("c"), "waiting");
}

/// Completing a job frees a max-concurrency slot.
pub fn pop_max_concurrency_slot_freed_by_complete(t: &Harness) {
    t.ok("config.set", 0.0, &["q-max-concurrency", "1"]);
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    assert_eq!(t.pop_jids(3.0, "q", "w", "1"), vec!["a"]);
    assert_eq!(t.ok("pop", 4.0, &["q", "w", "1"]), json!([]));
    t.ok("complete", 5.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.pop_jids(6.0, "q", "w", "1"), vec!["b"]);
}

/// Max-concurrency counts only this queue's running jobs.
pub fn pop_max_concurrency_is_per_queue(t: &Harness) {
    t.ok("config.set", 0.0, &["q1-max-concurrency", "1"]);
    t.put(0.0, "q1", "a");
    t.put(0.0, "q2", "b");
    t.put(0.0, "q2", "c");
    assert_eq!(t.pop_jids(1.0, "q1", "w", "1"), vec!["a"]);
    assert_eq!(t.pop_jids(1.0, "q2", "w", "5"), vec!["b", "c"]);
}

/// A lock expiring exactly now still counts as running for max-concurrency.
pub fn pop_max_concurrency_lock_expiring_now_counts(t: &Harness) {
    t.ok("config.set", 0.0, &["q-max-concurrency", "1"]);
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_jids(0.0, "q", "w1", "1"), vec!["a"]);
    // a's lock expires at 60: at exactly 60 it still fills the slot.
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.state("b"), "waiting");
    let a = t.get("a");
    assert_eq!(a["worker"], json!("w1"));
    assert_eq!(history_whats(&a), vec!["put", "popped"]);
}

/// Expired locks do not count against max-concurrency, so a stalled job can be taken over.
pub fn pop_max_concurrency_expired_locks_do_not_count(t: &Harness) {
    t.ok("config.set", 0.0, &["q-max-concurrency", "1"]);
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_jids(0.0, "q", "w1", "1"), vec!["a"]);
    t.put(1.0, "q", "b");
    assert_eq!(t.ok("pop", 30.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.pop_jids(61.0, "q", "w2", "1"), vec!["a"]);
    let a = t.get("a");
    assert_eq!(a["worker"], json!("w2"));
    assert_eq!(a["state"], json!("running"));
    assert_eq!(t.state("b"), "waiting");
}

/// With an expired lock not counting, the free slot can go to a waiting job during the grace period.
pub fn pop_max_concurrency_expired_lock_frees_slot_for_waiting_job(t: &Harness) {
    t.ok("config.set", 0.0, &["q-max-concurrency", "1"]);
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_jids(0.0, "q", "w1", "1"), vec!["a"]);
    t.put(1.0, "q", "b");
    // a's lock expired at 60; the courtesy step keeps it from being handed
    // out, but it no longer counts, so b runs.
    assert_eq!(t.pop_jids(61.0, "q", "w2", "1"), vec!["b"]);
    assert_eq!(t.get("a")["worker"], json!("w1"));
}

/// A scheduled job is promoted by a pop at its due time (inclusive), not before.
pub fn pop_promotes_scheduled_at_due_time_inclusive(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "j1", "k", "{}", "10"]);
    assert_eq!(t.ok("pop", 9.999, &["q", "w", "1"]), json!([]));
    assert_eq!(t.state("j1"), "scheduled");
    assert_eq!(t.pop_jids(10.0, "q", "w", "1"), vec!["j1"]);
    assert_eq!(t.state("j1"), "running");
}

/// Pop promotes only as many due scheduled jobs as it still needs, earliest due first.
pub fn pop_promotes_scheduled_limited_by_count(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "k", "{}", "1"]);
    t.ok("put", 0.0, &["w", "q", "b", "k", "{}", "2"]);
    t.ok("put", 0.0, &["w", "q", "c", "k", "{}", "3"]);
    assert_eq!(t.pop_jids(5.0, "q", "w", "1"), vec!["a"]);
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.state("c"), "scheduled");
    assert_eq!(t.pop_jids(6.0, "q", "w", "5"), vec!["b", "c"]);
}

/// Pop spawns due recurring jobs, but only as many as it still needs.
pub fn pop_spawns_recurring_limited_by_count(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "10", "0"],
    );
    // Children are due at 0, 10 and 20.
    assert_eq!(t.pop_jids(25.0, "q", "w", "1"), vec!["r-1"]);
    assert_eq!(t.get("r-2"), Value::Null);
    assert_eq!(t.pop_jids(25.0, "q", "w", "5"), vec!["r-2", "r-3"]);
    assert_eq!(t.get("r-4"), Value::Null);
}

/// A job spawned and popped in one pop records its spawn and the pop.
pub fn pop_spawned_recurring_job_is_running(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "r", "klass", "{\"x\":1}", "interval", "60", "0"],
    );
    let r = t.ok("pop", 5.0, &["q", "w", "1"]);
    assert_eq!(jids(&r), vec!["r-1"]);
    let j = &r[0];
    assert_eq!(j["state"], json!("running"));
    assert_eq!(j["spawned_from_jid"], json!("r"));
    assert_eq!(j["data"], json!("{\"x\":1}"));
    assert_eq!(
        j["history"],
        json!([
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 5, "worker": "w"},
        ])
    );
}

/// A missing worker is refused.
pub fn pop_missing_worker_rejected(t: &Harness) {
    t.err_with(
        "pop",
        0.0,
        &["q"],
        ErrorKind::Invalid,
        "Pop(): Arg \"worker\" missing",
    );
}

/// A missing, non-numeric or fractional count is refused and nothing is handed out.
pub fn pop_bad_count_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "pop",
        1.0,
        &["q", "w"],
        ErrorKind::Invalid,
        "Pop(): Arg \"count\"",
    );
    t.err_with(
        "pop",
        1.0,
        &["q", "w", "lots"],
        ErrorKind::Invalid,
        "Pop(): Arg \"count\" not a number: lots",
    );
    t.err_with(
        "pop",
        1.0,
        &["q", "w", "1.5"],
        ErrorKind::Invalid,
        "Pop(): Arg \"count\" not an integer: 1.5",
    );
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(t.ok("workers", 1.0, &[]), json!([]));
}

/// An empty worker name counts as missing; extra arguments are refused.
pub fn pop_empty_worker_and_extra_arguments_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "pop",
        1.0,
        &["q", "", "1"],
        ErrorKind::Invalid,
        "Pop(): Arg \"worker\" missing",
    );
    t.err_with(
        "pop",
        1.0,
        &["q", "w", "1", "extra"],
        ErrorKind::Invalid,
        "Pop(): Too many arguments",
    );
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(t.ok("workers", 1.0, &[]), json!([]));
}

/// A timed-out (stalled) job is handed out first and becomes running again.
pub fn pop_hands_out_timed_out_job_first(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.ok(
        "put",
        2.0,
        &["w", "q", "hi", "k", "{}", "0", "priority", "50"],
    );
    t.ok("timeout", 3.0, &["j1"]);
    let r = t.ok("pop", 4.0, &["q", "w2", "1"]);
    assert_eq!(jids(&r), vec!["j1"]);
    assert_eq!(r[0]["state"], json!("running"));
    assert_eq!(r[0]["worker"], json!("w2"));
    assert_eq!(r[0]["expires"], json!(64));
}
