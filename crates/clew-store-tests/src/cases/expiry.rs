//! Conformance cases: expiry.

#[allow(unused_imports)]
use crate::prelude::*;

/// Puts, pops (worker `w`) and completes `jid` in queue `q`, all at `now`.
fn complete_at(h: &Harness, now: f64, jid: &str) {
    h.put(now, "q", jid);
    assert_eq!(h.pop_one(now, "q", "w").as_deref(), Some(jid));
    assert_eq!(
        h.ok("complete", now, &[jid, "w", "q", "{}"]),
        json!("complete")
    );
}

/// A completed job is deleted by a later complete once it is `jobs-history` seconds old (inclusive).
pub fn completed_job_expires_after_jobs_history(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history", "100"]);
    complete_at(t, 10.0, "a");
    complete_at(t, 109.5, "b");
    assert_eq!(t.state("a"), "complete");
    complete_at(t, 110.0, "c");
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.state("b"), "complete");
    assert_eq!(t.ok("jobs", 111.0, &["complete"]), json!(["c", "b"]));
}

/// With the default `jobs-history` (604800 s) a completed job lives exactly one week.
pub fn completed_job_default_history_is_one_week(t: &Harness) {
    complete_at(t, 0.0, "a");
    complete_at(t, 604_799.0, "b");
    assert_eq!(t.state("a"), "complete");
    complete_at(t, 604_800.0, "c");
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.ok("jobs", 604_801.0, &["complete"]), json!(["c", "b"]));
}

/// Only the most recent `jobs-history-count` completed jobs are kept.
pub fn jobs_history_count_keeps_most_recent(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history-count", "2"]);
    complete_at(t, 1.0, "a");
    complete_at(t, 2.0, "b");
    assert_eq!(t.state("a"), "complete");
    complete_at(t, 3.0, "c");
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.ok("jobs", 4.0, &["complete"]), json!(["c", "b"]));
    complete_at(t, 5.0, "d");
    assert_eq!(t.get("b"), Value::Null);
    assert_eq!(t.ok("jobs", 6.0, &["complete"]), json!(["d", "c"]));
}

/// A negative `jobs-history` deletes every completed job, including the one just completed.
pub fn negative_jobs_history_deletes_everything(t: &Harness) {
    complete_at(t, 1.0, "a");
    t.ok("config.set", 2.0, &["jobs-history", "-1"]);
    t.put(3.0, "q", "b");
    t.pop_one(3.0, "q", "w");
    assert_eq!(
        t.ok("complete", 3.0, &["b", "w", "q", "{}"]),
        json!("complete")
    );
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.get("b"), Value::Null);
    assert_eq!(t.ok("jobs", 4.0, &["complete"]), json!([]));
}

/// An expired job loses its history and its tag memberships (tag counters drop too).
pub fn expired_job_history_and_tags_go(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "klass", "{}", "0", "tags", "[\"t\"]"],
    );
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "klass", "{}", "0", "tags", "[\"t\"]"],
    );
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!(["t"]));
    t.ok("config.set", 1.0, &["jobs-history", "-1"]);
    assert_eq!(t.pop_one(2.0, "q", "w").as_deref(), Some("a"));
    t.ok("log", 2.0, &["a", "note"]);
    t.ok("complete", 3.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(
        t.ok("tag", 4.0, &["get", "t"]),
        json!({"total": 1, "jobs": ["b"]})
    );
    assert_eq!(t.ok("tag", 4.0, &["top"]), json!([]));
    // A new job with the same jid starts with a fresh history and no tags.
    t.put(5.0, "q", "a");
    let job = t.get("a");
    assert_eq!(history_whats(&job), ["put"]);
    assert_eq!(job["tags"], json!([]));
}

/// Failed jobs never expire, however old and whatever the settings.
pub fn failed_jobs_never_expire(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w");
    t.ok("fail", 0.0, &["a", "w", "g", "boom"]);
    t.ok("config.set", 1.0, &["jobs-history", "-1"]);
    t.ok("config.set", 1.0, &["jobs-history-count", "0"]);
    complete_at(t, 10_000_000.0, "b");
    assert_eq!(t.state("a"), "failed");
    assert_eq!(
        t.ok("failed", 10_000_001.0, &["g"]),
        json!({"total": 1, "jobs": ["a"]})
    );
}

/// Re-putting a completed job takes it off the completed set, so expiry no longer deletes it.
pub fn reput_of_complete_job_leaves_completed_set(t: &Harness) {
    complete_at(t, 1.0, "a");
    t.put(2.0, "q2", "a");
    assert_eq!(t.ok("jobs", 3.0, &["complete"]), json!([]));
    t.ok("config.set", 4.0, &["jobs-history", "-1"]);
    t.put(5.0, "q", "b");
    t.pop_one(5.0, "q", "w");
    t.ok("complete", 5.0, &["b", "w", "q", "{}"]);
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.get("a")["queue"], json!("q2"));
}

/// A tracked job that expires is reported under `expired` by `track`.
pub fn tracked_expired_job_shows_in_track_expired(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.ok("config.set", 0.0, &["jobs-history", "-1"]);
    t.pop_one(1.0, "q", "w");
    t.ok("complete", 2.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(
        t.ok("track", 3.0, &[]),
        json!({"jobs": [], "expired": ["a"]})
    );
}

/// The sweep runs only on a final complete: advancing a job with `next` expires nothing.
pub fn expiry_runs_only_on_final_complete(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history", "100"]);
    complete_at(t, 0.0, "a");
    t.put(500.0, "q", "b");
    t.pop_one(500.0, "q", "w");
    assert_eq!(
        t.ok("complete", 500.0, &["b", "w", "q", "{}", "next", "q2"]),
        json!("waiting")
    );
    assert_eq!(t.state("a"), "complete");
    assert_eq!(t.pop_one(501.0, "q2", "w").as_deref(), Some("b"));
    t.ok("complete", 501.0, &["b", "w", "q2", "{}"]);
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.ok("jobs", 502.0, &["complete"]), json!(["b"]));
}

/// The count limit holds after a job leaves the completed set by a re-put
/// and completes again: exactly the newest `jobs-history-count` stay.
pub fn jobs_history_count_after_reput(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history-count", "3"]);
    for (i, jid) in ["a", "b", "c"].iter().enumerate() {
        complete_at(t, 1.0 + i as f64, jid);
    }
    t.put(10.0, "q2", "a");
    assert_eq!(t.ok("jobs", 12.0, &["complete"]), json!(["c", "b"]));
    // Three more: five completed, the two oldest go.
    for (i, jid) in ["d", "e", "f"].iter().enumerate() {
        complete_at(t, 20.0 + i as f64, jid);
    }
    assert_eq!(t.ok("jobs", 30.0, &["complete"]), json!(["f", "e", "d"]));
    assert_eq!(t.get("b"), Value::Null);
    assert_eq!(t.get("c"), Value::Null);
    // "a" (waiting since its re-put) completes again: the oldest kept goes.
    assert_eq!(t.pop_one(31.0, "q2", "w").as_deref(), Some("a"));
    assert_eq!(
        t.ok("complete", 32.0, &["a", "w", "q2", "{}"]),
        json!("complete")
    );
    assert_eq!(t.ok("jobs", 33.0, &["complete"]), json!(["a", "f", "e"]));
    assert_eq!(t.get("d"), Value::Null);
}
