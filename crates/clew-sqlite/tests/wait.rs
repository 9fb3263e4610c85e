//! `Engine::wait_for_jobs` with many waiters: the waiters a commit wakes
//! share one look at each queue instead of each running a peek through the
//! store (16 idle workers made 16 peeks per commit).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clew_core::command::PutParams;
use clew_core::engine::WaitFor;
use clew_core::lifecycle::Origin;
use clew_core::{Command, Engine, Event, EventSink, Reply, Store, Timestamp};
use tokio::sync::watch;

/// Counts the peeks that reach the store.
#[derive(Debug)]
struct PeekCounting {
    inner: Arc<dyn Store>,
    peeks: Arc<AtomicUsize>,
}

#[async_trait]
impl Store for PeekCounting {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> clew_core::Result<Reply> {
        if matches!(command, Command::Peek { .. }) {
            self.peeks.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.execute_from(now, origin, command, sink).await
    }

    async fn events_after(&self, after: i64, limit: i64) -> clew_core::Result<Vec<Event>> {
        self.inner.events_after(after, limit).await
    }

    async fn flush(&self) -> clew_core::Result<()> {
        self.inner.flush().await
    }

    async fn close(&self) -> clew_core::Result<()> {
        self.inner.close().await
    }
}

/// Announces each commit's last event number, as a server does.
#[derive(Debug)]
struct Commits(watch::Sender<i64>);

impl EventSink for Commits {
    fn publish(&self, events: &[Event]) {
        if let Some(last) = events.last() {
            self.0.send_replace(last.seq);
        }
    }
}

#[tokio::test]
async fn waiters_woken_by_one_commit_share_one_look() {
    const WAITERS: usize = 16;
    let (sqlite, _dir) = clew_sqlite::testing::temp_store();
    let peeks = Arc::new(AtomicUsize::new(0));
    let store = PeekCounting {
        inner: sqlite,
        peeks: peeks.clone(),
    };
    let (tx, commits) = watch::channel(0);
    let engine = Engine::new(Arc::new(store)).with_sink(Arc::new(Commits(tx)));
    let queues = vec!["q".to_owned()];
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..WAITERS {
        let (engine, queues, commits) = (engine.clone(), queues.clone(), commits.clone());
        waiters.spawn(async move {
            engine
                .wait_for_jobs(WaitFor {
                    queues: &queues,
                    timeout: Duration::from_secs(30),
                    start: engine.now(),
                    commits: Some(commits),
                    stop: None,
                })
                .await
        });
    }
    // Each waiter's own first look.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while peeks.load(Ordering::SeqCst) < WAITERS {
        assert!(tokio::time::Instant::now() < deadline, "first looks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(peeks.load(Ordering::SeqCst), WAITERS);
    engine
        .put(PutParams {
            worker: "test".into(),
            queue: "q".into(),
            jid: "j".into(),
            klass: "K".into(),
            data: "{}".into(),
            ..PutParams::default()
        })
        .await
        .expect("put");
    let mut woken = 0;
    while let Some(done) = waiters.join_next().await {
        let ready = done.expect("waiter").expect("wait");
        assert_eq!(ready.as_deref(), Some("q"));
        woken += 1;
    }
    assert_eq!(woken, WAITERS);
    // One look after the put's commit, shared (without sharing: 16).
    assert_eq!(peeks.load(Ordering::SeqCst) - WAITERS, 1);
}

/// A put announces its commit to the store's subscribers, and a commit by
/// another store on the same file (another process) reaches them too.
#[tokio::test]
async fn commits_are_announced_to_subscribers_here_and_across_stores() {
    let (a, dir) = clew_sqlite::testing::temp_store();
    let path = a.path().to_path_buf();
    let b = Arc::new(
        clew_sqlite::SqliteStore::open(&path, clew_sqlite::SqliteOptions::default())
            .expect("second store on the file"),
    );
    let mut here = a.subscribe_commits().expect("announces commits");
    let mut there = b.subscribe_commits().expect("announces commits");
    let put = |jid: &str| PutParams {
        worker: "test".into(),
        queue: "q".into(),
        jid: jid.into(),
        klass: "K".into(),
        data: "{}".into(),
        ..PutParams::default()
    };
    let engine_a = Engine::new(a.clone());
    engine_a.put(put("one")).await.expect("put");
    let within = Duration::from_secs(5);
    tokio::time::timeout(within, here.changed())
        .await
        .expect("own commit announced")
        .expect("sender alive");
    let seq_here = *here.borrow_and_update();
    assert!(seq_here > 0);
    tokio::time::timeout(within, there.changed())
        .await
        .expect("the other store's commit announced by the watcher")
        .expect("sender alive");
    assert_eq!(*there.borrow_and_update(), seq_here);
    // And the other way round.
    Engine::new(b.clone()).put(put("two")).await.expect("put");
    tokio::time::timeout(within, here.changed())
        .await
        .expect("announced")
        .expect("sender alive");
    assert!(*here.borrow_and_update() > seq_here);
    b.close().await.expect("close");
    a.close().await.expect("close");
    drop(dir);
}
