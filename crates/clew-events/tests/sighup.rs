//! SIGHUP reopens a file publisher (logrotate). Its own test binary: the
//! signal goes to this whole process.

mod common;

use std::sync::Arc;

use clew_events::{reopen_on_sighup, FilePublisher, Publisher};
use common::wait_for;

#[tokio::test]
async fn sighup_reopens_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clues.log");
    let rotated = dir.path().join("clues.log.1");
    let p = Arc::new(FilePublisher::open(&path).await.unwrap());
    let task = reopen_on_sighup(p.clone()).unwrap();
    p.publish("before").await.unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
    // Once reopened, the path exists again (created by the reopen).
    wait_for("the file to be reopened", || path.exists()).await;
    p.publish("after").await.unwrap();
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "before\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    task.abort();
}
