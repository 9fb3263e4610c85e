//! Conformance cases: cron schedules of recurring templates.

#[allow(unused_imports)]
use crate::prelude::*;

/// Monday 2026-01-05 10:02:00 UTC.
const T0: f64 = 1_767_607_320.0;
/// Saturday 2026-03-28 12:00:00 UTC (Europe/Paris springs forward the next night).
const SPRING: f64 = 1_774_699_200.0;
/// Saturday 2026-10-24 12:00:00 UTC (Europe/Paris falls back the next night).
const FALL: f64 = 1_792_843_200.0;
const MIN: f64 = 60.0;
const HOUR: f64 = 3600.0;

/// `recur q r klass {} cron <expr> 0 [pairs...]` at `now`.
fn cron(h: &Harness, now: f64, expr: &str, pairs: &[&str]) -> Value {
    let mut args = vec!["q", "r", "klass", "{}", "cron", expr, "0"];
    args.extend_from_slice(pairs);
    h.ok("recur", now, &args)
}

/// The template's `next_at`, in seconds.
fn next_at(h: &Harness) -> f64 {
    h.ok("recur.get", 0.0, &["r"])["next_at"]
        .as_f64()
        .expect("next_at")
}

/// The jids `peek` returns at `now`.
fn peek(h: &Harness, now: f64) -> Vec<String> {
    h.ok("peek", now, &["q", "100"])
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect()
}

/// A job's `put` time (its first history entry).
fn put_time(h: &Harness, jid: &str) -> f64 {
    let j = h.get(jid);
    assert_eq!(j["history"][0]["what"], json!("put"), "{j}");
    j["history"][0]["when"].as_f64().expect("when")
}

/// `recur.get` of a cron template shows the expression, zone, missed-tick
/// handling and next spawn (and interval 0).
pub fn cron_recur_get_shape(t: &Harness) {
    cron(
        t,
        T0,
        "*/5 * * * *",
        &[
            "timezone",
            "Europe/Paris",
            "missed",
            "skip",
            "priority",
            "3",
        ],
    );
    let v = t.ok("recur.get", T0, &["r"]);
    assert_eq!(v["cron"], json!("*/5 * * * *"));
    assert_eq!(v["timezone"], json!("Europe/Paris"));
    assert_eq!(v["missed"], json!("skip"));
    assert_eq!(v["next_at"].as_f64(), Some(T0 + 3.0 * MIN));
    assert_eq!(v["interval"], json!(0));
    assert_eq!(v["priority"], json!(3));
    assert_eq!(v["state"], json!("recur"));
    // Defaults: UTC, catch-up.
    t.ok("recur", T0, &["q", "d", "k", "{}", "cron", "@hourly", "0"]);
    let d = t.ok("recur.get", T0, &["d"]);
    assert_eq!(d["timezone"], json!("UTC"));
    assert_eq!(d["missed"], json!("catch-up"));
    assert_eq!(d["next_at"].as_f64(), Some(T0 + 58.0 * MIN));
    // An interval template keeps the qless shape.
    t.ok("recur", T0, &["q", "i", "k", "{}", "interval", "60", "0"]);
    assert!(t.ok("recur.get", T0, &["i"]).get("cron").is_none());
}

/// Each tick spawns exactly one child, at the tick's time, and not before;
/// calls between ticks spawn nothing more.
pub fn cron_spawns_one_child_per_tick(t: &Harness) {
    cron(t, T0, "*/5 * * * *", &[]);
    let tick1 = T0 + 3.0 * MIN;
    assert!(peek(t, tick1 - 0.5).is_empty());
    assert_eq!(peek(t, tick1), ["r-1"]);
    assert_eq!(put_time(t, "r-1"), tick1);
    assert_eq!(t.get("r-1")["spawned_from_jid"], json!("r"));
    assert_eq!(peek(t, tick1 + 30.0), ["r-1"]);
    assert_eq!(peek(t, tick1 + 4.0 * MIN), ["r-1"]);
    assert_eq!(next_at(t), tick1 + 5.0 * MIN);
    assert_eq!(
        t.pop_one(tick1 + 5.0 * MIN + 2.0, "q", "w").as_deref(),
        Some("r-1")
    );
    assert_eq!(
        t.pop_one(tick1 + 5.0 * MIN + 3.0, "q", "w").as_deref(),
        Some("r-2")
    );
    assert_eq!(put_time(t, "r-2"), tick1 + 5.0 * MIN);
    assert_eq!(t.pop_one(tick1 + 6.0 * MIN, "q", "w"), None);
    assert_eq!(t.ok("recur.get", 0.0, &["r"])["count"], json!(2));
}

/// Steps, ranges, lists and day names: `0 9-17/4 * * MON,WED` fires at 9,
/// 13 and 17 on Mondays and Wednesdays.
pub fn cron_steps_ranges_lists_names(t: &Harness) {
    let monday8 = T0 - 2.0 * HOUR - 2.0 * MIN;
    cron(t, monday8, "0 9-17/4 * * MON,WED", &[]);
    let mut expected = vec![];
    for (day, hour) in [
        (0.0, 9.0),
        (0.0, 13.0),
        (0.0, 17.0),
        (2.0, 9.0),
        (2.0, 13.0),
    ] {
        expected.push(monday8 - 8.0 * HOUR + day * 24.0 * HOUR + hour * HOUR);
    }
    for (i, tick) in expected.iter().enumerate() {
        assert_eq!(next_at(t), *tick, "tick {i}");
        let jids = peek(t, *tick);
        assert_eq!(jids.len(), i + 1);
        assert_eq!(put_time(t, &format!("r-{}", i + 1)), *tick);
    }
}

/// Ticks are read in the template's zone, DST included: `30 2 * * *` in
/// Europe/Paris fires at the end of the spring-forward gap, once on the
/// fall-back night, and `0 9 * * *` moves from 08:00 to 07:00 UTC.
pub fn cron_time_zone_and_dst(t: &Harness) {
    cron(t, SPRING, "30 2 * * *", &["timezone", "Europe/Paris"]);
    // 2026-03-29 01:00 UTC = 03:00 CEST, the first instant after the gap.
    let gap_end = SPRING + 13.0 * HOUR;
    assert_eq!(next_at(t), gap_end);
    assert_eq!(peek(t, gap_end), ["r-1"]);
    // 2026-03-30 02:30 CEST = 00:30 UTC.
    assert_eq!(next_at(t), gap_end + 23.5 * HOUR);

    t.ok(
        "recur",
        FALL,
        &[
            "q",
            "f",
            "k",
            "{}",
            "cron",
            "30 2 * * *",
            "0",
            "timezone",
            "Europe/Paris",
        ],
    );
    let first = FALL + 12.5 * HOUR; // 02:30 CEST
    let f = |h: &Harness| h.ok("recur.get", 0.0, &["f"])["next_at"].as_f64().unwrap();
    assert_eq!(f(t), first);
    t.ok("peek", first, &["q", "100"]);
    assert_eq!(t.ok("recur.get", 0.0, &["f"])["count"], json!(1));
    // 02:30 CET (the second 02:30 that night) does not fire again.
    t.ok("peek", first + HOUR, &["q", "100"]);
    assert_eq!(t.ok("recur.get", 0.0, &["f"])["count"], json!(1));
    assert_eq!(f(t), first + 25.0 * HOUR); // 2026-10-26 02:30 CET

    t.ok(
        "recur",
        SPRING,
        &[
            "q",
            "n",
            "k",
            "{}",
            "cron",
            "0 9 * * *",
            "0",
            "timezone",
            "Europe/Paris",
        ],
    );
    let n = |h: &Harness| h.ok("recur.get", 0.0, &["n"])["next_at"].as_f64().unwrap();
    assert_eq!(n(t), SPRING + 19.0 * HOUR); // 2026-03-29 07:00 UTC
}

/// After downtime spanning several ticks, `catch-up` (the default) spawns
/// ONE child, at the latest due tick; the next spawn is the first tick
/// after now.
pub fn cron_catch_up_spawns_once_after_downtime(t: &Harness) {
    cron(t, T0, "*/5 * * * *", &[]);
    let back = T0 + 29.0 * MIN; // 10:31: ticks 10:05 ... 10:30 are due
    assert_eq!(peek(t, back), ["r-1"]);
    assert_eq!(put_time(t, "r-1"), T0 + 28.0 * MIN);
    assert_eq!(next_at(t), T0 + 33.0 * MIN);
    assert_eq!(peek(t, back + MIN), ["r-1"]);
    assert_eq!(peek(t, T0 + 33.0 * MIN), ["r-1", "r-2"]);
}

/// After downtime spanning several ticks, `skip` spawns none of them; a
/// single due tick (its successor not yet due) still spawns, however late.
pub fn cron_skip_spawns_nothing_for_missed_ticks(t: &Harness) {
    cron(t, T0, "*/5 * * * *", &["missed", "skip"]);
    // One tick due (10:05), 4 minutes late: spawned.
    assert_eq!(peek(t, T0 + 7.0 * MIN), ["r-1"]);
    assert_eq!(put_time(t, "r-1"), T0 + 3.0 * MIN);
    // Down from 10:09 to 10:31: 10:10 ... 10:30 are missed.
    assert_eq!(peek(t, T0 + 29.0 * MIN), ["r-1"]);
    assert_eq!(next_at(t), T0 + 33.0 * MIN);
    assert_eq!(t.ok("recur.get", 0.0, &["r"])["count"], json!(1));
    assert_eq!(peek(t, T0 + 33.0 * MIN), ["r-1", "r-2"]);
    assert_eq!(put_time(t, "r-2"), T0 + 33.0 * MIN);
}

/// `recur.update` changes the expression, zone and missed-tick handling,
/// and switches between interval and cron; the next spawn is recomputed
/// from now.
pub fn cron_update(t: &Harness) {
    t.ok("recur", T0, &["q", "r", "k", "{}", "interval", "600", "0"]);
    assert_eq!(
        t.ok(
            "recur.update",
            T0,
            &["r", "cron", "0 * * * *", "missed", "skip"]
        ),
        json!(true)
    );
    let v = t.ok("recur.get", T0, &["r"]);
    assert_eq!(v["cron"], json!("0 * * * *"));
    assert_eq!(v["missed"], json!("skip"));
    assert_eq!(v["next_at"].as_f64(), Some(T0 + 58.0 * MIN));
    // Europe/Paris is UTC+1 in January: 9:00 there is 8:00 UTC.
    t.ok(
        "recur.update",
        T0,
        &["r", "cron", "0 9 * * *", "timezone", "Europe/Paris"],
    );
    assert_eq!(next_at(t), T0 + 22.0 * HOUR - 2.0 * MIN);
    t.ok("recur.update", T0, &["r", "timezone", "Asia/Tokyo"]);
    // 9:00 in Tokyo is 0:00 UTC.
    assert_eq!(next_at(t), T0 + 14.0 * HOUR - 2.0 * MIN);
    t.ok("recur.update", T0, &["r", "missed", "catch-up"]);
    assert_eq!(t.ok("recur.get", T0, &["r"])["missed"], json!("catch-up"));
    // Back to an interval: the cron fields go, the next child is now + interval.
    t.ok("recur.update", T0, &["r", "interval", "90"]);
    let v = t.ok("recur.get", T0, &["r"]);
    assert!(v.get("cron").is_none(), "{v}");
    assert_eq!(v["interval"], json!(90));
    assert!(peek(t, T0 + 89.0).is_empty());
    assert_eq!(peek(t, T0 + 90.0), ["r-1"]);
    // Stray options on an interval template are refused, and nothing changes.
    t.err_with(
        "recur.update",
        T0,
        &["r", "timezone", "UTC"],
        ErrorKind::Invalid,
        "timezone",
    );
    t.err_with(
        "recur.update",
        T0,
        &["r", "missed", "skip"],
        ErrorKind::Invalid,
        "missed",
    );
    t.err_with(
        "recur.update",
        T0,
        &["r", "cron", "* * * * *", "interval", "5"],
        ErrorKind::Invalid,
        "not both",
    );
    assert_eq!(t.ok("recur.get", T0, &["r"])["interval"], json!(90));
}

/// Bad expressions, zones and options are refused with the reason, and
/// nothing is stored.
pub fn cron_validation(t: &Harness) {
    let bad = |expr: &str, pairs: &[&str], needle: &str| {
        let mut args = vec!["q", "r", "k", "{}", "cron", expr, "0"];
        args.extend_from_slice(pairs);
        t.err_with("recur", T0, &args, ErrorKind::Invalid, needle);
        assert_eq!(
            t.ok("recur.get", T0, &["r"]),
            Value::Null,
            "{expr} {pairs:?}"
        );
    };
    bad("* * * *", &[], "5 fields");
    bad("* * * * * *", &[], "5 fields");
    bad("61 * * * *", &[], "cron");
    bad("* * * * FOO", &[], "cron");
    bad("0 0 31 2 *", &[], "never fires");
    bad("* * * * *", &["timezone", "Mars/Olympus"], "timezone");
    bad("* * * * *", &["missed", "sometimes"], "missed");
    bad("", &[], "cron");
    t.err_with(
        "recur",
        T0,
        &[
            "q", "r", "k", "{}", "interval", "60", "0", "timezone", "UTC",
        ],
        ErrorKind::Invalid,
        "timezone",
    );
    t.err_with(
        "recur",
        T0,
        &["q", "r", "k", "{}", "hourly", "60", "0"],
        ErrorKind::Invalid,
        "schedule type",
    );
    cron(t, T0, "* * * * *", &[]);
    t.err_with(
        "recur.update",
        T0,
        &["r", "cron", "* *"],
        ErrorKind::Invalid,
        "5 fields",
    );
    t.err_with(
        "recur.update",
        T0,
        &["r", "timezone", "Nowhere"],
        ErrorKind::Invalid,
        "timezone",
    );
    assert_eq!(t.ok("recur.get", T0, &["r"])["cron"], json!("* * * * *"));
}

/// Many concurrent pops and peeks around several ticks spawn exactly one
/// child per tick (spawning happens inside each command's transaction).
pub fn cron_concurrent_callers_spawn_once_per_tick(t: &Harness) {
    cron(t, T0, "* * * * *", &[]);
    let ticks = 5;
    let first = T0 + MIN;
    for k in 0..ticks {
        let tick = first + k as f64 * MIN;
        let calls: Vec<_> = (0..16)
            .map(|i| {
                let engine = t.engine().clone();
                let now = tick + f64::from(i % 4) * 0.25;
                // Pops first (on PostgreSQL they run next to each other).
                let (cmd, args): (&str, Vec<String>) = if i % 4 != 3 {
                    ("pop", vec!["q".into(), format!("w{i}"), "1".into()])
                } else {
                    ("peek", vec!["q".into(), "3".into()])
                };
                async move { engine.qless(cmd, Some(now), &args).await }
            })
            .collect();
        let results = t.block_on(async {
            let handles: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.expect("task"));
            }
            out
        });
        for r in results {
            r.expect("pop or peek");
        }
    }
    let v = t.ok("recur.get", 0.0, &["r"]);
    assert_eq!(v["count"], json!(ticks), "{v}");
    for k in 0..ticks {
        let jid = format!("r-{}", k + 1);
        assert_eq!(put_time(t, &jid), first + k as f64 * MIN, "{jid}");
        let puts = history_whats(&t.get(&jid))
            .iter()
            .filter(|w| *w == "put")
            .count();
        assert_eq!(puts, 1, "{jid} spawned more than once");
    }
    assert_eq!(t.get(&format!("r-{}", ticks + 1)), Value::Null);
}
