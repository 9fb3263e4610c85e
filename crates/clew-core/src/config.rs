//! Configuration keys and their defaults.
//!
//! `config.get` with no key reports exactly the seven [`DEFAULTS`] plus any
//! stored key. Keys honoured without a reported default:
//! * `max-job-history` (effective 100; 0 or less keeps every entry);
//! * `max-worker-age` (effective 86400 seconds);
//! * `<queue>-heartbeat` (overrides `heartbeat` for that queue);
//! * `<queue>-max-concurrency` (effective 0: unlimited).

/// The defaults `config.get` reports, in qless's order.
pub const DEFAULTS: [(&str, i64); 6] = [
    ("heartbeat", 60),
    ("grace-period", 10),
    ("stats-history", 30),
    ("histogram-history", 7),
    ("jobs-history-count", 50_000),
    ("jobs-history", 604_800),
];

/// The `application` default (the dashboard title).
pub const APPLICATION: &str = "qless";

/// Effective `max-job-history` when unset.
pub const MAX_JOB_HISTORY: i64 = 100;

/// Effective `max-worker-age` (seconds) when unset.
pub const MAX_WORKER_AGE: f64 = 86_400.0;

/// The default for a key, as JSON (`application` is a string, the rest numbers).
pub fn default_for(key: &str) -> Option<serde_json::Value> {
    if key == "application" {
        return Some(serde_json::Value::from(APPLICATION));
    }
    DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| serde_json::Value::from(*v))
}
