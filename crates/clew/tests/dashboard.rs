//! Browser tests of the dashboard: each `tests/browser/<name>.test.mjs`
//! runs in Debian's chromium (headless, through playwright-core) against
//! its own `clew server --test-mode` on a fresh SQLite file.
//!
//! Needs `node`, `npm` and `chromium` (or `chromium-browser`) on the PATH;
//! `npm ci` is run in `tests/browser` when its `node_modules` is missing.
//! Where one of them is missing the tests say so and pass without running,
//! except under `CI=true`, where they fail. Screenshots go to
//! `target/tmp/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

mod common;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// chromium's path, or why the tests cannot run.
fn prerequisites() -> Result<PathBuf, String> {
    static READY: OnceLock<Mutex<Option<Result<PathBuf, String>>>> = OnceLock::new();
    let cell = READY.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = guard.as_ref() {
        return r.clone();
    }
    let r = check_prerequisites();
    *guard = Some(r.clone());
    r
}

fn check_prerequisites() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("CLEW_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which("chromium"))
        .or_else(|| which("chromium-browser"))
        .ok_or("no chromium on the PATH (Debian: apt-get install chromium)")?;
    which("node").ok_or("no node on the PATH")?;
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").is_dir() {
        let npm = which("npm").ok_or("no npm on the PATH")?;
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm ci: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in tests/browser failed: {status}"));
        }
    }
    Ok(chromium)
}

/// Runs `tests/browser/<name>.test.mjs` against a fresh server started
/// with `extra` flags (`token`: the server's API token, if any).
fn run(name: &str, token: Option<&str>) {
    let chromium = match prerequisites() {
        Ok(c) => c,
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED dashboard browser test {name}: {why}");
            return;
        }
        Err(why) => panic!("dashboard browser test {name} cannot run under CI=true: {why}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("clew.db");
    let mut extra = vec!["--test-mode"];
    if let Some(t) = token {
        extra.extend(["--token", t]);
    }
    let server = common::Server::start(&db, &extra);
    let url = server.url.clone();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join(format!("{name}.test.mjs")))
        .current_dir(browser_dir())
        .env("CLEW_URL", &url)
        .env("CLEW_CHROMIUM", &chromium)
        .env("CLEW_SCREENSHOTS", &shots);
    if let Some(t) = token {
        cmd.env("CLEW_TOKEN", t);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn overview() {
    run("overview", None);
}

#[test]
fn queue() {
    run("queue", None);
}

#[test]
fn job() {
    run("job", None);
}

#[test]
fn failed() {
    run("failed", None);
}

#[test]
fn workers() {
    run("workers", None);
}

/// Tracked, tags, recurring and config pages.
#[test]
fn lists() {
    run("lists", None);
}

#[test]
fn events() {
    run("events", None);
}

/// Throttles page, and a held-back job's state, throttles and why.
#[test]
fn throttles() {
    run("throttles", None);
}

#[test]
fn batches() {
    run("batches", None);
}

#[test]
fn security() {
    run("security", None);
}

#[test]
fn token_login() {
    run("auth", Some("dashboard-s3cret"));
}

/// The dashboard's scripts build the page from text nodes only: none of
/// them may use an HTML-parsing sink or eval.
#[test]
fn scripts_use_no_html_sinks() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clew-server/ui");
    let mut files = Vec::new();
    let mut stack = vec![ui];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read ui dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "js" || x == "html") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 3, "found the dashboard's files: {files:?}");
    let sinks = [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "javascript:",
        "window.confirm",
        "alert(",
    ];
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read file");
        for s in sinks {
            assert!(!text.contains(s), "{} uses {s}", f.display());
        }
    }
}
