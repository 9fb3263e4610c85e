//! Conformance cases: jobs.

#[allow(unused_imports)]
use crate::prelude::*;

/// Puts, pops (worker `w`) and completes `jid` in `queue`, all at `now`.
fn complete_at(h: &Harness, now: f64, queue: &str, jid: &str) {
    h.put(now, queue, jid);
    assert_eq!(h.pop_one(now, queue, "w").as_deref(), Some(jid));
    assert_eq!(
        h.ok("complete", now, &[jid, "w", queue, "{}"]),
        json!("complete")
    );
}

/// `jobs complete` lists completed jids, newest completion first.
pub fn jobs_complete_newest_first(t: &Harness) {
    complete_at(t, 1.0, "q", "a");
    complete_at(t, 2.0, "q", "b");
    complete_at(t, 3.0, "other", "c");
    assert_eq!(t.ok("jobs", 4.0, &["complete"]), json!(["c", "b", "a"]));
}

/// `jobs complete offset count` pages through the newest-first list.
pub fn jobs_complete_paging(t: &Harness) {
    for (i, jid) in ["a", "b", "c", "d"].iter().enumerate() {
        complete_at(t, i as f64, "q", jid);
    }
    assert_eq!(
        t.ok("jobs", 10.0, &["complete", "1", "2"]),
        json!(["c", "b"])
    );
    assert_eq!(t.ok("jobs", 10.0, &["complete", "3", "10"]), json!(["a"]));
    assert_eq!(t.ok("jobs", 10.0, &["complete", "9", "10"]), json!([]));
}

/// `jobs complete` is an empty list when nothing has completed.
pub fn jobs_complete_empty_is_empty_list(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("jobs", 1.0, &["complete"]), json!([]));
}

/// `jobs complete` without paging returns at most 25 jids.
pub fn jobs_complete_default_count_is_25(t: &Harness) {
    for i in 0..30 {
        complete_at(t, i as f64, "q", &format!("j{i:02}"));
    }
    let expected: Vec<String> = (5..30).rev().map(|i| format!("j{i:02}")).collect();
    assert_eq!(t.ok("jobs", 100.0, &["complete"]), json!(expected));
}

/// `jobs running` lists jobs with a live lock, ascending by lock expiry.
pub fn jobs_running_ascending_by_expiry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("b"));
    assert_eq!(t.ok("jobs", 20.0, &["running", "q"]), json!(["a", "b"]));
    // A heartbeat moves a's expiry past b's.
    t.ok("heartbeat", 30.0, &["a", "w"]);
    assert_eq!(t.ok("jobs", 31.0, &["running", "q"]), json!(["b", "a"]));
}

/// `jobs running` leaves out expired locks, which `jobs stalled` lists.
pub fn jobs_stalled_lists_expired_locks(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(30.0, "q", "w").as_deref(), Some("b"));
    assert_eq!(t.ok("jobs", 70.0, &["running", "q"]), json!(["b"]));
    assert_eq!(t.ok("jobs", 70.0, &["stalled", "q"]), json!(["a"]));
    assert_eq!(t.ok("jobs", 100.0, &["running", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 100.0, &["stalled", "q"]), json!(["a", "b"]));
}

/// At exactly the lock expiry a job is listed by both `jobs running` (≥ now) and `jobs stalled` (≤ now).
pub fn jobs_running_and_stalled_both_include_expiry_equal_to_now(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.ok("jobs", 59.0, &["stalled", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 60.0, &["running", "q"]), json!(["a"]));
    assert_eq!(t.ok("jobs", 60.0, &["stalled", "q"]), json!(["a"]));
    assert_eq!(t.ok("jobs", 60.5, &["running", "q"]), json!([]));
}

/// A timed-out job is in the work list: neither `jobs running` nor `jobs stalled` lists it.
pub fn jobs_timed_out_job_not_in_running_or_stalled(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    t.ok("timeout", 1.0, &["a"]);
    assert_eq!(t.ok("jobs", 100.0, &["running", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 100.0, &["stalled", "q"]), json!([]));
}

/// `jobs scheduled` lists delayed jobs ascending by due time.
pub fn jobs_scheduled_ascending_by_due_time(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "late", "klass", "{}", "300"]);
    t.ok("put", 1.0, &["w", "q", "early", "klass", "{}", "100"]);
    t.ok("put", 2.0, &["w", "q", "mid", "klass", "{}", "200"]);
    assert_eq!(
        t.ok("jobs", 3.0, &["scheduled", "q"]),
        json!(["early", "mid", "late"])
    );
}

/// `jobs scheduled` first promotes jobs that are due (inclusive); they become waiting.
pub fn jobs_scheduled_promotes_due_jobs_first(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "klass", "{}", "10"]);
    t.ok("put", 0.0, &["w", "q", "b", "klass", "{}", "20"]);
    assert_eq!(t.ok("jobs", 10.0, &["scheduled", "q"]), json!(["b"]));
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.pop_one(11.0, "q", "w").as_deref(), Some("a"));
}

/// `jobs scheduled offset count` pages through the listing.
pub fn jobs_scheduled_paging(t: &Harness) {
    for (i, jid) in ["a", "b", "c", "d"].iter().enumerate() {
        t.ok(
            "put",
            0.0,
            &["w", "q", jid, "klass", "{}", &(100 + i).to_string()],
        );
    }
    assert_eq!(
        t.ok("jobs", 1.0, &["scheduled", "q", "1", "2"]),
        json!(["b", "c"])
    );
    assert_eq!(t.ok("jobs", 1.0, &["scheduled", "q", "3"]), json!(["d"]));
}

/// `jobs depends` lists jobs waiting on dependencies, in the order they started waiting.
pub fn jobs_depends_lists_blocked_jobs(t: &Harness) {
    t.put(0.0, "q", "root");
    t.ok(
        "put",
        2.0,
        &[
            "w",
            "q",
            "second",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"root\"]",
        ],
    );
    t.ok(
        "put",
        1.0,
        &[
            "w",
            "q",
            "first",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"root\"]",
        ],
    );
    t.ok(
        "put",
        3.0,
        &[
            "w",
            "other",
            "elsewhere",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"root\"]",
        ],
    );
    assert_eq!(
        t.ok("jobs", 4.0, &["depends", "q"]),
        json!(["first", "second"])
    );
    assert_eq!(
        t.ok("jobs", 4.0, &["depends", "other"]),
        json!(["elsewhere"])
    );
}

/// `jobs recurring` lists the queue's templates by next spawn time.
pub fn jobs_recurring_lists_templates_by_next_spawn(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "r-late", "klass", "{}", "interval", "60", "500"],
    );
    t.ok(
        "recur",
        0.0,
        &["q", "r-early", "klass", "{}", "interval", "60", "100"],
    );
    t.ok(
        "recur",
        0.0,
        &["other", "r-other", "klass", "{}", "interval", "60", "100"],
    );
    assert_eq!(
        t.ok("jobs", 1.0, &["recurring", "q"]),
        json!(["r-early", "r-late"])
    );
}

/// Listings of a queue with nothing in them are empty lists.
pub fn jobs_state_listings_empty(t: &Harness) {
    for state in ["running", "stalled", "scheduled", "depends", "recurring"] {
        assert_eq!(t.ok("jobs", 1.0, &[state, "q"]), json!([]), "jobs {state}");
    }
}

/// `jobs` with an unknown type is an invalid-argument error naming the type.
pub fn jobs_unknown_type_is_invalid(t: &Harness) {
    t.err_with(
        "jobs",
        1.0,
        &["bogus", "q"],
        ErrorKind::Invalid,
        "Jobs(): Unknown type \"bogus\"",
    );
}

/// `jobs <state>` without a queue is an invalid-argument error.
pub fn jobs_missing_queue_is_invalid(t: &Harness) {
    t.err_with(
        "jobs",
        1.0,
        &["running"],
        ErrorKind::Invalid,
        "Jobs(): Arg \"queue\" missing",
    );
}

/// `jobs` with a non-numeric offset is an invalid-argument error.
pub fn jobs_non_numeric_offset_is_invalid(t: &Harness) {
    t.err_with(
        "jobs",
        1.0,
        &["running", "q", "x"],
        ErrorKind::Invalid,
        "Arg \"offset\" not a number",
    );
    t.err_with(
        "jobs",
        1.0,
        &["complete", "x"],
        ErrorKind::Invalid,
        "Arg \"offset\" not a number",
    );
}

/// `jobs` with a non-numeric count is an invalid-argument error.
pub fn jobs_non_numeric_count_is_invalid(t: &Harness) {
    t.err_with(
        "jobs",
        1.0,
        &["depends", "q", "0", "y"],
        ErrorKind::Invalid,
        "Arg \"count\" not a number",
    );
    t.err_with(
        "jobs",
        1.0,
        &["complete", "0", "y"],
        ErrorKind::Invalid,
        "Arg \"count\" not a number",
    );
}

/// `jobs` with a fractional offset or count is an invalid-argument error (`not an integer`).
pub fn jobs_fractional_paging_is_invalid(t: &Harness) {
    t.err_with(
        "jobs",
        1.0,
        &["complete", "1.5"],
        ErrorKind::Invalid,
        "Arg \"offset\" not an integer: 1.5",
    );
    t.err_with(
        "jobs",
        1.0,
        &["running", "q", "0", "2.5"],
        ErrorKind::Invalid,
        "Arg \"count\" not an integer: 2.5",
    );
}
