//! Conformance cases: validation.
//!
//! Malformed or missing arguments are refused with `ErrorKind::Invalid` and
//! the wording of docs/qless-compat.md, and a refused state-changing call
//! leaves the store exactly as it was (including when it fails half-way).

#[allow(unused_imports)]
use crate::prelude::*;

/// The time at which every bad call of this file is made.
const NOW: f64 = 20.0;

/// Everything [`world`] creates (plus a jid that never exists).
const JIDS: [&str; 11] = [
    "waiting",
    "waiting2",
    "running",
    "failed",
    "scheduled",
    "dep",
    "complete",
    "stalled",
    "r1",
    "new",
    "nope",
];

/// The queues [`world`] uses.
const QUEUES: [&str; 3] = ["q", "other", "next"];

/// A small world: jobs in every state, tags, tracking, a recurring template,
/// a config value and a history log entry. Clears the sink afterwards.
pub(crate) fn world(h: &Harness) {
    h.put(1.0, "q", "running");
    assert_eq!(h.pop_one(2.0, "q", "w1").as_deref(), Some("running"));
    h.put(3.0, "q", "failed");
    assert_eq!(h.pop_one(4.0, "q", "w1").as_deref(), Some("failed"));
    h.ok("fail", 5.0, &["failed", "w1", "grp", "boom"]);
    h.put(6.0, "other", "complete");
    assert_eq!(h.pop_one(7.0, "other", "w2").as_deref(), Some("complete"));
    h.ok("complete", 8.0, &["complete", "w2", "other", "{}"]);
    h.put(8.0, "other", "stalled");
    assert_eq!(h.pop_one(8.5, "other", "w2").as_deref(), Some("stalled"));
    h.ok("timeout", 9.0, &["stalled"]);
    h.ok(
        "put",
        9.0,
        &["admin", "q", "scheduled", "klass", "{}", "1000"],
    );
    h.ok(
        "put",
        10.0,
        &[
            "admin",
            "q",
            "dep",
            "klass",
            "{}",
            "0",
            "depends",
            "[\"running\"]",
        ],
    );
    h.ok(
        "put",
        11.0,
        &[
            "admin",
            "q",
            "waiting",
            "klass",
            "{\"a\":1}",
            "0",
            "priority",
            "3",
            "tags",
            "[\"t1\",\"t2\"]",
        ],
    );
    h.ok(
        "put",
        12.0,
        &[
            "admin", "other", "waiting2", "klass", "{}", "0", "tags", "[\"t1\"]",
        ],
    );
    h.ok("track", 13.0, &["track", "waiting"]);
    h.ok("track", 13.0, &["track", "running"]);
    h.ok(
        "recur",
        14.0,
        &["q", "r1", "rklass", "{\"r\":1}", "interval", "60", "10000"],
    );
    h.ok("config.set", 15.0, &["application", "clew-test"]);
    h.ok("log", 16.0, &["running", "note", "{\"k\":1}"]);
    for (jid, state) in [
        ("running", "running"),
        ("failed", "failed"),
        ("complete", "complete"),
        ("stalled", "stalled"),
        ("scheduled", "scheduled"),
        ("dep", "depends"),
        ("waiting", "waiting"),
        ("waiting2", "waiting"),
    ] {
        assert_eq!(h.state(jid), state, "world setup: state of {jid}");
    }
    h.take_events();
}

/// Everything observable about the world at [`NOW`].
pub(crate) fn snap(h: &Harness) -> Value {
    let mut s = h.snapshot(NOW, &JIDS, &QUEUES);
    s["recur"] = h.ok("recur.get", NOW, &["r1"]);
    s["tag_t1"] = h.ok("tag", NOW, &["get", "t1", "0", "100"]);
    s["tag_t2"] = h.ok("tag", NOW, &["get", "t2", "0", "100"]);
    s["worker_w1"] = h.ok("workers", NOW, &["w1"]);
    s["worker_w2"] = h.ok("workers", NOW, &["w2"]);
    s["failed_grp"] = h.ok("failed", NOW, &["grp", "0", "100"]);
    s["scheduled_q"] = h.ok("jobs", NOW, &["scheduled", "q", "0", "100"]);
    s
}

/// Asserts the error's kind and that its message contains every needle.
#[track_caller]
fn check_err(e: &Error, what: &str, kind: ErrorKind, needles: &[&str]) {
    assert_eq!(
        e.kind(),
        kind,
        "{what}: wrong error kind for {:?}",
        e.message()
    );
    for n in needles {
        assert!(
            e.message().contains(n),
            "{what}: message {:?} should contain {n:?}",
            e.message()
        );
    }
}

/// Makes the bad call at [`NOW`] and asserts it is refused with `kind` and
/// the needles, publishes nothing and leaves the store exactly as it was.
#[track_caller]
fn refused(h: &Harness, cmd: &str, args: &[&str], kind: ErrorKind, needles: &[&str]) {
    let before = snap(h);
    h.take_events();
    let e = h.err(cmd, NOW, args);
    check_err(&e, &format!("{cmd} {args:?}"), kind, needles);
    assert!(
        h.events().is_empty(),
        "{cmd} {args:?} was refused but published {:?}",
        h.events()
    );
    let after = snap(h);
    assert_eq!(
        before, after,
        "{cmd} {args:?} was refused but changed the store"
    );
}

/// [`refused`] with `ErrorKind::Invalid`.
#[track_caller]
pub(crate) fn invalid(h: &Harness, cmd: &str, args: &[&str], needles: &[&str]) {
    refused(h, cmd, args, ErrorKind::Invalid, needles);
}

// ---------------------------------------------------------------- dispatch

/// An unknown command name is refused as invalid with "Unknown command `<name>`".
pub fn unknown_command_name_is_invalid(t: &Harness) {
    world(t);
    invalid(
        t,
        "frobnicate",
        &["a", "b"],
        &["Unknown command frobnicate"],
    );
}

/// An empty command name is refused as invalid: "Must provide a command" (spec §1).
pub fn empty_command_name_is_invalid(t: &Harness) {
    world(t);
    invalid(t, "", &["running"], &["Must provide a command"]);
}

/// A command name differing only in case is unknown (names are exact).
pub fn command_names_are_case_sensitive(t: &Harness) {
    world(t);
    invalid(
        t,
        "PUT",
        &["admin", "q", "new", "klass", "{}", "0"],
        &["Unknown command PUT"],
    );
}

/// A `now` that is not a finite number is refused as invalid before anything runs.
pub fn non_finite_now_is_invalid(t: &Harness) {
    world(t);
    let before = snap(t);
    for now in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = t
            .call("put", now, &["admin", "q", "new", "klass", "{}", "0"])
            .expect_err("put with a non-finite now must fail");
        assert_eq!(e.kind(), ErrorKind::Invalid, "now = {now}: {e}");
    }
    assert_eq!(
        snap(t),
        before,
        "a call with a non-finite now changed the store"
    );
}

// ---------------------------------------------------------------- get, multiget, config

/// `get` without a jid is refused: `Get(): Arg "jid" missing`.
pub fn get_without_jid_is_invalid(t: &Harness) {
    world(t);
    invalid(t, "get", &[], &["Get(): Arg \"jid\" missing"]);
}

/// `multiget` has no required argument: with no jids it returns `[]`, and missing jids are skipped.
pub fn multiget_without_jids_returns_empty_list(t: &Harness) {
    world(t);
    assert_eq!(t.ok("multiget", NOW, &[]), json!([]));
    let v = t.ok("multiget", NOW, &["nope", "waiting"]);
    let jids: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|j| j["jid"].as_str().unwrap())
        .collect();
    assert_eq!(jids, vec!["waiting"]);
}

/// `config.get` of an unknown key is not an error: it returns null.
pub fn config_get_unknown_key_is_null(t: &Harness) {
    world(t);
    assert_eq!(t.ok("config.get", NOW, &["no-such-key"]), Value::Null);
    assert_eq!(
        t.ok("config.get", NOW, &["application"]),
        json!("clew-test")
    );
}

/// `config.set` without a value is refused (`Config.set(): Arg ... missing`) and stores nothing.
pub fn config_set_without_value_is_invalid(t: &Harness) {
    world(t);
    invalid(
        t,
        "config.set",
        &["heartbeat"],
        &["Config.set(): Arg \"", "\" missing"],
    );
}

/// `config.set` with no arguments is refused as invalid.
pub fn config_set_without_key_is_invalid(t: &Harness) {
    world(t);
    invalid(
        t,
        "config.set",
        &[],
        &["Config.set(): Arg \"", "\" missing"],
    );
}

/// `config.unset` without a key is refused as invalid and publishes nothing.
pub fn config_unset_without_key_is_invalid(t: &Harness) {
    world(t);
    invalid(
        t,
        "config.unset",
        &[],
        &["Config.unset(): Arg \"", "\" missing"],
    );
}

// ---------------------------------------------------------------- put / requeue

/// `put` names each missing required argument (jid, klass, data, delay) and creates nothing.
pub fn put_missing_required_args(t: &Harness) {
    world(t);
    let full = ["admin", "q", "new", "klass", "{}", "0"];
    for (n, name) in [(2, "jid"), (3, "klass"), (4, "data"), (5, "delay")] {
        invalid(
            t,
            "put",
            &full[..n],
            &[&format!("Put(): Arg \"{name}\" missing")],
        );
    }
}

/// `put` without a queue (or with no arguments at all) is refused as invalid.
pub fn put_without_queue_is_invalid(t: &Harness) {
    world(t);
    invalid(t, "put", &["admin"], &["Put(): Arg \"queue\" missing"]);
    invalid(t, "put", &[], &["Put(): Arg \"", "\" missing"]);
}

/// `put` with a non-numeric priority: `Put(): Arg "priority" not a number: abc`.
pub fn put_priority_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "priority", "abc"],
        &["Put(): Arg \"priority\" not a number: abc"],
    );
}

/// `put` with a fractional priority: `Put(): Arg "priority" not an integer: 1.5`.
pub fn put_priority_fractional(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "priority", "1.5"],
        &["Put(): Arg \"priority\" not an integer: 1.5"],
    );
}

/// `put` with non-numeric retries: `Put(): Arg "retries" not a number: x`.
pub fn put_retries_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "retries", "x"],
        &["Put(): Arg \"retries\" not a number: x"],
    );
}

/// `put` with fractional retries: `Put(): Arg "retries" not an integer: 2.5`.
pub fn put_retries_fractional(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "retries", "2.5"],
        &["Put(): Arg \"retries\" not an integer: 2.5"],
    );
}

/// `put` with a non-numeric delay: `Put(): Arg "delay" not a number: soon`.
pub fn put_delay_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "soon"],
        &["Put(): Arg \"delay\" not a number: soon"],
    );
}

/// `put` with a negative delay: `Put(): Arg "delay" must not be negative: -1`.
pub fn put_negative_delay(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "-1"],
        &["Put(): Arg \"delay\" must not be negative: -1"],
    );
}

/// `put` with data that is not JSON: `Put(): Arg "data" not JSON: {bad`.
pub fn put_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{bad", "0"],
        &["Put(): Arg \"data\" not JSON: {bad"],
    );
}

/// `put` with tags that are not JSON: `Put(): Arg "tags" not JSON: {bad`.
pub fn put_tags_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "tags", "{bad"],
        &["Put(): Arg \"tags\" not JSON: {bad"],
    );
}

/// `put` refuses tags that are JSON but not an array of strings.
pub fn put_tags_not_array_of_strings(t: &Harness) {
    world(t);
    for tags in ["[1,2]", "{\"a\":1}", "\"t1\"", "[\"ok\",null]"] {
        invalid(
            t,
            "put",
            &["admin", "q", "new", "klass", "{}", "0", "tags", tags],
            &["Put(): Arg \"tags\""],
        );
    }
}

/// `put` with depends that are not JSON is refused and the job is not created.
pub fn put_depends_not_json_creates_nothing(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &[
            "admin", "q", "new", "klass", "{}", "0", "tags", "[\"t9\"]", "depends", "{bad",
        ],
        &["Put(): Arg \"depends\" not JSON: {bad"],
    );
    assert_eq!(t.get("new"), Value::Null);
    assert_eq!(
        t.ok("tag", NOW, &["get", "t9", "0", "10"]),
        json!({"total": 0, "jobs": []})
    );
}

/// `put` refuses depends that are JSON but not an array of strings.
pub fn put_depends_not_array_of_strings(t: &Harness) {
    world(t);
    for deps in ["{\"a\":1}", "[1]", "\"running\""] {
        invalid(
            t,
            "put",
            &["admin", "q", "new", "klass", "{}", "0", "depends", deps],
            &["Put(): Arg \"depends\""],
        );
    }
}

/// `put` with an odd number of optional arguments: `Put(): Odd number of optional arguments`.
pub fn put_odd_optional_args(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &[
            "admin", "q", "new", "klass", "{}", "0", "priority", "1", "tags",
        ],
        &["Put(): Odd number of optional arguments"],
    );
}

/// `put` with an unknown option name: `Put(): Unknown option "colour"`.
pub fn put_unknown_option(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "klass", "{}", "0", "colour", "red"],
        &["Put(): Unknown option \"colour\""],
    );
}

/// A bad re-put of a running job leaves it running with its worker (no lock_lost, no move).
pub fn put_of_existing_running_job_with_bad_option_changes_nothing(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &[
            "admin", "other", "running", "klass", "{}", "0", "priority", "9", "retries", "x",
        ],
        &["Put(): Arg \"retries\" not a number: x"],
    );
    let j = t.get("running");
    assert_eq!(
        (j["state"].clone(), j["worker"].clone(), j["queue"].clone()),
        (json!("running"), json!("w1"), json!("q"))
    );
}

/// A bad re-put of a failed job leaves it in its failure group.
pub fn put_of_failed_job_with_bad_tags_changes_nothing(t: &Harness) {
    world(t);
    invalid(
        t,
        "put",
        &["admin", "q", "failed", "klass", "{}", "0", "tags", "[1]"],
        &["Put(): Arg \"tags\""],
    );
    assert_eq!(t.ok("failed", NOW, &[]), json!({"grp": 1}));
}

/// `requeue` names itself in argument errors: `Requeue(): Arg "priority" not a number: abc`.
pub fn requeue_priority_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "requeue",
        &[
            "admin", "q", "waiting", "klass", "{}", "0", "priority", "abc",
        ],
        &["Requeue(): Arg \"priority\" not a number: abc"],
    );
}

/// `requeue` refuses a missing delay and an odd number of optional arguments.
pub fn requeue_missing_delay_and_odd_args(t: &Harness) {
    world(t);
    invalid(
        t,
        "requeue",
        &["admin", "q", "waiting", "klass", "{}"],
        &["Requeue(): Arg \"delay\" missing"],
    );
    invalid(
        t,
        "requeue",
        &["admin", "q", "waiting", "klass", "{}", "0", "retries"],
        &["Requeue(): Odd number of optional arguments"],
    );
}

/// `requeue` with depends that are not JSON leaves the existing job untouched.
pub fn requeue_depends_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "requeue",
        &[
            "admin", "other", "dep", "klass", "{}", "0", "depends", "[oops",
        ],
        &["Requeue(): Arg \"depends\" not JSON: [oops"],
    );
}

/// `requeue` of a job that does not exist is not found and creates nothing.
pub fn requeue_of_missing_job_is_not_found(t: &Harness) {
    world(t);
    refused(
        t,
        "requeue",
        &["admin", "q", "new", "klass", "{}", "0"],
        ErrorKind::NotFound,
        &["Requeue(): Job new does not exist"],
    );
}

// ---------------------------------------------------------------- pop, peek

/// `pop` without a worker is refused and registers no worker.
pub fn pop_without_worker_is_invalid(t: &Harness) {
    world(t);
    invalid(t, "pop", &["q"], &["Pop(): Arg \"worker\" missing"]);
}

/// `pop` with a non-numeric count is refused and hands out nothing.
pub fn pop_count_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "pop",
        &["q", "w3", "many"],
        &["Pop(): Arg \"count\" not a number: many"],
    );
}

/// `pop` with a fractional count: `Pop(): Arg "count" not an integer: 1.5`.
pub fn pop_count_fractional(t: &Harness) {
    world(t);
    invalid(
        t,
        "pop",
        &["q", "w3", "1.5"],
        &["Pop(): Arg \"count\" not an integer: 1.5"],
    );
}

/// A refused `pop` at a time when housekeeping is due does none of it (no promotion, no spawn).
pub fn pop_refused_does_no_housekeeping(t: &Harness) {
    world(t);
    // At 20000 "scheduled" is due and "r1" would spawn; the bad pop must do neither.
    let e = t.err("pop", 20000.0, &["q", "w3", "many"]);
    check_err(
        &e,
        "pop count many",
        ErrorKind::Invalid,
        &["Pop(): Arg \"count\" not a number: many"],
    );
    assert_eq!(t.state("scheduled"), "scheduled");
    assert_eq!(t.ok("recur.get", 20000.0, &["r1"])["count"], json!(0));
    assert_eq!(
        t.ok("workers", NOW, &["w3"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// `peek` with a non-numeric count is refused as invalid.
pub fn peek_count_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "peek",
        &["q", "many"],
        &["Peek(): Arg \"count\" not a number: many"],
    );
}

/// `peek` without a queue is refused as invalid.
pub fn peek_without_queue_is_invalid(t: &Harness) {
    world(t);
    invalid(t, "peek", &[], &["Peek(): Arg \"queue\" missing"]);
}

// ---------------------------------------------------------------- heartbeat

/// `heartbeat` names each missing required argument (jid, worker).
pub fn heartbeat_missing_required_args(t: &Harness) {
    world(t);
    invalid(t, "heartbeat", &[], &["Heartbeat(): Arg \"jid\" missing"]);
    invalid(
        t,
        "heartbeat",
        &["running"],
        &["Heartbeat(): Arg \"worker\" missing"],
    );
}

/// `heartbeat` with data that is not JSON is refused and the lock is not renewed.
pub fn heartbeat_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "heartbeat",
        &["running", "w1", "{bad"],
        &["Heartbeat(): Arg \"data\" not JSON: {bad"],
    );
    assert_eq!(t.get("running")["expires"], json!(62));
}

// ---------------------------------------------------------------- complete

/// `complete` names each missing required argument (jid, worker, queue, data).
pub fn complete_missing_required_args(t: &Harness) {
    world(t);
    let full = ["running", "w1", "q", "{}"];
    for (n, name) in [(0, "jid"), (1, "worker"), (2, "queue"), (3, "data")] {
        invalid(
            t,
            "complete",
            &full[..n],
            &[&format!("Complete(): Arg \"{name}\" missing")],
        );
    }
}

/// `complete` with data that is not JSON is refused and the job keeps running.
pub fn complete_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{bad"],
        &["Complete(): Arg \"data\" not JSON: {bad"],
    );
    assert_eq!(t.state("running"), "running");
}

/// `complete` with `next` and a non-numeric delay is refused.
pub fn complete_delay_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "next", "next", "delay", "soon"],
        &["Complete(): Arg \"delay\" not a number: soon"],
    );
}

/// `complete` with `next` and a negative delay is refused.
pub fn complete_negative_delay(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "next", "next", "delay", "-5"],
        &["Complete(): Arg \"delay\" must not be negative: -5"],
    );
}

/// `complete` with a delay but no `next` is refused: "delay" and "depends" can only be used with "next".
pub fn complete_delay_without_next(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "delay", "10"],
        &["Complete(): \"delay\" and \"depends\" can only be used with \"next\""],
    );
}

/// `complete` with depends but no `next` is refused and the job keeps running.
pub fn complete_depends_without_next(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "depends", "[\"waiting\"]"],
        &["Complete(): \"delay\" and \"depends\" can only be used with \"next\""],
    );
}

/// `complete` into a next queue with depends that are not JSON: nothing happens, the job keeps running.
pub fn complete_next_with_bad_depends_keeps_job_running(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &[
            "running",
            "w1",
            "q",
            "{\"done\":1}",
            "next",
            "next",
            "depends",
            "{bad",
        ],
        &["Complete(): Arg \"depends\" not JSON: {bad"],
    );
    let j = t.get("running");
    assert_eq!(
        (j["state"].clone(), j["queue"].clone(), j["worker"].clone()),
        (json!("running"), json!("q"), json!("w1"))
    );
    // Its dependent stays blocked.
    assert_eq!(t.state("dep"), "depends");
}

// ---------------------------------------------------------------- fail

/// `fail` names each missing required argument (jid, worker, group, message).
pub fn fail_missing_required_args(t: &Harness) {
    world(t);
    let full = ["running", "w1", "grp", "boom"];
    for (n, name) in [(0, "jid"), (1, "worker"), (2, "group"), (3, "message")] {
        invalid(
            t,
            "fail",
            &full[..n],
            &[&format!("Fail(): Arg \"{name}\" missing")],
        );
    }
}

/// `fail` with data that is not JSON is refused and the job keeps running.
pub fn fail_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "fail",
        &["running", "w1", "grp", "boom", "{bad"],
        &["Fail(): Arg \"data\" not JSON: {bad"],
    );
    assert_eq!(t.state("running"), "running");
}

// ---------------------------------------------------------------- retry

/// `retry` names each missing required argument (jid, queue, worker).
pub fn retry_missing_required_args(t: &Harness) {
    world(t);
    let full = ["running", "q", "w1"];
    for (n, name) in [(0, "jid"), (1, "queue"), (2, "worker")] {
        invalid(
            t,
            "retry",
            &full[..n],
            &[&format!("Retry(): Arg \"{name}\" missing")],
        );
    }
}

/// `retry` with a non-numeric delay is refused and `remaining` is not decremented.
pub fn retry_delay_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "retry",
        &["running", "q", "w1", "soon"],
        &["Retry(): Arg \"delay\" not a number: soon"],
    );
    assert_eq!(t.get("running")["remaining"], json!(5));
}

/// `retry` with a negative delay is refused.
pub fn retry_negative_delay(t: &Harness) {
    world(t);
    invalid(
        t,
        "retry",
        &["running", "q", "w1", "-3"],
        &["Retry(): Arg \"delay\" must not be negative: -3"],
    );
}

// ---------------------------------------------------------------- depends

/// `depends` with a sub-command other than on/off: `Depends(): Argument "command" must be "on" or "off"`.
pub fn depends_unknown_subcommand(t: &Harness) {
    world(t);
    invalid(
        t,
        "depends",
        &["dep", "toggle", "waiting"],
        &["Depends(): Argument \"command\" must be \"on\" or \"off\""],
    );
}

/// `depends` without a jid or without a sub-command is refused as invalid.
pub fn depends_missing_args(t: &Harness) {
    world(t);
    invalid(t, "depends", &[], &["Depends(): Arg \"jid\" missing"]);
    invalid(t, "depends", &["dep"], &["Depends():"]);
}

// ---------------------------------------------------------------- priority

/// `priority` with a non-numeric value is refused and the job keeps its priority.
pub fn priority_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "priority",
        &["waiting", "abc"],
        &["Priority(): Arg \"priority\" not a number: abc"],
    );
    assert_eq!(t.get("waiting")["priority"], json!(3));
}

/// `priority` with a fractional value: `Priority(): Arg "priority" not an integer: 2.5`.
pub fn priority_fractional(t: &Harness) {
    world(t);
    invalid(
        t,
        "priority",
        &["waiting", "2.5"],
        &["Priority(): Arg \"priority\" not an integer: 2.5"],
    );
}

/// `priority` without a value (or without a jid) is refused as invalid.
pub fn priority_missing_args(t: &Harness) {
    world(t);
    invalid(
        t,
        "priority",
        &["waiting"],
        &["Priority(): Arg \"priority\" missing"],
    );
    invalid(t, "priority", &[], &["Priority(): Arg \"jid\" missing"]);
}

// ---------------------------------------------------------------- timeout, cancel (errors in the middle)

/// `timeout a b` where b is not running: Conflict naming b's state, and a is not timed out.
pub fn timeout_second_not_running_times_out_nothing(t: &Harness) {
    world(t);
    refused(
        t,
        "timeout",
        &["running", "waiting"],
        ErrorKind::Conflict,
        &["Timeout(): Job waiting not running: waiting"],
    );
    assert_eq!(t.state("running"), "running");
}

/// `timeout a b` where b does not exist: NotFound, and a is not timed out.
pub fn timeout_second_missing_times_out_nothing(t: &Harness) {
    world(t);
    refused(
        t,
        "timeout",
        &["running", "nope"],
        ErrorKind::NotFound,
        &["Timeout(): Job nope does not exist"],
    );
}

/// `cancel a b` where b is a dependency of an unlisted job: Conflict, nothing is cancelled.
pub fn cancel_with_unlisted_dependent_cancels_nothing(t: &Harness) {
    world(t);
    refused(
        t,
        "cancel",
        &["waiting", "failed", "running"],
        ErrorKind::Conflict,
        &["Cancel(): running is a dependency of dep but is not mentioned to be canceled"],
    );
    assert_eq!(t.state("waiting"), "waiting");
    assert_eq!(t.state("failed"), "failed");
}

// ---------------------------------------------------------------- log

/// `log` without a message (or without a jid) is refused as invalid.
pub fn log_missing_args(t: &Harness) {
    world(t);
    invalid(t, "log", &["running"], &["Log(): Arg \"message\" missing"]);
    invalid(t, "log", &[], &["Log(): Arg \"jid\" missing"]);
}

/// `log` with data that is not JSON is refused and no history entry is added.
pub fn log_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "log",
        &["running", "hello", "{bad"],
        &["Log(): Arg \"data\" not JSON: {bad"],
    );
    assert_eq!(
        history_whats(&t.get("running")),
        vec!["put", "popped", "note"]
    );
}

/// `log` with data that is JSON but not an object is refused (its keys are merged into the entry).
pub fn log_data_not_an_object(t: &Harness) {
    world(t);
    invalid(
        t,
        "log",
        &["running", "hello", "[1,2]"],
        &["Log(): Arg \"data\""],
    );
}

// ---------------------------------------------------------------- tag, track

/// `tag` with an unknown sub-command: `Tag(): First argument must be "add", "remove", "get" or "top"`.
pub fn tag_unknown_subcommand(t: &Harness) {
    world(t);
    invalid(
        t,
        "tag",
        &["append", "waiting", "x"],
        &["Tag(): First argument must be \"add\", \"remove\", \"get\" or \"top\""],
    );
}

/// `tag` with no sub-command at all is refused with the same wording.
pub fn tag_without_subcommand(t: &Harness) {
    world(t);
    invalid(
        t,
        "tag",
        &[],
        &["Tag(): First argument must be \"add\", \"remove\", \"get\" or \"top\""],
    );
}

/// `tag add` / `tag remove` without a jid are refused: `Tag(): Arg "jid" missing`.
pub fn tag_add_remove_without_jid(t: &Harness) {
    world(t);
    invalid(t, "tag", &["add"], &["Tag(): Arg \"jid\" missing"]);
    invalid(t, "tag", &["remove"], &["Tag(): Arg \"jid\" missing"]);
}

/// `tag get` without a tag is refused: `Tag(): Arg "tag" missing`.
pub fn tag_get_without_tag(t: &Harness) {
    world(t);
    invalid(t, "tag", &["get"], &["Tag(): Arg \"tag\" missing"]);
}

/// `tag get` / `tag top` with non-numeric paging are refused, naming offset or count.
pub fn tag_paging_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "tag",
        &["get", "t1", "x"],
        &["Tag(): Arg \"offset\" not a number: x"],
    );
    invalid(
        t,
        "tag",
        &["get", "t1", "0", "many"],
        &["Tag(): Arg \"count\" not a number: many"],
    );
    invalid(
        t,
        "tag",
        &["top", "x"],
        &["Tag(): Arg \"offset\" not a number: x"],
    );
    invalid(
        t,
        "tag",
        &["top", "0", "many"],
        &["Tag(): Arg \"count\" not a number: many"],
    );
}

/// `tag add` of a missing job is not found and adds no tag anywhere.
pub fn tag_add_missing_job_is_not_found(t: &Harness) {
    world(t);
    refused(
        t,
        "tag",
        &["add", "nope", "t1", "t3"],
        ErrorKind::NotFound,
        &["Tag(): Job nope does not exist"],
    );
}

/// `track` with an unknown action: `Track(): Unknown action "follow"`.
pub fn track_unknown_action(t: &Harness) {
    world(t);
    invalid(
        t,
        "track",
        &["follow", "waiting"],
        &["Track(): Unknown action \"follow\""],
    );
}

/// `track track` / `track untrack` without a jid are refused as invalid.
pub fn track_without_jid(t: &Harness) {
    world(t);
    invalid(t, "track", &["track"], &["Track(): Arg \"jid\" missing"]);
    invalid(t, "track", &["untrack"], &["Track(): Arg \"jid\" missing"]);
}

// ---------------------------------------------------------------- listings: jobs, failed, unfail, stats, length

/// `jobs` with an unknown listing: `Jobs(): Unknown type "bogus"`.
pub fn jobs_unknown_type(t: &Harness) {
    world(t);
    invalid(
        t,
        "jobs",
        &["bogus", "q"],
        &["Jobs(): Unknown type \"bogus\""],
    );
}

/// `jobs <state>` without a queue is refused: `Jobs(): Arg "queue" missing`.
pub fn jobs_without_queue(t: &Harness) {
    world(t);
    for state in ["running", "stalled", "scheduled", "depends", "recurring"] {
        invalid(t, "jobs", &[state], &["Jobs(): Arg \"queue\" missing"]);
    }
}

/// `jobs` with no arguments at all is refused as invalid.
pub fn jobs_without_type(t: &Harness) {
    world(t);
    invalid(t, "jobs", &[], &["Jobs():"]);
}

/// `jobs` with non-numeric paging is refused, naming offset or count.
pub fn jobs_paging_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "jobs",
        &["running", "q", "x"],
        &["Jobs(): Arg \"offset\" not a number: x"],
    );
    invalid(
        t,
        "jobs",
        &["running", "q", "0", "many"],
        &["Jobs(): Arg \"count\" not a number: many"],
    );
    invalid(
        t,
        "jobs",
        &["complete", "x"],
        &["Jobs(): Arg \"offset\" not a number: x"],
    );
    invalid(
        t,
        "jobs",
        &["complete", "0", "many"],
        &["Jobs(): Arg \"count\" not a number: many"],
    );
}

/// A refused `jobs scheduled` promotes nothing even when a job is due.
pub fn jobs_scheduled_refused_promotes_nothing(t: &Harness) {
    world(t);
    let e = t.err("jobs", 20000.0, &["scheduled", "q", "x"]);
    check_err(
        &e,
        "jobs scheduled q x",
        ErrorKind::Invalid,
        &["Jobs(): Arg \"offset\" not a number: x"],
    );
    assert_eq!(t.state("scheduled"), "scheduled");
}

/// `failed` with non-numeric start or limit is refused.
pub fn failed_paging_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "failed",
        &["grp", "x"],
        &["Failed(): Arg \"start\" not a number: x"],
    );
    invalid(
        t,
        "failed",
        &["grp", "0", "many"],
        &["Failed(): Arg \"limit\" not a number: many"],
    );
}

/// `unfail` with a non-numeric count is refused and the failed job stays failed.
pub fn unfail_count_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "unfail",
        &["q", "grp", "many"],
        &["Unfail(): Arg \"count\" not a number: many"],
    );
    assert_eq!(t.state("failed"), "failed");
}

/// `unfail` without a group (or without a queue) is refused as invalid.
pub fn unfail_missing_args(t: &Harness) {
    world(t);
    invalid(t, "unfail", &["q"], &["Unfail(): Arg \"group\" missing"]);
    invalid(t, "unfail", &[], &["Unfail(): Arg \"queue\" missing"]);
}

/// `stats` without a date, or with a non-numeric one, is refused.
pub fn stats_date_missing_or_not_a_number(t: &Harness) {
    world(t);
    invalid(t, "stats", &["q"], &["Stats(): Arg \"date\" missing"]);
    invalid(
        t,
        "stats",
        &["q", "today"],
        &["Stats(): Arg \"date\" not a number: today"],
    );
}

/// `stats` without a queue is refused as invalid.
pub fn stats_without_queue(t: &Harness) {
    world(t);
    invalid(t, "stats", &[], &["Stats(): Arg \"queue\" missing"]);
}

/// `length` without a queue is refused: `Length(): Arg "queue" missing`.
pub fn length_without_queue(t: &Harness) {
    world(t);
    invalid(t, "length", &[], &["Length(): Arg \"queue\" missing"]);
}

// ---------------------------------------------------------------- recur family

/// `recur` names each missing required argument (queue, jid, klass, data).
pub fn recur_missing_required_args(t: &Harness) {
    world(t);
    let full = ["q", "r2", "klass", "{}", "interval", "60", "0"];
    for (n, name) in [(0, "queue"), (1, "jid"), (2, "klass"), (3, "data")] {
        invalid(
            t,
            "recur",
            &full[..n],
            &[&format!("Recur(): Arg \"{name}\" missing")],
        );
    }
}

/// `recur` with a schedule type other than interval or cron: `Recur(): schedule type "hourly" unknown`.
pub fn recur_unknown_schedule_type(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &["q", "r2", "klass", "{}", "hourly", "60", "0"],
        &["Recur(): schedule type \"hourly\" unknown"],
    );
}

/// `recur` with a non-numeric interval or offset is refused, naming the argument.
pub fn recur_interval_or_offset_not_a_number(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &["q", "r2", "klass", "{}", "interval", "often", "0"],
        &["Recur(): Arg \"interval\" not a number: often"],
    );
    invalid(
        t,
        "recur",
        &["q", "r2", "klass", "{}", "interval", "60", "later"],
        &["Recur(): Arg \"offset\" not a number: later"],
    );
}

/// `recur` with an interval of 0 or less: `Recur(): Arg "interval" must be greater than 0: <v>`.
pub fn recur_interval_not_positive(t: &Harness) {
    world(t);
    for v in ["0", "-5"] {
        invalid(
            t,
            "recur",
            &["q", "r2", "klass", "{}", "interval", v, "0"],
            &[&format!(
                "Recur(): Arg \"interval\" must be greater than 0: {v}"
            )],
        );
    }
}

/// `recur` with data that is not JSON is refused and no template is stored.
pub fn recur_data_not_json(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &["q", "r2", "klass", "{bad", "interval", "60", "0"],
        &["Recur(): Arg \"data\" not JSON: {bad"],
    );
    assert_eq!(t.ok("recur.get", NOW, &["r2"]), Value::Null);
}

/// `recur` refuses non-numeric priority, retries and backlog, and tags that are not JSON.
pub fn recur_bad_options(t: &Harness) {
    world(t);
    for (opt, v, needle) in [
        (
            "priority",
            "abc",
            "Recur(): Arg \"priority\" not a number: abc",
        ),
        ("retries", "x", "Recur(): Arg \"retries\" not a number: x"),
        (
            "backlog",
            "lots",
            "Recur(): Arg \"backlog\" not a number: lots",
        ),
        ("tags", "{bad", "Recur(): Arg \"tags\" not JSON: {bad"),
    ] {
        invalid(
            t,
            "recur",
            &["q", "r2", "klass", "{}", "interval", "60", "0", opt, v],
            &[needle],
        );
    }
}

/// `recur` with an odd number of optional arguments is refused.
pub fn recur_odd_optional_args(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &["q", "r2", "klass", "{}", "interval", "60", "0", "priority"],
        &["Recur(): Odd number of optional arguments"],
    );
}

/// `recur` with an unknown option name is refused: `Recur(): Unknown option "depends"`.
pub fn recur_unknown_option(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &[
            "q", "r2", "klass", "{}", "interval", "60", "0", "depends", "[]",
        ],
        &["Recur(): Unknown option \"depends\""],
    );
}

/// A bad re-recur of an existing template leaves the template exactly as it was.
pub fn recur_of_existing_template_with_bad_args_changes_nothing(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur",
        &[
            "other", "r1", "k2", "{}", "interval", "30", "0", "retries", "x",
        ],
        &["Recur(): Arg \"retries\" not a number: x"],
    );
    assert_eq!(t.ok("recur.get", NOW, &["r1"])["queue"], json!("q"));
}

/// `unrecur` and `recur.get` without a jid are refused as invalid.
pub fn unrecur_and_recur_get_without_jid(t: &Harness) {
    world(t);
    invalid(t, "unrecur", &[], &["Unrecur(): Arg \"jid\" missing"]);
    invalid(t, "recur.get", &[], &["Recur.get(): Arg \"jid\" missing"]);
}

/// `recur.update` with an unknown key: `Recur.update(): Unrecognized option "colour"`.
pub fn recur_update_unknown_option(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur.update",
        &["r1", "colour", "red"],
        &["Recur.update(): Unrecognized option \"colour\""],
    );
}

/// `recur.update` with a key but no value is refused as invalid.
pub fn recur_update_missing_value(t: &Harness) {
    world(t);
    invalid(t, "recur.update", &["r1", "priority"], &["Recur.update():"]);
}

/// `recur.update` refuses non-numeric priority/interval/retries/backlog and non-JSON data.
pub fn recur_update_bad_values(t: &Harness) {
    world(t);
    for (key, v) in [
        ("priority", "abc"),
        ("interval", "often"),
        ("retries", "x"),
        ("backlog", "lots"),
    ] {
        invalid(
            t,
            "recur.update",
            &["r1", key, v],
            &[&format!("Recur.update(): Arg \"{key}\" not a number: {v}")],
        );
    }
    invalid(
        t,
        "recur.update",
        &["r1", "data", "{bad"],
        &["Recur.update(): Arg \"data\" not JSON: {bad"],
    );
}

/// `recur.update` with a good change followed by a bad one applies neither.
pub fn recur_update_partial_failure_applies_nothing(t: &Harness) {
    world(t);
    invalid(
        t,
        "recur.update",
        &["r1", "priority", "7", "queue", "other", "interval", "often"],
        &["Recur.update(): Arg \"interval\" not a number: often"],
    );
    let r = t.ok("recur.get", NOW, &["r1"]);
    assert_eq!(
        (r["priority"].clone(), r["queue"].clone()),
        (json!(0), json!("q"))
    );
}

/// `recur.update` of a missing template is not found: `Recur(): No recurring job nope`.
pub fn recur_update_missing_template_is_not_found(t: &Harness) {
    world(t);
    refused(
        t,
        "recur.update",
        &["nope", "priority", "1"],
        ErrorKind::NotFound,
        &["Recur(): No recurring job nope"],
    );
}

/// `recur.tag` / `recur.untag` without a jid are refused; of a missing template, not found.
pub fn recur_tag_untag_errors(t: &Harness) {
    world(t);
    invalid(t, "recur.tag", &[], &["Recur.tag(): Arg \"jid\" missing"]);
    invalid(
        t,
        "recur.untag",
        &[],
        &["Recur.untag(): Arg \"jid\" missing"],
    );
    refused(
        t,
        "recur.tag",
        &["nope", "x"],
        ErrorKind::NotFound,
        &["Recur(): No recurring job nope"],
    );
    refused(
        t,
        "recur.untag",
        &["nope", "x"],
        ErrorKind::NotFound,
        &["Recur(): No recurring job nope"],
    );
}

/// `recur.update` with an interval of 0 or less is refused and the template keeps its interval.
pub fn recur_update_interval_not_positive(t: &Harness) {
    world(t);
    for v in ["0", "-60"] {
        invalid(
            t,
            "recur.update",
            &["r1", "interval", v],
            &["Recur.update(): Arg \"interval\" must be greater than 0"],
        );
    }
    assert_eq!(t.ok("recur.get", NOW, &["r1"])["interval"], json!(60));
}

// ---------------------------------------------------------------- more complete options

/// `complete` with an odd number of optional arguments is refused and the job keeps running.
pub fn complete_odd_optional_args(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "next"],
        &["Complete(): Odd number of optional arguments"],
    );
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "next", "next", "delay"],
        &["Complete(): Odd number of optional arguments"],
    );
}

/// `complete` with an unknown option name is refused (not silently ignored) and the job keeps running.
pub fn complete_unknown_option(t: &Harness) {
    world(t);
    invalid(
        t,
        "complete",
        &["running", "w1", "q", "{}", "nxt", "next"],
        &["Complete(): Unknown option \"nxt\""],
    );
}

// ---------------------------------------------------------------- queue and worker lists

/// `pause`, `unpause` and `queue.forget` without any queue are refused as invalid.
pub fn queue_commands_without_queue_are_invalid(t: &Harness) {
    world(t);
    for (cmd, name) in [
        ("pause", "Pause"),
        ("unpause", "Unpause"),
        ("queue.forget", "Queue.forget"),
    ] {
        invalid(t, cmd, &[], &[&format!("{name}(): Arg \"queue"), "missing"]);
    }
}

/// `worker.deregister` without any worker is refused as invalid.
pub fn worker_deregister_without_worker_is_invalid(t: &Harness) {
    world(t);
    invalid(
        t,
        "worker.deregister",
        &[],
        &["Worker.deregister(): Arg \"worker", "missing"],
    );
}

// ---------------------------------------------------------------- numbers

/// Non-finite numbers ("inf", "NaN") are not numbers: delay and priority refuse them.
pub fn non_finite_numbers_are_not_numbers(t: &Harness) {
    world(t);
    for v in ["inf", "NaN", "-inf"] {
        invalid(
            t,
            "put",
            &["admin", "q", "new", "klass", "{}", v],
            &[&format!("Put(): Arg \"delay\" not a number: {v}")],
        );
        invalid(
            t,
            "put",
            &["admin", "q", "new", "klass", "{}", "0", "priority", v],
            &[&format!("Put(): Arg \"priority\" not a number: {v}")],
        );
    }
}
