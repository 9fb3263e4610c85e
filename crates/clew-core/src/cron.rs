//! Cron schedules of recurring templates: standard 5-field cron expressions
//! (`minute hour day-of-month month day-of-week`, with `*`, lists, ranges,
//! steps, `JAN`-`DEC`, `SUN`-`SAT` and the `@hourly`-style nicknames) read
//! in an IANA time zone (UTC by default).
//!
//! Parsing and next-fire computation are [`croner`]'s (with `chrono-tz`'s
//! zone database), which handles DST: a wall-clock time that falls into a
//! spring-forward gap fires at the first instant after the gap, and one that
//! occurs twice in a fall-back overlap fires once (at the first).
//!
//! Everything here is a pure function of its arguments; the spawn rule that
//! uses it is [`crate::logic`]'s.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::command::{RecurParams, RecurUpdate};
use crate::error::{Error, Result};
use crate::job::RecurRecord;
use crate::time::Timestamp;

/// What a cron template does with ticks it missed (see [`Missed::CatchUp`]).
///
/// A tick counts as *missed* when, by the time the template's queue is next
/// popped or peeked, the tick after it is also due (the servers were down,
/// or no one asked the queue, for at least a whole period).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missed {
    /// All due ticks, missed or not, are spawned as ONE child, at the latest
    /// of them (the default).
    #[default]
    CatchUp,
    /// Missed ticks spawn nothing: when several ticks are due, no child is
    /// spawned and the schedule moves on to the next tick after now. A
    /// single due tick (its successor not yet due) still spawns, however
    /// late.
    Skip,
}

impl Missed {
    /// The wire name: `catch-up` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::CatchUp => "catch-up",
            Missed::Skip => "skip",
        }
    }

    /// Parses `catch-up` (or `catch_up`, `catchup`) and `skip`; `command`
    /// names the caller in the error.
    pub fn parse(command: &str, text: &str) -> Result<Missed> {
        match text {
            "catch-up" | "catch_up" | "catchup" => Ok(Missed::CatchUp),
            "skip" => Ok(Missed::Skip),
            _ => Err(Error::invalid(format!(
                "{command}(): Arg \"missed\" must be \"skip\" or \"catch-up\": {text:?}"
            ))),
        }
    }
}

/// A template's stored cron schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    /// The 5-field expression (or `@` nickname), trimmed.
    pub expr: String,
    /// The IANA zone it is read in (`None`: UTC).
    pub timezone: Option<String>,
    /// What the template does with missed ticks.
    pub missed: Missed,
}

impl CronSpec {
    /// The zone's name (`UTC` when none is set).
    pub fn zone_name(&self) -> &str {
        self.timezone.as_deref().unwrap_or("UTC")
    }

    /// The parsed schedule (`command` names the caller in errors).
    pub fn schedule(&self, command: &str) -> Result<CronSchedule> {
        CronSchedule::parse(command, &self.expr, self.timezone.as_deref())
    }
}

/// The five fields of a cron expression, in order, as error messages name them.
const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// A parsed cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: Cron,
    zone: Tz,
}

impl CronSchedule {
    /// Parses `expr` (exactly five fields, or an `@` nickname) in `timezone`
    /// (an IANA name; `None` or empty is UTC). Errors are
    /// [`crate::ErrorKind::Invalid`] naming `command` and the reason.
    pub fn parse(command: &str, expr: &str, timezone: Option<&str>) -> Result<CronSchedule> {
        let zone = parse_zone(command, timezone)?;
        let trimmed = expr.trim();
        let fields = trimmed.split_whitespace().count();
        if !(trimmed.starts_with('@') && fields == 1) && fields != 5 {
            return Err(Error::invalid(format!(
                "{command}(): Arg \"cron\" must have 5 fields (minute hour day-of-month \
                 month day-of-week) or be an @nickname, got {fields}: {expr:?}"
            )));
        }
        // An empty list item (`,`, `1,,2`, `5,`) leaves a field with fewer
        // values than written, or none: croner takes it, and a field with no
        // value makes the "never fires" search below walk years of minutes
        // (seconds of CPU, found by the fuzzer). Refuse it by name instead.
        if !trimmed.starts_with('@') {
            for (name, field) in FIELD_NAMES.iter().zip(trimmed.split_whitespace()) {
                if field.split(',').any(str::is_empty) {
                    return Err(Error::invalid(format!(
                        "{command}(): Arg \"cron\" has an empty list item in its {name} \
                         field {field:?}: {expr:?}"
                    )));
                }
            }
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| {
                Error::invalid(format!(
                    "{command}(): Arg \"cron\" is invalid: {e}: {expr:?}"
                ))
            })?;
        // Minutes, hours and months take no day modifiers, so an empty set
        // there can never match: say so without searching for a fire time.
        let p = &cron.pattern;
        for (name, values) in [
            ("minute", p.minutes.values()),
            ("hour", p.hours.values()),
            ("month", p.months.values()),
        ] {
            if values.is_empty() {
                return Err(Error::invalid(format!(
                    "{command}(): Arg \"cron\" never fires: its {name} field matches nothing: \
                     {expr:?}"
                )));
            }
        }
        let schedule = CronSchedule { cron, zone };
        // A pattern that never fires (e.g. `0 0 31 2 *`) is refused now
        // rather than when the queue is popped.
        schedule.next_after(Timestamp::from_secs(0)).map_err(|_| {
            Error::invalid(format!("{command}(): Arg \"cron\" never fires: {expr:?}"))
        })?;
        Ok(schedule)
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Result<Timestamp> {
        // Fire times are whole seconds: search from `t`'s second, then step
        // past it if `t` is that tick or later within the second.
        let mut from = t.floor_secs();
        loop {
            let start = self.zoned(from)?;
            let next = self
                .cron
                .find_next_occurrence(&start, false)
                .map_err(|e| Error::invalid(format!("cron schedule: {e}")))?;
            let at = Timestamp::from_secs(next.timestamp());
            if at > t {
                return Ok(at);
            }
            from = next.timestamp();
        }
    }

    /// The latest fire time at or before `t`, if there is one.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let start = self.zoned(t.floor_secs()).ok()?;
        let prev = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(Timestamp::from_secs(prev.timestamp()))
    }

    /// The zone the expression is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    fn zoned(&self, secs: i64) -> Result<DateTime<Tz>> {
        Utc.timestamp_opt(secs, 0)
            .single()
            .map(|u| u.with_timezone(&self.zone))
            .ok_or_else(|| Error::invalid(format!("cron schedule: time {secs} out of range")))
    }
}

/// Parses an IANA zone name (`None` or empty: UTC).
fn parse_zone(command: &str, timezone: Option<&str>) -> Result<Tz> {
    match timezone {
        None | Some("") => Ok(Tz::UTC),
        Some(name) => Tz::from_str(name).map_err(|e| {
            Error::invalid(format!(
                "{command}(): Arg \"timezone\" is not an IANA time zone: {name:?} ({e})"
            ))
        }),
    }
}

/// Checks a time zone name without a cron expression.
pub fn check_zone(command: &str, timezone: &str) -> Result<()> {
    parse_zone(command, Some(timezone)).map(|_| ())
}

/// Checks a `recur` with a cron schedule (or a stray time zone).
pub fn validate_recur(p: &RecurParams) -> Result<()> {
    match &p.cron {
        Some(expr) => CronSchedule::parse("Recur", expr, p.timezone.as_deref()).map(|_| ()),
        None => Err(Error::invalid(format!(
            "Recur(): Arg \"{}\" needs a cron schedule",
            if p.timezone.is_some() {
                "timezone"
            } else {
                "missed"
            }
        ))),
    }
}

/// Checks the cron parts of a `recur.update` that need no stored state.
pub fn validate_update(u: &RecurUpdate) -> Result<()> {
    let c = "Recur.update";
    if u.cron.is_some() && u.interval.is_some() {
        return Err(Error::invalid(
            "Recur.update(): give \"cron\" or \"interval\", not both",
        ));
    }
    if let Some(expr) = &u.cron {
        CronSchedule::parse(c, expr, u.timezone.as_deref())?;
    } else if let Some(z) = &u.timezone {
        if !z.is_empty() {
            check_zone(c, z)?;
        }
    }
    Ok(())
}

/// Fills the cron part of a new template from `p` at `now`: the first child
/// is due at the first tick strictly after `now + offset`.
pub fn recur_record(mut r: RecurRecord, p: &RecurParams, now: Timestamp) -> Result<RecurRecord> {
    if let Some(expr) = &p.cron {
        let spec = CronSpec {
            expr: expr.trim().to_owned(),
            timezone: p.timezone.clone().filter(|z| !z.is_empty()),
            missed: p.missed,
        };
        let s = spec.schedule("Recur")?;
        r.cron = Some(Box::new(spec));
        r.interval = 0.0;
        r.next_at = s.next_after(now.add_secs(p.offset.max(0.0)))?;
    }
    Ok(r)
}

/// Applies the schedule part of `u` to `r` at `now`: `interval` on a cron
/// template switches it to the interval (next child at now + interval);
/// `cron` switches to (or changes) the cron schedule and `timezone` changes
/// its zone, both recomputing the next spawn as the first tick after now;
/// `missed` needs a cron template.
pub fn apply_update(r: &mut RecurRecord, u: &RecurUpdate, now: Timestamp) -> Result<()> {
    let c = "Recur.update";
    if let (Some(i), Some(_)) = (u.interval, &r.cron) {
        r.cron = None;
        r.interval = i;
        r.next_at = now.add_secs(i);
    }
    if u.cron.is_some() || u.timezone.is_some() {
        let mut spec = match (&u.cron, r.cron.take()) {
            (Some(expr), old) => CronSpec {
                expr: expr.trim().to_owned(),
                timezone: old.as_ref().and_then(|o| o.timezone.clone()),
                missed: old.map_or_else(Missed::default, |o| o.missed),
            },
            (None, Some(old)) => *old,
            (None, None) => {
                return Err(Error::invalid(format!(
                    "{c}(): Arg \"timezone\" needs a cron schedule (the template recurs on an interval)"
                )))
            }
        };
        if let Some(z) = &u.timezone {
            spec.timezone = Some(z.clone()).filter(|z| !z.is_empty());
        }
        let s = spec.schedule(c)?;
        r.cron = Some(Box::new(spec));
        r.interval = 0.0;
        r.next_at = s.next_after(now)?;
    }
    if let Some(m) = u.missed {
        let Some(spec) = r.cron.as_mut() else {
            return Err(Error::invalid(format!(
                "{c}(): Arg \"missed\" needs a cron schedule (the template recurs on an interval)"
            )));
        };
        spec.missed = m;
    }
    Ok(())
}

/// The spawn rule of a cron template whose `next_at` is due at `now`:
/// returns the tick to spawn one child at (or `None`), and moves `next_at`
/// to the first tick strictly after `now`.
///
/// If only `next_at` is due, its child is spawned at `next_at`. If several
/// ticks are due (every one but the latest is missed), [`Missed::CatchUp`]
/// spawns one child at the latest due tick and [`Missed::Skip`] none.
pub fn due_tick(r: &mut RecurRecord, now: Timestamp) -> Result<Option<Timestamp>> {
    let Some(spec) = &r.cron else {
        return Ok(None);
    };
    let missed = spec.missed;
    let s = match spec.schedule("Recur") {
        Ok(s) => s,
        Err(e) => {
            // Validated when stored; should a later build refuse it, the
            // template stops firing rather than failing every pop.
            tracing::warn!(jid = %r.jid, error = %e, "cron template no longer parses; it stops");
            r.next_at = Timestamp(i64::MAX);
            return Ok(None);
        }
    };
    let never = Timestamp(i64::MAX);
    let several = s.next_after(r.next_at).unwrap_or(never) <= now;
    let tick = if several {
        s.latest_at_or_before(now)
            .map_or(r.next_at, |l| l.max(r.next_at))
    } else {
        r.next_at
    };
    r.next_at = s.next_after(now).unwrap_or(never);
    Ok((!several || missed == Missed::CatchUp).then_some(tick))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        let t = DateTime::parse_from_rfc3339(s).unwrap();
        Timestamp::from_secs(t.timestamp())
    }

    #[test]
    fn steps_lists_ranges_names() {
        let s = CronSchedule::parse("Recur", "*/15 9-10 * * MON-FRI", None).unwrap();
        // Sat 2026-01-03 -> Mon 2026-01-05 09:00.
        assert_eq!(
            s.next_after(at("2026-01-03T12:00:00Z")).unwrap(),
            at("2026-01-05T09:00:00Z")
        );
        assert_eq!(
            s.next_after(at("2026-01-05T09:00:00Z")).unwrap(),
            at("2026-01-05T09:15:00Z")
        );
        assert_eq!(
            s.next_after(at("2026-01-05T10:45:00Z")).unwrap(),
            at("2026-01-06T09:00:00Z")
        );
        let l = CronSchedule::parse("Recur", "0 0 1 JAN,JUL *", None).unwrap();
        assert_eq!(
            l.next_after(at("2026-02-01T00:00:00Z")).unwrap(),
            at("2026-07-01T00:00:00Z")
        );
        let d = CronSchedule::parse("Recur", "@daily", None).unwrap();
        assert_eq!(
            d.next_after(at("2026-02-01T00:00:00.5Z")).unwrap(),
            at("2026-02-02T00:00:00Z")
        );
    }

    #[test]
    fn strictly_after_within_the_second() {
        let s = CronSchedule::parse("Recur", "* * * * *", None).unwrap();
        let t = at("2026-01-01T00:01:00Z");
        assert_eq!(s.next_after(Timestamp(t.0 - 1)).unwrap(), t);
        assert_eq!(s.next_after(t).unwrap(), at("2026-01-01T00:02:00Z"));
        assert_eq!(
            s.next_after(Timestamp(t.0 + 1)).unwrap(),
            at("2026-01-01T00:02:00Z")
        );
        assert_eq!(s.latest_at_or_before(Timestamp(t.0 + 1)), Some(t));
    }

    #[test]
    fn dst_in_a_named_zone() {
        let paris = Some("Europe/Paris");
        // 02:30 does not exist on 2026-03-29 (02:00 CET -> 03:00 CEST): the
        // tick is the first instant after the gap; 2026-10-25 has two.
        let s = CronSchedule::parse("Recur", "30 2 * * *", paris).unwrap();
        let spring = s.next_after(at("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(spring, at("2026-03-29T01:00:00Z"));
        assert_eq!(s.next_after(spring).unwrap(), at("2026-03-30T00:30:00Z"));
        let fall = s.next_after(at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(fall, at("2026-10-25T00:30:00Z"));
        assert_eq!(s.next_after(fall).unwrap(), at("2026-10-26T01:30:00Z"));
        let nine = CronSchedule::parse("Recur", "0 9 * * *", paris).unwrap();
        assert_eq!(
            nine.next_after(at("2026-03-28T12:00:00Z")).unwrap(),
            at("2026-03-29T07:00:00Z")
        );
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "* * * * FOO",
            "0 0 31 2 *",
        ] {
            let e = CronSchedule::parse("Recur", bad, None).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{bad}: {e}");
        }
        let e = CronSchedule::parse("Recur", "* * * * *", Some("Mars/Olympus")).unwrap_err();
        assert!(e.to_string().contains("timezone"), "{e}");
    }

    /// The fuzzer's find: `,` as the minute field made croner's set empty,
    /// and the "never fires" check then searched for about 9 s (release
    /// build) before giving up. Each of these now fails before any search:
    /// the message is the pre-check's, not the search's "never fires".
    #[test]
    fn refuses_empty_list_items_without_searching() {
        let commas = format!("{} * * * *", ",".repeat(70));
        for (bad, field) in [
            (commas.as_str(), "minute"),
            (", * * * *", "minute"),
            ("* , * * *", "hour"),
            ("* * , * *", "day-of-month"),
            ("* * * , *", "month"),
            ("* * * * ,", "day-of-week"),
            ("1,,2 * * * *", "minute"),
            ("0 5, * * *", "hour"),
            ("0 0 ,1 * *", "day-of-month"),
        ] {
            let e = CronSchedule::parse("Recur", bad, Some("Europe/Paris")).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{bad}: {e}");
            assert!(
                e.to_string()
                    .contains(&format!("empty list item in its {field} field")),
                "{bad}: {e}"
            );
        }
        // Lists without empty items still parse.
        CronSchedule::parse("Recur", "1,2,59 0,12 1,15 1,6 MON,FRI", None).unwrap();
    }
}
