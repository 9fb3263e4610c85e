//! The `clew` command line, run as a user would: against a store file
//! (`--db sqlite:PATH`) and against a real `clew server` on 127.0.0.1:0
//! (`--url`, `CLEW_URL`). Also `clew::Client` against that server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_clew");

/// Where the CLI sends its commands.
#[derive(Clone, Debug)]
enum Target {
    /// A store file, through `--db sqlite:PATH`.
    Db(PathBuf),
    /// A server, through `--url` (or `CLEW_URL` when `env` is set).
    Url { url: String, env: bool },
}

/// A `clew` command with a clean environment, run in `dir`.
fn base(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("CLEW_URL")
        .env_remove("CLEW_DB")
        .env_remove("CLEW_TOKEN")
        .stdin(Stdio::null());
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

struct Cli {
    dir: PathBuf,
    target: Target,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = base(&self.dir);
        match &self.target {
            Target::Db(p) => {
                c.arg("--db").arg(format!("sqlite:{}", p.display()));
            }
            Target::Url { url, env: false } => {
                c.arg("--url").arg(url);
            }
            Target::Url { url, env: true } => {
                c.env("CLEW_URL", url);
            }
        }
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run clew"))
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "clew {args:?} ({:?}) failed: {}",
            self.target, r.stderr
        );
        r.stdout
    }

    /// Runs with `--json` and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("clew {args:?}: not JSON ({e}): {out}"))
    }

    /// Runs and expects failure with `code` and a one-line message.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "clew {args:?}: stdout {} stderr {}",
            r.stdout, r.stderr
        );
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "one-line error expected: {:?}",
            r.stderr
        );
        assert!(r.stderr.starts_with("clew: "), "{:?}", r.stderr);
        r.stderr
    }
}

/// A `clew server` child on 127.0.0.1:0; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let db = dir.join("server.db");
        let mut child = base(dir)
            .arg("--db")
            .arg(format!("sqlite:{}", db.display()))
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CLEW_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn clew server");
        let stdout = child.stdout.take().expect("piped stdout");
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
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect()
}

fn queue<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.as_array()
        .expect("queues array")
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("queue {name} not in {v}"))
}

/// Every command's round trip; the same script for both targets.
fn round_trips(cli: &Cli) {
    // put: a generated jid, and one with every option.
    let a = cli.ok(&["put", "q", "Send"]).trim().to_owned();
    assert_eq!(a.len(), 32, "generated jid: {a:?}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    let b = cli
        .ok(&[
            "put",
            "q",
            "Send",
            "--jid",
            "job-b",
            "--data",
            r#"{"to": "a@example.com",  "n":1}"#,
            "--priority",
            "5",
            "--tags",
            "x,y",
            "--retries",
            "3",
        ])
        .trim()
        .to_owned();
    assert_eq!(b, "job-b");

    // jobs: waiting across queues, human and JSON.
    let listed = cli.json(&["jobs"]);
    assert_eq!(
        jids(&listed),
        vec!["job-b".to_owned(), a.clone()],
        "pop order"
    );
    let human = cli.ok(&["jobs", "--state", "waiting", "--queue", "q"]);
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines[0].starts_with("JID") && lines[0].contains("STATE"),
        "{human}"
    );
    assert_eq!(lines.len(), 3, "{human}");
    assert!(lines[1].starts_with("job-b") && lines[1].contains("waiting"));
    // Columns are aligned: STATE starts at the same offset on every line.
    let col = lines[0].find("STATE").expect("STATE column");
    assert_eq!(&lines[1][col..col + 7], "waiting", "{human}");
    assert_eq!(&lines[2][col..col + 7], "waiting", "{human}");

    // job show / get: the job with its history; data verbatim.
    let job = cli.json(&["job", "show", "job-b"]);
    assert_eq!(job["klass"], "Send");
    assert_eq!(job["priority"], 5);
    assert_eq!(job["retries"], 3);
    assert_eq!(job["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(job["data"], r#"{"to": "a@example.com",  "n":1}"#);
    assert_eq!(cli.json(&["get", "job-b"]), job);
    let shown = cli.ok(&["job", "show", "job-b"]);
    assert!(
        shown.contains("state:") && shown.contains("waiting"),
        "{shown}"
    );
    assert!(
        shown.contains("history:") && shown.contains("q=q"),
        "{shown}"
    );

    // queues.
    let qs = cli.json(&["queues"]);
    assert_eq!(queue(&qs, "q")["waiting"], 2);
    let human = cli.ok(&["queues"]);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("q ") && l.contains(" 2 ")),
        "{human}"
    );

    // pop, workers, stats.
    let popped = cli.json(&["pop", "q", "--worker", "w1"]);
    assert_eq!(jids(&popped), vec!["job-b".to_owned()]);
    let mut ws = cli.json(&["workers"]);
    let seen = ws[0]["last_seen"].take();
    assert!(seen.as_f64().is_some_and(|t| t > 0.0), "last_seen {seen}");
    ws[0].as_object_mut().map(|o| o.remove("last_seen"));
    assert_eq!(
        ws,
        serde_json::json!([{"name": "w1", "jobs": 1, "stalled": 0}])
    );
    assert!(cli.ok(&["workers"]).contains("LAST SEEN"));
    assert_eq!(
        cli.json(&["workers", "w1"])["jobs"],
        serde_json::json!(["job-b"])
    );
    assert!(cli.ok(&["workers"]).contains("w1"));
    let stats = cli.json(&["stats", "q"]);
    assert_eq!(stats["wait"]["count"], 1, "{stats}");
    assert_eq!(stats["failures"], 0);
    let human = cli.ok(&["stats", "q"]);
    assert!(human.contains("wait") && human.contains("run"), "{human}");
    let running = cli.json(&["jobs", "--state", "running", "--queue", "q"]);
    assert_eq!(jids(&running), vec!["job-b".to_owned()]);

    // retry of a running job: qless retry (back to waiting, one retry used).
    let r = cli.json(&["retry", "job-b"]);
    assert_eq!(r[0]["action"], "retried");
    let job = cli.json(&["job", "show", "job-b"]);
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["remaining"], 2);

    // fail, list the failed jobs, retry requeues into the queue.
    cli.json(&["pop", "q", "--worker", "w1"]);
    cli.ok(&[
        "fail",
        "job-b",
        "--worker",
        "w1",
        "--group",
        "Send:Boom",
        "--message",
        "boom",
    ]);
    let failed = cli.json(&["jobs", "--state", "failed"]);
    assert_eq!(jids(&failed), vec!["job-b".to_owned()]);
    assert_eq!(failed[0]["failure"]["group"], "Send:Boom");
    let human = cli.ok(&["jobs", "--state", "failed"]);
    assert!(
        human.contains("GROUP") && human.contains("Send:Boom"),
        "{human}"
    );
    assert_eq!(cli.json(&["failed"]), serde_json::json!({"Send:Boom": 1}));
    assert!(cli.ok(&["failed", "Send:Boom"]).contains("job-b"));
    let r = cli.json(&["retry", "job-b"]);
    assert_eq!(r[0]["action"], "requeued");
    let job = cli.json(&["job", "show", "job-b"]);
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["priority"], 5);
    assert_eq!(job["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(job["data"], r#"{"to": "a@example.com",  "n":1}"#);
    assert_eq!(cli.json(&["failed"]), serde_json::json!({}));
    // A waiting job cannot be retried: conflict, nothing changes.
    let e = cli.fails(&["retry", "job-b"], 4);
    assert!(e.contains("job-b") && e.contains("waiting"), "{e}");

    // priority, tags, track.
    assert_eq!(cli.json(&["priority", "job-b", "-2"]), -2);
    let tags = cli.json(&["tag", "add", "job-b", "z"]);
    assert_eq!(tags, serde_json::json!(["x", "y", "z"]));
    cli.ok(&["tag", "remove", "job-b", "x"]);
    assert_eq!(
        cli.json(&["job", "show", "job-b"])["tags"],
        serde_json::json!(["y", "z"])
    );
    cli.ok(&["track", "job-b"]);
    assert_eq!(cli.json(&["job", "show", "job-b"])["tracked"], true);
    cli.ok(&["untrack", "job-b"]);
    assert_eq!(cli.json(&["job", "show", "job-b"])["tracked"], false);

    // cancel several jobs; they are gone.
    let cancelled = cli.json(&["cancel", &a, "job-b"]);
    assert_eq!(cancelled, serde_json::json!([a, "job-b"]));
    let e = cli.fails(&["job", "show", &a], 3);
    assert!(e.contains(&a) && e.contains("does not exist"), "{e}");
    assert_eq!(queue(&cli.json(&["queues"]), "q")["waiting"], 0);

    // config.
    assert_eq!(cli.json(&["config", "get", "heartbeat"]), 60);
    cli.ok(&["config", "set", "heartbeat", "42"]);
    assert_eq!(cli.ok(&["config", "get", "heartbeat"]).trim(), "42");
    assert_eq!(cli.json(&["config", "get"])["heartbeat"], "42");
    assert!(cli.ok(&["config", "get"]).contains("grace-period"));
    cli.ok(&["config", "unset", "heartbeat"]);
    assert_eq!(cli.json(&["config", "get", "heartbeat"]), 60);

    // pause / unpause.
    cli.ok(&["pause", "q", "other"]);
    assert_eq!(queue(&cli.json(&["queues"]), "q")["paused"], true);
    cli.ok(&["put", "q", "K", "--jid", "while-paused"]);
    assert_eq!(
        cli.json(&["pop", "q", "--worker", "w1"]),
        serde_json::json!([])
    );
    cli.ok(&["unpause", "q", "other"]);
    assert_eq!(queue(&cli.json(&["queues"]), "q")["paused"], false);
    assert_eq!(
        jids(&cli.json(&["pop", "q", "--worker", "w1"])),
        vec!["while-paused".to_owned()]
    );
    cli.ok(&["complete", "while-paused", "--worker", "w1", "--queue", "q"]);
    let done = cli.json(&["jobs", "--state", "complete"]);
    assert_eq!(jids(&done), vec!["while-paused".to_owned()]);

    // recurring jobs.
    let r = cli.ok(&[
        "recur",
        "add",
        "q",
        "Nightly",
        "--interval",
        "3600",
        "--offset",
        "600",
        "--jid",
        "r1",
        "--tags",
        "a",
    ]);
    assert_eq!(r.trim(), "r1");
    let rec = cli.json(&["recur", "get", "r1"]);
    assert_eq!(rec["interval"], 3600);
    assert_eq!(rec["klass"], "Nightly");
    assert_eq!(rec["tags"], serde_json::json!(["a"]));
    cli.ok(&[
        "recur",
        "update",
        "r1",
        "--priority",
        "7",
        "--klass",
        "Nightly2",
    ]);
    let rec = cli.json(&["recur", "get", "r1"]);
    assert_eq!(rec["priority"], 7);
    assert_eq!(rec["klass"], "Nightly2");
    cli.ok(&["recur", "tag", "r1", "b"]);
    cli.ok(&["recur", "untag", "r1", "a"]);
    assert_eq!(
        cli.json(&["recur", "get", "r1"])["tags"],
        serde_json::json!(["b"])
    );
    let listed = cli.json(&["jobs", "--state", "recurring", "--queue", "q"]);
    assert_eq!(listed[0]["jid"], "r1");
    assert!(cli
        .ok(&["jobs", "--state", "recurring"])
        .contains("Nightly2"));
    cli.ok(&["recur", "remove", "r1"]);
    cli.fails(&["recur", "get", "r1"], 3);

    // events: every line `seq channel message`, in order; --after skips.
    let out = cli.ok(&["events"]);
    let mut last = 0;
    for line in out.lines() {
        let mut parts = line.splitn(3, ' ');
        let seq: i64 = parts.next().and_then(|s| s.parse().ok()).expect("seq");
        assert!(seq > last, "events out of order: {out}");
        last = seq;
        assert!(parts.next().expect("channel").starts_with("ql:"), "{line}");
        assert!(parts.next().is_some(), "{line}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains(" ql:log ") && l.contains("job-b") && l.contains("\"put\"")),
        "{out}"
    );
    assert_eq!(cli.ok(&["events", "--after", &last.to_string()]), "");
    let first_json = cli.ok(&["--json", "events", "--after", "0"]);
    let first: Value =
        serde_json::from_str(first_json.lines().next().expect("an event")).expect("JSON line");
    assert_eq!(first["channel"], "ql:log");
    assert!(first["seq"].as_i64().expect("seq") >= 1);
}

/// Bad input: exit status by kind, a one-line message naming the field,
/// and no state change.
fn errors(cli: &Cli) {
    let before = cli.json(&["queues"]);
    let e = cli.fails(&["put", "q", "K", "--data", "{bad"], 2);
    assert!(e.contains("data") && e.contains("JSON"), "{e}");
    let e = cli.fails(&["put", "q", "K", "--delay", "-1"], 2);
    assert!(e.contains("delay"), "{e}");
    assert_eq!(
        cli.json(&["queues"]),
        before,
        "a refused put changes nothing"
    );
    let e = cli.fails(&["job", "show", "no-such-job"], 3);
    assert!(e.contains("no-such-job"), "{e}");
    let e = cli.fails(&["jobs", "--state", "bogus"], 2);
    assert!(e.contains("--state") && e.contains("bogus"), "{e}");
    let e = cli.fails(
        &["complete", "no-such-job", "--worker", "w", "--queue", "q"],
        3,
    );
    assert!(e.contains("no-such-job"), "{e}");
    let e = cli.fails(&["call", "pop", "q"], 2);
    assert!(e.contains("Arg \"worker\" missing"), "{e}");
    let e = cli.fails(&["stats", "q", "--date", "someday"], 2);
    assert!(e.contains("--date"), "{e}");
    // The limits of clew_core::limits, with the same wording everywhere.
    let before = cli.json(&["queues"]);
    let long = "q".repeat(256);
    let e = cli.fails(&["put", &long, "K"], 2);
    assert!(
        e.contains("Arg \"queue\" is 256 bytes long, at most 255 allowed"),
        "{e}"
    );
    let e = cli.fails(&["put", "q", "K", "--jid", "a\u{1b}[2J"], 2);
    assert!(
        e.contains("Arg \"jid\" must not contain control characters: U+001B"),
        "{e}"
    );
    let tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let e = cli.fails(&["put", "q", "K", "--tags", &tags.join(",")], 2);
    assert!(e.contains("65 tags, at most 64 allowed"), "{e}");
    assert_eq!(cli.json(&["queues"]), before, "refused puts change nothing");
}

#[test]
fn cli_against_a_store_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Db(dir.path().join("cli.db")),
    };
    round_trips(&cli);
    errors(&cli);
    // The default store is ./clew.db in the working directory.
    let default = Cli {
        dir: dir.path().to_owned(),
        target: Target::Db(PathBuf::from("clew.db")),
    };
    let plain = Run::from(
        base(dir.path())
            .args(["put", "q", "K", "--jid", "in-default"])
            .output()
            .expect("run"),
    );
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(dir.path().join("clew.db").exists());
    assert_eq!(default.json(&["job", "show", "in-default"])["queue"], "q");
}

#[test]
fn cli_against_a_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: server.url.clone(),
            env: false,
        },
    };
    round_trips(&cli);
    errors(&cli);
    // CLEW_URL works like --url, and no store file is created by the CLI.
    let via_env = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: server.url.clone(),
            env: true,
        },
    };
    via_env.ok(&["put", "envq", "K", "--jid", "from-env"]);
    assert_eq!(cli.json(&["job", "show", "from-env"])["queue"], "envq");
    assert!(!dir.path().join("clew.db").exists());
}

#[test]
fn cli_reports_an_unreachable_server_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: format!("http://127.0.0.1:{port}"),
            env: false,
        },
    };
    let e = cli.fails(&["queues"], 1);
    assert!(e.contains("cannot reach"), "{e}");
    let bad = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: "ftp://x".to_owned(),
            env: false,
        },
    };
    let e = bad.fails(&["queues"], 2);
    assert!(e.contains("--url"), "{e}");
    // Usage errors are one line too.
    let e = bad.fails(&["put", "q"], 2);
    assert!(e.contains("KLASS"), "{e}");
}

#[test]
fn cli_sends_the_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--token", "s3cret"]);
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: server.url.clone(),
            env: false,
        },
    };
    cli.fails(&["queues"], 1);
    cli.fails(&["--token", "wrong", "queues"], 1);
    let with = Run::from(
        cli.command(&["--json", "queues"])
            .env("CLEW_TOKEN", "s3cret")
            .output()
            .expect("run"),
    );
    assert_eq!(with.code, 0, "{}", with.stderr);
    assert_eq!(with.stdout.trim(), "[]");
}

#[test]
fn events_follow_prints_new_events_as_they_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Url {
            url: server.url.clone(),
            env: false,
        },
    };
    cli.ok(&["put", "q", "K", "--jid", "before"]);
    let mut follower = cli
        .command(&["events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events --follow");
    let stdout = follower.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no event mentioning {needle} within 10 s: {e}"),
            }
        }
    };
    assert!(wait_for("before").contains(" ql:log "));
    cli.ok(&["put", "q", "K", "--jid", "after"]);
    let line = wait_for("after");
    assert!(
        line.contains(" ql:log ") && line.contains("\"put\""),
        "{line}"
    );
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn many_jobs_cancel_and_retry_through_the_failed_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Cli {
        dir: dir.path().to_owned(),
        target: Target::Db(dir.path().join("many.db")),
    };
    let n = 130; // more than one batch of 100
    let mut all = Vec::new();
    for i in 0..n {
        all.push(format!("m{i}"));
    }
    // Put them through qless `put` quickly via one process each would be slow;
    // use the library instead, then drive the CLI.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client =
            clew::Client::connect(&format!("sqlite:{}", dir.path().join("many.db").display()))
                .expect("open");
        for jid in &all {
            let mut p = clew_core::command::PutParams::new("m", "K");
            p.jid = jid.clone();
            client.put(p).await.expect("put");
        }
        let popped = client.pop("m", "w", n).await.expect("pop");
        assert_eq!(popped.len(), n as usize);
        for j in &popped {
            client.fail(&j.jid, "w", "G", "boom").await.expect("fail");
        }
        client.close().await.expect("close");
    });
    assert_eq!(cli.json(&["failed"]), serde_json::json!({"G": n}));
    let retried = cli.json(&["failed", "G", "--retry-all"]);
    assert_eq!(retried.as_array().expect("array").len(), n as usize);
    assert_eq!(cli.json(&["failed"]), serde_json::json!({}));
    assert_eq!(queue(&cli.json(&["queues"]), "m")["waiting"], n);
    let mut args = vec!["--json", "cancel"];
    args.extend(all.iter().map(String::as_str));
    let cancelled = cli.ok(&args);
    let cancelled: Value = serde_json::from_str(&cancelled).expect("JSON");
    assert_eq!(cancelled.as_array().expect("array").len(), n as usize);
    assert_eq!(queue(&cli.json(&["queues"]), "m")["waiting"], 0);
}

#[test]
fn rust_client_against_a_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use clew_core::ErrorKind;
        let client = clew::Client::connect(&server.url).expect("connect");
        assert!(client.is_remote());
        let mut p = clew_core::command::PutParams::new("rq", "Work");
        p.data = r#"{"n": 1}"#.into();
        let jid = client.put(p).await.expect("put");
        let jobs = client.pop("rq", "rw", 10).await.expect("pop");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].jid, jid);
        assert_eq!(jobs[0].data, r#"{"n": 1}"#);
        assert_eq!(jobs[0].worker, "rw");
        assert!(client.heartbeat(&jid, "rw").await.expect("heartbeat") > 0);
        // Errors come back with their kind.
        let e = client.heartbeat(&jid, "other").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let e = client.qless("pop", &["rq".to_owned()]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(e.message(), "Pop(): Arg \"worker\" missing");
        let e = client.complete("nope", "rw", "rq", "{}").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(
            client
                .complete(&jid, "rw", "rq", "{}")
                .await
                .expect("complete"),
            "complete"
        );
        let job = client.get(&jid).await.expect("get").expect("exists");
        assert_eq!(job.state, "complete");
        assert!(client.get("nope").await.expect("get").is_none());
        // fail / retry / cancel through the typed helpers.
        let j2 = client
            .put(clew_core::command::PutParams::new("rq", "Work"))
            .await
            .expect("put");
        client.pop("rq", "rw", 1).await.expect("pop");
        assert_eq!(client.retry(&j2, "rq", "rw", 0.0).await.expect("retry"), 4);
        client.pop("rq", "rw", 1).await.expect("pop");
        client.fail(&j2, "rw", "G", "boom").await.expect("fail");
        let failed = client.get(&j2).await.expect("get").expect("exists");
        assert_eq!(failed.state, "failed");
        assert_eq!(failed.failure_group(), Some("G"));
        assert_eq!(
            client
                .cancel(std::slice::from_ref(&j2))
                .await
                .expect("cancel"),
            vec![j2.clone()]
        );
        let events = client.events_after(0).await.expect("events");
        assert!(events.iter().any(|e| e.message.contains(&jid)));
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    });
}
