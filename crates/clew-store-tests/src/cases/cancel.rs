//! Conformance cases: cancel.

#[allow(unused_imports)]
use crate::prelude::*;

fn put_opts(h: &Harness, now: f64, queue: &str, jid: &str, opts: &[&str]) {
    let mut args = vec!["worker", queue, jid, "klass", "{}", "0"];
    args.extend_from_slice(opts);
    h.ok("put", now, &args);
}

fn payload(e: &Event) -> Value {
    serde_json::from_str(&e.message)
        .unwrap_or_else(|err| panic!("payload {:?} is not JSON: {err}", e.message))
}

fn channels(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.channel.clone()).collect()
}

/// cancel returns exactly the jids it was given, in order, and the jobs are gone.
pub fn cancel_returns_given_jids(t: &Harness) {
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("cancel", 1.0, &["b", "a"]), json!(["b", "a"]));
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.get("b"), Value::Null);
}

/// cancel of a jid that does not exist still lists it in the reply.
pub fn cancel_missing_jid_is_listed_in_reply(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("cancel", 1.0, &["nope", "a"]), json!(["nope", "a"]));
    assert_eq!(t.get("a"), Value::Null);
}

/// cancel deletes the job's history too: a job re-put under the same jid starts a fresh history.
pub fn cancel_deletes_history(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("log", 2.0, &["a", "note"]);
    t.ok("cancel", 3.0, &["a"]);
    t.put(4.0, "q2", "a");
    let job = t.get("a");
    assert_eq!(
        job["history"],
        json!([{"what": "put", "when": 4, "q": "q2"}])
    );
}

/// cancel is refused when a dependent of a listed job is not listed, naming both jids, and changes nothing.
pub fn cancel_refused_when_dependent_not_listed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "q", "b", &["depends", "[\"a\"]"]);
    let before = t.snapshot(1.0, &["a", "b", "c"], &["q"]);
    t.take_events();
    t.err_with(
        "cancel",
        1.0,
        &["c", "a"],
        ErrorKind::Conflict,
        "a is a dependency of b but is not mentioned to be canceled",
    );
    assert_eq!(t.snapshot(1.0, &["a", "b", "c"], &["q"]), before);
    assert_eq!(t.state("c"), "waiting");
    assert!(
        t.take_events().is_empty(),
        "a refused cancel publishes nothing"
    );
}

/// A job and its dependent may be cancelled together.
pub fn cancel_allowed_when_dependent_listed(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", &["depends", "[\"a\"]"]);
    assert_eq!(t.ok("cancel", 1.0, &["a", "b"]), json!(["a", "b"]));
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.get("b"), Value::Null);
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q"]), json!([]));
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(0));
}

/// Cancelling a dependent alone is allowed and unlinks it from its dependency's dependents.
pub fn cancel_dependent_unlinks_from_dependency(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", &["depends", "[\"a\"]"]);
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
    t.ok("cancel", 1.0, &["b"]);
    assert_eq!(t.get("a")["dependents"], json!([]));
    // a can now be cancelled alone
    assert_eq!(t.ok("cancel", 2.0, &["a"]), json!(["a"]));
}

/// cancel ignores complete jobs: the job stays complete and nothing is published.
pub fn cancel_ignores_complete_job(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    t.take_events();
    assert_eq!(t.ok("cancel", 3.0, &["a"]), json!(["a"]));
    assert_eq!(t.state("a"), "complete");
    assert_eq!(t.ok("jobs", 3.0, &["complete"]), json!(["a"]));
    assert!(t.take_events().is_empty());
}

/// Cancelling waiting, scheduled and depends jobs empties every queue set.
pub fn cancel_removes_from_queue_sets(t: &Harness) {
    t.put(0.0, "q", "w");
    t.ok("put", 0.0, &["worker", "q", "s", "klass", "{}", "100"]);
    put_opts(t, 0.0, "q", "d", &["depends", "[\"s\"]"]);
    let counts = t.ok("queues", 1.0, &["q"]);
    assert_eq!(
        (
            counts["waiting"].clone(),
            counts["scheduled"].clone(),
            counts["depends"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    t.ok("cancel", 1.0, &["w", "s", "d"]);
    let counts = t.ok("queues", 1.0, &["q"]);
    assert_eq!(
        counts,
        json!({"name": "q", "waiting": 0, "running": 0, "stalled": 0, "scheduled": 0, "depends": 0, "recurring": 0, "paused": false})
    );
    assert_eq!(t.ok("jobs", 1.0, &["scheduled", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q"]), json!([]));
    assert_eq!(t.ok("pop", 200.0, &["q", "w1", "10"]), json!([]));
}

/// Cancelling a running job removes its lock and takes it out of its worker's job set.
pub fn cancel_running_job_removes_lock_and_worker_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    t.ok("cancel", 2.0, &["a"]);
    assert_eq!(t.ok("jobs", 2.0, &["running", "q"]), json!(["b"]));
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": ["b"], "stalled": []})
    );
    assert_eq!(t.ok("queues", 2.0, &["q"])["running"], json!(1));
}

/// Cancelling a failed job removes it from its failure group, dropping the empty group.
pub fn cancel_failed_job_removes_from_failure_list(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    t.ok("fail", 2.0, &["a", "w1", "grp", "boom"]);
    t.ok("fail", 2.0, &["b", "w1", "grp", "boom"]);
    t.ok("cancel", 3.0, &["a"]);
    assert_eq!(t.ok("failed", 3.0, &[]), json!({"grp": 1}));
    assert_eq!(
        t.ok("failed", 3.0, &["grp"]),
        json!({"total": 1, "jobs": ["b"]})
    );
    t.ok("cancel", 3.0, &["b"]);
    assert_eq!(t.ok("failed", 3.0, &[]), json!({}));
}

/// Cancelling a failed job decrements the `failed` stat of its failure day; `failures` is kept.
pub fn cancel_failed_job_decrements_failed_stat(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(10.0, "q", "w1");
    t.ok("fail", 20.0, &["a", "w1", "grp", "boom"]);
    let stats = t.ok("stats", 20.0, &["q", "20"]);
    assert_eq!(
        (stats["failed"].clone(), stats["failures"].clone()),
        (json!(1), json!(1))
    );
    // cancelled on a later day: the failure day's bin is decremented
    t.ok("cancel", 90_000.0, &["a"]);
    let stats = t.ok("stats", 90_000.0, &["q", "20"]);
    assert_eq!(
        (stats["failed"].clone(), stats["failures"].clone()),
        (json!(0), json!(1))
    );
}

/// Cancelling a job removes it from its tags and decrements the tag counters.
pub fn cancel_removes_tag_membership(t: &Harness) {
    put_opts(t, 0.0, "q", "a", &["tags", "[\"t\"]"]);
    put_opts(t, 0.0, "q", "b", &["tags", "[\"t\"]"]);
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!(["t"]));
    t.ok("cancel", 1.0, &["a"]);
    assert_eq!(
        t.ok("tag", 1.0, &["get", "t"]),
        json!({"total": 1, "jobs": ["b"]})
    );
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!([]));
}

/// A cancelled tracked job stays tracked and is listed under `expired`.
pub fn cancel_tracked_job_shows_expired(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("track", 1.0, &["track", "a"]);
    t.ok("track", 2.0, &["track", "b"]);
    t.ok("cancel", 3.0, &["a"]);
    let tracked = t.ok("track", 3.0, &[]);
    assert_eq!(tracked["expired"], json!(["a"]));
    let jobs: Vec<&str> = tracked["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jid"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, vec!["b"]);
}

/// Cancelling a running tracked job publishes log, then w:`<worker>`, then ql:canceled.
pub fn cancel_running_tracked_job_events_in_order(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("track", 1.0, &["track", "a"]);
    t.take_events();
    t.ok("cancel", 2.0, &["a"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log", "ql:w:w1", "ql:canceled"]);
    let expected = json!({"jid": "a", "event": "canceled", "worker": "w1", "queue": "q"});
    assert_eq!(payload(&ev[0]), expected);
    assert_eq!(payload(&ev[1]), expected);
    assert_eq!(ev[2].message, "a");
}

/// Cancelling a waiting untracked job publishes only the log event, with an empty worker.
pub fn cancel_waiting_job_publishes_log_only(t: &Harness) {
    t.put(0.0, "q", "a");
    t.take_events();
    t.ok("cancel", 1.0, &["a"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "canceled", "worker": "", "queue": "q"})
    );
}

/// cancel of a missing job publishes nothing (clew difference 6).
pub fn cancel_missing_job_publishes_nothing(t: &Harness) {
    t.take_events();
    assert_eq!(t.ok("cancel", 1.0, &["ghost"]), json!(["ghost"]));
    assert!(t.take_events().is_empty());
    assert!(t.logged_events(0).is_empty());
}
