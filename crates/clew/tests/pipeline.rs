//! Cross-language tests against a real `clew server` (127.0.0.1, port 0, a
//! SQLite file in a temporary directory):
//!
//! * a two-stage pipeline: jobs put from Rust are worked by the Python example
//!   worker (`clients/python/examples/stage_worker.py`), whose `complete`
//!   moves them to a next queue, where a Rust worker finishes them;
//! * the Python client's own unit tests (`clients/python/test_clew_client.py`)
//!   run against the server.
//!
//! Without `python3` both tests print a skip line and pass, unless `CI=true`,
//! where a missing interpreter is a failure.
//!
//! The Rust side is [`clew::Client`] on the server's URL, so the pipeline
//! also checks that the Rust and Python clients agree on the wire.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clew::{Client, JobView};
use clew_core::command::PutParams;
use serde_json::{json, Value};

/// How long any one wait (server start, a worker, a process exit) may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// Jobs sent through the pipeline.
const JOBS: usize = 20;

/// The repository root: `crates/clew` → `../..`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn python_dir() -> PathBuf {
    repo_root().join("clients").join("python")
}

/// Whether `python3` runs here. Without it the caller skips, except under
/// `CI=true`, where this panics.
fn have_python(test: &str) -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: python3 is not installed, and CI=true requires this test to run");
        }
        println!("SKIPPED {test}: python3 is not installed (set CI=true to make this a failure)");
    }
    found
}

/// A `clew server` child process on a fresh SQLite file.
struct Server {
    child: Child,
    /// `http://host:port`.
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `clew server` arguments.
    fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = File::create(dir.path().join("server.log")).expect("server log");
        let db = format!("sqlite:{}", dir.path().join("p.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_clew"))
            .args(["server", "--listen", "127.0.0.1:0", "--db", &db])
            .args(extra)
            .env_remove("CLEW_TOKEN")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn clew server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the announcement, then keeps draining stdout so the server
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("clew server listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(DEADLINE) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("clew server did not announce its address ({e}); its log:\n{log}");
            }
        };
        assert!(url.starts_with("http://"), "announced URL: {url}");
        Server { child, url, dir }
    }

    /// A Rust client of this server.
    fn client(&self) -> Client {
        Client::connect(&self.url).expect("clew::Client for the server")
    }

    /// Stops the server with SIGTERM and returns its exit status.
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            self.child.kill().expect("kill clew server");
        }
        wait_with_deadline(&mut self.child, "clew server").expect("clew server did not stop")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only after a panic (stop() already reaped it otherwise).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a child to exit, polling every 10 ms up to [`DEADLINE`]; on
/// timeout kills it and returns `None`.
fn wait_with_deadline(child: &mut Child, what: &str) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                eprintln!("{what} still running after {DEADLINE:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// A runtime for the client calls of one test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A job's data, parsed.
fn data_of(job: &JobView) -> Value {
    serde_json::from_str(&job.data).unwrap_or_else(|e| panic!("{}: data not JSON ({e})", job.jid))
}

/// Waiting and running counts of a queue.
fn waiting_running(rt: &tokio::runtime::Runtime, client: &Client, queue: &str) -> (i64, i64) {
    let counts = rt
        .block_on(client.qless("queues", &[queue.to_owned()]))
        .expect("queues");
    (
        counts["waiting"].as_i64().expect("waiting count"),
        counts["running"].as_i64().expect("running count"),
    )
}

/// The `what` of each history entry with its queue or worker, e.g.
/// `"put q=stage1"`, `"popped by py-1"`, `"done"`.
fn history_summary(job: &JobView) -> Vec<String> {
    job.history
        .iter()
        .map(|h| {
            let what = h["what"].as_str().expect("history what");
            match (h["q"].as_str(), h["worker"].as_str()) {
                (Some(q), _) if what == "put" => format!("put q={q}"),
                (_, Some(w)) if what == "popped" => format!("popped by {w}"),
                _ => what.to_owned(),
            }
        })
        .collect()
}

#[test]
fn jobs_put_from_rust_pass_through_a_python_stage_then_a_rust_stage() {
    let test = "jobs_put_from_rust_pass_through_a_python_stage_then_a_rust_stage";
    if !have_python(test) {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    let client = server.client();

    // Stage 0 (Rust): put the jobs.
    let jids: Vec<String> = (0..JOBS).map(|i| format!("pipe-{i:02}")).collect();
    for (i, jid) in jids.iter().enumerate() {
        let mut put = PutParams::new("stage1", "Pipeline");
        put.worker = "rust-putter".to_owned();
        put.jid = jid.clone();
        put.data = json!({ "n": i }).to_string();
        assert_eq!(&rt.block_on(client.put(put)).expect("put"), jid);
    }

    // Stage 1 (Python): pop, heartbeat, complete with next=stage2.
    let out_path = server.dir.path().join("worker.out");
    let err_path = server.dir.path().join("worker.err");
    let count = JOBS.to_string();
    let mut worker = Command::new("python3")
        .arg(python_dir().join("examples").join("stage_worker.py"))
        .args([
            "--url",
            &server.url,
            "--queue",
            "stage1",
            "--worker",
            "py-1",
        ])
        .args(["--next", "stage2", "--count", &count, "--timeout", "15"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("CLEW_TOKEN")
        .stdout(File::create(&out_path).expect("worker stdout file"))
        .stderr(File::create(&err_path).expect("worker stderr file"))
        .spawn()
        .expect("spawn python3 stage_worker.py");
    let status = wait_with_deadline(&mut worker, "python stage worker");
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "python worker failed ({status:?})\nstdout:\n{out}\nstderr:\n{err}"
    );
    let completed = out
        .lines()
        .filter(|l| l.starts_with("completed ") && l.ends_with("-> stage2"))
        .count();
    assert_eq!(completed, JOBS, "python worker output:\n{out}");
    assert_eq!(
        waiting_running(&rt, &client, "stage1"),
        (0, 0),
        "stage1 is drained"
    );

    // Stage 2 (Rust): pop from stage2 and complete.
    let mut finished = Vec::new();
    let start = Instant::now();
    while finished.len() < JOBS {
        assert!(
            start.elapsed() < DEADLINE,
            "rust worker finished only {} of {JOBS} jobs",
            finished.len()
        );
        let popped = rt.block_on(client.pop("stage2", "rust-1", 5)).expect("pop");
        if popped.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for job in popped {
            assert_eq!(job.queue, "stage2", "{job:?}");
            assert_eq!(job.worker, "rust-1", "{job:?}");
            let mut data = data_of(&job);
            assert_eq!(data["py"], true, "python stage mark missing: {job:?}");
            data["rust"] = json!(true);
            let state = rt
                .block_on(client.complete(&job.jid, "rust-1", "stage2", &data.to_string()))
                .expect("complete");
            assert_eq!(state, "complete", "{}", job.jid);
            finished.push(job.jid);
        }
    }
    finished.sort();
    assert_eq!(finished, jids, "every job reached the rust stage once");

    // Every job went put → py-1 → next queue → rust-1 → complete.
    for (i, jid) in jids.iter().enumerate() {
        let job = rt
            .block_on(client.get(jid))
            .expect("get")
            .unwrap_or_else(|| panic!("{jid} is gone"));
        assert_eq!(job.state, "complete", "{job:?}");
        // As in qless, a complete job belongs to no queue any more.
        assert_eq!(job.queue, "", "{job:?}");
        assert_eq!(
            history_summary(&job),
            [
                "put q=stage1",
                "popped by py-1",
                "done",
                "put q=stage2",
                "popped by rust-1",
                "done"
            ],
            "{jid}: {job:?}"
        );
        let data = data_of(&job);
        assert_eq!(data["n"], i, "original payload kept: {data}");
        assert_eq!(data["py"], true, "python stage mark: {data}");
        assert_eq!(data["py_worker"], "py-1", "{data}");
        assert_eq!(data["rust"], true, "rust stage mark: {data}");
    }
    assert_eq!(
        waiting_running(&rt, &client, "stage2"),
        (0, 0),
        "stage2 is drained"
    );

    let status = server.stop();
    assert!(status.success(), "clew server exit after SIGTERM: {status}");
}

#[test]
fn python_client_unit_tests_pass_against_a_real_server() {
    let test = "python_client_unit_tests_pass_against_a_real_server";
    if !have_python(test) {
        return;
    }
    let server = Server::start();
    let out_path = server.dir.path().join("unittest.out");
    let mut run = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_clew_client"])
        .current_dir(python_dir())
        .env("CLEW_URL", &server.url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("CLEW_TOKEN")
        .stdout(Stdio::null())
        .stderr(File::create(&out_path).expect("unittest output file"))
        .spawn()
        .expect("spawn python3 -m unittest");
    let status = wait_with_deadline(&mut run, "python unittest");
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "python unit tests failed ({status:?}):\n{out}"
    );
    // The server-backed tests ran (CLEW_URL took effect), none was skipped.
    assert!(out.contains("ServerTest"), "no ServerTest ran:\n{out}");
    assert!(!out.contains("skipped"), "some tests were skipped:\n{out}");
    let ran = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split_whitespace()
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    assert!(ran >= 20, "only {ran} python tests ran:\n{out}");

    // The tests really wrote to this server; the Rust client reads what the
    // Python client left behind.
    let rt = runtime();
    let queues = rt
        .block_on(server.client().qless("queues", &[]))
        .expect("queues");
    let py_queues = queues
        .as_array()
        .expect("queues list")
        .iter()
        .filter(|q| q["name"].as_str().is_some_and(|n| n.starts_with("py-")))
        .count();
    assert!(py_queues >= 10, "only {py_queues} py-* queues: {queues}");

    let status = server.stop();
    assert!(status.success(), "clew server exit after SIGTERM: {status}");
}

#[test]
fn python_worker_sends_the_api_token() {
    let test = "python_worker_sends_the_api_token";
    if !have_python(test) {
        return;
    }
    let token = "pipeline-token";
    let server = Server::start_with(&["--token", token]);
    let rt = runtime();
    let client = Client::connect_with_token(&server.url, Some(token.to_owned()))
        .expect("clew::Client with a token");
    let mut put = PutParams::new("auth1", "Pipeline");
    put.jid = "auth-job".to_owned();
    rt.block_on(client.put(put)).expect("put with the token");

    let run = |token: Option<&str>, name: &str| {
        let out_path = server.dir.path().join(format!("{name}.out"));
        let err_path = server.dir.path().join(format!("{name}.err"));
        let mut cmd = Command::new("python3");
        cmd.arg(python_dir().join("examples").join("stage_worker.py"))
            .args([
                "--url",
                &server.url,
                "--queue",
                "auth1",
                "--worker",
                "py-auth",
            ])
            .args(["--next", "auth2", "--count", "1", "--timeout", "15"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("CLEW_TOKEN")
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"));
        if let Some(t) = token {
            cmd.env("CLEW_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn python3 stage_worker.py");
        let status = wait_with_deadline(&mut child, name);
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        (status, out, err)
    };

    // Without the token: a clear 401, and the job is untouched.
    let (status, out, err) = run(None, "no-token");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}{err}");
    assert!(
        err.contains("401") && err.contains("missing API token"),
        "stderr names the 401: {err}"
    );
    let job = rt
        .block_on(client.get("auth-job"))
        .expect("get")
        .expect("job");
    assert_eq!(
        (job.state.as_str(), job.queue.as_str()),
        ("waiting", "auth1")
    );

    // With it (from CLEW_TOKEN): the job moves on.
    let (status, out, err) = run(Some(token), "with-token");
    assert!(status.is_some_and(|s| s.success()), "{out}{err}");
    let job = rt
        .block_on(client.get("auth-job"))
        .expect("get")
        .expect("job");
    assert_eq!(
        (job.state.as_str(), job.queue.as_str()),
        ("waiting", "auth2")
    );
    assert_eq!(data_of(&job)["py"], true);

    let status = server.stop();
    assert!(status.success(), "clew server exit after SIGTERM: {status}");
}
