//! Conformance cases: put and requeue.

#[allow(unused_imports)]
use crate::prelude::*;

/// Events taken from the sink as (channel, payload); payloads that are JSON
/// are parsed, bare jids stay strings.
fn take(h: &Harness) -> Vec<(String, Value)> {
    h.take_events()
        .into_iter()
        .map(|e| {
            let v = serde_json::from_str(&e.message).unwrap_or(Value::String(e.message));
            (e.channel, v)
        })
        .collect()
}

fn put_with(h: &Harness, now: f64, queue: &str, jid: &str, extra: &[&str]) {
    let mut args = vec!["worker", queue, jid, "klass", "{}", "0"];
    args.extend_from_slice(extra);
    h.ok("put", now, &args);
}

/// `put` returns the jid as a string.
pub fn put_returns_jid(t: &Harness) {
    let r = t.ok("put", 0.0, &["worker", "q", "j1", "klass", "{}", "0"]);
    assert_eq!(r, json!("j1"));
}

/// A new job gets the documented defaults: waiting, priority 0, retries 5, no tags, one `put` history entry.
pub fn put_new_job_has_defaults(t: &Harness) {
    t.ok("put", 1.0, &["me", "q", "j1", "my.Klass", "{\"a\":1}", "0"]);
    assert_eq!(
        t.get("j1"),
        json!({
            "jid": "j1",
            "klass": "my.Klass",
            "state": "waiting",
            "queue": "q",
            "worker": "",
            "priority": 0,
            "expires": 0,
            "retries": 5,
            "remaining": 5,
            "data": "{\"a\":1}",
            "tags": [],
            "history": [{"what": "put", "when": 1, "q": "q"}],
            "failure": {},
            "tracked": false,
            "dependencies": [],
            "dependents": [],
            "spawned_from_jid": null,
        })
    );
}

/// A numeric-looking jid stays a string in the job object.
pub fn put_numeric_jid_stays_string(t: &Harness) {
    let r = t.ok("put", 0.0, &["w", "q", "12345", "k", "{}", "0"]);
    assert_eq!(r, json!("12345"));
    assert_eq!(t.get("12345")["jid"], json!("12345"));
}

/// The payload is stored exactly as given (whitespace and key order kept), not re-serialized.
pub fn put_stores_data_verbatim(t: &Harness) {
    let data = "{ \"b\" : 1,  \"a\":[1, 2.50 ],\"c\":{} }";
    t.ok("put", 0.0, &["w", "q", "j1", "k", data, "0"]);
    assert_eq!(t.get("j1")["data"], json!(data));
}

/// Re-putting replaces the payload and class verbatim.
pub fn put_reput_replaces_klass_and_data(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "j1", "k1", "{\"v\":1}", "0"]);
    t.ok("put", 1.0, &["w", "q", "j1", "k2", "[1,  2]", "0"]);
    let j = t.get("j1");
    assert_eq!(j["klass"], json!("k2"));
    assert_eq!(j["data"], json!("[1,  2]"));
}

/// A positive delay makes the job `scheduled`, listed in `jobs scheduled`, not waiting.
pub fn put_with_delay_is_scheduled(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "j1", "k", "{}", "10"]);
    assert_eq!(t.state("j1"), "scheduled");
    assert_eq!(t.ok("jobs", 0.0, &["scheduled", "q"]), json!(["j1"]));
    let counts = t.ok("queues", 0.0, &["q"]);
    assert_eq!(counts["scheduled"], json!(1));
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(t.ok("pop", 5.0, &["q", "w", "1"]), json!([]));
}

/// A fractional delay schedules the job for exactly now + delay.
pub fn put_fractional_delay_due_at_now_plus_delay(t: &Harness) {
    t.ok("put", 10.0, &["w", "q", "j1", "k", "{}", "1.5"]);
    assert_eq!(t.ok("pop", 11.4, &["q", "w", "1"]), json!([]));
    assert_eq!(t.state("j1"), "scheduled");
    assert_eq!(jids(&t.ok("pop", 11.5, &["q", "w", "1"])), vec!["j1"]);
}

/// The priority, tags and retries options are stored; remaining starts at retries.
pub fn put_options_are_stored(t: &Harness) {
    put_with(
        t,
        0.0,
        "q",
        "j1",
        &["priority", "5", "tags", "[\"a\",\"b\"]", "retries", "3"],
    );
    let j = t.get("j1");
    assert_eq!(j["priority"], json!(5));
    assert_eq!(j["tags"], json!(["a", "b"]));
    assert_eq!(j["retries"], json!(3));
    assert_eq!(j["remaining"], json!(3));
}

/// A negative priority is accepted and stored.
pub fn put_negative_priority_is_stored(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["priority", "-7"]);
    assert_eq!(t.get("j1")["priority"], json!(-7));
}

/// Duplicate tags in the put list are stored once, in first-seen order.
pub fn put_duplicate_tags_stored_once(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["tags", "[\"b\",\"a\",\"b\"]"]);
    assert_eq!(t.get("j1")["tags"], json!(["b", "a"]));
}

/// Re-putting without options keeps the existing job's priority, tags and retries.
pub fn put_reput_keeps_existing_options(t: &Harness) {
    put_with(
        t,
        0.0,
        "q",
        "j1",
        &["priority", "5", "tags", "[\"a\"]", "retries", "2"],
    );
    t.put(1.0, "q2", "j1");
    let j = t.get("j1");
    assert_eq!(j["priority"], json!(5));
    assert_eq!(j["tags"], json!(["a"]));
    assert_eq!(j["retries"], json!(2));
    assert_eq!(j["remaining"], json!(2));
    assert_eq!(j["queue"], json!("q2"));
}

/// Re-putting with options replaces priority, tags and retries.
pub fn put_reput_overrides_options(t: &Harness) {
    put_with(
        t,
        0.0,
        "q",
        "j1",
        &["priority", "5", "tags", "[\"a\"]", "retries", "2"],
    );
    put_with(
        t,
        1.0,
        "q",
        "j1",
        &["priority", "-1", "tags", "[\"b\",\"c\"]", "retries", "7"],
    );
    let j = t.get("j1");
    assert_eq!(j["priority"], json!(-1));
    assert_eq!(j["tags"], json!(["b", "c"]));
    assert_eq!(j["retries"], json!(7));
    assert_eq!(j["remaining"], json!(7));
}

/// Re-putting resets `remaining` to the (kept) retries value.
pub fn put_reput_resets_remaining(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["retries", "3"]);
    t.pop_one(1.0, "q", "w");
    assert_eq!(t.ok("retry", 2.0, &["j1", "q", "w"]), json!(2));
    assert_eq!(t.get("j1")["remaining"], json!(2));
    t.put(3.0, "q", "j1");
    let j = t.get("j1");
    assert_eq!(j["retries"], json!(3));
    assert_eq!(j["remaining"], json!(3));
}

/// Re-putting with new tags removes the old tags from the tag index.
pub fn put_reput_with_tags_unindexes_old_tags(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["tags", "[\"old\"]"]);
    assert_eq!(
        t.ok("tag", 0.0, &["get", "old"]),
        json!({"total": 1, "jobs": ["j1"]})
    );
    put_with(t, 1.0, "q", "j1", &["tags", "[\"new\"]"]);
    assert_eq!(
        t.ok("tag", 1.0, &["get", "old"]),
        json!({"total": 0, "jobs": []})
    );
    assert_eq!(
        t.ok("tag", 1.0, &["get", "new"]),
        json!({"total": 1, "jobs": ["j1"]})
    );
}

/// Re-putting without tags keeps the job indexed under its tags.
pub fn put_reput_without_tags_keeps_tag_index(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["tags", "[\"x\"]"]);
    t.put(1.0, "q", "j1");
    assert_eq!(
        t.ok("tag", 1.0, &["get", "x"]),
        json!({"total": 1, "jobs": ["j1"]})
    );
}

/// Re-putting with different tags decrements the old tags' usage counters.
pub fn put_reput_decrements_tag_counters(t: &Harness) {
    put_with(t, 0.0, "q", "j1", &["tags", "[\"x\"]"]);
    put_with(t, 0.0, "q", "j2", &["tags", "[\"x\"]"]);
    assert_eq!(t.ok("tag", 0.0, &["top"]), json!(["x"]));
    put_with(t, 1.0, "q", "j2", &["tags", "[]"]);
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!([]));
    assert_eq!(t.get("j2")["tags"], json!([]));
}

/// Depending on a job that is not complete puts the job in `depends` and links both sides.
pub fn put_with_unmet_dependency_is_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    put_with(t, 1.0, "q", "b", &["depends", "[\"a\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["a"]));
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q"]), json!(["b"]));
    assert_eq!(jids(&t.ok("peek", 1.0, &["q", "10"])), vec!["a"]);
}

/// Dependencies on jobs that do not exist are ignored: the job is waiting with no dependencies.
pub fn put_depends_on_missing_job_is_ignored(t: &Harness) {
    put_with(t, 0.0, "q", "b", &["depends", "[\"ghost\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("ghost"), Value::Null);
}

/// Dependencies on complete jobs count as satisfied.
pub fn put_depends_on_complete_job_is_ignored(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w");
    t.ok("complete", 2.0, &["a", "w", "q", "{}"]);
    put_with(t, 3.0, "q", "b", &["depends", "[\"a\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!([]));
}

/// Only the unmet dependencies of a mixed list are linked.
pub fn put_depends_links_only_unmet(t: &Harness) {
    t.put(0.0, "q", "done");
    t.pop_one(1.0, "q", "w");
    t.ok("complete", 2.0, &["done", "w", "q", "{}"]);
    t.put(2.0, "q", "open");
    put_with(
        t,
        3.0,
        "q",
        "b",
        &["depends", "[\"done\",\"ghost\",\"open\"]"],
    );
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["open"]));
}

/// Re-putting without `depends` keeps the existing dependencies.
pub fn put_reput_without_depends_keeps_dependencies(t: &Harness) {
    t.put(0.0, "q", "a");
    put_with(t, 1.0, "q", "b", &["depends", "[\"a\"]"]);
    t.put(2.0, "q2", "b");
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["queue"], json!("q2"));
    assert_eq!(b["dependencies"], json!(["a"]));
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
}

/// Re-putting with `depends` replaces the dependency set and unlinks the old ones.
pub fn put_reput_with_depends_replaces_dependencies(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_with(t, 1.0, "q", "b", &["depends", "[\"a\"]"]);
    put_with(t, 2.0, "q", "b", &["depends", "[\"c\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["c"]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.get("c")["dependents"], json!(["b"]));
}

/// Re-putting with an empty `depends` list clears the dependencies and makes the job waiting.
pub fn put_reput_with_empty_depends_makes_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    put_with(t, 1.0, "q", "b", &["depends", "[\"a\"]"]);
    put_with(t, 2.0, "q", "b", &["depends", "[]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.ok("jobs", 2.0, &["depends", "q"]), json!([]));
}

/// A delay with unmet dependencies gives `depends`; when they complete the job is scheduled for put time + delay.
pub fn put_delay_with_dependencies_remembers_run_time(t: &Harness) {
    t.put(0.0, "q0", "a");
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "k", "{}", "100", "depends", "[\"a\"]"],
    );
    assert_eq!(t.state("b"), "depends");
    t.pop_one(1.0, "q0", "w");
    t.ok("complete", 10.0, &["a", "w", "q0", "{}"]);
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.ok("pop", 99.0, &["q", "w", "1"]), json!([]));
    assert_eq!(jids(&t.ok("pop", 100.0, &["q", "w", "1"])), vec!["b"]);
}

/// Putting an existing job into another queue moves it: gone from the old queue, waiting in the new one.
pub fn put_moves_job_between_queues(t: &Harness) {
    t.put(0.0, "q1", "j1");
    t.put(1.0, "q2", "j1");
    let j = t.get("j1");
    assert_eq!(j["queue"], json!("q2"));
    assert_eq!(j["state"], json!("waiting"));
    assert_eq!(t.ok("length", 1.0, &["q1"]), json!(0));
    assert_eq!(t.ok("length", 1.0, &["q2"]), json!(1));
    assert_eq!(t.ok("pop", 2.0, &["q1", "w", "10"]), json!([]));
    assert_eq!(jids(&t.ok("pop", 2.0, &["q2", "w", "10"])), vec!["j1"]);
}

/// Moving a scheduled job with delay 0 makes it waiting in the new queue and empties the old schedule.
pub fn put_moves_scheduled_job_to_waiting(t: &Harness) {
    t.ok("put", 0.0, &["w", "q1", "j1", "k", "{}", "50"]);
    t.put(1.0, "q2", "j1");
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(t.ok("jobs", 1.0, &["scheduled", "q1"]), json!([]));
    assert_eq!(t.ok("queues", 1.0, &["q1"])["scheduled"], json!(0));
    assert_eq!(t.ok("queues", 1.0, &["q2"])["waiting"], json!(1));
}

/// Each put appends a `put` history entry naming the queue, with `when` floored to seconds.
pub fn put_history_records_each_put_with_queue(t: &Harness) {
    t.put(1.7, "q1", "j1");
    t.put(5.2, "q2", "j1");
    assert_eq!(
        t.get("j1")["history"],
        json!([
            {"what": "put", "when": 1, "q": "q1"},
            {"what": "put", "when": 5, "q": "q2"},
        ])
    );
}

/// Every put publishes `{jid, event: "put", queue}` on `ql:log`, naming the target queue.
pub fn put_publishes_put_log_event(t: &Harness) {
    t.put(0.0, "q1", "j1");
    assert_eq!(
        take(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j1", "event": "put", "queue": "q1"})
        )]
    );
    t.put(1.0, "q2", "j1");
    assert_eq!(
        take(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j1", "event": "put", "queue": "q2"})
        )]
    );
}

/// A put of a tracked job publishes the log event, then the jid on `ql:put`.
pub fn put_tracked_job_publishes_put_channel(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.ok("track", 0.0, &["track", "j1"]);
    t.take_events();
    t.put(1.0, "q", "j1");
    assert_eq!(
        take(t),
        vec![
            (
                "ql:log".to_owned(),
                json!({"jid": "j1", "event": "put", "queue": "q"})
            ),
            ("ql:put".to_owned(), json!("j1")),
        ]
    );
}

/// Re-putting a job running under another worker publishes lock_lost to that worker, then on the log.
pub fn put_running_job_by_other_worker_publishes_lock_lost(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("put", 2.0, &["w2", "q", "j1", "k", "{}", "0"]);
    assert_eq!(
        take(t),
        vec![
            (
                "ql:log".to_owned(),
                json!({"jid": "j1", "event": "put", "queue": "q"})
            ),
            (
                "ql:w:w1".to_owned(),
                json!({"jid": "j1", "event": "lock_lost", "worker": "w1"})
            ),
            (
                "ql:log".to_owned(),
                json!({"jid": "j1", "event": "lock_lost", "worker": "w1"})
            ),
        ]
    );
}

/// Re-putting a running job takes it from its worker: waiting, no worker, no lock, old worker can't complete.
pub fn put_running_job_releases_lock(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.ok("put", 2.0, &["w2", "q", "j1", "k", "{}", "0"]);
    let j = t.get("j1");
    assert_eq!(j["state"], json!("waiting"));
    assert_eq!(j["worker"], json!(""));
    assert_eq!(j["expires"], json!(0));
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(t.ok("jobs", 2.0, &["running", "q"]), json!([]));
    t.err_with(
        "complete",
        3.0,
        &["j1", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "not currently running: waiting",
    );
}

/// Re-putting a running job by its own worker publishes no lock_lost.
pub fn put_running_job_by_same_worker_no_lock_lost(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("put", 2.0, &["w1", "q", "j1", "k", "{}", "0"]);
    assert_eq!(
        take(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j1", "event": "put", "queue": "q"})
        )]
    );
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// Re-putting a complete job resurrects it: waiting in the queue, gone from the completed list.
pub fn put_complete_job_resurrects(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w");
    t.ok("complete", 2.0, &["j1", "w", "q", "{}"]);
    assert_eq!(t.ok("jobs", 2.0, &["complete"]), json!(["j1"]));
    t.put(3.0, "q", "j1");
    let j = t.get("j1");
    assert_eq!(j["state"], json!("waiting"));
    assert_eq!(j["queue"], json!("q"));
    assert_eq!(history_whats(&j), vec!["put", "popped", "done", "put"]);
    assert_eq!(t.ok("jobs", 3.0, &["complete"]), json!([]));
    assert_eq!(t.pop_one(4.0, "q", "w"), Some("j1".to_owned()));
}

/// A resurrected job is no longer subject to completed-job expiry.
pub fn put_complete_job_escapes_expiry(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.put(0.5, "q", "j2");
    assert_eq!(t.pop_one(1.0, "q", "w"), Some("j1".to_owned()));
    t.ok("complete", 2.0, &["j1", "w", "q", "{}"]);
    t.put(3.0, "q", "j1");
    t.ok("config.set", 3.0, &["jobs-history", "-1"]);
    assert_eq!(t.pop_one(4.0, "q", "w"), Some("j2".to_owned()));
    t.ok("complete", 5.0, &["j2", "w", "q", "{}"]);
    // The sweep deleted the just-completed j2 but not the resurrected j1.
    assert_eq!(t.get("j2"), Value::Null);
    assert_eq!(t.state("j1"), "waiting");
}

/// Re-putting a failed job removes it from its failure group but keeps the `failure` field.
pub fn put_failed_job_leaves_failure_list_keeps_failure(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w");
    t.ok("fail", 2.0, &["j1", "w", "grp", "boom"]);
    assert_eq!(t.ok("failed", 2.0, &[]), json!({"grp": 1}));
    t.put(3.0, "q", "j1");
    assert_eq!(t.ok("failed", 3.0, &[]), json!({}));
    assert_eq!(
        t.ok("failed", 3.0, &["grp"]),
        json!({"total": 0, "jobs": []})
    );
    let j = t.get("j1");
    assert_eq!(j["state"], json!("waiting"));
    assert_eq!(
        j["failure"],
        json!({"group": "grp", "message": "boom", "when": 2, "worker": "w"})
    );
}

/// Re-putting a failed job decrements the `failed` stat of the queue it failed in (clew difference 8).
pub fn put_failed_job_decrements_failed_stat_of_failing_queue(t: &Harness) {
    t.put(0.0, "q1", "j1");
    t.pop_one(1.0, "q1", "w");
    t.ok("fail", 2.0, &["j1", "w", "grp", "boom"]);
    assert_eq!(t.ok("stats", 2.0, &["q1", "2"])["failed"], json!(1));
    t.put(3.0, "q2", "j1");
    let s1 = t.ok("stats", 3.0, &["q1", "3"]);
    assert_eq!(s1["failed"], json!(0));
    assert_eq!(s1["failures"], json!(1));
    assert_eq!(t.ok("stats", 3.0, &["q2", "3"])["failed"], json!(0));
}

/// Put registers a new queue name.
pub fn put_registers_queue(t: &Harness) {
    assert_eq!(t.ok("queues", 0.0, &[]), json!([]));
    t.put(0.0, "fresh", "j1");
    let qs = t.ok("queues", 0.0, &[]);
    let names: Vec<&str> = qs
        .as_array()
        .expect("array")
        .iter()
        .map(|q| q["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["fresh"]);
}

/// `requeue` of an existing job behaves like put: it moves the job and records history.
pub fn requeue_moves_existing_job(t: &Harness) {
    t.put(0.0, "q1", "j1");
    let r = t.ok("requeue", 1.0, &["w", "q2", "j1", "k", "{}", "0"]);
    assert_eq!(r, json!("j1"));
    let j = t.get("j1");
    assert_eq!(j["queue"], json!("q2"));
    assert_eq!(j["state"], json!("waiting"));
    assert_eq!(
        j["history"],
        json!([
            {"what": "put", "when": 0, "q": "q1"},
            {"what": "put", "when": 1, "q": "q2"},
        ])
    );
}

/// `requeue` of a missing job fails with not-found and creates nothing.
pub fn requeue_missing_job_errors(t: &Harness) {
    let before = t.snapshot(1.0, &["ghost"], &["q"]);
    t.err_with(
        "requeue",
        1.0,
        &["w", "q", "ghost", "k", "{}", "0"],
        ErrorKind::NotFound,
        "Requeue(): Job ghost does not exist",
    );
    assert_eq!(t.snapshot(1.0, &["ghost"], &["q"]), before);
    assert_eq!(t.get("ghost"), Value::Null);
}

/// Missing positional arguments are refused, naming the argument.
pub fn put_missing_arguments_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q"],
        ErrorKind::Invalid,
        "Put(): Arg \"jid\" missing",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1"],
        ErrorKind::Invalid,
        "Arg \"klass\" missing",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k"],
        ErrorKind::Invalid,
        "Arg \"data\" missing",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}"],
        ErrorKind::Invalid,
        "Arg \"delay\"",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// Malformed data is refused and nothing changes.
pub fn put_data_not_json_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    let before = t.snapshot(1.0, &["j1"], &["q"]);
    t.err_with(
        "put",
        1.0,
        &["w", "q2", "j1", "k", "{bad", "0"],
        ErrorKind::Invalid,
        "Put(): Arg \"data\" not JSON: {bad",
    );
    assert_eq!(t.snapshot(1.0, &["j1"], &["q"]), before);
}

/// A non-numeric or negative delay is refused.
pub fn put_bad_delay_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "soon"],
        ErrorKind::Invalid,
        "Put(): Arg \"delay\" not a number: soon",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "-1"],
        ErrorKind::Invalid,
        "Put(): Arg \"delay\" must not be negative: -1",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// A non-numeric or fractional priority is refused.
pub fn put_bad_priority_rejected(t: &Harness) {
    let base = ["w", "q", "j1", "k", "{}", "0", "priority"];
    let mut abc = base.to_vec();
    abc.push("abc");
    t.err_with(
        "put",
        0.0,
        &abc,
        ErrorKind::Invalid,
        "Put(): Arg \"priority\" not a number: abc",
    );
    let mut frac = base.to_vec();
    frac.push("1.5");
    t.err_with(
        "put",
        0.0,
        &frac,
        ErrorKind::Invalid,
        "Put(): Arg \"priority\" not an integer: 1.5",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// A non-numeric retries value is refused.
pub fn put_bad_retries_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "retries", "many"],
        ErrorKind::Invalid,
        "Put(): Arg \"retries\" not a number: many",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// Tags or depends that are not JSON are refused.
pub fn put_tags_or_depends_not_json_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "tags", "[oops"],
        ErrorKind::Invalid,
        "Put(): Arg \"tags\" not JSON",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "depends", "[oops"],
        ErrorKind::Invalid,
        "Put(): Arg \"depends\" not JSON",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// An odd number of optional arguments, or an unknown option name, is refused.
pub fn put_bad_option_pairs_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "priority"],
        ErrorKind::Invalid,
        "Put(): Odd number of optional arguments",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "colour", "red"],
        ErrorKind::Invalid,
        "Put(): Unknown option \"colour\"",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// Tags or depends that are JSON but not a list of strings are refused.
pub fn put_tags_or_depends_wrong_shape_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "tags", "{\"a\":1}"],
        ErrorKind::Invalid,
        "Put(): Arg \"tags\"",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "depends", "[1,2]"],
        ErrorKind::Invalid,
        "Put(): Arg \"depends\"",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// Negative retries are refused (clew difference 14).
pub fn put_negative_retries_rejected(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "k", "{}", "0", "retries", "-1"],
        ErrorKind::Invalid,
        "Put(): Arg \"retries\" must not be negative",
    );
    assert_eq!(t.get("j1"), Value::Null);
}

/// Empty jid, queue and klass count as missing (clew difference 14).
pub fn put_empty_names_count_as_missing(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "", "k", "{}", "0"],
        ErrorKind::Invalid,
        "Put(): Arg \"jid\" missing",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "", "j1", "k", "{}", "0"],
        ErrorKind::Invalid,
        "Put(): Arg \"queue\" missing",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j1", "", "{}", "0"],
        ErrorKind::Invalid,
        "Put(): Arg \"klass\" missing",
    );
    assert_eq!(t.get("j1"), Value::Null);
    assert_eq!(t.ok("queues", 0.0, &[]), json!([]));
}

/// A job cannot depend on itself (clew difference 14); the refused put changes nothing.
pub fn put_self_dependency_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    let before = t.snapshot(1.0, &["j1"], &["q"]);
    t.err_with(
        "put",
        1.0,
        &["w", "q", "j1", "k", "{}", "0", "depends", "[\"j1\"]"],
        ErrorKind::Invalid,
        "Put(): Arg \"depends\"",
    );
    assert_eq!(t.snapshot(1.0, &["j1"], &["q"]), before);
}

/// The `failed` decrement of a re-put lands in the stats bin of the day the job failed, not today's.
pub fn put_failed_job_decrements_failed_in_failure_day_bin(t: &Harness) {
    let day = 86_400.0;
    t.put(100.0, "q", "j1");
    t.pop_one(100.0, "q", "w");
    t.ok("fail", 200.0, &["j1", "w", "grp", "boom"]);
    t.put(day + 100.0, "q", "j1");
    let d0 = t.ok("stats", day + 100.0, &["q", "200"]);
    assert_eq!(d0["failed"], json!(0));
    assert_eq!(d0["failures"], json!(1));
    let d1 = t.ok("stats", day + 100.0, &["q", &(day + 100.0).to_string()]);
    assert_eq!(d1["failed"], json!(0));
    assert_eq!(d1["failures"], json!(0));
}

/// Put of a tracked job held by another worker: log put, lock_lost on the worker channel, on the log, then `ql:put`.
pub fn put_tracked_running_job_event_order(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.ok("track", 0.0, &["track", "j1"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("put", 2.0, &["w2", "q2", "j1", "k", "{}", "0"]);
    assert_eq!(
        take(t),
        vec![
            (
                "ql:log".to_owned(),
                json!({"jid": "j1", "event": "put", "queue": "q2"})
            ),
            (
                "ql:w:w1".to_owned(),
                json!({"jid": "j1", "event": "lock_lost", "worker": "w1"})
            ),
            (
                "ql:log".to_owned(),
                json!({"jid": "j1", "event": "lock_lost", "worker": "w1"})
            ),
            ("ql:put".to_owned(), json!("j1")),
        ]
    );
}

/// A delay whose dependencies are all missing or complete schedules the job.
pub fn put_delay_with_only_met_dependencies_is_scheduled(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "k", "{}", "10", "depends", "[\"ghost\"]"],
    );
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.ok("jobs", 0.0, &["scheduled", "q"]), json!(["b"]));
}

/// Re-putting a job keeps its dependents: they stay blocked until it completes.
pub fn put_reput_keeps_dependents(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "k", "{}", "0", "depends", "[\"a\"]"],
    );
    t.put(1.0, "q2", "a");
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
    assert_eq!(t.state("b"), "depends");
    t.pop_one(2.0, "q2", "w");
    t.ok("complete", 3.0, &["a", "w", "q2", "{}"]);
    assert_eq!(t.state("b"), "waiting");
}
