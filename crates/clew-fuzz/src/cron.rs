//! Cron schedules: `clew_core::cron` (the `cron`, `timezone` and `missed`
//! of a recurring template, from the API, the qless `recur` and the CLI).
//!
//! Input: lines `EXPRESSION`, `TIMEZONE`, `MISSED`, `NOW` (seconds; all but
//! the first optional). Properties: a refusal is an `Invalid` error; an
//! accepted schedule has a next tick strictly after `now` (and after that
//! tick, a later one), in whole seconds; its latest tick at or before a
//! time is not after it; `missed` round-trips through its wire name.

use clew_core::cron::{CronSchedule, Missed};
use clew_core::Timestamp;

/// The target.
pub fn run(data: &[u8]) {
    let Some(lines) = crate::lines(data) else {
        return;
    };
    let expr = lines[0];
    let zone = lines.get(1).copied().filter(|z| !z.is_empty());
    if let Some(missed) = lines.get(2) {
        match Missed::parse("Recur", missed) {
            Ok(m) => assert_eq!(Missed::parse("Recur", m.as_str()), Ok(m)),
            Err(e) => crate::assert_invalid(&e, missed),
        }
    }
    let now = lines
        .get(3)
        .and_then(|n| n.trim().parse::<f64>().ok())
        .and_then(Timestamp::from_secs_f64)
        .unwrap_or(Timestamp::from_secs(1_700_000_000));
    let schedule = match CronSchedule::parse("Recur", expr, zone) {
        Ok(s) => s,
        Err(e) => return crate::assert_invalid(&e, &(expr, zone)),
    };
    // Beyond the years the zone database and chrono handle the schedule
    // may refuse (an Invalid error), but never panic or go backwards.
    let Ok(next) = schedule.next_after(now) else {
        return;
    };
    assert!(
        next > now,
        "{expr:?} in {zone:?}: next tick {next:?} is not after {now:?}"
    );
    assert_eq!(
        next.as_micros() % 1_000_000,
        0,
        "{expr:?}: tick {next:?} is not a whole second"
    );
    if let Ok(after) = schedule.next_after(next) {
        assert!(
            after > next,
            "{expr:?} in {zone:?}: tick {after:?} after {next:?}"
        );
    }
    if let Some(latest) = schedule.latest_at_or_before(now) {
        assert!(
            latest <= now,
            "{expr:?} in {zone:?}: latest {latest:?} after {now:?}"
        );
    }
}
