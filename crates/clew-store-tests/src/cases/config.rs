//! Conformance cases: config.

#[allow(unused_imports)]
use crate::prelude::*;

/// The seven defaults `config.get` reports.
fn defaults() -> Value {
    json!({
        "application": "qless",
        "heartbeat": 60,
        "grace-period": 10,
        "stats-history": 30,
        "histogram-history": 7,
        "jobs-history-count": 50000,
        "jobs-history": 604800,
    })
}

/// The `ql:log` payloads published so far, parsed.
fn log_payloads(h: &Harness) -> Vec<Value> {
    h.events()
        .iter()
        .filter(|e| e.channel == "ql:log")
        .map(|e| serde_json::from_str(&e.message).expect("log payload is JSON"))
        .collect()
}

/// `config.get` with no key returns exactly the seven defaults.
pub fn config_get_all_is_exactly_the_defaults(t: &Harness) {
    assert_eq!(t.ok("config.get", 0.0, &[]), defaults());
}

/// `config.get` with no key overlays stored values (as strings) and adds stored keys.
pub fn config_get_all_includes_stored_values_as_strings(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.ok("config.set", 0.0, &["max-worker-age", "500"]);
    t.ok("config.set", 0.0, &["application", "my app"]);
    let mut want = defaults();
    want["heartbeat"] = json!("30");
    want["max-worker-age"] = json!("500");
    want["application"] = json!("my app");
    assert_eq!(t.ok("config.get", 1.0, &[]), want);
}

/// `config.get <key>` of an unset key with a default returns the default.
pub fn config_get_key_returns_default(t: &Harness) {
    assert_eq!(t.ok("config.get", 0.0, &["heartbeat"]), json!(60));
    assert_eq!(t.ok("config.get", 0.0, &["jobs-history"]), json!(604800));
    assert_eq!(t.ok("config.get", 0.0, &["application"]), json!("qless"));
}

/// `config.get <key>` of a stored key returns the stored string.
pub fn config_get_key_returns_stored_string(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok("config.set", 0.0, &["custom", "{\"a\": 1}"]);
    assert_eq!(t.ok("config.get", 1.0, &["grace-period"]), json!("0"));
    assert_eq!(t.ok("config.get", 1.0, &["custom"]), json!("{\"a\": 1}"));
}

/// `config.get <key>` of a key neither stored nor defaulted is null (including honoured keys
/// without a reported default).
pub fn config_get_unknown_key_is_null(t: &Harness) {
    assert_eq!(t.ok("config.get", 0.0, &["nope"]), Value::Null);
    assert_eq!(t.ok("config.get", 0.0, &["max-worker-age"]), Value::Null);
    assert_eq!(t.ok("config.get", 0.0, &["q-heartbeat"]), Value::Null);
}

/// `config.set` returns nothing, overwrites earlier values and publishes `config_set` on `ql:log`.
pub fn config_set_overwrites_and_publishes(t: &Harness) {
    assert_eq!(t.ok("config.set", 0.0, &["heartbeat", "30"]), Value::Null);
    assert_eq!(t.ok("config.set", 1.0, &["heartbeat", "45"]), Value::Null);
    assert_eq!(t.ok("config.get", 2.0, &["heartbeat"]), json!("45"));
    assert_eq!(
        log_payloads(t),
        vec![
            json!({"event": "config_set", "option": "heartbeat", "value": "30"}),
            json!({"event": "config_set", "option": "heartbeat", "value": "45"}),
        ]
    );
}

/// `config.unset` restores the default, returns nothing and publishes `config_unset`.
pub fn config_unset_restores_default(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.take_events();
    assert_eq!(t.ok("config.unset", 1.0, &["heartbeat"]), Value::Null);
    assert_eq!(t.ok("config.get", 2.0, &["heartbeat"]), json!(60));
    assert_eq!(t.ok("config.get", 2.0, &[]), defaults());
    assert_eq!(
        log_payloads(t),
        vec![json!({"event": "config_unset", "option": "heartbeat"})]
    );
}

/// `config.unset` of a key without a default removes it from `config.get`.
pub fn config_unset_removes_non_default_key(t: &Harness) {
    t.ok("config.set", 0.0, &["custom", "x"]);
    t.ok("config.unset", 1.0, &["custom"]);
    assert_eq!(t.ok("config.get", 2.0, &["custom"]), Value::Null);
    assert_eq!(t.ok("config.get", 2.0, &[]), defaults());
}

/// The `heartbeat` setting sets the lock length of a pop; `<queue>-heartbeat` overrides it per queue.
pub fn config_heartbeat_and_queue_heartbeat_set_lock_length(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.ok("config.set", 0.0, &["fast-heartbeat", "5"]);
    t.put(0.0, "slow", "a");
    t.put(0.0, "fast", "b");
    let a = t.ok("pop", 100.0, &["slow", "w", "1"]);
    let b = t.ok("pop", 100.0, &["fast", "w", "1"]);
    assert_eq!(a[0]["expires"], json!(130));
    assert_eq!(b[0]["expires"], json!(105));
    assert_eq!(t.ok("heartbeat", 104.0, &["b", "w"]), json!(109));
}

/// `config.set` without a key or without a value is an invalid-argument error that stores nothing.
pub fn config_set_missing_args_is_invalid(t: &Harness) {
    t.err_with(
        "config.set",
        0.0,
        &[],
        ErrorKind::Invalid,
        "Config.set(): Arg",
    );
    t.err_with(
        "config.set",
        0.0,
        &["heartbeat"],
        ErrorKind::Invalid,
        "Config.set(): Arg",
    );
    let e = t.err("config.set", 0.0, &["heartbeat"]);
    assert!(e.message().contains("missing"), "{}", e.message());
    assert_eq!(t.ok("config.get", 1.0, &[]), defaults());
    assert!(log_payloads(t).is_empty());
}

/// `config.unset` without a key is an invalid-argument error.
pub fn config_unset_missing_key_is_invalid(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.err_with(
        "config.unset",
        1.0,
        &[],
        ErrorKind::Invalid,
        "Config.unset(): Arg",
    );
    assert_eq!(t.ok("config.get", 2.0, &["heartbeat"]), json!("30"));
}
