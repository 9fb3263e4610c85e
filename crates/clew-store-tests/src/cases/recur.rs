//! Conformance cases: recur.

#[allow(unused_imports)]
use crate::prelude::*;

/// `recur <queue> <jid> klass {} interval <interval> <offset> [pairs...]` at `now`.
fn recur(
    h: &Harness,
    now: f64,
    queue: &str,
    jid: &str,
    interval: &str,
    offset: &str,
    pairs: &[&str],
) -> Value {
    let mut args = vec![queue, jid, "klass", "{}", "interval", interval, offset];
    args.extend_from_slice(pairs);
    h.ok("recur", now, &args)
}

/// `recur` returns the template's jid and registers its queue.
pub fn recur_returns_jid_and_registers_queue(t: &Harness) {
    assert_eq!(recur(t, 0.0, "q", "r", "60", "0", &[]), json!("r"));
    let queues = t.ok("queues", 0.0, &[]);
    assert_eq!(queues.as_array().unwrap().len(), 1);
    assert_eq!(queues[0]["name"], json!("q"));
    assert_eq!(queues[0]["recurring"], json!(1));
}

/// `recur.get` returns the template with every field.
pub fn recur_get_shape(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &[
            "q",
            "r",
            "my.Klass",
            "{\"a\": [1, 2]}",
            "interval",
            "90",
            "30",
            "priority",
            "7",
            "tags",
            "[\"t1\",\"t2\"]",
            "retries",
            "3",
            "backlog",
            "4",
        ],
    );
    assert_eq!(
        t.ok("recur.get", 1.0, &["r"]),
        json!({
            "jid": "r",
            "klass": "my.Klass",
            "state": "recur",
            "queue": "q",
            "priority": 7,
            "interval": 90,
            "retries": 3,
            "count": 0,
            "data": "{\"a\": [1, 2]}",
            "tags": ["t1", "t2"],
            "backlog": 4,
        })
    );
}

/// Without options a template has priority 0, no tags, backlog 0 and (in clew) retries 5.
pub fn recur_defaults(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &[]);
    let v = t.ok("recur.get", 0.0, &["r"]);
    assert_eq!(v["priority"], json!(0));
    assert_eq!(v["tags"], json!([]));
    assert_eq!(v["backlog"], json!(0));
    assert_eq!(v["retries"], json!(5));
    assert_eq!(v["count"], json!(0));
}

/// `recur.get` of a missing template is null.
pub fn recur_get_missing_is_null(t: &Harness) {
    assert_eq!(t.ok("recur.get", 0.0, &["nope"]), Value::Null);
}

/// The first child is due at now + offset (inclusive), not before.
pub fn recur_first_spawn_at_now_plus_offset(t: &Harness) {
    recur(t, 100.0, "q", "r", "60", "30", &[]);
    assert_eq!(t.ok("peek", 129.5, &["q", "10"]), json!([]));
    assert_eq!(t.get("r-1"), Value::Null);
    assert_eq!(jids(&t.ok("peek", 130.0, &["q", "10"])), ["r-1"]);
}

/// Children are `<jid>-<n>` carrying the template's klass, data, priority, tags and retries,
/// waiting in the template's queue with `spawned_from_jid` set.
pub fn recur_children_carry_template_fields(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &[
            "q",
            "r",
            "my.Klass",
            "{\"a\": [1, 2]}",
            "interval",
            "60",
            "0",
            "priority",
            "7",
            "tags",
            "[\"t1\",\"t2\"]",
            "retries",
            "3",
        ],
    );
    assert_eq!(jids(&t.ok("peek", 0.0, &["q", "10"])), ["r-1"]);
    let child = t.get("r-1");
    assert_eq!(child["jid"], json!("r-1"));
    assert_eq!(child["klass"], json!("my.Klass"));
    assert_eq!(child["data"], json!("{\"a\": [1, 2]}"));
    assert_eq!(child["priority"], json!(7));
    assert_eq!(child["tags"], json!(["t1", "t2"]));
    assert_eq!(child["retries"], json!(3));
    assert_eq!(child["remaining"], json!(3));
    assert_eq!(child["state"], json!("waiting"));
    assert_eq!(child["queue"], json!("q"));
    assert_eq!(child["worker"], json!(""));
    assert_eq!(child["spawned_from_jid"], json!("r"));
    assert_eq!(t.ok("recur.get", 0.0, &["r"])["count"], json!(1));
}

/// A child's history starts with a `put` at its scheduled time, not at the spawning call's time.
pub fn recur_child_history_put_at_scheduled_time(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "10", &[]);
    let popped = t.ok("pop", 25.5, &["q", "w", "1"]);
    assert_eq!(jids(&popped), ["r-1"]);
    let job = t.get("r-1");
    assert_eq!(
        job["history"],
        json!([
            {"what": "put", "when": 10, "q": "q"},
            {"what": "popped", "when": 25, "worker": "w"},
        ])
    );
    assert_eq!(job["state"], json!("running"));
}

/// A child's wait statistic is measured from its scheduled time.
pub fn recur_child_wait_measured_from_scheduled_time(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "10", &[]);
    t.pop_one(25.0, "q", "w");
    let wait = t.ok("stats", 25.0, &["q", "25"])["wait"].clone();
    assert_eq!(wait["count"], json!(1));
    assert_eq!(wait["histogram"][15], json!(1));
}

/// Children enter the work list at their scheduled time, ahead of jobs put later.
pub fn recur_child_placed_by_scheduled_time(t: &Harness) {
    recur(t, 0.0, "q", "r", "1000", "0", &[]);
    t.put(50.0, "q", "x");
    assert_eq!(jids(&t.ok("peek", 60.0, &["q", "10"])), ["r-1", "x"]);
}

/// When several intervals have elapsed, one call spawns one child per elapsed interval.
pub fn recur_several_intervals_spawn_several_children(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    assert_eq!(
        jids(&t.ok("peek", 35.0, &["q", "10"])),
        ["r-1", "r-2", "r-3", "r-4"]
    );
    let whens: Vec<Value> = (1..=4)
        .map(|n| t.get(&format!("r-{n}"))["history"][0]["when"].clone())
        .collect();
    assert_eq!(whens, [json!(0), json!(10), json!(20), json!(30)]);
    assert_eq!(t.ok("recur.get", 35.0, &["r"])["count"], json!(4));
    // The next child is due at 40.
    assert_eq!(jids(&t.ok("peek", 39.0, &["q", "10"])).len(), 4);
    assert_eq!(jids(&t.ok("peek", 40.0, &["q", "10"])).len(), 5);
}

/// Spawning is limited by the pop count; the rest are spawned by later calls.
pub fn recur_spawns_limited_by_pop_count(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    assert_eq!(jids(&t.ok("pop", 35.0, &["q", "w", "2"])), ["r-1", "r-2"]);
    assert_eq!(t.ok("recur.get", 35.0, &["r"])["count"], json!(2));
    assert_eq!(t.get("r-3"), Value::Null);
    assert_eq!(jids(&t.ok("pop", 35.0, &["q", "w", "10"])), ["r-3", "r-4"]);
    assert_eq!(t.ok("recur.get", 35.0, &["r"])["count"], json!(4));
}

/// With a backlog, a long-idle template spawns at most backlog + 1 children, the latest ones.
pub fn recur_backlog_caps_catch_up(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &["backlog", "2"]);
    assert_eq!(
        jids(&t.ok("pop", 100.0, &["q", "w", "100"])),
        ["r-1", "r-2", "r-3"]
    );
    let whens: Vec<Value> = (1..=3)
        .map(|n| t.get(&format!("r-{n}"))["history"][0]["when"].clone())
        .collect();
    assert_eq!(whens, [json!(80), json!(90), json!(100)]);
    assert_eq!(t.ok("recur.get", 100.0, &["r"])["count"], json!(3));
}

/// Without a backlog, every missed interval is spawned.
pub fn recur_without_backlog_catches_up_fully(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    assert_eq!(
        t.ok("pop", 100.0, &["q", "w", "100"])
            .as_array()
            .unwrap()
            .len(),
        11
    );
    assert_eq!(t.ok("recur.get", 100.0, &["r"])["count"], json!(11));
}

/// Children publish no events.
pub fn recur_children_publish_no_events(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    t.take_events();
    assert_eq!(
        t.ok("peek", 25.0, &["q", "10"]).as_array().unwrap().len(),
        3
    );
    let events = t.take_events();
    assert!(events.is_empty(), "children published {events:?}");
}

/// Children's tags are indexed like a put's.
pub fn recur_children_tags_are_indexed(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &["tags", "[\"nightly\"]"]);
    t.ok("peek", 10.0, &["q", "10"]);
    assert_eq!(
        t.ok("tag", 11.0, &["get", "nightly"]),
        json!({"total": 2, "jobs": ["r-1", "r-2"]})
    );
}

/// Re-recurring an existing template keeps its spawn count and replaces the other fields.
pub fn recur_again_keeps_count(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    t.ok("peek", 15.0, &["q", "10"]);
    t.ok(
        "recur",
        20.0,
        &["q", "r", "other.Klass", "{}", "interval", "100", "0"],
    );
    let v = t.ok("recur.get", 20.0, &["r"]);
    assert_eq!(v["count"], json!(2));
    assert_eq!(v["interval"], json!(100));
    assert_eq!(v["klass"], json!("other.Klass"));
    t.ok("peek", 20.0, &["q", "10"]);
    assert_eq!(t.get("r-3")["klass"], json!("other.Klass"));
}

/// Re-recurring a template into another queue moves it out of the old queue.
pub fn recur_again_moves_queue(t: &Harness) {
    recur(t, 0.0, "q1", "r", "10", "100", &[]);
    recur(t, 1.0, "q2", "r", "10", "5", &[]);
    assert_eq!(t.ok("jobs", 2.0, &["recurring", "q1"]), json!([]));
    assert_eq!(t.ok("jobs", 2.0, &["recurring", "q2"]), json!(["r"]));
    assert_eq!(t.ok("recur.get", 2.0, &["r"])["queue"], json!("q2"));
    assert_eq!(jids(&t.ok("peek", 6.0, &["q2", "10"])), ["r-1"]);
    assert_eq!(t.ok("peek", 200.0, &["q1", "10"]), json!([]));
}

/// `recur.update priority` changes the template and the priority of later children; returns true.
pub fn recur_update_priority(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "5", &[]);
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "priority", "9"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["priority"], json!(9));
    t.ok("peek", 5.0, &["q", "10"]);
    assert_eq!(t.get("r-1")["priority"], json!(9));
}

/// `recur.update retries` changes the retries of later children.
pub fn recur_update_retries(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "5", &[]);
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "retries", "2"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["retries"], json!(2));
    t.ok("peek", 5.0, &["q", "10"]);
    let child = t.get("r-1");
    assert_eq!(
        (child["retries"].clone(), child["remaining"].clone()),
        (json!(2), json!(2))
    );
}

/// `recur.update data` replaces the payload of later children (stored verbatim).
pub fn recur_update_data(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "5", &[]);
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "data", "{\"x\": 1}"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["data"], json!("{\"x\": 1}"));
    t.ok("peek", 5.0, &["q", "10"]);
    assert_eq!(t.get("r-1")["data"], json!("{\"x\": 1}"));
}

/// `recur.update klass` changes the class of later children.
pub fn recur_update_klass(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "5", &[]);
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "klass", "New.Klass"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["klass"], json!("New.Klass"));
    t.ok("peek", 5.0, &["q", "10"]);
    assert_eq!(t.get("r-1")["klass"], json!("New.Klass"));
}

/// `recur.update backlog` changes how far a template catches up.
pub fn recur_update_backlog(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "backlog", "1"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["backlog"], json!(1));
    assert_eq!(
        jids(&t.ok("pop", 100.0, &["q", "w", "100"])),
        ["r-1", "r-2"]
    );
}

/// `recur.update interval` shifts the next spawn time by (new − old).
pub fn recur_update_interval_shifts_next_spawn(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &[]);
    assert_eq!(jids(&t.ok("peek", 0.0, &["q", "10"])), ["r-1"]);
    // Next spawn was 60; it becomes 60 + (100 − 60) = 100.
    assert_eq!(
        t.ok("recur.update", 1.0, &["r", "interval", "100"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["interval"], json!(100));
    assert_eq!(jids(&t.ok("peek", 99.0, &["q", "10"])), ["r-1"]);
    assert_eq!(jids(&t.ok("peek", 100.0, &["q", "10"])), ["r-1", "r-2"]);
    assert_eq!(t.get("r-2")["history"][0]["when"], json!(100));
    // And then every 100 s.
    assert_eq!(jids(&t.ok("peek", 199.0, &["q", "10"])).len(), 2);
    assert_eq!(jids(&t.ok("peek", 200.0, &["q", "10"])).len(), 3);
}

/// `recur.update queue` moves the template and keeps its next spawn time.
pub fn recur_update_queue_keeps_next_spawn(t: &Harness) {
    recur(t, 0.0, "q1", "r", "60", "50", &[]);
    assert_eq!(
        t.ok("recur.update", 10.0, &["r", "queue", "q2"]),
        json!(true)
    );
    assert_eq!(t.ok("recur.get", 10.0, &["r"])["queue"], json!("q2"));
    assert_eq!(t.ok("jobs", 10.0, &["recurring", "q1"]), json!([]));
    assert_eq!(t.ok("jobs", 10.0, &["recurring", "q2"]), json!(["r"]));
    assert_eq!(t.ok("peek", 49.0, &["q2", "10"]), json!([]));
    assert_eq!(jids(&t.ok("peek", 50.0, &["q2", "10"])), ["r-1"]);
    assert_eq!(t.get("r-1")["queue"], json!("q2"));
    assert_eq!(t.ok("peek", 50.0, &["q1", "10"]), json!([]));
}

/// `recur.update` with an unknown key is an invalid-argument error and changes nothing.
pub fn recur_update_unknown_key_is_invalid(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &[]);
    let before = t.ok("recur.get", 1.0, &["r"]);
    t.err_with(
        "recur.update",
        1.0,
        &["r", "colour", "blue"],
        ErrorKind::Invalid,
        "Recur.update(): Unrecognized option \"colour\"",
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"]), before);
}

/// `recur.update` of a missing template is a not-found error.
pub fn recur_update_missing_template_is_not_found(t: &Harness) {
    t.err_with(
        "recur.update",
        1.0,
        &["nope", "priority", "1"],
        ErrorKind::NotFound,
        "No recurring job nope",
    );
}

/// `recur.update data` with a value that is not JSON is an invalid-argument error.
pub fn recur_update_data_not_json_is_invalid(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &[]);
    t.err_with(
        "recur.update",
        1.0,
        &["r", "data", "{bad"],
        ErrorKind::Invalid,
        "not JSON",
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["data"], json!("{}"));
}

/// `recur.tag` adds new tags (no duplicates) and returns the template's tags.
pub fn recur_tag_returns_tags(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &["tags", "[\"a\"]"]);
    assert_eq!(
        t.ok("recur.tag", 1.0, &["r", "b", "a", "c"]),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        t.ok("recur.get", 1.0, &["r"])["tags"],
        json!(["a", "b", "c"])
    );
    t.ok("peek", 1.0, &["q", "1"]);
    assert_eq!(t.get("r-1")["tags"], json!(["a", "b", "c"]));
}

/// `recur.untag` removes tags and returns the remaining ones.
pub fn recur_untag_returns_remaining_tags(t: &Harness) {
    recur(
        t,
        0.0,
        "q",
        "r",
        "60",
        "0",
        &["tags", "[\"a\",\"b\",\"c\"]"],
    );
    assert_eq!(
        t.ok("recur.untag", 1.0, &["r", "b", "zzz"]),
        json!(["a", "c"])
    );
    assert_eq!(t.ok("recur.untag", 1.0, &["r", "a", "c"]), json!([]));
    assert_eq!(t.ok("recur.get", 1.0, &["r"])["tags"], json!([]));
}

/// `recur.tag` and `recur.untag` of a missing template are not-found errors.
pub fn recur_tag_missing_template_is_not_found(t: &Harness) {
    t.err_with(
        "recur.tag",
        1.0,
        &["nope", "a"],
        ErrorKind::NotFound,
        "No recurring job nope",
    );
    t.err_with(
        "recur.untag",
        1.0,
        &["nope", "a"],
        ErrorKind::NotFound,
        "No recurring job nope",
    );
}

/// `unrecur` deletes the template (no more children; spawned children stay) and returns true.
pub fn unrecur_removes_template(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    t.ok("peek", 0.0, &["q", "10"]);
    assert_eq!(t.ok("unrecur", 1.0, &["r"]), json!(true));
    assert_eq!(t.ok("recur.get", 1.0, &["r"]), Value::Null);
    assert_eq!(t.ok("jobs", 1.0, &["recurring", "q"]), json!([]));
    assert_eq!(jids(&t.ok("peek", 100.0, &["q", "10"])), ["r-1"]);
}

/// `unrecur` of a missing template still returns true.
pub fn unrecur_missing_template_is_true(t: &Harness) {
    assert_eq!(t.ok("unrecur", 0.0, &["nope"]), json!(true));
}

/// `recur` with a schedule type other than `interval` or `cron` is an invalid-argument error.
pub fn recur_unknown_schedule_type_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "hourly", "60", "0"],
        ErrorKind::Invalid,
        "Recur(): schedule type \"hourly\" unknown",
    );
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
}

/// `recur` with an interval of 0 or less is an invalid-argument error.
pub fn recur_non_positive_interval_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "0", "0"],
        ErrorKind::Invalid,
        "Recur(): Arg \"interval\" must be greater than 0: 0",
    );
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "-5", "0"],
        ErrorKind::Invalid,
        "Arg \"interval\" must be greater than 0",
    );
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
    assert_eq!(t.ok("queues", 0.0, &[]), json!([]));
}

/// `recur` with a non-numeric interval is an invalid-argument error.
pub fn recur_non_numeric_interval_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "often", "0"],
        ErrorKind::Invalid,
        "Arg \"interval\" not a number",
    );
}

/// `recur` with a non-numeric offset is an invalid-argument error.
pub fn recur_non_numeric_offset_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "60", "soon"],
        ErrorKind::Invalid,
        "Recur(): Arg \"offset\" not a number",
    );
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
}

/// `recur` with data that is not JSON is an invalid-argument error.
pub fn recur_data_not_json_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{bad", "interval", "60", "0"],
        ErrorKind::Invalid,
        "Recur(): Arg \"data\" not JSON",
    );
}

/// `recur` with an odd number of option tokens or an unknown option is an invalid-argument error.
pub fn recur_bad_options_are_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &["q", "r", "klass", "{}", "interval", "60", "0", "priority"],
        ErrorKind::Invalid,
        "Recur(): Odd number of optional arguments",
    );
    t.err_with(
        "recur",
        0.0,
        &[
            "q", "r", "klass", "{}", "interval", "60", "0", "colour", "red",
        ],
        ErrorKind::Invalid,
        "Recur(): Unknown option \"colour\"",
    );
    t.err_with(
        "recur",
        0.0,
        &[
            "q", "r", "klass", "{}", "interval", "60", "0", "priority", "high",
        ],
        ErrorKind::Invalid,
        "Recur(): Arg \"priority\" not a number",
    );
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
}

/// A pop on a paused queue returns before spawning; a peek still spawns.
pub fn recur_paused_queue_pop_does_not_spawn(t: &Harness) {
    recur(t, 0.0, "q", "r", "10", "0", &[]);
    t.ok("pause", 0.0, &["q"]);
    assert_eq!(t.ok("pop", 5.0, &["q", "w", "10"]), json!([]));
    assert_eq!(t.ok("recur.get", 5.0, &["r"])["count"], json!(0));
    assert_eq!(t.get("r-1"), Value::Null);
    assert_eq!(jids(&t.ok("peek", 5.0, &["q", "10"])), ["r-1"]);
}

/// `recur.update` with a key but no value, or a non-numeric number, is an invalid-argument error.
pub fn recur_update_bad_values_are_invalid(t: &Harness) {
    recur(t, 0.0, "q", "r", "60", "0", &[]);
    let before = t.ok("recur.get", 1.0, &["r"]);
    let e = t.err("recur.update", 1.0, &["r", "priority"]);
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    t.err_with(
        "recur.update",
        1.0,
        &["r", "priority", "high"],
        ErrorKind::Invalid,
        "not a number",
    );
    t.err_with(
        "recur.update",
        1.0,
        &["r", "interval", "soon"],
        ErrorKind::Invalid,
        "not a number",
    );
    assert_eq!(t.ok("recur.get", 1.0, &["r"]), before);
}

/// `recur` with tags that are not a JSON array of strings is an invalid-argument error.
pub fn recur_tags_not_json_is_invalid(t: &Harness) {
    t.err_with(
        "recur",
        0.0,
        &[
            "q", "r", "klass", "{}", "interval", "60", "0", "tags", "[oops",
        ],
        ErrorKind::Invalid,
        "Recur(): Arg \"tags\"",
    );
    assert_eq!(t.ok("recur.get", 0.0, &["r"]), Value::Null);
}
