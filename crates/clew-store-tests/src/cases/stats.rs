//! Conformance cases: stats.

#[allow(unused_imports)]
use crate::prelude::*;

/// Histogram index of bucket `s<n>`.
fn s(n: usize) -> usize {
    n
}

/// Histogram index of bucket `m<n>` (m1 is 60).
fn m(n: usize) -> usize {
    59 + n
}

/// Histogram index of bucket `h<n>` (h1 is 119).
fn h(n: usize) -> usize {
    118 + n
}

/// Histogram index of bucket `d<n>` (d1 is 142).
fn d(n: usize) -> usize {
    141 + n
}

/// The histogram of a timing report as integers (asserting 148 buckets).
fn histogram(timing: &Value) -> Vec<i64> {
    let hist: Vec<i64> = timing["histogram"]
        .as_array()
        .expect("histogram is an array")
        .iter()
        .map(|v| v.as_i64().expect("integer bucket"))
        .collect();
    assert_eq!(hist.len(), 148, "histogram has 148 buckets");
    hist
}

/// A 148-bucket histogram with the given (index, count) pairs, all others 0.
fn expected_hist(set: &[(usize, i64)]) -> Vec<i64> {
    let mut v = vec![0; 148];
    for (i, c) in set {
        v[*i] += c;
    }
    v
}

/// Asserts `v` is a number within `eps` of `want`.
#[track_caller]
fn assert_close(v: &Value, want: f64, eps: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - want).abs() <= eps, "got {got}, want {want}");
}

/// Puts one job into `queue` at each `put_at`, then pops them all at `pop_at` with one pop.
fn waits(hs: &Harness, queue: &str, put_at: &[f64], pop_at: f64) {
    for (i, at) in put_at.iter().enumerate() {
        hs.put(*at, queue, &format!("j{i}"));
    }
    let n = put_at.len().to_string();
    let popped = hs.ok("pop", pop_at, &[queue, "w", &n]);
    assert_eq!(popped.as_array().unwrap().len(), put_at.len());
}

/// `stats` of a queue with no activity: zero counters and empty timing reports of 148 buckets.
pub fn stats_empty_queue_shape(t: &Harness) {
    let v = t.ok("stats", 0.0, &["q", "0"]);
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["failed", "failures", "retries", "run", "wait"]);
    assert_eq!(v["retries"], json!(0));
    assert_eq!(v["failed"], json!(0));
    assert_eq!(v["failures"], json!(0));
    for kind in ["wait", "run"] {
        let timing = &v[kind];
        let mut keys: Vec<&String> = timing.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["count", "histogram", "mean", "std"], "{kind}");
        assert_eq!(timing["count"], json!(0));
        assert_close(&timing["mean"], 0.0, 0.0);
        assert_close(&timing["std"], 0.0, 0.0);
        assert_eq!(histogram(timing), vec![0; 148]);
    }
}

/// The qless data point: 20 jobs waiting 0..19 s give count 20, mean 9.5, std 5.916…, s0..s19 = 1.
pub fn stats_wait_data_point(t: &Harness) {
    for i in 0..20 {
        t.put(0.0, "q", &format!("j{i:02}"));
    }
    for i in 0..20 {
        assert_eq!(
            t.pop_one(i as f64, "q", "w").as_deref(),
            Some(format!("j{i:02}").as_str())
        );
    }
    let wait = t.ok("stats", 0.0, &["q", "0"])["wait"].clone();
    assert_eq!(wait["count"], json!(20));
    assert_close(&wait["mean"], 9.5, 1e-9);
    assert_close(&wait["std"], 5.916079783, 1e-8);
    let ones: Vec<(usize, i64)> = (0..20).map(|i| (s(i), 1)).collect();
    assert_eq!(histogram(&wait), expected_hist(&ones));
    let run = t.ok("stats", 0.0, &["q", "0"])["run"].clone();
    assert_eq!(run["count"], json!(0));
}

/// Samples taken together (a pop of several jobs, a `complete` each) and
/// apart add up to the same statistic as one sample at a time: 10 jobs put
/// at 0..9 s, 4 popped at 20 s, 5 at 30 s, 1 at 31 s (waits 20, 19, 18,
/// 17, 26, 25, 24, 23, 22 and 22). A store may sum up a transaction's
/// samples and merge them into the stored ones.
pub fn stats_samples_popped_together_and_apart(t: &Harness) {
    for i in 0..10 {
        t.put(i as f64, "q", &format!("j{i}"));
    }
    let popped = |now: f64, count: &str| t.ok("pop", now, &["q", "w", count]);
    assert_eq!(popped(20.0, "4").as_array().map(Vec::len), Some(4));
    assert_eq!(popped(30.0, "5").as_array().map(Vec::len), Some(5));
    assert_eq!(popped(31.0, "1").as_array().map(Vec::len), Some(1));
    let waits = [20.0, 19.0, 18.0, 17.0, 26.0, 25.0, 24.0, 23.0, 22.0, 22.0];
    let n = waits.len() as f64;
    let mean = waits.iter().sum::<f64>() / n;
    let std = (waits.iter().map(|w| (w - mean) * (w - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let wait = t.ok("stats", 0.0, &["q", "0"])["wait"].clone();
    assert_eq!(wait["count"], json!(10));
    assert_close(&wait["mean"], mean, 1e-9);
    assert_close(&wait["std"], std, 1e-9);
    // Completed one call per job, at 40, 42 and 47 s.
    for (i, now) in [(0, 40.0), (1, 42.0), (2, 47.0)] {
        t.ok("complete", now, &[&format!("j{i}"), "w", "q", "{}"]);
    }
    let run = t.ok("stats", 0.0, &["q", "0"])["run"].clone();
    assert_eq!(run["count"], json!(3));
    // Popped at 20 s: ran 20, 22 and 27 s.
    let runs = [20.0, 22.0, 27.0];
    let mean = runs.iter().sum::<f64>() / 3.0;
    let std = (runs.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / 2.0).sqrt();
    assert_close(&run["mean"], mean, 1e-9);
    assert_close(&run["std"], std, 1e-9);
}

/// One sample has a standard deviation of 0.
pub fn stats_single_sample_std_is_zero(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(7.0, "q", "w");
    let wait = t.ok("stats", 7.0, &["q", "7"])["wait"].clone();
    assert_eq!(wait["count"], json!(1));
    assert_close(&wait["mean"], 7.0, 1e-9);
    assert_close(&wait["std"], 0.0, 0.0);
    assert_eq!(histogram(&wait), expected_hist(&[(s(7), 1)]));
}

/// Run statistics are recorded by `complete`: the time from pop to completion.
pub fn stats_run_recorded_on_complete(t: &Harness) {
    t.put(0.0, "q", "a");
    t.put(0.0, "q", "b");
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("a"));
    assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some("b"));
    t.ok("complete", 15.0, &["a", "w", "q", "{}"]);
    t.ok("heartbeat", 100.0, &["b", "w"]);
    t.ok("complete", 135.0, &["b", "w", "q", "{}"]);
    let run = t.ok("stats", 0.0, &["q", "0"])["run"].clone();
    assert_eq!(run["count"], json!(2));
    assert_close(&run["mean"], 65.0, 1e-9);
    assert_close(&run["std"], 84.852_813_742, 1e-6);
    assert_eq!(histogram(&run), expected_hist(&[(s(5), 1), (m(2), 1)]));
}

/// Advancing a job with `complete ... next` also records a run statistic in the old queue.
pub fn stats_run_recorded_when_advancing(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(1.0, "q", "w");
    t.ok("complete", 4.0, &["a", "w", "q", "{}", "next", "q2"]);
    let run = t.ok("stats", 4.0, &["q", "4"])["run"].clone();
    assert_eq!(run["count"], json!(1));
    assert_eq!(histogram(&run), expected_hist(&[(s(3), 1)]));
}

/// Durations are floored to whole seconds before bucketing (59.9 s is s59, 60 s is m1).
pub fn stats_histogram_floors_to_whole_seconds(t: &Harness) {
    waits(
        t,
        "q",
        &[1000.0 - 0.5, 1000.0 - 59.9, 1000.0 - 60.0],
        1000.0,
    );
    let wait = t.ok("stats", 1000.0, &["q", "1000"])["wait"].clone();
    assert_eq!(wait["count"], json!(3));
    assert_eq!(
        histogram(&wait),
        expected_hist(&[(s(0), 1), (s(59), 1), (m(1), 1)])
    );
}

/// Durations from 60 s to under an hour go in minute buckets m1..m59.
pub fn stats_minute_buckets(t: &Harness) {
    let at = 10_000.0;
    waits(
        t,
        "q",
        &[at - 60.0, at - 119.9, at - 120.0, at - 3599.0],
        at,
    );
    let wait = t.ok("stats", at, &["q", "10000"])["wait"].clone();
    assert_eq!(
        histogram(&wait),
        expected_hist(&[(m(1), 2), (m(2), 1), (m(59), 1)])
    );
}

/// Durations from an hour to under a day go in hour buckets h1..h23.
pub fn stats_hour_buckets(t: &Harness) {
    let at = 100_000.0;
    waits(
        t,
        "q",
        &[at - 3600.0, at - 7199.0, at - 7200.0, at - 86_399.0],
        at,
    );
    let wait = t.ok("stats", at, &["q", "100000"])["wait"].clone();
    assert_eq!(
        histogram(&wait),
        expected_hist(&[(h(1), 2), (h(2), 1), (h(23), 1)])
    );
}

/// Durations of a day or more go in day buckets; only d1..d6 are reported, longer ones still count.
pub fn stats_day_buckets(t: &Harness) {
    let at = 864_000.0;
    waits(
        t,
        "q",
        &[
            at - 86_400.0,
            at - 2.0 * 86_400.0 - 5.0,
            at - 6.0 * 86_400.0,
            at - 7.0 * 86_400.0,
        ],
        at,
    );
    let wait = t.ok("stats", at, &["q", "864000"])["wait"].clone();
    assert_eq!(wait["count"], json!(4));
    assert_eq!(
        histogram(&wait),
        expected_hist(&[(d(1), 1), (d(2), 1), (d(6), 1)])
    );
}

/// Stats are binned by UTC day of the recording time; any date in the day reads that bin.
pub fn stats_binned_by_utc_day(t: &Harness) {
    t.put(86_399.0, "q", "a");
    t.pop_one(86_399.5, "q", "w");
    t.put(86_400.0, "q", "b");
    t.pop_one(86_402.0, "q", "w");
    let day0 = t.ok("stats", 90_000.0, &["q", "0"])["wait"].clone();
    assert_eq!(day0["count"], json!(1));
    assert_eq!(histogram(&day0), expected_hist(&[(s(0), 1)]));
    let day0_late = t.ok("stats", 90_000.0, &["q", "86399.9"])["wait"].clone();
    assert_eq!(day0_late, day0);
    let day1 = t.ok("stats", 90_000.0, &["q", "172799"])["wait"].clone();
    assert_eq!(day1["count"], json!(1));
    assert_eq!(histogram(&day1), expected_hist(&[(s(2), 1)]));
    let day2 = t.ok("stats", 90_000.0, &["q", "172800"])["wait"].clone();
    assert_eq!(day2["count"], json!(0));
}

/// Stats are kept per queue.
pub fn stats_are_per_queue(t: &Harness) {
    t.put(0.0, "q1", "a");
    t.pop_one(3.0, "q1", "w");
    assert_eq!(t.ok("stats", 3.0, &["q1", "3"])["wait"]["count"], json!(1));
    assert_eq!(t.ok("stats", 3.0, &["q2", "3"])["wait"]["count"], json!(0));
}

/// `fail` increments both `failures` and `failed`; re-putting the job decrements only `failed`.
pub fn stats_failures_and_failed_counters(t: &Harness) {
    for jid in ["a", "b"] {
        t.put(10.0, "q", jid);
        assert_eq!(t.pop_one(10.0, "q", "w").as_deref(), Some(jid));
        t.ok("fail", 11.0, &[jid, "w", "g", "boom"]);
    }
    let v = t.ok("stats", 12.0, &["q", "12"]);
    assert_eq!(
        (v["failures"].clone(), v["failed"].clone()),
        (json!(2), json!(2))
    );
    t.put(13.0, "q", "a");
    let v = t.ok("stats", 14.0, &["q", "14"]);
    assert_eq!(
        (v["failures"].clone(), v["failed"].clone()),
        (json!(2), json!(1))
    );
}

/// Cancelling a failed job decrements `failed` in the bin of the failure day.
pub fn stats_cancel_of_failed_job_decrements_failed(t: &Harness) {
    t.put(10.0, "q", "a");
    t.pop_one(10.0, "q", "w");
    t.ok("fail", 11.0, &["a", "w", "g", "boom"]);
    t.ok("cancel", 200_000.0, &["a"]);
    let v = t.ok("stats", 200_000.0, &["q", "11"]);
    assert_eq!(
        (v["failures"].clone(), v["failed"].clone()),
        (json!(1), json!(0))
    );
}

/// Exhausting retries with `retry` counts a failure and a failed job.
pub fn stats_retry_exhaustion_counts_failure(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    t.pop_one(1.0, "q", "w");
    assert_eq!(t.ok("retry", 2.0, &["a", "q", "w"]), json!(-1));
    assert_eq!(t.state("a"), "failed");
    let v = t.ok("stats", 3.0, &["q", "3"]);
    assert_eq!(
        (v["failures"].clone(), v["failed"].clone()),
        (json!(1), json!(1))
    );
}

/// A lost lock detected by a pop (the courtesy step) increments `retries`.
pub fn stats_lost_lock_counts_retry(t: &Harness) {
    t.put(0.0, "q", "a");
    t.pop_one(0.0, "q", "w1");
    assert_eq!(t.ok("stats", 1.0, &["q", "1"])["retries"], json!(0));
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    let v = t.ok("stats", 61.0, &["q", "61"]);
    assert_eq!(v["retries"], json!(1));
    assert_eq!(v["failures"], json!(0));
}

/// A negative duration (clock moved backwards) is counted in bucket s0.
pub fn stats_negative_duration_counts_as_zero(t: &Harness) {
    t.put(100.0, "q", "a");
    assert_eq!(t.pop_one(50.0, "q", "w").as_deref(), Some("a"));
    let wait = t.ok("stats", 50.0, &["q", "50"])["wait"].clone();
    assert_eq!(wait["count"], json!(1));
    assert_eq!(histogram(&wait), expected_hist(&[(s(0), 1)]));
}

/// `stats` without a date is an invalid-argument error.
pub fn stats_date_required(t: &Harness) {
    t.err_with(
        "stats",
        0.0,
        &["q"],
        ErrorKind::Invalid,
        "Stats(): Arg \"date\" missing",
    );
}

/// `stats` with a non-numeric date is an invalid-argument error.
pub fn stats_date_must_be_numeric(t: &Harness) {
    t.err_with(
        "stats",
        0.0,
        &["q", "today"],
        ErrorKind::Invalid,
        "Arg \"date\" not a number",
    );
}

/// Re-putting a failed job into another queue decrements `failed` of the queue it failed in
/// (docs/qless-compat.md #8), never the target queue.
pub fn stats_reput_to_other_queue_decrements_original_queue(t: &Harness) {
    t.put(10.0, "q", "a");
    t.pop_one(10.0, "q", "w");
    t.ok("fail", 11.0, &["a", "w", "g", "boom"]);
    t.put(20.0, "q2", "a");
    let q = t.ok("stats", 20.0, &["q", "20"]);
    assert_eq!(
        (q["failures"].clone(), q["failed"].clone()),
        (json!(1), json!(0))
    );
    let q2 = t.ok("stats", 20.0, &["q2", "20"]);
    assert_eq!(
        (q2["failures"].clone(), q2["failed"].clone()),
        (json!(0), json!(0))
    );
}

/// The re-put decrement lands in the bin of the failure day, not the day of the put.
pub fn stats_reput_decrements_failure_day_bin(t: &Harness) {
    t.put(10.0, "q", "a");
    t.pop_one(10.0, "q", "w");
    t.ok("fail", 11.0, &["a", "w", "g", "boom"]);
    t.put(200_000.0, "q", "a");
    let day0 = t.ok("stats", 200_000.0, &["q", "0"]);
    assert_eq!(
        (day0["failures"].clone(), day0["failed"].clone()),
        (json!(1), json!(0))
    );
    let day2 = t.ok("stats", 200_000.0, &["q", "200000"]);
    assert_eq!(
        (day2["failures"].clone(), day2["failed"].clone()),
        (json!(0), json!(0))
    );
}

/// A job failed by lock invalidation (no retries left) counts a retry, a failure and a failed job.
pub fn stats_invalidation_exhaustion_counts_failure(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "a", "klass", "{}", "0", "retries", "0"],
    );
    t.pop_one(0.0, "q", "w1");
    // Lock expires at 60: courtesy step, then after the 10 s grace the lock is invalidated.
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("pop", 70.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.state("a"), "failed");
    let v = t.ok("stats", 70.0, &["q", "70"]);
    assert_eq!(
        (
            v["retries"].clone(),
            v["failures"].clone(),
            v["failed"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
}

/// The wait of a delayed job is measured from its put, not from when it became due.
pub fn stats_wait_of_scheduled_job_counts_from_put(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "a", "klass", "{}", "10"]);
    assert_eq!(t.pop_one(15.0, "q", "w").as_deref(), Some("a"));
    let wait = t.ok("stats", 15.0, &["q", "15"])["wait"].clone();
    assert_eq!(wait["count"], json!(1));
    assert_eq!(histogram(&wait), expected_hist(&[(s(15), 1)]));
}
