//! The bodies of clew's fuzz targets, one function per parser of outside
//! input, each taking the fuzzer's bytes:
//!
//! | target | input | parser |
//! | --- | --- | --- |
//! | [`qless`] | qless compatibility arguments | `clew_core::qless::parse` |
//! | [`api`] | API request bodies and query strings | the server's routes (`clew_server::app`) |
//! | [`cron`] | cron expressions, time zones, `missed` | `clew_core::cron` |
//! | [`config`] | `config.set` values and the `--config` file | the engine; `clew::config_toml` |
//! | [`exec_line`] | an `--exec` handler's output | `clew_worker::exec` |
//!
//! `fuzz/` at the repository root wraps each in a `cargo fuzz` target
//! (`scripts/fuzz` runs them); `tests/corpus.rs` runs each over its
//! committed corpus (`fuzz/corpus/TARGET/`) in the stable test suite, so a
//! regression shows without nightly. Every function panics when a property
//! fails, which is what the fuzzer reports as a crash.

pub mod api;
pub mod config;
pub mod cron;
pub mod exec_line;
pub mod qless;
mod world;

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the directory names under `fuzz/corpus/`).
pub const TARGETS: [(&str, Target); 5] = [
    ("qless", qless::run),
    ("api", api::run),
    ("cron", cron::run),
    ("config", config::run),
    ("exec_line", exec_line::run),
];

/// Lines of `data` (as text, `\n`-separated); `None` when not UTF-8.
fn lines(data: &[u8]) -> Option<Vec<&str>> {
    std::str::from_utf8(data)
        .ok()
        .map(|t| t.split('\n').collect())
}

/// Panics unless `e` is a refusal of bad input: an
/// [`clew_core::ErrorKind::Invalid`] error with a message.
#[track_caller]
fn assert_invalid(e: &clew_core::Error, input: &dyn std::fmt::Debug) {
    assert_eq!(
        e.kind(),
        clew_core::ErrorKind::Invalid,
        "{input:?}: refused with {e} ({:?}), not as invalid input",
        e.kind()
    );
    assert!(!e.message().trim().is_empty(), "{input:?}: empty message");
}
