//! `clew batch create/status/list/jobs/cancel` and `clew put --batch`, run
//! as a user would: against a store file and against a real `clew server`
//! on 127.0.0.1:0.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use common::{clew, Server};
use serde_json::Value;

/// Where the commands go: `--db sqlite:PATH` or `--url URL`.
struct Target(Vec<String>);

impl Target {
    /// Runs `clew TARGET ARGS` with `stdin`; (exit code, stdout, stderr).
    fn run_with(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut child = clew()
            .args(&self.0)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn clew");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run_with(args, "");
        assert_eq!(code, 0, "clew {args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("clew {args:?}: {e}: {out}"))
    }

    /// Expects a failure with a one-line message containing `needle`.
    fn fails(&self, args: &[&str], stdin: &str, needle: &str) {
        let (code, out, err) = self.run_with(args, stdin);
        assert_ne!(code, 0, "clew {args:?} should fail: {out}");
        assert!(err.starts_with("clew: "), "{err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
}

fn scenario(t: &Target, dir: &Path) {
    // Jobs from a file of JSON lines; --queue for lines without one.
    let file = dir.join("jobs.jsonl");
    std::fs::write(
        &file,
        "{\"klass\": \"K\", \"jid\": \"a\", \"data\": {\"n\": 1}}\n\n\
         {\"klass\": \"K\", \"jid\": \"b\", \"queue\": \"other\"}\n",
    )
    .expect("write jobs");
    let file = file.display().to_string();
    let out = t.ok(&[
        "batch",
        "create",
        "--file",
        &file,
        "--queue",
        "q",
        "--id",
        "b1",
        "--description",
        "nightly",
        "--callback-queue",
        "cb",
        "--callback-klass",
        "Done",
        "--callback-jid",
        "b1-cb",
        "--callback-data",
        "{\"x\": 1}",
    ]);
    assert_eq!(out, "b1\n");
    assert_eq!(t.json(&["job", "show", "a"])["batch"], "b1");
    assert_eq!(t.json(&["job", "show", "b"])["queue"], "other");
    // From stdin, with a generated id, printed as JSON.
    let (code, out, err) = t.run_with(
        &["--json", "batch", "create", "--queue", "q"],
        "{\"klass\": \"K\", \"jid\": \"c\"}\n",
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(created["jids"], serde_json::json!(["c"]));
    let second = created["batch"]["id"].as_str().expect("id").to_owned();
    assert!(!second.is_empty());
    // A job joins the open batch with put --batch.
    t.ok(&["put", "q", "K", "--jid", "d", "--batch", "b1"]);

    let status = t.json(&["batch", "status", "b1"]);
    assert_eq!(status["total"], 3);
    assert_eq!(status["pending"], 3);
    let text = t.ok(&["batch", "status", "b1"]);
    assert!(text.contains("[....................] 0/3"), "{text}");
    assert!(text.contains("not yet put"), "{text}");
    assert_eq!(
        t.json(&["batch", "jobs", "b1"]),
        serde_json::json!({"total": 3, "jobs": ["a", "b", "d"]})
    );

    // Finish them: a and d complete, b canceled.
    let popped = t.json(&["pop", "q", "--worker", "w", "--count", "5"]);
    assert_eq!(popped.as_array().expect("jobs").len(), 3);
    t.ok(&["complete", "a", "--worker", "w", "--queue", "q"]);
    t.ok(&["cancel", "b"]);
    t.ok(&["complete", "d", "--worker", "w", "--queue", "q"]);
    let status = t.json(&["batch", "status", "b1"]);
    assert_eq!(status["complete"], 2);
    assert_eq!(status["canceled"], 1);
    assert_eq!(status["callback_jid"], "b1-cb");
    let text = t.ok(&["batch", "status", "b1"]);
    assert!(text.contains("[####################] 3/3"), "{text}");
    assert!(text.contains("b1-cb (waiting)"), "{text}");
    assert_eq!(t.json(&["job", "show", "b1-cb"])["queue"], "cb");

    let list = t.json(&["batch", "list"]);
    assert_eq!(list["total"], 2);
    let table = t.ok(&["batch", "list"]);
    assert!(table.contains("b1") && table.contains(&second), "{table}");
    assert!(table.contains("2 batch(es)"), "{table}");

    assert_eq!(t.ok(&["batch", "cancel", &second]), "canceled 1 job(s)\n");
    assert_eq!(t.json(&["batch", "status", &second])["canceled"], 1);

    // Bad input: one line each, non-zero exit, nothing created.
    t.fails(&["batch", "create", "--queue", "q"], "", "no jobs");
    t.fails(&["batch", "create"], "{\"klass\": \"K\"}\n", "no \"queue\"");
    t.fails(
        &["batch", "create", "--queue", "q"],
        "{\"klass\": \"K\"}\nnot json\n",
        "line 2",
    );
    t.fails(
        &["batch", "create", "--queue", "q"],
        "{\"klass\": \"K\", \"colour\": 1}\n",
        "colour",
    );
    t.fails(
        &["batch", "create", "--queue", "q", "--id", "b1"],
        "{\"klass\": \"K\"}\n",
        "exists",
    );
    t.fails(
        &["batch", "create", "--file", "/nonexistent/jobs.jsonl"],
        "",
        "--file",
    );
    t.fails(&["batch", "status", "nope"], "", "nope");
    t.fails(&["batch", "jobs", "nope"], "", "nope");
    t.fails(
        &["put", "q", "K", "--jid", "late", "--batch", "b1"],
        "",
        "has finished",
    );
    assert_eq!(t.json(&["batch", "list"])["total"], 2);
}

#[test]
fn batches_against_a_store_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite:{}", dir.path().join("b.db").display());
    scenario(&Target(vec!["--db".into(), db]), dir.path());
}

#[test]
fn batches_against_a_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(&dir.path().join("server.db"), &[]);
    scenario(
        &Target(vec!["--url".into(), server.url.clone()]),
        dir.path(),
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}
