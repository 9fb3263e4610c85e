//! Conformance cases: the typed Rust API (`Engine` methods and `Command`
//! values), beside the qless string form the other areas use.

#[allow(unused_imports)]
use crate::prelude::*;

/// `Engine::put` with no jid generates a 32-hex-digit one and returns it;
/// jids generated later sort later.
pub fn put_generates_a_jid_when_none_is_given(t: &Harness) {
    let a = t
        .block_on(t.engine().put(PutParams::new("q", "K")))
        .expect("put");
    let b = t
        .block_on(t.engine().put(PutParams::new("q", "K")))
        .expect("put");
    assert_eq!(a.len(), 32, "{a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
    // Time-ordered (UUID v7): a later put's jid sorts after an earlier one's,
    // so the stores' jid indexes grow at one end (see `new_jid`).
    assert!(a < b, "{a} then {b}");
    assert_eq!(&a[12..13], "7", "a version-7 UUID: {a}");
    assert_eq!(t.state(&a), "waiting");
    assert_eq!(t.get(&b)["klass"], json!("K"));
}

/// A job's whole life through the typed API, with time from the engine's clock.
pub fn typed_lifecycle_uses_the_clock(t: &Harness) {
    t.clock().set_secs(100.0);
    let mut p = PutParams::new("q", "K");
    p.jid = "j".into();
    p.data = r#"{"x":1}"#.into();
    t.block_on(t.engine().put(p)).expect("put");
    t.clock().set_secs(105.0);
    let jobs = t.block_on(t.engine().pop("q", "w", 5)).expect("pop");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].record.expires, Timestamp::from_secs(165));
    t.clock().set_secs(110.0);
    let exp = t
        .block_on(t.engine().heartbeat("j", "w", None))
        .expect("heartbeat");
    assert_eq!(exp, Timestamp::from_secs(170));
    let state = t
        .block_on(t.engine().complete(CompleteParams {
            jid: "j".into(),
            worker: "w".into(),
            queue: "q".into(),
            data: r#"{"x":2}"#.into(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        }))
        .expect("complete");
    assert_eq!(state, "complete");
    let job = t
        .block_on(t.engine().get("j"))
        .expect("get")
        .expect("exists");
    assert_eq!(job.record.data, r#"{"x":2}"#);
    let whens: Vec<i64> = job.history.iter().map(|h| h.when.floor_secs()).collect();
    assert_eq!(whens, vec![100, 105, 110]);
}

/// The typed API validates like the string form: bad JSON data is refused
/// and nothing is created.
pub fn typed_put_validates_data(t: &Harness) {
    let mut p = PutParams::new("q", "K");
    p.jid = "j".into();
    p.data = "{nope".into();
    let e = t.block_on(t.engine().put(p)).expect_err("bad data");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("Arg \"data\" not JSON"), "{e}");
    assert_eq!(t.get("j"), Value::Null);
}

/// A typed put with a negative or non-finite delay is refused.
pub fn typed_put_refuses_bad_delay(t: &Harness) {
    for delay in [-1.0, f64::NAN, f64::INFINITY] {
        let mut p = PutParams::new("q", "K");
        p.jid = "j".into();
        p.delay = delay;
        let e = t.exec(0.0, Command::Put(p)).expect_err("bad delay");
        assert_eq!(e.kind(), ErrorKind::Invalid, "delay {delay}");
    }
    assert_eq!(t.get("j"), Value::Null);
}

/// Time may go backwards between calls: a pop before the put time still
/// hands the job out and records a zero-second wait bucket.
pub fn time_may_go_backwards(t: &Harness) {
    t.put(1000.0, "q", "j");
    let jobs = t.ok("pop", 990.0, &["q", "w", "1"]);
    assert_eq!(jobs[0]["jid"], json!("j"));
    let stats = t.ok("stats", 990.0, &["q", "990"]);
    assert_eq!(stats["wait"]["count"], json!(1));
    assert_eq!(stats["wait"]["histogram"][0], json!(1));
    assert_eq!(t.ok("heartbeat", 980.0, &["j", "w"]), json!(1040));
}

/// `Engine::fail` and `Engine::cancel` act like their qless forms.
pub fn typed_fail_and_cancel(t: &Harness) {
    t.put(0.0, "q", "j");
    t.block_on(t.engine().pop("q", "w", 1)).expect("pop");
    t.block_on(t.engine().fail("j", "w", "g", "boom"))
        .expect("fail");
    assert_eq!(t.state("j"), "failed");
    assert_eq!(t.get("j")["failure"]["message"], json!("boom"));
    let gone = t.block_on(t.engine().cancel(&["j"])).expect("cancel");
    assert_eq!(gone, vec!["j".to_owned()]);
    assert_eq!(t.get("j"), Value::Null);
    assert_eq!(t.ok("failed", 0.0, &[]), json!({}));
}

/// Every reply renders through `Reply::to_json` to the same JSON the string
/// form returns.
pub fn typed_replies_render_like_the_string_form(t: &Harness) {
    t.put(0.0, "q", "j");
    let typed = t
        .exec(0.0, Command::Get { jid: "j".into() })
        .expect("get")
        .to_json();
    assert_eq!(typed, t.get("j"));
    let typed = t
        .exec(0.0, Command::Queues { queue: None })
        .expect("queues")
        .to_json();
    assert_eq!(typed, t.ok("queues", 0.0, &[]));
}

/// `Store::flush` wipes jobs, queues, config and events, and event numbers
/// keep increasing afterwards.
pub fn flush_wipes_everything_but_keeps_event_numbers_increasing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.ok("track", 0.0, &["track", "a"]);
    t.ok("recur", 0.0, &["q", "r", "K", "{}", "interval", "60", "0"]);
    let last = t.logged_events(0).last().expect("events").seq;
    t.block_on(t.engine().store().flush()).expect("flush");
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.ok("queues", 0.0, &[]), json!([]));
    assert_eq!(t.ok("config.get", 0.0, &["heartbeat"]), json!(60));
    assert_eq!(t.ok("track", 0.0, &[]), json!({"jobs": [], "expired": []}));
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
    assert!(t.logged_events(0).is_empty());
    t.put(1.0, "q", "b");
    let after = t.logged_events(0);
    assert_eq!(after.len(), 1);
    assert!(
        after[0].seq > last,
        "seq {} should exceed {last}",
        after[0].seq
    );
}
