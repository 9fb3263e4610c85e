//! The worker runtime through a real `clew server` (HTTP on 127.0.0.1,
//! port 0, with a token) over a temporary SQLite store.

mod runtime_support;

use std::time::Duration;

use clew_client::Client;
use clew_core::Engine;
use clew_server::{AppState, ServerConfig};
use clew_worker::{JobContext, Outcome, Worker};
use runtime_support::*;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "s3cret-token";

/// A server on an ephemeral port; stops when the token is cancelled.
struct Server {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let (store, dir) = clew_sqlite::testing::temp_store();
        let state = AppState::new(
            Engine::new(store),
            ServerConfig {
                token: Some(TOKEN.into()),
                ..ServerConfig::default()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let task = tokio::spawn(clew_server::serve(listener, state, async move {
            shutdown.cancelled().await
        }));
        Server {
            url,
            stop,
            task,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::remote(&self.url, Some(TOKEN.into())).expect("client")
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("server task").expect("server ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_worker_completes_fails_and_retries() {
    let server = Server::start().await;
    let client = server.client();
    let ok = put(&client, "q", "Ok", 5).await;
    let bad = put(&client, "q", "Bad", 5).await;
    let again = put(&client, "q", "Again", 5).await;
    let handler = FnHandler(|job: clew_worker::Job, _ctx| async move {
        match job.klass.as_str() {
            "Ok" => Outcome::complete(),
            "Bad" => Outcome::fail("Bad:Error", "bad input"),
            _ => Outcome::retry_in(Duration::from_secs(60)),
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-remote", &["q"]),
    ));
    wait_state(&client, &ok, "complete").await;
    let failed = wait_state(&client, &bad, "failed").await;
    let retried = wait_state(&client, &again, "scheduled").await;
    let report = finish(&control, run).await;
    assert_eq!(failed.failure_group(), Some("Bad:Error"));
    assert_eq!(retried.remaining, 4);
    assert_eq!((report.completed, report.failed, report.retried), (1, 1, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_worker_heartbeats_and_releases_on_stop_now() {
    let server = Server::start().await;
    let client = server.client();
    config_set(&client, "heartbeat", "1").await;
    config_set(&client, "grace-period", "0").await;
    let jid = put(&client, "q", "Long", 2).await;
    let started = Flag::default();
    let handler = FnHandler({
        let started = started.clone();
        move |_job, ctx: JobContext| {
            let started = started.clone();
            async move {
                started.set();
                ctx.cancelled().await;
                Outcome::complete()
            }
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-remote-hb", &["q"]),
    ));
    started.wait("the job to start").await;

    // Until the lock has been renewed two lock lengths past its first
    // expiry, another worker keeps trying to take the job: with its lock
    // lapsed it would get it.
    let first_expiry = job(&client, &jid).await.expect("job").expires;
    wait_for("the lock to be renewed twice over", || async {
        let stolen = client.pop("q", "thief", 1).await.expect("pop");
        assert!(stolen.is_empty(), "the lock lapsed: {stolen:?}");
        job(&client, &jid).await.expect("job").expires >= first_expiry + 2.0
    })
    .await;
    let running = job(&client, &jid).await.expect("job");
    assert_eq!(
        (running.state.as_str(), running.worker.as_str()),
        ("running", "w-remote-hb")
    );

    control.stop_now();
    let report = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("stops")
        .expect("no panic");
    assert_eq!(report.released, 1);
    assert_eq!(report.unfinished, vec![jid.clone()]);
    let j = job(&client, &jid).await.expect("job");
    assert_eq!((j.state.as_str(), j.remaining), ("waiting", 2));
    server.stop().await;
}

/// Posts `body` to `path` with the token; returns the status and JSON body.
async fn post(server: &Server, path: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_release_route_hands_a_running_job_back_to_its_holder_only() {
    let server = Server::start().await;
    let client = server.client();
    let jid = put(&client, "q", "K", 3).await;
    let popped = client.pop("q", "holder", 1).await.expect("pop");
    assert_eq!(popped.len(), 1);
    let path = format!("/v1/jobs/{jid}/release");

    let (status, body) = post(&server, &path, "{}").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("worker"),
        "names the missing field: {body}"
    );
    let (status, body) = post(&server, &path, r#"{"worker": "someone-else"}"#).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = post(&server, "/v1/jobs/nope/release", r#"{"worker": "holder"}"#).await;
    assert_eq!(status, 404, "{body}");
    let j = job(&client, &jid).await.expect("job");
    assert_eq!(
        (j.state.as_str(), j.worker.as_str()),
        ("running", "holder"),
        "refusals change nothing"
    );

    let (status, body) = post(&server, &path, r#"{"worker": "holder"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"jid": jid.clone(), "state": "waiting"})
    );
    let j = job(&client, &jid).await.expect("job");
    assert_eq!(
        (j.state.as_str(), j.worker.as_str(), j.remaining),
        ("waiting", "", 3)
    );
    assert_eq!(
        history_whats(&j).last().map(String::as_str),
        Some("released")
    );

    let (status, body) = post(&server, &path, r#"{"worker": "holder"}"#).await;
    assert_eq!(status, 409, "no longer running: {body}");
    server.stop().await;
}
