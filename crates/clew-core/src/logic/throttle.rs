//! Throttles in the logic (see [`crate::throttle`] for the model): the
//! hook every job write that can move a job passes through, the pop's
//! check, promotion of waiting jobs, and the `throttle.*` commands.

use serde_json::json;

use super::{Cx, ALL};
use crate::command::{Command, Reply};
use crate::error::{Error, Result};
use crate::job::{HistoryEntry, JobRecord, JobState, Loc};
use crate::throttle::{ThrottleInfo, ThrottleRate};
use crate::time::Timestamp;
use crate::tx::TimeRange;

/// `throttle.set`'s rate: `limit` >= 1 and `period` >= 1 second.
pub(super) fn validate_rate(rate: Option<&ThrottleRate>) -> Result<()> {
    let Some(r) = rate else {
        return Ok(());
    };
    if r.limit < 1 {
        return Err(Error::invalid(format!(
            "Throttle.set(): Arg \"rate\" limit must be at least 1: {}",
            r.limit
        )));
    }
    if r.period < 1 {
        return Err(Error::invalid(format!(
            "Throttle.set(): Arg \"rate\" period must be at least 1 second: {}",
            r.period
        )));
    }
    Ok(())
}

/// The start of `rate`'s window ending at `now`: starts later than this count.
fn window_start(now: Timestamp, rate: &ThrottleRate) -> Timestamp {
    Timestamp(now.0.saturating_sub(rate.period.saturating_mul(1_000_000)))
}

impl Cx<'_> {
    /// After a job row is saved ([`Cx::save`]): a job with throttles that
    /// is now neither locked nor throttled gives its rows back and its
    /// freed slots go to the throttles' waiting jobs
    /// ([`Cx::throttle_release`]).
    pub(super) fn throttle_track(&mut self, rec: &JobRecord) -> Result<()> {
        if !rec.throttles.is_empty() && !matches!(rec.loc, Loc::Locked | Loc::Throttled) {
            self.throttle_release(&rec.jid)?;
        }
        Ok(())
    }

    /// Deletes `jid`'s slot and waiting rows, then promotes the waiting
    /// jobs of each throttle it held a slot of.
    pub(super) fn throttle_release(&mut self, jid: &str) -> Result<()> {
        for name in self.tx.throttle_release(jid)? {
            self.throttle_promote(&name)?;
        }
        Ok(())
    }

    /// Moves jobs waiting for `name` back to their work lists, in order, up
    /// to the throttle's free slots (all of them when it is unlimited or
    /// undefined). They keep their old place in the work list's order.
    fn throttle_promote(&mut self, name: &str) -> Result<()> {
        let mut free = match self.tx.throttle_get(name)? {
            Some(max) if max > 0 => max - self.tx.throttle_held(name)?,
            _ => ALL,
        };
        if free > 0 {
            if let Some(rate) = self.tx.throttle_rate(name)? {
                let since = window_start(self.now, &rate);
                free = free.min(rate.limit - self.tx.throttle_starts(name, since)?);
            }
        }
        if free <= 0 {
            return Ok(());
        }
        for jid in self.tx.throttle_pending(name, free)? {
            self.tx.throttle_release(&jid)?;
            let Some(mut rec) = self.tx.job_get(&jid)? else {
                continue;
            };
            if rec.loc != Loc::Throttled {
                continue;
            }
            rec.loc = Loc::Work;
            rec.state = JobState::Waiting;
            self.tx.job_save(&rec)?;
        }
        Ok(())
    }

    /// Before a pop or peek reads a work list: promotes the waiters of
    /// every rate-limited throttle whose window has room at `now` (held
    /// back jobs come back with no timer).
    pub(super) fn throttle_rate_wake(&mut self) -> Result<()> {
        for name in self.tx.throttle_rate_waiting()? {
            self.throttle_promote(&name)?;
        }
        Ok(())
    }

    /// At pop: takes a slot of each of `rec`'s throttles (`true`), or, when
    /// one is full, moves the job to the throttled placement waiting on the
    /// first full one (by name) and saves it (`false`). Throttles are
    /// checked in name order, so concurrent pops lock them in one order.
    fn throttle_take(&mut self, rec: &mut JobRecord) -> Result<bool> {
        if rec.throttles.is_empty() {
            return Ok(true);
        }
        let mut names = rec.throttles.clone();
        names.sort();
        let now = self.now;
        let mut rated = Vec::new();
        for name in &names {
            let Some(max) = self.tx.throttle_get(name)? else {
                continue;
            };
            let full = max > 0 && self.tx.throttle_held(name)? >= max;
            let mut rate_full = false;
            if !full {
                if let Some(rate) = self.tx.throttle_rate(name)? {
                    let since = window_start(now, &rate);
                    rate_full = self.tx.throttle_starts(name, since)? >= rate.limit;
                    rated.push((name.clone(), since));
                }
            }
            if !full && !rate_full {
                continue;
            }
            let mut entry = HistoryEntry::new(now, "throttled").with("throttle", name.clone());
            if rate_full {
                entry = entry.with("reason", "rate");
            }
            self.history(&rec.jid, entry)?;
            let reason = if rate_full { "rate" } else { "max" };
            self.emit(
                "ql:log",
                json!({"jid": rec.jid, "event": "throttled", "queue": rec.queue, "throttle": name, "reason": reason}),
            );
            rec.state = JobState::Throttled;
            rec.loc = Loc::Throttled;
            let (prio, time, seq) = (rec.sort_prio, rec.sort_time, rec.seq);
            self.tx.throttle_pend(&rec.jid, name, prio, time, seq)?;
            self.tx.job_save(rec)?;
            return Ok(false);
        }
        self.tx.throttle_hold(&rec.jid, &rec.throttles)?;
        for (name, since) in rated {
            self.tx.throttle_start(&name, now, since)?;
        }
        Ok(true)
    }

    /// The pop's last step: takes jobs from the head of `queue`'s work list
    /// until `handed` holds `count`, moving the ones a full throttle holds
    /// back out of the list (and reading on past them).
    pub(super) fn take_work(
        &mut self,
        queue: &str,
        count: i64,
        handed: &mut Vec<JobRecord>,
    ) -> Result<()> {
        // Jobs taken stay in the work list until the pop saves them: the
        // next read skips them.
        let mut taken = 0;
        loop {
            let need = count - handed.len() as i64;
            if need <= 0 {
                return Ok(());
            }
            let batch = self
                .tx
                .job_list_records(queue, Loc::Work, TimeRange::ALL, taken, need)?;
            let got = batch.len() as i64;
            let mut held_back = false;
            for mut rec in batch {
                if handed.iter().any(|h| h.jid == rec.jid) {
                    continue;
                }
                if self.throttle_take(&mut rec)? {
                    taken += 1;
                    handed.push(rec);
                } else {
                    held_back = true;
                }
            }
            if got < need || !held_back {
                return Ok(());
            }
        }
    }

    /// A throttle with its counts.
    fn throttle_info(&mut self, name: &str, max: i64) -> Result<ThrottleInfo> {
        let rate = self.tx.throttle_rate(name)?;
        let started = match &rate {
            Some(r) => self.tx.throttle_starts(name, window_start(self.now, r))?,
            None => 0,
        };
        Ok(ThrottleInfo {
            name: name.to_owned(),
            max,
            running: self.tx.throttle_held(name)?,
            pending: self.tx.throttle_pending_count(name)?,
            rate,
            started,
        })
    }

    /// `throttle.set`, `throttle.get`, `throttle.delete`, `throttle.list`.
    pub(super) fn throttle_command(&mut self, command: &Command) -> Result<Reply> {
        match command {
            Command::ThrottleSet { name, max, rate } => {
                self.tx.throttle_set(name, *max)?;
                self.tx.throttle_rate_set(name, *rate)?;
                self.emit(
                    "ql:log",
                    json!({"event": "throttle_set", "throttle": name, "max": max, "rate": rate}),
                );
                // A raised (or lifted) maximum frees slots.
                self.throttle_promote(name)?;
                Ok(Reply::Throttle(Some(self.throttle_info(name, *max)?)))
            }
            Command::ThrottleGet { name } => match self.tx.throttle_get(name)? {
                Some(max) => Ok(Reply::Throttle(Some(self.throttle_info(name, max)?))),
                None => Err(Error::not_found(format!(
                    "Throttle.get(): No throttle {name}"
                ))),
            },
            Command::ThrottleDelete { name } => {
                if self.tx.throttle_get(name)?.is_none() {
                    return Err(Error::not_found(format!(
                        "Throttle.delete(): No throttle {name}"
                    )));
                }
                self.tx.throttle_delete(name)?;
                self.emit(
                    "ql:log",
                    json!({"event": "throttle_deleted", "throttle": name}),
                );
                // Undefined is unlimited: every waiting job goes back.
                self.throttle_promote(name)?;
                Ok(Reply::Nil)
            }
            _ => {
                let mut out = Vec::new();
                for (name, max) in self.tx.throttle_list()? {
                    out.push(self.throttle_info(&name, max)?);
                }
                Ok(Reply::Throttles(out))
            }
        }
    }
}
