//! Runtime metadata (resque-clues): what a handler adds with
//! `JobContext::add_metadata` appears on the job's `perform_finished` or
//! `failed` lifecycle event; `_` keys are ignored.

mod runtime_support;

use clew_core::LifecycleKind;
use clew_worker::{Job, JobContext, Outcome, Worker};
use runtime_support::*;

async fn lifecycle(client: &clew_client::Client) -> Vec<clew_core::LifecycleEvent> {
    let engine = client.engine().expect("local client");
    engine
        .store()
        .events_after(0, 10_000)
        .await
        .expect("events")
        .iter()
        .filter_map(clew_core::Event::lifecycle)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handler_metadata_reaches_the_finishing_event() {
    let (client, _dir) = store();
    let ok = put(&client, "q", "Pdf", 5).await;
    let bad = put(&client, "q", "Broken", 5).await;
    let handler = FnHandler(|job: Job, ctx: JobContext| async move {
        ctx.add_metadata("pdf_generation_strategy", "prince");
        ctx.add_metadata("_hostname", "spoofed");
        if job.klass == "Broken" {
            Outcome::fail("Broken:Error", "no")
        } else {
            Outcome::complete()
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-meta", &["q"]),
    ));
    wait_state(&client, &ok, "complete").await;
    wait_state(&client, &bad, "failed").await;
    finish(&control, run).await;

    let events = lifecycle(&client).await;
    let finished = events
        .iter()
        .find(|e| e.jid == ok && e.kind == LifecycleKind::PerformFinished)
        .expect("perform_finished");
    assert_eq!(
        serde_json::Value::Object(finished.metadata.clone()),
        serde_json::json!({"pdf_generation_strategy": "prince"})
    );
    let failed = events
        .iter()
        .find(|e| e.jid == bad && e.kind == LifecycleKind::Failed)
        .expect("failed");
    assert_eq!(failed.metadata["pdf_generation_strategy"], "prince");
    assert!(!failed.metadata.contains_key("_hostname"));
    // Events that happened in this process name it.
    assert_eq!(finished.origin.process, std::process::id());
}
