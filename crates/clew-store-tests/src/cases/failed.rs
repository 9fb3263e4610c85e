//! Conformance cases: failed.

#[allow(unused_imports)]
use crate::prelude::*;

/// Puts `jid` into `queue`, pops it with worker `w` and fails it into `group`, all at `now`.
fn fail_in(h: &Harness, now: f64, queue: &str, jid: &str, group: &str) {
    h.put(now, queue, jid);
    assert_eq!(h.pop_one(now, queue, "w").as_deref(), Some(jid));
    assert_eq!(h.ok("fail", now, &[jid, "w", group, "boom"]), json!(jid));
}

/// `failed` without a group maps each group to its number of failed jobs.
pub fn failed_without_group_counts_per_group(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g1");
    fail_in(t, 2.0, "q", "b", "g1");
    fail_in(t, 3.0, "q", "c", "g2");
    assert_eq!(t.ok("failed", 4.0, &[]), json!({"g1": 2, "g2": 1}));
}

/// `failed` without a group is an empty object when nothing has failed.
pub fn failed_without_group_empty_is_empty_object(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("failed", 1.0, &[]), json!({}));
}

/// `failed <group>` returns the total and the jids, newest failure first.
pub fn failed_group_lists_newest_first(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    fail_in(t, 2.0, "q", "b", "g");
    fail_in(t, 3.0, "q", "c", "g");
    fail_in(t, 4.0, "q", "x", "other");
    assert_eq!(
        t.ok("failed", 5.0, &["g"]),
        json!({"total": 3, "jobs": ["c", "b", "a"]})
    );
}

/// `failed <group> start limit` pages through the newest-first list; total stays the group size.
pub fn failed_group_paging(t: &Harness) {
    for (i, jid) in ["a", "b", "c", "d"].iter().enumerate() {
        fail_in(t, i as f64, "q", jid, "g");
    }
    assert_eq!(
        t.ok("failed", 10.0, &["g", "1", "2"]),
        json!({"total": 4, "jobs": ["c", "b"]})
    );
    assert_eq!(
        t.ok("failed", 10.0, &["g", "3", "5"]),
        json!({"total": 4, "jobs": ["a"]})
    );
    assert_eq!(
        t.ok("failed", 10.0, &["g", "4", "5"]),
        json!({"total": 4, "jobs": []})
    );
}

/// `failed <group>` without paging returns at most 25 jids (the newest).
pub fn failed_group_default_limit_is_25(t: &Harness) {
    for i in 0..30 {
        fail_in(t, i as f64, "q", &format!("j{i:02}"), "g");
    }
    let v = t.ok("failed", 100.0, &["g"]);
    assert_eq!(v["total"], json!(30));
    let expected: Vec<String> = (5..30).rev().map(|i| format!("j{i:02}")).collect();
    assert_eq!(v["jobs"], json!(expected));
}

/// `failed` of a group that does not exist is a zero total and an empty list.
pub fn failed_unknown_group_is_empty_page(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    assert_eq!(
        t.ok("failed", 2.0, &["nope"]),
        json!({"total": 0, "jobs": []})
    );
}

/// `failed <group>` with a non-numeric start is an invalid-argument error.
pub fn failed_non_numeric_start_is_invalid(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    t.err_with(
        "failed",
        2.0,
        &["g", "abc"],
        ErrorKind::Invalid,
        "Arg \"start\"",
    );
}

/// `failed <group>` with a non-numeric limit is an invalid-argument error.
pub fn failed_non_numeric_limit_is_invalid(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    t.err_with(
        "failed",
        2.0,
        &["g", "0", "many"],
        ErrorKind::Invalid,
        "Arg \"limit\"",
    );
}

/// `unfail` moves the oldest `count` failures of the group and returns how many moved.
pub fn unfail_moves_oldest_first(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    fail_in(t, 2.0, "q", "b", "g");
    fail_in(t, 3.0, "q", "c", "g");
    assert_eq!(t.ok("unfail", 10.0, &["q2", "g", "2"]), json!(2));
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(t.state("c"), "failed");
    assert_eq!(
        t.ok("failed", 11.0, &["g"]),
        json!({"total": 1, "jobs": ["c"]})
    );
    assert_eq!(t.ok("queues", 11.0, &["q2"])["waiting"], json!(2));
}

/// An unfailed job is waiting in the given queue with no worker, remaining reset to retries,
/// a `put` history entry naming the queue, and its `failure` kept.
pub fn unfail_resets_job_fields_and_keeps_failure(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "klass", "{}", "0", "retries", "2"],
    );
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    // One retry: remaining drops to 1.
    assert_eq!(t.ok("retry", 2.0, &["a", "q", "w"]), json!(1));
    assert_eq!(t.pop_one(3.0, "q", "w").as_deref(), Some("a"));
    t.ok("fail", 4.0, &["a", "w", "g", "it broke"]);
    assert_eq!(t.get("a")["remaining"], json!(1));

    assert_eq!(t.ok("unfail", 20.5, &["other", "g"]), json!(1));
    let job = t.get("a");
    assert_eq!(job["state"], json!("waiting"));
    assert_eq!(job["queue"], json!("other"));
    assert_eq!(job["worker"], json!(""));
    assert_eq!(job["expires"], json!(0));
    assert_eq!(job["retries"], json!(2));
    assert_eq!(job["remaining"], json!(2));
    assert_eq!(
        job["failure"],
        json!({"group": "g", "message": "it broke", "when": 4, "worker": "w"})
    );
    let last = job["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"what": "put", "when": 20, "q": "other"}));
    assert_eq!(t.pop_one(21.0, "other", "w2").as_deref(), Some("a"));
}

/// `unfail` drops the group once its last job has moved.
pub fn unfail_removes_group_when_emptied(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    fail_in(t, 2.0, "q", "b", "keep");
    assert_eq!(t.ok("unfail", 3.0, &["q", "g", "5"]), json!(1));
    assert_eq!(t.ok("failed", 4.0, &[]), json!({"keep": 1}));
    assert_eq!(t.ok("failed", 4.0, &["g"]), json!({"total": 0, "jobs": []}));
}

/// `unfail` without a count moves at most 25 jobs.
pub fn unfail_default_count_is_25(t: &Harness) {
    for i in 0..30 {
        fail_in(t, i as f64, "q", &format!("j{i:02}"), "g");
    }
    assert_eq!(t.ok("unfail", 100.0, &["q", "g"]), json!(25));
    let expected: Vec<String> = (25..30).rev().map(|i| format!("j{i:02}")).collect();
    assert_eq!(
        t.ok("failed", 101.0, &["g"]),
        json!({"total": 5, "jobs": expected})
    );
    assert_eq!(t.state("j00"), "waiting");
    assert_eq!(t.state("j24"), "waiting");
    assert_eq!(t.state("j25"), "failed");
}

/// `unfail` of a group with no jobs moves nothing and returns 0.
pub fn unfail_unknown_group_returns_zero(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    assert_eq!(t.ok("unfail", 2.0, &["q", "nope", "10"]), json!(0));
    assert_eq!(t.state("a"), "failed");
    assert_eq!(t.ok("failed", 3.0, &[]), json!({"g": 1}));
}

/// `unfail` decrements the `failed` stat of the queue the job failed in; `failures` stays.
pub fn unfail_decrements_failed_stat(t: &Harness) {
    fail_in(t, 100.0, "q", "a", "g");
    fail_in(t, 101.0, "q", "b", "g");
    let before = t.ok("stats", 102.0, &["q", "102"]);
    assert_eq!(before["failed"], json!(2));
    assert_eq!(before["failures"], json!(2));
    assert_eq!(t.ok("unfail", 103.0, &["q2", "g", "1"]), json!(1));
    let after = t.ok("stats", 104.0, &["q", "104"]);
    assert_eq!(after["failed"], json!(1));
    assert_eq!(after["failures"], json!(2));
}

/// `unfail` without a queue is an invalid-argument error and changes nothing.
pub fn unfail_missing_queue_is_invalid(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    let before = t.snapshot(2.0, &["a"], &["q"]);
    t.err_with(
        "unfail",
        2.0,
        &[],
        ErrorKind::Invalid,
        "Unfail(): Arg \"queue\" missing",
    );
    assert_eq!(t.snapshot(2.0, &["a"], &["q"]), before);
}

/// `unfail` without a group is an invalid-argument error.
pub fn unfail_missing_group_is_invalid(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    t.err_with(
        "unfail",
        2.0,
        &["q"],
        ErrorKind::Invalid,
        "Unfail(): Arg \"group\" missing",
    );
    assert_eq!(t.state("a"), "failed");
}

/// `unfail` with a non-numeric count is an invalid-argument error and moves nothing.
pub fn unfail_non_numeric_count_is_invalid(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    t.err_with(
        "unfail",
        2.0,
        &["q", "g", "lots"],
        ErrorKind::Invalid,
        "Arg \"count\"",
    );
    assert_eq!(t.state("a"), "failed");
    assert_eq!(t.ok("failed", 3.0, &[]), json!({"g": 1}));
}

/// A job that exhausts its retries with `retry` is listed under `failed-retries-<queue>`.
pub fn failed_lists_retry_exhausted_group(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.ok("retry", 2.0, &["a", "q", "w"]), json!(-1));
    assert_eq!(t.ok("failed", 3.0, &[]), json!({"failed-retries-q": 1}));
    assert_eq!(
        t.ok("failed", 3.0, &["failed-retries-q"]),
        json!({"total": 1, "jobs": ["a"]})
    );
}

/// Re-putting a failed job takes it out of its group, dropping the group when it empties.
pub fn failed_reput_removes_job_from_group(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    fail_in(t, 2.0, "q", "b", "g");
    t.put(3.0, "q", "a");
    assert_eq!(
        t.ok("failed", 4.0, &["g"]),
        json!({"total": 1, "jobs": ["b"]})
    );
    t.put(5.0, "q", "b");
    assert_eq!(t.ok("failed", 6.0, &[]), json!({}));
}

/// Cancelling the last failed job of a group drops the group.
pub fn failed_cancel_drops_emptied_group(t: &Harness) {
    fail_in(t, 1.0, "q", "a", "g");
    fail_in(t, 2.0, "q", "b", "h");
    t.ok("cancel", 3.0, &["a"]);
    assert_eq!(t.ok("failed", 4.0, &[]), json!({"h": 1}));
    assert_eq!(t.ok("failed", 4.0, &["g"]), json!({"total": 0, "jobs": []}));
}
