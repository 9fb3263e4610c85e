//! Conformance cases: transitions.
//!
//! The job state machine of the spec (§4): which actions each state allows,
//! the error (naming the current state) for the others, and the target state
//! of each allowed action.

#[allow(unused_imports)]
use crate::prelude::*;

/// Every lifecycle state a job can be in.
const STATES: [&str; 7] = [
    "waiting",
    "scheduled",
    "depends",
    "running",
    "stalled",
    "failed",
    "complete",
];

/// When actions are taken (before any lock expires or delay comes due).
const T: f64 = 10.0;

/// The jid of the job built in `state`.
fn jid_of(state: &str) -> String {
    format!("j-{state}")
}

/// The queue of the job built in `state` (one queue per state, so pops do not interfere).
fn queue_of(state: &str) -> String {
    format!("q-{state}")
}

/// Builds the job `j-<state>` in queue `q-<state>` in `state`, at times 1–3.
/// Jobs that ran were popped by worker `w1` (at 2, so their lock expires at 62).
/// The depends job waits for `blocker`, a waiting job of queue `blockers`.
fn build(h: &Harness, state: &str) {
    let jid = jid_of(state);
    let q = queue_of(state);
    match state {
        "waiting" => h.put(1.0, &q, &jid),
        "scheduled" => {
            h.ok("put", 1.0, &["admin", &q, &jid, "klass", "{}", "1000"]);
        }
        "depends" => {
            h.put(1.0, "blockers", "blocker");
            h.ok(
                "put",
                1.0,
                &[
                    "admin",
                    &q,
                    &jid,
                    "klass",
                    "{}",
                    "0",
                    "depends",
                    "[\"blocker\"]",
                ],
            );
        }
        _ => {
            h.put(1.0, &q, &jid);
            assert_eq!(
                h.pop_one(2.0, &q, "w1").as_deref(),
                Some(jid.as_str()),
                "setup: pop {jid}"
            );
            match state {
                "running" => {}
                "stalled" => {
                    h.ok("timeout", 3.0, &[&jid]);
                }
                "failed" => {
                    h.ok("fail", 3.0, &[&jid, "w1", "g", "boom"]);
                }
                "complete" => {
                    h.ok("complete", 3.0, &[&jid, "w1", &q, "{}"]);
                }
                other => panic!("unknown state {other}"),
            }
        }
    }
    assert_eq!(h.state(&jid), state, "setup: state of {jid}");
}

/// Builds one job in every state.
fn build_all(h: &Harness) {
    for s in STATES {
        build(h, s);
    }
    h.take_events();
}

/// Asserts the call fails with `kind` and a message containing `needle`.
#[track_caller]
fn refused(h: &Harness, state: &str, cmd: &str, args: &[&str], kind: ErrorKind, needle: &str) {
    let e = match h.call(cmd, T, args) {
        Ok(v) => panic!("{cmd} {args:?} on a {state} job should fail, returned {v}"),
        Err(e) => e,
    };
    assert_eq!(
        e.kind(),
        kind,
        "{cmd} on a {state} job: wrong kind for {:?}",
        e.message()
    );
    assert!(
        e.message().contains(needle),
        "{cmd} on a {state} job: message {:?} should contain {needle:?}",
        e.message()
    );
}

/// Runs the call, panicking with the state in the message if it fails.
#[track_caller]
fn allowed(h: &Harness, state: &str, cmd: &str, args: &[&str]) -> Value {
    match h.call(cmd, T, args) {
        Ok(v) => v,
        Err(e) => panic!(
            "{cmd} {args:?} on a {state} job should succeed: {e} ({:?})",
            e.kind()
        ),
    }
}

/// Runs `check` for every state, with the job of that state and a fresh snapshot of it.
fn for_each_state(h: &Harness, mut check: impl FnMut(&str, &str, &str)) {
    build_all(h);
    for s in STATES {
        let jid = jid_of(s);
        let q = queue_of(s);
        check(s, &jid, &q);
    }
}

// ---------------------------------------------------------------- actions × states

/// Only waiting and stalled jobs are popped; they become running under the popping worker.
pub fn only_waiting_and_stalled_jobs_are_popped(t: &Harness) {
    for_each_state(t, |s, jid, q| {
        let popped = t.ok("pop", T, &[q, "w2", "5"]);
        let jids: Vec<&str> = popped
            .as_array()
            .expect("array")
            .iter()
            .map(|j| j["jid"].as_str().unwrap())
            .collect();
        if s == "waiting" || s == "stalled" {
            assert_eq!(jids, vec![jid], "pop of a {s} job");
            let j = t.get(jid);
            assert_eq!(j["state"], json!("running"), "a popped {s} job is running");
            assert_eq!(
                j["worker"],
                json!("w2"),
                "a popped {s} job belongs to the popper"
            );
        } else {
            assert!(
                jids.is_empty(),
                "a {s} job must not be popped, got {jids:?}"
            );
            assert_eq!(t.state(jid), s, "a {s} job keeps its state after a pop");
        }
    });
}

/// Heartbeat succeeds only on a running job (renewing its lock); otherwise "not currently running: `<state>`".
pub fn heartbeat_allowed_only_when_running(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        if s == "running" {
            assert_eq!(allowed(t, s, "heartbeat", &[jid, "w1"]), json!(70));
            let j = t.get(jid);
            assert_eq!(
                (j["state"].clone(), j["expires"].clone()),
                (json!("running"), json!(70))
            );
        } else {
            refused(
                t,
                s,
                "heartbeat",
                &[jid, "w1"],
                ErrorKind::Conflict,
                &format!("Heartbeat(): Job {jid} not currently running: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// Complete succeeds only on a running job (→ complete); otherwise "is not currently running: `<state>`".
pub fn complete_allowed_only_when_running(t: &Harness) {
    for_each_state(t, |s, jid, q| {
        if s == "running" {
            assert_eq!(
                allowed(t, s, "complete", &[jid, "w1", q, "{}"]),
                json!("complete")
            );
            let j = t.get(jid);
            assert_eq!(
                (j["state"].clone(), j["queue"].clone(), j["worker"].clone()),
                (json!("complete"), json!(""), json!(""))
            );
        } else {
            refused(
                t,
                s,
                "complete",
                &[jid, "w1", q, "{}"],
                ErrorKind::Conflict,
                &format!("Complete(): Job {jid} is not currently running: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// Fail succeeds only on a running job (→ failed, queue kept); otherwise "not currently running: `<state>`".
pub fn fail_allowed_only_when_running(t: &Harness) {
    for_each_state(t, |s, jid, q| {
        if s == "running" {
            assert_eq!(allowed(t, s, "fail", &[jid, "w1", "g2", "bad"]), json!(jid));
            let j = t.get(jid);
            assert_eq!(
                (j["state"].clone(), j["queue"].clone(), j["worker"].clone()),
                (json!("failed"), json!(q), json!(""))
            );
            assert_eq!(j["failure"]["group"], json!("g2"));
        } else {
            refused(
                t,
                s,
                "fail",
                &[jid, "w1", "g2", "bad"],
                ErrorKind::Conflict,
                &format!("Fail(): Job {jid} not currently running: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// Retry succeeds only on a running job (→ waiting, one retry used); otherwise "is not currently running: `<state>`".
pub fn retry_allowed_only_when_running(t: &Harness) {
    for_each_state(t, |s, jid, q| {
        if s == "running" {
            assert_eq!(allowed(t, s, "retry", &[jid, q, "w1"]), json!(4));
            let j = t.get(jid);
            assert_eq!(
                (
                    j["state"].clone(),
                    j["queue"].clone(),
                    j["remaining"].clone()
                ),
                (json!("waiting"), json!(q), json!(4))
            );
        } else {
            refused(
                t,
                s,
                "retry",
                &[jid, q, "w1"],
                ErrorKind::Conflict,
                &format!("Retry(): Job {jid} is not currently running: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// Timeout succeeds only on a running job (→ stalled, expires 0); otherwise "not running: `<state>`".
pub fn timeout_allowed_only_when_running(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        if s == "running" {
            assert_eq!(allowed(t, s, "timeout", &[jid]), Value::Null);
            let j = t.get(jid);
            assert_eq!(
                (j["state"].clone(), j["expires"].clone()),
                (json!("stalled"), json!(0))
            );
        } else {
            refused(
                t,
                s,
                "timeout",
                &[jid],
                ErrorKind::Conflict,
                &format!("Timeout(): Job {jid} not running: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// `depends on` succeeds only in the depends state; otherwise "not in the depends state: `<state>`".
pub fn depends_on_allowed_only_in_depends_state(t: &Harness) {
    t.put(0.5, "blockers", "blocker2");
    for_each_state(t, |s, jid, _q| {
        if s == "depends" {
            assert_eq!(
                allowed(t, s, "depends", &[jid, "on", "blocker2"]),
                json!(true)
            );
            let j = t.get(jid);
            let mut deps: Vec<String> = j["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            deps.sort();
            assert_eq!(deps, vec!["blocker", "blocker2"]);
            assert_eq!(j["state"], json!("depends"));
        } else {
            refused(
                t,
                s,
                "depends",
                &[jid, "on", "blocker2"],
                ErrorKind::Conflict,
                &format!("Depends(): Job {jid} not in the depends state: {s}"),
            );
            assert_eq!(
                t.get(jid)["dependencies"],
                json!([]),
                "a {s} job gained a dependency"
            );
        }
    });
}

/// `depends off` succeeds only in the depends state (removing the last one → waiting); otherwise refused naming the state.
pub fn depends_off_allowed_only_in_depends_state(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        if s == "depends" {
            assert_eq!(
                allowed(t, s, "depends", &[jid, "off", "blocker"]),
                json!(true)
            );
            let j = t.get(jid);
            assert_eq!(
                (j["state"].clone(), j["dependencies"].clone()),
                (json!("waiting"), json!([]))
            );
        } else {
            refused(
                t,
                s,
                "depends",
                &[jid, "off", "all"],
                ErrorKind::Conflict,
                &format!("Depends(): Job {jid} not in the depends state: {s}"),
            );
            assert_eq!(t.state(jid), s);
        }
    });
}

/// Cancel deletes a job in every state except complete, which it leaves untouched.
pub fn cancel_deletes_every_state_but_complete(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(
            allowed(t, s, "cancel", &[jid]),
            json!([jid]),
            "cancel returns the jids given ({s})"
        );
        if s == "complete" {
            assert_eq!(
                t.state(jid),
                "complete",
                "cancel must leave a complete job alone"
            );
        } else {
            assert_eq!(t.get(jid), Value::Null, "a cancelled {s} job is gone");
        }
    });
    assert_eq!(t.ok("jobs", T, &["complete"]), json!(["j-complete"]));
}

/// Put without delay moves a job from any state to waiting in the target queue (a depends job keeps its unmet dependency).
pub fn put_moves_every_state_to_waiting(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(
            allowed(t, s, "put", &["admin", "target", jid, "klass", "{}", "0"]),
            json!(jid)
        );
        let j = t.get(jid);
        let want = if s == "depends" { "depends" } else { "waiting" };
        assert_eq!(j["state"], json!(want), "put of a {s} job");
        assert_eq!(
            (
                j["queue"].clone(),
                j["worker"].clone(),
                j["expires"].clone()
            ),
            (json!("target"), json!(""), json!(0)),
            "put of a {s} job"
        );
        assert_eq!(
            j["remaining"],
            json!(5),
            "put of a {s} job resets remaining"
        );
    });
    assert_eq!(
        t.ok("jobs", T, &["complete"]),
        json!([]),
        "the re-put complete job left the completed list"
    );
    assert_eq!(
        t.ok("failed", T, &[]),
        json!({}),
        "the re-put failed job left its group"
    );
    assert_eq!(t.ok("jobs", T, &["running", "q-running"]), json!([]));
}

/// Put with a delay moves a job from any state to scheduled (a depends job stays depends).
pub fn put_with_delay_moves_every_state_to_scheduled(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        allowed(t, s, "put", &["admin", "target", jid, "klass", "{}", "30"]);
        let want = if s == "depends" {
            "depends"
        } else {
            "scheduled"
        };
        assert_eq!(t.state(jid), want, "delayed put of a {s} job");
    });
    assert_eq!(
        t.ok("jobs", T, &["scheduled", "target", "0", "100"])
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        t.ok("jobs", T, &["depends", "target", "0", "100"]),
        json!(["j-depends"])
    );
}

/// Requeue works on a job in every state, like put, moving it to waiting.
pub fn requeue_moves_every_state_to_waiting(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(
            allowed(
                t,
                s,
                "requeue",
                &["admin", "target", jid, "klass", "{}", "0"]
            ),
            json!(jid)
        );
        let want = if s == "depends" { "depends" } else { "waiting" };
        let j = t.get(jid);
        assert_eq!(
            (j["state"].clone(), j["queue"].clone()),
            (json!(want), json!("target")),
            "requeue of a {s} job"
        );
    });
}

/// Priority may be set in every state; it is stored and the state does not change.
pub fn priority_allowed_in_every_state(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(allowed(t, s, "priority", &[jid, "7"]), json!(7));
        let j = t.get(jid);
        assert_eq!(
            (j["state"].clone(), j["priority"].clone()),
            (json!(s), json!(7)),
            "priority on a {s} job"
        );
    });
}

/// Unfail moves only failed jobs (to waiting in the chosen queue); jobs in other states are untouched.
pub fn unfail_moves_only_failed_jobs(t: &Harness) {
    build_all(t);
    assert_eq!(t.ok("unfail", T, &["revived", "g"]), json!(1));
    for s in STATES {
        let jid = jid_of(s);
        let j = t.get(&jid);
        if s == "failed" {
            assert_eq!(
                (j["state"].clone(), j["queue"].clone(), j["worker"].clone()),
                (json!("waiting"), json!("revived"), json!(""))
            );
        } else {
            assert_eq!(j["state"], json!(s), "unfail touched a {s} job");
        }
    }
    assert_eq!(t.pop_one(T, "revived", "w3").as_deref(), Some("j-failed"));
}

/// Track is allowed in every state and does not change the state.
pub fn track_allowed_in_every_state(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(allowed(t, s, "track", &["track", jid]), json!(1));
        let j = t.get(jid);
        assert_eq!(
            (j["state"].clone(), j["tracked"].clone()),
            (json!(s), json!(true)),
            "track of a {s} job"
        );
    });
}

/// Tag add is allowed in every state and does not change the state.
pub fn tag_allowed_in_every_state(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(allowed(t, s, "tag", &["add", jid, "x"]), json!(["x"]));
        let j = t.get(jid);
        assert_eq!(
            (j["state"].clone(), j["tags"].clone()),
            (json!(s), json!(["x"])),
            "tag of a {s} job"
        );
    });
}

/// Log is allowed in every state: it appends a history entry and does not change the state.
pub fn log_allowed_in_every_state(t: &Harness) {
    for_each_state(t, |s, jid, _q| {
        assert_eq!(
            allowed(t, s, "log", &[jid, "note", "{\"k\":1}"]),
            Value::Null
        );
        let j = t.get(jid);
        assert_eq!(j["state"], json!(s), "log on a {s} job");
        let last = j["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last,
            json!({"what": "note", "when": 10, "k": 1}),
            "log on a {s} job"
        );
    });
}

/// Every job command on a missing job is NotFound with "`<Cmd>`(): Job `<jid>` does not exist".
pub fn actions_on_missing_job_are_not_found(t: &Harness) {
    let calls: [(&str, &[&str], &str); 12] = [
        (
            "heartbeat",
            &["ghost", "w1"],
            "Heartbeat(): Job ghost does not exist",
        ),
        (
            "complete",
            &["ghost", "w1", "q", "{}"],
            "Complete(): Job ghost does not exist",
        ),
        (
            "fail",
            &["ghost", "w1", "g", "m"],
            "Fail(): Job ghost does not exist",
        ),
        (
            "retry",
            &["ghost", "q", "w1"],
            "Retry(): Job ghost does not exist",
        ),
        ("timeout", &["ghost"], "Timeout(): Job ghost does not exist"),
        (
            "priority",
            &["ghost", "1"],
            "Priority(): Job ghost does not exist",
        ),
        ("log", &["ghost", "m"], "Log(): Job ghost does not exist"),
        (
            "tag",
            &["add", "ghost", "x"],
            "Tag(): Job ghost does not exist",
        ),
        (
            "track",
            &["track", "ghost"],
            "Track(): Job ghost does not exist",
        ),
        (
            "requeue",
            &["admin", "q", "ghost", "klass", "{}", "0"],
            "Requeue(): Job ghost does not exist",
        ),
        (
            "depends",
            &["ghost", "on", "x"],
            "Depends(): Job ghost does not exist",
        ),
        (
            "depends",
            &["ghost", "off", "all"],
            "Depends(): Job ghost does not exist",
        ),
    ];
    for (cmd, args, needle) in calls {
        refused(t, "missing", cmd, args, ErrorKind::NotFound, needle);
    }
    assert_eq!(t.get("ghost"), Value::Null);
}

/// A running job held by w1 refuses heartbeat, complete, fail and retry from w2 (Conflict naming w1).
pub fn other_worker_cannot_act_on_running_job(t: &Harness) {
    build(t, "running");
    let calls: [(&str, &[&str], &str); 4] = [
        (
            "heartbeat",
            &["j-running", "w2"],
            "Heartbeat(): Job j-running given out to another worker: w1",
        ),
        (
            "complete",
            &["j-running", "w2", "q-running", "{}"],
            "Complete(): Job j-running has been handed out to another worker: w1",
        ),
        (
            "fail",
            &["j-running", "w2", "g", "m"],
            "Fail(): Job j-running running with another worker: w1",
        ),
        (
            "retry",
            &["j-running", "q-running", "w2"],
            "Retry(): Job j-running has been given to another worker: w1",
        ),
    ];
    for (cmd, args, needle) in calls {
        refused(t, "running", cmd, args, ErrorKind::Conflict, needle);
    }
    let j = t.get("j-running");
    assert_eq!(
        (
            j["state"].clone(),
            j["worker"].clone(),
            j["expires"].clone()
        ),
        (json!("running"), json!("w1"), json!(62))
    );
}

/// Complete and retry naming the wrong queue are refused with "running in another queue: `<queue>`".
pub fn complete_and_retry_check_the_queue(t: &Harness) {
    build(t, "running");
    refused(
        t,
        "running",
        "complete",
        &["j-running", "w1", "elsewhere", "{}"],
        ErrorKind::Conflict,
        "Complete(): Job j-running running in another queue: q-running",
    );
    refused(
        t,
        "running",
        "retry",
        &["j-running", "elsewhere", "w1"],
        ErrorKind::Conflict,
        "Retry(): Job j-running running in another queue: q-running",
    );
    assert_eq!(t.state("j-running"), "running");
}

// ---------------------------------------------------------------- individual transitions

/// Put with delay 0 and no dependencies creates a waiting job; with a delay, a scheduled one.
pub fn put_creates_waiting_or_scheduled(t: &Harness) {
    t.ok("put", 0.0, &["admin", "q", "now", "klass", "{}", "0"]);
    t.ok("put", 0.0, &["admin", "q", "later", "klass", "{}", "5"]);
    assert_eq!(
        (t.state("now"), t.state("later")),
        ("waiting".to_owned(), "scheduled".to_owned())
    );
}

/// A scheduled job becomes waiting at a pop at exactly its due time (inclusive), not before.
pub fn scheduled_becomes_waiting_at_pop_on_due_time(t: &Harness) {
    t.ok("put", 0.0, &["admin", "q", "j", "klass", "{}", "100"]);
    assert_eq!(t.ok("pop", 99.9, &["q", "w1", "1"]), json!([]));
    assert_eq!(t.state("j"), "scheduled");
    assert_eq!(t.pop_one(100.0, "q", "w1").as_deref(), Some("j"));
    assert_eq!(t.state("j"), "running");
}

/// A peek at or after the due time promotes a scheduled job to waiting (a real write).
pub fn peek_promotes_due_scheduled_job(t: &Harness) {
    t.ok("put", 0.0, &["admin", "q", "j", "klass", "{}", "100"]);
    assert_eq!(t.ok("peek", 99.0, &["q", "10"]), json!([]));
    assert_eq!(t.state("j"), "scheduled");
    let peeked = t.ok("peek", 100.0, &["q", "10"]);
    assert_eq!(peeked.as_array().unwrap().len(), 1);
    assert_eq!(peeked[0]["jid"], json!("j"));
    assert_eq!(t.state("j"), "waiting");
}

/// A `queues` call at or after the due time promotes a scheduled job to waiting.
pub fn queues_promotes_due_scheduled_job(t: &Harness) {
    t.ok("put", 0.0, &["admin", "q", "j", "klass", "{}", "100"]);
    let before = t.ok("queues", 50.0, &["q"]);
    assert_eq!(
        (before["scheduled"].clone(), before["waiting"].clone()),
        (json!(1), json!(0))
    );
    let after = t.ok("queues", 100.0, &["q"]);
    assert_eq!(
        (after["scheduled"].clone(), after["waiting"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(t.state("j"), "waiting");
}

/// `jobs scheduled` at or after the due time promotes the job (and no longer lists it).
pub fn jobs_scheduled_promotes_due_job(t: &Harness) {
    t.ok("put", 0.0, &["admin", "q", "j", "klass", "{}", "100"]);
    assert_eq!(t.ok("jobs", 50.0, &["scheduled", "q"]), json!(["j"]));
    assert_eq!(t.ok("jobs", 100.0, &["scheduled", "q"]), json!([]));
    assert_eq!(t.state("j"), "waiting");
}

/// Put with an unmet dependency gives depends; with only met ones (complete or missing), waiting.
pub fn put_with_dependencies_state(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "other", "done");
    assert_eq!(t.pop_one(1.0, "other", "w1").as_deref(), Some("done"));
    t.ok("complete", 2.0, &["done", "w1", "other", "{}"]);
    t.ok(
        "put",
        3.0,
        &[
            "admin", "q", "blocked", "klass", "{}", "0", "depends", "[\"a\"]",
        ],
    );
    t.ok(
        "put",
        3.0,
        &[
            "admin",
            "q",
            "free",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"done\",\"ghost\"]",
        ],
    );
    assert_eq!(t.state("blocked"), "depends");
    assert_eq!(t.state("free"), "waiting");
    assert_eq!(t.get("free")["dependencies"], json!([]));
}

/// A depends job waits until its last dependency completes, then becomes waiting.
pub fn depends_becomes_waiting_when_last_dependency_completes(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok(
        "put",
        1.0,
        &[
            "admin",
            "dq",
            "c",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"a\",\"b\"]",
        ],
    );
    assert_eq!(t.pop_one(2.0, "q", "w1").as_deref(), Some("a"));
    t.ok("complete", 3.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.state("c"), "depends", "one dependency left");
    assert_eq!(t.get("c")["dependencies"], json!(["b"]));
    assert_eq!(t.pop_one(4.0, "q", "w1").as_deref(), Some("b"));
    assert_eq!(
        t.ok("complete", 5.0, &["b", "w1", "q", "{}"]),
        json!("complete")
    );
    assert_eq!(t.state("c"), "waiting");
    assert_eq!(t.pop_one(6.0, "dq", "w2").as_deref(), Some("c"));
}

/// A depends job put with a delay becomes scheduled (for the remembered time) when its dependency completes.
pub fn depends_with_delay_becomes_scheduled_when_dependency_completes(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &[
            "admin", "dq", "c", "klass", "{}", "100", "depends", "[\"a\"]",
        ],
    );
    assert_eq!(t.state("c"), "depends");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.state("c"), "scheduled");
    assert_eq!(t.ok("pop", 99.0, &["dq", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(100.0, "dq", "w2").as_deref(), Some("c"));
}

/// `depends off all` moves a depends job to waiting.
pub fn depends_off_all_makes_job_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok(
        "put",
        1.0,
        &[
            "admin",
            "dq",
            "c",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"a\",\"b\"]",
        ],
    );
    assert_eq!(t.ok("depends", 2.0, &["c", "off", "all"]), json!(true));
    let j = t.get("c");
    assert_eq!(
        (j["state"].clone(), j["dependencies"].clone()),
        (json!("waiting"), json!([]))
    );
    assert_eq!(t.pop_one(3.0, "dq", "w1").as_deref(), Some("c"));
}

/// `depends off` of one of two dependencies leaves the job in depends.
pub fn depends_off_not_last_stays_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok(
        "put",
        1.0,
        &[
            "admin",
            "dq",
            "c",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"a\",\"b\"]",
        ],
    );
    t.ok("depends", 2.0, &["c", "off", "a"]);
    let j = t.get("c");
    assert_eq!(
        (j["state"].clone(), j["dependencies"].clone()),
        (json!("depends"), json!(["b"]))
    );
}

/// `depends off` removing the last dependency of a job with a remembered delay schedules it for that time (clew: delays are never dropped).
pub fn depends_off_last_keeps_remembered_delay(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &[
            "admin", "dq", "c", "klass", "{}", "100", "depends", "[\"a\"]",
        ],
    );
    t.ok("depends", 10.0, &["c", "off", "a"]);
    assert_eq!(t.state("c"), "scheduled");
    assert_eq!(t.ok("pop", 99.0, &["dq", "w1", "1"]), json!([]));
    assert_eq!(t.pop_one(100.0, "dq", "w1").as_deref(), Some("c"));
}

/// A timed-out (stalled) job is popped before a higher-priority waiting job and becomes running.
pub fn stalled_job_is_popped_first_and_becomes_running(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok(
        "put",
        2.0,
        &["admin", "q", "vip", "klass", "{}", "0", "priority", "100"],
    );
    t.ok("timeout", 3.0, &["a"]);
    assert_eq!(t.state("a"), "stalled");
    assert_eq!(t.pop_one(4.0, "q", "w2").as_deref(), Some("a"));
    let j = t.get("a");
    assert_eq!(
        (j["state"].clone(), j["worker"].clone()),
        (json!("running"), json!("w2"))
    );
    assert_eq!(
        history_whats(&j),
        vec!["put", "popped", "timed-out", "popped"]
    );
}

/// A running job whose lock expired is stalled only as a view: its state stays running.
pub fn expired_lock_is_stalled_view_but_state_running(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("jobs", 60.0, &["stalled", "q"]), json!(["a"]));
    assert_eq!(t.ok("queues", 60.0, &["q"])["stalled"], json!(1));
    assert_eq!(t.state("a"), "running");
    // The owner can still heartbeat it.
    assert_eq!(t.ok("heartbeat", 61.0, &["a", "w1"]), json!(121));
}

/// Heartbeat keeps a running job running with a later expiry.
pub fn heartbeat_keeps_running_with_later_expiry(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.get("a")["expires"], json!(60));
    assert_eq!(t.ok("heartbeat", 30.0, &["a", "w1"]), json!(90));
    let j = t.get("a");
    assert_eq!(
        (
            j["state"].clone(),
            j["expires"].clone(),
            j["worker"].clone()
        ),
        (json!("running"), json!(90), json!("w1"))
    );
}

/// Retry with a delay moves the running job to scheduled.
pub fn retry_with_delay_schedules_the_job(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("retry", 5.0, &["a", "q", "w1", "50"]), json!(4));
    assert_eq!(t.state("a"), "scheduled");
    assert_eq!(t.ok("pop", 54.0, &["q", "w1", "1"]), json!([]));
    assert_eq!(t.pop_one(55.0, "q", "w1").as_deref(), Some("a"));
}

/// Retry with no retries left fails the job into `failed-retries-<queue>` with worker ''.
pub fn retry_exhausted_fails_the_job(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["admin", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("retry", 5.0, &["a", "q", "w1"]), json!(-1));
    let j = t.get("a");
    assert_eq!(j["state"], json!("failed"));
    assert_eq!(
        j["failure"],
        json!({"group": "failed-retries-q", "message": "Job exhausted retries in queue \"q\"", "when": 5, "worker": ""})
    );
    assert_eq!(t.ok("failed", 5.0, &[]), json!({"failed-retries-q": 1}));
}

/// An expired lock is handed to a new worker after the grace period; the job stays running with one retry used.
pub fn expired_lock_is_handed_over_after_grace(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok("pop", 60.0, &["q", "w2", "1"]),
        json!([]),
        "courtesy step hands nothing out"
    );
    assert_eq!(t.state("a"), "running");
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("a"));
    let j = t.get("a");
    assert_eq!(
        (
            j["state"].clone(),
            j["worker"].clone(),
            j["remaining"].clone()
        ),
        (json!("running"), json!("w2"), json!(4))
    );
}

/// An expired lock of a job with no retries left fails it into `failed-retries-<queue>`.
pub fn expired_lock_without_retries_fails_the_job(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["admin", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("pop", 70.0, &["q", "w2", "1"]), json!([]));
    let j = t.get("a");
    assert_eq!(
        (j["state"].clone(), j["worker"].clone()),
        (json!("failed"), json!(""))
    );
    assert_eq!(j["failure"]["group"], json!("failed-retries-q"));
}

/// Complete with `next` advances the job to waiting in the next queue.
pub fn complete_with_next_advances_to_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok("complete", 5.0, &["a", "w1", "q", "{}", "next", "q2"]),
        json!("waiting")
    );
    let j = t.get("a");
    assert_eq!(
        (j["state"].clone(), j["queue"].clone(), j["worker"].clone()),
        (json!("waiting"), json!("q2"), json!(""))
    );
    assert_eq!(t.pop_one(6.0, "q2", "w2").as_deref(), Some("a"));
}

/// Complete with `next` and a delay stores state scheduled (clew) and runs only at the due time.
pub fn complete_with_next_and_delay_is_scheduled(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok(
            "complete",
            5.0,
            &["a", "w1", "q", "{}", "next", "q2", "delay", "30"]
        ),
        json!("scheduled")
    );
    assert_eq!(t.state("a"), "scheduled");
    assert_eq!(t.ok("pop", 34.0, &["q2", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(35.0, "q2", "w2").as_deref(), Some("a"));
}

/// Complete with `next` and an unmet dependency moves the job to depends in the next queue.
pub fn complete_with_next_and_unmet_depends_is_depends(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "other", "b");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok(
            "complete",
            5.0,
            &["a", "w1", "q", "{}", "next", "q2", "depends", "[\"b\"]"]
        ),
        json!("depends")
    );
    let j = t.get("a");
    assert_eq!(
        (
            j["state"].clone(),
            j["queue"].clone(),
            j["dependencies"].clone()
        ),
        (json!("depends"), json!("q2"), json!(["b"]))
    );
}

/// Unfail moves a failed job back to waiting in the chosen queue, with remaining reset.
pub fn unfail_makes_failed_job_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    t.ok("retry", 1.0, &["a", "q", "w1"]);
    assert_eq!(t.pop_one(2.0, "q", "w1").as_deref(), Some("a"));
    t.ok("fail", 3.0, &["a", "w1", "g", "boom"]);
    assert_eq!(t.get("a")["remaining"], json!(4));
    assert_eq!(t.ok("unfail", 4.0, &["q3", "g"]), json!(1));
    let j = t.get("a");
    assert_eq!(
        (
            j["state"].clone(),
            j["queue"].clone(),
            j["remaining"].clone()
        ),
        (json!("waiting"), json!("q3"), json!(5))
    );
    assert_eq!(t.ok("failed", 4.0, &[]), json!({}));
}

/// Putting a complete job again resurrects it: it is waiting and off the completed list.
pub fn complete_job_put_again_is_resurrected(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    t.ok("complete", 1.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.ok("jobs", 1.0, &["complete"]), json!(["a"]));
    t.put(2.0, "q", "a");
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(t.ok("jobs", 2.0, &["complete"]), json!([]));
    assert_eq!(
        history_whats(&t.get("a")),
        vec!["put", "popped", "done", "put"]
    );
}

/// Complete with `next`, a delay and only met dependencies schedules the job (clew: the delay is not dropped).
pub fn complete_with_next_met_depends_and_delay_is_scheduled(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok(
            "complete",
            5.0,
            &[
                "a",
                "w1",
                "q",
                "{}",
                "next",
                "q2",
                "delay",
                "30",
                "depends",
                "[\"ghost\"]"
            ]
        ),
        json!("scheduled")
    );
    assert_eq!(t.state("a"), "scheduled");
    assert_eq!(t.ok("pop", 34.0, &["q2", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(35.0, "q2", "w2").as_deref(), Some("a"));
}

/// A dependency that advances to another queue (complete with `next`) does not release its dependent.
pub fn dependency_advancing_does_not_release_dependent(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["admin", "dq", "c", "klass", "{}", "0", "depends", "[\"a\"]"],
    );
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok("complete", 2.0, &["a", "w1", "q", "{}", "next", "q2"]),
        json!("waiting")
    );
    let c = t.get("c");
    assert_eq!(
        (c["state"].clone(), c["dependencies"].clone()),
        (json!("depends"), json!(["a"]))
    );
    // Only the final completion releases it.
    assert_eq!(t.pop_one(3.0, "q2", "w1").as_deref(), Some("a"));
    t.ok("complete", 4.0, &["a", "w1", "q2", "{}"]);
    assert_eq!(t.state("c"), "waiting");
}

/// A dependency that fails keeps its dependent in depends.
pub fn dependency_failing_keeps_dependent_blocked(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["admin", "dq", "c", "klass", "{}", "0", "depends", "[\"a\"]"],
    );
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("fail", 2.0, &["a", "w1", "g", "boom"]);
    let c = t.get("c");
    assert_eq!(
        (c["state"].clone(), c["dependencies"].clone()),
        (json!("depends"), json!(["a"]))
    );
    assert_eq!(t.ok("pop", 3.0, &["dq", "w1", "1"]), json!([]));
}

/// A waiting job in a paused queue is not popped (stays waiting) until the queue is unpaused.
pub fn paused_queue_keeps_waiting_job_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("pause", 1.0, &["q"]);
    assert_eq!(t.ok("pop", 2.0, &["q", "w1", "1"]), json!([]));
    assert_eq!(t.state("a"), "waiting");
    t.ok("unpause", 3.0, &["q"]);
    assert_eq!(t.pop_one(4.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.state("a"), "running");
}

/// The owner can still complete a running job whose lock expired, as long as nobody popped it.
pub fn owner_can_complete_job_with_expired_lock(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(
        t.ok("complete", 100.0, &["a", "w1", "q", "{}"]),
        json!("complete")
    );
    assert_eq!(t.state("a"), "complete");
}

/// After its expired lock is handed to w2, the old owner w1 can no longer complete the job.
pub fn old_owner_loses_job_after_handover(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(70.0, "q", "w2").as_deref(), Some("a"));
    let e = t.err("complete", 71.0, &["a", "w1", "q", "{}"]);
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        e.message()
            .contains("Complete(): Job a has been handed out to another worker: w2"),
        "{e}"
    );
    assert_eq!(
        t.ok("complete", 72.0, &["a", "w2", "q", "{}"]),
        json!("complete")
    );
}
