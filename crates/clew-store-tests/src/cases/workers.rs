//! Conformance cases: workers.

#[allow(unused_imports)]
use crate::prelude::*;

/// `workers` on an empty store is an empty list.
pub fn workers_empty_store_is_empty_list(t: &Harness) {
    assert_eq!(t.ok("workers", 0.0, &[]), json!([]));
}

/// `workers` lists each worker with its running and stalled counts, most recently active first.
pub fn workers_most_recent_first_with_counts(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.pop_one(2.0, "q", "w2").as_deref(), Some("b"));
    assert_eq!(t.pop_one(3.0, "q", "w1").as_deref(), Some("c"));
    t.ok("pop", 4.0, &["empty", "w3", "1"]);
    assert_eq!(
        t.ok("workers", 5.0, &[]),
        json!([
            {"name": "w3", "jobs": 0, "stalled": 0},
            {"name": "w1", "jobs": 2, "stalled": 0},
            {"name": "w2", "jobs": 1, "stalled": 0},
        ])
    );
}

/// Workers last active at the same instant are listed by name, descending (reverse range).
pub fn workers_same_activity_time_ordered_by_name_descending(t: &Harness) {
    t.ok("pop", 1.0, &["q", "w-b", "1"]);
    t.ok("pop", 1.0, &["q", "w-a", "1"]);
    t.ok("pop", 1.0, &["q", "w-c", "1"]);
    let v = t.ok("workers", 2.0, &[]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w-c", "w-b", "w-a"]);
}

/// Jobs whose lock expired (expiry ≤ now) count as stalled; the others as jobs.
pub fn workers_counts_split_running_and_stalled(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("b"));
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("c"));
    t.ok("heartbeat", 30.0, &["b", "w"]);
    // a expires at 60, c at 70, b at 90; at 70, a and c are stalled.
    assert_eq!(
        t.ok("workers", 70.0, &[]),
        json!([{"name": "w", "jobs": 1, "stalled": 2}])
    );
}

/// A pop registers its worker even when it hands out nothing.
pub fn workers_empty_pop_registers_worker(t: &Harness) {
    assert_eq!(t.ok("pop", 1.0, &["q", "idle", "5"]), json!([]));
    assert_eq!(
        t.ok("workers", 2.0, &[]),
        json!([{"name": "idle", "jobs": 0, "stalled": 0}])
    );
}

/// A pop on a paused queue returns before registering the worker.
pub fn workers_pop_on_paused_queue_does_not_register(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("pause", 0.0, &["q"]);
    assert_eq!(t.ok("pop", 1.0, &["q", "w", "1"]), json!([]));
    assert_eq!(t.ok("workers", 2.0, &[]), json!([]));
}

/// A heartbeat counts as activity and moves the worker to the front of the list.
pub fn workers_heartbeat_updates_recency(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.pop_one(2.0, "q", "w2").as_deref(), Some("b"));
    t.ok("heartbeat", 3.0, &["a", "w1"]);
    let v = t.ok("workers", 4.0, &[]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w1", "w2"]);
}

/// Completing a job takes it out of its worker's counts.
pub fn workers_complete_removes_job_from_worker(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("b"));
    t.ok("complete", 2.0, &["a", "w", "q", "{}"]);
    assert_eq!(
        t.ok("workers", 3.0, &[]),
        json!([{"name": "w", "jobs": 1, "stalled": 0}])
    );
    assert_eq!(
        t.ok("workers", 3.0, &["w"]),
        json!({"jobs": ["b"], "stalled": []})
    );
}

/// `workers <name>` lists the worker's live jobs newest expiry first.
pub fn worker_detail_jobs_newest_expiry_first(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("b"));
    assert_eq!(t.pop_one(20.0, "q", "other").as_deref(), Some("c"));
    assert_eq!(
        t.ok("workers", 30.0, &["w"]),
        json!({"jobs": ["b", "a"], "stalled": []})
    );
}

/// `workers <name>` puts jobs whose lock expiry is at or before now under `stalled`.
pub fn worker_detail_stalled_boundary_is_inclusive(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(0.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("b"));
    // a expires at 60, b at 70.
    assert_eq!(
        t.ok("workers", 59.0, &["w"]),
        json!({"jobs": ["b", "a"], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 60.0, &["w"]),
        json!({"jobs": ["b"], "stalled": ["a"]})
    );
    let late = t.ok("workers", 80.0, &["w"]);
    assert_eq!(late["jobs"], json!([]));
    let mut stalled: Vec<String> = serde_json::from_value(late["stalled"].clone()).unwrap();
    stalled.sort();
    assert_eq!(stalled, ["a", "b"]);
}

/// `workers <name>` of an unknown worker is two empty lists.
pub fn worker_detail_unknown_worker_is_empty(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w");
    assert_eq!(
        t.ok("workers", 1.0, &["nobody"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// Workers idle for at least 86400 s (inclusive) are pruned from `workers`, with their job sets.
pub fn workers_pruned_at_default_max_worker_age(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "old").as_deref(), Some("a"));
    t.ok("pop", 50_000.0, &["q", "young", "1"]);
    let v = t.ok("workers", 86_399.5, &[]);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        t.ok("workers", 86_400.0, &[]),
        json!([{"name": "young", "jobs": 0, "stalled": 0}])
    );
    assert_eq!(
        t.ok("workers", 86_401.0, &["old"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// `workers <name>` prunes stale workers too, so a stale worker's jobs vanish from its detail.
pub fn worker_detail_prunes_stale_worker(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "old").as_deref(), Some("a"));
    assert_eq!(
        t.ok("workers", 86_400.0, &["old"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(t.ok("workers", 86_400.0, &[]), json!([]));
}

/// The `max-worker-age` config overrides the pruning age (boundary still inclusive).
pub fn workers_max_worker_age_config_override(t: &Harness) {
    t.ok("config.set", 0.0, &["max-worker-age", "100"]);
    t.ok("pop", 0.0, &["q", "w", "1"]);
    assert_eq!(
        t.ok("workers", 99.0, &[]),
        json!([{"name": "w", "jobs": 0, "stalled": 0}])
    );
    assert_eq!(t.ok("workers", 100.0, &[]), json!([]));
}

/// `worker.deregister` removes workers from the list but keeps their job sets.
pub fn worker_deregister_removes_name_keeps_jobs(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("pop", 2.0, &["q", "w2", "1"]);
    t.ok("pop", 3.0, &["q", "w3", "1"]);
    assert_eq!(t.ok("worker.deregister", 4.0, &["w1", "w3"]), Value::Null);
    assert_eq!(
        t.ok("workers", 5.0, &[]),
        json!([{"name": "w2", "jobs": 0, "stalled": 0}])
    );
    assert_eq!(
        t.ok("workers", 5.0, &["w1"]),
        json!({"jobs": ["a"], "stalled": []})
    );
    assert_eq!(t.state("a"), "running");
}

/// `fail` takes the job out of its worker's job set.
pub fn workers_fail_removes_job_from_worker(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    t.ok("fail", 2.0, &["a", "w", "g", "boom"]);
    assert_eq!(
        t.ok("workers", 3.0, &["w"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 3.0, &[]),
        json!([{"name": "w", "jobs": 0, "stalled": 0}])
    );
}

/// A put of a running job takes it out of the old worker's job set.
pub fn workers_put_by_other_removes_job_from_worker(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("put", 2.0, &["admin", "q2", "a", "klass", "{}", "0"]);
    assert_eq!(
        t.ok("workers", 3.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// `timeout` takes the job out of its worker's job set (docs/qless-compat.md #5).
pub fn workers_timeout_removes_job_from_worker(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("b"));
    t.ok("timeout", 2.0, &["a"]);
    assert_eq!(
        t.ok("workers", 3.0, &["w"]),
        json!({"jobs": ["b"], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 3.0, &[]),
        json!([{"name": "w", "jobs": 1, "stalled": 0}])
    );
}

/// `workers.detail` (a clew extension) adds each worker's last-seen time;
/// plain `workers` keeps qless's shape without it.
pub fn workers_detail_reports_last_seen(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(5.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.pop_one(7.5, "q", "w2").as_deref(), Some("b"));
    t.ok("heartbeat", 9.0, &["a", "w1"]);
    assert_eq!(
        t.ok("workers", 10.0, &[]),
        json!([{"name": "w1", "jobs": 1, "stalled": 0}, {"name": "w2", "jobs": 1, "stalled": 0}])
    );
    assert_eq!(
        t.ok("workers.detail", 10.0, &[]),
        json!([
            {"name": "w1", "jobs": 1, "stalled": 0, "last_seen": 9},
            {"name": "w2", "jobs": 1, "stalled": 0, "last_seen": 7.5}
        ])
    );
    assert_eq!(
        t.ok("workers.detail", 10.0, &["w2"]),
        json!({"jobs": ["b"], "stalled": [], "last_seen": 7.5})
    );
    assert_eq!(
        t.ok("workers", 10.0, &["w2"]),
        json!({"jobs": ["b"], "stalled": []})
    );
    assert_eq!(
        t.ok("workers.detail", 10.0, &["nobody"]),
        json!({"jobs": [], "stalled": []})
    );
}
