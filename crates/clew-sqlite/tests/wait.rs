//! `Engine::wait_for_jobs` with many waiters: the waiters a commit wakes
//! share one look at each queue instead of each running a peek through the
//! store (16 idle workers made 16 peeks per commit), and only as many of
//! them as there are jobs go on to pop (16 idle workers made 16 pops, 15 of
//! them empty, per job).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clew_core::command::PutParams;
use clew_core::engine::WaitFor;
use clew_core::lifecycle::Origin;
use clew_core::{Command, Engine, Event, EventSink, Reply, Store, Timestamp};
use tokio::sync::watch;

/// Counts the peeks and pops that reach the store.
#[derive(Debug)]
struct PeekCounting {
    inner: Arc<dyn Store>,
    peeks: Arc<AtomicUsize>,
    pops: Arc<AtomicUsize>,
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
        match command {
            Command::Peek { .. } => self.peeks.fetch_add(1, Ordering::SeqCst),
            Command::Pop { .. } => self.pops.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
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

fn put(jid: &str) -> PutParams {
    PutParams {
        worker: "test".into(),
        queue: "q".into(),
        jid: jid.into(),
        klass: "K".into(),
        data: "{}".into(),
        ..PutParams::default()
    }
}

/// An engine on a fresh SQLite file whose peeks and pops are counted, and
/// its commits announced.
fn counted_engine() -> (Engine, watch::Receiver<i64>, Counts, tempfile::TempDir) {
    let (sqlite, dir) = clew_sqlite::testing::temp_store();
    let counts = Counts::default();
    let store = PeekCounting {
        inner: sqlite,
        peeks: counts.peeks.clone(),
        pops: counts.pops.clone(),
    };
    let (tx, commits) = watch::channel(0);
    let engine = Engine::new(Arc::new(store)).with_sink(Arc::new(Commits(tx)));
    (engine, commits, counts, dir)
}

#[derive(Clone, Default)]
struct Counts {
    peeks: Arc<AtomicUsize>,
    pops: Arc<AtomicUsize>,
}

/// `waiters` tasks that wait (at most 30 s) on queue `q`.
fn spawn_waiters(
    engine: &Engine,
    commits: &watch::Receiver<i64>,
    waiters: usize,
) -> tokio::task::JoinSet<clew_core::Result<Option<String>>> {
    let queues = vec!["q".to_owned()];
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..waiters {
        let (engine, queues, commits) = (engine.clone(), queues.clone(), commits.clone());
        set.spawn(async move {
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
    set
}

/// Waits until `n` peeks have reached the store (each waiter's first look).
async fn first_looks(counts: &Counts, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counts.peeks.load(Ordering::SeqCst) < n {
        assert!(tokio::time::Instant::now() < deadline, "first looks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn waiters_woken_by_one_commit_share_one_look() {
    const WAITERS: usize = 16;
    let (engine, commits, counts, _dir) = counted_engine();
    let mut waiters = spawn_waiters(&engine, &commits, WAITERS);
    first_looks(&counts, WAITERS).await;
    assert_eq!(counts.peeks.load(Ordering::SeqCst), WAITERS);
    engine.put(put("j")).await.expect("put");
    // Nobody pops here: the one waiter the commit releases returns at once,
    // the others at their next look of their own (WAIT_RECHECK).
    let mut woken = 0;
    while let Some(done) = waiters.join_next().await {
        let ready = done.expect("waiter").expect("wait");
        assert_eq!(ready.as_deref(), Some("q"));
        woken += 1;
        if woken == 1 {
            // One look after the put's commit, shared (without sharing: 16).
            assert_eq!(counts.peeks.load(Ordering::SeqCst) - WAITERS, 1);
        }
    }
    assert_eq!(woken, WAITERS);
}

/// Idle workers that wait, then pop one job: a commit of `jobs` jobs sends
/// only about that many of them to pop, and every job is popped.
async fn pops_after(jobs: usize) -> usize {
    const WAITERS: usize = 16;
    let (engine, commits, counts, _dir) = counted_engine();
    let queues = vec!["q".to_owned()];
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WAITERS {
        let (engine, queues, commits) = (engine.clone(), queues.clone(), commits.clone());
        workers.spawn(async move {
            let worker = format!("w{w}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
                let ready = engine
                    .wait_for_jobs(WaitFor {
                        queues: &queues,
                        timeout: Duration::from_secs(30),
                        start: engine.now(),
                        commits: Some(commits.clone()),
                        stop: None,
                    })
                    .await
                    .expect("wait");
                if ready.is_some() {
                    let got = engine.pop("q", &worker, 1).await.expect("pop");
                    if let Some(job) = got.first() {
                        return Some(job.jid().to_owned());
                    }
                }
            }
            None
        });
    }
    first_looks(&counts, WAITERS).await;
    let items = (0..jobs).map(|i| put(&format!("j{i}"))).collect();
    let results = engine.put_many(items).await.expect("put_many");
    assert_eq!(results.len(), jobs);
    let mut popped = Vec::new();
    while popped.len() < jobs {
        let done = workers.join_next().await.expect("a worker left");
        popped.extend(done.expect("worker"));
    }
    popped.sort();
    popped.dedup();
    assert_eq!(popped.len(), jobs, "each job popped once");
    // The waiters still waiting may look again (WAIT_RECHECK) and find
    // nothing; let them.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pops = counts.pops.load(Ordering::SeqCst);
    workers.abort_all();
    pops
}

#[tokio::test]
async fn a_commit_of_one_job_sends_one_waiter_to_pop() {
    let pops = pops_after(1).await;
    // One pop; a waiter's own timed look may rarely catch the job in the
    // moment before it is popped (16 without the release count).
    assert!(pops <= 3, "{pops} pops for 1 job");
}

#[tokio::test]
async fn a_commit_of_four_jobs_sends_about_four_waiters_to_pop() {
    let pops = pops_after(4).await;
    // Four, and a few more when the look after the first pop's commit
    // still sees jobs the other released waiters are about to pop (16
    // without the release count).
    assert!((4..=10).contains(&pops), "{pops} pops for 4 jobs");
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
