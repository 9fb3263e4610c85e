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
