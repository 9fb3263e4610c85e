//! Conformance cases: the limits of `clew_core::limits` (name length and
//! characters, tag count, data size). Both stores refuse the same values
//! with the same `Invalid` error naming the argument and the limit, and a
//! refused call changes nothing (SQLite would store a NUL in a name that
//! PostgreSQL cannot: the check comes first, so neither sees one).

#[allow(unused_imports)]
use crate::prelude::*;

use super::validation::{invalid, snap, world};
use clew_core::limits::{MAX_DATA_BYTES, MAX_NAME_BYTES, MAX_TAGS};

const NOW: f64 = 20.0;

fn long() -> String {
    "x".repeat(MAX_NAME_BYTES + 1)
}

fn tag_list(n: usize) -> String {
    let tags: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    serde_json::to_string(&tags).expect("json")
}

/// A name of 256 bytes is refused in every place a name goes, with the
/// argument, the length and the limit in the message.
pub fn names_longer_than_255_bytes_are_refused(t: &Harness) {
    world(t);
    let l = long();
    let l = l.as_str();
    let needle = |arg: &str| format!("Arg \"{arg}\" is 256 bytes long, at most 255 allowed");
    for (cmd, args, arg) in [
        ("put", vec!["admin", l, "new", "K", "{}", "0"], "queue"),
        ("put", vec!["admin", "q", l, "K", "{}", "0"], "jid"),
        ("put", vec!["admin", "q", "new", l, "{}", "0"], "klass"),
        ("put", vec![l, "q", "new", "K", "{}", "0"], "worker"),
        (
            "put",
            vec!["admin", "q", "new", "K", "{}", "0", "batch", l],
            "batch",
        ),
        ("pop", vec!["q", l, "1"], "worker"),
        ("fail", vec!["running", "w1", l, "boom"], "group"),
        ("tag", vec!["add", "waiting", l], "tags"),
        ("cancel", vec!["waiting", l], "jid"),
        ("get", vec![l], "jid"),
        ("queues", vec![l], "queue"),
        ("pause", vec![l], "queue"),
        ("config.set", vec![l, "v"], "key"),
        ("throttle.set", vec![l, "1"], "name"),
        (
            "recur",
            vec![l, "r2", "K", "{}", "interval", "60", "0"],
            "queue",
        ),
    ] {
        invalid(t, cmd, &args, &[needle(arg).as_str()]);
    }
}

/// Control characters (NUL, newline, tab, DEL, C1) are refused in names,
/// naming the code point; lookups are refused too, so a NUL jid gets the
/// same answer from every store.
pub fn names_with_control_characters_are_refused(t: &Harness) {
    world(t);
    for (bad, cp) in [
        ("a\0b", "U+0000"),
        ("a\nb", "U+000A"),
        ("a\tb", "U+0009"),
        ("a\u{7f}", "U+007F"),
        ("a\u{9b}", "U+009B"),
    ] {
        let needle = format!("must not contain control characters: {cp}");
        let needle = needle.as_str();
        invalid(
            t,
            "put",
            &["admin", bad, "new", "K", "{}", "0"],
            &["Put(): Arg \"queue\"", needle],
        );
        invalid(
            t,
            "put",
            &["admin", "q", bad, "K", "{}", "0"],
            &["Arg \"jid\"", needle],
        );
        invalid(
            t,
            "put",
            &["admin", "q", "new", bad, "{}", "0"],
            &["Arg \"klass\"", needle],
        );
        let tags = serde_json::to_string(&[bad]).expect("json");
        invalid(
            t,
            "put",
            &["admin", "q", "new", "K", "{}", "0", "tags", &tags],
            &["Arg \"tags\"", needle],
        );
        invalid(t, "get", &[bad], &["Get(): Arg \"jid\"", needle]);
        invalid(
            t,
            "pop",
            &["q", bad, "1"],
            &["Pop(): Arg \"worker\"", needle],
        );
        invalid(
            t,
            "fail",
            &["running", "w1", bad, "boom"],
            &["Fail(): Arg \"group\"", needle],
        );
        invalid(t, "tag", &["get", bad, "0", "10"], &["Arg \"tag\"", needle]);
        invalid(t, "throttle.set", &[bad, "1"], &["Arg \"name\"", needle]);
    }
    // Free text keeps newlines but not NUL.
    invalid(
        t,
        "fail",
        &["running", "w1", "grp", "bo\0om"],
        &["Fail(): Arg \"message\" must not contain NUL"],
    );
    invalid(
        t,
        "log",
        &["running", "a\0"],
        &["Log(): Arg \"message\" must not contain NUL"],
    );
}

/// The largest allowed names and ordinary user jids are stored and read
/// back unchanged on every store.
pub fn names_at_the_limit_and_unicode_are_accepted(t: &Harness) {
    let q = "q".repeat(MAX_NAME_BYTES);
    let jid = format!("{}-end", "é".repeat((MAX_NAME_BYTES - 4) / 2));
    assert!(jid.len() <= MAX_NAME_BYTES);
    let tag = "t".repeat(MAX_NAME_BYTES);
    let tags = serde_json::to_string(&[&tag]).expect("json");
    for j in [
        jid.as_str(),
        "order-123",
        "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
        "mail:42/retry ok",
    ] {
        t.ok(
            "put",
            1.0,
            &["admin", &q, j, "Klass::Ünï", "{}", "0", "tags", &tags],
        );
        let job = t.get(j);
        assert_eq!(job["jid"], j);
        assert_eq!(job["queue"], q.as_str());
        assert_eq!(job["klass"], "Klass::Ünï");
        assert_eq!(job["tags"], json!([tag]));
    }
    let popped = t.pop_jids(2.0, &q, &"w".repeat(MAX_NAME_BYTES), "10");
    assert_eq!(popped.len(), 4);
}

/// A put with more than 64 tags is refused; 64 are fine; `tag add` and
/// `recur.tag` that would take a job past 64 are refused and change nothing.
pub fn more_than_64_tags_are_refused(t: &Harness) {
    world(t);
    let too_many = tag_list(MAX_TAGS + 1);
    invalid(
        t,
        "put",
        &["admin", "q", "new", "K", "{}", "0", "tags", &too_many],
        &["Put(): Arg \"tags\" has 65 tags, at most 64 allowed"],
    );
    // "waiting" has t1 and t2: 63 more take it to 65.
    let mut add = vec!["add".to_owned(), "waiting".to_owned()];
    add.extend((0..63).map(|i| format!("x{i}")));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    invalid(
        t,
        "tag",
        &add,
        &["the job would have 65 tags, at most 64 allowed"],
    );
    let mut rtag = vec!["r1".to_owned()];
    rtag.extend((0..65).map(|i| format!("x{i}")));
    let rtag: Vec<&str> = rtag.iter().map(String::as_str).collect();
    invalid(t, "recur.tag", &rtag, &["Arg \"tags\" has 65 tags"]);
    // 64 tags are accepted.
    let max = tag_list(MAX_TAGS);
    t.ok(
        "put",
        NOW,
        &["admin", "q", "new", "K", "{}", "0", "tags", &max],
    );
    assert_eq!(
        t.get("new")["tags"].as_array().map(Vec::len),
        Some(MAX_TAGS)
    );
    let e = t.err("tag", NOW, &["add", "new", "one-more"]);
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(
        t.get("new")["tags"].as_array().map(Vec::len),
        Some(MAX_TAGS)
    );
}

/// Data larger than 1 MiB is refused in put, complete and heartbeat.
pub fn data_larger_than_1_mib_is_refused(t: &Harness) {
    world(t);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DATA_BYTES));
    let needle = format!(
        "is {} bytes long, at most {MAX_DATA_BYTES} allowed",
        big.len()
    );
    let needle = needle.as_str();
    invalid(
        t,
        "put",
        &["admin", "q", "new", "K", &big, "0"],
        &["Put(): Arg \"data\"", needle],
    );
    invalid(
        t,
        "heartbeat",
        &["running", "w1", &big],
        &["Heartbeat(): Arg \"data\"", needle],
    );
    invalid(
        t,
        "complete",
        &["running", "w1", "q", &big],
        &["Complete(): Arg \"data\"", needle],
    );
    // Just under the limit is fine.
    let ok = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DATA_BYTES - 8));
    assert!(ok.len() <= MAX_DATA_BYTES);
    t.ok("put", NOW, &["admin", "q", "new", "K", &ok, "0"]);
    assert_eq!(t.get("new")["data"].as_str().map(str::len), Some(ok.len()));
}

/// The typed API (no qless strings) gets the same refusals, and a refused
/// atomic batch put changes nothing.
pub fn typed_commands_get_the_same_limits(t: &Harness) {
    world(t);
    let before = snap(t);
    let mut p = PutParams::new("q", "K");
    p.jid = "new\0".into();
    let e = t.exec(NOW, Command::Put(p.clone())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(
        e.message()
            .contains("Put(): Arg \"jid\" must not contain control characters: U+0000"),
        "{}",
        e.message()
    );
    let mut ok = PutParams::new("q", "K");
    ok.jid = "new".into();
    let e = t
        .exec(
            NOW,
            Command::Batch {
                commands: vec![Command::Put(ok), Command::Put(p)],
                atomic: true,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let e = t
        .exec(NOW, Command::ThrottleGet { name: long() })
        .unwrap_err();
    assert!(
        e.message()
            .contains("Throttle.get(): Arg \"name\" is 256 bytes long"),
        "{}",
        e.message()
    );
    assert_eq!(before, snap(t), "refused typed commands changed the store");
}
