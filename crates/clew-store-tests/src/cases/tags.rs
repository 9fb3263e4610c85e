//! Conformance cases: tags.

#[allow(unused_imports)]
use crate::prelude::*;

fn put_tagged(h: &Harness, now: f64, jid: &str, tags: &str) {
    h.ok(
        "put",
        now,
        &["me", "q", jid, "klass", "{}", "0", "tags", tags],
    );
}

/// tag add appends new tags and returns the job's tag list.
pub fn tag_add_returns_tag_list(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\"]");
    assert_eq!(
        t.ok("tag", 1.0, &["add", "a", "y", "z"]),
        json!(["x", "y", "z"])
    );
    assert_eq!(t.get("a")["tags"], json!(["x", "y", "z"]));
}

/// tag add keeps insertion order and never duplicates a tag.
pub fn tag_add_no_duplicates(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("tag", 1.0, &["add", "a", "b", "a"]);
    assert_eq!(
        t.ok("tag", 2.0, &["add", "a", "a", "c", "b", "c"]),
        json!(["b", "a", "c"])
    );
    assert_eq!(t.get("a")["tags"], json!(["b", "a", "c"]));
}

/// tag remove removes the tags and returns what remains, in order.
pub fn tag_remove_returns_remaining(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\", \"y\", \"z\"]");
    assert_eq!(
        t.ok("tag", 1.0, &["remove", "a", "y", "absent"]),
        json!(["x", "z"])
    );
    assert_eq!(t.get("a")["tags"], json!(["x", "z"]));
    assert_eq!(
        t.ok("tag", 1.0, &["get", "y"]),
        json!({"total": 0, "jobs": []})
    );
    assert_eq!(
        t.ok("tag", 1.0, &["get", "x"]),
        json!({"total": 1, "jobs": ["a"]})
    );
}

/// Removing every tag leaves an empty list.
pub fn tag_remove_all_returns_empty_list(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\"]");
    assert_eq!(t.ok("tag", 1.0, &["remove", "a", "x"]), json!([]));
    assert_eq!(t.get("a")["tags"], json!([]));
}

/// tag get lists jobs ascending by the time the tag was added.
pub fn tag_get_ascending_by_time(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    t.ok("tag", 3.0, &["add", "a", "t"]);
    t.ok("tag", 1.0, &["add", "c", "t"]);
    t.ok("tag", 2.0, &["add", "b", "t"]);
    assert_eq!(
        t.ok("tag", 4.0, &["get", "t"]),
        json!({"total": 3, "jobs": ["c", "b", "a"]})
    );
}

/// Jobs tagged at the same time are ordered by jid.
pub fn tag_get_ties_by_jid(t: &Harness) {
    put_tagged(t, 5.0, "m", "[\"t\"]");
    put_tagged(t, 5.0, "b", "[\"t\"]");
    put_tagged(t, 5.0, "z", "[\"t\"]");
    put_tagged(t, 5.0, "a", "[\"t\"]");
    assert_eq!(
        t.ok("tag", 6.0, &["get", "t"]),
        json!({"total": 4, "jobs": ["a", "b", "m", "z"]})
    );
}

/// tag get pages with offset and count; total counts every job.
pub fn tag_get_paging(t: &Harness) {
    for (i, jid) in ["j0", "j1", "j2", "j3", "j4"].iter().enumerate() {
        put_tagged(t, i as f64, jid, "[\"t\"]");
    }
    assert_eq!(
        t.ok("tag", 9.0, &["get", "t", "1", "2"]),
        json!({"total": 5, "jobs": ["j1", "j2"]})
    );
    assert_eq!(
        t.ok("tag", 9.0, &["get", "t", "4", "10"]),
        json!({"total": 5, "jobs": ["j4"]})
    );
    assert_eq!(
        t.ok("tag", 9.0, &["get", "t", "5", "10"]),
        json!({"total": 5, "jobs": []})
    );
}

/// tag get defaults to the first 25 jobs.
pub fn tag_get_default_count_is_25(t: &Harness) {
    for i in 0..30 {
        put_tagged(t, i as f64, &format!("j{i:02}"), "[\"t\"]");
    }
    let got = t.ok("tag", 40.0, &["get", "t"]);
    assert_eq!(got["total"], json!(30));
    let expected: Vec<String> = (0..25).map(|i| format!("j{i:02}")).collect();
    assert_eq!(got["jobs"], json!(expected));
}

/// tag get of a tag nobody has is empty.
pub fn tag_get_unknown_tag_is_empty(t: &Harness) {
    assert_eq!(
        t.ok("tag", 1.0, &["get", "nothing"]),
        json!({"total": 0, "jobs": []})
    );
}

/// tag top lists only tags used by at least two jobs, most used first.
pub fn tag_top_counts_at_least_two(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\", \"y\", \"once\"]");
    put_tagged(t, 0.0, "b", "[\"x\", \"y\"]");
    put_tagged(t, 0.0, "c", "[\"x\"]");
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!(["x", "y"]));
}

/// tag top pages with offset and count.
pub fn tag_top_paging(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\", \"y\", \"z\"]");
    put_tagged(t, 0.0, "b", "[\"x\", \"y\", \"z\"]");
    put_tagged(t, 0.0, "c", "[\"x\", \"y\"]");
    put_tagged(t, 0.0, "d", "[\"x\"]");
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!(["x", "y", "z"]));
    assert_eq!(t.ok("tag", 1.0, &["top", "1", "1"]), json!(["y"]));
    assert_eq!(t.ok("tag", 1.0, &["top", "2", "5"]), json!(["z"]));
}

/// With no tags in use, tag top is an empty list.
pub fn tag_top_empty(t: &Harness) {
    t.put(0.0, "q", "a");
    assert_eq!(t.ok("tag", 1.0, &["top"]), json!([]));
}

/// Re-adding a tag a job already has does not inflate its counter (clew difference 7).
pub fn tag_readd_does_not_inflate_counter(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"t\"]");
    t.ok("tag", 1.0, &["add", "a", "t"]);
    t.ok("tag", 2.0, &["add", "a", "t", "t"]);
    assert_eq!(t.ok("tag", 3.0, &["top"]), json!([]));
    t.put(4.0, "q", "b");
    t.ok("tag", 4.0, &["add", "b", "t"]);
    assert_eq!(t.ok("tag", 5.0, &["top"]), json!(["t"]));
}

/// Removing a tag a job does not have leaves its counter alone (clew difference 7).
pub fn tag_remove_absent_does_not_deflate_counter(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"t\"]");
    put_tagged(t, 0.0, "b", "[\"t\"]");
    t.put(0.0, "q", "c");
    t.ok("tag", 1.0, &["remove", "c", "t"]);
    t.ok("tag", 1.0, &["remove", "c", "t"]);
    assert_eq!(t.ok("tag", 2.0, &["top"]), json!(["t"]));
    t.ok("tag", 3.0, &["remove", "a", "t"]);
    assert_eq!(t.ok("tag", 3.0, &["top"]), json!([]));
}

/// Counters follow job counts exactly: tag top orders by the number of jobs carrying each tag.
pub fn tag_top_order_tracks_job_counts(t: &Harness) {
    for jid in ["a", "b", "c"] {
        put_tagged(t, 0.0, jid, "[\"x\"]");
    }
    for jid in ["a", "b"] {
        t.ok("tag", 1.0, &["add", jid, "y", "y"]);
    }
    // repeated adds of y must not lift it above x
    t.ok("tag", 2.0, &["add", "a", "y"]);
    assert_eq!(t.ok("tag", 3.0, &["top"]), json!(["x", "y"]));
    t.ok("tag", 4.0, &["remove", "c", "x"]);
    t.put(4.0, "q", "d");
    t.ok("tag", 4.0, &["add", "d", "y"]);
    assert_eq!(t.ok("tag", 5.0, &["top"]), json!(["y", "x"]));
}

/// Tags given to put are indexed for tag get.
pub fn put_tags_are_indexed(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\", \"y\"]");
    assert_eq!(
        t.ok("tag", 1.0, &["get", "x"]),
        json!({"total": 1, "jobs": ["a"]})
    );
    assert_eq!(
        t.ok("tag", 1.0, &["get", "y"]),
        json!({"total": 1, "jobs": ["a"]})
    );
}

/// Re-putting with tags replaces the old tags in the job and in the index.
pub fn reput_replaces_tags(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\", \"y\"]");
    put_tagged(t, 0.0, "b", "[\"x\"]");
    put_tagged(t, 1.0, "a", "[\"z\"]");
    assert_eq!(t.get("a")["tags"], json!(["z"]));
    assert_eq!(
        t.ok("tag", 2.0, &["get", "x"]),
        json!({"total": 1, "jobs": ["b"]})
    );
    assert_eq!(
        t.ok("tag", 2.0, &["get", "y"]),
        json!({"total": 0, "jobs": []})
    );
    assert_eq!(
        t.ok("tag", 2.0, &["get", "z"]),
        json!({"total": 1, "jobs": ["a"]})
    );
    assert_eq!(t.ok("tag", 2.0, &["top"]), json!([]));
}

/// Re-putting without tags keeps the job's tags and their index entries.
pub fn reput_without_tags_keeps_tags(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"x\"]");
    put_tagged(t, 0.0, "b", "[\"x\"]");
    t.put(1.0, "q2", "a");
    assert_eq!(t.get("a")["tags"], json!(["x"]));
    assert_eq!(t.ok("tag", 2.0, &["get", "x"])["total"], json!(2));
    assert_eq!(t.ok("tag", 2.0, &["top"]), json!(["x"]));
}

/// A completed job keeps its tags until it expires; expiry removes its tag membership.
pub fn expiry_removes_tag_membership(t: &Harness) {
    put_tagged(t, 0.0, "a", "[\"t\"]");
    put_tagged(t, 0.0, "b", "[\"t\"]");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    assert_eq!(
        t.ok("tag", 2.0, &["get", "t"]),
        json!({"total": 2, "jobs": ["a", "b"]})
    );
    t.ok("config.set", 3.0, &["jobs-history", "-1"]);
    t.pop_one(4.0, "q", "w1");
    t.ok("complete", 5.0, &["b", "w1", "q", "{}"]);
    assert_eq!(t.get("a"), Value::Null);
    assert_eq!(
        t.ok("tag", 5.0, &["get", "t"]),
        json!({"total": 0, "jobs": []})
    );
    assert_eq!(t.ok("tag", 5.0, &["top"]), json!([]));
}

/// tag add and tag remove on an unknown job are not found.
pub fn tag_unknown_job_not_found(t: &Harness) {
    t.err_with(
        "tag",
        1.0,
        &["add", "ghost", "x"],
        ErrorKind::NotFound,
        "Tag(): Job ghost does not exist",
    );
    t.err_with(
        "tag",
        1.0,
        &["remove", "ghost", "x"],
        ErrorKind::NotFound,
        "Tag(): Job ghost does not exist",
    );
    assert_eq!(
        t.ok("tag", 1.0, &["get", "x"]),
        json!({"total": 0, "jobs": []})
    );
}

/// An unknown tag sub-command is invalid.
pub fn tag_bad_subcommand_invalid(t: &Harness) {
    t.put(0.0, "q", "a");
    t.err_with(
        "tag",
        1.0,
        &["append", "a", "x"],
        ErrorKind::Invalid,
        "Tag(): First argument must be \"add\", \"remove\", \"get\" or \"top\"",
    );
    assert_eq!(t.get("a")["tags"], json!([]));
}

/// tag get with non-numeric paging is invalid.
pub fn tag_get_non_numeric_paging_invalid(t: &Harness) {
    t.err_with(
        "tag",
        1.0,
        &["get", "x", "abc"],
        ErrorKind::Invalid,
        "\"offset\" not a number: abc",
    );
    t.err_with(
        "tag",
        1.0,
        &["get", "x", "0", "many"],
        ErrorKind::Invalid,
        "\"count\" not a number: many",
    );
}
