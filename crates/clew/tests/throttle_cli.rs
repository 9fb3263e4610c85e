//! `clew throttle set|get|list|delete` and `clew put --throttle`, run as a
//! user would, against a store file.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_clew");

/// Runs `clew --db sqlite:DB ARGS`; returns exit code, stdout, stderr.
fn clew(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("CLEW_URL")
        .env_remove("CLEW_DB")
        .env_remove("CLEW_TOKEN")
        .stdin(Stdio::null())
        .arg("--db")
        .arg(format!("sqlite:{}", dir.join("t.db").display()))
        .args(args)
        .output()
        .expect("run clew");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = clew(dir, args);
    assert_eq!(code, 0, "clew {args:?} failed: {err}");
    out
}

/// Runs with `--json` and parses stdout.
fn json_of(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(dir, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("clew {args:?}: not JSON ({e}): {out}"))
}

/// Runs and expects failure with `code` and a one-line message.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let (got, out, err) = clew(dir, args);
    assert_eq!(got, code, "clew {args:?}: stdout {out} stderr {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    err
}

#[test]
fn throttle_commands_and_put_throttle() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let table = ok(dir, &["throttle", "set", "customer-7", "1"]);
    assert!(table.starts_with("THROTTLE"), "{table}");
    assert!(table.contains("customer-7"), "{table}");
    ok(
        dir,
        &[
            "put",
            "emails",
            "K",
            "--jid",
            "a",
            "--throttle",
            "customer-7",
            "--throttle",
            "api",
        ],
    );
    ok(
        dir,
        &[
            "put",
            "reports",
            "K",
            "--jid",
            "b",
            "--throttle",
            "customer-7",
        ],
    );
    assert_eq!(
        json_of(dir, &["job", "show", "a"])["throttles"],
        json!(["customer-7", "api"])
    );
    ok(dir, &["pop", "emails", "--worker", "w1"]);
    assert_eq!(
        json_of(dir, &["pop", "reports", "--worker", "w2"]),
        json!([])
    );
    assert_eq!(json_of(dir, &["job", "show", "b"])["state"], "throttled");
    let listed = json_of(dir, &["jobs", "--state", "throttled", "--queue", "reports"]);
    assert_eq!(listed[0]["jid"], "b", "{listed}");
    assert_eq!(
        json_of(dir, &["throttle", "get", "customer-7"]),
        json!({"name": "customer-7", "max": 1, "running": 1, "pending": 1})
    );
    let list = ok(dir, &["throttle", "list"]);
    let row = list.lines().nth(1).unwrap_or("");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["customer-7", "1", "1", "1", "-"],
        "{list}"
    );
    // Raising the maximum lets b go back to its queue.
    ok(dir, &["throttle", "set", "customer-7", "2"]);
    assert_eq!(json_of(dir, &["job", "show", "b"])["state"], "waiting");
    let out = ok(dir, &["throttle", "delete", "customer-7"]);
    assert!(out.contains("deleted throttle customer-7"), "{out}");
    assert_eq!(json_of(dir, &["throttle", "list"]), json!([]));
}

#[test]
fn throttle_errors_are_one_line_with_a_non_zero_exit() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let e = fails(dir, &["throttle", "get", "nope"], 3);
    assert!(e.contains("No throttle nope"), "{e}");
    let e = fails(dir, &["throttle", "delete", "nope"], 3);
    assert!(e.contains("No throttle nope"), "{e}");
    let e = fails(dir, &["throttle", "set", "t", "-1"], 2);
    assert!(e.contains("must not be negative"), "{e}");
    let e = fails(dir, &["throttle", "set", "t", "lots"], 2);
    assert!(e.contains("MAX"), "{e}");
    let e = fails(dir, &["put", "q", "K", "--throttle", ""], 2);
    assert!(e.contains("throttles"), "{e}");
}

#[test]
fn throttle_set_with_a_rate() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let table = ok(dir, &["throttle", "set", "api", "0", "--rate", "1/1h"]);
    assert!(table.contains("1/3600s (0 started)"), "{table}");
    for jid in ["a", "b"] {
        ok(dir, &["put", "q", "K", "--jid", jid, "--throttle", "api"]);
    }
    assert_eq!(json_of(dir, &["pop", "q", "--worker", "w"])[0]["jid"], "a");
    assert_eq!(json_of(dir, &["pop", "q", "--worker", "w"]), json!([]));
    assert_eq!(json_of(dir, &["job", "show", "b"])["state"], "throttled");
    let t = json_of(dir, &["throttle", "get", "api"]);
    assert_eq!(t["rate"], json!({"limit": 1, "period": 3600}), "{t}");
    assert_eq!(t["started"], 1, "{t}");
    let t = json_of(dir, &["throttle", "set", "api", "0", "--rate", "10/90"]);
    assert_eq!(t["rate"], json!({"limit": 10, "period": 90}), "{t}");
    let e = fails(dir, &["throttle", "set", "api", "1", "--rate", "ten"], 2);
    assert!(e.contains("N/PERIOD"), "{e}");
    let e = fails(dir, &["throttle", "set", "api", "1", "--rate", "0/60s"], 2);
    assert!(e.contains("limit"), "{e}");
    let e = fails(dir, &["throttle", "set", "api", "1", "--rate", "3/0"], 2);
    assert!(e.contains("period"), "{e}");
}
