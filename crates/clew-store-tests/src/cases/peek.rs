//! Conformance cases: peek.

#[allow(unused_imports)]
use crate::prelude::*;

fn peek(h: &Harness, now: f64, queue: &str, count: &str) -> Vec<String> {
    jids(&h.ok("peek", now, &[queue, count]))
}

/// Peek lists waiting jobs in pop order, at most `count`.
pub fn peek_lists_waiting_jobs_up_to_count(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.put(3.0, "q", "c");
    assert_eq!(peek(t, 4.0, "q", "2"), vec!["a", "b"]);
    assert_eq!(peek(t, 4.0, "q", "10"), vec!["a", "b", "c"]);
}

/// Peek returns the full job objects, unchanged (still waiting, no worker).
pub fn peek_returns_job_objects_as_stored(t: &Harness) {
    t.put(1.0, "q", "a");
    let r = t.ok("peek", 2.0, &["q", "1"]);
    assert_eq!(r, json!([t.get("a")]));
    assert_eq!(r[0]["state"], json!("waiting"));
    assert_eq!(r[0]["worker"], json!(""));
}

/// Peeking an empty or unknown queue returns an empty array.
pub fn peek_empty_queue_returns_empty_array(t: &Harness) {
    assert_eq!(t.ok("peek", 0.0, &["nothing-here", "5"]), json!([]));
}

/// Peek changes nothing observable: no lock, no history, no worker, no events, same jobs next time.
pub fn peek_does_not_change_state(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.take_events();
    let before = t.snapshot(3.0, &["a", "b"], &["q"]);
    assert_eq!(peek(t, 3.0, "q", "5"), vec!["a", "b"]);
    assert_eq!(t.snapshot(3.0, &["a", "b"], &["q"]), before);
    assert!(t.take_events().is_empty());
    assert_eq!(peek(t, 3.0, "q", "5"), vec!["a", "b"]);
    assert_eq!(t.pop_one(4.0, "q", "w"), Some("a".to_owned()));
}

/// Peek works on a paused queue.
pub fn peek_works_on_paused_queue(t: &Harness) {
    t.put(1.0, "q", "a");
    t.ok("pause", 1.0, &["q"]);
    assert_eq!(peek(t, 2.0, "q", "5"), vec!["a"]);
    assert_eq!(t.ok("pop", 2.0, &["q", "w", "5"]), json!([]));
}

/// Running jobs whose lock has not expired are not peeked.
pub fn peek_skips_live_locks(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w");
    t.put(1.0, "q", "b");
    assert_eq!(peek(t, 59.0, "q", "5"), vec!["b"]);
}

/// Jobs with expired locks come first, as they are (running, same worker).
pub fn peek_returns_expired_lock_jobs_first(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w1");
    t.put(1.0, "q", "b");
    let r = t.ok("peek", 61.0, &["q", "5"]);
    assert_eq!(jids(&r), vec!["a", "b"]);
    assert_eq!(r[0]["state"], json!("running"));
    assert_eq!(r[0]["worker"], json!("w1"));
    assert_eq!(r[0]["expires"], json!(60));
}

/// A lock expiring exactly now counts as expired for peek (inclusive boundary).
pub fn peek_lock_expiring_now_is_expired(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w1");
    t.put(1.0, "q", "b");
    assert_eq!(peek(t, 60.0, "q", "5"), vec!["a", "b"]);
}

/// Expired-lock jobs use up the count before waiting jobs, earliest expiry first.
pub fn peek_expired_locks_count_against_limit(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.5, "q", "b");
    t.pop_one(0.5, "q", "w1");
    t.pop_one(5.0, "q", "w2");
    t.put(6.0, "q", "c");
    assert_eq!(peek(t, 100.0, "q", "1"), vec!["a"]);
    assert_eq!(peek(t, 100.0, "q", "2"), vec!["a", "b"]);
    assert_eq!(peek(t, 100.0, "q", "3"), vec!["a", "b", "c"]);
}

/// Peek does not invalidate expired locks: no timed-out history, no lock_lost event, still held by the worker.
pub fn peek_does_not_invalidate_expired_locks(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w1");
    t.take_events();
    peek(t, 100.0, "q", "5");
    assert!(t.take_events().is_empty());
    let a = t.get("a");
    assert_eq!(a["state"], json!("running"));
    assert_eq!(a["worker"], json!("w1"));
    assert_eq!(a["remaining"], json!(5));
    assert_eq!(history_whats(&a), vec!["put", "popped"]);
    assert_eq!(t.ok("jobs", 100.0, &["stalled", "q"]), json!(["a"]));
    assert_eq!(t.ok("stats", 100.0, &["q", "100"])["retries"], json!(0));
}

/// Peek promotes due scheduled jobs (a real write), from the due time on.
pub fn peek_promotes_due_scheduled_jobs(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "k", "{}", "10"]);
    assert_eq!(t.ok("peek", 9.0, &["q", "5"]), json!([]));
    assert_eq!(t.state("a"), "scheduled");
    let r = t.ok("peek", 10.0, &["q", "5"]);
    assert_eq!(jids(&r), vec!["a"]);
    assert_eq!(r[0]["state"], json!("waiting"));
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.ok("jobs", 10.0, &["scheduled", "q"]), json!([]));
}

/// Peek spawns due recurring jobs (a real write).
pub fn peek_spawns_due_recurring_jobs(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "10", "0"],
    );
    assert_eq!(peek(t, 15.0, "q", "5"), vec!["r-1", "r-2"]);
    let child = t.get("r-1");
    assert_eq!(child["state"], json!("waiting"));
    assert_eq!(child["spawned_from_jid"], json!("r"));
    // Already spawned: a later peek does not spawn them again.
    assert_eq!(peek(t, 15.0, "q", "5"), vec!["r-1", "r-2"]);
    assert_eq!(t.get("r-3"), Value::Null);
}

/// A missing, non-numeric or fractional count is refused.
pub fn peek_bad_count_rejected(t: &Harness) {
    t.err_with(
        "peek",
        0.0,
        &["q"],
        ErrorKind::Invalid,
        "Peek(): Arg \"count\"",
    );
    t.err_with(
        "peek",
        0.0,
        &["q", "some"],
        ErrorKind::Invalid,
        "Peek(): Arg \"count\" not a number: some",
    );
    t.err_with(
        "peek",
        0.0,
        &["q", "2.5"],
        ErrorKind::Invalid,
        "Peek(): Arg \"count\" not an integer: 2.5",
    );
}

/// Peek promotes only as many due scheduled jobs as it still needs, earliest due first.
pub fn peek_promotes_scheduled_limited_by_count(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "k", "{}", "1"]);
    t.ok("put", 0.0, &["w", "q", "b", "k", "{}", "2"]);
    t.ok("put", 0.0, &["w", "q", "c", "k", "{}", "3"]);
    assert_eq!(peek(t, 5.0, "q", "1"), vec!["a"]);
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.state("c"), "scheduled");
}

/// A timed-out job sits at the front of the work list and is peeked first.
pub fn peek_timed_out_job_first(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.ok(
        "put",
        2.0,
        &["w", "q", "hi", "k", "{}", "0", "priority", "50"],
    );
    t.ok("timeout", 3.0, &["j1"]);
    let r = t.ok("peek", 4.0, &["q", "5"]);
    assert_eq!(jids(&r), vec!["j1", "hi"]);
    assert_eq!(r[0]["state"], json!("stalled"));
}

/// Extra arguments are refused.
pub fn peek_extra_arguments_rejected(t: &Harness) {
    t.err_with(
        "peek",
        0.0,
        &["q", "1", "extra"],
        ErrorKind::Invalid,
        "Peek(): Too many arguments",
    );
}
