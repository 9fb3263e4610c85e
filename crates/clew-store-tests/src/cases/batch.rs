//! Conformance cases: batches (several commands in one transaction).

#[allow(unused_imports)]
use crate::prelude::*;

fn put(jid: &str) -> Command {
    Command::Put(PutParams {
        jid: jid.into(),
        ..PutParams::new("q", "K")
    })
}

fn complete(jid: &str, worker: &str) -> Command {
    Command::Complete(CompleteParams {
        jid: jid.into(),
        worker: worker.into(),
        queue: "q".into(),
        data: "{}".into(),
        next: None,
        delay: 0.0,
        depends: Vec::new(),
        metadata: None,
    })
}

fn results(reply: Reply) -> Vec<Result<Reply, Error>> {
    match reply {
        Reply::Batch(r) => r,
        other => panic!("expected a batch reply, got {other:?}"),
    }
}

/// The highest sequence number in the durable log (0 when empty).
fn last_seq(t: &Harness) -> i64 {
    t.all_logged_events(0).last().map(|e| e.seq).unwrap_or(0)
}

/// An atomic batch of puts puts every job, in order, and returns each jid.
pub fn batch_atomic_puts_every_job(t: &Harness) {
    let reply = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![put("a"), put("b"), put("c")],
                atomic: true,
            },
        )
        .expect("batch");
    let r = results(reply);
    assert_eq!(
        r,
        vec![
            Ok(Reply::Str("a".into())),
            Ok(Reply::Str("b".into())),
            Ok(Reply::Str("c".into())),
        ]
    );
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(3));
    let popped = t.ok("pop", 2.0, &["q", "w", "3"]);
    let order: Vec<&str> = popped
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid"))
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
}

/// One refused command refuses an atomic batch: nothing of it stays, not
/// even the commands before it, and it logs no event.
pub fn batch_atomic_refusal_keeps_nothing(t: &Harness) {
    t.put(0.0, "q", "running");
    let seq = last_seq(t);
    let e = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![put("a"), put("b"), complete("running", "nobody")],
                atomic: true,
            },
        )
        .expect_err("the complete is refused");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(t.get("b"), Value::Null);
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(1));
    assert!(t.all_logged_events(seq).is_empty());
}

/// A non-atomic batch runs each command on its own: a refused complete
/// leaves its job running and the other completes done, with only their
/// events logged.
pub fn batch_each_keeps_the_others(t: &Harness) {
    for jid in ["a", "b", "c"] {
        t.put(0.0, "q", jid);
    }
    t.ok("pop", 1.0, &["q", "w", "3"]);
    let seq = last_seq(t);
    let reply = t
        .exec(
            2.0,
            Command::Batch {
                commands: vec![
                    complete("a", "w"),
                    complete("b", "other"),
                    complete("c", "w"),
                ],
                atomic: false,
            },
        )
        .expect("batch");
    let r = results(reply);
    assert_eq!(r[0], Ok(Reply::Str("complete".into())));
    assert_eq!(
        r[1].as_ref().expect_err("b is held by w").kind(),
        ErrorKind::Conflict
    );
    assert_eq!(r[2], Ok(Reply::Str("complete".into())));
    assert_eq!(t.state("a"), "complete");
    assert_eq!(t.state("b"), "running");
    assert_eq!(t.state("c"), "complete");
    let logged = t.all_logged_events(seq);
    assert!(!logged.is_empty());
    assert!(
        logged.iter().all(|e| !e.message.contains("\"b\"")),
        "no event of the refused complete: {logged:?}"
    );
    let finished: Vec<String> = t
        .lifecycle()
        .into_iter()
        .filter(|l| l.kind.as_str() == "perform_finished")
        .map(|l| l.jid)
        .collect();
    assert_eq!(finished, ["a", "c"]);
}

/// Batches do not nest.
pub fn batch_nested_is_refused(t: &Harness) {
    let e = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![Command::Batch {
                    commands: vec![put("a")],
                    atomic: true,
                }],
                atomic: false,
            },
        )
        .expect_err("nested");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("do not nest"), "{e}");
    assert_eq!(t.get("a"), Value::Null);
}

/// The qless string form: `batch atomic|each` and one JSON array per
/// command; each result is `{"ok": reply}` or `{"error": {code, message}}`.
pub fn batch_qless_form(t: &Harness) {
    let r = t.ok(
        "batch",
        1.0,
        &[
            "each",
            r#"["put","w","q","j1","k","{}","0"]"#,
            r#"["complete","nope","w","q","{}"]"#,
        ],
    );
    assert_eq!(r[0], json!({"ok": "j1"}));
    assert_eq!(r[1]["error"]["code"], json!("not_found"), "{r}");
    let e = t.err("batch", 1.0, &["sometimes"]);
    assert!(e.message().contains("atomic or each"), "{e}");
    let e = t.err("batch", 1.0, &["atomic", "[\"put\"]"]);
    assert!(e.message().contains("command 1"), "{e}");
}

/// An item reads what the items before it wrote: a job put twice in one
/// batch is put once, then again (history `put`, `put`); a job completed
/// twice in one batch is complete after the first, so the second is
/// refused. (A store reading the items' jobs ahead must keep them
/// current.)
pub fn batch_items_see_the_writes_of_earlier_items(t: &Harness) {
    let mut again = PutParams::new("q2", "K");
    again.jid = "a".into();
    let reply = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![put("a"), Command::Put(again), put("b")],
                atomic: true,
            },
        )
        .expect("batch");
    assert!(results(reply).iter().all(Result::is_ok));
    let a = t.get("a");
    assert_eq!(a["queue"], "q2", "{a}");
    assert_eq!(history_whats(&a), ["put", "put"], "{a}");
    assert_eq!(t.ok("length", 1.0, &["q"]), json!(1));
    assert_eq!(t.pop_one(2.0, "q", "w").as_deref(), Some("b"));
    let reply = t
        .exec(
            3.0,
            Command::Batch {
                commands: vec![complete("b", "w"), complete("b", "w")],
                atomic: false,
            },
        )
        .expect("batch");
    let r = results(reply);
    assert_eq!(r[0], Ok(Reply::Str("complete".into())));
    assert_eq!(
        r[1].as_ref().expect_err("b is complete").kind(),
        ErrorKind::Conflict
    );
    assert_eq!(history_whats(&t.get("b")), ["put", "popped", "done"]);
    // Jobs a pop of the batch takes (rows it lists, not reads one by one)
    // are running for the items after it.
    t.put(4.0, "q", "c");
    t.put(4.0, "q", "d");
    let pop = Command::Pop {
        queue: "q".into(),
        worker: "w".into(),
        count: 2,
    };
    let reply = t
        .exec(
            5.0,
            Command::Batch {
                commands: vec![pop, complete("c", "w"), complete("d", "w")],
                atomic: true,
            },
        )
        .expect("batch");
    let r = results(reply);
    assert_eq!(
        r[1..],
        [
            Ok(Reply::Str("complete".into())),
            Ok(Reply::Str("complete".into()))
        ]
    );
    assert_eq!(t.state("c"), "complete");
}

/// A batch of completes keeps exactly the newest `jobs-history-count`
/// completed jobs, each complete counting those before it in the batch.
pub fn batch_of_completes_keeps_jobs_history_count(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history-count", "2"]);
    for jid in ["a", "b", "c", "d", "e"] {
        t.put(0.0, "q", jid);
    }
    t.ok("pop", 1.0, &["q", "w", "5"]);
    let commands = ["a", "b", "c", "d", "e"]
        .into_iter()
        .map(|jid| complete(jid, "w"))
        .collect();
    let reply = t
        .exec(
            2.0,
            Command::Batch {
                commands,
                atomic: false,
            },
        )
        .expect("batch");
    assert!(results(reply).iter().all(Result::is_ok));
    assert_eq!(t.ok("jobs", 3.0, &["complete"]), json!(["e", "d"]));
    t.put(4.0, "q", "f");
    t.ok("pop", 5.0, &["q", "w", "1"]);
    t.ok("complete", 6.0, &["f", "w", "q", "{}"]);
    assert_eq!(t.ok("jobs", 7.0, &["complete"]), json!(["f", "e"]));
}

/// A pop of a batch sees the queue as the items before it left it: paused
/// by an earlier item (nothing handed out), or given a due recurring
/// template (its child handed out). (A store remembering what a queue has
/// for the transaction must note its own changes.)
pub fn batch_pops_see_pauses_and_templates_of_earlier_items(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    let pop = || Command::Pop {
        queue: "q".into(),
        worker: "w".into(),
        count: 1,
    };
    let popped = |reply: &Result<Reply, Error>| match reply {
        Ok(Reply::Jobs(jobs)) => jobs.len(),
        other => panic!("pop: {other:?}"),
    };
    let pause = Command::Pause {
        queues: vec!["q".into()],
    };
    let reply = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![pop(), pause, pop()],
                atomic: true,
            },
        )
        .expect("batch");
    let r = results(reply);
    assert_eq!((popped(&r[0]), popped(&r[2])), (1, 0));
    t.ok("unpause", 2.0, &["q"]);
    let recur = Command::Recur(RecurParams {
        queue: "q".into(),
        jid: "r".into(),
        klass: "K".into(),
        data: "{}".into(),
        interval: 60.0,
        offset: 0.0,
        priority: 0,
        tags: Vec::new(),
        retries: 0,
        backlog: 0,
        cron: None,
        timezone: None,
        missed: Default::default(),
    });
    let reply = t
        .exec(
            3.0,
            Command::Batch {
                commands: vec![pop(), recur, pop()],
                atomic: true,
            },
        )
        .expect("batch");
    let r = results(reply);
    // b, then the template's first child.
    assert_eq!((popped(&r[0]), popped(&r[2])), (1, 1));
}

/// A put of a batch registers its queue again after an earlier item
/// forgot it. (A store remembering the queues a transaction registered
/// must forget them too.)
pub fn batch_put_registers_a_queue_forgotten_by_an_earlier_item(t: &Harness) {
    let forget = Command::QueueForget {
        queues: vec!["q".into()],
    };
    let reply = t
        .exec(
            1.0,
            Command::Batch {
                commands: vec![put("a"), forget, put("b")],
                atomic: true,
            },
        )
        .expect("batch");
    assert!(results(reply).iter().all(Result::is_ok));
    let queues = t.ok("queues", 2.0, &[]);
    let names: Vec<&str> = queues
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["q"], "{queues}");
}
