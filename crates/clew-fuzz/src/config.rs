//! Config values: the values of qless `config.set` (`PUT /v1/config/KEY`,
//! `clew config set`), which the engine reads as numbers where it uses
//! them, and the `--config` TOML file of `clew server` and `clew work`
//! (`clew::config_toml`).
//!
//! Input: the first byte picks the part.
//! * Even: the rest is a TOML file, read as `clew server`'s and as `clew
//!   work`'s. Properties: a refusal is an `Invalid` error naming the file;
//!   every key of an accepted file reads through every typed getter
//!   either to a value or to an `Invalid` error naming the file and key.
//! * Odd: the second byte picks a key clew honours (`heartbeat`,
//!   `grace-period`, `jobs-history`, `QUEUE-max-concurrency`, ...), the
//!   rest is its value. It is set on a real store, then jobs go through
//!   put, pop, heartbeat, lock expiry, fail, retry, complete and the
//!   listings that read the key. Properties: no store error, no panic, and
//!   the store invariants hold afterwards.

use std::path::Path;

/// The `--config` reader of the `clew` crate (`clew::config_toml`), compiled
/// from its own source file: the same code, without the binary's
/// dependencies in the fuzz build.
#[path = "../../clew/src/config_toml.rs"]
#[allow(missing_docs)]
pub mod config_toml;

use config_toml::{ConfigFile, SERVER_KEYS, WORK_KEYS};

/// The keys tried (every key the engine reads, including per-queue ones
/// of queue `a`).
pub const KEYS: [&str; 11] = [
    "heartbeat",
    "grace-period",
    "jobs-history",
    "jobs-history-count",
    "max-job-history",
    "max-worker-age",
    "stats-history",
    "histogram-history",
    "a-heartbeat",
    "a-max-concurrency",
    "application",
];

/// The target.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            config_file(text);
        }
    } else if let Some((&key, value)) = rest.split_first() {
        if let Ok(value) = std::str::from_utf8(value) {
            config_value(KEYS[usize::from(key) % KEYS.len()], value);
        }
    }
}

fn invalid(e: &anyhow::Error, text: &str, key: Option<&str>) {
    let core = e
        .downcast_ref::<clew_core::Error>()
        .unwrap_or_else(|| panic!("{text:?}: refused with a non-clew error: {e}"));
    crate::assert_invalid(core, &text);
    assert!(
        core.message().contains("fuzz.toml"),
        "{text:?}: the message does not name the file: {core}"
    );
    assert!(
        !core.message().contains("$__toml_private"),
        "{text:?}: toml's private serde form in the message: {core}"
    );
    if let Some(k) = key {
        assert!(
            core.message().contains(k),
            "{text:?}: the message does not name {k:?}: {core}"
        );
    }
}

/// The TOML part.
pub fn config_file(text: &str) {
    let path = Path::new("fuzz.toml");
    for (command, known) in [("server", SERVER_KEYS), ("work", WORK_KEYS)] {
        let file = match ConfigFile::parse(text, path, command, known) {
            Ok(f) => f,
            Err(e) => {
                invalid(&e, text, None);
                continue;
            }
        };
        let keys: Vec<String> = file.keys().map(str::to_owned).collect();
        for key in &keys {
            let k = Some(key.as_str());
            let check = |r: Result<(), anyhow::Error>| {
                if let Err(e) = r {
                    invalid(&e, text, k);
                }
            };
            check(file.string(key).map(drop));
            check(file.path(key).map(drop));
            check(file.strings(key).map(drop));
            check(file.bool(key).map(drop));
            check(file.int::<i64>(key, "an integer").map(drop));
            check(file.int::<u32>(key, "a small integer").map(drop));
            check(file.int::<usize>(key, "a size").map(drop));
            check(file.float(key).map(drop));
            check(file.duration(key).map(drop));
            check(file.pairs(key, true).map(|p| {
                for pair in p.unwrap_or_default() {
                    assert!(
                        !pair.contains("$__toml_private"),
                        "{text:?}: metadata {pair}"
                    );
                }
            }));
            check(file.pairs(key, false).map(drop));
        }
    }
}

/// The `config.set` part.
pub fn config_value(key: &str, value: &str) {
    crate::world::with_world(|w| {
        let n = w.calls;
        let what = format!("config.set {key} {value:?}");
        if let Err(e) = w.qless("config.set", &[key, value]) {
            crate::assert_invalid(&e, &what);
            return;
        }
        let j1 = format!("c{n}a");
        let j2 = format!("c{n}b");
        // Puts (with a long history for max-job-history), pops, heartbeats.
        let _ = w.qless("put", &["w", "a", &j1, "K", "{}", "0", "retries", "1"]);
        let _ = w.qless("put", &["w", "a", &j2, "K", "{}", "0"]);
        for _ in 0..3 {
            let _ = w.qless("priority", &[&j1, "1"]);
        }
        let _ = w.qless("pop", &["a", "w1", "2"]);
        let _ = w.qless("heartbeat", &[&j1, "w1"]);
        let _ = w.qless("queues", &[]);
        // The locks expire (heartbeat, a-heartbeat, grace-period): other
        // workers take the jobs over, or they fail.
        for step in [61.0, 11.0, 3600.0] {
            w.now += step;
            let _ = w.qless("pop", &["a", "w2", "2"]);
            let _ = w.qless("workers", &[]);
        }
        w.check_invariants(&what);
        let _ = w.qless("fail", &[&j1, "w2", "g", "broke"]);
        let _ = w.qless("retry", &[&j2, "a", "w2", "0"]);
        let _ = w.qless("unfail", &["a", "g"]);
        let _ = w.qless("pop", &["a", "w3", "2"]);
        let _ = w.qless("complete", &[&j1, "w3", "a", "{}"]);
        let _ = w.qless("complete", &[&j2, "w3", "a", "{}"]);
        // Completed jobs expire (jobs-history, jobs-history-count); stats
        // are kept (stats-history, histogram-history).
        w.now += 86_400.0 * 8.0;
        let _ = w.qless("put", &["w", "a", &format!("c{n}c"), "K", "{}", "0"]);
        let _ = w.qless("pop", &["a", "w4", "1"]);
        let _ = w.qless("complete", &[&format!("c{n}c"), "w4", "a", "{}"]);
        let _ = w.qless("jobs", &["complete"]);
        let _ = w.qless("stats", &["a", &w.now.to_string()]);
        let _ = w.qless("config.get", &[key]);
        let _ = w.qless("config.get", &[]);
        w.check_invariants(&what);
        let _ = w.qless("config.unset", &[key]);
    })
}
