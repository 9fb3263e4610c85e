//! Conformance cases: track.

#[allow(unused_imports)]
use crate::prelude::*;

fn channel_msgs(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.channel.clone(), e.message.clone()))
        .collect()
}

fn tracking_channel(events: &[Event], channel: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.channel == channel)
        .map(|e| e.message.clone())
        .collect()
}

fn tracked_jids(v: &Value) -> Vec<String> {
    v["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{v} has no jobs array"))
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect()
}

/// track returns 1 when the job becomes tracked and 0 when it already was.
pub fn track_returns_1_then_0(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("track", 1.0, &["track", "a"]), json!(1));
    assert_eq!(t.ok("track", 2.0, &["track", "a"]), json!(0));
    assert_eq!(t.get("a")["tracked"], json!(true));
}

/// untrack returns 1 when the job was tracked and 0 when it was not; the flag clears.
pub fn untrack_returns_1_then_0(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 1.0, &["track", "a"]);
    assert_eq!(t.ok("track", 2.0, &["untrack", "a"]), json!(1));
    assert_eq!(t.get("a")["tracked"], json!(false));
    assert_eq!(t.ok("track", 3.0, &["untrack", "a"]), json!(0));
}

/// track publishes the jid on ql:track, untrack on ql:untrack.
pub fn track_and_untrack_publish_events(t: &Harness) {
    t.put(0.0, "q", "a");
    t.take_events();
    t.ok("track", 1.0, &["track", "a"]);
    t.ok("track", 2.0, &["untrack", "a"]);
    let ev = t.take_events();
    assert_eq!(
        channel_msgs(&ev),
        vec![
            ("ql:track".to_owned(), "a".to_owned()),
            ("ql:untrack".to_owned(), "a".to_owned())
        ]
    );
}

/// With nothing tracked the listing is `{jobs: [], expired: []}`.
pub fn track_listing_empty(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("track", 1.0, &[]), json!({"jobs": [], "expired": []}));
}

/// The listing holds full job objects of tracked jobs, ordered by tracking time.
pub fn track_listing_ordered_by_tracking_time(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    t.ok("track", 1.0, &["track", "c"]);
    t.ok("track", 2.0, &["track", "a"]);
    let listing = t.ok("track", 3.0, &[]);
    assert_eq!(tracked_jids(&listing), vec!["c", "a"]);
    assert_eq!(listing["expired"], json!([]));
    assert_eq!(listing["jobs"][1], t.get("a"));
}

/// An untracked job leaves the listing.
pub fn untrack_removes_from_listing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("track", 1.0, &["track", "a"]);
    t.ok("track", 1.0, &["track", "b"]);
    t.ok("track", 2.0, &["untrack", "a"]);
    assert_eq!(tracked_jids(&t.ok("track", 3.0, &[])), vec!["b"]);
}

/// A tracked job whose record expired is listed under `expired`.
pub fn track_listing_expired_after_expiry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("track", 0.0, &["track", "a"]);
    t.ok("track", 0.0, &["track", "b"]);
    t.ok("config.set", 0.0, &["jobs-history", "-1"]);
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.get("a"), Value::Null);
    let listing = t.ok("track", 3.0, &[]);
    assert_eq!(tracked_jids(&listing), vec!["b"]);
    assert_eq!(listing["expired"], json!(["a"]));
}

/// track and untrack of an unknown job are not found and publish nothing.
pub fn track_unknown_job_not_found(t: &Harness) {
    t.err_with(
        "track",
        1.0,
        &["track", "ghost"],
        ErrorKind::NotFound,
        "Track(): Job ghost does not exist",
    );
    t.err_with(
        "track",
        1.0,
        &["untrack", "ghost"],
        ErrorKind::NotFound,
        "Track(): Job ghost does not exist",
    );
    assert!(t.take_events().is_empty());
    assert_eq!(t.ok("track", 1.0, &[]), json!({"jobs": [], "expired": []}));
}

/// An unknown track action is invalid.
pub fn track_bad_action_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    t.err_with(
        "track",
        1.0,
        &["follow", "a"],
        ErrorKind::Invalid,
        "Track(): Unknown action \"follow\"",
    );
    assert_eq!(t.get("a")["tracked"], json!(false));
}

/// track with an action but no jid is invalid.
pub fn track_missing_jid_invalid(t: &Harness) {
    t.err_with(
        "track",
        1.0,
        &["track"],
        ErrorKind::Invalid,
        "Arg \"jid\" missing",
    );
}

/// A tracked job publishes its jid on ql:put when put again.
pub fn tracked_job_publishes_put(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.take_events();
    t.put(1.0, "q2", "a");
    let ev = t.take_events();
    assert_eq!(tracking_channel(&ev, "ql:put"), vec!["a"]);
    assert_eq!(ev.last().map(|e| e.channel.as_str()), Some("ql:put"));
}

/// A tracked job publishes its jid on ql:popped when popped.
pub fn tracked_job_publishes_popped(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("track", 0.0, &["track", "a"]);
    t.take_events();
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    let ev = t.take_events();
    assert_eq!(
        channel_msgs(&ev),
        vec![("ql:popped".to_owned(), "a".to_owned())]
    );
}

/// A tracked job publishes ql:completed on complete, both when finishing and when advancing.
pub fn tracked_job_publishes_completed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("complete", 2.0, &["a", "w1", "q", "{}", "next", "q2"]);
    assert_eq!(
        tracking_channel(&t.take_events(), "ql:completed"),
        vec!["a"]
    );
    t.pop_one(3.0, "q2", "w1");
    t.take_events();
    t.ok("complete", 4.0, &["a", "w1", "q2", "{}"]);
    assert_eq!(
        tracking_channel(&t.take_events(), "ql:completed"),
        vec!["a"]
    );
}

/// A tracked job publishes ql:failed when failed by its worker.
pub fn tracked_job_publishes_failed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("fail", 2.0, &["a", "w1", "grp", "boom"]);
    assert_eq!(tracking_channel(&t.take_events(), "ql:failed"), vec!["a"]);
}

/// A tracked job publishes ql:failed when retry exhausts its retries.
pub fn tracked_job_publishes_failed_on_retry_exhaustion(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["me", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    assert_eq!(t.ok("retry", 2.0, &["a", "q", "w1"]), json!(-1));
    assert_eq!(t.state("a"), "failed");
    assert_eq!(tracking_channel(&t.take_events(), "ql:failed"), vec!["a"]);
}

/// An untracked job publishes nothing on the tracking channels.
pub fn untracked_job_publishes_no_tracking_events(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    t.ok("fail", 2.0, &["b", "w1", "grp", "boom"]);
    t.put(3.0, "q", "b");
    let ev = t.take_events();
    assert!(!ev.is_empty());
    assert!(
        ev.iter().all(|e| e.channel == "ql:log"),
        "only ql:log events expected, got {:?}",
        channel_msgs(&ev)
    );
}
