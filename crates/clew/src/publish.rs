//! Wiring of lifecycle-event publishing (`--publish SPEC`, `--marshal`) for
//! `clew server`: one delivery loop per sink, reading the store's durable
//! log after that sink's cursor (kept in files under the cursor directory,
//! so a restarted server resumes where each sink stopped).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use clew_core::{Event, LifecycleEvent, Store};
use clew_events::{Delivery, DeliveryHandle, EventSource, FileCursorStore};
use tokio::task::JoinHandle;

/// The store's durable event log, as lifecycle events only.
pub struct StoreSource(pub Arc<dyn Store>);

#[async_trait]
impl EventSource for StoreSource {
    async fn events_after(&self, seq: i64, limit: i64) -> clew_core::Result<Vec<LifecycleEvent>> {
        let events = clew_core::store::events_after_matching(self.0.as_ref(), seq, limit, |e| {
            e.channel == clew_core::logic::LIFECYCLE_CHANNEL
        })
        .await?;
        Ok(events.iter().filter_map(Event::lifecycle).collect())
    }
}

/// Running delivery loops.
pub struct Publishing {
    loops: Vec<(DeliveryHandle, JoinHandle<()>)>,
    publishers: Vec<Arc<dyn clew_events::Publisher>>,
}

impl Publishing {
    /// Starts one delivery loop per spec on `store`'s log.
    pub async fn start(
        store: Arc<dyn Store>,
        specs: &[String],
        marshal: &str,
        cursor_dir: PathBuf,
    ) -> anyhow::Result<Publishing> {
        let mut loops = Vec::new();
        let mut publishers = Vec::new();
        if specs.is_empty() {
            return Ok(Publishing { loops, publishers });
        }
        let marshaller = clew_events::marshaller_from_name(marshal)
            .map_err(|e| anyhow::anyhow!("--marshal: {e}"))?;
        let cursors =
            Arc::new(FileCursorStore::new(&cursor_dir).with_context(|| {
                format!("--cursor-dir: cannot create {}", cursor_dir.display())
            })?);
        let source: Arc<dyn EventSource> = Arc::new(StoreSource(store));
        for spec in specs {
            let publisher = clew_events::publisher_from_spec(spec)
                .await
                .map_err(|e| anyhow::anyhow!("--publish: {e}"))?;
            publishers.push(publisher.clone());
            let delivery = Delivery::new(
                spec.clone(),
                source.clone(),
                publisher,
                marshaller.clone(),
                cursors.clone(),
            );
            loops.push(delivery.spawn());
        }
        Ok(Publishing { loops, publishers })
    }

    /// Handles on the loops (to wake them).
    pub fn handles(&self) -> Vec<DeliveryHandle> {
        self.loops.iter().map(|(h, _)| h.clone()).collect()
    }

    /// The publishers (to reopen files on SIGHUP).
    pub fn publishers(&self) -> Vec<Arc<dyn clew_events::Publisher>> {
        self.publishers.clone()
    }

    /// Stops the loops and waits for them.
    pub async fn stop(self) {
        for (h, _) in &self.loops {
            h.stop();
        }
        for (_, task) in self.loops {
            let _ = task.await;
        }
    }
}
