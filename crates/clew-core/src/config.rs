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

/// A default value: a number or a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// A number.
    Int(i64),
    /// A text.
    Text(&'static str),
}

impl DefaultValue {
    /// As JSON.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            DefaultValue::Int(n) => n.into(),
            DefaultValue::Text(t) => t.into(),
        }
    }
}

/// A key clew honours: its default, its unit and what it does.
#[derive(Clone, Copy, Debug)]
pub struct KnownKey {
    /// The key.
    pub key: &'static str,
    /// The value in effect when it is not set.
    pub default: DefaultValue,
    /// `s` (seconds), `d` (days) or none.
    pub unit: Option<&'static str>,
    /// Whether `config.get` with no key lists it when unset.
    pub reported: bool,
    /// What it does.
    pub description: &'static str,
}

/// Every key clew honours (per-queue keys, `<queue>-heartbeat` and
/// `<queue>-max-concurrency`, are described in [`QUEUE_KEYS`]).
pub const KNOWN: [KnownKey; 9] = [
    KnownKey {
        key: "application",
        default: DefaultValue::Text(APPLICATION),
        unit: None,
        reported: true,
        description: "The application name (shown as a title).",
    },
    KnownKey {
        key: "heartbeat",
        default: DefaultValue::Int(DEFAULTS[0].1),
        unit: Some("s"),
        reported: true,
        description: "Seconds a worker holds a job between heartbeats before the job stalls.",
    },
    KnownKey {
        key: "grace-period",
        default: DefaultValue::Int(DEFAULTS[1].1),
        unit: Some("s"),
        reported: true,
        description:
            "Extra seconds after a lock expires before the job is handed to another worker.",
    },
    KnownKey {
        key: "stats-history",
        default: DefaultValue::Int(DEFAULTS[2].1),
        unit: Some("d"),
        reported: true,
        description: "Days of per-queue daily statistics kept.",
    },
    KnownKey {
        key: "histogram-history",
        default: DefaultValue::Int(DEFAULTS[3].1),
        unit: Some("d"),
        reported: true,
        description: "Days of wait/run histograms kept.",
    },
    KnownKey {
        key: "jobs-history-count",
        default: DefaultValue::Int(DEFAULTS[4].1),
        unit: None,
        reported: true,
        description: "Most completed jobs kept.",
    },
    KnownKey {
        key: "jobs-history",
        default: DefaultValue::Int(DEFAULTS[5].1),
        unit: Some("s"),
        reported: true,
        description: "Seconds a completed job is kept.",
    },
    KnownKey {
        key: "max-job-history",
        default: DefaultValue::Int(MAX_JOB_HISTORY),
        unit: None,
        reported: false,
        description: "History entries kept per job (0 or less keeps all).",
    },
    KnownKey {
        key: "max-worker-age",
        default: DefaultValue::Int(MAX_WORKER_AGE as i64),
        unit: Some("s"),
        reported: false,
        description: "Seconds after which a silent worker is forgotten.",
    },
];

/// The per-queue keys: `(suffix, unit, what it does)`; the key is
/// `<queue><suffix>`.
pub const QUEUE_KEYS: [(&str, Option<&str>, &str); 2] = [
    (
        "-heartbeat",
        Some("s"),
        "Heartbeat (seconds) for the queue, instead of heartbeat.",
    ),
    (
        "-max-concurrency",
        None,
        "Most jobs of the queue running at once (0: no limit).",
    ),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_agree_with_the_reported_defaults() {
        for k in KNOWN.iter().filter(|k| k.reported) {
            assert_eq!(default_for(k.key), Some(k.default.to_json()), "{}", k.key);
        }
        let reported = KNOWN.iter().filter(|k| k.reported).count();
        assert_eq!(
            reported,
            DEFAULTS.len() + 1,
            "the six numbers and application"
        );
    }
}
