//! `clew work --publish` and `--config`, as real processes on real files:
//! a pool on the embedded store publishes each event once (from its
//! parent, not from each child); a worker on a server publishes the
//! server's events and resumes from its cursor after a restart; config
//! files set options, flags win, and bad keys are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use serde_json::Value;

mod common;

use common::{clew, fixture, put_numbered, read_json_lines, wait_until, Server};

/// The four events a job that completes goes through.
const LIFE: [&str; 4] = [
    "enqueued",
    "dequeued",
    "perform_started",
    "perform_finished",
];

/// A running `clew work` (or pool); killed when dropped.
struct Work {
    child: Child,
    log: PathBuf,
}

impl Work {
    /// Starts `clew TARGET... work --queue q --poll-interval 0.05 ARGS...
    /// --exec sh handler.sh`, the handler writing under `out`.
    fn start(target: &[&str], args: &[&str], out: &Path) -> Work {
        let log = out.join(format!("work-{}.log", unique()));
        let child = clew()
            .args(target)
            .args(["work", "--queue", "q", "--poll-interval", "0.05"])
            .args(args)
            .arg("--exec")
            .arg("sh")
            .arg(fixture("handler.sh"))
            .env("WORK_OUT", out)
            .env("CLEW_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn clew work");
        Work { child, log }
    }

    /// Sends SIGTERM and waits for a successful exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM {pid}");
        let mut status = None;
        wait_until("the worker to exit", || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        })
        .await;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// How many times each `(n, event_type)` appears among the events (jobs
/// are told apart by their payload's `n`).
fn tally(events: &[Value]) -> BTreeMap<(i64, String), usize> {
    let mut out = BTreeMap::new();
    for e in events {
        let n = e["args"]["n"].as_i64().expect("payload n");
        let kind = e["event_type"].as_str().expect("event_type").to_owned();
        *out.entry((n, kind)).or_default() += 1;
    }
    out
}

/// Asserts every job `0..jobs` went through its whole life exactly once.
fn assert_each_once(events: &[Value], jobs: i64) {
    let t = tally(events);
    for n in 0..jobs {
        for kind in LIFE {
            assert_eq!(
                t.get(&(n, kind.to_owned())),
                Some(&1),
                "job {n} {kind}: {t:?}"
            );
        }
    }
    assert_eq!(events.len(), LIFE.len() * jobs as usize, "{t:?}");
}

/// Puts job `a<n>` (class `Ok`, payload `{"n": n}`) straight into the
/// store at `db`.
fn put_local(db: &str, n: u32) {
    let out = clew()
        .args(["--db", db, "put", "q", "Ok", "--jid"])
        .arg(format!("a{n}"))
        .args(["--data", &format!(r#"{{"n":{n}}}"#)])
        .output()
        .expect("run clew put");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_on_the_store_publishes_each_event_once_from_its_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("pool.db");
    let db = format!("sqlite:{}", db_path.display());
    let events = dir.path().join("events.log");
    let spec = format!("file:{}", events.display());
    let pool = Work::start(
        &["--db", &db],
        &["--processes", "2", "--publish", &spec],
        dir.path(),
    );
    let jobs = 6;
    for n in 0..jobs {
        put_local(&db, n);
    }
    let want = LIFE.len() * jobs as usize;
    wait_until("every job's four events", || {
        read_json_lines(&events).len() >= want
    })
    .await;
    pool.stop().await;
    assert_each_once(&read_json_lines(&events), i64::from(jobs));
    // The parent kept one cursor, in the server's default place.
    let cursors: Vec<_> = std::fs::read_dir(format!("{}.cursors", db_path.display()))
        .expect("cursor dir next to the store")
        .flatten()
        .collect();
    assert_eq!(cursors.len(), 1, "{cursors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_server_publishes_its_events_and_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("s.db"), &[]);
    let events = dir.path().join("events.log");
    let spec = format!("file:{}", events.display());
    let cursors = dir.path().join("cursors");
    let cursor_dir = cursors.display().to_string();
    let args = ["--publish", &spec, "--cursor-dir", &cursor_dir];
    let worker = Work::start(&["--url", &server.url], &args, dir.path());
    // Jobs of class Ok (the handler completes them), put through the server.
    for n in 0..3u32 {
        let data = format!(r#"{{"n":{n}}}"#);
        server
            .qless("put", &["me", "q", &format!("a{n}"), "Ok", &data, "0"])
            .await;
    }
    wait_until("three jobs' events", || {
        read_json_lines(&events).len() >= 12
    })
    .await;
    worker.stop().await;
    assert_each_once(&read_json_lines(&events), 3);

    // While no worker runs, two more jobs arrive; a new worker works them
    // and publishes only what the file does not have yet.
    for n in 3..5u32 {
        let data = format!(r#"{{"n":{n}}}"#);
        server
            .qless("put", &["me", "q", &format!("a{n}"), "Ok", &data, "0"])
            .await;
    }
    let worker = Work::start(&["--url", &server.url], &args, dir.path());
    wait_until("five jobs' events", || read_json_lines(&events).len() >= 20).await;
    worker.stop().await;
    assert_each_once(&read_json_lines(&events), 5);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_server_needs_a_cursor_dir_to_publish() {
    let out = clew()
        .args(["--url", "http://127.0.0.1:9", "work", "--queue", "q"])
        .args(["--publish", "stdout", "--exec", "true"])
        .output()
        .expect("run clew work");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cursor-dir"), "{err}");
}

/// Runs `clew ARGS` to completion.
fn run(args: &[&str]) -> Output {
    clew().args(args).output().expect("run clew")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_sets_the_options_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_file = dir.path().join("from-file.log");
    let from_flag = dir.path().join("from-flag.log");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "publish = [\"file:{}\"]\nmarshal = \"logfmt\"\ncursor_dir = \"{}\"\n\
             metadata = {{ team = \"billing\", tier = 2 }}\n\
             history_max_events = 1000\n",
            from_file.display(),
            dir.path().join("cursors").display()
        ),
    )
    .expect("write config");
    let config = config.display().to_string();

    // The file's keys: its sink, logfmt, its metadata.
    let db = dir.path().join("c.db");
    let server = Server::start(&db, &["--config", &config]);
    put_numbered(&server, 0..1).await;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    wait_until("the enqueued line", || !read(&from_file).is_empty()).await;
    server.stop();
    let line = read(&from_file);
    assert!(line.starts_with("event_type=enqueued "), "logfmt: {line}");
    assert!(line.contains("metadata.team=billing"), "{line}");
    assert!(line.contains("metadata.tier=2"), "{line}");

    // --publish and --marshal on the command line replace the file's.
    let flag_spec = format!("file:{}", from_flag.display());
    let server = Server::start(
        &db,
        &[
            "--config",
            &config,
            "--publish",
            &flag_spec,
            "--marshal",
            "json",
        ],
    );
    put_numbered(&server, 1..2).await;
    wait_until("the flag's sink", || {
        read_json_lines(&from_flag)
            .iter()
            .any(|e| e["args"]["n"] == 1 && e["event_type"] == "enqueued")
    })
    .await;
    server.stop();
    assert_eq!(read(&from_file), line, "the file's sink was replaced");

    // clew work: queue, publish, marshal and cursor_dir from a file.
    let events = dir.path().join("work-events.log");
    let work_config = dir.path().join("work.toml");
    std::fs::write(
        &work_config,
        format!(
            "queue = [\"q\"]\npublish = [\"file:{}\"]\nmarshal = \"json\"\n\
             cursor_dir = \"{}\"\nconcurrency = 2\n",
            events.display(),
            dir.path().join("work-cursors").display()
        ),
    )
    .expect("write config");
    let local = format!("sqlite:{}", dir.path().join("w.db").display());
    put_local(&local, 0);
    let worker = Work::start(
        &["--db", &local],
        &["--config", &work_config.display().to_string()],
        dir.path(),
    );
    wait_until("the job's events", || read_json_lines(&events).len() >= 4).await;
    worker.stop().await;
    assert_each_once(&read_json_lines(&events), 1);
    assert!(dir.path().join("work-cursors").is_dir());
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_naming_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "server",
            "publish = [\"stdout\"]\nlisten_on = \"x\"\n",
            "\"listen_on\"",
        ),
        ("server", "publish = \"stdout\"\n", "\"publish\""),
        (
            "server",
            "history_max_events = -1\n",
            "\"history_max_events\"",
        ),
        (
            "server",
            "metadata = { team = 3 }\nmetadata_header = { X = 1 }\n",
            "\"metadata_header\"",
        ),
        (
            "work",
            "queue = [\"q\"]\nhistory_max_age = \"1d\"\n",
            "\"history_max_age\"",
        ),
        ("work", "marshal = 7\n", "\"marshal\""),
        ("work", "queue = [\"q\"\n", "line 1"),
    ];
    for (i, (command, text, names)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).expect("write config");
        let db = format!("sqlite:{}", dir.path().join("x.db").display());
        let p = path.display().to_string();
        let mut args = vec!["--db", db.as_str(), command, "--config", p.as_str()];
        if *command == "work" {
            args.extend(["--exec", "true"]);
        }
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(names), "{text}: {err}");
        assert!(err.contains(&p), "names the file: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
