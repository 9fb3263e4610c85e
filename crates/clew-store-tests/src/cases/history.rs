//! Conformance cases: history.

#[allow(unused_imports)]
use crate::prelude::*;

fn history(h: &Harness, jid: &str) -> Vec<Value> {
    h.get(jid)["history"]
        .as_array()
        .unwrap_or_else(|| panic!("{jid} has no history array"))
        .clone()
}

/// put appends `{what: put, when, q}`.
pub fn history_put_entry(t: &Harness) {
    t.put(3.0, "q", "a");
    assert_eq!(
        history(t, "a"),
        vec![json!({"what": "put", "when": 3, "q": "q"})]
    );
}

/// pop appends `{what: popped, when, worker}`.
pub fn history_popped_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(4.0, "q", "w1");
    assert_eq!(
        history(t, "a")[1],
        json!({"what": "popped", "when": 4, "worker": "w1"})
    );
}

/// complete appends `{what: done, when}` with no other keys.
pub fn history_done_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 5.0, &["a", "w1", "q", "{}"]);
    assert_eq!(history(t, "a")[2], json!({"what": "done", "when": 5}));
}

/// complete with next appends done, then put with the next queue.
pub fn history_advance_entries(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 5.0, &["a", "w1", "q", "{}", "next", "q2"]);
    let h = history(t, "a");
    assert_eq!(h.len(), 4);
    assert_eq!(h[2], json!({"what": "done", "when": 5}));
    assert_eq!(h[3], json!({"what": "put", "when": 5, "q": "q2"}));
}

/// fail appends `{what: failed, when, group, worker}`.
pub fn history_failed_entry_from_fail(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("fail", 6.0, &["a", "w1", "grp", "boom"]);
    assert_eq!(
        history(t, "a")[2],
        json!({"what": "failed", "when": 6, "group": "grp", "worker": "w1"})
    );
}

/// Retry exhaustion appends `{what: failed, when, group}` without a worker key.
pub fn history_failed_entry_from_retry_exhaustion(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["me", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    t.pop_one(1.0, "q", "w1");
    t.ok("retry", 7.0, &["a", "q", "w1"]);
    let h = history(t, "a");
    assert_eq!(h.len(), 3);
    assert_eq!(
        h[2],
        json!({"what": "failed", "when": 7, "group": "failed-retries-q"})
    );
}

/// A retry with retries left appends no history entry.
pub fn history_retry_appends_nothing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("retry", 2.0, &["a", "q", "w1"]);
    assert_eq!(history_whats(&t.get("a")), vec!["put", "popped"]);
}

/// timeout appends `{what: timed-out, when}` with no other keys.
pub fn history_timed_out_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("timeout", 8.0, &["a"]);
    assert_eq!(history(t, "a")[2], json!({"what": "timed-out", "when": 8}));
}

/// A lost lock's courtesy step appends timed-out; the later hand-over appends popped.
pub fn history_lock_lost_entries(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w1");
    // lock expires at 60; the courtesy step runs at 60, hand-over after grace at 70
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("a"));
    assert_eq!(
        history(t, "a"),
        vec![
            json!({"what": "put", "when": 0, "q": "q"}),
            json!({"what": "popped", "when": 0, "worker": "w1"}),
            json!({"what": "timed-out", "when": 60}),
            json!({"what": "popped", "when": 70, "worker": "w2"}),
        ]
    );
}

/// unfail appends put with the target queue.
pub fn history_unfail_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("fail", 2.0, &["a", "w1", "grp", "boom"]);
    assert_eq!(t.ok("unfail", 3.0, &["q2", "grp"]), json!(1));
    let h = history(t, "a");
    assert_eq!(
        h.last().cloned(),
        Some(json!({"what": "put", "when": 3, "q": "q2"}))
    );
    assert_eq!(
        history_whats(&t.get("a")),
        vec!["put", "popped", "failed", "put"]
    );
}

/// Every history `when` is floored to whole seconds.
pub fn history_when_is_floored(t: &Harness) {
    t.put(1.9, "q", "a");
    t.pop_one(2.999, "q", "w1");
    t.ok("complete", 3.5, &["a", "w1", "q", "{}"]);
    let whens: Vec<Value> = history(t, "a").iter().map(|h| h["when"].clone()).collect();
    assert_eq!(whens, vec![json!(1), json!(2), json!(3)]);
}

/// History is oldest first across a job's whole life.
pub fn history_is_oldest_first(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("log", 2.0, &["a", "note"]);
    t.ok("fail", 3.0, &["a", "w1", "grp", "boom"]);
    t.put(4.0, "q", "a");
    t.pop_one(5.0, "q", "w2");
    t.ok("complete", 6.0, &["a", "w2", "q", "{}"]);
    let h = history(t, "a");
    assert_eq!(
        history_whats(&t.get("a")),
        vec!["put", "popped", "note", "failed", "put", "popped", "done"]
    );
    let whens: Vec<Value> = h.iter().map(|e| e["when"].clone()).collect();
    assert_eq!(whens, (0..7).map(|i| json!(i)).collect::<Vec<_>>());
}

/// With max-job-history 5, the first entry is kept and the newest four fill the rest.
pub fn history_cap_keeps_first_and_newest(t: &Harness) {
    t.ok("config.set", 0.0, &["max-job-history", "5"]);
    for i in 0..10 {
        t.put(i as f64, &format!("q{i}"), "a");
    }
    let h = history(t, "a");
    let qs: Vec<Value> = h.iter().map(|e| e["q"].clone()).collect();
    assert_eq!(
        qs,
        vec![
            json!("q0"),
            json!("q6"),
            json!("q7"),
            json!("q8"),
            json!("q9")
        ]
    );
    let whens: Vec<Value> = h.iter().map(|e| e["when"].clone()).collect();
    assert_eq!(
        whens,
        vec![json!(0), json!(6), json!(7), json!(8), json!(9)]
    );
}

/// The history cap applies to every kind of entry, including log entries.
pub fn history_cap_applies_to_log_entries(t: &Harness) {
    t.ok("config.set", 0.0, &["max-job-history", "3"]);
    t.put(0.0, "q", "a");
    for i in 1..=5 {
        t.ok("log", i as f64, &["a", &format!("m{i}")]);
    }
    assert_eq!(history_whats(&t.get("a")), vec!["put", "m4", "m5"]);
}

/// Without max-job-history set, history is capped at 100 entries (first kept).
pub fn history_default_cap_is_100(t: &Harness) {
    t.put(0.0, "q", "a");
    for i in 1..150 {
        t.ok("log", i as f64, &["a", &format!("m{i}")]);
    }
    let whats = history_whats(&t.get("a"));
    assert_eq!(whats.len(), 100);
    assert_eq!(whats[0], "put");
    assert_eq!(whats[1], "m51");
    assert_eq!(whats[99], "m149");
}

/// max-job-history 0 means unlimited.
pub fn history_cap_zero_is_unlimited(t: &Harness) {
    t.ok("config.set", 0.0, &["max-job-history", "0"]);
    t.put(0.0, "q", "a");
    for i in 1..120 {
        t.ok("log", i as f64, &["a", &format!("m{i}")]);
    }
    let whats = history_whats(&t.get("a"));
    assert_eq!(whats.len(), 120);
    assert_eq!(whats[0], "put");
    assert_eq!(whats[119], "m119");
}
