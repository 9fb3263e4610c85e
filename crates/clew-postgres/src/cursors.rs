//! Publisher cursors and leadership, shared by every process on a schema.
//!
//! Several `clew server --publish SPEC` processes on one database must
//! deliver each sink from exactly one of them at a time, and a failover
//! must resume where the previous leader stopped. So:
//!
//! * **Cursors** are rows of `publisher_cursors` (migration 0003): the sink's
//!   name and the sequence number of the last event it took. A save never
//!   moves a cursor backwards (`GREATEST`), so two processes that both
//!   delivered an event (at-least-once, around a failover) cannot undo each
//!   other's progress.
//! * **Leadership** of a sink is a session-level advisory lock,
//!   `pg_try_advisory_lock(hashtext('clew:lead:' || schema),
//!   hashtext(name))` (the two-key form: a key space apart from the
//!   one-key command and migration locks), taken on a dedicated connection
//!   that this process keeps open while it leads anything. PostgreSQL
//!   releases the lock when that session ends, so a crashed or partitioned
//!   leader gives way to another process without any timeout of clew's own.
//!
//! The [`Coordinator`] owns that connection on one thread of its own
//! (started on first use), which also answers cursor loads and saves. While
//! it holds any leadership it pings the session every [`PING`]; when the
//! session is lost, every guard's flag turns false at once
//! ([`clew_core::store::LeaderGuard::is_held`]) and the caller stops
//! delivering. The window between the session's loss and the holder
//! noticing is why delivery stays at-least-once across a failover.
//!
//! A caller that already leads `name` in this process gets `None` from a
//! second [`Coordinator::try_lead`] (advisory locks are re-entrant within a
//! session, so the check is done here).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use clew_core::store::LeaderGuard;
use clew_core::{Error, Result};
use postgres::Client;
use tokio::sync::oneshot;

use crate::config::Target;
use crate::schema::connect;
use crate::tx::PgResult;

/// How often the coordination session is checked while it holds a lock.
pub const PING: Duration = Duration::from_secs(1);

/// A request to the coordination thread.
enum Request {
    /// Read a sink's cursor.
    Load {
        name: String,
        reply: oneshot::Sender<Result<Option<i64>>>,
    },
    /// Save a sink's cursor (never backwards).
    Save {
        name: String,
        seq: i64,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Try to take the leadership of `name`.
    Lead {
        name: String,
        reply: oneshot::Sender<Result<Option<Held>>>,
    },
    /// Give up the leadership of `name` taken as `generation`.
    Release { name: String, generation: u64 },
}

/// One leadership held by the coordination session.
#[derive(Clone)]
struct Held {
    generation: u64,
    flag: Arc<AtomicBool>,
}

/// The coordination session of one store: cursors and leadership. See the
/// module doc.
pub struct Coordinator {
    target: Target,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("schema", &self.target.schema.as_str())
            .finish()
    }
}

/// The error of a request whose thread has gone.
fn gone() -> Error {
    Error::store("the PostgreSQL coordination session has stopped")
}

impl Coordinator {
    /// A coordinator for the store at `target` (no connection yet).
    pub(crate) fn new(target: Target) -> Coordinator {
        Coordinator {
            target,
            sender: Mutex::new(None),
        }
    }

    /// Sends a request, starting the thread first if needed.
    fn send(&self, request: Request) -> Result<()> {
        let mut sender = self.sender.lock().map_err(|_| gone())?;
        if sender.is_none() {
            let (tx, rx) = mpsc::channel();
            let session = Session {
                target: self.target.clone(),
                client: None,
                held: HashMap::new(),
                generation: 0,
            };
            std::thread::Builder::new()
                .name("clew-postgres-coord".into())
                .spawn(move || session.run(rx))
                .map_err(|e| Error::store(format!("starting the coordination thread: {e}")))?;
            *sender = Some(tx);
        }
        let tx = sender.as_ref().ok_or_else(gone)?;
        tx.send(request).map_err(|_| gone())
    }

    /// The saved cursor of sink `name`.
    pub async fn cursor_load(&self, name: &str) -> Result<Option<i64>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Load {
            name: name.to_owned(),
            reply,
        })?;
        rx.await.map_err(|_| gone())?
    }

    /// Saves the cursor of sink `name` (a lower value than the saved one
    /// leaves it as it is).
    pub async fn cursor_save(&self, name: &str, seq: i64) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Save {
            name: name.to_owned(),
            seq,
            reply,
        })?;
        rx.await.map_err(|_| gone())?
    }

    /// Tries to lead `name`; see [`clew_core::Store::try_lead`].
    pub async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Lead {
            name: name.to_owned(),
            reply,
        })?;
        let Some(held) = rx.await.map_err(|_| gone())?? else {
            return Ok(None);
        };
        let release = self.sender.lock().map_err(|_| gone())?.clone();
        let flag = held.flag.clone();
        Ok(Some(LeaderGuard::new(
            flag,
            Release {
                name: name.to_owned(),
                generation: held.generation,
                sender: Mutex::new(release),
            },
        )))
    }

    /// Ends the coordination session (its leaderships end with it once
    /// their guards are dropped).
    pub(crate) fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }
}

/// Gives a leadership up when its guard is dropped.
struct Release {
    name: String,
    generation: u64,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let sender = self.sender.get_mut().ok().and_then(Option::take);
        if let Some(sender) = sender {
            let _ = sender.send(Request::Release {
                name: std::mem::take(&mut self.name),
                generation: self.generation,
            });
        }
    }
}

/// The coordination thread's state.
struct Session {
    target: Target,
    client: Option<Client>,
    held: HashMap<String, Held>,
    generation: u64,
}

impl Session {
    /// Serves requests until the store and every guard have let go of the
    /// channel, pinging the session while it leads anything.
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        loop {
            match rx.recv_timeout(PING) {
                Ok(request) => self.serve(request),
                Err(mpsc::RecvTimeoutError::Timeout) => self.ping(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.lose_all();
    }

    fn serve(&mut self, request: Request) {
        match request {
            Request::Load { name, reply } => {
                let result = self.with_client(|c| load(c, &name));
                let _ = reply.send(result);
            }
            Request::Save { name, seq, reply } => {
                let result = self.with_client(|c| save(c, &name, seq));
                let _ = reply.send(result);
            }
            Request::Lead { name, reply } => {
                let result = self.lead(&name);
                let _ = reply.send(result);
            }
            Request::Release { name, generation } => self.release(&name, generation),
        }
    }

    /// Runs `f` on the session's connection, connecting first if needed.
    /// A lost connection loses every leadership with it.
    fn with_client<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            if self.client.take().is_some() {
                self.lose_all();
            }
            self.client = Some(connect(&self.target)?);
        }
        let client = self.client.as_mut().ok_or_else(gone)?;
        let result = f(client);
        if client.is_closed() {
            self.client = None;
            self.lose_all();
        }
        result
    }

    /// Takes the advisory lock of `name` unless it is held already (here or
    /// by another session).
    fn lead(&mut self, name: &str) -> Result<Option<Held>> {
        if self.held.contains_key(name) {
            return Ok(None);
        }
        let schema = self.target.schema.as_str().to_owned();
        let got = self.with_client(|c| {
            c.query_one(
                "SELECT pg_try_advisory_lock(hashtext('clew:lead:' || $1), hashtext($2))",
                &[&schema, &name],
            )
            .and_then(|row| row.try_get::<_, bool>(0))
            .pg()
        })?;
        if !got {
            return Ok(None);
        }
        self.generation += 1;
        let held = Held {
            generation: self.generation,
            flag: Arc::new(AtomicBool::new(true)),
        };
        self.held.insert(name.to_owned(), held.clone());
        tracing::info!(sink = name, schema, "leading");
        Ok(Some(held))
    }

    /// Unlocks `name` if it is still held as `generation`.
    fn release(&mut self, name: &str, generation: u64) {
        if self.held.get(name).map(|h| h.generation) != Some(generation) {
            return;
        }
        if let Some(held) = self.held.remove(name) {
            held.flag.store(false, Ordering::SeqCst);
        }
        let schema = self.target.schema.as_str().to_owned();
        let Some(client) = self.client.as_mut().filter(|c| !c.is_closed()) else {
            return;
        };
        let unlocked = client.query_one(
            "SELECT pg_advisory_unlock(hashtext('clew:lead:' || $1), hashtext($2))",
            &[&schema, &name],
        );
        if let Err(e) = unlocked {
            tracing::warn!(sink = name, error = %crate::tx::pg_err(e), "releasing a leadership");
        }
    }

    /// Checks the session while it holds anything.
    fn ping(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let alive = self
            .client
            .as_mut()
            .is_some_and(|c| c.simple_query("SELECT 1").is_ok());
        if !alive {
            tracing::warn!("the PostgreSQL coordination session was lost; leadership given up");
            self.client = None;
            self.lose_all();
        }
    }

    /// Marks every leadership lost (the session that held them is gone).
    fn lose_all(&mut self) {
        for (_, held) in self.held.drain() {
            held.flag.store(false, Ordering::SeqCst);
        }
    }
}

/// Reads a cursor.
fn load(client: &mut Client, name: &str) -> Result<Option<i64>> {
    let row = client
        .query_opt(
            "SELECT seq FROM publisher_cursors WHERE name = $1",
            &[&name],
        )
        .map_err(|e| cursor_err("reading", name, e))?;
    row.map(|r| r.try_get(0).map_err(|e| cursor_err("reading", name, e)))
        .transpose()
}

/// Saves a cursor, never moving it backwards.
fn save(client: &mut Client, name: &str, seq: i64) -> Result<()> {
    client
        .execute(
            "INSERT INTO publisher_cursors (name, seq) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE
                 SET seq = GREATEST(publisher_cursors.seq, EXCLUDED.seq), updated_at = now()",
            &[&name, &seq],
        )
        .map_err(|e| cursor_err("saving", name, e))?;
    Ok(())
}

/// A cursor query's error, naming the sink.
fn cursor_err(doing: &str, name: &str, e: postgres::Error) -> Error {
    Error::store(format!(
        "{doing} the cursor of sink {name:?}: {}",
        crate::tx::pg_err(e).message()
    ))
}

#[cfg(test)]
mod tests {
    use clew_core::Store;

    use crate::testing::{skip_reason, TempSchema};

    /// Two stores on one schema (two processes, as far as PostgreSQL can
    /// tell: each has its own sessions).
    fn two_stores() -> Option<(crate::PostgresStore, crate::PostgresStore, TempSchema)> {
        if let Some(line) = skip_reason() {
            println!("{line}");
            return None;
        }
        let schema = TempSchema::new();
        let a = schema.open(schema.options()).expect("store a");
        let b = schema.open(schema.options()).expect("store b");
        Some((a, b, schema))
    }

    #[tokio::test]
    async fn cursors_are_shared_and_never_move_backwards() {
        let Some((a, b, _schema)) = two_stores() else {
            return;
        };
        assert!(a.shared_cursors());
        assert_eq!(a.cursor_load("file:x").await.unwrap(), None);
        a.cursor_save("file:x", 7).await.unwrap();
        assert_eq!(b.cursor_load("file:x").await.unwrap(), Some(7));
        b.cursor_save("file:x", 5).await.unwrap();
        assert_eq!(a.cursor_load("file:x").await.unwrap(), Some(7));
        b.cursor_save("file:x", 9).await.unwrap();
        assert_eq!(a.cursor_load("file:x").await.unwrap(), Some(9));
        assert_eq!(a.cursor_load("file:y").await.unwrap(), None);
        // A flush keeps them: event numbers keep counting.
        a.flush().await.unwrap();
        assert_eq!(b.cursor_load("file:x").await.unwrap(), Some(9));
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    #[tokio::test]
    async fn one_leader_per_name_until_it_lets_go() {
        let Some((a, b, _schema)) = two_stores() else {
            return;
        };
        let lead_a = a.try_lead("s1").await.unwrap().expect("a leads s1");
        assert!(lead_a.is_held());
        assert!(b.try_lead("s1").await.unwrap().is_none(), "b must wait");
        assert!(
            a.try_lead("s1").await.unwrap().is_none(),
            "a second caller in the same process waits too"
        );
        let lead_b = b
            .try_lead("s2")
            .await
            .unwrap()
            .expect("another name is free");
        drop(lead_a);
        // The release is asynchronous: b takes s1 once a's session unlocked it.
        let lead_b1 = loop {
            if let Some(g) = b.try_lead("s1").await.unwrap() {
                break g;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert!(lead_b1.is_held() && lead_b.is_held());
        assert!(a.try_lead("s1").await.unwrap().is_none());
        drop((lead_b, lead_b1));
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_lost_session_loses_the_leadership_and_frees_the_name() {
        let Some((a, b, schema)) = two_stores() else {
            return;
        };
        let lead = a.try_lead("s").await.unwrap().expect("a leads");
        // Kill a's coordination session from outside, as a network failure
        // or a crashed server would end it.
        let admin = schema.connect().unwrap();
        let name = schema.name().to_owned();
        let killed = std::thread::spawn(move || {
            let mut admin = admin;
            admin
                .query_one(
                    "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
                     WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
                       AND l.classid::bigint
                           = (hashtext('clew:lead:' || $1)::bigint & 4294967295)
                       AND l.objid::bigint = (hashtext('s')::bigint & 4294967295)",
                    &[&name],
                )
                .map(|r| r.get::<_, i64>(0))
        })
        .join()
        .unwrap()
        .unwrap();
        assert_eq!(killed, 1);
        let lead_b = loop {
            if let Some(g) = b.try_lead("s").await.unwrap() {
                break g;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert!(lead_b.is_held());
        // a notices within a ping.
        while lead.is_held() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // And a's cursors still work, on a new session.
        a.cursor_save("s", 3).await.unwrap();
        assert_eq!(b.cursor_load("s").await.unwrap(), Some(3));
        drop(lead_b);
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}
