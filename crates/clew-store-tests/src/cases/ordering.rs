//! Conformance cases: work-list ordering.

#[allow(unused_imports)]
use crate::prelude::*;

fn put_prio(h: &Harness, now: f64, queue: &str, jid: &str, priority: &str) {
    h.ok(
        "put",
        now,
        &["w", queue, jid, "klass", "{}", "0", "priority", priority],
    );
}

fn pop_all(h: &Harness, now: f64, queue: &str) -> Vec<String> {
    jids(&h.ok("pop", now, &[queue, "w", "100"]))
}

/// A higher priority is popped first, even when put later.
pub fn ordering_higher_priority_first(t: &Harness) {
    put_prio(t, 1.0, "q", "low", "0");
    put_prio(t, 2.0, "q", "high", "10");
    put_prio(t, 3.0, "q", "mid", "5");
    assert_eq!(pop_all(t, 4.0, "q"), vec!["high", "mid", "low"]);
}

/// Within one priority, jobs pop in the order they were put (FIFO by put time).
pub fn ordering_fifo_within_priority(t: &Harness) {
    t.put(3.0, "q", "a");
    t.put(1.0, "q", "c");
    t.put(2.0, "q", "b");
    assert_eq!(pop_all(t, 4.0, "q"), vec!["c", "b", "a"]);
}

/// Jobs of equal priority put at the same `now` pop in put order, not jid order (clew difference 1).
pub fn ordering_fifo_at_equal_now(t: &Harness) {
    t.put(5.0, "q", "b");
    t.put(5.0, "q", "c");
    t.put(5.0, "q", "a");
    assert_eq!(jids(&t.ok("peek", 5.0, &["q", "10"])), vec!["b", "c", "a"]);
    assert_eq!(pop_all(t, 5.0, "q"), vec!["b", "c", "a"]);
}

/// Priority first, then FIFO, in one mixed pop.
pub fn ordering_priority_then_fifo_mixed(t: &Harness) {
    put_prio(t, 1.0, "q", "a", "0");
    put_prio(t, 2.0, "q", "b", "5");
    put_prio(t, 3.0, "q", "c", "0");
    put_prio(t, 4.0, "q", "d", "5");
    put_prio(t, 5.0, "q", "e", "-1");
    assert_eq!(pop_all(t, 6.0, "q"), vec!["b", "d", "a", "c", "e"]);
}

/// Negative priorities sort below zero, lowest last.
pub fn ordering_negative_priorities(t: &Harness) {
    put_prio(t, 1.0, "q", "m5", "-5");
    put_prio(t, 2.0, "q", "zero", "0");
    put_prio(t, 3.0, "q", "m1", "-1");
    assert_eq!(pop_all(t, 4.0, "q"), vec!["zero", "m1", "m5"]);
}

/// Re-putting a waiting job sends it to the back of its priority (it re-enters at the new `now`).
pub fn ordering_reput_goes_to_back(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    t.put(3.0, "q", "a");
    assert_eq!(pop_all(t, 4.0, "q"), vec!["b", "a"]);
}

/// Setting a waiting job's priority to its current value drops its time component: it goes ahead of its peers.
pub fn ordering_priority_command_drops_time_component(t: &Harness) {
    t.put(10.0, "q", "a");
    t.put(20.0, "q", "b");
    t.put(30.0, "q", "c");
    assert_eq!(t.ok("priority", 40.0, &["c", "0"]), json!(0));
    assert_eq!(pop_all(t, 50.0, "q"), vec!["c", "a", "b"]);
}

/// A job raised to priority p goes ahead of jobs put earlier with priority p.
pub fn ordering_reprioritized_job_ahead_of_same_priority(t: &Harness) {
    put_prio(t, 5.0, "q", "x", "1");
    put_prio(t, 10.0, "q", "y", "0");
    t.ok("priority", 20.0, &["y", "1"]);
    put_prio(t, 30.0, "q", "z", "1");
    assert_eq!(pop_all(t, 40.0, "q"), vec!["y", "x", "z"]);
}

/// A timed-out job goes to the very front of the work list, ahead of higher priorities.
pub fn ordering_timeout_puts_job_at_front(t: &Harness) {
    t.put(0.0, "q", "j1");
    t.pop_one(1.0, "q", "w1");
    put_prio(t, 2.0, "q", "hi", "100");
    t.put(3.0, "q", "lo");
    t.ok("timeout", 4.0, &["j1"]);
    assert_eq!(t.state("j1"), "stalled");
    assert_eq!(
        jids(&t.ok("peek", 5.0, &["q", "10"])),
        vec!["j1", "hi", "lo"]
    );
    assert_eq!(pop_all(t, 5.0, "q"), vec!["j1", "hi", "lo"]);
}

/// Recurring children enter the work list at their scheduled times, not at the pop's `now`.
pub fn ordering_recurring_children_by_scheduled_time(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "10", "0"],
    );
    t.put(15.0, "q", "w15");
    // Children due at 0, 10 and 20 are spawned by this pop.
    assert_eq!(pop_all(t, 25.0, "q"), vec!["r-1", "r-2", "w15", "r-3"]);
}

/// A promoted scheduled job enters the work list at the promoting call's `now`, not its due time.
pub fn ordering_promoted_scheduled_job_at_promotion_time(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "s", "klass", "{}", "1"]);
    t.put(5.0, "q", "w5");
    assert_eq!(pop_all(t, 10.0, "q"), vec!["w5", "s"]);
}

/// A job released by its last dependency enters the work list at the release time.
pub fn ordering_released_dependent_at_release_time(t: &Harness) {
    t.put(0.0, "other", "dep");
    t.ok(
        "put",
        0.0,
        &["w", "q", "b", "klass", "{}", "0", "depends", "[\"dep\"]"],
    );
    t.put(5.0, "q", "c");
    t.pop_one(6.0, "other", "w");
    t.ok("complete", 10.0, &["dep", "w", "other", "{}"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(pop_all(t, 11.0, "q"), vec!["c", "b"]);
}

/// A retried job re-enters at the retry time, behind jobs put before it.
pub fn ordering_retried_job_goes_behind_earlier_jobs(t: &Harness) {
    t.put(1.0, "q", "a");
    t.put(2.0, "q", "b");
    assert_eq!(t.pop_one(3.0, "q", "w"), Some("a".to_owned()));
    t.put(4.0, "q", "c");
    t.ok("retry", 5.0, &["a", "q", "w"]);
    assert_eq!(pop_all(t, 6.0, "q"), vec!["b", "c", "a"]);
}

/// Scheduled jobs promoted by the same call enter the work list in due order (ties FIFO, clew difference 1).
pub fn ordering_jobs_promoted_together_keep_due_order(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "b", "klass", "{}", "3"]);
    t.ok("put", 0.0, &["w", "q", "a", "klass", "{}", "1"]);
    t.ok("put", 0.0, &["w", "q", "c", "klass", "{}", "2"]);
    assert_eq!(pop_all(t, 10.0, "q"), vec!["a", "c", "b"]);
}

/// Recurring children take the template's priority, ahead of lower-priority waiting jobs put earlier.
pub fn ordering_recurring_children_use_template_priority(t: &Harness) {
    t.put(0.0, "q", "plain");
    t.ok(
        "recur",
        1.0,
        &[
            "q", "r", "klass", "{}", "interval", "10", "0", "priority", "3",
        ],
    );
    assert_eq!(pop_all(t, 2.0, "q"), vec!["r-1", "plain"]);
}
