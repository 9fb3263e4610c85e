//! `clew events search` and `clew events stats` over a seeded store file,
//! run as a user would: against `--db` and against a real `clew server`
//! (`--url`) on the same file; both must give the hand-computed figures.
//!
//! The history (seconds after T0): j1 (pdf, Render, strategy chrome) put at
//! 0, popped at 1, completed at 3; j2 (pdf, Render, strategy wk) put at 0,
//! popped at 4, completed at 10; j3 (mail, Mail) put at 0, popped at 6,
//! failed at 7. In queue: 1, 4, 6; performing: 2, 6, 1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use clew_core::command::{CompleteParams, PutParams};
use clew_core::{Engine, Timestamp};
use clew_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_clew");
const T0: i64 = 1_700_000_000;

fn at(s: f64) -> Timestamp {
    Timestamp::from_secs(T0).add_secs(s)
}

fn seed(db: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(db, SqliteOptions::default()).expect("open store");
        let e = Engine::new(Arc::new(store));
        for (jid, queue, klass, strategy) in [
            ("j1", "pdf", "Render", Some("chrome")),
            ("j2", "pdf", "Render", Some("wk")),
            ("j3", "mail", "Mail", None),
        ] {
            let mut p = PutParams::new(queue, klass);
            p.jid = jid.into();
            if let Some(s) = strategy {
                let mut m = Map::new();
                m.insert("pdf_generation_strategy".into(), json!(s));
                p.metadata = Some(m);
            }
            e.execute_at(at(0.0), clew_core::Command::Put(p))
                .await
                .expect("put");
        }
        let pop = |t: f64, q: &str| {
            e.execute_at(
                at(t),
                clew_core::Command::Pop {
                    queue: q.into(),
                    worker: "w".into(),
                    count: 1,
                },
            )
        };
        let done = |t: f64, jid: &str| {
            e.execute_at(
                at(t),
                clew_core::Command::Complete(CompleteParams {
                    jid: jid.into(),
                    worker: "w".into(),
                    queue: "pdf".into(),
                    data: "{}".into(),
                    next: None,
                    delay: 0.0,
                    depends: vec![],
                    metadata: None,
                }),
            )
        };
        pop(1.0, "pdf").await.expect("pop j1");
        done(3.0, "j1").await.expect("complete j1");
        pop(4.0, "pdf").await.expect("pop j2");
        pop(6.0, "mail").await.expect("pop j3");
        e.execute_at(
            at(7.0),
            clew_core::Command::Fail {
                jid: "j3".into(),
                worker: "w".into(),
                group: "Boom".into(),
                message: "no".into(),
                data: None,
                metadata: None,
            },
        )
        .await
        .expect("fail j3");
        done(10.0, "j2").await.expect("complete j2");
        e.close().await.expect("close");
    });
}

fn clew(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("CLEW_URL")
        .env_remove("CLEW_DB")
        .env_remove("CLEW_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Runs clew with `target` args then `args`; returns (exit code, stdout, stderr).
fn run(dir: &Path, target: &[String], args: &[&str]) -> (i32, String, String) {
    let o = clew(dir)
        .args(target)
        .args(args)
        .output()
        .expect("run clew");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json_of(dir: &Path, target: &[String], args: &[&str]) -> Value {
    let (code, out, err) = run(dir, target, args);
    assert_eq!(code, 0, "clew {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path, db: &str) -> (Server, String) {
    start_server_with(dir, db, &[])
}

fn start_server_with(dir: &Path, db: &str, extra: &[&str]) -> (Server, String) {
    let mut child = clew(dir)
        .args(["--db", db, "server", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("CLEW_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn clew server");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server printed its address within 10 s");
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .trim()
        .to_owned();
    (server, url)
}

fn check_figures(dir: &Path, target: &[String]) {
    let stats = json_of(
        dir,
        target,
        &["--json", "events", "stats", "--by", "queue", "--sla", "4"],
    );
    assert_eq!(
        stats,
        json!({
            "by": "queue", "sla_seconds": 4.0,
            "groups": [
                {"group": "mail", "count": 4,
                 "time_in_queue": {"count": 1, "p50": 6.0, "p95": 6.0, "p99": 6.0, "max": 6.0, "mean": 6.0},
                 "time_to_perform": {"count": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0, "mean": 1.0},
                 "sla": {"seconds": 4.0, "within": 0, "total": 1, "share": 0.0}},
                {"group": "pdf", "count": 8,
                 "time_in_queue": {"count": 2, "p50": 1.0, "p95": 4.0, "p99": 4.0, "max": 4.0, "mean": 2.5},
                 "time_to_perform": {"count": 2, "p50": 2.0, "p95": 6.0, "p99": 6.0, "max": 6.0, "mean": 4.0},
                 "sla": {"seconds": 4.0, "within": 2, "total": 2, "share": 1.0}}
            ]
        })
    );
    // All dequeues: [1, 4, 6] -> p50 4, mean 11/3; SLA 3 s: 1 of 3.
    let all = json_of(
        dir,
        target,
        &[
            "--json", "events", "stats", "--type", "dequeued", "--sla", "3",
        ],
    );
    let g = &all["groups"][0];
    assert_eq!(g["time_in_queue"]["p50"], 4.0);
    assert_eq!(g["time_in_queue"]["mean"], 11.0 / 3.0);
    assert_eq!(g["sla"]["share"], 1.0 / 3.0);

    let chrome = json_of(
        dir,
        target,
        &[
            "--json",
            "events",
            "search",
            "--meta",
            "pdf_generation_strategy=chrome",
            "--type",
            "perform_finished",
        ],
    );
    let evs = chrome["events"].as_array().expect("events");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["jid"], "j1");
    assert_eq!(evs[0]["time_to_perform"], 2.0);
    assert_eq!(evs[0]["timestamp"], json!(T0 as f64 + 3.0));

    // Time range [T0+4, T0+7): j2 dequeued + started, j3 dequeued + started.
    let since = (T0 + 4).to_string();
    let until = (T0 + 7).to_string();
    let range = json_of(
        dir,
        target,
        &[
            "--json", "events", "search", "--since", &since, "--until", &until, "--limit", "3",
        ],
    );
    let jids: Vec<&Value> = range["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["jid"])
        .collect();
    assert_eq!(jids, vec!["j2", "j2", "j3"]);
    let next = range["next"].as_i64().expect("a next page");
    let rest = json_of(
        dir,
        target,
        &[
            "--json",
            "events",
            "search",
            "--since",
            &since,
            "--until",
            &until,
            "--after",
            &next.to_string(),
        ],
    );
    assert_eq!(rest["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["events"][0]["event_type"], "perform_started");
    assert_eq!(rest["next"], Value::Null);

    // Tables.
    let (code, out, err) = run(
        dir,
        target,
        &[
            "events",
            "stats",
            "--by",
            "meta:pdf_generation_strategy",
            "--sla",
            "4",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("GROUP"), "{out}");
    let chrome_row = out
        .lines()
        .find(|l| l.starts_with("chrome"))
        .unwrap_or_else(|| panic!("no chrome row in {out}"));
    assert!(chrome_row.contains("100.0% (1/1)"), "{chrome_row}");
    assert!(out.lines().any(|l| l.starts_with("(none)")), "{out}");
    let (code, out, _) = run(
        dir,
        target,
        &["events", "search", "--jid", "j3", "--newest"],
    );
    assert_eq!(code, 0);
    let first = out.lines().nth(1).unwrap_or("");
    assert!(first.contains("failed") && first.contains("j3"), "{out}");

    // Bad input names the flag.
    let (code, _, err) = run(dir, target, &["events", "stats", "--by", "colour"]);
    assert_ne!(code, 0);
    assert!(err.contains("--by"), "{err}");
    let (code, _, err) = run(dir, target, &["events", "search", "--type", "x"]);
    assert_ne!(code, 0);
    assert!(err.contains("--type"), "{err}");
    let (code, _, err) = run(dir, target, &["events", "search", "--since", "soon"]);
    assert_ne!(code, 0);
    assert!(err.contains("--since"), "{err}");
}

#[test]
fn search_and_stats_against_db_and_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("h.db");
    seed(&db_path);
    let db = format!("sqlite:{}", db_path.display());

    check_figures(dir.path(), &["--db".to_owned(), db.clone()]);

    // The old behaviour stays: `clew events` lists qless events.
    let (code, out, err) = run(dir.path(), &["--db".to_owned(), db.clone()], &["events"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ql:"), "{out}");
    assert!(!out.contains("clew:lifecycle"), "{out}");

    let (_server, url) = start_server(dir.path(), &db);
    check_figures(dir.path(), &["--url".to_owned(), url]);
}

/// How many entries the store's event log holds.
fn log_len(db: &Path) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(db, SqliteOptions::default()).expect("open store");
        let n = clew_core::Store::events_after(&store, 0, 100_000)
            .await
            .expect("events")
            .len();
        clew_core::Store::close(&store).await.expect("close");
        n
    })
}

#[test]
fn prune_by_size_on_db_and_by_age_on_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("h.db");
    seed(&db_path);
    let db = format!("sqlite:{}", db_path.display());
    let total = log_len(&db_path);
    assert!(total > 12, "{total}");
    let target = ["--db".to_owned(), db.clone()];

    let (code, _, err) = run(dir.path(), &target, &["events", "prune"]);
    assert_ne!(code, 0);
    assert!(err.contains("--max-age or --max-events"), "{err}");
    let (code, _, err) = run(dir.path(), &target, &["events", "prune", "--max-age", "3w"]);
    assert_ne!(code, 0);
    assert!(err.contains("--max-age"), "{err}");
    assert_eq!(log_len(&db_path), total);

    let v = json_of(
        dir.path(),
        &target,
        &["--json", "events", "prune", "--max-events", "5"],
    );
    assert_eq!(v, json!({"deleted": total - 5}));
    assert_eq!(log_len(&db_path), 5);
    let (code, out, _) = run(
        dir.path(),
        &target,
        &["events", "prune", "--max-events", "5"],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "deleted 0 event(s)\n");

    // The history is from 2023: a 1-day age limit now drops all of it.
    let (server, url) = start_server(dir.path(), &db);
    let remote = ["--url".to_owned(), url];
    let v = json_of(
        dir.path(),
        &remote,
        &["--json", "events", "prune", "--max-age", "1d"],
    );
    assert_eq!(v, json!({"deleted": 5}));
    let left = json_of(dir.path(), &remote, &["--json", "events", "search"]);
    assert_eq!(left["events"], json!([]));
    drop(server);
    assert_eq!(log_len(&db_path), 0);
}

/// Events visible through a server: lifecycle (search) plus qless (`clew
/// events`).
fn visible_events(dir: &Path, remote: &[String]) -> usize {
    let lifecycle = json_of(dir, remote, &["--json", "events", "search"]);
    let (code, out, err) = run(dir, remote, &["--json", "events"]);
    assert_eq!(code, 0, "{err}");
    lifecycle["events"].as_array().map_or(0, Vec::len) + out.lines().count()
}

#[test]
fn server_applies_retention_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("h.db");
    seed(&db_path);
    let db = format!("sqlite:{}", db_path.display());
    assert!(log_len(&db_path) > 4);

    // Bad flags are refused, naming the flag.
    for (args, needle) in [
        (
            vec!["--history-max-events", "3", "--history-check", "0"],
            "--history-check",
        ),
        (vec!["--history-max-age", "soon"], "--history-max-age"),
    ] {
        let o = clew(dir.path())
            .args(["--db", &db, "server", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .expect("run clew server");
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{err}");
    }

    let (server, url) = start_server_with(
        dir.path(),
        &db,
        &["--history-max-events", "4", "--history-check", "0.05"],
    );
    let remote = ["--url".to_owned(), url];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while visible_events(dir.path(), &remote) > 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not run within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(server);
    assert_eq!(log_len(&db_path), 4);
    // The newest four survive: the last is j2's perform_finished.
    let left = json_of(
        dir.path(),
        &["--db".to_owned(), db],
        &["--json", "events", "search", "--newest", "--limit", "1"],
    );
    assert_eq!(left["events"][0]["jid"], "j2");
    assert_eq!(left["events"][0]["event_type"], "perform_finished");
}
