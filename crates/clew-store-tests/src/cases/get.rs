//! Conformance cases: get.

#[allow(unused_imports)]
use crate::prelude::*;

/// get of a job that does not exist is null.
pub fn get_missing_job_is_null(t: &Harness) {
    assert_eq!(t.ok("get", 1.0, &["ghost"]), Value::Null);
}

/// A freshly put job has every field of the job object, in natural JSON.
pub fn get_new_job_full_shape(t: &Harness) {
    t.put(1.5, "q", "a");
    assert_eq!(
        t.ok("get", 2.0, &["a"]),
        json!({
            "jid": "a",
            "klass": "klass",
            "state": "waiting",
            "queue": "q",
            "worker": "",
            "priority": 0,
            "expires": 0,
            "retries": 5,
            "remaining": 5,
            "data": "{}",
            "tags": [],
            "history": [{"what": "put", "when": 1, "q": "q"}],
            "failure": {},
            "tracked": false,
            "dependencies": [],
            "dependents": [],
            "spawned_from_jid": null,
        })
    );
}

/// put options (priority, tags, retries) show in the job object.
pub fn get_shows_put_options(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &[
            "me",
            "q",
            "a",
            "my.Klass",
            "{}",
            "0",
            "priority",
            "-3",
            "tags",
            "[\"x\", \"y\"]",
            "retries",
            "2",
        ],
    );
    let job = t.get("a");
    assert_eq!(job["klass"], json!("my.Klass"));
    assert_eq!(job["priority"], json!(-3));
    assert_eq!(job["tags"], json!(["x", "y"]));
    assert_eq!(job["retries"], json!(2));
    assert_eq!(job["remaining"], json!(2));
}

/// A running job shows its worker, lock expiry and state, and history put then popped.
pub fn get_running_job_shape(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(10.0, "q", "w1");
    let job = t.get("a");
    assert_eq!(job["state"], json!("running"));
    assert_eq!(job["worker"], json!("w1"));
    assert_eq!(job["expires"], json!(70));
    assert_eq!(job["queue"], json!("q"));
    assert_eq!(
        job["history"],
        json!([{"what": "put", "when": 0, "q": "q"}, {"what": "popped", "when": 10, "worker": "w1"}])
    );
}

/// A scheduled job shows state scheduled and no lock expiry.
pub fn get_scheduled_job_shape(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "a", "klass", "{}", "30"]);
    let job = t.get("a");
    assert_eq!(job["state"], json!("scheduled"));
    assert_eq!(job["expires"], json!(0));
    assert_eq!(job["worker"], json!(""));
}

/// data is the payload text exactly as given, not re-serialized.
pub fn get_data_stored_verbatim(t: &Harness) {
    let data = "{ \"b\" : 1,\n  \"a\": [2.50, \"\\u00e9\"] }";
    t.ok("put", 0.0, &["me", "q", "a", "klass", data, "0"]);
    assert_eq!(t.get("a")["data"], json!(data));
}

/// A numeric-looking jid is still a string.
pub fn get_numeric_jid_is_string(t: &Harness) {
    t.put(0.0, "q", "123");
    assert_eq!(t.ok("get", 0.0, &["123"])["jid"], json!("123"));
}

/// A failed job keeps its queue and shows the failure object with a floored time.
pub fn get_failed_job_shape(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("fail", 7.8, &["a", "w1", "grp", "it broke"]);
    let job = t.get("a");
    assert_eq!(job["state"], json!("failed"));
    assert_eq!(job["queue"], json!("q"));
    assert_eq!(job["worker"], json!(""));
    assert_eq!(job["expires"], json!(0));
    assert_eq!(
        job["failure"],
        json!({"group": "grp", "message": "it broke", "when": 7, "worker": "w1"})
    );
}

/// A complete job has an empty queue and worker, no expiry, and history put/popped/done.
pub fn get_complete_job_shape(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{\"out\": 1}"]);
    let job = t.get("a");
    assert_eq!(job["state"], json!("complete"));
    assert_eq!(job["queue"], json!(""));
    assert_eq!(job["worker"], json!(""));
    assert_eq!(job["expires"], json!(0));
    assert_eq!(job["data"], json!("{\"out\": 1}"));
    assert_eq!(history_whats(&job), vec!["put", "popped", "done"]);
}

/// A tracked job shows `tracked: true`.
pub fn get_tracked_flag(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok("track", 1.0, &["track", "a"]);
    assert_eq!(t.get("a")["tracked"], json!(true));
}

/// multiget returns the existing jobs in the order asked, skipping missing ones.
pub fn multiget_skips_missing_keeps_order(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    t.put(0.0, "q", "c");
    let got = t.ok("multiget", 1.0, &["c", "ghost", "a", "b"]);
    assert_eq!(jids(&got), vec!["c", "a", "b"]);
    assert_eq!(got[0], t.get("c"));
}

/// multiget of only missing jobs is an empty list.
pub fn multiget_all_missing_is_empty_list(t: &Harness) {
    assert_eq!(t.ok("multiget", 1.0, &["x", "y"]), json!([]));
}

/// get without a jid is invalid.
pub fn get_missing_jid_invalid(t: &Harness) {
    t.err_with("get", 1.0, &[], ErrorKind::Invalid, "Arg \"jid\" missing");
}

/// A job spawned by a recurring template names the template in `spawned_from_jid`.
pub fn get_spawned_from_jid_names_template(t: &Harness) {
    t.ok(
        "recur",
        0.0,
        &["q", "tmpl", "klass", "{}", "interval", "60", "0"],
    );
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("tmpl-1"));
    assert_eq!(t.get("tmpl-1")["spawned_from_jid"], json!("tmpl"));
}

/// The failure object survives a re-put and is cleared only by complete (§13).
pub fn get_failure_survives_reput_until_complete(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w1");
    t.ok("fail", 2.0, &["a", "w1", "grp", "boom"]);
    t.put(3.0, "q", "a");
    let job = t.get("a");
    assert_eq!(job["state"], json!("waiting"));
    assert_eq!(
        job["failure"],
        json!({"group": "grp", "message": "boom", "when": 2, "worker": "w1"})
    );
    t.pop_one(4.0, "q", "w1");
    t.ok("complete", 5.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.get("a")["failure"], json!({}));
}
