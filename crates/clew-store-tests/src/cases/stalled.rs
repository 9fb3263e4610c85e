//! Conformance cases: stalled.
//!
//! Lost locks (qless-core §8): the courtesy step on the first pop after a lock
//! expires, the grace period, the hand-over with one retry used, and the
//! failure when retries run out. Unless a case says otherwise, a job popped at
//! 0 has its lock expire at 60 (default heartbeat) and the grace period is 10.

#[allow(unused_imports)]
use crate::prelude::*;

/// Puts `jid` into `queue` at `now` with `retries` and pops it for `worker` at the same time.
fn start_with(h: &Harness, now: f64, queue: &str, jid: &str, worker: &str, retries: &str) {
    h.ok(
        "put",
        now,
        &["me", queue, jid, "klass", "{}", "0", "retries", retries],
    );
    assert_eq!(h.pop_one(now, queue, worker).as_deref(), Some(jid));
}

fn lock_lost(jid: &str, worker: &str) -> Value {
    json!({"jid": jid, "event": "lock_lost", "worker": worker})
}

/// A pop before the lock expires leaves the running job alone.
pub fn pop_before_expiry_does_nothing(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    assert_eq!(t.ok("pop", 59.9, &["q", "w2", "1"]), json!([]));
    let job = t.get("j");
    assert_eq!(history_whats(&job), vec!["put", "popped"]);
    assert_eq!(job["expires"].as_f64(), Some(60.0));
    assert_eq!(drain(t), vec![]);
}

/// The first pop at the expiry (inclusive) only gives a courtesy step: the job is not handed out.
pub fn courtesy_step_does_not_hand_out_job(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    let job = t.get("j");
    assert_eq!(job["state"], "running");
    assert_eq!(job["worker"], "w1");
    assert_eq!(job["remaining"], json!(5));
    assert_eq!(history_whats(&job), vec!["put", "popped", "timed-out"]);
    assert_eq!(job["history"][2], json!({"what": "timed-out", "when": 60}));
}

/// The courtesy step pushes the lock expiry to now + grace-period (default 10).
pub fn courtesy_step_extends_lock_by_grace_period(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(63.0, "q", "w2");
    assert_eq!(t.get("j")["expires"].as_f64(), Some(73.0));
}

/// With the default grace, a pop at expiry+10 returns nothing, one at expiry+10+10 hands the job over with remaining-1.
pub fn grace_window_then_handover(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("pop", 70.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("pop", 79.9, &["q", "w2", "1"]), json!([]));
    let popped = t.ok("pop", 80.0, &["q", "w2", "1"]);
    assert_eq!(jids(&popped), vec!["j"]);
    assert_eq!(popped[0]["state"], "running");
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(popped[0]["remaining"], json!(4));
    assert_eq!(popped[0]["expires"].as_f64(), Some(140.0));
    let job = t.get("j");
    assert_eq!(
        job["history"],
        json!([
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 0, "worker": "w1"},
            {"what": "timed-out", "when": 70},
            {"what": "popped", "when": 80, "worker": "w2"},
        ])
    );
}

/// After the hand-over the job is in the new worker's set and no longer in the old one's.
pub fn handover_moves_job_between_worker_sets(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    // After the courtesy step the old worker no longer lists the job.
    assert_eq!(
        t.ok("workers", 61.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("j"));
    assert_eq!(
        t.ok("workers", 71.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 71.0, &["w2"]),
        json!({"jobs": ["j"], "stalled": []})
    );
}

/// A configured grace period is used for the courtesy window.
pub fn custom_grace_period(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "30"]);
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.get("j")["expires"].as_f64(), Some(90.0));
    assert_eq!(t.ok("pop", 89.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(90.0, "q", "w2").as_deref(), Some("j"));
}

/// With grace-period 0 the job moves on the first pop after expiry; timed-out and popped share the second.
pub fn grace_period_zero_hands_over_on_first_pop(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    start(t, 0.0, "q", "j", "w1");
    let popped = t.ok("pop", 60.5, &["q", "w2", "1"]);
    assert_eq!(jids(&popped), vec!["j"]);
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(popped[0]["remaining"], json!(4));
    let job = t.get("j");
    assert_eq!(
        job["history"],
        json!([
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 0, "worker": "w1"},
            {"what": "timed-out", "when": 60},
            {"what": "popped", "when": 60, "worker": "w2"},
        ])
    );
}

/// A pop of several hands over the expired lock first, then takes the
/// rest from the work list in order; what it did not take stays for the
/// next pop. (A store may read the work list ahead with the expired locks.)
pub fn handover_then_work_list_in_order(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    start(t, 0.0, "q", "j", "w1");
    for (i, jid) in ["a", "b", "c", "d"].iter().enumerate() {
        t.put(1.0 + i as f64, "q", jid);
    }
    let popped = t.ok("pop", 61.0, &["q", "w2", "3"]);
    assert_eq!(jids(&popped), vec!["j", "a", "b"]);
    assert_eq!(t.state("c"), "waiting");
    let popped = t.ok("pop", 62.0, &["q", "w3", "3"]);
    assert_eq!(jids(&popped), vec!["c", "d"]);
    assert_eq!(popped[0]["worker"], "w3");
    assert_eq!(t.ok("pop", 63.0, &["q", "w3", "3"]), json!([]));
}

/// The owner can still fail the job during the grace window.
pub fn owner_can_fail_during_grace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    assert_eq!(t.ok("fail", 65.0, &["j", "w1", "g", "late"]), json!("j"));
    let job = t.get("j");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["failure"]["worker"], "w1");
    assert_eq!(t.ok("pop", 80.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.state("j"), "failed");
}

/// The owner can still complete the job during the grace window; later pops find nothing.
pub fn owner_can_complete_during_grace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    assert_eq!(
        t.ok("complete", 65.0, &["j", "w1", "q", "{}"]),
        json!("complete")
    );
    assert_eq!(t.ok("pop", 80.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(
        history_whats(&t.get("j")),
        vec!["put", "popped", "timed-out", "done"]
    );
}

/// Each courtesy step increments the day's `retries` stat for the queue; the hand-over does not.
pub fn courtesy_step_increments_retries_stat(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    assert_eq!(t.ok("stats", 61.0, &["q", "61"])["retries"], json!(1));
    t.pop_one(70.0, "q", "w2");
    assert_eq!(t.ok("stats", 71.0, &["q", "71"])["retries"], json!(1));
    // The new owner loses the lock too: another courtesy step.
    t.pop_one(130.0, "q", "w3");
    let stats = t.ok("stats", 131.0, &["q", "131"]);
    assert_eq!(stats["retries"], json!(2));
    assert_eq!(stats["failures"], json!(0));
    assert_eq!(stats["failed"], json!(0));
}

/// Every lost lock gets its own courtesy step, not only the first one.
pub fn every_lost_lock_gets_courtesy(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("j"));
    // w2's lock expires at 130: courtesy first, not an immediate hand-over.
    assert_eq!(t.ok("pop", 130.0, &["q", "w3", "1"]), json!([]));
    assert_eq!(t.get("j")["worker"], "w2");
    assert_eq!(t.pop_one(140.0, "q", "w3").as_deref(), Some("j"));
    let job = t.get("j");
    assert_eq!(job["remaining"], json!(3));
    assert_eq!(
        history_whats(&job),
        vec![
            "put",
            "popped",
            "timed-out",
            "popped",
            "timed-out",
            "popped"
        ]
    );
}

/// With retries 1 the first lost lock hands over with remaining 0; the second fails the job.
pub fn last_retry_handed_over_then_failed(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    start_with(t, 0.0, "q", "j", "w1", "1");
    let popped = t.ok("pop", 60.0, &["q", "w2", "1"]);
    assert_eq!(jids(&popped), vec!["j"]);
    assert_eq!(popped[0]["remaining"], json!(0));
    assert_eq!(t.ok("pop", 120.0, &["q", "w3", "1"]), json!([]));
    assert_eq!(t.state("j"), "failed");
}

/// Exhausting retries through lost locks fails the job into failed-retries-`<queue>` with worker ''.
pub fn exhausted_by_invalidation_fails_job(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("pop", 70.5, &["q", "w2", "1"]), json!([]));
    let job = t.get("j");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["worker"], "");
    assert_eq!(
        job["failure"],
        json!({
            "group": "failed-retries-q",
            "message": "Job exhausted retries in queue \"q\"",
            "when": 70,
            "worker": "",
        })
    );
    let last = job["history"].as_array().and_then(|h| h.last()).cloned();
    assert_eq!(
        last,
        Some(json!({"what": "failed", "when": 70, "group": "failed-retries-q"}))
    );
    assert_eq!(
        t.ok("failed", 71.0, &["failed-retries-q"]),
        json!({"total": 1, "jobs": ["j"]})
    );
    let counts = t.ok("queues", 71.0, &["q"]);
    assert_eq!(counts["running"], json!(0));
    assert_eq!(counts["stalled"], json!(0));
    assert_eq!(counts["waiting"], json!(0));
}

/// Exhaustion by invalidation publishes the `failed` log event naming the old worker, and counts the failure.
pub fn exhausted_by_invalidation_publishes_failed_with_old_worker(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    t.pop_one(60.0, "q", "w2");
    drain(t);
    t.pop_one(70.0, "q", "w2");
    assert_eq!(
        drain(t),
        vec![(
            "ql:log".to_owned(),
            json!({
                "jid": "j",
                "event": "failed",
                "group": "failed-retries-q",
                "worker": "w1",
                "message": "Job exhausted retries in queue \"q\"",
            })
        )]
    );
    let stats = t.ok("stats", 71.0, &["q", "71"]);
    assert_eq!(stats["failures"], json!(1));
    assert_eq!(stats["failed"], json!(1));
    assert_eq!(stats["retries"], json!(1));
}

/// A tracked job exhausted by invalidation also publishes `ql:failed`.
pub fn exhausted_by_invalidation_tracked_publishes_failed(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    t.ok("track", 0.0, &["track", "j"]);
    t.pop_one(60.0, "q", "w2");
    drain(t);
    t.pop_one(70.0, "q", "w2");
    let mut channels: Vec<String> = drain(t).into_iter().map(|(c, _)| c).collect();
    channels.sort();
    assert_eq!(channels, vec!["ql:failed", "ql:log"]);
}

/// The courtesy step publishes lock_lost on the old worker's channel, then on the log.
pub fn courtesy_step_publishes_lock_lost(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    t.pop_one(60.0, "q", "w2");
    assert_eq!(
        drain(t),
        vec![
            ("ql:w:w1".to_owned(), lock_lost("j", "w1")),
            ("ql:log".to_owned(), lock_lost("j", "w1")),
        ]
    );
}

/// For a tracked job the courtesy step publishes `ql:stalled`, then the worker channel, then the log.
pub fn courtesy_step_tracked_event_order(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("track", 0.0, &["track", "j"]);
    drain(t);
    t.pop_one(60.0, "q", "w2");
    assert_eq!(
        drain(t),
        vec![
            ("ql:stalled".to_owned(), json!("j")),
            ("ql:w:w1".to_owned(), lock_lost("j", "w1")),
            ("ql:log".to_owned(), lock_lost("j", "w1")),
        ]
    );
}

/// The hand-over after the grace window publishes no second lock_lost.
pub fn handover_publishes_no_second_lock_lost(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.pop_one(60.0, "q", "w2");
    drain(t);
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("j"));
    assert_eq!(drain(t), vec![]);
}

/// With grace 0 and a tracked job, one pop publishes stalled, lock_lost (worker, log), then popped.
pub fn grace_zero_tracked_event_order(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    start(t, 0.0, "q", "j", "w1");
    t.ok("track", 0.0, &["track", "j"]);
    drain(t);
    t.pop_one(60.0, "q", "w2");
    assert_eq!(
        drain(t),
        vec![
            ("ql:stalled".to_owned(), json!("j")),
            ("ql:w:w1".to_owned(), lock_lost("j", "w1")),
            ("ql:log".to_owned(), lock_lost("j", "w1")),
            ("ql:popped".to_owned(), json!("j")),
        ]
    );
}

/// A stalled job is handed out even when the queue is at max-concurrency (expired locks do not count).
pub fn stalled_job_popped_at_max_concurrency(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok("config.set", 0.0, &["q-max-concurrency", "1"]);
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("pop", 10.0, &["q", "w2", "1"]), json!([]));
    let popped = t.ok("pop", 61.0, &["q", "w2", "5"]);
    assert_eq!(jids(&popped), vec!["a"]);
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(t.state("b"), "waiting");
}

/// The courtesy step does not use up the pop: other waiting jobs are still handed out.
pub fn courtesy_step_still_hands_out_waiting_jobs(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    t.put(1.0, "q", "b");
    assert_eq!(jids(&t.ok("pop", 60.0, &["q", "w2", "1"])), vec!["b"]);
    assert_eq!(t.get("a")["worker"], "w1");
    assert_eq!(
        history_whats(&t.get("a")),
        vec!["put", "popped", "timed-out"]
    );
}

/// A pop of count 1 examines at most one expired lock (the earliest).
pub fn courtesy_limited_by_pop_count(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 5.0, "q", "b", "w1");
    assert_eq!(t.ok("pop", 100.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(
        history_whats(&t.get("a")),
        vec!["put", "popped", "timed-out"]
    );
    assert_eq!(history_whats(&t.get("b")), vec!["put", "popped"]);
}

/// A pop on a paused queue returns nothing and does not process expired locks.
pub fn paused_queue_pop_skips_stalled_jobs(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("pause", 1.0, &["q"]);
    assert_eq!(t.ok("pop", 100.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(history_whats(&t.get("j")), vec!["put", "popped"]);
    assert_eq!(t.ok("stats", 100.0, &["q", "100"])["retries"], json!(0));
}

/// `queues` counts a lock as stalled from its expiry on (inclusive), running before.
pub fn queues_counts_stalled_at_expiry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let at = |now: f64| {
        let c = t.ok("queues", now, &["q"]);
        (c["running"].clone(), c["stalled"].clone())
    };
    assert_eq!(at(59.9), (json!(1), json!(0)));
    assert_eq!(at(60.0), (json!(0), json!(1)));
    assert_eq!(at(1000.0), (json!(0), json!(1)));
    let all = t.ok("queues", 60.0, &[]);
    assert_eq!(all[0]["stalled"], json!(1));
}

/// `jobs stalled` lists locks with expiry at or before now, by expiry.
pub fn jobs_stalled_lists_expired_locks(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 10.0, "q", "b", "w1");
    assert_eq!(t.ok("jobs", 59.9, &["stalled", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 60.0, &["stalled", "q"]), json!(["a"]));
    assert_eq!(t.ok("jobs", 70.0, &["stalled", "q"]), json!(["a", "b"]));
    assert_eq!(
        t.ok("jobs", 70.0, &["stalled", "q", "1", "5"]),
        json!(["b"])
    );
}

/// `jobs running` lists locks with expiry at or after now, so a lock expiring exactly now is listed.
pub fn jobs_running_includes_lock_expiring_now(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 10.0, "q", "b", "w1");
    assert_eq!(t.ok("jobs", 59.0, &["running", "q"]), json!(["a", "b"]));
    assert_eq!(t.ok("jobs", 60.0, &["running", "q"]), json!(["a", "b"]));
    assert_eq!(t.ok("jobs", 60.1, &["running", "q"]), json!(["b"]));
    assert_eq!(t.ok("jobs", 70.1, &["running", "q"]), json!([]));
}

/// `workers` reports a lock as stalled from its expiry on (inclusive).
pub fn workers_report_stalled_at_expiry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok("workers", 59.9, &["w1"]),
        json!({"jobs": ["j"], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 60.0, &["w1"]),
        json!({"jobs": [], "stalled": ["j"]})
    );
    assert_eq!(
        t.ok("workers", 60.0, &[]),
        json!([{"name": "w1", "jobs": 0, "stalled": 1}])
    );
}
