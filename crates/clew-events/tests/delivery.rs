//! The delivery loop: in order, at-least-once, cursors surviving restarts,
//! retries without losing its place, lag.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clew_events::{
    CursorStore, Delivery, DeliveryOptions, EventSource, FileCursorStore, JsonMarshaller,
    MemoryCursorStore, MemorySource, PublishError, Publisher,
};
use common::{numbered, wait_for};
use serde_json::Value;

/// Records the `args[0]` of each line; fails while `down` or for the next
/// `fail_next` attempts.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<i64>>,
    down: AtomicBool,
    fail_next: AtomicU32,
    attempts: AtomicU32,
}

impl Recorder {
    fn got(&self) -> Vec<i64> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait]
impl Publisher for Recorder {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let failing = self.down.load(Ordering::SeqCst)
            || self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if failing {
            return Err(PublishError::Http {
                sink: self.name(),
                message: "HTTP 503".into(),
            });
        }
        let v: Value = serde_json::from_str(line).unwrap();
        self.got
            .lock()
            .unwrap()
            .push(v["args"][0].as_i64().unwrap());
        Ok(())
    }
    fn name(&self) -> String {
        "recorder".into()
    }
}

fn fast() -> DeliveryOptions {
    DeliveryOptions {
        batch: 4,
        poll_interval: Duration::from_secs(3600), // only wake-ups move it
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
    }
}

fn source_with(n: i64) -> Arc<MemorySource> {
    let s = Arc::new(MemorySource::new());
    for i in 1..=n {
        assert_eq!(s.push(numbered(i)), i);
    }
    s
}

fn delivery(
    source: &Arc<MemorySource>,
    sink: &Arc<Recorder>,
    cursors: Arc<dyn CursorStore>,
) -> Delivery {
    Delivery::new(
        "tcp:collector:9000",
        source.clone(),
        sink.clone(),
        Arc::new(JsonMarshaller),
        cursors,
    )
    .with_options(fast())
}

#[tokio::test]
async fn cursor_survives_a_restart_and_the_loop_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cursors = Arc::new(FileCursorStore::new(dir.path().join("cursors")).unwrap());
    let source = source_with(10);
    let sink = Arc::new(Recorder::default());
    let (handle, task) = delivery(&source, &sink, cursors.clone()).spawn();
    wait_for("10 events delivered", || handle.status().cursor() == 10).await;
    wait_for("cursor saved", || {
        cursors.load("tcp:collector:9000").unwrap() == 10
    })
    .await;
    assert_eq!(sink.got(), (1..=10).collect::<Vec<_>>());
    assert_eq!(handle.status().lag(), 0);
    handle.stop();
    task.await.unwrap();

    // Events keep coming while the loop is down.
    for i in 11..=15 {
        source.push(numbered(i));
    }
    // A new loop (as after a process restart) with a fresh store object.
    let cursors = Arc::new(FileCursorStore::new(dir.path().join("cursors")).unwrap());
    let sink2 = Arc::new(Recorder::default());
    let (handle, task) = delivery(&source, &sink2, cursors.clone()).spawn();
    wait_for("resumed delivery", || handle.status().cursor() == 15).await;
    assert_eq!(
        sink2.got(),
        (11..=15).collect::<Vec<_>>(),
        "resumes after 10"
    );
    wait_for("cursor saved", || {
        cursors.load("tcp:collector:9000").unwrap() == 15
    })
    .await;
    assert_eq!(handle.status().published(), 5);
    handle.stop();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failing_sink_is_retried_without_losing_its_place_and_lag_shows() {
    let source = source_with(3);
    let sink = Arc::new(Recorder::default());
    let cursors = Arc::new(MemoryCursorStore::new());
    let (handle, task) = delivery(&source, &sink, cursors.clone()).spawn();
    wait_for("first events", || handle.status().cursor() == 3).await;
    assert_eq!(handle.status().lag(), 0);

    // The sink goes down; 6 more events arrive.
    sink.down.store(true, Ordering::SeqCst);
    let mut last = 0;
    for i in 4..=9 {
        last = source.push(numbered(i));
    }
    handle.notify_seq(last);
    wait_for("retries while down", || handle.status().failures() >= 3).await;
    assert_eq!(handle.status().cursor(), 3, "no skipping while down");
    assert_eq!(handle.status().latest(), 9);
    assert_eq!(handle.status().lag(), 6);
    assert_eq!(cursors.load("tcp:collector:9000").unwrap(), 3);

    // Back up: everything arrives, in order, each once.
    sink.down.store(false, Ordering::SeqCst);
    wait_for("caught up", || handle.status().lag() == 0).await;
    assert_eq!(sink.got(), (1..=9).collect::<Vec<_>>());
    wait_for("cursor saved", || {
        cursors.load("tcp:collector:9000").unwrap() == 9
    })
    .await;
    handle.stop();
    task.await.unwrap();
}

#[tokio::test]
async fn transient_failures_mid_batch_keep_order() {
    let source = source_with(12);
    let sink = Arc::new(Recorder::default());
    sink.fail_next.store(5, Ordering::SeqCst);
    let (handle, task) = delivery(&source, &sink, Arc::new(MemoryCursorStore::new())).spawn();
    wait_for("all delivered", || handle.status().cursor() == 12).await;
    assert_eq!(sink.got(), (1..=12).collect::<Vec<_>>());
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 17);
    assert_eq!(handle.status().failures(), 5);
    handle.stop();
    task.await.unwrap();
}

/// A cursor store whose saves fail while `broken`.
struct Flaky {
    inner: MemoryCursorStore,
    broken: AtomicBool,
}

impl CursorStore for Flaky {
    fn load(&self, name: &str) -> std::io::Result<i64> {
        self.inner.load(name)
    }
    fn save(&self, name: &str, seq: i64) -> std::io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk full"));
        }
        self.inner.save(name, seq)
    }
}

#[tokio::test]
async fn events_published_but_not_saved_are_sent_again_after_a_restart() {
    let source = source_with(3);
    let cursors = Arc::new(Flaky {
        inner: MemoryCursorStore::new(),
        broken: AtomicBool::new(true),
    });
    let sink = Arc::new(Recorder::default());
    let (handle, task) = delivery(&source, &sink, cursors.clone()).spawn();
    wait_for("published", || sink.got().len() == 3).await;
    wait_for("save retried", || handle.status().failures() >= 2).await;
    assert_eq!(cursors.load("tcp:collector:9000").unwrap(), 0);
    handle.stop(); // "crash" before the cursor could be saved
    task.await.unwrap();

    cursors.broken.store(false, Ordering::SeqCst);
    let sink2 = Arc::new(Recorder::default());
    let (handle, task) = delivery(&source, &sink2, cursors.clone()).spawn();
    wait_for("redelivered", || handle.status().cursor() == 3).await;
    assert_eq!(sink2.got(), [1, 2, 3], "at-least-once: sent again");
    wait_for("saved", || cursors.load("tcp:collector:9000").unwrap() == 3).await;
    handle.stop();
    task.await.unwrap();
}

#[tokio::test]
async fn a_wake_up_delivers_without_waiting_for_the_poll() {
    let source = source_with(0);
    let sink = Arc::new(Recorder::default());
    let (handle, task) = delivery(&source, &sink, Arc::new(MemoryCursorStore::new())).spawn();
    for i in 1..=3 {
        let seq = source.push(numbered(i));
        handle.wake();
        wait_for("woken delivery", || handle.status().cursor() == seq).await;
    }
    assert_eq!(sink.got(), [1, 2, 3]);
    assert_eq!(handle.name(), "tcp:collector:9000");
    handle.stop();
    task.await.unwrap();
}

#[tokio::test]
async fn a_slow_sink_does_not_block_the_producer() {
    struct Stuck;
    #[async_trait]
    impl Publisher for Stuck {
        async fn publish(&self, _line: &str) -> Result<(), PublishError> {
            std::future::pending::<()>().await;
            Ok(())
        }
        fn name(&self) -> String {
            "stuck".into()
        }
    }
    let source = source_with(1);
    let d = Delivery::new(
        "stuck",
        source.clone(),
        Arc::new(Stuck),
        Arc::new(JsonMarshaller),
        Arc::new(MemoryCursorStore::new()),
    )
    .with_options(fast());
    let (handle, task) = d.spawn();
    // The producer keeps appending and waking; none of it waits on the sink.
    let started = std::time::Instant::now();
    for i in 2..=1000 {
        let seq = source.push(numbered(i));
        handle.notify_seq(seq);
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    wait_for("lag visible", || handle.status().lag() == 1000).await;
    // Stopping works even with a publish stuck in flight.
    handle.stop();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("loop stops")
        .unwrap();
}

#[tokio::test]
async fn file_cursor_store_writes_atomically_and_keeps_sinks_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCursorStore::new(dir.path()).unwrap();
    assert_eq!(store.load("tcp:a:1").unwrap(), 0);
    store.save("tcp:a:1", 41).unwrap();
    store.save("tcp:a:1", 42).unwrap();
    store.save("tcp_a_1", 7).unwrap();
    assert_eq!(store.load("tcp:a:1").unwrap(), 42);
    assert_eq!(store.load("tcp_a_1").unwrap(), 7);
    assert_ne!(store.path_of("tcp:a:1"), store.path_of("tcp_a_1"));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    assert!(names.iter().all(|n| n.ends_with(".cursor")));

    std::fs::write(store.path_of("broken"), "not a number").unwrap();
    let err = store.load("broken").unwrap_err().to_string();
    assert!(err.contains("\"broken\""), "{err}");
}

#[tokio::test]
async fn memory_source_reads_after_a_seq_in_order() {
    let s = source_with(5);
    let seqs = |v: Vec<clew_core::LifecycleEvent>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(s.events_after(0, 3).await.unwrap()), [1, 2, 3]);
    assert_eq!(seqs(s.events_after(3, 10).await.unwrap()), [4, 5]);
    assert!(s.events_after(5, 10).await.unwrap().is_empty());
    assert_eq!(s.latest_seq().await.unwrap(), Some(5));
}
