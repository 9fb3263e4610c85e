//! Many servers on one PostgreSQL database, as real processes: two `clew
//! server --db postgres://...?schema=S` and four `clew work --url` workers
//! (two per server) under concurrent producers. Every job is completed
//! exactly once, the counts and the day's stats add up, a `--publish
//! file:` sink configured on both servers writes each event exactly once
//! (one leader), and a recurring job observed through both servers spawns
//! exactly once per interval.
//!
//! Each test has its own schema. Without PostgreSQL (see
//! `clew_postgres::testing`) they print SKIPPED and pass; with `CI=true`
//! they fail instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clew_postgres::testing::{skip_reason, TempSchema};
use serde_json::{json, Value};

/// Jobs put by the producers.
const JOBS: usize = 400;
/// Concurrent producers per server.
const PRODUCERS_PER_SERVER: usize = 2;
/// How long any awaited condition may take.
const PATIENCE: Duration = Duration::from_secs(120);

/// A `clew` command with nothing inherited that would change its target.
fn clew() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    for var in [
        "CLEW_URL",
        "CLEW_DB",
        "CLEW_TOKEN",
        "CLEW_PG_POOL",
        "CLEW_WORKER_CHILD",
        "CLEW_WORKER_PARENT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The `--db` URL of a temporary schema.
fn db_url(schema: &TempSchema) -> String {
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    format!("{}{sep}schema={}", schema.url(), schema.name())
}

/// A process killed (if still running) when dropped; its stderr goes to
/// a log file shown when a check fails.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The process's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a successful exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{pid} did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "exit {status}\n{}", self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `clew server` on the schema.
struct Server {
    proc: Proc,
    url: String,
}

impl Server {
    /// `clew --db DB server --listen 127.0.0.1:0 EXTRA...`.
    fn start(db: &str, dir: &Path, name: &str, extra: &[&str]) -> Server {
        let log = dir.join(format!("{name}.log"));
        let mut child = clew()
            .args(["--db", db, "server", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CLEW_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn clew server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let proc = Proc { child, log };
        let url = line
            .trim()
            .strip_prefix("clew server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}\n{}", proc.log()))
            .to_owned();
        Server { proc, url }
    }

    /// Runs one qless command through `POST /v1/qless`; its result.
    async fn qless(&self, http: &reqwest::Client, command: &str, args: &[&str]) -> Value {
        let resp = http
            .post(format!("{}/v1/qless", self.url))
            .json(&json!({"command": command, "args": args}))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "{command} {args:?}: {status} {v}");
        v["result"].clone()
    }

    /// Every lifecycle event in the log, oldest first.
    async fn lifecycle_events(&self, http: &reqwest::Client) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let v: Value = http
                .get(format!("{}/v1/events/search", self.url))
                .query(&[("after", after.to_string()), ("limit", "1000".into())])
                .send()
                .await
                .expect("search")
                .json()
                .await
                .expect("json");
            let page = v["events"].as_array().expect("events").clone();
            let Some(last) = page.last() else {
                return all;
            };
            after = last["seq"].as_i64().expect("seq");
            all.extend(page);
        }
    }
}

/// `clew --url SERVER work --queue QUEUES --exec sh -c 'cat >/dev/null'`.
fn start_worker(server: &Server, queues: &str, dir: &Path, name: &str) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let child = clew()
        .args(["--url", &server.url, "work", "--queue", queues])
        .args([
            "--name",
            name,
            "--concurrency",
            "4",
            "--poll-interval",
            "0.05",
        ])
        .args(["--exec", "sh", "-c", "cat >/dev/null"])
        .env("CLEW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn clew work");
    Proc { child, log }
}

/// Polls `f` until it returns `Some`, for up to [`PATIENCE`].
async fn await_some<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seconds since the epoch, now.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A queue's counts from the `queues` command.
async fn queue_counts(server: &Server, http: &reqwest::Client, queue: &str) -> Value {
    server.qless(http, "queues", &[queue]).await
}

/// How many history entries of `job` say `what`.
fn history_count(job: &Value, what: &str) -> usize {
    job["history"]
        .as_array()
        .map(|h| h.iter().filter(|e| e["what"] == what).count())
        .unwrap_or(0)
}

/// The JSON lines of the sink file.
fn sink_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("sink line {l:?}: {e}")))
        .collect()
}

/// Per jid, how many events of `kind` there are in `events`.
fn per_jid(events: &[Value], kind: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == kind) {
        let jid = e["jid"].as_str().expect("jid").to_owned();
        *counts.entry(jid).or_insert(0) += 1;
    }
    counts
}

/// A JSON string's text.
fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// The schema, or `None` after printing why the test skips.
fn schema_or_skip() -> Option<TempSchema> {
    if let Some(line) = skip_reason() {
        println!("{line}");
        return None;
    }
    Some(TempSchema::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_and_four_workers_complete_every_job_exactly_once_and_publish_once() {
    let Some(schema) = schema_or_skip() else {
        return;
    };
    let db = db_url(&schema);
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("events.jsonl");
    let spec = format!("file:{}", sink.display());
    let http = reqwest::Client::new();

    // The schema is created once, by `clew migrate`, before the servers.
    let out = clew()
        .args(["--db", &db, "migrate"])
        .output()
        .expect("migrate");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("postgres store at schema version"),
        "{said}"
    );

    let servers = [
        Server::start(&db, dir.path(), "server-a", &["--publish", &spec]),
        Server::start(&db, dir.path(), "server-b", &["--publish", &spec]),
    ];
    let mut workers = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for w in 0..2 {
            let name = format!("w{i}{w}");
            workers.push(start_worker(server, "q", dir.path(), &name));
        }
    }

    // Producers: two per server, concurrently, each its own share of jids.
    let producers = servers.len() * PRODUCERS_PER_SERVER;
    let mut puts = Vec::new();
    for p in 0..producers {
        let url = servers[p % servers.len()].url.clone();
        let http = http.clone();
        puts.push(tokio::spawn(async move {
            let mut jids = Vec::new();
            for n in (p..JOBS).step_by(producers) {
                let jid = format!("job-{n:04}");
                let data = format!(r#"{{"n":{n}}}"#);
                let args = ["producer", "q", &jid, "K", &data, "0"];
                let resp = http
                    .post(format!("{url}/v1/qless"))
                    .json(&json!({"command": "put", "args": args}))
                    .send()
                    .await
                    .expect("put");
                assert!(resp.status().is_success(), "put {jid}: {}", resp.status());
                jids.push(jid);
            }
            jids
        }));
    }
    let mut put = BTreeSet::new();
    for p in puts {
        put.extend(p.await.expect("producer"));
    }
    assert_eq!(put.len(), JOBS);

    // Wait until every job is complete, as either server sees it.
    let jobs_complete = |server: &Server| {
        let http = http.clone();
        let server_url = server.url.clone();
        async move {
            let v: Value = http
                .post(format!("{server_url}/v1/qless"))
                .json(&json!({"command": "jobs", "args": ["complete", "0", "100000"]}))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let n = v["result"].as_array()?.len();
            (n == JOBS).then_some(())
        }
    };
    await_some("every job to complete", || jobs_complete(&servers[0])).await;
    jobs_complete(&servers[1])
        .await
        .expect("the other server sees them complete too");

    // Each job: completed exactly once, by its history.
    for (i, jid) in put.iter().enumerate() {
        let server = &servers[i % 2];
        let job = server.qless(&http, "get", &[jid]).await;
        assert_eq!(job["state"], "complete", "{jid}: {job}");
        assert_eq!(history_count(&job, "done"), 1, "{jid}: {job}");
        assert_eq!(history_count(&job, "popped"), 1, "{jid}: {job}");
        assert_eq!(history_count(&job, "put"), 1, "{jid}: {job}");
    }

    // The lifecycle log: one enqueued and one perform_finished per job.
    let events = servers[0].lifecycle_events(&http).await;
    assert_eq!(events, servers[1].lifecycle_events(&http).await);
    for kind in [
        "enqueued",
        "dequeued",
        "perform_started",
        "perform_finished",
    ] {
        let counts = per_jid(&events, kind);
        let keys: BTreeSet<String> = counts.keys().cloned().collect();
        assert_eq!(keys, put, "{kind}: jobs with the event");
        assert!(counts.values().all(|&c| c == 1), "{kind}: {counts:?}");
    }
    assert!(per_jid(&events, "failed").is_empty());

    // Nothing left waiting or running; the counts agree.
    let counts = queue_counts(&servers[1], &http, "q").await;
    for state in ["waiting", "running", "scheduled", "stalled", "depends"] {
        assert_eq!(counts[state], 0, "{state}: {counts}");
    }
    // The day's stats: every job waited and ran once.
    let today = format!("{}", now_secs() as i64);
    let stats = servers[0].qless(&http, "stats", &["q", &today]).await;
    assert_eq!(stats["wait"]["count"], JOBS, "{stats}");
    assert_eq!(stats["run"]["count"], JOBS, "{stats}");
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(stats["retries"], 0, "{stats}");

    // The sink configured on both servers got every event once: wait for
    // the last one, stop everything (each server drains first), and count.
    // A line names its job by `_event_hash` (the MD5 of the jid), and a job
    // has one event of each kind, so (kind, hash) names an event.
    let logged: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let jid = e["jid"].as_str().expect("jid");
            (
                text(&e["event_type"]),
                clew_events::marshal::event_hash(jid),
            )
        })
        .collect();
    await_some("the sink to take every event", || async {
        (sink_lines(&sink).len() >= logged.len()).then_some(())
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    let logs: Vec<String> = servers.iter().map(|s| s.proc.log()).collect();
    for s in servers {
        s.proc.stop().await;
    }
    let written: Vec<(String, String)> = sink_lines(&sink)
        .iter()
        .map(|l| (text(&l["event_type"]), text(&l["metadata"]["_event_hash"])))
        .collect();
    assert_eq!(written.len(), logged.len(), "{}", logs.join("\n"));
    assert!(
        written == logged,
        "each event once, in log order\n{}",
        logs.join("\n")
    );
    let leaders = logs
        .iter()
        .filter(|l| l.contains("leading the sink"))
        .count();
    assert_eq!(leaders, 1, "one server led the sink\n{}", logs.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recurring_job_spawns_once_per_interval_across_two_servers() {
    let Some(schema) = schema_or_skip() else {
        return;
    };
    let db = db_url(&schema);
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let servers = [
        Server::start(&db, dir.path(), "server-a", &[]),
        Server::start(&db, dir.path(), "server-b", &[]),
    ];
    // Before the template exists: every child's time is at or after this.
    let started = now_secs();
    let t = servers[0]
        .qless(
            &http,
            "recur",
            &["r", "tick", "K", "{}", "interval", "1", "0"],
        )
        .await;
    assert_eq!(t, "tick");
    // Workers on both servers pop the queue, each pop spawning what is due.
    let mut workers = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for w in 0..2 {
            workers.push(start_worker(server, "r", dir.path(), &format!("r{i}{w}")));
        }
    }
    // Let at least four intervals' children be spawned and completed.
    let count_of = |server: &Server| {
        let http = http.clone();
        let url = server.url.clone();
        async move {
            let v: Value = http
                .post(format!("{url}/v1/qless"))
                .json(&json!({"command": "recur.get", "args": ["tick"]}))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["result"]["count"].as_i64()
        }
    };
    await_some("four children", || async {
        count_of(&servers[1]).await.filter(|&c| c >= 4)
    })
    .await;
    // Stop spawning: no worker pops any more.
    for w in workers {
        w.stop().await;
    }
    let finished = now_secs();
    let count = count_of(&servers[0]).await.expect("template count");
    assert_eq!(Some(count), count_of(&servers[1]).await);

    // One child per interval: child k is due one interval after child
    // k - 1 (history times are whole seconds), was put once, and no more
    // children exist than intervals that have begun.
    let elapsed = finished - started;
    assert!(
        (count as f64) <= elapsed.floor() + 1.0,
        "{count} children in {elapsed:.2} s"
    );
    let mut first_due = None;
    for k in 1..=count {
        let jid = format!("tick-{k}");
        let child = servers[(k % 2) as usize].qless(&http, "get", &[&jid]).await;
        assert_eq!(history_count(&child, "put"), 1, "{jid}: {child}");
        let due = child["history"][0]["when"].as_i64().expect("put time");
        let first = *first_due.get_or_insert(due);
        assert_eq!(due, first + (k - 1), "{jid}: {child}");
        assert!(
            due >= started.floor() as i64,
            "{jid} due {due} before {started}"
        );
    }
    let beyond = format!("tick-{}", count + 1);
    let missing = http
        .post(format!("{}/v1/qless", servers[0].url))
        .json(&json!({"command": "get", "args": [beyond]}))
        .send()
        .await
        .expect("get")
        .json::<Value>()
        .await
        .expect("json");
    assert!(missing["result"].is_null(), "{missing}");
    // And each child ran to completion exactly once.
    let events = servers[0].lifecycle_events(&http).await;
    let finished_per_child = per_jid(&events, "perform_finished");
    for (jid, n) in &finished_per_child {
        assert!(jid.starts_with("tick-"), "{jid}");
        assert_eq!(*n, 1, "{jid}");
    }
    for s in servers {
        s.proc.stop().await;
    }
}

/// Puts jobs `PREFIX-0..n` through `server`.
async fn put_batch(server: &Server, http: &reqwest::Client, prefix: &str, n: usize) {
    for i in 0..n {
        let jid = format!("{prefix}-{i}");
        server
            .qless(http, "put", &["producer", "h", &jid, "K", "{}", "0"])
            .await;
    }
}

/// The `_event_hash` of each line of the sink.
fn sink_hashes(path: &Path) -> Vec<String> {
    sink_lines(path)
        .iter()
        .map(|l| text(&l["metadata"]["_event_hash"]))
        .collect()
}

/// The cursor of sink `spec` saved in the schema.
async fn saved_cursor(schema: &TempSchema, spec: &str) -> Option<i64> {
    let mut client = schema.connect().expect("connect");
    let spec = spec.to_owned();
    tokio::task::spawn_blocking(move || {
        client
            .query_opt(
                "SELECT seq FROM publisher_cursors WHERE name = $1",
                &[&spec],
            )
            .expect("cursor query")
            .map(|row| row.get::<_, i64>(0))
    })
    .await
    .expect("cursor query thread")
}

/// The event hashes of jobs `PREFIX-0..n` (one enqueued event each).
fn hashes(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| clew_events::marshal::event_hash(&format!("{prefix}-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sink_fails_over_to_another_server_and_resumes_from_the_shared_cursor() {
    let Some(schema) = schema_or_skip() else {
        return;
    };
    let db = db_url(&schema);
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("events.jsonl");
    let spec = format!("file:{}", sink.display());
    let http = reqwest::Client::new();
    let publish = ["--publish", spec.as_str()];
    let mut servers = vec![
        Server::start(&db, dir.path(), "server-a", &publish),
        Server::start(&db, dir.path(), "server-b", &publish),
    ];
    put_batch(&servers[1], &http, "one", 20).await;
    let mut expected = hashes("one", 20);
    await_some("the first batch", || async {
        (sink_hashes(&sink).len() >= expected.len()).then_some(())
    })
    .await;
    let leader = await_some("a leader", || async {
        servers
            .iter()
            .position(|s| s.proc.log().contains("leading the sink"))
    })
    .await;

    // A clean stop hands the sink over: the other server resumes after
    // the saved cursor, so nothing is written twice.
    servers.remove(leader).proc.stop().await;
    put_batch(&servers[0], &http, "two", 20).await;
    expected.extend(hashes("two", 20));
    await_some("the second batch, from the other server", || async {
        (sink_hashes(&sink).len() >= expected.len()).then_some(())
    })
    .await;
    assert_eq!(
        sink_hashes(&sink),
        expected,
        "exactly once across a handover"
    );

    // A leader that dies (SIGKILL) loses its session, and so the sink: a
    // new server takes over. Delivery stays at-least-once and in order:
    // everything arrives, nothing before the saved cursor is sent again.
    // (Killed once its cursor is saved, so what follows is exact.)
    let last = servers[0].lifecycle_events(&http).await;
    let last = last.last().and_then(|e| e["seq"].as_i64()).expect("seq");
    await_some("the leader's cursor to be saved", || async {
        (saved_cursor(&schema, &spec).await >= Some(last)).then_some(())
    })
    .await;
    servers.push(Server::start(&db, dir.path(), "server-c", &publish));
    let mut dead = servers.remove(0);
    dead.proc.child.kill().expect("kill -9");
    dead.proc.child.wait().expect("wait");
    put_batch(&servers[0], &http, "three", 20).await;
    let tail = hashes("three", 20);
    await_some("the third batch, from the new server", || async {
        let got = sink_hashes(&sink);
        got.ends_with(&tail).then_some(())
    })
    .await;
    let got = sink_hashes(&sink);
    assert_eq!(
        &got[..expected.len()],
        &expected[..],
        "the first two batches"
    );
    let after: Vec<&String> = got[expected.len()..].iter().collect();
    let distinct: BTreeSet<&String> = after.iter().copied().collect();
    assert_eq!(distinct.len(), tail.len(), "the third batch: {after:?}");
    for s in servers {
        s.proc.stop().await;
    }
}
