//! qless semantics over [`Tx`].
use crate::command::{Command, Reply};
use crate::error::Result;
use crate::event::PendingEvent;
use crate::time::Timestamp;
use crate::tx::Tx;

/// Applies one command inside the caller's transaction.
pub fn apply(
    tx: &mut dyn Tx,
    now: Timestamp,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    let _ = (tx, now, command, events);
    Err(crate::Error::store("not yet"))
}
