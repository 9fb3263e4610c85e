//! Conformance cases: resque-clues lifecycle events (`enqueued`, `dequeued`,
//! `perform_started`, `perform_finished`, `failed`) written to the durable
//! event log in the same transaction as the state change.

#[allow(unused_imports)]
use crate::prelude::*;
use clew_core::{LifecycleKind, Origin};

fn kinds(t: &Harness) -> Vec<(String, LifecycleKind)> {
    t.lifecycle().into_iter().map(|e| (e.jid, e.kind)).collect()
}

/// A put emits `enqueued` with the queue, class, args (the data as JSON),
/// the time, and this process as the origin.
pub fn put_emits_enqueued(t: &Harness) {
    t.ok(
        "put",
        12.5,
        &["w", "q", "j", "Mailer", r#"{"to":"a@x"}"#, "0"],
    );
    let ev = t.lifecycle();
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0];
    assert_eq!(e.kind, LifecycleKind::Enqueued);
    assert_eq!(
        (e.jid.as_str(), e.queue.as_str(), e.klass.as_str()),
        ("j", "q", "Mailer")
    );
    assert_eq!(e.args, json!({"to": "a@x"}));
    assert_eq!(e.at, Timestamp::from_secs_f64(12.5).expect("time"));
    assert_eq!(e.origin.process, std::process::id());
    assert!(!e.origin.hostname.is_empty());
    assert!(e.seq > 0);
    assert_eq!(
        (e.time_in_queue, e.time_to_perform, e.error.clone()),
        (None, None, None)
    );
}

/// A pop emits `dequeued` (with time_in_queue) then `perform_started`.
pub fn pop_emits_dequeued_with_time_in_queue_then_perform_started(t: &Harness) {
    t.put(10.0, "q", "j");
    t.pop_one(17.25, "q", "w1");
    let ev = t.lifecycle();
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LifecycleKind::Enqueued,
            LifecycleKind::Dequeued,
            LifecycleKind::PerformStarted
        ]
    );
    assert_eq!(ev[1].time_in_queue, Some(7.25));
    assert_eq!(ev[2].time_in_queue, None);
    assert!(ev[1].seq < ev[2].seq);
}

/// complete emits `perform_finished` with time_to_perform and the final data.
pub fn complete_emits_perform_finished_with_time_to_perform(t: &Harness) {
    t.put(0.0, "q", "j");
    t.pop_one(5.0, "q", "w1");
    t.ok("complete", 9.5, &["j", "w1", "q", r#"{"done":true}"#]);
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(last.kind, LifecycleKind::PerformFinished);
    assert_eq!(last.time_to_perform, Some(4.5));
    assert_eq!(last.args, json!({"done": true}));
    assert_eq!(last.queue, "q");
}

/// Advancing into a next queue emits `perform_finished` then `enqueued` in
/// the next queue.
pub fn advance_emits_perform_finished_then_enqueued(t: &Harness) {
    start(t, 0.0, "a", "j", "w1");
    t.ok("complete", 2.0, &["j", "w1", "a", "{}", "next", "b"]);
    let ev = t.lifecycle();
    let tail: Vec<_> = ev[ev.len() - 2..]
        .iter()
        .map(|e| (e.kind, e.queue.clone()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (LifecycleKind::PerformFinished, "a".to_owned()),
            (LifecycleKind::Enqueued, "b".to_owned())
        ]
    );
}

/// fail emits `failed` with time_to_perform; the group is the error class,
/// the message's first line the message and the rest the backtrace.
pub fn fail_emits_failed_with_error_and_backtrace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok(
        "fail",
        3.0,
        &[
            "j",
            "w1",
            "K:IOError",
            "disk full\n  at write (a.rb:1)\n  at run (b.rb:2)",
        ],
    );
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(last.kind, LifecycleKind::Failed);
    assert_eq!(last.time_to_perform, Some(3.0));
    let err = last.error.expect("error");
    assert_eq!(err.class, "K:IOError");
    assert_eq!(err.message, "disk full");
    assert_eq!(
        err.backtrace.as_deref(),
        Some("  at write (a.rb:1)\n  at run (b.rb:2)")
    );
}

/// retry emits `failed` (the perform failed) whether or not retries remain.
pub fn retry_emits_failed(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok(
        "retry",
        1.0,
        &["j", "q", "w1", "0", "K:Timeout", "too slow"],
    );
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(last.kind, LifecycleKind::Failed);
    let err = last.error.expect("error");
    assert_eq!(
        (err.class.as_str(), err.message.as_str()),
        ("K:Timeout", "too slow")
    );
    assert_eq!(t.state("j"), "waiting");
}

/// Retries exhausted by lock invalidation emit `failed` in
/// `failed-retries-<queue>`.
pub fn lock_invalidation_exhaustion_emits_failed(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok("put", 0.0, &["w", "q", "j", "K", "{}", "0", "retries", "0"]);
    t.pop_one(0.0, "q", "w1");
    assert_eq!(t.ok("pop", 61.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.state("j"), "failed");
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(last.kind, LifecycleKind::Failed);
    assert_eq!(last.error.expect("error").class, "failed-retries-q");
}

/// Recurring spawns and unfail are enqueues too.
pub fn recurring_spawn_and_unfail_emit_enqueued(t: &Harness) {
    t.ok("recur", 0.0, &["q", "r", "K", "{}", "interval", "60", "0"]);
    t.ok("peek", 0.0, &["q", "1"]);
    assert!(kinds(t).contains(&("r-1".to_owned(), LifecycleKind::Enqueued)));
    start(t, 1.0, "f", "j", "w1");
    t.ok("fail", 2.0, &["j", "w1", "g", "m"]);
    t.ok("unfail", 3.0, &["f2", "g", "10"]);
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(
        (last.kind, last.queue.as_str()),
        (LifecycleKind::Enqueued, "f2")
    );
}

/// A refused command writes no lifecycle event; cancel writes none either.
pub fn refused_commands_and_cancel_emit_no_lifecycle_events(t: &Harness) {
    t.put(0.0, "q", "j");
    let n = t.lifecycle().len();
    t.err("complete", 1.0, &["j", "w1", "q", "{}"]);
    t.err("put", 1.0, &["w", "q", "k", "K", "{bad", "0"]);
    t.ok("cancel", 1.0, &["j"]);
    assert_eq!(t.lifecycle().len(), n);
}

/// Lifecycle and qless events share one log, numbered in commit order.
pub fn lifecycle_and_qless_events_share_one_ordered_log(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 1.0, &["j", "w1", "q", "{}"]);
    let all = t.all_logged_events(0);
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let channels: Vec<&str> = all.iter().map(|e| e.channel.as_str()).collect();
    assert_eq!(
        channels,
        vec![
            "ql:log",
            "clew:lifecycle",
            "clew:lifecycle",
            "clew:lifecycle",
            "clew:lifecycle",
            "ql:log"
        ]
    );
}

/// The origin is the caller's: an engine call made on behalf of another
/// host and process names them.
pub fn origin_names_the_caller(t: &Harness) {
    let origin = Origin {
        hostname: "worker-host".into(),
        process: 4242,
    };
    let now = Timestamp::from_secs(1);
    t.put(0.0, "q", "j");
    let cmd = Command::Pop {
        queue: "q".into(),
        worker: "w".into(),
        count: 1,
    };
    t.block_on(t.engine().execute_as(now, origin.clone(), cmd))
        .expect("pop");
    let last = t.lifecycle().pop().expect("event");
    assert_eq!(last.kind, LifecycleKind::PerformStarted);
    assert_eq!(last.origin, origin);
}

/// Metadata given at put rides on every lifecycle event of the job; keys
/// starting with `_` are the system's and are dropped.
pub fn put_metadata_rides_on_every_event(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &[
            "w",
            "q",
            "j",
            "K",
            "{}",
            "0",
            "metadata",
            r#"{"customer":42,"_hostname":"spoof"}"#,
        ],
    );
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("j"));
    t.ok("complete", 2.0, &["j", "w1", "q", "{}"]);
    let mine: Vec<_> = t.lifecycle().into_iter().filter(|e| e.jid == "j").collect();
    assert_eq!(mine.len(), 4, "{mine:?}");
    for e in &mine {
        assert_eq!(
            serde_json::Value::Object(e.metadata.clone()),
            json!({"customer": 42}),
            "{:?}",
            e.kind
        );
    }
    assert_eq!(t.get("j")["metadata"], json!({"customer": 42}));
}

/// Runtime metadata given at complete or fail is added for the finishing
/// event (the resque-clues runtime metadata).
pub fn runtime_metadata_appears_on_the_finishing_event(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "Pdf", "{}", "0", "metadata", r#"{"doc":1}"#],
    );
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("b"));
    t.ok(
        "complete",
        3.0,
        &[
            "a",
            "w1",
            "q",
            "{}",
            "metadata",
            r#"{"pdf_generation_strategy":"prince","_process":1}"#,
        ],
    );
    t.ok(
        "fail",
        4.0,
        &["b", "w1", "g", "boom", "", r#"{"attempt":"first"}"#],
    );
    let ev = t.lifecycle();
    let done = ev
        .iter()
        .find(|e| e.jid == "a" && e.kind == LifecycleKind::PerformFinished)
        .expect("finished");
    assert_eq!(
        serde_json::Value::Object(done.metadata.clone()),
        json!({"doc": 1, "pdf_generation_strategy": "prince"})
    );
    let failed = ev
        .iter()
        .find(|e| e.jid == "b" && e.kind == LifecycleKind::Failed)
        .expect("failed");
    assert_eq!(
        serde_json::Value::Object(failed.metadata.clone()),
        json!({"attempt": "first"})
    );
    // An empty data argument kept b's data.
    assert_eq!(t.get("b")["data"], json!("{}"));
}

/// A job without metadata keeps qless's exact job shape (no `metadata` key).
pub fn jobs_without_metadata_have_no_metadata_key(t: &Harness) {
    t.put(0.0, "q", "j");
    let job = t.get("j");
    assert!(job.get("metadata").is_none(), "{job}");
}

/// Metadata that is not a JSON object is refused, naming the argument.
pub fn metadata_must_be_a_json_object(t: &Harness) {
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j", "K", "{}", "0", "metadata", "[1]"],
        ErrorKind::Invalid,
        "Arg \"metadata\" not a JSON object",
    );
    t.err_with(
        "put",
        0.0,
        &["w", "q", "j", "K", "{}", "0", "metadata", "{x"],
        ErrorKind::Invalid,
        "Arg \"metadata\" not JSON",
    );
    assert_eq!(t.get("j"), Value::Null);
}

/// An engine preprocessor (resque-clues' item preprocessor) runs on every
/// put and can add metadata that rides on the job's events; explicit put
/// metadata it does not touch is kept.
pub fn preprocessor_adds_metadata_at_enqueue(t: &Harness) {
    let engine = t
        .engine()
        .clone()
        .with_preprocessor(std::sync::Arc::new(|p: &mut PutParams| {
            let m = p.metadata.get_or_insert_with(Default::default);
            m.insert("customer_id".into(), json!(42));
            m.insert("_event_hash".into(), json!("spoof"));
        }));
    let mut p = PutParams::new("q", "K");
    p.jid = "j".into();
    p.metadata = Some(
        json!({"region": "eu"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    t.block_on(engine.put(p)).expect("put");
    let ev = t.lifecycle().pop().expect("enqueued");
    assert_eq!(
        serde_json::Value::Object(ev.metadata),
        json!({"region": "eu", "customer_id": 42})
    );
}
