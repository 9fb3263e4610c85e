//! A report whose answer is lost after it committed (the server died right
//! after the commit; found by `clew chaos`): the worker tries again, the
//! store refuses ("not running: complete"), and the worker must count the
//! job as completed (or failed) by itself, not as a lost lock whose
//! result was discarded.

mod runtime_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clew_client::Client;
use clew_core::event::{Event, EventSink};
use clew_core::lifecycle::Origin;
use clew_core::{Command, Engine, Error, Reply, Store, Timestamp};
use clew_worker::{Outcome, Worker};
use runtime_support::*;

/// A store that commits every command but loses the answer of the first
/// report (complete or fail, alone or in a batch) of each job.
#[derive(Debug)]
struct LosesFirstAnswer {
    inner: Arc<dyn Store>,
    lost: Mutex<HashSet<String>>,
}

fn reported(command: &Command, out: &mut Vec<String>) {
    match command {
        Command::Complete(p) => out.push(p.jid.clone()),
        Command::Fail { jid, .. } => out.push(jid.clone()),
        Command::Batch { commands, .. } => commands.iter().for_each(|c| reported(c, out)),
        _ => {}
    }
}

#[async_trait]
impl Store for LosesFirstAnswer {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> clew_core::Result<Reply> {
        let mut jids = Vec::new();
        reported(&command, &mut jids);
        let reply = self.inner.execute_from(now, origin, command, sink).await?;
        let mut lost = self.lost.lock().expect("lock");
        let first = jids.iter().any(|j| !lost.contains(j));
        if first {
            lost.extend(jids);
            return Err(Error::store("connection reset: the answer was lost"));
        }
        Ok(reply)
    }

    async fn events_after(&self, after: i64, limit: i64) -> clew_core::Result<Vec<Event>> {
        self.inner.events_after(after, limit).await
    }

    async fn flush(&self) -> clew_core::Result<()> {
        self.inner.flush().await
    }

    fn subscribe_commits(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        self.inner.subscribe_commits()
    }

    async fn close(&self) -> clew_core::Result<()> {
        self.inner.close().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outcome_whose_answer_was_lost_counts_as_done_not_lost() {
    let (inner, _dir) = clew_sqlite::testing::temp_store();
    let store = LosesFirstAnswer {
        inner,
        lost: Mutex::new(HashSet::new()),
    };
    let client = Client::local(Engine::new(Arc::new(store)));
    let ok = put(&client, "q", "Ok", 5).await;
    let bad = put(&client, "q", "Bad", 5).await;
    let handler = FnHandler(|job: clew_worker::Job, _ctx| async move {
        if job.klass == "Bad" {
            Outcome::fail("Bad:boom", "boom")
        } else {
            Outcome::complete()
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-lost-answer", &["q"]),
    ));
    let done = wait_state(&client, &ok, "complete").await;
    let failed = wait_state(&client, &bad, "failed").await;
    let report = finish(&control, run).await;
    assert_eq!(history_whats(&done), ["put", "popped", "done"]);
    assert_eq!(history_whats(&failed), ["put", "popped", "failed"]);
    assert_eq!(
        (report.completed, report.failed, report.lost),
        (1, 1, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_another_worker_completed_is_still_lost() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Stolen", 5).await;
    let handler = FnHandler({
        let client = client.clone();
        move |job: clew_worker::Job, _ctx| {
            let client = client.clone();
            async move {
                // The lock times out; a thief takes the job and completes it
                // before this worker reports: the same refusal ("not
                // running: complete"), but the completion is not ours.
                client
                    .execute(Command::Timeout {
                        jids: vec![job.jid.clone()],
                    })
                    .await
                    .expect("timeout");
                let taken = client.pop("q", "thief", 1).await.expect("pop");
                assert_eq!(taken.len(), 1);
                client
                    .complete(&job.jid, "thief", "q", "{}")
                    .await
                    .expect("the thief completes");
                Outcome::complete()
            }
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-robbed", &["q"]),
    ));
    let done = wait_state(&client, &jid, "complete").await;
    let report = finish(&control, run).await;
    assert_eq!(
        history_whats(&done),
        ["put", "popped", "timed-out", "popped", "done"]
    );
    assert_eq!((report.completed, report.lost), (0, 1), "{report:?}");
}
