//! [`PgConn`]: one `tokio-postgres` connection driven synchronously, with
//! **pipelining**.
//!
//! The store's pool threads are plain threads ([`clew_core::Tx`] is
//! synchronous), and the synchronous `postgres` driver waits for each
//! statement's answer before sending the next. `tokio-postgres` does not
//! have to: a request is written to the socket when its future is first
//! polled, so several statements' futures polled in order go out back to
//! back, each with its own bound parameters, and their answers are read
//! afterwards (its documentation, "Pipelining"). [`PgConn::pipeline`] does
//! that on a current-thread runtime owned by the connection, polling the
//! connection itself in the same loop (as the `postgres` driver does), so
//! a batch of writes and the read that follows cost one network round trip
//! and no value is ever written into SQL text.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Connection, Notification, Row, Socket, Statement};

/// A driver error (the `postgres` crate's error is the same type).
pub type PgError = tokio_postgres::Error;

/// One statement of a [`PgConn::pipeline`].
pub enum Step<'a> {
    /// SQL text sent with the simple query protocol: only for statements
    /// that carry no value (`BEGIN`, `COMMIT`, savepoints).
    Text(&'a str),
    /// A prepared statement run with bound parameters; answers the number
    /// of rows it changed.
    Execute(&'a Statement, Vec<&'a (dyn ToSql + Sync)>),
    /// A prepared statement run with bound parameters; answers its rows.
    Query(&'a Statement, Vec<&'a (dyn ToSql + Sync)>),
}

/// The answer to one [`Step`].
#[derive(Debug)]
pub enum Answer {
    /// A [`Step::Text`] or [`Step::Execute`] ran (rows changed; 0 for text).
    Done(u64),
    /// The rows of a [`Step::Query`].
    Rows(Vec<Row>),
}

impl Answer {
    /// The rows (none for a statement that returns none).
    pub fn rows(self) -> Vec<Row> {
        match self {
            Answer::Rows(rows) => rows,
            Answer::Done(_) => Vec::new(),
        }
    }

    /// The number of rows changed (the number of rows for a query).
    pub fn count(&self) -> u64 {
        match self {
            Answer::Done(n) => *n,
            Answer::Rows(rows) => rows.len() as u64,
        }
    }
}

/// A statement's future inside a pipeline.
type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Answer, PgError>> + 'a>>;

/// One connection: the client, and what drives it (its runtime and the
/// connection's message loop, polled whenever the thread waits on the
/// client). Blocking calls; use it on a thread of its own, outside async
/// code.
pub struct PgConn {
    client: Client,
    driver: Driver,
}

/// The runtime and the connection's message loop.
struct Driver {
    runtime: Runtime,
    /// `None` once the connection ended (dropping it fails every request
    /// still waiting for an answer, with the driver's "closed" error).
    connection: Option<Connection<Socket, NoTlsStream>>,
    /// Notifications received and not taken yet (`LISTEN`).
    notifications: VecDeque<Notification>,
}

impl Driver {
    /// Runs `f` on the runtime until it is ready, polling the connection
    /// first each time (it sends the requests and routes the answers).
    fn poll_block_on<T>(
        &mut self,
        mut f: impl FnMut(&mut Context<'_>, &mut VecDeque<Notification>) -> Poll<T>,
    ) -> T {
        let Driver {
            runtime,
            connection,
            notifications,
        } = self;
        runtime.block_on(poll_fn(|cx| {
            let mut ended = false;
            if let Some(conn) = connection.as_mut() {
                loop {
                    match conn.poll_message(cx) {
                        Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                            notifications.push_back(n);
                        }
                        Poll::Ready(Some(Ok(AsyncMessage::Notice(notice)))) => {
                            tracing::info!("postgres: {}: {}", notice.severity(), notice.message());
                        }
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(e))) => {
                            tracing::warn!(error = %e, "PostgreSQL connection lost");
                            ended = true;
                            break;
                        }
                        Poll::Ready(None) => {
                            ended = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if ended {
                // Fails what waits for an answer (and every later request).
                *connection = None;
            }
            f(cx, notifications)
        }))
    }

    /// Runs one future to completion.
    fn block_on<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        self.poll_block_on(|cx, _| future.as_mut().poll(cx))
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl PgConn {
    /// Connects (plain TCP or a Unix socket).
    pub fn connect(config: &tokio_postgres::Config) -> clew_core::Result<PgConn> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                clew_core::Error::store(format!(
                    "starting the runtime of a PostgreSQL connection: {e}"
                ))
            })?;
        let (client, connection) = runtime
            .block_on(config.connect(tokio_postgres::NoTls))
            .map_err(crate::tx::pg_err)?;
        Ok(PgConn {
            client,
            driver: Driver {
                runtime,
                connection: Some(connection),
                notifications: VecDeque::new(),
            },
        })
    }

    /// Whether the connection is lost (then every call fails).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() || self.driver.connection.is_none()
    }

    /// Runs SQL text without values (one or more statements), simple
    /// query protocol.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
        self.driver.block_on(self.client.batch_execute(sql))
    }

    /// Prepares `sql` (one round trip).
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, PgError> {
        self.driver.block_on(self.client.prepare(sql))
    }

    /// Prepares every statement of `sqls` in one round trip (their requests
    /// pipelined); the results in order.
    pub fn prepare_all(&mut self, sqls: &[&str]) -> Vec<Result<Statement, PgError>> {
        let client = &self.client;
        type Prepare<'a> = Pin<Box<dyn Future<Output = Result<Statement, PgError>> + 'a>>;
        let futures: Vec<Prepare<'_>> = sqls
            .iter()
            .map(|sql| -> Prepare<'_> { Box::pin(client.prepare(sql)) })
            .collect();
        join_in_order(&mut self.driver, futures)
    }

    /// Runs `steps` pipelined: every request is sent, in order, before any
    /// answer is read, so the whole list costs one round trip. Returns each
    /// step's result, in order. Inside a transaction, a failed step makes
    /// every later one fail with "current transaction is aborted": the
    /// first error is the one that matters (`first_error`).
    pub fn pipeline(&mut self, steps: Vec<Step<'_>>) -> Vec<Result<Answer, PgError>> {
        let client = &self.client;
        let futures: Vec<StepFuture<'_>> =
            steps
                .into_iter()
                .map(|step| -> StepFuture<'_> {
                    match step {
                        Step::Text(sql) => Box::pin(async move {
                            client.batch_execute(sql).await.map(|()| Answer::Done(0))
                        }),
                        Step::Execute(statement, params) => Box::pin(async move {
                            client.execute(statement, &params).await.map(Answer::Done)
                        }),
                        Step::Query(statement, params) => Box::pin(async move {
                            client.query(statement, &params).await.map(Answer::Rows)
                        }),
                    }
                })
                .collect();
        join_in_order(&mut self.driver, futures)
    }

    /// Waits up to `timeout` for a notification; returns every one received
    /// (none when the time ran out). An error when the connection is lost.
    pub fn notifications(&mut self, timeout: Duration) -> clew_core::Result<Vec<Notification>> {
        if self.driver.notifications.is_empty() && !self.is_closed() {
            let mut sleep: Option<Pin<Box<tokio::time::Sleep>>> = None;
            self.driver.poll_block_on(|cx, notifications| {
                // Made here: a timer needs the runtime's context.
                let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if !notifications.is_empty() || sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
        }
        if self.driver.notifications.is_empty() && self.is_closed() {
            return Err(clew_core::Error::store("postgres: connection closed"));
        }
        Ok(self.driver.notifications.drain(..).collect())
    }
}

/// Polls `futures` in order until all are done: the first poll of each
/// sends its request, so the requests go out in this order.
fn join_in_order<'a, T>(
    driver: &mut Driver,
    mut futures: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>,
) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    driver.poll_block_on(|cx, _| {
        let mut pending = false;
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *result = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    });
    results.into_iter().flatten().collect()
}

/// The answers of a pipeline, or its first error (the statements after a
/// failed one fail only because the transaction is aborted).
pub fn first_error(results: Vec<Result<Answer, PgError>>) -> Result<Vec<Answer>, PgError> {
    results.into_iter().collect()
}
