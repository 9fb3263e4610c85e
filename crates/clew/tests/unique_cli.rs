//! `clew put --unique KEY [--on-conflict existing|replace|refuse]`, run as a
//! user would, against a store file and against a real `clew server`
//! (where the remote client sends the qless form `unique KEY on-conflict
//! POLICY`).

mod common;

use std::process::Output;

use common::{clew, Server};
use serde_json::Value;

/// Where the CLI sends its commands: `--db sqlite:PATH` or `--url URL`.
fn run(target: &[String], args: &[&str]) -> Output {
    clew().args(target).args(args).output().expect("run clew")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(target: &[String], args: &[&str]) -> Output {
    let o = run(target, args);
    assert!(o.status.success(), "clew {args:?}: {}", stderr(&o));
    o
}

fn job(target: &[String], jid: &str) -> Value {
    let o = ok(target, &["--json", "job", "show", jid]);
    serde_json::from_slice(&o.stdout).expect("job JSON")
}

fn script(target: &[String]) {
    // The first put creates the job; no note.
    let o = ok(
        target,
        &[
            "put",
            "q",
            "Search",
            "--jid",
            "a",
            "--data",
            r#"{"n":1}"#,
            "--unique",
            "search:user-42",
        ],
    );
    assert_eq!(stdout(&o), "a");
    assert_eq!(stderr(&o), "");
    assert_eq!(job(target, "a")["unique_key"], "search:user-42");

    // existing (default): prints the holder's jid, says so on stderr.
    let o = ok(
        target,
        &[
            "put",
            "q",
            "Search",
            "--data",
            r#"{"n":2}"#,
            "--unique",
            "search:user-42",
        ],
    );
    assert_eq!(stdout(&o), "a");
    assert!(
        stderr(&o).contains("existing job a holds unique key \"search:user-42\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(job(target, "a")["data"], r#"{"n":1}"#);

    // replace: the holder's data.
    let o = ok(
        target,
        &[
            "put",
            "q",
            "Search",
            "--data",
            r#"{"n":3}"#,
            "--unique",
            "search:user-42",
            "--on-conflict",
            "replace",
        ],
    );
    assert_eq!(stdout(&o), "a");
    assert_eq!(job(target, "a")["data"], r#"{"n":3}"#);

    // refuse: a one-line error naming the holder, non-zero exit.
    let o = run(
        target,
        &[
            "put",
            "q",
            "Search",
            "--jid",
            "b",
            "--unique",
            "search:user-42",
            "--on-conflict",
            "refuse",
        ],
    );
    assert_eq!(o.status.code(), Some(4), "conflict's exit code");
    let e = stderr(&o);
    assert!(
        e.starts_with("clew: ") && e.contains("held by job a"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");

    // Bad input: clap refuses an unknown policy and --on-conflict alone.
    let o = run(
        target,
        &[
            "put",
            "q",
            "Search",
            "--unique",
            "k",
            "--on-conflict",
            "merge",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("merge"), "{}", stderr(&o));
    let o = run(target, &["put", "q", "Search", "--on-conflict", "refuse"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(target, &["put", "q", "Search", "--unique", ""]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("must not be empty"), "{}", stderr(&o));
}

#[test]
fn unique_puts_against_a_store_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = vec![
        "--db".to_owned(),
        format!("sqlite:{}", dir.path().join("c.db").display()),
    ];
    script(&target);
}

#[test]
fn unique_puts_against_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("s.db"), &[]);
    let target = vec!["--url".to_owned(), server.url.clone()];
    script(&target);
    server.stop();
}
