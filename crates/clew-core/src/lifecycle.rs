//! Lifecycle events in resque-clues' vocabulary: `enqueued`, `dequeued`,
//! `perform_started`, `perform_finished`, `failed`.
//!
//! The engine writes one [`LifecycleEvent`] per lifecycle step into the
//! store's durable lifecycle log, in the same transaction as the state
//! change; publishers (crate `clew-events`) read that log by sequence number
//! and marshal each event (resque-clues JSON by default).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// Which step of a job's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    /// Put into a queue.
    Enqueued,
    /// Handed to a worker (carries `time_in_queue`).
    Dequeued,
    /// The worker started performing it.
    PerformStarted,
    /// Performed successfully (carries `time_to_perform`).
    PerformFinished,
    /// The perform failed (carries `time_to_perform` and the error).
    Failed,
}

impl LifecycleKind {
    /// The resque-clues `event_type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Enqueued => "enqueued",
            LifecycleKind::Dequeued => "dequeued",
            LifecycleKind::PerformStarted => "perform_started",
            LifecycleKind::PerformFinished => "perform_finished",
            LifecycleKind::Failed => "failed",
        }
    }

    /// Parses an `event_type` name.
    pub fn parse(s: &str) -> Option<LifecycleKind> {
        [
            LifecycleKind::Enqueued,
            LifecycleKind::Dequeued,
            LifecycleKind::PerformStarted,
            LifecycleKind::PerformFinished,
            LifecycleKind::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where an event happened: the host and process of the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Host name.
    pub hostname: String,
    /// Process id.
    pub process: u32,
}

impl Origin {
    /// This process: the host name (from `/proc/sys/kernel/hostname`, then
    /// `HOSTNAME`, else `localhost`) and the process id.
    pub fn this_process() -> Origin {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "localhost".to_owned());
        Origin {
            hostname,
            process: std::process::id(),
        }
    }
}

/// The error of a `failed` event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleError {
    /// The error class (the failure group).
    pub class: String,
    /// The message.
    pub message: String,
    /// The backtrace, if any.
    pub backtrace: Option<String>,
}

/// [`LifecycleEvent`] borrowed, with the payload as its raw JSON text: what
/// the engine writes to the log (the same fields, so it reads back as a
/// [`LifecycleEvent`]), without parsing the payload into a `Value` and
/// printing it again for every event of every job.
#[derive(Serialize)]
pub(crate) struct LifecycleEventRef<'a> {
    pub seq: i64,
    pub kind: LifecycleKind,
    pub at: Timestamp,
    pub jid: &'a str,
    pub queue: &'a str,
    pub klass: &'a str,
    pub args: &'a serde_json::value::RawValue,
    pub metadata: &'a Map<String, Value>,
    pub origin: &'a Origin,
    pub time_in_queue: Option<f64>,
    pub time_to_perform: Option<f64>,
    pub error: Option<&'a LifecycleError>,
}

impl LifecycleEventRef<'_> {
    /// The event's JSON text: the same text as its derived `Serialize`
    /// through `serde_json::to_string` (a test checks), written directly
    /// with the field names as literals. Serde escaped every field name
    /// and went through its writer for each piece: a tenth of the SQLite
    /// writer's instructions in the lifecycle benchmark.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::with_capacity(
            200 + self.jid.len()
                + self.queue.len()
                + self.klass.len()
                + self.args.get().len()
                + self.origin.hostname.len(),
        );
        out.push_str("{\"seq\":");
        push_display(&mut out, self.seq);
        out.push_str(",\"kind\":\"");
        out.push_str(self.kind.as_str());
        out.push_str("\",\"at\":");
        push_display(&mut out, self.at.0);
        out.push_str(",\"jid\":");
        push_json_str(&mut out, self.jid);
        out.push_str(",\"queue\":");
        push_json_str(&mut out, self.queue);
        out.push_str(",\"klass\":");
        push_json_str(&mut out, self.klass);
        out.push_str(",\"args\":");
        out.push_str(self.args.get());
        out.push_str(",\"metadata\":");
        if self.metadata.is_empty() {
            out.push_str("{}");
        } else {
            push_serialized(&mut out, self.metadata);
        }
        out.push_str(",\"origin\":{\"hostname\":");
        push_json_str(&mut out, &self.origin.hostname);
        out.push_str(",\"process\":");
        push_display(&mut out, self.origin.process);
        out.push_str("},\"time_in_queue\":");
        push_seconds(&mut out, self.time_in_queue);
        out.push_str(",\"time_to_perform\":");
        push_seconds(&mut out, self.time_to_perform);
        out.push_str(",\"error\":");
        match self.error {
            None => out.push_str("null"),
            Some(error) => push_serialized(&mut out, error),
        }
        out.push('}');
        out
    }
}

/// Appends an integer (as serde_json writes it, without `fmt`).
fn push_display(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends a number of seconds, or `null`, as serde_json writes them (a
/// finite float by `zmij`, anything else as `null`) without allocating.
fn push_seconds(out: &mut String, secs: Option<f64>) {
    match secs {
        Some(v) if v.is_finite() => out.push_str(zmij::Buffer::new().format_finite(v)),
        _ => out.push_str("null"),
    }
}

/// Appends `s` as a JSON string: as is between quotes when nothing in it
/// needs escaping (the usual jid, queue, class, host), else as serde_json
/// escapes it.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        push_serialized(out, s);
    }
}

/// Appends serde_json's text of `value`.
fn push_serialized<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    // Plain data (strings, numbers, maps of JSON values) always serializes.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// One lifecycle event of one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Position in the store's lifecycle log (0 before the store numbers it).
    pub seq: i64,
    /// Which step.
    pub kind: LifecycleKind,
    /// When it happened.
    pub at: Timestamp,
    /// The job.
    pub jid: String,
    /// The queue.
    pub queue: String,
    /// The job class (`worker_class`).
    pub klass: String,
    /// The job's payload (`args`), as JSON.
    pub args: Value,
    /// User metadata (keys not starting with `_`).
    pub metadata: Map<String, Value>,
    /// Where it happened.
    pub origin: Origin,
    /// `dequeued`: seconds the job waited in its queue.
    pub time_in_queue: Option<f64>,
    /// `perform_finished` / `failed`: seconds from dequeue to the end.
    pub time_to_perform: Option<f64>,
    /// `failed`: the error.
    pub error: Option<LifecycleError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `to_json` writes what serde writes, whatever the strings hold (quotes,
    /// backslashes, control and non-ASCII characters), for every kind, with
    /// and without metadata, times and error, and any float.
    #[test]
    fn the_event_text_is_serdes() {
        let empty = Map::new();
        let metadata: Map<String, Value> =
            serde_json::from_str(r#"{"z\"":"\u0001é","a":{"n":[1,2.5e-7]}}"#).expect("map");
        let error = LifecycleError {
            class: "G\\x".into(),
            message: "line 1\nline \"2\"\t\u{7f}".into(),
            backtrace: None,
        };
        let raw: &serde_json::value::RawValue = serde_json::from_str(r#"{"a": 1}"#).expect("raw");
        let strings = [
            "",
            "plain-jid-1",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}\u{1f}",
            "ünï €",
        ];
        let floats = [
            None,
            Some(0.0),
            Some(-0.0),
            Some(0.1),
            Some(1e21),
            Some(123_456.789),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ];
        let kinds = [
            LifecycleKind::Enqueued,
            LifecycleKind::Dequeued,
            LifecycleKind::PerformStarted,
            LifecycleKind::PerformFinished,
            LifecycleKind::Failed,
        ];
        for (i, s) in strings.iter().enumerate() {
            let origin = Origin {
                hostname: s.to_string(),
                process: u32::MAX - i as u32,
            };
            for (k, kind) in kinds.iter().enumerate() {
                let f = floats[(i + k) % floats.len()];
                let event = LifecycleEventRef {
                    seq: i64::MIN + i as i64,
                    kind: *kind,
                    at: Timestamp(-(k as i64)),
                    jid: s,
                    queue: strings[(i + 1) % strings.len()],
                    klass: strings[(i + 2) % strings.len()],
                    args: raw,
                    metadata: if k % 2 == 0 { &metadata } else { &empty },
                    origin: &origin,
                    time_in_queue: f,
                    time_to_perform: floats[(i + k + 3) % floats.len()],
                    error: (k % 2 == 1).then_some(&error),
                };
                assert_eq!(
                    event.to_json(),
                    serde_json::to_string(&event).expect("serialize"),
                    "{s:?} {kind:?}"
                );
            }
        }
    }

    /// What the engine writes reads back as the owned event, with the
    /// payload's JSON value; for a compact payload the text is the same as
    /// the owned event's.
    #[test]
    fn the_borrowed_event_reads_back_as_the_owned_one() {
        let metadata: Map<String, Value> =
            serde_json::from_str(r#"{"strategy":"fast","n":2}"#).expect("map");
        let origin = Origin {
            hostname: "h".into(),
            process: 7,
        };
        let error = LifecycleError {
            class: "G".into(),
            message: "boom".into(),
            backtrace: Some("at x".into()),
        };
        for data in [
            r#"{"b":1,"a":[1,2.5]}"#,
            "{ \"b\" : 1,  \"a\":[1, 2.50 ] }",
            "[]",
            "7",
        ] {
            let raw: &serde_json::value::RawValue = serde_json::from_str(data).expect("raw");
            let borrowed = LifecycleEventRef {
                seq: 0,
                kind: LifecycleKind::Failed,
                at: Timestamp(1_500_000),
                jid: "j",
                queue: "q",
                klass: "K",
                args: raw,
                metadata: &metadata,
                origin: &origin,
                time_in_queue: Some(0.5),
                time_to_perform: None,
                error: Some(&error),
            };
            let owned = LifecycleEvent {
                seq: 0,
                kind: LifecycleKind::Failed,
                at: Timestamp(1_500_000),
                jid: "j".into(),
                queue: "q".into(),
                klass: "K".into(),
                args: serde_json::from_str(data).expect("value"),
                metadata: metadata.clone(),
                origin: origin.clone(),
                time_in_queue: Some(0.5),
                time_to_perform: None,
                error: Some(error.clone()),
            };
            let text = serde_json::to_string(&borrowed).expect("serialize");
            assert_eq!(borrowed.to_json(), text, "{data}");
            let back: LifecycleEvent = serde_json::from_str(&text).expect("read back");
            assert_eq!(back, owned, "{data}");
            if !data.contains(' ') && !data.contains(".50") {
                assert_eq!(
                    text,
                    serde_json::to_string(&owned).expect("owned"),
                    "{data}"
                );
            }
        }
    }
}
