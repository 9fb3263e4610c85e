//! `clew recur add/update/get ... --cron --tz --missed`, run as a user
//! would: against a store file (`--db sqlite:PATH`) and against a real
//! `clew server` (`--url`, whose client speaks qless `recur ... cron ...`).

mod common;

use std::process::Output;

use common::{clew, Server};
use serde_json::Value;

fn run(target: &[String], args: &[&str]) -> Output {
    clew().args(target).args(args).output().expect("run clew")
}

fn ok(target: &[String], args: &[&str]) -> String {
    let o = run(target, args);
    assert!(
        o.status.success(),
        "clew {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(target: &[String], args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(target, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Runs and expects failure with a one-line `clew: ...` message naming `needle`.
fn fails(target: &[String], args: &[&str], needle: &str) {
    let o = run(target, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "clew {args:?} should fail");
    assert!(
        err.contains(needle),
        "clew {args:?}: {err:?} should name {needle:?}"
    );
}

fn exercise(target: &[String]) {
    let r = ok(
        target,
        &[
            "recur",
            "add",
            "q",
            "Report",
            "--cron",
            "*/5 * * * *",
            "--tz",
            "Europe/Paris",
            "--missed",
            "skip",
            "--jid",
            "c1",
        ],
    );
    assert_eq!(r.trim(), "c1");
    let rec = json(target, &["recur", "get", "c1"]);
    assert_eq!(rec["cron"], "*/5 * * * *");
    assert_eq!(rec["timezone"], "Europe/Paris");
    assert_eq!(rec["missed"], "skip");
    assert!(rec["next_at"].as_f64().is_some(), "{rec}");
    // Human output shows the schedule.
    let text = ok(target, &["recur", "get", "c1"]);
    assert!(
        text.contains("*/5 * * * *") && text.contains("Europe/Paris"),
        "{text}"
    );
    assert!(
        !text.contains("interval:"),
        "a cron template shows no interval: {text}"
    );
    let table = ok(target, &["jobs", "--state", "recurring", "--queue", "q"]);
    assert!(table.contains("cron */5 * * * * Europe/Paris"), "{table}");

    ok(
        target,
        &[
            "recur", "update", "c1", "--cron", "@hourly", "--tz", "UTC", "--missed", "catch-up",
        ],
    );
    let rec = json(target, &["recur", "get", "c1"]);
    assert_eq!(rec["cron"], "@hourly");
    assert_eq!(rec["timezone"], "UTC");
    assert_eq!(rec["missed"], "catch-up");
    ok(target, &["recur", "update", "c1", "--interval", "90"]);
    let rec = json(target, &["recur", "get", "c1"]);
    assert!(rec.get("cron").is_none(), "{rec}");
    assert_eq!(rec["interval"], 90);

    fails(
        target,
        &["recur", "add", "q", "K", "--cron", "* * *"],
        "5 fields",
    );
    fails(
        target,
        &[
            "recur",
            "add",
            "q",
            "K",
            "--cron",
            "* * * * *",
            "--tz",
            "Nowhere/Else",
        ],
        "timezone",
    );
    fails(
        target,
        &[
            "recur",
            "add",
            "q",
            "K",
            "--cron",
            "* * * * *",
            "--missed",
            "maybe",
        ],
        "missed",
    );
    fails(
        target,
        &[
            "recur",
            "add",
            "q",
            "K",
            "--cron",
            "* * * * *",
            "--interval",
            "5",
        ],
        "--interval",
    );
    fails(target, &["recur", "add", "q", "K"], "--interval");
    fails(
        target,
        &["recur", "update", "c1", "--missed", "skip"],
        "missed",
    );
    assert_eq!(json(target, &["recur", "get", "c1"])["interval"], 90);
}

#[test]
fn recur_cron_against_a_store_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("clew.db");
    exercise(&["--db".to_owned(), format!("sqlite:{}", db.display())]);
}

#[test]
fn recur_cron_against_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("clew.db"), &[]);
    exercise(&["--url".to_owned(), server.url.clone()]);
    server.stop();
}
