//! The short form of the chaos test (`clew chaos`, see README
//! "Durability"): a few SIGKILL cycles of the server and the workers on
//! each store, then the run's own checks (no acknowledged job lost, no
//! mismatch between states, histories, counts, stats and events). The
//! full runs (50 cycles per store) are run by hand; their figures are in
//! the README.

mod common;

use clew_postgres::testing::{skip_reason, TempSchema};
use common::clew;

/// The figures of a summary line `chaos: store=S cycles=N ... key=value`.
fn figure(line: &str, key: &str) -> u64 {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.trim_end_matches('s').parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}")) as u64
}

/// Runs `clew [--db DB] chaos ARGS...`; its summary line.
fn chaos(db: Option<&str>, args: &[&str]) -> String {
    let mut cmd = clew();
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    let out = cmd
        .arg("chaos")
        .args(args)
        .output()
        .expect("run clew chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "clew chaos failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("chaos: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"))
        .to_owned();
    eprintln!("{line}");
    line
}

fn check(line: &str, store: &str, cycles: u64) {
    assert!(line.contains(&format!("store={store} ")), "{line}");
    assert_eq!(figure(line, "cycles"), cycles, "{line}");
    assert!(figure(line, "acknowledged") > 0, "{line}");
    assert_eq!(figure(line, "lost"), 0, "{line}");
    assert_eq!(figure(line, "mismatches"), 0, "{line}");
    assert!(line.contains("(all after lock expiry)"), "{line}");
}

#[test]
fn chaos_on_sqlite_loses_nothing() {
    let line = chaos(None, &["--cycles", "8", "--seed", "11"]);
    check(&line, "sqlite", 8);
}

#[test]
fn chaos_on_postgres_loses_nothing() {
    if let Some(reason) = skip_reason() {
        eprintln!("{reason}");
        return;
    }
    let schema = TempSchema::new();
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let db = format!("{}{sep}schema={}", schema.url(), schema.name());
    let line = chaos(Some(&db), &["--cycles", "8", "--seed", "12"]);
    check(&line, "postgres", 8);
}

#[test]
fn chaos_refuses_bad_options_by_name() {
    for (args, flag) in [
        (&["--workers", "0"][..], "--workers"),
        (&["--seconds", "0"][..], "--seconds"),
        (&["--producers", "100"][..], "--producers"),
    ] {
        let out = clew()
            .arg("chaos")
            .args(args)
            .output()
            .expect("run clew chaos");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}
