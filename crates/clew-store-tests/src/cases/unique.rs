//! Conformance cases: uniqueness keys (`put ... unique KEY [on-conflict
//! existing|replace|refuse]`): at most one live job holds a key.

#[allow(unused_imports)]
use crate::prelude::*;
use clew_core::unique::{OnConflict, Unique};

/// `put` of `jid` into `q` with `data` and the key `key`, plus `extra`
/// options; the reply or the error.
fn put_key(
    t: &Harness,
    now: f64,
    jid: &str,
    data: &str,
    key: &str,
    extra: &[&str],
) -> Result<Value, Error> {
    let mut args = vec!["w", "q", jid, "K", data, "0", "unique", key];
    args.extend_from_slice(extra);
    t.call("put", now, &args)
}

/// A typed put of `jid` with a key and a policy.
fn typed(jid: &str, key: &str, on_conflict: OnConflict) -> Command {
    Command::Put(PutParams {
        jid: jid.into(),
        unique: Some(Unique::new(key).on_conflict(on_conflict)),
        ..PutParams::new("q", "K")
    })
}

fn exists(t: &Harness, jid: &str) -> bool {
    !t.get(jid).is_null()
}

/// A job with a key shows it as `unique_key`; a job without one keeps
/// qless's exact shape (no `unique_key`).
pub fn unique_key_shown_on_the_job(t: &Harness) {
    put_key(t, 0.0, "a", "{}", "search:user-42", &[]).expect("put");
    assert_eq!(t.get("a")["unique_key"], json!("search:user-42"));
    t.put(0.0, "q", "b");
    let b = t.get("b");
    assert!(b.get("unique_key").is_none(), "{b}");
}

/// `existing` (the default): a second put with a live job's key changes
/// nothing and answers the holder's jid.
pub fn unique_existing_returns_the_holder(t: &Harness) {
    assert_eq!(
        put_key(t, 0.0, "a", r#"{"n":1}"#, "k", &[]).expect("put"),
        json!("a")
    );
    let before = t.get("a");
    assert_eq!(
        put_key(t, 1.0, "b", r#"{"n":2}"#, "k", &[]).expect("put"),
        json!("a")
    );
    assert_eq!(
        put_key(t, 2.0, "c", r#"{"n":3}"#, "k", &["on-conflict", "existing"]).expect("put"),
        json!("a")
    );
    assert!(!exists(t, "b") && !exists(t, "c"));
    assert_eq!(t.get("a"), before, "the holder is untouched");
    assert_eq!(t.ok("length", 3.0, &["q"]), json!(1));
}

/// `replace`: the holder's data (and metadata if given) are replaced, with
/// a `replaced` history entry; its place in the queue is kept.
pub fn unique_replace_replaces_the_holders_data(t: &Harness) {
    put_key(t, 0.0, "a", r#"{"n":1}"#, "k", &["priority", "3"]).expect("put");
    t.put(0.5, "q", "other");
    let r = put_key(
        t,
        1.0,
        "b",
        r#"{"n":2}"#,
        "k",
        &["on-conflict", "replace", "metadata", r#"{"m":1}"#],
    )
    .expect("put");
    assert_eq!(r, json!("a"));
    assert!(!exists(t, "b"));
    let a = t.get("a");
    assert_eq!(a["data"], json!(r#"{"n":2}"#));
    assert_eq!(a["metadata"], json!({"m": 1}));
    assert_eq!(a["priority"], json!(3));
    assert_eq!(a["state"], json!("waiting"));
    assert_eq!(history_whats(&a), ["put", "replaced"]);
    assert_eq!(a["history"][1]["unique_key"], json!("k"));
    // Still first in line.
    assert_eq!(t.pop_one(2.0, "q", "w").as_deref(), Some("a"));
}

/// `replace` also reaches a scheduled holder and keeps its delay.
pub fn unique_replace_keeps_a_scheduled_holder_scheduled(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "K", "{}", "10", "unique", "k"]);
    assert_eq!(t.state("a"), "scheduled");
    let r = put_key(t, 1.0, "b", r#"{"x":1}"#, "k", &["on-conflict", "replace"]);
    assert_eq!(r.expect("put"), json!("a"));
    assert_eq!(t.state("a"), "scheduled");
    assert_eq!(t.get("a")["data"], json!(r#"{"x":1}"#));
    assert_eq!(t.pop_one(5.0, "q", "w"), None);
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("a"));
}

/// `replace` of a running holder is refused (its handler already read the
/// data): a conflict naming the key and the holder; nothing changes.
pub fn unique_replace_refuses_a_running_holder(t: &Harness) {
    put_key(t, 0.0, "a", r#"{"n":1}"#, "k", &[]).expect("put");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    let before = t.snapshot(2.0, &["a", "b"], &["q"]);
    let e =
        put_key(t, 2.0, "b", r#"{"n":2}"#, "k", &["on-conflict", "replace"]).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    for needle in ["\"k\"", "job a", "running"] {
        assert!(e.message().contains(needle), "{e}");
    }
    assert_eq!(t.snapshot(2.0, &["a", "b"], &["q"]), before);
}

/// `refuse`: a conflict naming the key and the holder; nothing is put.
pub fn unique_refuse_names_key_and_holder(t: &Harness) {
    put_key(t, 0.0, "a", "{}", "search:user-42", &[]).expect("put");
    let before = t.snapshot(1.0, &["a", "b"], &["q"]);
    let e = put_key(
        t,
        1.0,
        "b",
        "{}",
        "search:user-42",
        &["on-conflict", "refuse"],
    )
    .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("\"search:user-42\""), "{e}");
    assert!(e.message().contains("job a"), "{e}");
    assert_eq!(t.snapshot(1.0, &["a", "b"], &["q"]), before);
    // The typed API says the same.
    let e = t
        .exec(1.0, typed("b", "search:user-42", OnConflict::Refuse))
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

/// Every live state holds the key: depends, scheduled, waiting, stalled
/// (timed out), running.
pub fn unique_every_live_state_holds_the_key(t: &Harness) {
    t.put(0.0, "q", "dep");
    let mut i = 0;
    let mut check = |t: &Harness, holder: &str, state: &str| {
        assert_eq!(t.state(holder), state);
        i += 1;
        let r = put_key(
            t,
            5.0,
            &format!("x{i}"),
            "{}",
            holder,
            &["on-conflict", "refuse"],
        );
        assert_eq!(r.expect_err(state).kind(), ErrorKind::Conflict, "{state}");
    };
    // The keys are named after their holders.
    t.ok(
        "put",
        1.0,
        &[
            "w",
            "q",
            "d",
            "K",
            "{}",
            "0",
            "unique",
            "d",
            "depends",
            r#"["dep"]"#,
        ],
    );
    check(t, "d", "depends");
    t.ok(
        "put",
        1.0,
        &["w", "q", "s", "K", "{}", "100", "unique", "s"],
    );
    check(t, "s", "scheduled");
    put_key(t, 1.0, "wt", "{}", "wt", &[]).expect("put");
    check(t, "wt", "waiting");
    let r = put_key(t, 1.0, "r", "{}", "r", &["priority", "99"]).expect("put");
    assert_eq!(r, json!("r"));
    assert_eq!(t.pop_one(2.0, "q", "w").as_deref(), Some("r"));
    check(t, "r", "running");
    t.ok("timeout", 3.0, &["r"]);
    check(t, "r", "stalled");
}

/// A holder that completes or fails frees its key; it keeps showing it.
pub fn unique_key_freed_by_complete_and_fail(t: &Harness) {
    put_key(t, 0.0, "a", "{}", "k", &[]).expect("put");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    t.ok("complete", 2.0, &["a", "w", "q", "{}"]);
    assert_eq!(t.get("a")["unique_key"], json!("k"));
    assert_eq!(
        put_key(t, 3.0, "b", "{}", "k", &["on-conflict", "refuse"]).expect("put"),
        json!("b")
    );
    assert_eq!(t.pop_one(4.0, "q", "w").as_deref(), Some("b"));
    t.ok("fail", 5.0, &["b", "w", "g", "boom"]);
    assert_eq!(
        put_key(t, 6.0, "c", "{}", "k", &["on-conflict", "refuse"]).expect("put"),
        json!("c")
    );
    assert_eq!(t.get("c")["unique_key"], json!("k"));
}

/// A holder's own re-put is never its own conflict (whatever the policy),
/// and a re-put without `unique` keeps the key.
pub fn unique_reput_of_the_holder(t: &Harness) {
    put_key(t, 0.0, "a", r#"{"n":1}"#, "k", &[]).expect("put");
    let r = put_key(t, 1.0, "a", r#"{"n":2}"#, "k", &["on-conflict", "refuse"]);
    assert_eq!(r.expect("re-put"), json!("a"));
    assert_eq!(t.get("a")["data"], json!(r#"{"n":2}"#));
    t.ok("put", 2.0, &["w", "q", "a", "K", r#"{"n":3}"#, "0"]);
    let a = t.get("a");
    assert_eq!(a["unique_key"], json!("k"));
    assert_eq!(a["data"], json!(r#"{"n":3}"#));
    assert_eq!(
        put_key(t, 3.0, "b", "{}", "k", &[]).expect("put"),
        json!("a")
    );
    // A running holder re-put (taken back from its worker) keeps it too.
    assert_eq!(t.pop_one(4.0, "q", "w").as_deref(), Some("a"));
    t.ok("put", 5.0, &["w", "q", "a", "K", "{}", "0"]);
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(
        put_key(t, 6.0, "b", "{}", "k", &[]).expect("put"),
        json!("a")
    );
    // A re-put with another key moves the job to that key.
    put_key(t, 7.0, "a", "{}", "k2", &[]).expect("put");
    assert_eq!(
        put_key(t, 8.0, "b", "{}", "k", &[]).expect("put"),
        json!("b")
    );
    assert_eq!(
        put_key(t, 8.0, "c", "{}", "k2", &[]).expect("put"),
        json!("a")
    );
}

/// A failed job put again (or unfailed) while another live job holds its
/// key runs anyway but drops the key, with a `unique-dropped` history
/// entry naming the holder; with the key free, it keeps it.
pub fn unique_failed_job_back_drops_a_taken_key(t: &Harness) {
    for (jid, key) in [("a", "k"), ("c", "k2"), ("e", "k3")] {
        put_key(t, 0.0, jid, "{}", key, &[]).expect("put");
        assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some(jid));
        t.ok("fail", 2.0, &[jid, "w", "g", "boom"]);
    }
    put_key(t, 3.0, "b", "{}", "k", &[]).expect("put");
    put_key(t, 3.0, "d", "{}", "k2", &[]).expect("put");

    // Re-put of a (no `unique`): it runs without the key.
    t.ok("put", 4.0, &["w", "q", "a", "K", "{}", "0"]);
    let a = t.get("a");
    assert_eq!(a["state"], json!("waiting"));
    assert!(a.get("unique_key").is_none(), "{a}");
    let last = a["history"].as_array().expect("history").last().cloned();
    let last = last.expect("an entry");
    assert_eq!(last["what"], json!("unique-dropped"));
    assert_eq!(last["unique_key"], json!("k"));
    assert_eq!(last["holder"], json!("b"));
    assert_eq!(
        put_key(t, 5.0, "x", "{}", "k", &[]).expect("put"),
        json!("b")
    );

    // Unfail of c and e: c drops k2 (d holds it), e keeps k3 (free).
    assert_eq!(t.ok("unfail", 6.0, &["q", "g", "10"]), json!(2));
    let c = t.get("c");
    assert_eq!(c["state"], json!("waiting"));
    assert!(c.get("unique_key").is_none(), "{c}");
    assert!(history_whats(&c).contains(&"unique-dropped".to_owned()));
    let e = t.get("e");
    assert_eq!(e["state"], json!("waiting"));
    assert_eq!(e["unique_key"], json!("k3"));
    assert!(!history_whats(&e).contains(&"unique-dropped".to_owned()));
    assert_eq!(
        put_key(t, 7.0, "y", "{}", "k3", &[]).expect("put"),
        json!("e")
    );
}

/// A failed job put again with its key free keeps it.
pub fn unique_failed_job_back_keeps_a_free_key(t: &Harness) {
    put_key(t, 0.0, "a", "{}", "k", &[]).expect("put");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    t.ok("fail", 2.0, &["a", "w", "g", "boom"]);
    t.ok("put", 3.0, &["w", "q", "a", "K", "{}", "0"]);
    assert_eq!(t.get("a")["unique_key"], json!("k"));
    assert_eq!(
        put_key(t, 4.0, "b", "{}", "k", &[]).expect("put"),
        json!("a")
    );
}

/// Two puts with one key in one atomic batch: the second sees the first
/// (`existing` answers its jid, `replace` replaces its data, `refuse`
/// refuses the whole batch); in a non-atomic batch only the second is
/// refused.
pub fn unique_batch_with_one_key_twice(t: &Harness) {
    let batch = |commands: Vec<Command>, atomic: bool| Command::Batch { commands, atomic };
    let r = t
        .exec(
            0.0,
            batch(
                vec![
                    typed("a", "k", OnConflict::Existing),
                    typed("b", "k", OnConflict::Existing),
                ],
                true,
            ),
        )
        .expect("batch");
    assert_eq!(
        r,
        Reply::Batch(vec![Ok(Reply::Str("a".into())), Ok(Reply::Str("a".into()))])
    );
    assert!(exists(t, "a") && !exists(t, "b"));

    let mut second = PutParams {
        jid: "d".into(),
        data: r#"{"v":2}"#.into(),
        unique: Some(Unique::new("k2").on_conflict(OnConflict::Replace)),
        ..PutParams::new("q", "K")
    };
    let r = t
        .exec(
            1.0,
            batch(
                vec![
                    typed("c", "k2", OnConflict::Existing),
                    Command::Put(second.clone()),
                ],
                true,
            ),
        )
        .expect("batch");
    assert_eq!(
        r,
        Reply::Batch(vec![Ok(Reply::Str("c".into())), Ok(Reply::Str("c".into()))])
    );
    assert_eq!(t.get("c")["data"], json!(r#"{"v":2}"#));
    assert!(!exists(t, "d"));

    second.jid = "f".into();
    second.unique = Some(Unique::new("k3").on_conflict(OnConflict::Refuse));
    let e = t
        .exec(
            2.0,
            batch(
                vec![
                    typed("e", "k3", OnConflict::Refuse),
                    Command::Put(second.clone()),
                ],
                true,
            ),
        )
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(!exists(t, "e") && !exists(t, "f"));

    let r = t
        .exec(
            3.0,
            batch(
                vec![typed("e", "k3", OnConflict::Refuse), Command::Put(second)],
                false,
            ),
        )
        .expect("batch");
    let Reply::Batch(items) = r else {
        panic!("a batch reply")
    };
    assert_eq!(items[0], Ok(Reply::Str("e".into())));
    assert_eq!(
        items[1].as_ref().map_err(Error::kind),
        Err(ErrorKind::Conflict)
    );
    assert!(exists(t, "e") && !exists(t, "f"));
}

/// Bad keys and policies are the caller's error, in both forms, and put
/// nothing.
pub fn unique_validation(t: &Harness) {
    let long = "k".repeat(256);
    for (args, needle) in [
        (vec!["unique", ""], "\"unique\" must not be empty"),
        (vec!["unique", long.as_str()], "at most 255"),
        (
            vec!["unique", "k", "on-conflict", "merge"],
            "existing, replace or refuse",
        ),
        (vec!["on-conflict", "refuse"], "needs \"unique\""),
        (vec!["unique"], "Odd number"),
    ] {
        let mut all = vec!["w", "q", "j", "K", "{}", "0"];
        all.extend(args.iter().copied());
        t.err_with("put", 0.0, &all, ErrorKind::Invalid, needle);
    }
    let e = t
        .exec(0.0, typed("j", "", OnConflict::Existing))
        .expect_err("empty key");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let e = t
        .exec(0.0, typed("j", &long, OnConflict::Existing))
        .expect_err("long key");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(!exists(t, "j"));
    // 255 bytes are fine.
    let ok = "k".repeat(255);
    assert_eq!(
        put_key(t, 0.0, "j", "{}", &ok, &[]).expect("put"),
        json!("j")
    );
}

/// Advancing a holder to another queue (`complete ... next`) keeps it
/// live, so it keeps the key.
pub fn unique_holder_advanced_keeps_the_key(t: &Harness) {
    put_key(t, 0.0, "a", "{}", "k", &[]).expect("put");
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    t.ok("complete", 2.0, &["a", "w", "q", "{}", "next", "q2"]);
    assert_eq!(t.state("a"), "waiting");
    assert_eq!(
        put_key(t, 3.0, "b", "{}", "k", &[]).expect("put"),
        json!("a")
    );
}

/// Many concurrent puts with one key (a mix of policies) yield exactly
/// one job; every caller is told its jid or refused.
pub fn unique_concurrent_puts_yield_one_job(t: &Harness) {
    let engine = t.engine().clone();
    let results = t.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..40 {
            let engine = engine.clone();
            set.spawn(async move {
                let policy = OnConflict::ALL[i % 3];
                let p = PutParams {
                    jid: format!("j{i:02}"),
                    unique: Some(Unique::new("one").on_conflict(policy)),
                    ..PutParams::new("q", "K")
                };
                (policy, engine.put(p).await)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.expect("task"));
        }
        out
    });
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(1));
    let holder = t.pop_one(1.0, "q", "w").expect("one job");
    for (policy, r) in results {
        match (policy, r) {
            (_, Ok(jid)) => assert_eq!(jid, holder),
            (OnConflict::Refuse | OnConflict::Replace, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e}")
            }
            (p, Err(e)) => panic!("{p}: {e}"),
        }
    }
}

/// `unique.get KEY`: the live holder's job, or nothing once the key is
/// free (a failed or complete job carrying the key does not count).
pub fn unique_get_finds_the_live_holder(t: &Harness) {
    assert_eq!(t.ok("unique.get", 0.0, &["k"]), Value::Null);
    put_key(t, 0.0, "a", r#"{"n":1}"#, "k", &[]).expect("put");
    let holder = t.ok("unique.get", 1.0, &["k"]);
    assert_eq!(holder, t.get("a"));
    assert_eq!(t.pop_one(1.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.ok("unique.get", 1.0, &["k"])["state"], json!("running"));
    t.ok("fail", 2.0, &["a", "w", "g", "boom"]);
    assert_eq!(t.ok("unique.get", 3.0, &["k"]), Value::Null);
    put_key(t, 3.0, "b", "{}", "k", &[]).expect("put");
    assert_eq!(t.ok("unique.get", 3.0, &["k"])["jid"], json!("b"));
    let reply = t
        .exec(3.0, Command::UniqueGet { key: "k".into() })
        .expect("typed");
    let Reply::Job(Some(job)) = reply else {
        panic!("a job")
    };
    assert_eq!(job.jid(), "b");
    t.err_with(
        "unique.get",
        3.0,
        &[""],
        ErrorKind::Invalid,
        "must not be empty",
    );
    t.err_with("unique.get", 3.0, &[], ErrorKind::Invalid, "key");
    t.err_with(
        "unique.get",
        3.0,
        &["k", "x"],
        ErrorKind::Invalid,
        "Too many",
    );
}
