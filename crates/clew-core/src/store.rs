//! [`Store`]: the asynchronous seam between the [`crate::Engine`] and a
//! backend.
//!
//! A store runs one [`Command`] atomically at a given `now`: it opens a
//! transaction (or savepoint), calls [`crate::logic::apply`] with its own
//! [`crate::Tx`], appends the emitted events to its durable log, commits, and
//! then hands the numbered events to the caller's sink, in commit order. A
//! command that fails leaves the store exactly as it was.
//!
//! This trait is internal to clew (the Engine is the only caller) and is
//! defined by the conformance suite; it may change freely.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::command::{Command, Reply};
use crate::error::Result;
use crate::event::{Event, EventSink};
use crate::lifecycle::Origin;
use crate::time::Timestamp;

/// A backend. See the module doc.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Runs `command` atomically at `now` for a caller at `origin` (the
    /// host and process its lifecycle events name); on success hands its
    /// events to `sink` after the commit and before returning.
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> Result<Reply>;

    /// [`Store::execute_from`] with an unknown origin.
    async fn execute(
        &self,
        now: Timestamp,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> Result<Reply> {
        self.execute_from(now, Origin::default(), command, sink)
            .await
    }

    /// Events with a sequence number greater than `after`, oldest first, at
    /// most `limit`.
    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>>;

    /// Deletes every job, queue, worker, stat, config value and event (for
    /// tests and the server's test mode). Event sequence numbers keep
    /// increasing across a flush, so a reader's cursor never misses events.
    async fn flush(&self) -> Result<()>;

    /// A receiver of the latest committed event sequence number, changing
    /// whenever *any* process sharing the store commits events (a store
    /// shared through a database that announces commits, such as
    /// PostgreSQL's `LISTEN/NOTIFY`). Readers of the log (event streams,
    /// publishers) wait on it instead of polling. The value is a hint: read
    /// the log to see what was committed. The default (`None`): the store
    /// announces nothing beyond what its own sinks see, so readers that must
    /// see other processes' commits poll.
    fn subscribe_commits(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        None
    }

    /// How many jobs, up to `limit`, a pop of `queue` at `at` would hand
    /// out, when the store can tell without running a command: a read of
    /// committed state that takes no lock and writes nothing (a peek may
    /// spawn recurring jobs and promote scheduled ones, so it runs as a
    /// command). Waiters ([`crate::engine::Engine::wait_for_jobs`]) look
    /// with it: at first, after each commit and at their timed re-looks.
    /// It may count more than a pop would then
    /// hand out (a lock that expires into a retry that fails, a recurring
    /// template due): the pop that follows finds nothing and changes what
    /// made the count, so the next look does not count it again. `None`:
    /// the store cannot tell here (the default), so the waiter peeks.
    async fn ready_hint(&self, queue: &str, at: Timestamp, limit: usize) -> Result<Option<usize>> {
        let _ = (queue, at, limit);
        Ok(None)
    }

    /// Deletes the events with a sequence number below `before_seq` (history
    /// retention) and returns how many were deleted. Later events keep their
    /// numbers. The default refuses: a store that cannot prune its log.
    async fn events_prune(&self, before_seq: i64) -> Result<u64> {
        let _ = before_seq;
        Err(crate::error::Error::invalid(
            "this store cannot prune its event log",
        ))
    }

    /// Finishes pending work and closes the store. Later calls fail.
    async fn close(&self) -> Result<()>;

    /// Whether the store keeps publisher cursors itself
    /// ([`Store::cursor_load`], [`Store::cursor_save`]), shared by every
    /// process using it. The default (`false`): callers keep cursors
    /// elsewhere (files next to an embedded store).
    fn shared_cursors(&self) -> bool {
        false
    }

    /// The saved cursor of publishing sink `name` (the sequence number of
    /// the last event it took), or `None` if none was ever saved. The
    /// default refuses: see [`Store::shared_cursors`].
    async fn cursor_load(&self, name: &str) -> Result<Option<i64>> {
        let _ = name;
        Err(crate::error::Error::invalid(
            "this store does not keep publisher cursors",
        ))
    }

    /// Saves the cursor of publishing sink `name`. A store may refuse to
    /// move a cursor backwards (two processes that both delivered an event
    /// must not undo each other's progress). The default refuses: see
    /// [`Store::shared_cursors`].
    async fn cursor_save(&self, name: &str, seq: i64) -> Result<()> {
        let _ = (name, seq);
        Err(crate::error::Error::invalid(
            "this store does not keep publisher cursors",
        ))
    }

    /// Tries to become the one process (of all those sharing the store)
    /// that performs duty `name`, for example delivering one publishing
    /// sink. `Some(guard)`: this process leads until the guard is dropped
    /// or [`LeaderGuard::is_held`] turns false (its session was lost);
    /// `None`: another process (or another caller in this one) leads now,
    /// try again later. The default: a store used by one process only,
    /// where the caller always leads.
    async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>> {
        let _ = name;
        Ok(Some(LeaderGuard::always()))
    }
}

/// Held while this process leads a duty among the processes sharing a
/// store (see [`Store::try_lead`]). Dropping it gives the leadership up.
pub struct LeaderGuard {
    held: Arc<AtomicBool>,
    _release: Option<Box<dyn Send + Sync>>,
}

impl LeaderGuard {
    /// A guard that is held until dropped (a store with a single user).
    pub fn always() -> LeaderGuard {
        LeaderGuard {
            held: Arc::new(AtomicBool::new(true)),
            _release: None,
        }
    }

    /// A guard held while `held` is true; `release` is dropped with the
    /// guard (its own `Drop` gives the leadership up).
    pub fn new(held: Arc<AtomicBool>, release: impl Send + Sync + 'static) -> LeaderGuard {
        LeaderGuard {
            held,
            _release: Some(Box::new(release)),
        }
    }

    /// Whether this process still leads (false once the store lost the
    /// session that held the leadership).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for LeaderGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderGuard")
            .field("held", &self.is_held())
            .finish()
    }
}

/// Events after `after` that `keep` accepts, oldest first, reading the log
/// in pages of `limit`. A page in which `keep` accepts nothing is skipped,
/// so a reader filtering by channel never gets an empty answer while the
/// log still holds later matches: it returns as soon as a page yields
/// something, or at the end of the log.
pub async fn events_after_matching(
    store: &dyn Store,
    after: i64,
    limit: i64,
    keep: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>> {
    let limit = limit.max(1);
    let mut after = after;
    loop {
        let page = store.events_after(after, limit).await?;
        let full = page.len() as i64 >= limit;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        let kept: Vec<Event> = page.into_iter().filter(|e| keep(e)).collect();
        if !kept.is_empty() || !full {
            return Ok(kept);
        }
    }
}
