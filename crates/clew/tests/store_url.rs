//! `--db` for every command that opens a store: SQLite paths, PostgreSQL
//! URLs (`?schema=`, `pool=N`, `--pg-pool`), `clew migrate` (several at
//! once), clear refusals. The PostgreSQL cases skip without PostgreSQL
//! (see `clew_postgres::testing`), and fail with `CI=true`.

use std::process::{Command, Output};

use clew_postgres::testing::{skip_reason, TempSchema};
use serde_json::Value;

/// A `clew` command with nothing inherited that would change its target.
fn clew() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    for var in ["CLEW_URL", "CLEW_DB", "CLEW_TOKEN", "CLEW_PG_POOL"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `clew ARGS...`.
fn run(args: &[&str]) -> Output {
    clew().args(args).output().expect("run clew")
}

/// stdout of a successful run.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "clew {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `--db` URL of a temporary schema, with extra parameters.
fn db_url(schema: &TempSchema, extra: &str) -> String {
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    format!("{}{sep}schema={}{extra}", schema.url(), schema.name())
}

/// The schema, or `None` after printing why the test skips.
fn schema_or_skip() -> Option<TempSchema> {
    if let Some(line) = skip_reason() {
        println!("{line}");
        return None;
    }
    Some(TempSchema::new())
}

#[test]
fn a_db_that_is_neither_sqlite_nor_postgres_is_refused_clearly() {
    for bad in ["http://127.0.0.1:7400", "mysql://h/db", "sqlite:"] {
        for command in [&["queues"][..], &["migrate"], &["server"], &["events"]] {
            let mut args = vec!["--db", bad];
            args.extend_from_slice(command);
            let out = run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("--db: expected sqlite:PATH or postgres://..., got")
                    && err.contains("for a server use --url"),
                "{args:?}: {err}"
            );
        }
    }
    let out = run(&["--db", "postgres://u@127.0.0.1:1/db?pool=0", "queues"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pool"), "{err}");
}

#[test]
fn migrate_reports_the_sqlite_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let said = ok(&["--db", &db, "migrate"]);
    assert!(
        said.starts_with("sqlite store at schema version "),
        "{said}"
    );
    let v: Value = serde_json::from_str(&ok(&["--db", &db, "--json", "migrate"])).expect("json");
    assert_eq!(v["store"], "sqlite");
    assert!(v["schema_version"].as_i64().is_some_and(|n| n >= 1), "{v}");
}

#[test]
fn several_migrations_at_once_agree_and_the_cli_works_on_postgres() {
    let Some(schema) = schema_or_skip() else {
        return;
    };
    let db = db_url(&schema, "&pool=2");
    // Four at once on a schema that does not exist yet.
    let children: Vec<_> = (0..4)
        .map(|_| {
            clew()
                .args(["--db", &db, "--json", "migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("migrate")
        })
        .collect();
    let runs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let mut versions = Vec::new();
    for out in runs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["store"], "postgres");
        versions.push(v["schema_version"].as_i64().expect("version"));
    }
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    assert_eq!(versions[0], clew_postgres::SCHEMA_VERSION);

    // Local commands on the PostgreSQL store (with --pg-pool too).
    let jid = ok(&["--db", &db, "put", "q", "K", "--jid", "pg-1"]);
    assert_eq!(jid.trim(), "pg-1");
    let queues: Value =
        serde_json::from_str(&ok(&["--db", &db, "--pg-pool", "1", "--json", "queues"]))
            .expect("json");
    assert_eq!(queues[0]["name"], "q", "{queues}");
    assert_eq!(queues[0]["waiting"], 1, "{queues}");
    let events = ok(&["--db", &db, "events"]);
    assert!(
        events.contains("ql:log") && events.contains("pg-1"),
        "{events}"
    );
    let put = ok(&["--db", &db, "events", "search", "--type", "enqueued"]);
    assert!(put.contains("pg-1"), "{put}");
}

#[test]
fn a_worker_on_postgres_works_and_publishes_with_the_cursor_in_the_database() {
    let Some(schema) = schema_or_skip() else {
        return;
    };
    let db = db_url(&schema, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("sink.jsonl");
    let spec = format!("file:{}", sink.display());
    ok(&["--db", &db, "put", "q", "K", "--jid", "w-1"]);
    let mut worker = clew()
        .current_dir(dir.path())
        .args([
            "--db",
            &db,
            "work",
            "--queue",
            "q",
            "--poll-interval",
            "0.05",
        ])
        .args(["--publish", &spec, "--exec", "sh", "-c", "cat >/dev/null"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn clew work");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let lines = loop {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        if text.lines().count() >= 4 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "sink: {text:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let kill = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    assert!(worker.wait().expect("wait").success());
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["event_type"].to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "enqueued",
            "dequeued",
            "perform_started",
            "perform_finished"
        ]
        .map(|k| format!("{k:?}"))
    );
    let job: Value =
        serde_json::from_str(&ok(&["--db", &db, "--json", "get", "w-1"])).expect("json");
    assert_eq!(job["state"], "complete", "{job}");
    // The cursor is in the database, not in a directory next to anything.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from("sink.jsonl")]);
    let mut client = schema.connect().expect("connect");
    let seq: i64 = std::thread::spawn(move || {
        client
            .query_one(
                "SELECT seq FROM publisher_cursors WHERE name = $1",
                &[&spec],
            )
            .expect("cursor row")
            .get(0)
    })
    .join()
    .expect("query thread");
    assert!(seq > 0);
}
