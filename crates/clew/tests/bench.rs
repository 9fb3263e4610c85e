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
    assert_eq!(names, ["enqueue", "lifecycle", "latency"], "{v}");
    let rate = ["jobs_per_sec"];
    assert_scenario(&v["scenarios"]["enqueue"], &rate, jobs, repeat, "enqueue");
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
    let cases: [(&[&str], &str); 5] = [
        (
            &["--scenario", "nope"],
            "--scenario: expected enqueue, lifecycle or latency",
        ),
        (&["--jobs", "0"], "--jobs"),
        (&["--repeat", "0"], "--repeat"),
        (&["--ceiling", "--scenario", "latency"], "--ceiling"),
        (
            &["--db", "postgres://u@127.0.0.1:1/db", "--ceiling"],
            "--ceiling: only on a SQLite store",
        ),
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
