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
//! The Rust side speaks the qless compatibility endpoint (`POST /v1/qless`)
//! through a tiny HTTP/1.1 helper over `std::net`, so the test needs no
//! extra dependency.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    /// `host:port`.
    addr: String,
    /// `http://host:port`.
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = File::create(dir.path().join("server.log")).expect("server log");
        let db = format!("sqlite:{}", dir.path().join("p.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_clew"))
            .args(["server", "--listen", "127.0.0.1:0", "--db", &db])
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
        let addr = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("announced URL is not http://: {url}"))
            .to_owned();
        Server {
            child,
            addr,
            url,
            dir,
        }
    }

    /// Runs a qless command; `Ok(result)` on 200, `Err((status, body))`
    /// otherwise.
    fn qless(&self, command: &str, args: &[&str]) -> Result<Value, (u16, Value)> {
        let body = json!({ "command": command, "args": args }).to_string();
        let (status, body) = http_post(&self.addr, "/v1/qless", &body);
        if status == 200 {
            Ok(body["result"].clone())
        } else {
            Err((status, body))
        }
    }

    /// Like [`Server::qless`], but panics on an error answer.
    fn ok(&self, command: &str, args: &[&str]) -> Value {
        self.qless(command, args)
            .unwrap_or_else(|(status, body)| panic!("{command} {args:?}: HTTP {status}: {body}"))
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

/// One HTTP/1.1 POST of a JSON body; returns the status and the decoded
/// JSON answer.
fn http_post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect to clew server");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of HTTP headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    let value = serde_json::from_slice(&payload).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&payload)
        )
    });
    (status, value)
}

/// Decodes a chunked HTTP body.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The `what` of each history entry with its queue or worker, e.g.
/// `"put q=stage1"`, `"popped by py-1"`, `"done"`.
fn history_summary(job: &Value) -> Vec<String> {
    job["history"]
        .as_array()
        .expect("history array")
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

    // Stage 0 (Rust): put the jobs.
    let jids: Vec<String> = (0..JOBS).map(|i| format!("pipe-{i:02}")).collect();
    for (i, jid) in jids.iter().enumerate() {
        let data = json!({ "n": i }).to_string();
        let put = server.ok(
            "put",
            &["rust-putter", "stage1", jid, "Pipeline", &data, "0"],
        );
        assert_eq!(put, json!(jid));
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
    let completed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("completed ") && l.ends_with("-> stage2"))
        .collect();
    assert_eq!(completed.len(), JOBS, "python worker output:\n{out}");
    let counts = server.ok("queues", &["stage1"]);
    assert_eq!(
        (counts["waiting"].as_i64(), counts["running"].as_i64()),
        (Some(0), Some(0)),
        "stage1 is drained: {counts}"
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
        let popped = server.ok("pop", &["stage2", "rust-1", "5"]);
        let popped = popped.as_array().expect("pop returns a list");
        if popped.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for job in popped {
            let jid = job["jid"].as_str().expect("jid");
            assert_eq!(job["queue"], "stage2", "{job}");
            let mut data: Value =
                serde_json::from_str(job["data"].as_str().expect("data text")).expect("data JSON");
            assert_eq!(data["py"], true, "python stage mark missing: {job}");
            data["rust"] = json!(true);
            let state = server.ok("complete", &[jid, "rust-1", "stage2", &data.to_string()]);
            assert_eq!(state, "complete", "{jid}");
            finished.push(jid.to_owned());
        }
    }
    finished.sort();
    assert_eq!(finished, jids, "every job reached the rust stage once");

    // Every job went put → py-1 → next queue → rust-1 → complete.
    for (i, jid) in jids.iter().enumerate() {
        let job = server.ok("get", &[jid]);
        assert_eq!(job["state"], "complete", "{job}");
        // As in qless, a complete job belongs to no queue any more.
        assert_eq!(job["queue"], "", "{job}");
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
            "{jid}: {job}"
        );
        let data: Value =
            serde_json::from_str(job["data"].as_str().expect("data text")).expect("data JSON");
        assert_eq!(data["n"], i, "original payload kept: {data}");
        assert_eq!(data["py"], true, "python stage mark: {data}");
        assert_eq!(data["py_worker"], "py-1", "{data}");
        assert_eq!(data["rust"], true, "rust stage mark: {data}");
    }
    let counts = server.ok("queues", &["stage2"]);
    assert_eq!(
        (counts["waiting"].as_i64(), counts["running"].as_i64()),
        (Some(0), Some(0)),
        "stage2 is drained: {counts}"
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

    // The tests really wrote to this server.
    let queues = server.ok("queues", &[]);
    assert!(
        queues.as_array().is_some_and(|qs| qs
            .iter()
            .any(|q| q["name"].as_str().is_some_and(|n| n.starts_with("py-")))),
        "no py-* queue on the server: {queues}"
    );
    let status = server.stop();
    assert!(status.success(), "clew server exit after SIGTERM: {status}");
}
