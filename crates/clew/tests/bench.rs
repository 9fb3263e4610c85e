//! `clew bench`: the JSON report's shape and that every figure is a
//! positive number, at tiny sizes (never a speed assertion); `--ceiling` on
//! a given SQLite file; clear refusals. The PostgreSQL case skips without
//! PostgreSQL (see `clew_postgres::testing`), and fails with `CI=true`.

use std::process::{Command, Output};

use clew_postgres::testing::{skip_reason, TempSchema};
use serde_json::Value;

/// A `clew` command with nothing inherited that would change its target.
fn clew() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clew"));
    for var in ["CLEW_URL", "CLEW_DB", "CLEW_TOKEN", "CLEW_PG_POOL"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `clew ARGS...`.
fn run(args: &[&str]) -> Output {
    clew().args(args).output().expect("run clew")
}

/// The JSON report of a successful `clew bench ARGS... --json`.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert!(
        out.status.success(),
        "clew {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

/// Asserts that `figures` (an object) holds exactly `names`, each a
/// positive number.
fn assert_positive(figures: &Value, names: &[&str], what: &str) {
    let obj = figures
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {figures}"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, names, "{what}");
    for name in names {
        let v = obj[*name].as_f64().unwrap_or(-1.0);
        assert!(v > 0.0 && v.is_finite(), "{what}.{name}: {}", obj[*name]);
    }
}

/// Asserts a scenario's medians and its `repeat` runs of each figure.
fn assert_scenario(s: &Value, names: &[&str], jobs: u64, repeat: usize, what: &str) {
    assert_eq!(s["jobs"], jobs, "{what}: {s}");
    assert_positive(&s["median"], names, what);
    for name in names {
        let runs = s["runs"][*name].as_array().expect("runs");
        assert_eq!(runs.len(), repeat, "{what}.{name}: {runs:?}");
        for r in runs {
            assert!(r.as_f64().is_some_and(|v| v > 0.0), "{what}.{name}: {r}");
        }
    }
}

/// Checks the report of every scenario with `jobs` jobs and `repeat` runs.
fn assert_report(v: &Value, store: &str, jobs: u64, repeat: usize) {
    assert_eq!(v["store"], store, "{v}");
    assert_eq!(v["jobs"], jobs, "{v}");
    assert_eq!(v["repeat"], repeat as u64, "{v}");
    for key in ["workers", "batch", "concurrency"] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key}: {v}");
    }
    let scenarios = v["scenarios"].as_object().expect("scenarios");
    let names: Vec<&str> = scenarios.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["enqueue", "enqueue-batch", "lifecycle", "latency"],
        "{v}"
    );
    let rate = ["jobs_per_sec"];
    assert_scenario(&v["scenarios"]["enqueue"], &rate, jobs, repeat, "enqueue");
    assert_scenario(
        &v["scenarios"]["enqueue-batch"],
        &rate,
        jobs,
        repeat,
        "enqueue-batch",
    );
    assert_scenario(
        &v["scenarios"]["lifecycle"],
        &rate,
        jobs,
        repeat,
        "lifecycle",
    );
    let latency = ["p50_ms", "p99_ms", "max_ms"];
    assert_scenario(
        &v["scenarios"]["latency"],
        &latency,
        jobs,
        repeat,
        "latency",
    );
    let m = &v["scenarios"]["latency"]["median"];
    assert!(m["p50_ms"].as_f64() <= m["p99_ms"].as_f64(), "{m}");
    assert!(m["p99_ms"].as_f64() <= m["max_ms"].as_f64(), "{m}");
}

#[test]
fn every_scenario_reports_positive_figures_on_a_temporary_sqlite_store() {
    let v = bench_json(&["--jobs", "200", "--repeat", "1"]);
    assert_report(&v, "sqlite", 200, 1);
    assert!(v.get("ceiling").is_none(), "{v}");
}

#[test]
fn the_ceiling_runs_next_to_a_given_file_and_leaves_only_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("bench.db").display());
    let v = bench_json(&[
        "--db",
        &db,
        "--scenario",
        "lifecycle",
        "--jobs",
        "100",
        "--repeat",
        "2",
        "--workers",
        "2",
        "--batch",
        "7",
        "--ceiling",
    ]);
    assert_eq!(
        (v["workers"].as_u64(), v["batch"].as_u64()),
        (Some(2), Some(7))
    );
    let names: Vec<&String> = v["scenarios"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["lifecycle"], "{v}");
    assert_scenario(
        &v["scenarios"]["lifecycle"],
        &["jobs_per_sec"],
        100,
        2,
        "lifecycle",
    );
    assert_scenario(&v["ceiling"], &["jobs_per_sec"], 100, 2, "ceiling");
    let ratio = v["ceiling"]["ratio"].as_f64().expect("ratio");
    assert!(ratio > 0.0 && ratio.is_finite(), "{v}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with("-wal") && !name.ends_with("-shm"))
        .collect();
    left.sort();
    assert_eq!(left, ["bench.db"]);
}

#[test]
fn the_table_names_each_scenario_and_figure() {
    let out = run(&[
        "bench",
        "--jobs",
        "50",
        "--repeat",
        "1",
        "--scenario",
        "enqueue",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SCENARIO") && text.contains("MEDIAN"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("enqueue") && l.contains("jobs/s")),
        "{text}"
    );
    assert!(!text.contains("lifecycle"), "{text}");
}

#[test]
fn bad_options_are_refused_clearly() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["--scenario", "nope"],
            "--scenario: expected enqueue, lifecycle, latency or depth",
        ),
        (&["--depths", "0,10", "--scenario", "depth"], "--depths"),
        (&["--put-batch", "0"], "--put-batch"),
        (
            &["--server", "--url", "http://127.0.0.1:1"],
            "--server: starts a server of its own",
        ),
        (
            &["--url", "http://127.0.0.1:1", "--ceiling"],
            "--ceiling: not with --url",
        ),
        (&["--url", "127.0.0.1:1"], "--url: expected http://"),
        (&["--jobs", "0"], "--jobs"),
        (&["--repeat", "0"], "--repeat"),
        (&["--ceiling", "--scenario", "latency"], "--ceiling"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn every_scenario_runs_on_postgres() {
    if let Some(line) = skip_reason() {
        println!("{line}");
        return;
    }
    let schema = TempSchema::new();
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let db = format!("{}{sep}schema={}", schema.url(), schema.name());
    let v = bench_json(&["--db", &db, "--jobs", "60", "--repeat", "1"]);
    assert_report(&v, "postgres", 60, 1);
}

/// The pids of live processes whose environment holds `mark` (what a bench
/// run with that variable passes on to every child it starts).
fn processes_marked(mark: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        // A zombie (exited, not yet reaped) has an empty environment.
        if env.split(|b| *b == 0).any(|var| var == mark.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// `clew bench ARGS... --json` with `CLEW_BENCH_TEST_MARK` set to a fresh
/// value and the temporary directory in `tmp`; the report and the mark.
fn bench_json_marked(args: &[&str], tmp: &std::path::Path) -> (Value, String) {
    let mark = format!("CLEW_BENCH_TEST_MARK={}", uuid_like());
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let (key, value) = mark.split_once('=').unwrap();
    let out = clew()
        .args(&all)
        .env(key, value)
        .env("TMPDIR", tmp)
        .output()
        .expect("run clew");
    assert!(
        out.status.success(),
        "clew {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).expect("the report is JSON"),
        mark,
    )
}

/// A value unique to this call.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts the depth rows of a report at `depths` with `jobs` and `repeat`.
fn assert_depths(v: &Value, depths: &[u64], jobs: u64, repeat: usize) {
    for d in depths {
        let s = &v["scenarios"][format!("depth-{d}")];
        assert_eq!(s["depth"], *d, "{v}");
        assert_scenario(
            s,
            &["put_per_sec", "pop_per_sec"],
            jobs,
            repeat,
            &format!("depth-{d}"),
        );
    }
    for key in ["put_ratio", "pop_ratio"] {
        let r = v["depth"][key].as_f64().unwrap_or(-1.0);
        assert!(r > 0.0 && r.is_finite(), "{key}: {v}");
    }
}

#[test]
fn depth_reports_put_and_pop_rates_at_each_depth_and_their_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = bench_json_marked(
        &[
            "--scenario",
            "depth",
            "--depths",
            "1500,20",
            "--jobs",
            "40",
            "--repeat",
            "2",
            "--workers",
            "3",
            "--batch",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(v["mode"], "in-process", "{v}");
    let names: Vec<&String> = v["scenarios"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["depth-20", "depth-1500"], "{v}");
    assert_depths(&v, &[20, 1500], 40, 2);
    assert_eq!(v["depth"]["depths"], serde_json::json!([20, 1500]), "{v}");
    assert!(v["depth"]["server_rss_kb"].is_null(), "{v}");
    // The temporary stores are gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn through_a_started_server_with_worker_processes_and_none_left_after() {
    let dir = tempfile::tempdir().unwrap();
    let (v, mark) = bench_json_marked(
        &[
            "--server",
            "--workers",
            "2",
            "--batch",
            "10",
            "--jobs",
            "300",
            "--repeat",
            "1",
            "--scenario",
            "lifecycle",
            "--scenario",
            "enqueue",
            "--scenario",
            "latency",
            "--scenario",
            "depth",
            "--depths",
            "10,300",
            "--ceiling",
        ],
        dir.path(),
    );
    assert_eq!(
        (&v["mode"], &v["store"]),
        (&"server".into(), &"sqlite".into())
    );
    let rate = ["jobs_per_sec"];
    for name in ["lifecycle", "enqueue", "enqueue-batch"] {
        assert_scenario(&v["scenarios"][name], &rate, 300, 1, name);
    }
    let latency = &v["scenarios"]["latency"];
    assert_scenario(latency, &["p50_ms", "p99_ms", "max_ms"], 300, 1, "latency");
    assert_scenario(&v["ceiling"], &rate, 300, 1, "ceiling");
    assert_depths(&v, &[10, 300], 300, 1);
    let rss = v["depth"]["server_rss_kb"].as_u64().unwrap_or(0);
    assert!(rss > 0, "{v}");
    // Every server and worker the bench started has exited, and its files
    // (stores, logs) are gone.
    let left = processes_marked(&mark);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_interrupted_server_bench_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let mark = format!("CLEW_BENCH_TEST_MARK={}", uuid_like());
    let (key, value) = mark.split_once('=').unwrap();
    let child = clew()
        .args([
            "bench",
            "--server",
            "--workers",
            "2",
            "--scenario",
            "latency",
            "--jobs",
            "1000",
            "--repeat",
            "5",
        ])
        .env(key, value)
        .env("TMPDIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn clew bench");
    // Wait until the server and the workers run (children carry the mark).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while processes_marked(&mark).len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "children did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = processes_marked(&mark);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes left: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_running_server_given_with_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("served.db").display());
    let mut server = clew()
        .args(["--db", &db, "server", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn clew server");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("clew server listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let v = bench_json(&[
        "--url",
        &url,
        "--scenario",
        "enqueue",
        "--scenario",
        "lifecycle",
        "--scenario",
        "depth",
        "--depths",
        "5,120",
        "--workers",
        "1",
        "--jobs",
        "50",
        "--repeat",
        "1",
    ]);
    // The depth scenario leaves nothing waiting on a server of the user's.
    let out = run(&["--url", &url, "call", "queues"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queues: Value = serde_json::from_slice(&out.stdout).expect("queues JSON");
    let queues = queues.as_array().expect("queues");
    let depth: Vec<&Value> = queues
        .iter()
        .filter(|q| q["name"].as_str().is_some_and(|n| n.contains("-depth-")))
        .collect();
    assert_eq!(depth.len(), 2, "{queues:?}");
    for q in depth {
        assert_eq!(q["waiting"], 0, "{q}");
    }
    assert_eq!((&v["mode"], &v["store"]), (&"url".into(), &"server".into()));
    for name in ["enqueue", "enqueue-batch", "lifecycle"] {
        assert_scenario(&v["scenarios"][name], &["jobs_per_sec"], 50, 1, name);
    }
    assert_depths(&v, &[5, 120], 50, 1);
    assert!(v["depth"]["server_rss_kb"].is_null(), "{v}");
}

#[test]
fn the_ceiling_runs_on_postgres_in_a_schema_it_drops() {
    if let Some(line) = skip_reason() {
        println!("{line}");
        return;
    }
    let schema = TempSchema::new();
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let db = format!("{}{sep}schema={}", schema.url(), schema.name());
    let v = bench_json(&[
        "--db",
        &db,
        "--scenario",
        "lifecycle",
        "--jobs",
        "80",
        "--repeat",
        "2",
        "--workers",
        "3",
        "--batch",
        "7",
        "--put-batch",
        "9",
        "--ceiling",
    ]);
    assert_eq!(v["store"], "postgres", "{v}");
    let rate = ["jobs_per_sec"];
    assert_scenario(&v["scenarios"]["lifecycle"], &rate, 80, 2, "lifecycle");
    assert_scenario(&v["ceiling"], &rate, 80, 2, "ceiling");
    let ratio = v["ceiling"]["ratio"].as_f64().expect("ratio");
    assert!(ratio > 0.0 && ratio.is_finite(), "{v}");
    // The ceiling's schemas are gone (its names start with this prefix).
    let mut client = schema.connect().expect("connect");
    let left = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'clew\\_bench\\_ceiling\\_%'",
            &[],
        )
        .expect("query");
    assert!(left.is_empty(), "{} ceiling schema(s) left", left.len());
}
