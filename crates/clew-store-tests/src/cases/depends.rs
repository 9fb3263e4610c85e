//! Conformance cases: depends.

#[allow(unused_imports)]
use crate::prelude::*;

fn put_opts(h: &Harness, now: f64, queue: &str, jid: &str, delay: &str, opts: &[&str]) {
    let mut args = vec!["worker", queue, jid, "klass", "{}", delay];
    args.extend_from_slice(opts);
    h.ok("put", now, &args);
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

fn finish(h: &Harness, now: f64, queue: &str, jid: &str) {
    let popped = h.ok("pop", now, &[queue, "wd", "1"]);
    assert_eq!(popped[0]["jid"], json!(jid), "expected to pop {jid}");
    assert_eq!(
        h.ok("complete", now, &[jid, "wd", queue, "{}"]),
        json!("complete")
    );
}

/// A job put with an unmet dependency is in state depends, with dependencies/dependents linked both ways.
pub fn put_with_unmet_dependency_is_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 1.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["a"]));
    assert_eq!(b["dependents"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
    assert_eq!(t.get("a")["dependencies"], json!([]));
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q"]), json!(["b"]));
    let counts = t.ok("queues", 1.0, &["q"]);
    assert_eq!(
        (counts["waiting"].clone(), counts["depends"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(1));
}

/// Dependencies that do not exist or are already complete count as satisfied.
pub fn put_with_missing_or_complete_dependency_is_waiting(t: &Harness) {
    t.put(0.0, "q", "done");
    finish(t, 1.0, "q", "done");
    put_opts(t, 2.0, "q", "b", "0", &["depends", "[\"done\", \"ghost\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.pop_one(3.0, "q", "w1").as_deref(), Some("b"));
}

/// A job put with a delay and an unmet dependency is depends, not scheduled.
pub fn put_with_delay_and_dependency_is_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "10", &["depends", "[\"a\"]"]);
    assert_eq!(t.state("b"), "depends");
    let counts = t.ok("queues", 20.0, &["q"]);
    assert_eq!(
        (counts["scheduled"].clone(), counts["depends"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(t.ok("jobs", 20.0, &["scheduled", "q"]), json!([]));
}

/// Completing the only dependency moves the dependent to waiting, where it can be popped.
pub fn dependency_completing_moves_dependent_to_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    finish(t, 5.0, "q", "a");
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.ok("jobs", 5.0, &["depends", "q"]), json!([]));
    assert_eq!(t.pop_one(6.0, "q", "w1").as_deref(), Some("b"));
}

/// A dependent with a remembered delay becomes scheduled for its original run time when unblocked.
pub fn dependency_completing_with_remembered_delay_schedules(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "10", &["depends", "[\"a\"]"]);
    finish(t, 5.0, "q", "a");
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.ok("jobs", 5.0, &["scheduled", "q"]), json!(["b"]));
    assert_eq!(t.ok("pop", 9.0, &["q", "w1", "1"]), json!([]));
    assert_eq!(t.pop_one(10.0, "q", "w1").as_deref(), Some("b"));
}

/// A chain A→B→C unblocks one link at a time.
pub fn dependency_chain_unblocks_in_order(t: &Harness) {
    t.put(0.0, "q", "A");
    put_opts(t, 0.0, "q", "B", "0", &["depends", "[\"A\"]"]);
    put_opts(t, 0.0, "q", "C", "0", &["depends", "[\"B\"]"]);
    assert_eq!(t.get("B")["dependents"], json!(["C"]));
    assert_eq!(t.get("B")["dependencies"], json!(["A"]));
    finish(t, 1.0, "q", "A");
    assert_eq!(t.state("B"), "waiting");
    assert_eq!(t.state("C"), "depends");
    finish(t, 2.0, "q", "B");
    assert_eq!(t.state("C"), "waiting");
    assert_eq!(t.pop_one(3.0, "q", "w1").as_deref(), Some("C"));
}

/// A job with several dependencies waits for the last one.
pub fn multiple_dependencies_wait_for_all(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    put_opts(t, 0.0, "q", "c", "0", &["depends", "[\"a\", \"b\"]"]);
    assert_eq!(sorted(&t.get("c")["dependencies"]), vec!["a", "b"]);
    finish(t, 1.0, "q", "a");
    let c = t.get("c");
    assert_eq!(c["state"], json!("depends"));
    assert_eq!(c["dependencies"], json!(["b"]));
    finish(t, 2.0, "q", "b");
    assert_eq!(t.state("c"), "waiting");
}

/// `depends on` adds dependencies (ignoring missing and complete jids) and returns true.
pub fn depends_on_adds_dependencies(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    t.put(0.0, "other", "done");
    finish(t, 1.0, "other", "done");
    put_opts(t, 2.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    assert_eq!(
        t.ok("depends", 3.0, &["b", "on", "c", "ghost", "done"]),
        json!(true)
    );
    assert_eq!(sorted(&t.get("b")["dependencies"]), vec!["a", "c"]);
    assert_eq!(t.get("c")["dependents"], json!(["b"]));
    assert_eq!(t.get("done")["dependents"], json!([]));
    finish(t, 4.0, "q", "a");
    assert_eq!(t.state("b"), "depends");
    finish(t, 5.0, "q", "c");
    assert_eq!(t.state("b"), "waiting");
}

/// `depends off` removes listed dependencies; the job stays depends while any remain.
pub fn depends_off_removes_some(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\", \"c\"]"]);
    assert_eq!(t.ok("depends", 1.0, &["b", "off", "a"]), json!(true));
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["c"]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.get("c")["dependents"], json!(["b"]));
}

/// `depends off` of the last dependency moves the job to waiting.
pub fn depends_off_last_moves_to_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    assert_eq!(t.ok("depends", 1.0, &["b", "off", "a"]), json!(true));
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q"]), json!([]));
    assert_eq!(t.ok("queues", 1.0, &["q"])["waiting"], json!(2));
}

/// `depends off all` unlinks every dependency and moves the job to waiting.
pub fn depends_off_all_moves_to_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\", \"c\"]"]);
    assert_eq!(t.ok("depends", 1.0, &["b", "off", "all"]), json!(true));
    let b = t.get("b");
    assert_eq!(b["state"], json!("waiting"));
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.get("c")["dependents"], json!([]));
    // a and c can now be cancelled alone
    t.ok("cancel", 2.0, &["a", "c"]);
}

/// `depends off` of the last dependency keeps a remembered delay: the job is scheduled for that time (clew difference 3).
pub fn depends_off_keeps_remembered_delay(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "10", &["depends", "[\"a\"]"]);
    t.ok("depends", 2.0, &["b", "off", "a"]);
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(
        t.ok("pop", 9.0, &["q", "w1", "5"])
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["jid"].clone())
            .collect::<Vec<_>>(),
        vec![json!("a")]
    );
    assert_eq!(t.pop_one(10.0, "q", "w1").as_deref(), Some("b"));
}

/// `depends` on a job not in the depends state is a conflict naming the state, and changes nothing.
pub fn depends_on_waiting_job_names_state(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    let before = t.snapshot(1.0, &["a", "b"], &["q"]);
    t.err_with(
        "depends",
        1.0,
        &["b", "on", "a"],
        ErrorKind::Conflict,
        "Depends(): Job b not in the depends state: waiting",
    );
    t.err_with(
        "depends",
        1.0,
        &["b", "off", "all"],
        ErrorKind::Conflict,
        "not in the depends state: waiting",
    );
    assert_eq!(t.snapshot(1.0, &["a", "b"], &["q"]), before);
}

/// `depends` on a running or complete job names that state.
pub fn depends_on_running_and_complete_names_state(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.pop_one(1.0, "q", "w1");
    t.err_with(
        "depends",
        2.0,
        &["a", "on", "b"],
        ErrorKind::Conflict,
        "Job a not in the depends state: running",
    );
    t.ok("complete", 3.0, &["a", "w1", "q", "{}"]);
    t.err_with(
        "depends",
        4.0,
        &["a", "off", "b"],
        ErrorKind::Conflict,
        "Job a not in the depends state: complete",
    );
}

/// `depends` on an unknown job is not found.
pub fn depends_unknown_job_not_found(t: &Harness) {
    t.put(0.0, "q", "a");
    t.err_with(
        "depends",
        1.0,
        &["ghost", "on", "a"],
        ErrorKind::NotFound,
        "Depends(): Job ghost does not exist",
    );
}

/// A sub-command other than on/off is invalid.
pub fn depends_bad_subcommand_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    t.err_with(
        "depends",
        1.0,
        &["b", "sideways", "a"],
        ErrorKind::Invalid,
        "Depends(): Argument \"command\" must be \"on\" or \"off\"",
    );
    assert_eq!(t.get("b")["dependencies"], json!(["a"]));
}

/// Re-putting with `depends` replaces the dependency set and unlinks the old ones.
pub fn reput_with_depends_replaces_dependencies(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    put_opts(t, 1.0, "q", "b", "0", &["depends", "[\"c\"]"]);
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["c"]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.get("c")["dependents"], json!(["b"]));
}

/// Re-putting without `depends` keeps the old dependencies (§13).
pub fn reput_without_depends_keeps_dependencies(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    t.put(1.0, "q2", "b");
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["queue"], json!("q2"));
    assert_eq!(b["dependencies"], json!(["a"]));
    assert_eq!(t.ok("jobs", 1.0, &["depends", "q2"]), json!(["b"]));
}

/// `depends on` with a jid that is already a dependency does not duplicate it.
pub fn depends_on_existing_dependency_no_duplicate(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    assert_eq!(t.ok("depends", 1.0, &["b", "on", "a", "a"]), json!(true));
    assert_eq!(t.get("b")["dependencies"], json!(["a"]));
    assert_eq!(t.get("a")["dependents"], json!(["b"]));
}

/// `depends off` with a jid that is not a dependency leaves the job waiting on the real ones.
pub fn depends_off_non_dependency_keeps_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "q", "b", "0", &["depends", "[\"a\"]"]);
    assert_eq!(
        t.ok("depends", 1.0, &["b", "off", "c", "ghost"]),
        json!(true)
    );
    let b = t.get("b");
    assert_eq!(b["state"], json!("depends"));
    assert_eq!(b["dependencies"], json!(["a"]));
}
