//! Helpers shared by this crate's test files.
#![allow(dead_code)]

use clew_core::Engine;
use serde_json::Value;

/// Runs a qless command at `now` seconds.
pub async fn call(
    engine: &Engine,
    command: &str,
    now: f64,
    args: &[&str],
) -> clew_core::Result<Value> {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    engine.qless(command, Some(now), &args).await
}

/// Runs a qless command that must succeed.
pub async fn ok(engine: &Engine, command: &str, now: f64, args: &[&str]) -> Value {
    call(engine, command, now, args)
        .await
        .unwrap_or_else(|e| panic!("{command} {args:?}: {e}"))
}
