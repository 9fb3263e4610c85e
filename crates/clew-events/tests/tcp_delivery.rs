//! End to end: delivery loop → TCP sink. The receiver stops mid-stream, the
//! loop (as in a process restart) and the receiver restart, and every event
//! arrives at least once, in order.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clew_events::{
    CursorStore, Delivery, DeliveryOptions, FileCursorStore, JsonMarshaller, MemorySource,
    Publisher, TcpOptions, TcpPublisher,
};
use common::{first_occurrences, numbered, rebind, receiver, wait_for};

const SINK: &str = "tcp:collector";

fn start(
    source: &Arc<MemorySource>,
    cursors: &Arc<FileCursorStore>,
    addr: std::net::SocketAddr,
) -> (
    Arc<TcpPublisher>,
    clew_events::DeliveryHandle,
    tokio::task::JoinHandle<()>,
) {
    let tcp = Arc::new(TcpPublisher::with_options(
        addr.to_string(),
        TcpOptions {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            flush_timeout: Duration::from_millis(200),
            ..TcpOptions::default()
        },
    ));
    let d = Delivery::new(
        SINK,
        source.clone(),
        tcp.clone(),
        Arc::new(JsonMarshaller),
        cursors.clone(),
    )
    .with_options(DeliveryOptions {
        batch: 8,
        poll_interval: Duration::from_millis(50),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    });
    let (handle, task) = d.spawn();
    (tcp, handle, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_and_loop_restart_every_event_arrives_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cursors = Arc::new(FileCursorStore::new(dir.path()).unwrap());
    let source = Arc::new(MemorySource::new());
    for n in 1..=40 {
        source.push(numbered(n));
    }
    let listener = rebind("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let first = tokio::spawn(receiver(listener, got.clone(), Some(10)));

    let (tcp, handle, task) = start(&source, &cursors, addr);
    first.await.unwrap(); // the receiver read 10 lines and went away
    wait_for("the loop to take all 40", || handle.status().cursor() == 40).await;
    wait_for("the sink to notice", || !tcp.is_connected()).await;
    // Unread lines are unconfirmed: the saved cursor stays behind them.
    assert!(tcp.unconfirmed() >= 30, "{}", tcp.unconfirmed());
    assert!(cursors.load(SINK).unwrap() <= 10);

    // "Crash": the loop and its publisher go away with lines unsent.
    handle.stop();
    task.await.unwrap();
    drop(tcp);
    for n in 41..=60 {
        source.push(numbered(n));
    }

    // Restart the receiver and the loop.
    let second = tokio::spawn(receiver(rebind(addr), got.clone(), None));
    let (_tcp, handle, task) = start(&source, &cursors, addr);
    wait_for("every event to arrive", || {
        let seen = got.lock().unwrap();
        (1..=60).all(|n| seen.contains(&n))
    })
    .await;
    let seen = got.lock().unwrap().clone();
    assert_eq!(first_occurrences(&seen), (1..=60).collect::<Vec<_>>());
    wait_for("caught up", || handle.status().lag() == 0).await;
    assert_eq!(handle.status().cursor(), 60);
    handle.stop();
    task.await.unwrap();
    second.abort();
}
