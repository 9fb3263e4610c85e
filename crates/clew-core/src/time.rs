//! Time: the [`Timestamp`] type and the [`Clock`] seam.
//!
//! clew never reads the wall clock on its own. Every operation takes `now`
//! from a [`Clock`] handed to the [`crate::Engine`]: [`SystemClock`] in
//! production, [`ManualClock`] in tests (and in the server's test mode, where
//! callers supply `now`). Time may go backwards between two calls; nothing in
//! the engine assumes it is monotonic.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A point in time, in whole microseconds since the Unix epoch (UTC).
///
/// qless speaks of time as float seconds; clew keeps integer microseconds so
/// that stored times order and compare exactly. [`Timestamp::from_secs_f64`]
/// and [`Timestamp::as_secs_f64`] convert at the edges.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Largest magnitude of seconds accepted by [`Timestamp::from_secs_f64`]
/// (about 292,000 years), so that microseconds fit in an `i64` with room for
/// adding delays.
const MAX_SECS: f64 = 9.0e12;

impl Timestamp {
    /// The Unix epoch, also used as "no time" (for example `expires` of a job
    /// that is not running).
    pub const ZERO: Timestamp = Timestamp(0);

    /// Converts float seconds since the epoch. Returns `None` for NaN,
    /// infinities and magnitudes beyond about 292,000 years.
    pub fn from_secs_f64(secs: f64) -> Option<Timestamp> {
        if !secs.is_finite() || secs.abs() > MAX_SECS {
            return None;
        }
        Some(Timestamp((secs * 1_000_000.0).round() as i64))
    }

    /// Whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Float seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Seconds since the epoch, rounded down (qless floors history times).
    pub fn floor_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This time plus `secs` seconds (saturating).
    pub fn add_secs(self, secs: f64) -> Timestamp {
        Timestamp(self.0.saturating_add((secs * 1_000_000.0).round() as i64))
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1_000_000.0
    }

    /// The start of this time's UTC day, the stats bin (qless: now − now mod 86400).
    pub fn day(self) -> Timestamp {
        let day = 86_400 * 1_000_000;
        Timestamp(self.0 - self.0.rem_euclid(day))
    }

    /// Renders the time as a JSON number of seconds: an integer when whole,
    /// a float otherwise.
    pub fn to_json(self) -> serde_json::Value {
        secs_json(self.as_secs_f64())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_secs_f64())
    }
}

/// Renders float seconds as JSON: an integer when whole, a float otherwise.
pub fn secs_json(secs: f64) -> serde_json::Value {
    if secs.fract() == 0.0 && secs.abs() < 9.0e15 {
        serde_json::Value::from(secs as i64)
    } else {
        serde_json::Value::from(secs)
    }
}

/// The source of `now` for every engine operation.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }
}

/// A clock that only moves when told to: for tests and test mode.
///
/// Clones share the same time. It starts at the epoch unless built with
/// [`ManualClock::at`]; it may be set backwards.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock reading `t`.
    pub fn at(t: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(t.0)))
    }

    /// Sets the time to `t` (which may be earlier than the current reading).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Sets the time to `secs` float seconds since the epoch.
    ///
    /// # Panics
    /// If `secs` is not a finite number in range (a test bug).
    pub fn set_secs(&self, secs: f64) {
        self.set(Timestamp::from_secs_f64(secs).expect("finite seconds"));
    }

    /// Moves the time forward (or back, for a negative value) by `secs`.
    pub fn advance(&self, secs: f64) {
        let d = (secs * 1_000_000.0).round() as i64;
        self.0.fetch_add(d, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// `t` as ISO-8601 UTC with seconds precision, e.g. `2013-06-04T20:59:58Z`
/// (resque-clues' form). Fractions of a second are dropped (floored).
pub fn iso8601(t: Timestamp) -> String {
    let secs = t.floor_secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch → proleptic Gregorian (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let t = Timestamp::from_secs_f64(1.5).unwrap();
        assert_eq!(t.as_micros(), 1_500_000);
        assert_eq!(t.floor_secs(), 1);
        assert_eq!(Timestamp::from_secs_f64(-0.5).unwrap().floor_secs(), -1);
        assert_eq!(t.to_json(), serde_json::json!(1.5));
        assert_eq!(Timestamp::from_secs(60).to_json(), serde_json::json!(60));
        assert!(Timestamp::from_secs_f64(f64::NAN).is_none());
        assert!(Timestamp::from_secs_f64(1e300).is_none());
    }

    #[test]
    fn day_bins_floor_to_utc_midnight() {
        assert_eq!(Timestamp::from_secs(86_399).day(), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from_secs(86_400).day(),
            Timestamp::from_secs(86_400)
        );
        assert_eq!(
            Timestamp::from_secs(-1).day(),
            Timestamp::from_secs(-86_400)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::default();
        assert_eq!(c.now(), Timestamp::ZERO);
        c.advance(2.5);
        assert_eq!(c.now(), Timestamp(2_500_000));
        c.set_secs(1.0);
        assert_eq!(c.now(), Timestamp::from_secs(1));
    }
}
