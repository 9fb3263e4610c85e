//! Conformance cases: events.

#[allow(unused_imports)]
use crate::prelude::*;

fn payload(e: &Event) -> Value {
    serde_json::from_str(&e.message).unwrap_or_else(|err| {
        panic!(
            "payload {:?} on {} is not JSON: {err}",
            e.message, e.channel
        )
    })
}

fn channels(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.channel.clone()).collect()
}

fn put_opts(h: &Harness, now: f64, me: &str, queue: &str, jid: &str, opts: &[&str]) {
    let mut args = vec![me, queue, jid, "klass", "{}", "0"];
    args.extend_from_slice(opts);
    h.ok("put", now, &args);
}

/// Every put publishes `{jid, event: put, queue}` on ql:log, and nothing else for an untracked job.
pub fn put_publishes_log_event(t: &Harness) {
    t.put(0.0, "q", "a");
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "put", "queue": "q"})
    );
    t.put(1.0, "q2", "a");
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "put", "queue": "q2"})
    );
}

/// A put of a job running under another worker publishes log put, lock_lost on w: then on log, then ql:put.
pub fn put_by_other_worker_publishes_lock_lost_in_order(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    put_opts(t, 2.0, "boss", "q2", "a", &[]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log", "ql:w:w1", "ql:log", "ql:put"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "put", "queue": "q2"})
    );
    let lost = json!({"jid": "a", "event": "lock_lost", "worker": "w1"});
    assert_eq!(payload(&ev[1]), lost);
    assert_eq!(payload(&ev[2]), lost);
    assert_eq!(ev[3].message, "a");
}

/// A put of a running job by the worker holding it publishes no lock_lost.
pub fn put_by_same_worker_publishes_no_lock_lost(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    put_opts(t, 2.0, "w1", "q", "a", &[]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(payload(&ev[0])["event"], json!("put"));
}

/// complete without next publishes `{jid, event: completed, queue}` on ql:log.
pub fn complete_publishes_completed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "completed", "queue": "q"})
    );
}

/// complete with next publishes `{jid, event: advanced, queue, to}` on ql:log.
pub fn complete_next_publishes_advanced(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("complete", 2.0, &["a", "w1", "q", "{}", "next", "q2"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "advanced", "queue": "q", "to": "q2"})
    );
}

/// complete of a tracked job publishes ql:completed before the log event.
pub fn complete_tracked_order_completed_then_log(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:completed", "ql:log"]);
    assert_eq!(ev[0].message, "a");
    assert_eq!(payload(&ev[1])["event"], json!("completed"));
}

/// fail publishes `{jid, event: failed, worker, group, message}` on ql:log.
pub fn fail_publishes_failed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("fail", 2.0, &["a", "w1", "grp", "it broke"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "failed", "worker": "w1", "group": "grp", "message": "it broke"})
    );
}

/// fail of a tracked job publishes the log event, then ql:failed.
pub fn fail_tracked_order_log_then_failed(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("fail", 2.0, &["a", "w1", "grp", "boom"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log", "ql:failed"]);
    assert_eq!(ev[1].message, "a");
}

/// retry exhaustion publishes the failed log event like the other failure paths (clew difference 4).
pub fn retry_exhaustion_publishes_failed(t: &Harness) {
    put_opts(t, 0.0, "me", "q", "a", &["retries", "0"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("retry", 2.0, &["a", "q", "w1"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "failed", "group": "failed-retries-q", "worker": "w1", "message": "Job exhausted retries in queue \"q\""})
    );
}

/// timeout publishes lock_lost on w:`<worker>`, then on ql:log.
pub fn timeout_publishes_lock_lost(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    t.ok("timeout", 2.0, &["a"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:w:w1", "ql:log"]);
    let lost = json!({"jid": "a", "event": "lock_lost", "worker": "w1"});
    assert_eq!(payload(&ev[0]), lost);
    assert_eq!(payload(&ev[1]), lost);
}

/// The courtesy step for a tracked lost lock publishes ql:stalled, then w:, then log.
pub fn courtesy_step_tracked_order(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(0.0, "q", "w1");
    t.take_events();
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:stalled", "ql:w:w1", "ql:log"]);
    assert_eq!(ev[0].message, "a");
    let lost = json!({"jid": "a", "event": "lock_lost", "worker": "w1"});
    assert_eq!(payload(&ev[1]), lost);
    assert_eq!(payload(&ev[2]), lost);
}

/// Exhausting retries by lock invalidation publishes the failed log event naming the old worker.
pub fn invalidation_exhaustion_publishes_failed(t: &Harness) {
    put_opts(t, 0.0, "me", "q", "a", &["retries", "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok("pop", 60.0, &["q", "w2", "1"]);
    t.take_events();
    assert_eq!(t.ok("pop", 70.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.state("a"), "failed");
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"jid": "a", "event": "failed", "group": "failed-retries-q", "worker": "w1", "message": "Job exhausted retries in queue \"q\""})
    );
}

/// A tracked job exhausted by lock invalidation publishes ql:failed as well as the log event.
pub fn invalidation_exhaustion_tracked_publishes_failed_channel(t: &Harness) {
    put_opts(t, 0.0, "me", "q", "a", &["retries", "0"]);
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(0.0, "q", "w1");
    t.ok("pop", 60.0, &["q", "w2", "1"]);
    t.take_events();
    t.ok("pop", 70.0, &["q", "w2", "1"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:failed", "ql:log"]);
    assert_eq!(ev[0].message, "a");
    assert_eq!(payload(&ev[1])["event"], json!("failed"));
}

/// config.set and config.unset publish config_set / config_unset on ql:log.
pub fn config_set_and_unset_publish(t: &Harness) {
    t.ok("config.set", 1.0, &["heartbeat", "30"]);
    t.ok("config.unset", 2.0, &["heartbeat"]);
    let ev = t.take_events();
    assert_eq!(channels(&ev), vec!["ql:log", "ql:log"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"event": "config_set", "option": "heartbeat", "value": "30"})
    );
    assert_eq!(
        payload(&ev[1]),
        json!({"event": "config_unset", "option": "heartbeat"})
    );
}

/// Commands outside the event table publish nothing (pop, heartbeat, retry, priority, tag, log, depends, unfail, reads).
pub fn quiet_commands_publish_nothing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    put_opts(t, 0.0, "me", "q", "d", &["depends", "[\"c\"]"]);
    t.take_events();
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    t.ok("heartbeat", 2.0, &["a", "w1"]);
    t.ok("retry", 3.0, &["a", "q", "w1"]);
    t.ok("priority", 4.0, &["c", "5"]);
    t.ok("tag", 5.0, &["add", "c", "x"]);
    t.ok("log", 6.0, &["c", "note"]);
    t.ok("depends", 7.0, &["d", "off", "all"]);
    t.ok("pause", 8.0, &["q"]);
    t.ok("unpause", 8.0, &["q"]);
    t.ok("peek", 9.0, &["q", "10"]);
    t.ok("queues", 9.0, &[]);
    t.ok("get", 9.0, &["a"]);
    t.ok("workers", 9.0, &[]);
    t.ok("jobs", 9.0, &["running", "q"]);
    t.ok("failed", 9.0, &[]);
    t.ok("fail", 10.0, &["b", "w1", "grp", "boom"]);
    t.take_events();
    t.ok("unfail", 11.0, &["q", "grp"]);
    let ev = t.take_events();
    assert!(ev.is_empty(), "expected no events, got {:?}", channels(&ev));
}

/// Rejected commands publish nothing and log nothing.
pub fn rejected_commands_publish_nothing(t: &Harness) {
    t.put(0.0, "q", "a");
    put_opts(t, 0.0, "me", "q", "b", &["depends", "[\"a\"]"]);
    t.pop_one(1.0, "q", "w1");
    t.take_events();
    let logged = t.logged_events(0).len();
    t.err("complete", 2.0, &["a", "w2", "q", "{}"]);
    t.err("fail", 2.0, &["b", "w1", "grp", "boom"]);
    t.err("put", 2.0, &["me", "q", "c", "klass", "{bad", "0"]);
    t.err("cancel", 2.0, &["a"]);
    t.err("timeout", 2.0, &["b"]);
    t.err("track", 2.0, &["track", "ghost"]);
    t.err("heartbeat", 2.0, &["a", "w2"]);
    t.err("config.set", 2.0, &["heartbeat"]);
    assert!(t.take_events().is_empty());
    assert_eq!(t.logged_events(0).len(), logged);
    assert_eq!(t.state("a"), "running");
}

/// Event sequence numbers strictly increase across and within commands.
pub fn event_seq_strictly_increasing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 0.0, &["track", "a"]);
    t.pop_one(1.0, "q", "w1");
    t.put(2.0, "q", "a");
    t.ok("config.set", 3.0, &["k", "v"]);
    t.ok("cancel", 4.0, &["a"]);
    let ev = t.events();
    assert!(
        ev.len() >= 9,
        "expected at least 9 events, got {}",
        ev.len()
    );
    for w in ev.windows(2) {
        assert!(w[0].seq < w[1].seq, "seq {} then {}", w[0].seq, w[1].seq);
    }
}

/// The durable event log holds exactly the events handed to the sink, in the same order.
pub fn logged_events_equal_sink_events(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.ok("track", 0.5, &["track", "a"]);
    t.ok("pop", 1.0, &["q", "w1", "2"]);
    t.ok("complete", 2.0, &["a", "w1", "q", "{}", "next", "q2"]);
    t.ok("fail", 3.0, &["b", "w1", "grp", "boom"]);
    t.ok("config.set", 4.0, &["heartbeat", "30"]);
    t.ok("cancel", 5.0, &["a", "b"]);
    let sink = t.events();
    assert!(sink.len() >= 10);
    assert_eq!(t.logged_events(0), sink);
    let cut = sink[4].seq;
    assert_eq!(t.logged_events(cut), sink[5..].to_vec());
}

/// Each event carries the `now` of the command that emitted it.
pub fn event_at_is_command_now(t: &Harness) {
    t.put(12.5, "q", "a");
    t.ok("config.set", 20.0, &["heartbeat", "30"]);
    let ev = t.take_events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].at, Timestamp::from_secs_f64(12.5).unwrap());
    assert_eq!(ev[1].at, Timestamp::from_secs_f64(20.0).unwrap());
}
