//! `clew work` as real processes against a real `clew server`: handlers in
//! shell and Python, a worker killed mid-job, a hanging handler, the stop,
//! pause and resume signals, and a supervised pool.
//!
//! The handlers are the scripts in `fixtures/`; they record what they do
//! in files, which the tests read. No test sleeps for a fixed time: each
//! waits for the event it needs, with a deadline.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Polls `f` every 10 ms until it returns `Some`, for up to [`DEADLINE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `clew` command with nothing inherited that would change its target.
fn clew() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    for var in [
        "CLEW_URL",
        "CLEW_DB",
        "CLEW_TOKEN",
        "CLEW_WORKER_CHILD",
        "CLEW_WORKER_PARENT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CLEW_LOG", "info");
    cmd
}

/// Sends `sig` (a `kill` option such as `-TERM`) to `pid`.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// Whether `pid` is a live process (a zombie is dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The process name (`comm`) of `pid`, as `ps` shows it.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default()
}

/// The live children of `pid`.
fn children(pid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] != "Z" && fields[1] == pid.to_string() {
            out.insert(child);
        }
    }
    out
}

/// A `clew server` on a temporary store, on a free loopback port.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server whose locks last `heartbeat` seconds and are given
    /// to another worker as soon as they expire.
    fn start(heartbeat: u32) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = clew()
            .arg("--db")
            .arg(format!("sqlite:{}", dir.path().join("clew.db").display()))
            .args(["server", "--listen", "127.0.0.1:0"])
            .env("CLEW_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn clew server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("clew server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let server = Server { child, url, dir };
        server.cli(&["config", "set", "heartbeat", &heartbeat.to_string()]);
        server.cli(&["config", "set", "grace-period", "0"]);
        std::fs::create_dir(server.out()).expect("out dir");
        server
    }

    /// Where the handlers write what they did.
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Runs `clew --url URL --json ARGS`; its stdout (it must succeed).
    fn cli(&self, args: &[&str]) -> String {
        let out = clew()
            .args(["--url", &self.url, "--json"])
            .args(args)
            .output()
            .expect("run clew");
        assert!(
            out.status.success(),
            "clew {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Puts a job of class `klass` into `q` with `jid`.
    fn put(&self, jid: &str, klass: &str, data: &str, retries: u32) {
        self.cli(&[
            "put",
            "q",
            klass,
            "--jid",
            jid,
            "--data",
            data,
            "--retries",
            &retries.to_string(),
        ]);
    }

    fn job(&self, jid: &str) -> Value {
        serde_json::from_str(&self.cli(&["get", jid])).expect("job JSON")
    }

    fn state(&self, jid: &str) -> String {
        self.job(jid)["state"].as_str().unwrap_or("").to_owned()
    }

    /// Waits until `jid` is in `state`; the job.
    fn wait_state(&self, jid: &str, state: &str) -> Value {
        wait_for(&format!("{jid} to be {state}"), || {
            let job = self.job(jid);
            (job["state"] == state).then_some(job)
        })
    }

    /// The lines of the file `name` the handlers wrote (none if absent).
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.out().join(name))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Lets the `Slow` job `jid` finish.
    fn release(&self, jid: &str) {
        std::fs::write(self.out().join(format!("release-{jid}")), "").expect("release file");
    }

    /// Starts `clew work` on queue `q` with `args` (before --exec) and
    /// the handler `exec`.
    fn worker(&self, args: &[&str], exec: &[&str]) -> Worker {
        let mut with_exec = args.to_vec();
        with_exec.push("--exec");
        with_exec.extend_from_slice(exec);
        self.worker_with(&with_exec)
    }

    /// Starts `clew work` on queue `q` with `args` (the handler included).
    fn worker_with(&self, args: &[&str]) -> Worker {
        let log = self.dir.path().join(format!("worker-{}.log", uuid_like()));
        let mut cmd = clew();
        cmd.args([
            "--url",
            &self.url,
            "work",
            "--queue",
            "q",
            "--poll-interval",
            "0.05",
        ])
        .args(args)
        .env("WORK_OUT", self.out())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("spawn clew work");
        Worker { child, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name unique within this test run.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A running `clew work` process; killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Its stderr so far (log and shutdown report).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for it to exit; its status.
    fn wait_exit(&mut self) -> ExitStatus {
        wait_for("the worker to exit", || {
            self.child.try_wait().expect("try_wait")
        })
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits until its process name is `name`.
    fn wait_title(&self, name: &str) {
        let pid = self.pid();
        wait_for(&format!("process title {name:?}"), || {
            (comm(pid) == name).then_some(())
        });
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn history_whats(job: &Value) -> Vec<String> {
    job["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|e| e["what"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn sh_handler() -> Vec<String> {
    vec!["sh".into(), fixture("handler.sh").display().to_string()]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_shell_handler_completes_fails_and_retries_through_its_exit_status() {
    let server = Server::start(60);
    server.put("ok", "Ok", r#"{"n": 1}"#, 5);
    server.put("fail", "Fail", "{}", 5);
    server.put("retry", "Retry", "{}", 1);
    let exec = sh_handler();
    let mut worker = server.worker(&["--backoff-base", "0", "--concurrency", "2"], &args(&exec));

    let ok = server.wait_state("ok", "complete");
    let whats = history_whats(&ok);
    assert!(whats.contains(&"shell says hi".to_owned()), "{whats:?}");
    assert!(whats.contains(&"progress".to_owned()), "{whats:?}");
    let entry = ok["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["what"] == "shell says hi"))
        .expect("the log entry")
        .clone();
    assert_eq!(entry["lang"], "sh");

    let failed = server.wait_state("fail", "failed");
    assert_eq!(failed["failure"]["group"], "Fail:exit-3");
    let message = failed["failure"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("shell failure: no such thing"),
        "{message}"
    );
    assert!(message.contains("starting fail"), "{message}");
    assert_eq!(failed["remaining"], 5, "a failure spends no retry");

    // Exit 75 retries: one retry allowed, so the second attempt runs out.
    let retried = server.wait_state("retry", "failed");
    assert_eq!(retried["failure"]["group"], "failed-retries-q");
    let pops = history_whats(&retried)
        .iter()
        .filter(|w| *w == "popped")
        .count();
    assert_eq!(pops, 2, "{:?}", retried["history"]);

    assert_eq!(server.lines("done").len(), 1);
    worker.signal("-TERM");
    assert!(worker.wait_exit().success(), "{}", worker.log());
    let log = worker.log();
    assert!(log.contains("1 completed, 2 failed"), "{log}");
}

#[test]
fn a_python_handler_completes_fails_and_retries_through_its_exit_status() {
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !python {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is required on CI"
        );
        println!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start(60);
    server.put("py-ok", "Py", r#"{"action": "complete", "n": 1}"#, 5);
    server.put("py-fail", "Py", r#"{"action": "fail"}"#, 5);
    server.put("py-retry", "Py", r#"{"action": "retry"}"#, 2);
    let script = fixture("handler.py").display().to_string();
    let mut worker = server.worker(
        &["--backoff-base", "0", "--reserver", "round-robin"],
        &["python3", &script],
    );

    let ok = server.wait_state("py-ok", "complete");
    let data: Value = serde_json::from_str(ok["data"].as_str().expect("data text")).expect("JSON");
    assert_eq!(data["answer"], 42);
    assert_eq!(data["n"], 1);
    let whats = history_whats(&ok);
    assert!(whats.contains(&"python says hi".to_owned()), "{whats:?}");
    assert!(whats.contains(&"progress".to_owned()), "{whats:?}");

    let failed = server.wait_state("py-fail", "failed");
    assert_eq!(failed["failure"]["group"], "Py:exit-1");
    let message = failed["failure"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("ValueError: python handler failed on purpose"),
        "{message}"
    );
    assert!(message.contains("Traceback"), "{message}");

    let retried = server.wait_state("py-retry", "failed");
    assert_eq!(retried["failure"]["group"], "failed-retries-q");
    let message = retried["failure"]["message"].as_str().unwrap_or("");
    assert!(message.contains("the service is busy"), "{message}");
    let pops = history_whats(&retried)
        .iter()
        .filter(|w| *w == "popped")
        .count();
    assert_eq!(pops, 3, "two retries, then out: {:?}", retried["history"]);

    worker.signal("-TERM");
    assert!(worker.wait_exit().success(), "{}", worker.log());
}

#[test]
fn a_worker_killed_mid_job_loses_it_to_another_worker_which_completes_it_once() {
    let server = Server::start(1);
    server.put("slow", "Slow", "{}", 5);
    let exec = sh_handler();
    let mut a = server.worker(&["--name", "worker-a"], &args(&exec));
    let started = wait_for("worker-a to start the job", || {
        server.lines("started").first().cloned()
    });
    let fields: Vec<&str> = started.split_whitespace().collect();
    assert_eq!(fields[..2], ["slow", "worker-a"]);
    let orphan: u32 = fields[2].parse().expect("pid");

    let b = server.worker(&["--name", "worker-b"], &args(&exec));
    a.signal("-KILL");
    a.wait_exit();
    // worker-a's program notices at its next write that its worker is gone.
    wait_for("worker-a's program to die", || {
        (!alive(orphan)).then_some(())
    });

    // The lock (1 s) expires and worker-b gets the job.
    let second = wait_for("worker-b to start the job", || {
        server.lines("started").get(1).cloned()
    });
    assert!(second.starts_with("slow worker-b "), "{second}");
    assert_eq!(server.state("slow"), "running");
    server.release("slow");
    let job = server.wait_state("slow", "complete");
    let poppers: Vec<&str> = job["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["what"] == "popped")
        .filter_map(|h| h["worker"].as_str())
        .collect();
    assert_eq!(poppers, ["worker-a", "worker-b"]);
    assert_eq!(server.lines("done"), ["slow worker-b"]);
    let dones = history_whats(&job).iter().filter(|w| *w == "done").count();
    assert_eq!(dones, 1, "{:?}", job["history"]);
    drop(b);
}

#[test]
fn a_hanging_handler_is_timed_out_killed_and_retried() {
    let server = Server::start(60);
    server.put("hang", "Hang", "{}", 3);
    let exec = sh_handler();
    let _worker = server.worker(&["--timeout", "1", "--backoff-base", "0"], &args(&exec));
    let job = server.wait_state("hang", "complete");
    let starts = server.lines("hang-starts");
    assert_eq!(starts.len(), 2, "{starts:?}");
    // The first attempt's program (it hung in `sleep`) was killed.
    let first: u32 = starts[0]
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("pid");
    assert!(!alive(first), "the timed-out program still runs");
    let pops = history_whats(&job)
        .iter()
        .filter(|w| *w == "popped")
        .count();
    assert_eq!(pops, 2, "{:?}", job["history"]);
    assert_eq!(server.lines("done").len(), 1);
}

#[test]
fn quit_waits_for_the_running_job_then_exits() {
    let server = Server::start(60);
    server.put("slow", "Slow", "{}", 5);
    let exec = sh_handler();
    let mut worker = server.worker(&[], &args(&exec));
    wait_for("the job to start", || {
        server.lines("started").first().cloned()
    });
    worker.wait_title("clew:run 1/1");
    worker.signal("-QUIT");
    worker.wait_title("clew:stopping");
    assert!(worker.running(), "QUIT must wait for the running job");
    assert_eq!(server.state("slow"), "running");
    server.release("slow");
    let status = worker.wait_exit();
    assert!(status.success(), "{}", worker.log());
    let job = server.job("slow");
    assert_eq!(job["state"], "complete");
    assert_eq!(server.lines("done").len(), 1);
    let log = worker.log();
    assert!(log.contains("1 completed"), "{log}");
    assert!(!log.contains("unfinished job"), "{log}");
}

#[test]
fn term_releases_the_running_job_at_once() {
    // Locks of a minute: only a release can put the job back quickly.
    let server = Server::start(60);
    server.put("slow", "Slow", "{}", 5);
    let exec = sh_handler();
    let mut worker = server.worker(&["--grace", "5"], &args(&exec));
    let started = wait_for("the job to start", || {
        server.lines("started").first().cloned()
    });
    let program: u32 = started
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .expect("pid");
    worker.signal("-TERM");
    let status = worker.wait_exit();
    assert!(status.success(), "{}", worker.log());
    let job = server.job("slow");
    assert_eq!(job["state"], "waiting", "{job}");
    assert_eq!(job["remaining"], 5, "a release spends no retry");
    assert!(
        history_whats(&job).contains(&"released".to_owned()),
        "{job}"
    );
    wait_for("the handler program to be killed", || {
        (!alive(program)).then_some(())
    });
    let log = worker.log();
    assert!(
        log.contains("unfinished job slow: released back to its queue"),
        "{log}"
    );
    assert!(server.lines("done").is_empty());
}

#[test]
fn usr2_pauses_and_cont_resumes() {
    let server = Server::start(60);
    let exec = sh_handler();
    let mut worker = server.worker(&[], &args(&exec));
    worker.wait_title("clew:waiting");
    worker.signal("-USR2");
    worker.wait_title("clew:paused");
    server.put("later", "Ok", "{}", 5);
    // A paused worker polls no more: the job stays waiting (watched for
    // 40 poll intervals).
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(2) {
        assert_eq!(server.state("later"), "waiting");
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.signal("-CONT");
    server.wait_state("later", "complete");
    worker.wait_title("clew:waiting");
    worker.signal("-INT");
    assert!(worker.wait_exit().success(), "{}", worker.log());
}

#[test]
fn hup_reopens_the_log_file() {
    let server = Server::start(60);
    let exec = sh_handler();
    let log = server.dir.path().join("work.log");
    let rotated = server.dir.path().join("work.log.1");
    let mut worker = server.worker(
        &["--log-file", log.to_str().expect("utf-8 path")],
        &args(&exec),
    );
    wait_for("the log file to be written", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains("worker started"))
    });
    std::fs::rename(&log, &rotated).expect("rotate");
    worker.signal("-HUP");
    wait_for("a new log file", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains("reopened the log file"))
    });
    worker.signal("-TERM");
    assert!(worker.wait_exit().success());
    let new = std::fs::read_to_string(&log).expect("log");
    assert!(new.contains("stopped: 0 completed"), "{new}");
    let old = std::fs::read_to_string(&rotated).expect("rotated log");
    assert!(!old.contains("stopped:"), "{old}");
}

#[test]
fn a_pool_of_three_restarts_a_killed_child_and_stops_on_term() {
    let server = Server::start(60);
    let exec = sh_handler();
    let mut pool = server.worker(&["--processes", "3", "--name", "pool"], &args(&exec));
    let parent = pool.pid();
    let first = wait_for("three worker processes", || {
        let c = children(parent);
        (c.len() == 3 && comm(parent) == "clew:pool 3/3").then_some(c)
    });
    for &pid in &first {
        wait_for("a child's title", || {
            comm(pid).starts_with("clew:").then_some(())
        });
    }
    let victim = *first.iter().next().expect("a child");
    signal(victim, "-KILL");
    let second = wait_for("a replacement worker process", || {
        let c = children(parent);
        (c.len() == 3 && !c.contains(&victim)).then_some(c)
    });
    assert_eq!(
        first.intersection(&second).count(),
        2,
        "{first:?} {second:?}"
    );

    // The pool works: jobs are spread over named children.
    for i in 0..6 {
        server.put(&format!("job-{i}"), "Ok", "{}", 5);
    }
    for i in 0..6 {
        server.wait_state(&format!("job-{i}"), "complete");
    }
    let names: BTreeSet<String> = server
        .lines("done")
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| ["pool-1", "pool-2", "pool-3"].contains(&n.as_str())),
        "{names:?}"
    );

    pool.signal("-TERM");
    assert!(pool.wait_exit().success(), "{}", pool.log());
    for pid in second {
        assert!(!alive(pid), "child {pid} outlived the pool");
    }
    let log = pool.log();
    assert!(log.contains("restarting"), "{log}");
    assert!(log.contains("every worker process has exited"), "{log}");
}

#[test]
fn bad_options_are_refused_with_a_clear_message() {
    for (args, expect) in [
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--reserver", "sideways"], "reserver"),
        (vec!["--timeout=-1"], "--timeout"),
        (vec!["--processes", "0"], "--processes"),
        (
            vec!["--max-output-line", "0"],
            "--max-output-line: expected 1 to 67108864 bytes, got 0",
        ),
        (
            vec!["--stderr-tail", "2000000"],
            "--stderr-tail: expected 1 to 1048576 bytes, got 2000000",
        ),
        (vec!["--exec", "/nonexistent/handler"], "--exec"),
        (vec!["--exec", "no-such-handler-program"], "on PATH"),
        (
            vec!["--noop", "--exec", "true"],
            "--noop: cannot be used with --exec",
        ),
        (
            vec!["--noop", "--shell"],
            "--noop: cannot be used with --shell",
        ),
    ] {
        let exec = if args.contains(&"--exec") || args.contains(&"--noop") {
            vec![]
        } else {
            vec!["--exec", "true"]
        };
        let out = clew()
            .args(["--db", "sqlite:unused.db", "work", "--queue", "q"])
            .args(&args)
            .args(exec)
            .output()
            .expect("run clew work");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn shell_mode_runs_a_command_line_that_can_send_the_job_on() {
    let server = Server::start(60);
    server.put("onward", "Any", r#"{"n": 1}"#, 5);
    let mut worker = server.worker(
        &["--shell"],
        &[
            r#"echo "clew:data {\"jid\": \"$CLEW_JID\", \"arg\": \"$1\"}" | tr -d '\r'; echo clew:next q2"#,
            "zero",
            "one",
        ],
    );
    let job = wait_for("the job to move to q2", || {
        let job = server.job("onward");
        (job["queue"] == "q2" && job["state"] == "waiting").then_some(job)
    });
    let data: Value = serde_json::from_str(job["data"].as_str().expect("data")).expect("JSON");
    assert_eq!(data, serde_json::json!({"jid": "onward", "arg": "one"}));
    worker.signal("-TERM");
    assert!(worker.wait_exit().success());
}

#[test]
fn the_children_of_a_killed_pool_stop_and_release_their_jobs() {
    let server = Server::start(60);
    server.put("slow", "Slow", "{}", 5);
    let exec = sh_handler();
    let mut pool = server.worker(&["--processes", "2"], &args(&exec));
    let parent = pool.pid();
    let kids = wait_for("two worker processes", || {
        let c = children(parent);
        (c.len() == 2).then_some(c)
    });
    wait_for("the job to start", || {
        server.lines("started").first().cloned()
    });
    pool.signal("-KILL");
    pool.wait_exit();
    // Orphaned, the children stop now: the job is released, not left to
    // its (one minute) lock.
    server.wait_state("slow", "waiting");
    for pid in kids {
        wait_for("an orphaned child to exit", || (!alive(pid)).then_some(()));
    }
    assert_eq!(server.job("slow")["remaining"], 5);
}

#[test]
fn a_handler_is_required() {
    let out = clew()
        .args(["--db", "sqlite:unused.db", "work", "--queue", "q"])
        .output()
        .expect("run clew work");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--exec: expected PROGRAM"), "{err}");
    assert!(err.contains("--noop"), "names the alternative: {err}");
}

#[test]
fn noop_can_come_from_the_config_file() {
    let server = Server::start(60);
    server.put("from-config", "Anything", "{}", 5);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("work.toml");
    std::fs::write(&config, "noop = true\nconcurrency = 2\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    let mut worker = server.worker_with(&["--config", &config]);
    server.wait_state("from-config", "complete");
    worker.signal("-QUIT");
    assert!(worker.wait_exit().success(), "{}", worker.log());
    assert!(server.lines("done").is_empty(), "no program ran");
}

#[test]
fn noop_completes_every_job_through_the_worker_runtime() {
    const JOBS: usize = 60;
    let server = Server::start(60);
    let jids: Vec<String> = (0..JOBS).map(|i| format!("noop-{i}")).collect();
    for jid in &jids {
        server.put(jid, "Anything", "{}", 5);
    }
    let mut worker = server.worker_with(&["--noop", "--concurrency", "16"]);
    for jid in &jids {
        let job = server.wait_state(jid, "complete");
        let whats = history_whats(&job);
        assert_eq!(
            whats.iter().filter(|w| *w == "done").count(),
            1,
            "{jid}: {whats:?}"
        );
    }
    let workers: Value = serde_json::from_str(&server.cli(&["workers"])).expect("workers JSON");
    assert!(
        workers.to_string().contains(&format!("{}", worker.pid())),
        "the worker shows in the workers list: {workers}"
    );
    worker.signal("-QUIT");
    let status = worker.wait_exit();
    assert!(status.success(), "{}", worker.log());
    let log = worker.log();
    assert!(log.contains(&format!("{JOBS} completed")), "{log}");
    assert!(!log.contains("unfinished job"), "{log}");
    assert!(server.lines("done").is_empty(), "no program ran");
}
