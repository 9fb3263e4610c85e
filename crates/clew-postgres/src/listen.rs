//! The listener: one connection per store (when
//! [`crate::PostgresOptions::listen`] is on) that `LISTEN`s on the schema's
//! channel (`<schema>.notify_channel()`, normally `clew_<schema>`).
//!
//! Two kinds of notification arrive there, from every process using the
//! schema:
//! * a number: a command committed events up to that sequence number (sent
//!   in the command's transaction, so it arrives only after the commit). The
//!   listener passes it to `on_commit`, which wakes the store's
//!   [`clew_core::Store::subscribe_commits`] receivers, so servers wake their
//!   event streams at once instead of polling the log;
//! * `put`: an application committed a put into the outbox. The listener
//!   runs `on_put` on its own connection, which drains the outbox (see
//!   [`crate::outbox`]), so the job appears without other traffic. Drains
//!   are spaced by at least [`DRAIN_SPACING`]: a lone put is drained at
//!   once, a stream of them about ten times a second (every listening
//!   process drains, and each drain takes the command lock; commands drain
//!   the outbox anyway).
//!
//! The connection is reopened when lost (then `on_put` runs once, to catch
//! up with puts whose notification was missed). The thread checks its stop
//! flag every [`TICK`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clew_core::{Error, Result};
use tokio_postgres::Notification;

use crate::config::{redact_config, Target};
use crate::store::Conn;

/// How long the listener waits for a notification before checking its stop
/// flag (bounds how long closing the store waits for the thread).
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Least time between two drains started by notifications.
pub(crate) const DRAIN_SPACING: Duration = Duration::from_millis(100);

/// Longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What one batch of notifications asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Wakeups {
    /// The highest committed sequence number announced.
    latest: Option<i64>,
    /// Whether a put waits in the outbox.
    put: bool,
}

impl Wakeups {
    /// Takes one notification into account (unknown payloads are ignored).
    fn add(&mut self, n: &Notification) {
        let payload = n.payload();
        if payload == "put" {
            self.put = true;
        } else if let Ok(seq) = payload.parse::<i64>() {
            self.latest = Some(self.latest.map_or(seq, |l| l.max(seq)));
        }
    }
}

/// The listener's settings and callbacks.
pub(crate) struct Listener<C, P> {
    /// Where to connect.
    pub(crate) target: Target,
    /// The channel to listen on.
    pub(crate) channel: String,
    /// Set when the store closes.
    pub(crate) stop: Arc<AtomicBool>,
    /// Called with the latest committed sequence number announced.
    pub(crate) on_commit: C,
    /// Called (on the listener's connection) when puts wait in the outbox.
    pub(crate) on_put: P,
}

impl<C, P> Listener<C, P>
where
    C: FnMut(i64) + Send + 'static,
    P: FnMut(&mut Conn) + Send + 'static,
{
    /// Starts the listener thread.
    pub(crate) fn spawn(self) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("clew-postgres-listen".into())
            .spawn(move || self.run())
            .map_err(|e| Error::store(format!("starting the PostgreSQL listener thread: {e}")))
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Listens until the stop flag is set.
    fn run(mut self) {
        let mut conn: Option<Conn> = None;
        let mut backoff = TICK;
        // A put notification not yet drained, and when the last drain began.
        let mut put_pending = false;
        let mut last_drain: Option<Instant> = None;
        while !self.stopped() {
            let Some(c) = conn.as_mut().filter(|c| !c.client.is_closed()) else {
                match self.connect() {
                    Ok(c) => {
                        backoff = TICK;
                        // Puts committed while nobody listened.
                        put_pending = true;
                        conn = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "PostgreSQL listener");
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
                continue;
            };
            let next_drain = last_drain.map_or(Duration::ZERO, |at| {
                DRAIN_SPACING.saturating_sub(at.elapsed())
            });
            if put_pending && next_drain.is_zero() {
                put_pending = false;
                last_drain = Some(Instant::now());
                (self.on_put)(c);
                continue;
            }
            let timeout = if put_pending { next_drain } else { TICK };
            match wait(c, timeout) {
                Ok(w) => {
                    if let Some(seq) = w.latest {
                        (self.on_commit)(seq);
                    }
                    put_pending |= w.put;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL listener lost its connection");
                    conn = None;
                }
            }
        }
    }

    /// Opens the connection and subscribes to the channel.
    fn connect(&self) -> Result<Conn> {
        let mut conn = Conn::open(&self.target)?;
        let listen = format!("LISTEN \"{}\"", self.channel.replace('"', "\"\""));
        conn.client.batch_execute(&listen).map_err(|e| {
            Error::store(format!(
                "LISTEN on {} at {}: {}",
                self.channel,
                redact_config(&self.target.config),
                crate::tx::pg_err(e).message()
            ))
        })?;
        Ok(conn)
    }

    /// Sleeps up to `total`, waking early when stopped.
    fn sleep(&self, total: Duration) {
        let mut left = total;
        while !left.is_zero() && !self.stopped() {
            let step = left.min(TICK);
            std::thread::sleep(step);
            left -= step;
        }
    }
}

/// Waits up to `timeout` for a notification, then takes every one already
/// received.
fn wait(conn: &mut Conn, timeout: Duration) -> Result<Wakeups> {
    let mut wakeups = Wakeups::default();
    for n in conn.client.notifications(timeout)? {
        wakeups.add(&n);
    }
    Ok(wakeups)
}
