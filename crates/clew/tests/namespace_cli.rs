//! `--namespace NAME`: a namespace is a partition sharing nothing with the
//! others. Run as a user would, on one SQLite path and on one PostgreSQL
//! database (skipped without PostgreSQL, see `clew_postgres::testing`):
//! jobs, config, stats and unique keys put in namespace `a` are invisible
//! in `b` and in the default namespace. Also: name refusals, and a real
//! `clew server` refusing a client that names another namespace.

mod common;

use std::process::Output;

use clew_postgres::testing::{skip_reason, TempSchema};
use common::{clew, Server};
use serde_json::Value;

fn run(db: &str, ns: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = clew();
    cmd.args(["--db", db]);
    if let Some(ns) = ns {
        cmd.arg(format!("--namespace={ns}"));
    }
    cmd.args(args).output().expect("run clew")
}

#[track_caller]
fn ok(db: &str, ns: Option<&str>, args: &[&str]) -> String {
    let o = run(db, ns, args);
    assert!(
        o.status.success(),
        "clew --namespace {ns:?} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[track_caller]
fn json(db: &str, ns: Option<&str>, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(db, ns, &all)).expect("JSON")
}

/// The isolation script on one `--db`.
fn isolation(db: &str) {
    let a = Some("a");
    // Namespace a: a job with a unique key, popped (stats), and a setting.
    assert_eq!(
        ok(db, a, &["put", "q", "K", "--jid", "j1", "--unique", "k1"]),
        "j1"
    );
    ok(db, a, &["pop", "q", "--worker", "w"]);
    ok(db, a, &["config", "set", "heartbeat", "99"]);
    assert_eq!(json(db, a, &["stats", "q"])["wait"]["count"], 1);
    assert_eq!(
        json(db, a, &["jobs", "--state", "running"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for other in [Some("b"), None, Some("default")] {
        // No job, no queue, no stats, no setting of a's.
        assert_eq!(
            json(db, other, &["jobs", "--state", "running"]),
            serde_json::json!([])
        );
        assert_eq!(
            json(db, other, &["queues"]),
            serde_json::json!([]),
            "{other:?}"
        );
        assert_eq!(json(db, other, &["stats", "q"])["wait"]["count"], 0);
        assert_eq!(
            json(db, other, &["config", "get", "heartbeat"]),
            60,
            "{other:?}"
        );
        assert_eq!(
            run(db, other, &["job", "show", "j1"]).status.code(),
            Some(3)
        );
    }
    // a's unique key does not hold in b: a new job is created there.
    let b = Some("b");
    assert_eq!(
        ok(
            db,
            b,
            &[
                "put",
                "q",
                "K",
                "--jid",
                "j2",
                "--unique",
                "k1",
                "--on-conflict",
                "refuse"
            ]
        ),
        "j2"
    );
    // ...while in a it still conflicts.
    let o = run(
        db,
        a,
        &[
            "put",
            "q",
            "K",
            "--jid",
            "j3",
            "--unique",
            "k1",
            "--on-conflict",
            "refuse",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The default namespace is the --db as given: a job put without
    // --namespace is seen with --namespace default.
    ok(db, None, &["put", "q", "K", "--jid", "d1"]);
    assert_eq!(
        json(db, Some("default"), &["job", "show", "d1"])["jid"],
        "d1"
    );
    assert_eq!(run(db, a, &["job", "show", "d1"]).status.code(), Some(3));
}

#[test]
fn namespaces_partition_one_sqlite_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clew.db");
    isolation(&format!("sqlite:{}", path.display()));
    // The rule: sibling files, the default file as given.
    assert!(path.exists());
    assert!(dir.path().join("clew.ns-a.db").exists());
    assert!(dir.path().join("clew.ns-b.db").exists());
}

#[test]
fn namespaces_partition_one_postgres_database() {
    if let Some(line) = skip_reason() {
        println!("{line}");
        return;
    }
    let schema = TempSchema::new();
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let db = format!("{}{sep}schema={}", schema.url(), schema.name());
    isolation(&db);
    // Namespace schemas are S_ns_NAME; drop them (the temporary schema's
    // guard only knows its own).
    let mut client = postgres::Client::connect(schema.url(), postgres::NoTls).unwrap();
    for ns in ["a", "b"] {
        client
            .batch_execute(&format!(
                "DROP SCHEMA \"{}_ns_{ns}\" CASCADE",
                schema.name()
            ))
            .unwrap();
    }
}

#[test]
fn bad_names_are_refused_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("clew.db").display());
    for bad in ["A", "-a", "a.b", "a/b", "", &"x".repeat(33)] {
        let o = run(&db, Some(bad), &["queues"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains("[a-z0-9][a-z0-9_-]{0,31}"), "{bad:?}: {err}");
    }
    // Nothing was created for them.
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "{files:?}");
    // Too long a PostgreSQL schema is refused before connecting.
    let long = format!("postgres://u@127.0.0.1:1/db?schema={}", "s".repeat(40));
    let o = run(&long, Some(&"n".repeat(20)), &["queues"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("63-byte"), "{err}");
}

#[tokio::test]
async fn a_server_refuses_a_client_naming_another_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clew.db");
    let db = format!("sqlite:{}", path.display());
    let server = Server::start(&path, &["--namespace", "a"]);
    let url = server.url.clone();
    let remote = |ns: Option<&str>, args: &[&str]| {
        let mut cmd = clew();
        cmd.args(["--url", &url]);
        if let Some(ns) = ns {
            cmd.args(["--namespace", ns]);
        }
        cmd.args(args).output().expect("run clew")
    };
    // The right namespace, and no namespace (the server's own), work.
    let o = remote(Some("a"), &["put", "q", "K", "--jid", "r1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = remote(None, &["put", "q", "K", "--jid", "r2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Another one is refused, naming both; nothing is put.
    for other in ["b", "default"] {
        let o = remote(Some(other), &["put", "q", "K", "--jid", "r3"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{other}: {err}");
        assert!(
            err.contains("\"a\"") && err.contains(&format!("\"{other}\"")),
            "{err}"
        );
    }
    // The jobs went to namespace a's file, not to the default one.
    let jobs = json(&db, Some("a"), &["jobs", "--queue", "q"]);
    let jids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jid"].as_str().unwrap())
        .collect();
    assert_eq!(jids.len(), 2, "{jids:?}");
    assert!(!jids.contains(&"r3"));
    assert_eq!(
        json(&db, None, &["jobs", "--queue", "q"]),
        serde_json::json!([])
    );
    // A worker naming another namespace stops at once, naming both,
    // instead of polling a server that refuses it.
    let mut worker = clew()
        .args([
            "--url",
            &url,
            "--namespace",
            "b",
            "work",
            "--queue",
            "q",
            "--exec",
            "true",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn clew work");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = worker.kill();
            let _ = worker.wait();
            panic!("clew work --namespace b kept running against a server of namespace a");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut worker.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        err.contains("namespace \"a\"") && err.contains("namespace \"b\""),
        "{err}"
    );
    // The server says which namespace it serves; a raw request with
    // another header gets 409 with a JSON body naming both.
    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["namespace"], "a");
    let resp = http
        .get(format!("{url}/v1/queues"))
        .header("X-Clew-Namespace", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "namespace_mismatch", "{body}");
    server.stop();
}
