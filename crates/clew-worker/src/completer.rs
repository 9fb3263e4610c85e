//! The completer: one task per worker that reports job outcomes in batches.
//!
//! Job tasks hand the command that reports their outcome (complete, advance,
//! retry, fail, release) to the completer through a channel, each with a
//! oneshot for its answer. The completer takes everything queued (at most
//! [`MAX_BATCH`]), sends it as one [`Command::Batch`] run each-on-its-own
//! (one request, one store transaction: a refused command — lock lost,
//! say — is that command's answer and leaves the others done), answers
//! every job task with its own result, and repeats.
//!
//! There is no timer: a command waiting alone goes at once (as a plain
//! command, not a batch of one), so latency does not suffer; batches grow
//! only when outcomes pile up while a request is in flight, which is when
//! saving requests matters.
//!
//! Failures of the whole request are handled as a single report's are:
//! store and transport errors are tried again ([`persist`]), up to
//! `REPORT_ATTEMPTS` times, then every command of the batch gets that
//! error. A batch refused as a whole for another reason (a server that
//! does not know `batch`, say) ran nothing, so its commands are sent one by
//! one instead. As with a single report, a request that committed but whose
//! answer was lost is sent again and its commands are then refused (the
//! jobs are no longer locked to this worker): the job tasks count them as
//! lost, never twice done.
//!
//! Shutdown: the completer runs until [`CompleterTask::finish`], which the
//! worker calls once every job task has ended; it then sends what is still
//! queued (requests of job tasks aborted while waiting included) before it
//! returns, so no outcome handed to it is dropped (unless the server does
//! not answer within the bound `finish` is given: then those jobs' locks
//! expire, as they would for a single report); it returns the results
//! nobody was left to receive, so that the worker's report can count them.

use clew_client::Client;
use clew_core::{Command, Error, Result};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::worker::persist;

/// The most commands sent in one batch.
pub(crate) const MAX_BATCH: usize = 100;

/// A command waiting to be sent, and where its answer goes.
struct Request {
    command: Command,
    reply: oneshot::Sender<Result<Value>>,
}

/// Hands outcome commands to the completer task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Completer {
    // Unbounded: each job task has at most one request queued, so the
    // queue never holds more than the worker's concurrency.
    tx: mpsc::UnboundedSender<Request>,
}

/// The completer task, to be finished when the worker stops.
#[derive(Debug)]
pub(crate) struct CompleterTask {
    closing: CancellationToken,
    task: JoinHandle<Unclaimed>,
}

/// Commands sent whose job task was gone when the answer came (aborted at
/// shutdown), with their results.
pub(crate) type Unclaimed = Vec<(Command, Result<Value>)>;

impl Completer {
    /// Starts a completer task sending through `client`.
    pub(crate) fn start(client: Client) -> (Completer, CompleterTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let closing = CancellationToken::new();
        let task = tokio::spawn(run(client, rx, closing.clone()));
        (Completer { tx }, CompleterTask { closing, task })
    }

    /// Sends `command` (in a batch with whatever else is waiting) and
    /// returns its own result: its natural JSON reply, or its refusal.
    pub(crate) async fn submit(&self, command: Command) -> Result<Value> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { command, reply })
            .map_err(|_| Error::store("the completer has stopped"))?;
        answer
            .await
            .map_err(|_| Error::store("the completer stopped before answering"))?
    }
}

impl CompleterTask {
    /// Sends what is still queued, then stops the task; returns the
    /// results nobody received. Call it once no more commands can be
    /// submitted (every job task has ended). Gives up after `within` (a
    /// server that never answers): what was not answered by then is
    /// abandoned, and its jobs' locks expire.
    pub(crate) async fn finish(self, within: std::time::Duration) -> Unclaimed {
        self.closing.cancel();
        let abort = self.task.abort_handle();
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(unclaimed)) => unclaimed,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the completer task ended abnormally");
                Vec::new()
            }
            Err(_) => {
                abort.abort();
                tracing::error!(
                    ?within,
                    "outcomes still unanswered: given up (their jobs' locks will expire)"
                );
                Vec::new()
            }
        }
    }
}

/// The completer's loop: waits for a command, takes everything else
/// queued, sends it all, answers each; until closed and empty.
async fn run(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Request>,
    closing: CancellationToken,
) -> Unclaimed {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut unclaimed = Vec::new();
    loop {
        let first = tokio::select! {
            // Queued requests first: closing only stops an empty queue.
            biased;
            r = rx.recv() => match r {
                Some(r) => r,
                None => return unclaimed,
            },
            _ = closing.cancelled() => match rx.try_recv() {
                Ok(r) => r,
                Err(_) => return unclaimed,
            },
        };
        batch.push(first);
        // Job tasks woken together (by one batch's answers, or one pop)
        // hand their outcomes over within moments of each other, on other
        // runtime threads: let them, so that the first does not go alone
        // and the rest a round trip later. (A yield, not a timer: a lone
        // outcome still goes at once.)
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        send(&client, std::mem::take(&mut batch), &mut unclaimed).await;
    }
}

/// Sends `batch` and answers each request; results whose job task is gone
/// go to `unclaimed`.
async fn send(client: &Client, batch: Vec<Request>, unclaimed: &mut Unclaimed) {
    let (commands, replies): (Vec<Command>, Vec<oneshot::Sender<Result<Value>>>) =
        batch.into_iter().map(|r| (r.command, r.reply)).unzip();
    let results = results(client, commands.clone()).await;
    for ((reply, result), command) in replies.into_iter().zip(results).zip(commands) {
        // The job task may have been aborted meanwhile (the worker gave up
        // on it at shutdown): its outcome was reported all the same.
        if let Err(result) = reply.send(result) {
            unclaimed.push((command, result));
        }
    }
}

/// Each command's result, in order.
async fn results(client: &Client, commands: Vec<Command>) -> Vec<Result<Value>> {
    let n = commands.len();
    if n == 1 {
        let command = &commands[0];
        return vec![persist(|| client.execute(command.clone())).await];
    }
    match persist(|| client.batch(commands.clone(), false)).await {
        Ok(results) if results.len() == n => results,
        Ok(results) => {
            let e = Error::store(format!("batch: {} results for {n} commands", results.len()));
            tracing::error!(error = %e, "cannot report outcomes");
            vec![Err(e); n]
        }
        Err(e) if e.kind() == clew_core::ErrorKind::Store => {
            tracing::error!(error = %e, commands = n, "cannot report a batch of outcomes");
            vec![Err(e); n]
        }
        Err(e) => {
            // Refused as a whole, so nothing ran: one by one instead.
            tracing::warn!(error = %e, "batch refused; reporting outcomes one by one");
            let mut out = Vec::with_capacity(n);
            for command in commands {
                out.push(persist(|| client.execute(command.clone())).await);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_core::command::{CompleteParams, PutParams};
    use clew_core::ErrorKind;

    /// A bound no test should reach.
    const LONG: std::time::Duration = std::time::Duration::from_secs(30);

    fn complete(jid: &str, worker: &str) -> Command {
        Command::Complete(CompleteParams {
            jid: jid.to_owned(),
            worker: worker.to_owned(),
            queue: "q".to_owned(),
            data: "{}".to_owned(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        })
    }

    /// Commands submitted while the completer cannot run (a current-thread
    /// runtime, all submitted before the test yields) go in one batch; a
    /// refused one gets its refusal and the others complete.
    #[tokio::test(flavor = "current_thread")]
    async fn queued_commands_go_in_one_batch_each_with_its_own_answer() {
        let (store, _dir) = clew_sqlite::testing::temp_store();
        let client = Client::local(clew_core::Engine::new(store.clone()));
        let mut jids = Vec::new();
        for _ in 0..5 {
            jids.push(client.put(PutParams::new("q", "K")).await.expect("put"));
        }
        let popped = client.pop("q", "w", 5).await.expect("pop");
        assert_eq!(popped.len(), 5);
        // Another worker takes the third job (its lock expired).
        client
            .execute(Command::Timeout {
                jids: vec![jids[2].clone()],
            })
            .await
            .expect("timeout");
        assert_eq!(client.pop("q", "thief", 1).await.expect("pop").len(), 1);

        let (completer, task) = Completer::start(client.clone());
        let before = store.writer_stats();
        let answers = futures_join(
            jids.iter()
                .map(|jid| completer.submit(complete(jid, "w")))
                .collect(),
        )
        .await;
        let after = store.writer_stats();
        assert_eq!(after.commands - before.commands, 1, "one batch command");
        for (i, answer) in answers.iter().enumerate() {
            if i == 2 {
                let e = answer.as_ref().expect_err("the lost job is refused");
                assert!(
                    matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound),
                    "{e:?}"
                );
            } else {
                assert_eq!(answer.as_ref().expect("completed"), "complete");
            }
        }
        let stolen = client.get(&jids[2]).await.expect("get").expect("job");
        assert_eq!(stolen.state, "running");
        assert_eq!(stolen.worker, "thief");
        task.finish(LONG).await;
    }

    /// A command alone goes as a plain command, not as a batch.
    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_command_goes_alone() {
        let (store, _dir) = clew_sqlite::testing::temp_store();
        let client = Client::local(clew_core::Engine::new(store.clone()));
        let jid = client.put(PutParams::new("q", "K")).await.expect("put");
        client.pop("q", "w", 1).await.expect("pop");
        let (completer, task) = Completer::start(client.clone());
        let answer = completer.submit(complete(&jid, "w")).await;
        assert_eq!(answer.expect("completed"), "complete");
        task.finish(LONG).await;
    }

    /// Requests still queued when the completer is finished are sent
    /// before it stops, even if nobody waits for their answers any more.
    #[tokio::test(flavor = "current_thread")]
    async fn finishing_sends_what_is_queued() {
        let (store, _dir) = clew_sqlite::testing::temp_store();
        let client = Client::local(clew_core::Engine::new(store));
        let mut jids = Vec::new();
        for _ in 0..3 {
            jids.push(client.put(PutParams::new("q", "K")).await.expect("put"));
        }
        client.pop("q", "w", 3).await.expect("pop");
        let (completer, task) = Completer::start(client.clone());
        for jid in &jids {
            // Queued, the answer dropped: as a job task aborted at shutdown.
            let (reply, _answer) = oneshot::channel();
            completer
                .tx
                .send(Request {
                    command: complete(jid, "w"),
                    reply,
                })
                .expect("queued");
        }
        let unclaimed = task.finish(LONG).await;
        assert_eq!(unclaimed.len(), 3);
        assert!(unclaimed.iter().all(|(_, r)| r.is_ok()), "{unclaimed:?}");
        for jid in &jids {
            let job = client.get(jid).await.expect("get").expect("job");
            assert_eq!(job.state, "complete", "{jid}");
        }
    }

    /// A server that never answers does not keep the completer from
    /// finishing: it gives up after the bound, and the waiting job task
    /// gets an error.
    #[tokio::test(flavor = "current_thread")]
    async fn finishing_gives_up_on_a_server_that_never_answers() {
        // Accepts connections (the kernel's backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", silent.local_addr().expect("address"));
        let client = Client::remote(&url, None).expect("client");
        let (completer, task) = Completer::start(client);
        let waiting = tokio::spawn(async move { completer.submit(complete("j", "w")).await });
        tokio::task::yield_now().await;
        let finished =
            tokio::time::timeout(LONG, task.finish(std::time::Duration::from_millis(200))).await;
        assert!(finished.expect("finish returns").is_empty());
        let answer = waiting.await.expect("the job task");
        assert_eq!(answer.expect_err("no answer").kind(), ErrorKind::Store);
    }

    /// Polls every future to completion, each polled once before any is
    /// polled again (so all requests are queued before the completer runs).
    async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
        let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
        let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, slot) in futures.iter_mut().enumerate() {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            out[i] = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(|v| v.expect("ready")).collect()
    }
}
