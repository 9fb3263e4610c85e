//! The JSON marshaller against resque-clues' documented shape, field by
//! field, for each event type; and the logfmt marshaller.

mod common;

use clew_core::LifecycleKind;
use clew_events::{event_hash, JsonMarshaller, LogfmtMarshaller, Marshaller};
use common::event;
use serde_json::{json, Value};

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn marshal(kind: LifecycleKind) -> (String, Value) {
    let line = JsonMarshaller.marshal(&event(kind, "jid-1"));
    let v: Value = serde_json::from_str(&line).expect("valid JSON");
    (line, v)
}

#[test]
fn top_level_layout_is_resque_clues() {
    for kind in [
        LifecycleKind::Enqueued,
        LifecycleKind::Dequeued,
        LifecycleKind::PerformStarted,
        LifecycleKind::PerformFinished,
        LifecycleKind::Failed,
    ] {
        let (line, v) = marshal(kind);
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(
            keys(&v),
            [
                "event_type",
                "timestamp",
                "queue",
                "metadata",
                "worker_class",
                "args"
            ],
            "{kind:?}"
        );
        assert_eq!(v["event_type"], kind.as_str());
        assert_eq!(v["timestamp"], "2013-06-04T20:59:58Z");
        assert_eq!(v["queue"], "test_queue");
        assert_eq!(v["worker_class"], "TestWorker");
        assert_eq!(v["args"], json!([1, 2]));
        let md = &v["metadata"];
        assert_eq!(&keys(md)[..3], ["_event_hash", "_hostname", "_process"]);
        assert_eq!(md["_event_hash"], event_hash("jid-1"));
        assert_eq!(md["_hostname"], "Lances-MacBook-Air.local");
        assert_eq!(md["_process"], 30731);
        assert_eq!(md["customer_id"], 42);
        assert_eq!(md["pdf_generation_strategy"], "fast lane");
    }
}

#[test]
fn event_hash_groups_a_job_and_is_32_hex_digits() {
    let h = event_hash("jid-1");
    assert_eq!(h.len(), 32);
    assert!(h
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(h, event_hash("jid-1"));
    assert_ne!(h, event_hash("jid-2"));
    let (_, a) = marshal(LifecycleKind::Enqueued);
    let (_, b) = marshal(LifecycleKind::Failed);
    assert_eq!(a["metadata"]["_event_hash"], b["metadata"]["_event_hash"]);
}

#[test]
fn per_type_metadata_fields() {
    let (_, v) = marshal(LifecycleKind::Enqueued);
    assert_eq!(
        keys(&v["metadata"]),
        [
            "_event_hash",
            "_hostname",
            "_process",
            "customer_id",
            "pdf_generation_strategy"
        ]
    );
    let (_, v) = marshal(LifecycleKind::PerformStarted);
    assert_eq!(keys(&v["metadata"]).len(), 5);

    let (_, v) = marshal(LifecycleKind::Dequeued);
    assert_eq!(keys(&v["metadata"])[5..], ["time_in_queue"]);
    assert_eq!(v["metadata"]["time_in_queue"], 1.5);

    let (_, v) = marshal(LifecycleKind::PerformFinished);
    assert_eq!(keys(&v["metadata"])[5..], ["time_to_perform"]);
    assert_eq!(v["metadata"]["time_to_perform"], 0.25);

    let (_, v) = marshal(LifecycleKind::Failed);
    let md = &v["metadata"];
    assert_eq!(
        keys(md)[5..],
        ["time_to_perform", "exception", "message", "backtrace"]
    );
    assert_eq!(md["time_to_perform"], 0.25);
    assert_eq!(md["exception"], "RuntimeError");
    assert_eq!(md["message"], "boom \"quoted\"");
    assert_eq!(
        md["backtrace"],
        json!(["job.rb:1:in `perform'", "worker.rb:2:in `run'"])
    );
}

#[test]
fn system_keys_cannot_be_overridden_by_user_metadata() {
    let (_, v) = marshal(LifecycleKind::Enqueued);
    // The event's user metadata carried `_hostname: spoofed`.
    assert_eq!(v["metadata"]["_hostname"], "Lances-MacBook-Air.local");
    assert!(!v.to_string().contains("spoofed"));
}

#[test]
fn failed_without_backtrace_has_an_empty_one() {
    let mut e = event(LifecycleKind::Failed, "j");
    if let Some(err) = e.error.as_mut() {
        err.backtrace = None;
    }
    let v: Value = serde_json::from_str(&JsonMarshaller.marshal(&e)).unwrap();
    assert_eq!(v["metadata"]["backtrace"], json!([]));
}

#[test]
fn logfmt_flattens_metadata_and_quotes_values() {
    let line = LogfmtMarshaller.marshal(&event(LifecycleKind::Failed, "jid-1"));
    let expected = format!(
        "event_type=failed timestamp=2013-06-04T20:59:58Z queue=test_queue \
         metadata._event_hash={} metadata._hostname=Lances-MacBook-Air.local \
         metadata._process=30731 metadata.customer_id=42 \
         metadata.pdf_generation_strategy=\"fast lane\" metadata.time_to_perform=0.25 \
         metadata.exception=RuntimeError metadata.message=\"boom \\\"quoted\\\"\" \
         metadata.backtrace=\"[\\\"job.rb:1:in `perform'\\\",\\\"worker.rb:2:in `run'\\\"]\" \
         worker_class=TestWorker args=[1,2]",
        event_hash("jid-1")
    );
    assert_eq!(line, expected);
    assert!(!line.contains('\n'));
}

#[test]
fn logfmt_nested_metadata_uses_dotted_keys() {
    let mut e = event(LifecycleKind::Dequeued, "j");
    e.metadata
        .insert("ctx".into(), json!({"tenant": {"id": 7}, "tag": "a=b"}));
    e.args = json!({"doc": "x y"});
    let line = LogfmtMarshaller.marshal(&e);
    assert!(line.contains(" metadata.ctx.tenant.id=7 "), "{line}");
    assert!(line.contains(" metadata.ctx.tag=\"a=b\" "), "{line}");
    assert!(line.contains(" metadata.time_in_queue=1.5 "), "{line}");
    assert!(
        line.ends_with(" args=\"{\\\"doc\\\":\\\"x y\\\"}\""),
        "{line}"
    );
}

#[test]
fn content_types() {
    assert_eq!(JsonMarshaller.content_type(), "application/json");
    assert!(LogfmtMarshaller.content_type().starts_with("text/plain"));
}

/// Users can plug in their own format.
#[test]
fn custom_marshaller() {
    struct Csv;
    impl Marshaller for Csv {
        fn marshal(&self, e: &clew_core::LifecycleEvent) -> String {
            format!("{},{},{}", e.kind.as_str(), e.queue, e.klass)
        }
    }
    let m: Box<dyn Marshaller> = Box::new(Csv);
    assert_eq!(
        m.marshal(&event(LifecycleKind::Enqueued, "j")),
        "enqueued,test_queue,TestWorker"
    );
}
