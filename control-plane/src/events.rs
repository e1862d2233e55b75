//! The log-backed [`EventSink`]: workspace events appended to the `_events`
//! topic (one partition, key = workspace id, value = the event's JSON,
//! records older than the retention deleted), in order, by one background
//! task. A full queue drops the newest event and counts it; a failed
//! append is logged and its events dropped: events are diagnostics, never
//! a reason to slow or fail an evaluation.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::events::{EventSink, WorkspaceEvent};
use common::log::{CleanupPolicy, Log, LogResult, Record, TopicSpec};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use schemas::topics::EVENTS_TOPIC;
use tokio::sync::mpsc;

/// Events waiting to be appended, at most.
const QUEUE: usize = 10_000;
/// Events per append, at most.
const BATCH: usize = 500;

/// Records events in the `_events` topic.
#[derive(Debug)]
pub struct LogEvents {
    tx: mpsc::Sender<WorkspaceEvent>,
    dropped: Counter,
}

impl LogEvents {
    /// Creates the `_events` topic if needed (records kept `retention`) and
    /// starts appending; the task ends when every `LogEvents` is dropped,
    /// after appending what was queued. `promlake_events_dropped_total`
    /// counts what a full queue dropped.
    ///
    /// # Errors
    ///
    /// The topic cannot be created.
    pub async fn start(log: Arc<dyn Log>, retention: Duration, registry: &mut Registry) -> LogResult<Arc<Self>> {
        log.ensure_topic(EVENTS_TOPIC, TopicSpec { partitions: 1, cleanup: CleanupPolicy::Delete { retention } })
            .await?;
        let (tx, mut rx) = mpsc::channel::<WorkspaceEvent>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let records: Vec<Record> = batch
                    .drain(..)
                    .filter_map(|e| {
                        let value = serde_json::to_vec(&e).ok()?;
                        Some(Record {
                            key: Some(Bytes::from(e.workspace_id.into_bytes())),
                            value: Some(Bytes::from(value)),
                            timestamp_ms: common::clock::Clock::now_ms(&common::clock::SystemClock),
                        })
                    })
                    .collect();
                let n = records.len();
                if let Err(e) = log.append(EVENTS_TOPIC, 0, records).await {
                    tracing::warn!(events = n, error = %e, "Recording workspace events failed; they are dropped.");
                }
            }
        });
        let dropped = Counter::default();
        registry.register(
            "promlake_events_dropped",
            "Workspace events dropped because the queue was full.",
            dropped.clone(),
        );
        Ok(Arc::new(Self { tx, dropped }))
    }
}

impl EventSink for LogEvents {
    fn record(&self, event: WorkspaceEvent) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.inc() + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "The workspace event queue is full; dropping events.");
            }
        }
    }
}
