//! `clew server` as a process: the loopback and token rules of its flags,
//! the token on a non-loopback bind, and a graceful exit on SIGTERM even
//! with an event stream open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);
const TOKEN: &str = "flag-test-token";

/// `clew --db sqlite:<temp> server ARGS...`, with no token or listen
/// address inherited from the environment.
fn server_command(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    cmd.arg("--db")
        .arg(format!("sqlite:{}", dir.path().join("clew.db").display()))
        .arg("server")
        .args(args)
        .env_remove("CLEW_TOKEN")
        .env_remove("CLEW_LISTEN")
        .env("CLEW_LOG", "warn");
    cmd
}

/// Runs a server command that must refuse to start; its output.
fn refused(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = server_command(&dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clew server");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("clew server {args:?} kept running; it should refuse to start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// A started server process and the port it listens on.
struct Running {
    child: Child,
    port: u16,
}

impl Running {
    /// Starts `clew server ARGS` on a store in `dir`.
    fn start(dir: &tempfile::TempDir, args: &[&str]) -> Running {
        let mut child = server_command(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn clew server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("clew server listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr:?}"));
        Running { child, port }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        s
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut s = self.connect();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send request");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read response");
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {raw:?}"));
        let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        (status, body.to_owned())
    }

    /// Sends SIGTERM and waits for the exit; its status code.
    fn terminate(self) -> Option<i32> {
        self.signal("-TERM")
    }

    /// Sends `signal` (a `kill` option such as `-INT`) and waits for the
    /// exit; its status code.
    fn signal(mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(ok.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("clew server did not exit within {DEADLINE:?} of kill {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn test_mode_is_refused_on_a_non_loopback_address() {
    let out = refused(&["--listen", "0.0.0.0:0", "--test-mode", "--token", TOKEN]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--test-mode") && err.contains("loopback"),
        "stderr: {err}"
    );
    assert!(out.stdout.is_empty(), "it never listened");
}

#[test]
fn a_non_loopback_address_without_a_token_is_refused() {
    let out = refused(&["--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("loopback"),
        "stderr: {err}"
    );
    // An empty token is no token.
    let out = refused(&["--listen", "0.0.0.0:0", "--token", ""]);
    assert!(!out.status.success());
}

#[test]
fn with_a_token_a_non_loopback_server_refuses_requests_without_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(&dir, &["--listen", "0.0.0.0:0", "--token", TOKEN]);
    let put = r#"{"command": "put", "args": ["w", "q", "j1", "K", "{}", "0"]}"#;
    let (status, body) = server.request("POST", "/v1/qless", None, put);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"), "{body}");
    let (status, _) = server.request("POST", "/v1/qless", Some("wrong"), put);
    assert_eq!(status, 401);
    let (status, body) = server.request("GET", "/healthz", None, "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.request("POST", "/v1/qless", Some(TOKEN), put);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""result":"j1""#), "{body}");
    assert_eq!(server.terminate(), Some(0));
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_gracefully_with_an_event_stream_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(&dir, &["--listen", "127.0.0.1:0"]);
    let mut stream = server.connect();
    write!(
        stream,
        "GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("open the event stream");
    // Wait for the headers and the opening comment.
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("clew events after") {
        let n = stream.read(&mut buf).expect("read the stream");
        assert!(n > 0, "stream closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    let put = r#"{"command": "put", "args": ["w", "q", "j1", "K", "{}", "0"]}"#;
    let (status, body) = server.request("POST", "/v1/qless", None, put);
    assert_eq!(status, 200, "{body}");

    assert_eq!(server.terminate(), Some(0), "exit status after SIGTERM");
    // The stream got the event, then ended.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("event: ql:log"), "{text}");
}

#[test]
fn the_store_is_closed_cleanly_and_keeps_what_was_put() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(&dir, &["--listen", "127.0.0.1:0"]);
    let put = r#"{"command": "put", "args": ["w", "q", "kept", "K", "{}", "0"]}"#;
    assert_eq!(server.request("POST", "/v1/qless", None, put).0, 200);
    assert_eq!(server.terminate(), Some(0));
    // Closing checkpointed the write-ahead log into the database file.
    let wal = dir.path().join("clew.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL left behind"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_clew"))
        .arg("--db")
        .arg(format!("sqlite:{}", dir.path().join("clew.db").display()))
        .args(["call", "get", "kept"])
        .env_remove("CLEW_URL")
        .env_remove("CLEW_TOKEN")
        .output()
        .expect("clew call get");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON job");
    assert_eq!(job["jid"], "kept");
    assert_eq!(job["queue"], "q");
}

#[cfg(unix)]
#[test]
fn ctrl_c_shuts_down_gracefully_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(&dir, &["--listen", "127.0.0.1:0"]);
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
    assert_eq!(server.signal("-INT"), Some(0));
}
