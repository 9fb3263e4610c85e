//! `POST /v1/wait`: idle workers wait for a job instead of polling.

mod server_harness;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use server_harness::{json_of, test_mode, TestServer};

async fn wait(s: &TestServer, body: Value) -> (StatusCode, Value) {
    json_of(
        s.client
            .post(s.url("/v1/wait"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn put(s: &TestServer, queue: &str) {
    let r = s
        .client
        .post(s.url(&format!("/v1/queues/{queue}/jobs")))
        .json(&json!({"klass": "K"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_job_answers_at_once_and_a_put_wakes_a_waiter() {
    let s = TestServer::start(test_mode()).await;
    put(&s, "b").await;
    let (status, body) = wait(&s, json!({"queues": ["a", "b"], "timeout": 5})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ready": true, "queue": "b"}));

    // A waiter on an empty queue is answered by the put, well before its
    // 20 s timeout (no polling interval involved).
    let waiter = {
        let client = s.client.clone();
        let url = s.url("/v1/wait");
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .json(&json!({"queues": ["empty"], "timeout": 20}))
                .send()
                .await
                .unwrap();
            (r.json::<Value>().await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    put(&s, "empty").await;
    let (body, took) = waiter.await.unwrap();
    assert_eq!(body, json!({"ready": true, "queue": "empty"}));
    assert!(
        took < Duration::from_secs(15),
        "woken by the put, not the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_ready_answers_false_at_the_timeout_and_bad_input_is_refused() {
    let s = TestServer::start(test_mode()).await;
    let (status, body) = wait(&s, json!({"queues": ["q"], "timeout": 0.3})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ready": false}));
    for (bad, word) in [
        (json!({"queues": [], "timeout": 1}), "queues"),
        (json!({"queues": ["q"], "timeout": 31}), "timeout"),
        (json!({"queues": ["q"], "timeout": -1}), "timeout"),
        (json!({"queues": ["q"]}), "timeout"),
    ] {
        let (status, body) = wait(&s, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(word), "{message}");
    }
}
