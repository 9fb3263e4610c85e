//! Throttles: at most N jobs holding a named throttle run at once, across
//! queues (for example at most 3 jobs per customer).
//!
//! The design is qless-core's `pr-46` branch (semantics §14), with the rules
//! in [`crate::logic`] over [`crate::Tx`] primitives:
//! * a throttle is a name with a maximum (`throttle.set NAME MAX`; 0 or an
//!   undefined name is unlimited); a job names the throttles it needs
//!   ([`crate::JobRecord::throttles`], `put ... throttles [..]`);
//! * a pop takes a job only if it can take a slot of *every* one of its
//!   throttles. Otherwise the job leaves the work list for the throttled
//!   placement ([`crate::Loc::Throttled`], state `throttled`, a history
//!   entry `throttled` naming the throttle) and waits on the first full
//!   throttle, keeping its place in the work list's order; so pops never
//!   rescan a blocked head;
//! * a job holds its slots while it is in the lock set (running, or stalled
//!   with an expired lock until a pop hands it over or fails it). Every
//!   write of a job passes through one hook (`Cx::save`, and job deletion):
//!   a job out of the lock set gives its slots back, and each freed
//!   throttle promotes its waiting jobs, in order, back to their work list,
//!   up to the free slots. So complete, fail, retry, release, cancel,
//!   timeout, a re-put and a move all free slots the same way;
//! * raising or deleting a throttle promotes its waiting jobs too;
//! * a promoted job is checked again at its next pop (it may wait on
//!   another of its throttles then).
//!
//! * optionally a throttle has a rate limit ([`ThrottleRate`]): at most
//!   `limit` starts (pops that take a job holding it) in any sliding window
//!   of `period` seconds. A pop over the limit holds the job back like a
//!   full throttle (history entry `throttled` with `reason: rate`); the
//!   starts are rows (`throttle_starts`, pruned as pops add to them), and
//!   with no timer every pop and peek first promotes the waiters of
//!   rate-limited throttles whose window has room at its `now`.
//!
//! Stores keep the slots and waiters as rows (`throttle_jobs`: one row per
//! job and throttle, holding or waiting), written only through that hook
//! and the pop. PostgreSQL's concurrent pops count a throttle's slots under
//! a per-throttle advisory lock held to the commit, so two pops never take
//! the last slot twice.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A throttle's rate limit: at most `limit` starts in any `period` seconds
/// (a sliding window: a start at `t` counts until `t + period`, so no
/// window of that length ever holds more than `limit` starts; a fixed
/// window would allow twice that across its boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ThrottleRate {
    /// Starts allowed per window (>= 1).
    pub limit: i64,
    /// The window's length in seconds (>= 1).
    pub period: i64,
}

/// A throttle with its counts (`throttle.get`, `throttle.list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleInfo {
    /// The throttle's name.
    pub name: String,
    /// At most this many holders at once (0: unlimited).
    pub max: i64,
    /// Jobs holding a slot (running, or stalled until handed over).
    pub running: i64,
    /// Jobs waiting for a slot (state `throttled`).
    pub pending: i64,
    /// The rate limit, if any.
    pub rate: Option<ThrottleRate>,
    /// Starts in the rate window ending now (0 without a rate).
    pub started: i64,
}

/// `{name, max, running, pending}`, plus `rate` (`{limit, period}`) and
/// `started` (starts in the current window) when it has a rate limit.
impl Serialize for ThrottleInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = if self.rate.is_some() { 6 } else { 4 };
        let mut m = s.serialize_map(Some(n))?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("max", &self.max)?;
        m.serialize_entry("running", &self.running)?;
        m.serialize_entry("pending", &self.pending)?;
        if let Some(rate) = &self.rate {
            m.serialize_entry("rate", rate)?;
            m.serialize_entry("started", &self.started)?;
        }
        m.end()
    }
}
