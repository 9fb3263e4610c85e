//! Conformance cases: the flow-control features together (unique keys,
//! throttles, batches, cron), where one's rule meets another's.

#[allow(unused_imports)]
use crate::prelude::*;

/// `batch.get ID` as (pending, complete, failed, canceled).
#[track_caller]
fn batch_counts(t: &Harness, id: &str) -> (i64, i64, i64, i64) {
    let b = t.ok("batch.get", 0.0, &[id]);
    let n = |k: &str| b[k].as_i64().unwrap_or_else(|| panic!("{k} in {b}"));
    (n("pending"), n("complete"), n("failed"), n("canceled"))
}

/// A `batch.create` item: job `jid` in `q`, holding throttle `t`, with
/// unique key `key`.
fn throttled_put(jid: &str, key: &str) -> String {
    json!([
        "put",
        "w",
        "q",
        jid,
        "K",
        "{}",
        "0",
        "throttles",
        "[\"t\"]",
        "unique",
        key
    ])
    .to_string()
}

/// A job held back by a full throttle is live: it keeps its unique key (a
/// put with the key answers its jid) and stays pending in its batch; once
/// promoted and completed, the key is free and the batch finishes with its
/// callback.
pub fn throttled_job_keeps_its_unique_key_and_stays_pending_in_its_batch(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1"]);
    let spec = r#"{"callback":{"queue":"cb","klass":"Done","jid":"cbj"}}"#;
    let (a, b) = (throttled_put("a", "ka"), throttled_put("b", "kb"));
    t.ok("batch.create", 1.0, &["b1", spec, &a, &b]);

    assert_eq!(t.pop_jids(2.0, "q", "w", "2"), vec!["a"]);
    assert_eq!(t.state("b"), "throttled");
    assert_eq!(batch_counts(t, "b1"), (2, 0, 0, 0));

    // The held-back job still holds its key.
    let again = t.ok(
        "put",
        3.0,
        &["w", "q", "other", "K", "{}", "0", "unique", "kb"],
    );
    assert_eq!(again, json!("b"), "the throttled holder answers");
    assert_eq!(t.get("other"), Value::Null, "no second job for the key");
    let refused = t.err(
        "put",
        3.0,
        &[
            "w",
            "q",
            "other",
            "K",
            "{}",
            "0",
            "unique",
            "kb",
            "on-conflict",
            "refuse",
        ],
    );
    assert!(refused.message().contains("job b"), "{}", refused.message());

    // a completes: b is promoted, popped, completed; the batch finishes.
    t.ok("complete", 4.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.state("b"), "waiting");
    assert_eq!(batch_counts(t, "b1"), (1, 1, 0, 0));
    assert_eq!(t.get("cbj"), Value::Null, "b is still pending");
    assert_eq!(t.pop_jids(5.0, "q", "w", "1"), vec!["b"]);
    t.ok("complete", 6.0, &["b", "w", "q", "{}"]);
    assert_eq!(batch_counts(t, "b1"), (0, 2, 0, 0));
    assert_eq!(
        t.state("cbj"),
        "waiting",
        "the callback is put once all finished"
    );

    // Both keys are free again.
    let fresh = t.ok("put", 7.0, &["w", "q", "c", "K", "{}", "0", "unique", "kb"]);
    assert_eq!(fresh, json!("c"));
}

/// Cancelling a throttled batch job frees nothing it did not hold, counts it
/// canceled in its batch, and frees its unique key.
pub fn cancelling_a_throttled_batch_job(t: &Harness) {
    t.ok("throttle.set", 0.0, &["t", "1"]);
    let (a, b) = (throttled_put("a", "a"), throttled_put("b", "b"));
    t.ok("batch.create", 1.0, &["b1", "{}", &a, &b]);
    assert_eq!(t.pop_jids(2.0, "q", "w", "2"), vec!["a"]);
    assert_eq!(t.state("b"), "throttled");

    t.ok("cancel", 3.0, &["b"]);
    assert_eq!(batch_counts(t, "b1"), (1, 0, 0, 1));
    let v = t.ok("throttle.get", 3.0, &["t"]);
    assert_eq!(
        (v["running"].clone(), v["pending"].clone()),
        (json!(1), json!(0))
    );
    // b's key is free: a new job takes it.
    assert_eq!(
        t.ok("put", 4.0, &["w", "q", "b2", "K", "{}", "0", "unique", "b"]),
        json!("b2")
    );
    // a still runs under its slot; completing it finishes the batch.
    t.ok("complete", 5.0, &["a", "w", "q", "{}"]);
    assert_eq!(batch_counts(t, "b1"), (0, 1, 0, 1));
    assert!(t.ok("batch.get", 5.0, &["b1"])["finished"].is_number());
}
