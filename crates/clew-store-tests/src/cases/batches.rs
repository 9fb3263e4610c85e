//! Conformance cases: batches as objects (an id, progress counters, a
//! callback job put once when every job has finished). `batch.rs` is the
//! other batch: several commands in one transaction.

#[allow(unused_imports)]
use crate::prelude::*;

const SPEC: &str = r#"{"description":"nightly","callback":{"queue":"cb","klass":"Done","jid":"cbj","data":{"x":1}}}"#;

fn put_arg(jid: &str) -> String {
    json!(["put", "w", "q", jid, "K", "{}", "0"]).to_string()
}

/// `batch.create ID SPEC put...` with jobs `jids` in queue `q`.
#[track_caller]
fn create(t: &Harness, now: f64, id: &str, spec: &str, jids: &[&str]) -> Value {
    let puts: Vec<String> = jids.iter().map(|j| put_arg(j)).collect();
    let mut args = vec![id, spec];
    args.extend(puts.iter().map(String::as_str));
    t.ok("batch.create", now, &args)
}

#[track_caller]
fn batch(t: &Harness, id: &str) -> Value {
    t.ok("batch.get", 0.0, &[id])
}

/// (pending, complete, failed, canceled)
#[track_caller]
fn counts(t: &Harness, id: &str) -> (i64, i64, i64, i64) {
    let b = batch(t, id);
    let n = |k: &str| b[k].as_i64().unwrap_or_else(|| panic!("{k} in {b}"));
    (n("pending"), n("complete"), n("failed"), n("canceled"))
}

#[track_caller]
fn complete(t: &Harness, now: f64, jid: &str, worker: &str) {
    t.ok("complete", now, &[jid, worker, "q", "{}"]);
}

/// Pops every job of `q` for `worker`.
fn pop_all(t: &Harness, now: f64, worker: &str) -> Vec<String> {
    t.ok("pop", now, &["q", worker, "100"])
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect()
}

/// How many `batch_finished` events of batch `id` the durable log holds.
fn finished_events(t: &Harness, id: &str) -> usize {
    t.logged_events(0)
        .iter()
        .filter(|e| e.channel == "ql:log")
        .filter_map(|e| serde_json::from_str::<Value>(&e.message).ok())
        .filter(|v| v["event"] == "batch_finished" && v["batch"] == id)
        .count()
}

/// How many times job `jid` was put (its history's `put` entries).
fn puts_of(t: &Harness, jid: &str) -> usize {
    history_whats(&t.get(jid))
        .iter()
        .filter(|w| *w == "put")
        .count()
}

/// Creating a batch puts its jobs (each showing its batch) and reports the
/// progress; the callback job is put, with the counters in its data, when
/// the last job finishes, not before.
pub fn batch_callback_once_when_last_finishes(t: &Harness) {
    let created = create(t, 1.0, "b1", SPEC, &["a", "b", "c"]);
    assert_eq!(created["jids"], json!(["a", "b", "c"]));
    assert_eq!(created["batch"]["id"], "b1");
    assert_eq!(created["batch"]["total"], 3);
    assert_eq!(created["batch"]["pending"], 3);
    assert_eq!(created["batch"]["description"], "nightly");
    assert_eq!(created["batch"]["created"], 1);
    assert_eq!(created["batch"]["finished"], Value::Null);
    assert_eq!(created["batch"]["callback_jid"], Value::Null);
    assert_eq!(t.get("a")["batch"], "b1");
    assert_eq!(
        t.ok("batch.jobs", 1.0, &["b1"]),
        json!({"total": 3, "jobs": ["a", "b", "c"]})
    );

    assert_eq!(pop_all(t, 2.0, "w"), ["a", "b", "c"]);
    complete(t, 3.0, "a", "w");
    complete(t, 3.0, "b", "w");
    assert_eq!(counts(t, "b1"), (1, 2, 0, 0));
    assert_eq!(
        t.get("cbj"),
        Value::Null,
        "no callback while one is pending"
    );
    assert_eq!(finished_events(t, "b1"), 0);

    t.ok("fail", 4.0, &["c", "w", "boom", "it broke"]);
    assert_eq!(counts(t, "b1"), (0, 2, 1, 0));
    let b = batch(t, "b1");
    assert_eq!(b["finished"], 4);
    assert_eq!(b["callback_jid"], "cbj");
    assert_eq!(b["callback_state"], "waiting");
    let cb = t.get("cbj");
    assert_eq!(cb["queue"], "cb");
    assert_eq!(cb["klass"], "Done");
    let data: Value = serde_json::from_str(cb["data"].as_str().expect("data")).expect("json");
    assert_eq!(
        data,
        json!({"x": 1, "batch": {"id": "b1", "total": 3, "complete": 2, "failed": 1, "canceled": 0}})
    );
    assert_eq!(finished_events(t, "b1"), 1);
}

/// A failed job put again is pending again; when it completes the counters
/// move, but the callback is not put a second time.
pub fn batch_retry_moves_back_to_pending_without_second_callback(t: &Harness) {
    create(t, 1.0, "b1", SPEC, &["a"]);
    pop_all(t, 2.0, "w");
    t.ok("fail", 3.0, &["a", "w", "boom", "x"]);
    assert_eq!(counts(t, "b1"), (0, 0, 1, 0));
    assert_eq!(puts_of(t, "cbj"), 1);
    // Put again (the failed job keeps its batch without naming it).
    t.ok("put", 4.0, &["w", "q", "a", "K", "{}", "0"]);
    assert_eq!(counts(t, "b1"), (1, 0, 0, 0));
    assert_eq!(t.get("a")["batch"], "b1");
    pop_all(t, 5.0, "w");
    complete(t, 6.0, "a", "w");
    assert_eq!(counts(t, "b1"), (0, 1, 0, 0));
    assert_eq!(puts_of(t, "cbj"), 1, "the callback is put once");
    assert_eq!(finished_events(t, "b1"), 1);
    assert_eq!(batch(t, "b1")["finished"], 3, "finished when first done");
}

/// Failures by exhausted retries (`retry`) and by an expired lock with no
/// retries left are counted; `unfail` makes a job pending again.
pub fn batch_counts_every_kind_of_failure(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok("config.set", 0.0, &["heartbeat", "10"]);
    let spec = r#"{"callback":{"queue":"cb","klass":"Done","jid":"cbj"}}"#;
    let jobs = [
        json!(["put", "w", "q", "r", "K", "{}", "0", "retries", "0"]).to_string(),
        json!(["put", "w", "q", "l", "K", "{}", "0", "retries", "0"]).to_string(),
    ];
    t.ok("batch.create", 1.0, &["b1", spec, &jobs[0], &jobs[1]]);
    assert_eq!(pop_all(t, 2.0, "w"), ["r", "l"]);
    assert_eq!(t.ok("retry", 3.0, &["r", "q", "w", "0"]), json!(-1));
    assert_eq!(t.state("r"), "failed");
    assert_eq!(counts(t, "b1"), (1, 0, 1, 0));
    // l's lock expired at 12; the next pop fails it (no retries, no grace).
    assert_eq!(pop_all(t, 20.0, "w2"), Vec::<String>::new());
    assert_eq!(t.state("l"), "failed");
    assert_eq!(counts(t, "b1"), (0, 0, 2, 0));
    assert_eq!(puts_of(t, "cbj"), 1);
    // Unfail both: pending again, and no second callback when they finish.
    assert_eq!(
        t.ok("unfail", 21.0, &["q", "failed-retries-q", "10"]),
        json!(2)
    );
    assert_eq!(counts(t, "b1"), (2, 0, 0, 0));
    pop_all(t, 22.0, "w");
    complete(t, 23.0, "r", "w");
    complete(t, 23.0, "l", "w");
    assert_eq!(counts(t, "b1"), (0, 2, 0, 0));
    assert_eq!(puts_of(t, "cbj"), 1);
    assert_eq!(finished_events(t, "b1"), 1);
}

/// `complete ... next` moves a job into another queue: not finished.
pub fn batch_complete_next_is_not_finished(t: &Harness) {
    create(t, 1.0, "b1", SPEC, &["a"]);
    pop_all(t, 2.0, "w");
    t.ok("complete", 3.0, &["a", "w", "q", "{}", "next", "q2"]);
    assert_eq!(counts(t, "b1"), (1, 0, 0, 0));
    assert_eq!(t.get("cbj"), Value::Null);
    assert_eq!(t.pop_one(4.0, "q2", "w").as_deref(), Some("a"));
    t.ok("complete", 5.0, &["a", "w", "q2", "{}"]);
    assert_eq!(counts(t, "b1"), (0, 1, 0, 0));
    assert_eq!(t.state("cbj"), "waiting");
}

/// Canceling jobs counts them canceled; `batch.cancel` cancels what is not
/// complete, and a batch whose jobs are all canceled has finished too (the
/// callback sees the counts).
pub fn batch_cancel_counts_canceled(t: &Harness) {
    create(t, 1.0, "b1", SPEC, &["a", "b", "c", "d"]);
    assert_eq!(t.pop_one(2.0, "q", "w").as_deref(), Some("a"));
    complete(t, 3.0, "a", "w");
    t.ok("cancel", 4.0, &["b"]);
    assert_eq!(counts(t, "b1"), (2, 1, 0, 1));
    assert_eq!(t.ok("batch.cancel", 5.0, &["b1"]), json!(["c", "d"]));
    assert_eq!(counts(t, "b1"), (0, 1, 0, 3));
    let b = batch(t, "b1");
    assert_eq!(b["total"], 4);
    assert_eq!(b["callback_jid"], "cbj");
    let data: Value =
        serde_json::from_str(t.get("cbj")["data"].as_str().expect("data")).expect("json");
    assert_eq!(data["batch"]["canceled"], 3);
    assert_eq!(data["batch"]["complete"], 1);
    // Canceling the complete job's batch again cancels nothing.
    assert_eq!(t.ok("batch.cancel", 6.0, &["b1"]), json!([]));
    assert_eq!(finished_events(t, "b1"), 1);
    t.err_with("batch.cancel", 6.0, &["nope"], ErrorKind::NotFound, "nope");
}

/// Completed jobs expiring later leave the counts alone.
pub fn batch_expiry_keeps_the_counts(t: &Harness) {
    t.ok("config.set", 0.0, &["jobs-history-count", "0"]);
    create(t, 1.0, "b1", SPEC, &["a", "b"]);
    pop_all(t, 2.0, "w");
    complete(t, 3.0, "a", "w");
    complete(t, 3.0, "b", "w");
    assert_eq!(t.get("a"), Value::Null, "expired at once");
    assert_eq!(counts(t, "b1"), (0, 2, 0, 0));
    assert_eq!(t.ok("batch.jobs", 4.0, &["b1"])["total"], 0);
}

/// Jobs may join an open batch later (`put ... batch ID`); a finished batch
/// takes none, nor does a missing one, and a job never changes batch.
pub fn batch_add_jobs_while_open(t: &Harness) {
    create(t, 1.0, "b1", SPEC, &["a"]);
    t.ok(
        "put",
        2.0,
        &["w", "q", "later", "K", "{}", "0", "batch", "b1"],
    );
    assert_eq!(batch(t, "b1")["total"], 2);
    assert_eq!(counts(t, "b1"), (2, 0, 0, 0));
    // Re-putting a member names its batch again: counted once.
    t.ok(
        "put",
        2.0,
        &["w", "q", "later", "K", "{}", "0", "batch", "b1"],
    );
    assert_eq!(batch(t, "b1")["total"], 2);
    create(t, 2.0, "b2", "{}", &["x"]);
    t.err_with(
        "put",
        3.0,
        &["w", "q", "later", "K", "{}", "0", "batch", "b2"],
        ErrorKind::Conflict,
        "belongs to batch b1",
    );
    t.err_with(
        "put",
        3.0,
        &["w", "q", "z", "K", "{}", "0", "batch", "none"],
        ErrorKind::NotFound,
        "Batch none does not exist",
    );
    assert_eq!(t.get("z"), Value::Null);
    pop_all(t, 4.0, "w");
    complete(t, 5.0, "a", "w");
    complete(t, 5.0, "later", "w");
    assert_eq!(counts(t, "b1"), (0, 2, 0, 0));
    t.err_with(
        "put",
        6.0,
        &["w", "q", "z", "K", "{}", "0", "batch", "b1"],
        ErrorKind::Conflict,
        "has finished",
    );
    assert_eq!(t.get("z"), Value::Null);
    // A batch without a callback finishes too.
    complete(t, 6.0, "x", "w");
    let b2 = batch(t, "b2");
    assert_eq!(b2["finished"], 6);
    assert_eq!(b2["callback"], Value::Null);
    assert_eq!(b2["callback_jid"], Value::Null);
}

/// Bad input is refused with a clear error and changes nothing.
pub fn batch_validation(t: &Harness) {
    let put_a = put_arg("a");
    let before = t.snapshot(1.0, &["a", "cbj"], &["q"]);
    let cases: Vec<(Vec<&str>, ErrorKind, &str)> = vec![
        (vec!["", "{}", &put_a], ErrorKind::Invalid, "\"id\" missing"),
        (
            vec!["b1", "{}"],
            ErrorKind::Invalid,
            "needs at least one job",
        ),
        (vec!["b1"], ErrorKind::Invalid, "\"spec\" missing"),
        (vec!["b1", "not json", &put_a], ErrorKind::Invalid, "spec"),
        (
            vec!["b1", r#"{"colour":1}"#, &put_a],
            ErrorKind::Invalid,
            "colour",
        ),
        (
            vec!["b1", r#"{"callback":{"queue":"cb"}}"#, &put_a],
            ErrorKind::Invalid,
            "klass",
        ),
        (
            vec![
                "b1",
                r#"{"callback":{"queue":"","klass":"K","jid":"j"}}"#,
                &put_a,
            ],
            ErrorKind::Invalid,
            "callback.queue",
        ),
        (
            vec![
                "b1",
                r#"{"callback":{"queue":"cb","klass":"K","jid":"a"}}"#,
                &put_a,
            ],
            ErrorKind::Invalid,
            "callback's jid a",
        ),
        (
            vec![
                "b1",
                r#"{"callback":{"queue":"cb","klass":"K","data":[1]}}"#,
                &put_a,
            ],
            ErrorKind::Invalid,
            "spec",
        ),
        (
            vec!["b1", "{}", r#"["pop","q","w","1"]"#],
            ErrorKind::Invalid,
            "must be a put",
        ),
        (vec!["b1", "{}", "nope"], ErrorKind::Invalid, "JSON array"),
        (
            vec!["b1", "{}", &put_a, r#"["put","w","q","b","K","{bad","0"]"#],
            ErrorKind::Invalid,
            "data",
        ),
    ];
    for (args, kind, needle) in &cases {
        t.err_with("batch.create", 1.0, args, *kind, needle);
    }
    // A refused job refuses the whole creation: no batch, no job.
    let mut bad = vec!["b1", "{}", put_a.as_str()];
    let running = json!(["put", "w", "q", "r", "K", "{}", "-1"]).to_string();
    bad.push(&running);
    t.err("batch.create", 1.0, &bad);
    assert_eq!(batch(t, "b1"), Value::Null);
    assert_eq!(t.snapshot(1.0, &["a", "cbj"], &["q"]), before);
    // An existing id is a conflict, and the first batch stays as it was.
    create(t, 2.0, "b1", "{}", &["a"]);
    t.err_with(
        "batch.create",
        3.0,
        &["b1", "{}", &put_arg("n")],
        ErrorKind::Conflict,
        "exists",
    );
    assert_eq!(batch(t, "b1")["total"], 1);
    assert_eq!(t.get("n"), Value::Null);
    t.err_with("batch.get", 3.0, &[], ErrorKind::Invalid, "\"id\" missing");
    t.err_with("batch.list", 3.0, &["x"], ErrorKind::Invalid, "offset");
    t.err_with(
        "put",
        3.0,
        &["w", "q", "p", "K", "{}", "0", "batch", ""],
        ErrorKind::Invalid,
        "batch",
    );
    assert_eq!(batch(t, "missing"), Value::Null);
}

/// Batches list newest first, paged, with the total.
pub fn batch_list_newest_first(t: &Harness) {
    create(t, 1.0, "old", "{}", &["a"]);
    create(t, 2.0, "mid", "{}", &["b"]);
    create(t, 2.0, "mid2", "{}", &["c"]);
    create(t, 3.0, "new", "{}", &["d"]);
    let ids = |v: &Value| -> Vec<String> {
        v["batches"]
            .as_array()
            .expect("batches")
            .iter()
            .map(|b| b["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let all = t.ok("batch.list", 4.0, &[]);
    assert_eq!(all["total"], 4);
    assert_eq!(ids(&all), ["new", "mid2", "mid", "old"]);
    let page = t.ok("batch.list", 4.0, &["1", "2"]);
    assert_eq!(page["total"], 4);
    assert_eq!(ids(&page), ["mid2", "mid"]);
}

/// The typed API: an empty batch id, callback jid and job jids get new
/// ones; the reply names them.
pub fn batch_typed_create_generates_ids(t: &Harness) {
    let spec = BatchSpec {
        callback: Some(CallbackSpec {
            queue: "cb".into(),
            klass: "Done".into(),
            ..CallbackSpec::default()
        }),
        ..BatchSpec::default()
    };
    let reply = t
        .exec(
            1.0,
            Command::BatchCreate(BatchParams {
                id: String::new(),
                spec,
                jobs: vec![PutParams::new("q", "K"), PutParams::new("q", "K")],
            }),
        )
        .expect("create");
    let Reply::BatchCreated { batch, jids } = reply else {
        panic!("expected BatchCreated, got {reply:?}");
    };
    assert!(!batch.batch.id.is_empty());
    assert_eq!(jids.len(), 2);
    assert!(jids.iter().all(|j| !j.is_empty()) && jids[0] != jids[1]);
    let cb = batch.batch.spec.callback.as_ref().expect("callback");
    assert!(!cb.jid.is_empty());
    for jid in &jids {
        assert_eq!(t.get(jid)["batch"], batch.batch.id.as_str());
    }
}

/// Many workers complete the last jobs of a batch concurrently: the
/// callback is put exactly once and the counters are exact.
pub fn batch_concurrent_completes_put_one_callback(t: &Harness) {
    let n = 24;
    let jids: Vec<String> = (0..n).map(|i| format!("j{i:02}")).collect();
    let refs: Vec<&str> = jids.iter().map(String::as_str).collect();
    create(t, 1.0, "b1", SPEC, &refs);
    let mut held = Vec::new();
    for (i, jid) in jids.iter().enumerate() {
        let worker = format!("w{}", i % 6);
        let v = t.ok("pop", 2.0, &["q", &worker, "1"]);
        assert_eq!(v[0]["jid"], jid.as_str());
        held.push((jid.clone(), worker));
    }
    let engine = t.engine().clone();
    let now = Timestamp::from_secs_f64(3.0).expect("now");
    let results = t.block_on(async move {
        let mut tasks = Vec::new();
        for (jid, worker) in held {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                engine
                    .execute_at(
                        now,
                        Command::Complete(CompleteParams {
                            jid,
                            worker,
                            queue: "q".into(),
                            data: "{}".into(),
                            next: None,
                            delay: 0.0,
                            depends: Vec::new(),
                            metadata: None,
                        }),
                    )
                    .await
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("task"));
        }
        out
    });
    for r in results {
        assert_eq!(r.expect("complete"), Reply::Str("complete".into()));
    }
    assert_eq!(counts(t, "b1"), (0, n, 0, 0));
    assert_eq!(puts_of(t, "cbj"), 1);
    assert_eq!(finished_events(t, "b1"), 1);
    assert_eq!(t.ok("length", 3.0, &["cb"]), json!(1));
}
