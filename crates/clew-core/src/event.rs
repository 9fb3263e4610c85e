//! Events: the qless pub/sub messages every transition emits, and the
//! [`EventSink`] they are handed to.
//!
//! The logic emits events while it runs a command; the store appends them to
//! its durable event log in the same transaction as the state change (each
//! gets a strictly increasing sequence number), and after the commit hands
//! them, in commit order, to the sink the caller passed. A sink must not
//! block: it is called on the store's writer.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::time::Timestamp;

/// One event: a qless channel name and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the store's event log (strictly increasing).
    pub seq: i64,
    /// When the command that emitted it ran.
    pub at: Timestamp,
    /// The qless channel, for example `ql:log`, `ql:w:<worker>`, `ql:track`.
    pub channel: String,
    /// The payload: a compact JSON document, or a bare jid for the tracking
    /// channels.
    pub message: String,
}

impl Event {
    /// Whether this is one of qless's pub/sub events (channel `ql:...`), as
    /// opposed to clew's own (`clew:lifecycle`).
    pub fn is_qless(&self) -> bool {
        self.channel.starts_with("ql:")
    }

    /// The kind of the lifecycle event this log entry holds, read without
    /// parsing the whole event; None for other channels.
    pub fn lifecycle_kind(&self) -> Option<crate::lifecycle::LifecycleKind> {
        if self.channel != crate::logic::LIFECYCLE_CHANNEL {
            return None;
        }
        // The event is stored as serde writes it: `{"seq":N,"kind":"...",`;
        // read the kind without parsing the rest (payloads can be large).
        let marker = "\"kind\":\"";
        if let Some(i) = self.message.find(marker).filter(|i| *i < 64) {
            let rest = &self.message[i + marker.len()..];
            if let Some(end) = rest.find('"') {
                return crate::lifecycle::LifecycleKind::parse(&rest[..end]);
            }
        }
        self.lifecycle().map(|ev| ev.kind)
    }

    /// The lifecycle event this carries, if it is one (its `seq` set from
    /// the log).
    pub fn lifecycle(&self) -> Option<crate::lifecycle::LifecycleEvent> {
        if self.channel != crate::logic::LIFECYCLE_CHANNEL {
            return None;
        }
        let mut ev: crate::lifecycle::LifecycleEvent = serde_json::from_str(&self.message).ok()?;
        ev.seq = self.seq;
        Some(ev)
    }
}

/// An event emitted by the logic before the store has numbered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// The qless channel.
    pub channel: String,
    /// The payload.
    pub message: String,
}

/// Receives committed events in commit order.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Takes the events of one committed command. Must not block.
    fn publish(&self, events: &[Event]);
}

/// A sink that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn publish(&self, _events: &[Event]) {}
}

/// A sink that keeps every event in memory, for tests.
#[derive(Clone, Debug, Default)]
pub struct MemorySink(Arc<Mutex<Vec<Event>>>);

impl MemorySink {
    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Takes and clears the events received so far.
    pub fn take(&self) -> Vec<Event> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl EventSink for MemorySink {
    fn publish(&self, events: &[Event]) {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(events);
        }
    }
}
