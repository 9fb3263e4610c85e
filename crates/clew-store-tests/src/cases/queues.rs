//! Conformance cases: queues.

#[allow(unused_imports)]
use crate::prelude::*;

/// The `name` of each queue in a `queues` listing, in order.
fn queue_names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("queues returns an array")
        .iter()
        .map(|q| q["name"].as_str().expect("name").to_owned())
        .collect()
}

/// `queues` on an empty store is an empty list.
pub fn queues_empty_store_is_empty_list(t: &Harness) {
    assert_eq!(t.ok("queues", 0.0, &[]), json!([]));
}

/// `queues` lists every known queue in the order it was first seen.
pub fn queues_listed_in_first_seen_order(t: &Harness) {
    t.put(1.0, "zeta", "a");
    t.put(2.0, "alpha", "b");
    t.put(3.0, "mid", "c");
    t.put(4.0, "zeta", "d");
    assert_eq!(
        queue_names(&t.ok("queues", 5.0, &[])),
        ["zeta", "alpha", "mid"]
    );
}

/// Queues first seen at the same instant are listed by name (byte order).
pub fn queues_same_first_seen_time_ordered_by_name(t: &Harness) {
    t.put(1.0, "zz", "a");
    t.put(1.0, "Ab", "b");
    t.put(1.0, "aa", "c");
    assert_eq!(queue_names(&t.ok("queues", 2.0, &[])), ["Ab", "aa", "zz"]);
}

/// `queues <name>` returns one object with every count and the paused flag.
pub fn queues_one_queue_is_object_with_all_counts(t: &Harness) {
    // s1: popped at 0, lock expires at 60 (stalled when looked at, at 70).
    t.put(0.0, "q", "s1");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("s1"));
    // r1: popped at 50, lock expires at 110 (running at 70).
    t.put(50.0, "q", "r1");
    assert_eq!(t.pop_one(50.0, "q", "w").as_deref(), Some("r1"));
    t.put(51.0, "q", "w1");
    t.ok("put", 51.0, &["w", "q", "sc1", "klass", "{}", "1000"]);
    t.ok(
        "put",
        51.0,
        &["w", "q", "d1", "klass", "{}", "0", "depends", "[\"w1\"]"],
    );
    t.ok(
        "recur",
        51.0,
        &["q", "rc", "klass", "{}", "interval", "60", "1000"],
    );
    assert_eq!(
        t.ok("queues", 70.0, &["q"]),
        json!({
            "name": "q",
            "waiting": 1,
            "running": 1,
            "stalled": 1,
            "scheduled": 1,
            "depends": 1,
            "recurring": 1,
            "paused": false,
        })
    );
}

/// `queues` without a name returns the same object for every known queue.
pub fn queues_all_lists_counts_per_queue(t: &Harness) {
    t.put(1.0, "q1", "a");
    t.put(1.5, "q1", "b");
    t.ok("put", 2.0, &["w", "q2", "c", "klass", "{}", "30"]);
    assert_eq!(
        t.ok("queues", 3.0, &[]),
        json!([
            {"name": "q1", "waiting": 2, "running": 0, "stalled": 0, "scheduled": 0,
             "depends": 0, "recurring": 0, "paused": false},
            {"name": "q2", "waiting": 0, "running": 0, "stalled": 0, "scheduled": 1,
             "depends": 0, "recurring": 0, "paused": false},
        ])
    );
}

/// A lock whose expiry equals `now` counts as stalled, not running (inclusive boundary).
pub fn queues_stalled_boundary_is_inclusive(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    let before = t.ok("queues", 59.5, &["q"]);
    assert_eq!(
        (before["running"].clone(), before["stalled"].clone()),
        (json!(1), json!(0))
    );
    let at = t.ok("queues", 60.0, &["q"]);
    assert_eq!(
        (at["running"].clone(), at["stalled"].clone()),
        (json!(0), json!(1))
    );
}

/// `queues` promotes due scheduled jobs (inclusive) before counting; the job becomes waiting.
pub fn queues_promotes_due_scheduled_jobs(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "klass", "{}", "10"]);
    t.ok("put", 0.0, &["w", "q", "b", "klass", "{}", "20"]);
    let v = t.ok("queues", 10.0, &["q"]);
    assert_eq!(
        (v["waiting"].clone(), v["scheduled"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.state("b"), "scheduled");
}

/// The all-queues form of `queues` also promotes due scheduled jobs.
pub fn queues_all_form_promotes_due_scheduled_jobs(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "klass", "{}", "10"]);
    let v = t.ok("queues", 15.0, &[]);
    assert_eq!(v[0]["waiting"], json!(1));
    assert_eq!(v[0]["scheduled"], json!(0));
    assert_eq!(t.state("a"), "waiting");
}

/// A timed-out job sits in the work list, so it counts as waiting, not running or stalled.
pub fn queues_timed_out_job_counts_as_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    t.ok("timeout", 5.0, &["a"]);
    let v = t.ok("queues", 6.0, &["q"]);
    assert_eq!(
        (
            v["waiting"].clone(),
            v["running"].clone(),
            v["stalled"].clone()
        ),
        (json!(1), json!(0), json!(0))
    );
}

/// `queues` of a name never used reports zero counts and does not register the name.
pub fn queues_unknown_queue_is_all_zero(t: &Harness) {
    assert_eq!(
        t.ok("queues", 1.0, &["nope"]),
        json!({
            "name": "nope", "waiting": 0, "running": 0, "stalled": 0, "scheduled": 0,
            "depends": 0, "recurring": 0, "paused": false,
        })
    );
    assert_eq!(t.ok("queues", 2.0, &[]), json!([]));
}

/// `length` is running + waiting + scheduled; jobs waiting on dependencies are not counted.
pub fn length_counts_running_waiting_scheduled_not_depends(t: &Harness) {
    t.put(0.0, "q", "r");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("r"));
    t.put(1.0, "q", "w1");
    t.put(1.0, "q", "w2");
    t.ok("put", 1.0, &["w", "q", "s", "klass", "{}", "100"]);
    t.ok(
        "put",
        1.0,
        &["w", "q", "d", "klass", "{}", "0", "depends", "[\"w1\"]"],
    );
    t.put(1.0, "other", "x");
    assert_eq!(t.ok("length", 2.0, &["q"]), json!(4));
    assert_eq!(t.ok("length", 2.0, &["empty"]), json!(0));
}

/// `length` counts a stalled lock (expired) as running.
pub fn length_includes_expired_locks(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.ok("length", 1000.0, &["q"]), json!(1));
}

/// `pause` sets the paused flag and stops pops; `unpause` clears it and pops resume.
pub fn pause_and_unpause(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("pause", 1.0, &["q"]), Value::Null);
    assert_eq!(t.ok("queues", 2.0, &["q"])["paused"], json!(true));
    assert_eq!(t.ok("pop", 3.0, &["q", "w", "1"]), json!([]));
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.ok("unpause", 4.0, &["q"]), Value::Null);
    assert_eq!(t.ok("queues", 5.0, &["q"])["paused"], json!(false));
    assert_eq!(t.pop_one(6.0, "q", "w").as_deref(), Some("a"));
}

/// `pause` and `unpause` take several queues at once; the listing shows each flag.
pub fn pause_several_queues_shows_in_listing(t: &Harness) {
    t.put(1.0, "a", "j1");
    t.put(2.0, "b", "j2");
    t.put(3.0, "c", "j3");
    t.ok("pause", 4.0, &["a", "b", "c"]);
    t.ok("unpause", 5.0, &["b"]);
    let v = t.ok("queues", 6.0, &[]);
    let flags: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_owned(),
                q["paused"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("a".to_owned(), true),
            ("b".to_owned(), false),
            ("c".to_owned(), true)
        ]
    );
}

/// A paused queue can still be peeked.
pub fn paused_queue_can_be_peeked(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("pause", 1.0, &["q"]);
    let v = t.ok("peek", 2.0, &["q", "10"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["jid"], json!("a"));
}

/// `queue.forget` removes names from the known-queue list; jobs are untouched.
pub fn queue_forget_removes_name(t: &Harness) {
    t.put(1.0, "a", "j1");
    t.put(2.0, "b", "j2");
    t.put(3.0, "c", "j3");
    assert_eq!(t.ok("queue.forget", 4.0, &["a", "c"]), Value::Null);
    assert_eq!(queue_names(&t.ok("queues", 5.0, &[])), ["b"]);
    assert_eq!(t.state("j1"), "waiting");
    assert_eq!(t.ok("queues", 5.0, &["a"])["waiting"], json!(1));
}

/// A put into a forgotten queue registers it again, as first seen at that put.
pub fn put_reregisters_forgotten_queue(t: &Harness) {
    t.put(1.0, "a", "j1");
    t.put(2.0, "b", "j2");
    t.ok("queue.forget", 3.0, &["a"]);
    t.put(4.0, "a", "j3");
    assert_eq!(queue_names(&t.ok("queues", 5.0, &[])), ["b", "a"]);
}

/// Pausing a never-used queue only marks it paused: it is not added to the queue list.
pub fn pause_unknown_queue_does_not_register_it(t: &Harness) {
    t.ok("pause", 1.0, &["ghost"]);
    assert_eq!(t.ok("queues", 2.0, &[]), json!([]));
    assert_eq!(t.ok("queues", 2.0, &["ghost"])["paused"], json!(true));
    t.put(3.0, "ghost", "a");
    assert_eq!(t.ok("queues", 4.0, &[])[0]["paused"], json!(true));
    assert_eq!(t.ok("pop", 5.0, &["ghost", "w", "1"]), json!([]));
}
