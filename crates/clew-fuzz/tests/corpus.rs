//! Every fuzz target's body over its committed corpus (`fuzz/corpus/TARGET/`
//! at the repository root), in the stable test suite: a regression of a
//! fixed finding shows here without nightly or cargo-fuzz.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(target: &str) {
    let (_, body) = clew_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of that name");
    let files = corpus(target);
    assert!(
        files.len() >= 5,
        "{target}: only {} corpus files",
        files.len()
    );
    for file in files {
        let data = std::fs::read(&file).expect("corpus file");
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(
            r.is_ok(),
            "{target}: {} fails (see the panic above)",
            file.display()
        );
    }
}

#[test]
fn qless_corpus() {
    run("qless");
}

#[test]
fn api_corpus() {
    run("api");
}

#[test]
fn cron_corpus() {
    run("cron");
}

#[test]
fn config_corpus() {
    run("config");
}

#[test]
fn exec_line_corpus() {
    run("exec_line");
}

/// Every route with a request body is fuzzed (a new route joins by itself;
/// one left out must be named in `LEFT_OUT`).
#[test]
fn every_route_with_a_body_is_fuzzed() {
    let ops = clew_fuzz::api::operations();
    let doc = serde_json::to_value(clew_server::api::router_and_doc().1).expect("openapi");
    let mut with_body = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if op.get("requestBody").is_none() {
                continue;
            }
            with_body += 1;
            let fuzzed = ops
                .iter()
                .any(|o| o.path == *path && o.method.as_str().eq_ignore_ascii_case(method));
            assert!(
                fuzzed || clew_fuzz::api::LEFT_OUT.contains(&path.as_str()),
                "{method} {path} is not fuzzed"
            );
        }
    }
    assert!(
        with_body >= 20,
        "only {with_body} routes with a body in the document"
    );
    assert!(ops.iter().any(|o| o.path == "/v1/qless"));
}
