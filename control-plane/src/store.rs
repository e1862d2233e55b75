//! [`LogControlStore`]: the [`ControlPlaneStore`] materialised from the
//! compacted `_control` topic.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::clock::Clock;
use common::control::{ControlError, ControlPlaneStore, list_prefix};
use common::log::{CleanupPolicy, Log, LogError, Record, TopicSpec};
use schemas::topics::CONTROL_TOPIC;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bytes fetched per read of `_control`.
const FETCH_BYTES: usize = 1 << 20;
/// How long one tail fetch waits for new records.
const TAIL_WAIT: Duration = Duration::from_millis(500);
/// Backoff after a failed tail fetch.
const TAIL_BACKOFF: Duration = Duration::from_secs(1);

/// The control-plane store over the log. Reads are served from memory;
/// writes go through the log and return once this process has applied them.
#[derive(Debug)]
pub struct LogControlStore {
    log: Arc<dyn Log>,
    clock: Arc<dyn Clock>,
    state: Arc<RwLock<BTreeMap<String, serde_json::Value>>>,
    /// The next `_control` offset to apply (everything below is applied).
    applied: watch::Receiver<u64>,
    tail: JoinHandle<()>,
}

impl Drop for LogControlStore {
    fn drop(&mut self) {
        self.tail.abort();
    }
}

impl LogControlStore {
    /// Creates the `_control` topic if needed, replays it completely, then
    /// keeps tailing it in a background task (owned by the store).
    ///
    /// # Errors
    /// When the log cannot be read, or a record is not valid JSON (state
    /// that cannot be read is never silently ignored).
    pub async fn open(log: Arc<dyn Log>, clock: Arc<dyn Clock>) -> Result<Self, ControlError> {
        log.ensure_topic(CONTROL_TOPIC, TopicSpec { partitions: 1, cleanup: CleanupPolicy::Compact }).await?;
        let state = Arc::new(RwLock::new(BTreeMap::new()));
        let mut next = 0;
        loop {
            let fetched = log.fetch(CONTROL_TOPIC, 0, next, FETCH_BYTES, Duration::ZERO).await?;
            if fetched.records.is_empty() {
                // Nothing at or after `next`: the replay has caught up.
                next = next.max(fetched.offsets.high_watermark);
                break;
            }
            next = apply(&state, &fetched.records)?;
        }
        let (tx, applied) = watch::channel(next);
        let tail = tokio::spawn(tail(log.clone(), state.clone(), tx));
        Ok(Self { log, clock, state, applied, tail })
    }

    async fn append_and_wait(&self, arn: &str, value: Option<Bytes>) -> Result<(), ControlError> {
        let record =
            Record { key: Some(Bytes::copy_from_slice(arn.as_bytes())), value, timestamp_ms: self.clock.now_ms() };
        let receipt = self.log.append(CONTROL_TOPIC, 0, vec![record]).await?;
        let mut applied = self.applied.clone();
        applied.wait_for(|next| *next > receipt.last_offset).await.map_err(|_| ControlError::Log(LogError::Closed))?;
        Ok(())
    }
}

/// Applies records to the state; returns the next offset to read.
fn apply(
    state: &RwLock<BTreeMap<String, serde_json::Value>>,
    records: &[common::log::StoredRecord],
) -> Result<u64, ControlError> {
    let mut next = 0;
    let mut map = state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    for r in records {
        next = r.offset + 1;
        let Some(key) = &r.key else { continue };
        let arn = String::from_utf8_lossy(key).into_owned();
        match &r.value {
            None => {
                map.remove(&arn);
            }
            Some(v) => {
                let doc =
                    serde_json::from_slice(v).map_err(|source| ControlError::Document { arn: arn.clone(), source })?;
                map.insert(arn, doc);
            }
        }
    }
    Ok(next)
}

async fn tail(log: Arc<dyn Log>, state: Arc<RwLock<BTreeMap<String, serde_json::Value>>>, applied: watch::Sender<u64>) {
    let mut next = *applied.borrow();
    loop {
        match log.fetch(CONTROL_TOPIC, 0, next, FETCH_BYTES, TAIL_WAIT).await {
            Ok(fetched) if fetched.records.is_empty() => {
                next = next.max(fetched.offsets.log_start);
            }
            Ok(fetched) => match apply(&state, &fetched.records) {
                Ok(n) => {
                    next = n;
                    applied.send_replace(next);
                }
                Err(error) => {
                    tracing::error!(%error, "Skipping control-plane records that cannot be applied.");
                    next = fetched.records.last().map_or(next, |r| r.offset + 1);
                    applied.send_replace(next);
                }
            },
            Err(LogError::Closed) => return,
            Err(error) => {
                tracing::warn!(%error, "Control-plane tail failed; retrying.");
                tokio::time::sleep(TAIL_BACKOFF).await;
            }
        }
    }
}

#[async_trait]
impl ControlPlaneStore for LogControlStore {
    async fn put(&self, arn: &str, document: serde_json::Value) -> Result<(), ControlError> {
        let bytes =
            serde_json::to_vec(&document).map_err(|source| ControlError::Document { arn: arn.into(), source })?;
        self.append_and_wait(arn, Some(Bytes::from(bytes))).await
    }

    async fn delete(&self, arn: &str) -> Result<(), ControlError> {
        self.append_and_wait(arn, None).await
    }

    fn get(&self, arn: &str) -> Option<serde_json::Value> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).get(arn).cloned()
    }

    fn list(&self, arn_prefix: &str) -> Vec<(String, serde_json::Value)> {
        list_prefix(&self.state.read().unwrap_or_else(|p| p.into_inner()), arn_prefix)
    }
}
