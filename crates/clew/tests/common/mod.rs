//! Helpers shared by the tests that run `clew server` and `clew work` as
//! real processes around lifecycle-event publishing.
// Each test file uses its own subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A `clew` command with nothing inherited that would change its target.
pub fn clew() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    for var in [
        "CLEW_URL",
        "CLEW_DB",
        "CLEW_TOKEN",
        "CLEW_WORKER_CHILD",
        "CLEW_WORKER_PARENT",
        "CLEW_NAMESPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A test fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A running `clew server` on a loopback port.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `clew --db sqlite:DB server --listen 127.0.0.1:0 EXTRA...`.
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--db".to_owned(),
            format!("sqlite:{}", db.display()),
            "server".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut child = clew()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn clew server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let url = line
            .trim()
            .strip_prefix("clew server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// Runs one qless command through `POST /v1/qless`; its result.
    pub async fn qless(&self, command: &str, args: &[&str]) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/qless", self.url))
            .json(&json!({"command": command, "args": args}))
            .send()
            .await
            .expect("request");
        let v: Value = resp.json().await.expect("json");
        v["result"].clone()
    }

    /// Stops it with SIGTERM; it must exit successfully (dropping it
    /// instead kills it).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "server exit {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // After `stop` the process is gone and these do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Puts jobs `a<n>` with data `{"n": n}` into queue `q`, one per n.
pub async fn put_numbered(server: &Server, range: std::ops::Range<u32>) {
    for n in range {
        let (jid, data) = (format!("a{n}"), format!(r#"{{"n":{n}}}"#));
        server
            .qless("put", &["me", "q", &jid, "K", &data, "0"])
            .await;
    }
}

/// The JSON lines written to `path` so far.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `f` until it holds, for up to 20 s.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
