//! Conformance cases: log.

#[allow(unused_imports)]
use crate::prelude::*;

fn last_history(h: &Harness, jid: &str) -> Value {
    let job = h.get(jid);
    job["history"]
        .as_array()
        .and_then(|a| a.last().cloned())
        .unwrap_or_else(|| panic!("{jid} has no history"))
}

/// log appends a history entry whose `what` is the message, returning null.
pub fn log_appends_history_entry(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("log", 5.0, &["a", "checkpoint"]), Value::Null);
    let job = t.get("a");
    assert_eq!(history_whats(&job), vec!["put", "checkpoint"]);
    assert_eq!(
        last_history(t, "a"),
        json!({"what": "checkpoint", "when": 5})
    );
}

/// log merges the keys of the data object into the history entry.
pub fn log_merges_data_keys(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "log",
        5.0,
        &[
            "a",
            "progress",
            r#"{"pct": 50, "stage": "resize", "nested": {"x": [1]}}"#,
        ],
    );
    assert_eq!(
        last_history(t, "a"),
        json!({"what": "progress", "when": 5, "pct": 50, "stage": "resize", "nested": {"x": [1]}})
    );
}

/// The log entry's `when` is floored to whole seconds.
pub fn log_when_is_floored(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("log", 12.9, &["a", "m"]);
    assert_eq!(last_history(t, "a")["when"], json!(12));
}

/// log works in any state (here a complete job) and leaves the job otherwise unchanged.
pub fn log_on_complete_job_keeps_state(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    let before = t.get("a");
    t.ok("log", 3.0, &["a", "audited"]);
    let mut after = t.get("a");
    assert_eq!(
        history_whats(&after),
        vec!["put", "popped", "done", "audited"]
    );
    after["history"].as_array_mut().unwrap().pop();
    assert_eq!(after, before);
}

/// log publishes no events.
pub fn log_publishes_nothing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.take_events();
    t.ok("log", 1.0, &["a", "m", "{\"k\": 1}"]);
    assert!(t.take_events().is_empty());
}

/// log on an unknown job is not found.
pub fn log_unknown_job_not_found(t: &Harness) {
    t.err_with(
        "log",
        1.0,
        &["ghost", "m"],
        ErrorKind::NotFound,
        "Log(): Job ghost does not exist",
    );
}

/// log with data that is not JSON is invalid and appends nothing.
pub fn log_non_json_data_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    t.err_with(
        "log",
        1.0,
        &["a", "m", "{bad"],
        ErrorKind::Invalid,
        "Log(): Arg \"data\" not JSON",
    );
    assert_eq!(history_whats(&t.get("a")), vec!["put"]);
}

/// log with JSON data that is not an object is invalid and appends nothing.
pub fn log_non_object_data_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    for data in ["[1, 2]", "\"text\"", "7"] {
        t.err_with(
            "log",
            1.0,
            &["a", "m", data],
            ErrorKind::Invalid,
            "Arg \"data\"",
        );
    }
    assert_eq!(history_whats(&t.get("a")), vec!["put"]);
}

/// log without a message is invalid.
pub fn log_missing_message_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    t.err_with(
        "log",
        1.0,
        &["a"],
        ErrorKind::Invalid,
        "Arg \"message\" missing",
    );
}
