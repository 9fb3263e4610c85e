//! Publishers against real files and real sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clew_events::{
    CompositePublisher, FilePublisher, HttpOptions, HttpPublisher, JsonMarshaller, Marshaller,
    PublishError, Publisher, StdoutPublisher, TcpOptions, TcpPublisher, UdpPublisher,
};
use common::{first_occurrences, numbered, rebind, receiver, wait_for};
use tokio::net::{TcpListener, UdpSocket};

fn read_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn stdout_publisher_writes() {
    let p = StdoutPublisher::new();
    p.publish("clew-events stdout test line").await.unwrap();
    p.flush().await.unwrap();
    assert_eq!(p.name(), "stdout");
}

#[tokio::test]
async fn file_publisher_appends_and_reopens_after_logrotate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clues.log");
    std::fs::write(&path, "existing\n").unwrap();
    let p = FilePublisher::open(&path).await.unwrap();
    p.publish("one").await.unwrap();
    p.publish("two").await.unwrap();
    assert_eq!(read_lines(&path), ["existing", "one", "two"]);

    // logrotate: rename the file away; until reopen, lines follow the old file.
    let rotated = dir.path().join("clues.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    p.publish("three").await.unwrap();
    assert!(!path.exists());
    p.reopen().await.unwrap();
    p.publish("four").await.unwrap();
    p.flush().await.unwrap();
    assert_eq!(read_lines(&rotated), ["existing", "one", "two", "three"]);
    assert_eq!(read_lines(&path), ["four"]);
    assert_eq!(p.name(), format!("file:{}", path.display()));
}

#[tokio::test]
async fn file_publisher_names_the_path_when_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("missing-dir").join("clues.log");
    let err = FilePublisher::open(&bad).await.err().unwrap().to_string();
    assert!(err.contains("missing-dir"), "{err}");
}

struct Failing;

#[async_trait]
impl Publisher for Failing {
    async fn publish(&self, _line: &str) -> Result<(), PublishError> {
        Err(PublishError::Http {
            sink: self.name(),
            message: "HTTP 503".into(),
        })
    }
    fn name(&self) -> String {
        "failing".into()
    }
}

#[tokio::test]
async fn composite_fans_out_and_reports_the_failing_member() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let members: Vec<Arc<dyn Publisher>> = vec![
        Arc::new(FilePublisher::open(&a).await.unwrap()),
        Arc::new(Failing),
        Arc::new(FilePublisher::open(&b).await.unwrap()),
    ];
    let c = CompositePublisher::new(members);
    let err = c.publish("event-1").await.expect_err("one member failed");
    match &err {
        PublishError::Composite { total, failures } => {
            assert_eq!(*total, 3);
            assert_eq!(failures.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "1 of 3 sinks failed: failing: HTTP 503");
    // The healthy members took the line anyway.
    assert_eq!(read_lines(&a), ["event-1"]);
    assert_eq!(read_lines(&b), ["event-1"]);
    assert!(c.name().starts_with("composite[file:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_receiver_stopped_mid_stream_then_restarted_gets_every_event_in_order() {
    let listener = rebind("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let first = tokio::spawn(receiver(listener, got.clone(), Some(10)));

    let p = TcpPublisher::with_options(
        addr.to_string(),
        TcpOptions {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..TcpOptions::default()
        },
    );
    let m = JsonMarshaller;
    for n in 1..=50 {
        let started = Instant::now();
        p.publish(&m.marshal(&numbered(n))).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "publish blocked"
        );
    }
    // The receiver stops after its 10th line.
    first.await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 10);
    // More events while it is down: buffered, the caller is not blocked.
    for n in 51..=100 {
        let started = Instant::now();
        p.publish(&m.marshal(&numbered(n))).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "publish blocked"
        );
    }
    wait_for("the publisher to notice the receiver is gone", || {
        !p.is_connected()
    })
    .await;
    // Everything after the 10th line waits in the buffer (replayed or new).
    wait_for("the unread lines to be buffered", || p.pending() >= 90).await;
    assert_eq!(got.lock().unwrap().len(), 10);

    // Restart the receiver on the same port.
    let second = tokio::spawn(receiver(rebind(addr), got.clone(), None));
    wait_for("every event to arrive", || {
        let seen = got.lock().unwrap();
        (1..=100).all(|n| seen.contains(&n))
    })
    .await;
    p.flush().await.unwrap();
    assert_eq!(p.pending(), 0);
    assert!(p.connections() >= 2, "reconnected");
    let seen = got.lock().unwrap().clone();
    assert_eq!(
        first_occurrences(&seen),
        (1..=100).collect::<Vec<_>>(),
        "in order"
    );
    second.abort();
}

#[tokio::test]
async fn tcp_buffer_is_bounded_and_flush_reports_unsent_lines() {
    // A port with nobody listening.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let p = TcpPublisher::with_options(
        addr.to_string(),
        TcpOptions {
            capacity: 5,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            flush_timeout: Duration::from_millis(200),
            ..TcpOptions::default()
        },
    );
    for n in 0..5 {
        p.publish(&format!("line {n}")).await.unwrap();
    }
    let started = Instant::now();
    let err = p.publish("line 5").await.expect_err("buffer full");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        matches!(err, PublishError::BufferFull { capacity: 5, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("tcp:{addr}")), "{err}");
    let err = p.flush().await.expect_err("nothing can be sent");
    assert!(
        matches!(err, PublishError::Timeout { pending: 5, .. }),
        "{err:?}"
    );
    assert!(!p.is_connected());
}

#[tokio::test]
async fn udp_one_datagram_per_event_oversized_dropped_and_counted() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = UdpPublisher::with_max(rx.local_addr().unwrap().to_string(), 100);
    let big = "x".repeat(101);
    for line in ["first", "second", big.as_str(), "exactly-100", "last"] {
        let line = if line == "exactly-100" {
            "y".repeat(100)
        } else {
            line.to_owned()
        };
        p.publish(&line).await.unwrap();
    }
    assert_eq!(p.dropped(), 1);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while got.last().map(String::as_str) != Some("last") {
        let n = tokio::time::timeout(Duration::from_secs(10), rx.recv(&mut buf))
            .await
            .expect("datagram within 10 s")
            .unwrap();
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert_eq!(got, ["first", "second", &"y".repeat(100), "last"]);
    assert_eq!(p.dropped(), 1);
}

#[tokio::test]
async fn udp_default_cap_is_8_kib() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = UdpPublisher::new(rx.local_addr().unwrap().to_string());
    p.publish(&"z".repeat(8 * 1024 + 1)).await.unwrap();
    assert_eq!(p.dropped(), 1);
    p.publish(&"z".repeat(8 * 1024)).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let n = tokio::time::timeout(Duration::from_secs(10), rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 8 * 1024);
}

#[derive(Default)]
struct Hook {
    hits: AtomicU32,
    fail_first: u32,
    status_on_fail: u16,
    bodies: Mutex<Vec<(String, String)>>,
}

async fn hook_server(hook: Arc<Hook>) -> SocketAddr {
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            |axum::extract::State(h): axum::extract::State<Arc<Hook>>,
             headers: HeaderMap,
             body: String| async move {
                let n = h.hits.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= h.fail_first {
                    return StatusCode::from_u16(h.status_on_fail).unwrap();
                }
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                h.bodies.lock().unwrap().push((ct, body));
                StatusCode::OK
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.with_state(hook)).await.unwrap();
    });
    addr
}

fn fast_http() -> HttpOptions {
    HttpOptions {
        attempts: 4,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..HttpOptions::default()
    }
}

#[tokio::test]
async fn http_retries_5xx_then_delivers_once() {
    let hook = Arc::new(Hook {
        fail_first: 2,
        status_on_fail: 500,
        ..Hook::default()
    });
    let addr = hook_server(hook.clone()).await;
    let p = HttpPublisher::with_options(format!("http://{addr}/hook"), fast_http());
    let line = JsonMarshaller.marshal(&numbered(7));
    p.publish(&line).await.unwrap();
    assert_eq!(hook.hits.load(Ordering::SeqCst), 3, "two 500s, then 200");
    assert_eq!(
        *hook.bodies.lock().unwrap(),
        [("application/json".to_owned(), line)]
    );
}

#[tokio::test]
async fn http_gives_up_after_the_attempts_and_does_not_retry_4xx() {
    let hook = Arc::new(Hook {
        fail_first: 100,
        status_on_fail: 503,
        ..Hook::default()
    });
    let addr = hook_server(hook.clone()).await;
    let p = HttpPublisher::with_options(format!("http://{addr}/hook"), fast_http());
    let err = p.publish("x").await.expect_err("always 503");
    assert_eq!(hook.hits.load(Ordering::SeqCst), 4);
    assert!(err.to_string().contains("503"), "{err}");

    let bad = Arc::new(Hook {
        fail_first: 100,
        status_on_fail: 400,
        ..Hook::default()
    });
    let addr = hook_server(bad.clone()).await;
    let p = HttpPublisher::with_options(format!("http://{addr}/hook"), fast_http());
    let err = p.publish("x").await.expect_err("400");
    assert_eq!(bad.hits.load(Ordering::SeqCst), 1, "4xx is not retried");
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn http_retries_connection_errors() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let p = HttpPublisher::with_options(
        format!("http://{addr}/hook"),
        HttpOptions {
            attempts: 3,
            ..fast_http()
        },
    );
    let started = Instant::now();
    let err = p.publish("x").await.expect_err("nobody listens");
    // Two backoff pauses of 10 ms and 20 ms happened.
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert!(
        err.to_string()
            .starts_with(&format!("http:http://{addr}/hook: ")),
        "{err}"
    );
}

#[tokio::test]
async fn specs_build_working_publishers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.log");
    let p = clew_events::publisher_from_spec(&format!("file:{}", path.display()))
        .await
        .unwrap();
    p.publish("via spec").await.unwrap();
    assert_eq!(read_lines(&path), ["via spec"]);

    // HTTP sinks send the marshaller's content type.
    let hook = Arc::new(Hook::default());
    let addr = hook_server(hook.clone()).await;
    let logfmt = clew_events::marshaller_from_name("logfmt").unwrap();
    let p = clew_events::publisher_from_spec_with(
        &format!("http:http://{addr}/hook"),
        logfmt.content_type(),
    )
    .await
    .unwrap();
    let line = logfmt.marshal(&numbered(3));
    p.publish(&line).await.unwrap();
    assert_eq!(
        *hook.bodies.lock().unwrap(),
        [("text/plain; charset=utf-8".to_owned(), line)]
    );
}
