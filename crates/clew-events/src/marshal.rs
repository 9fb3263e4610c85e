//! Marshallers: one [`LifecycleEvent`] → one line of text.
//!
//! [`JsonMarshaller`] emits resque-clues' layout exactly, so dashboards built
//! for resque-clues read clew's events unchanged:
//!
//! ```text
//! {"event_type":"dequeued","timestamp":"2013-06-04T20:59:58Z","queue":"test_queue",
//!  "metadata":{"_event_hash":"0695f49c5e70fc18da91961113e1769a",
//!              "_hostname":"host.local","_process":30731,"time_in_queue":1.5},
//!  "worker_class":"TestWorker","args":[1,2]}
//! ```
//!
//! As in resque-clues, the per-step figures live inside `metadata`:
//! `time_in_queue` (dequeued), `time_to_perform` (perform_finished, failed),
//! and for failed `exception` (the error class), `message` and `backtrace`
//! (an array of lines, like Ruby's `Exception#backtrace`; empty when the
//! failure carried none). User metadata keys follow the three system keys;
//! user keys beginning with `_` are the system's and are never emitted.

use std::sync::Arc;

use clew_core::{LifecycleEvent, LifecycleKind};
use serde_json::{Map, Value};

use crate::publish::SpecError;

/// Turns a lifecycle event into one line of text (no trailing newline).
///
/// Implement it to plug in your own format.
pub trait Marshaller: Send + Sync {
    /// The event as one line.
    fn marshal(&self, event: &LifecycleEvent) -> String;

    /// The media type of the lines, used as `Content-Type` by HTTP sinks.
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }
}

/// resque-clues' `_event_hash` for a job: the MD5 of its jid, 32 lowercase
/// hex digits. Every event of one job carries the same hash.
pub fn event_hash(jid: &str) -> String {
    crate::md5::md5_hex(jid.as_bytes())
}

pub use clew_core::time::iso8601;

/// A float as JSON (non-finite values become `null`).
fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The `metadata` object of an event, in resque-clues' layout.
pub fn metadata(event: &LifecycleEvent) -> Map<String, Value> {
    let mut md = Map::new();
    md.insert("_event_hash".into(), Value::String(event_hash(&event.jid)));
    md.insert(
        "_hostname".into(),
        Value::String(event.origin.hostname.clone()),
    );
    md.insert("_process".into(), Value::from(event.origin.process));
    for (k, v) in &event.metadata {
        if !k.starts_with('_') {
            md.insert(k.clone(), v.clone());
        }
    }
    if event.kind == LifecycleKind::Dequeued {
        md.insert(
            "time_in_queue".into(),
            num(event.time_in_queue.unwrap_or(0.0)),
        );
    }
    if matches!(
        event.kind,
        LifecycleKind::PerformFinished | LifecycleKind::Failed
    ) {
        md.insert(
            "time_to_perform".into(),
            num(event.time_to_perform.unwrap_or(0.0)),
        );
    }
    if event.kind == LifecycleKind::Failed {
        let err = event.error.clone().unwrap_or_default();
        md.insert("exception".into(), Value::String(err.class));
        md.insert("message".into(), Value::String(err.message));
        let lines: Vec<Value> = err
            .backtrace
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| Value::String(l.to_owned()))
            .collect();
        md.insert("backtrace".into(), Value::Array(lines));
    }
    md
}

/// The whole event as a JSON object in resque-clues' layout.
pub fn to_json(event: &LifecycleEvent) -> Value {
    let mut obj = Map::new();
    obj.insert(
        "event_type".into(),
        Value::String(event.kind.as_str().into()),
    );
    obj.insert("timestamp".into(), Value::String(iso8601(event.at)));
    obj.insert("queue".into(), Value::String(event.queue.clone()));
    obj.insert("metadata".into(), Value::Object(metadata(event)));
    obj.insert("worker_class".into(), Value::String(event.klass.clone()));
    obj.insert("args".into(), event.args.clone());
    Value::Object(obj)
}

/// resque-clues' JSON, one compact object per line (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonMarshaller;

impl Marshaller for JsonMarshaller {
    fn marshal(&self, event: &LifecycleEvent) -> String {
        to_json(event).to_string()
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// logfmt: `key=value` pairs separated by spaces, in the JSON layout's
/// order; `metadata` is flattened to `metadata.KEY=...` (nested objects to
/// `metadata.KEY.SUB=...`); arrays and `args` are written as compact JSON.
/// Values are quoted (with `\"`, `\\`, `\n`, `\r`, `\t` escaped) when they
/// are empty or contain a space, `=`, `"`, `\` or a control character.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogfmtMarshaller;

fn logfmt_value(s: &str) -> String {
    let needs_quotes = s.is_empty()
        || s.chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if !needs_quotes {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn logfmt_flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                logfmt_flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::String(s) => out.push(format!("{prefix}={}", logfmt_value(s))),
        Value::Null => out.push(format!("{prefix}=")),
        other => out.push(format!("{prefix}={}", logfmt_value(&other.to_string()))),
    }
}

impl Marshaller for LogfmtMarshaller {
    fn marshal(&self, event: &LifecycleEvent) -> String {
        let mut parts = Vec::new();
        if let Value::Object(obj) = to_json(event) {
            for (k, v) in &obj {
                if k == "args" {
                    parts.push(format!("args={}", logfmt_value(&v.to_string())));
                } else {
                    logfmt_flatten(k, v, &mut parts);
                }
            }
        }
        parts.join(" ")
    }
}

/// The marshaller named `json` or `logfmt`.
pub fn marshaller_from_name(name: &str) -> Result<Arc<dyn Marshaller>, SpecError> {
    match name {
        "json" => Ok(Arc::new(JsonMarshaller)),
        "logfmt" => Ok(Arc::new(LogfmtMarshaller)),
        other => Err(SpecError(format!(
            "unknown marshaller {other:?}: expected \"json\" or \"logfmt\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_core::Timestamp;

    #[test]
    fn iso8601_matches_the_seed_form() {
        // 2013-06-04T20:59:58Z, the resque-clues README's example.
        assert_eq!(
            iso8601(Timestamp::from_secs(1_370_379_598)),
            "2013-06-04T20:59:58Z"
        );
        assert_eq!(iso8601(Timestamp::ZERO), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(Timestamp(951_782_400_999_999)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(iso8601(Timestamp::from_secs(-1)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(logfmt_value("plain"), "plain");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("a b"), "\"a b\"");
        assert_eq!(logfmt_value("k=v"), "\"k=v\"");
        assert_eq!(logfmt_value("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn unknown_marshaller_is_named() {
        let err = marshaller_from_name("xml").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown marshaller \"xml\": expected \"json\" or \"logfmt\"")
        );
        assert!(marshaller_from_name("json").is_ok());
        assert!(marshaller_from_name("logfmt").is_ok());
    }
}
