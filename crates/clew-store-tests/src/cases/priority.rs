//! Conformance cases: priority.

#[allow(unused_imports)]
use crate::prelude::*;

/// `priority` returns the new priority and stores it.
pub fn priority_returns_and_stores_priority(t: &Harness) {
    t.put(0.0, "q", "j1");
    assert_eq!(t.ok("priority", 1.0, &["j1", "7"]), json!(7));
    assert_eq!(t.get("j1")["priority"], json!(7));
}

/// A negative priority is accepted, returned and stored.
pub fn priority_negative_accepted(t: &Harness) {
    t.put(0.0, "q", "j1");
    assert_eq!(t.ok("priority", 1.0, &["j1", "-3"]), json!(-3));
    assert_eq!(t.get("j1")["priority"], json!(-3));
}

/// `priority` adds no history entry and publishes no event.
pub fn priority_adds_no_history_or_events(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.take_events();
    t.ok("priority", 1.0, &["j1", "4"]);
    let j = t.get("j1");
    assert_eq!(history_whats(&j), vec!["put"]);
    assert!(t.take_events().is_empty());
}

/// `priority` of an unknown job fails with not-found.
pub fn priority_unknown_job_errors(t: &Harness) {
    t.err_with(
        "priority",
        0.0,
        &["ghost", "5"],
        ErrorKind::NotFound,
        "Priority(): Job ghost does not exist",
    );
    assert_eq!(t.get("ghost"), Value::Null);
}

/// A non-numeric priority is refused and the job is unchanged.
pub fn priority_non_numeric_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "priority",
        1.0,
        &["j1", "urgent"],
        ErrorKind::Invalid,
        "Priority(): Arg \"priority\" not a number: urgent",
    );
    assert_eq!(t.get("j1")["priority"], json!(0));
}

/// A fractional priority is refused (priorities are integers).
pub fn priority_fractional_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "priority",
        1.0,
        &["j1", "2.5"],
        ErrorKind::Invalid,
        "Priority(): Arg \"priority\" not an integer: 2.5",
    );
    assert_eq!(t.get("j1")["priority"], json!(0));
}

/// A missing priority argument is refused.
pub fn priority_missing_argument_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "priority",
        1.0,
        &["j1"],
        ErrorKind::Invalid,
        "Priority(): Arg \"priority\"",
    );
    t.err_with(
        "priority",
        1.0,
        &[],
        ErrorKind::Invalid,
        "Priority(): Arg \"jid\"",
    );
}

/// Raising a waiting job's priority moves it to the front of the work list.
pub fn priority_reorders_waiting_job(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.put(3.0, "q", "c");
    t.ok("priority", 4.0, &["c", "10"]);
    assert_eq!(jids(&t.ok("peek", 5.0, &["q", "10"])), vec!["c", "a", "b"]);
}

/// Lowering a waiting job's priority moves it behind the others.
pub fn priority_lowering_moves_job_back(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.put(3.0, "q", "c");
    t.ok("priority", 4.0, &["a", "-1"]);
    assert_eq!(
        jids(&t.ok("pop", 5.0, &["q", "w", "10"])),
        vec!["b", "c", "a"]
    );
}

/// On a running job the priority is stored but the job stays running and out of the work list.
pub fn priority_on_running_job_is_stored(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w");
    assert_eq!(t.ok("priority", 2.0, &["j1", "9"]), json!(9));
    let j = t.get("j1");
    assert_eq!(j["priority"], json!(9));
    assert_eq!(j["state"], json!("running"));
    assert_eq!(j["worker"], json!("w"));
    assert_eq!(t.ok("peek", 3.0, &["q", "10"]), json!([]));
    assert_eq!(t.ok("jobs", 3.0, &["running", "q"]), json!(["j1"]));
}

/// A priority set on a running job is kept when it is later retried back into the queue.
pub fn priority_on_running_job_used_after_retry(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w");
    t.put(2.0, "q", "other");
    t.ok("priority", 3.0, &["j1", "9"]);
    t.ok("retry", 4.0, &["j1", "q", "w"]);
    assert_eq!(
        jids(&t.ok("pop", 5.0, &["q", "w", "10"])),
        vec!["j1", "other"]
    );
}

/// On a scheduled job the priority is stored, the job stays scheduled, and it applies once promoted.
pub fn priority_on_scheduled_job_applies_after_promotion(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "s", "k", "{}", "10"]);
    t.ok(
        "put",
        1.0,
        &["w", "q", "hi", "k", "{}", "0", "priority", "5"],
    );
    t.ok("priority", 2.0, &["s", "9"]);
    assert_eq!(t.state("s"), "scheduled");
    assert_eq!(jids(&t.ok("peek", 3.0, &["q", "10"])), vec!["hi"]);
    assert_eq!(jids(&t.ok("pop", 10.0, &["q", "w", "10"])), vec!["s", "hi"]);
}

/// On a depends job the priority is stored, the job stays in depends, and it applies once released.
pub fn priority_on_depends_job_applies_after_release(t: &Harness) {
    t.put(0.0, "other", "dep");
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "k", "{}", "0", "depends", "[\"dep\"]"],
    );
    t.ok(
        "put",
        1.0,
        &["w", "q", "hi", "k", "{}", "0", "priority", "5"],
    );
    t.ok("priority", 2.0, &["b", "9"]);
    assert_eq!(t.state("b"), "depends");
    assert_eq!(t.ok("jobs", 2.0, &["depends", "q"]), json!(["b"]));
    t.pop_one(3.0, "other", "w");
    t.ok("complete", 4.0, &["dep", "w", "other", "{}"]);
    assert_eq!(jids(&t.ok("pop", 5.0, &["q", "w", "10"])), vec!["b", "hi"]);
}

/// On a failed or complete job the priority is stored without changing the state.
pub fn priority_on_failed_and_complete_jobs_is_stored(t: &Harness) {
    t.put(0.0, "q", "f");
    t.put(0.5, "q", "c");
    assert_eq!(t.pop_one(1.0, "q", "w"), Some("f".to_owned()));
    assert_eq!(t.pop_one(1.0, "q", "w"), Some("c".to_owned()));
    t.ok("fail", 2.0, &["f", "w", "grp", "boom"]);
    t.ok("complete", 2.0, &["c", "w", "q", "{}"]);
    assert_eq!(t.ok("priority", 3.0, &["f", "4"]), json!(4));
    assert_eq!(t.ok("priority", 3.0, &["c", "6"]), json!(6));
    let f = t.get("f");
    assert_eq!(f["priority"], json!(4));
    assert_eq!(f["state"], json!("failed"));
    let c = t.get("c");
    assert_eq!(c["priority"], json!(6));
    assert_eq!(c["state"], json!("complete"));
    assert_eq!(t.ok("peek", 3.0, &["q", "10"]), json!([]));
}

/// A priority set with the command is kept by a later re-put that gives no priority.
pub fn priority_kept_by_reput_without_priority(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.ok("priority", 1.0, &["j1", "3"]);
    t.put(2.0, "q2", "j1");
    assert_eq!(t.get("j1")["priority"], json!(3));
}

/// Setting the priority of a timed-out job re-scores it: it loses its place at the front but stays stalled.
pub fn priority_on_timed_out_job_loses_front_position(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    t.ok(
        "put",
        2.0,
        &["w", "q", "hi", "k", "{}", "0", "priority", "5"],
    );
    t.ok("timeout", 3.0, &["j1"]);
    assert_eq!(jids(&t.ok("peek", 4.0, &["q", "10"])), vec!["j1", "hi"]);
    t.ok("priority", 5.0, &["j1", "1"]);
    assert_eq!(t.state("j1"), "stalled");
    assert_eq!(jids(&t.ok("peek", 6.0, &["q", "10"])), vec!["hi", "j1"]);
}

/// Extra arguments are refused.
pub fn priority_extra_arguments_rejected(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.err_with(
        "priority",
        1.0,
        &["j1", "3", "4"],
        ErrorKind::Invalid,
        "Priority(): Too many arguments",
    );
    assert_eq!(t.get("j1")["priority"], json!(0));
}
