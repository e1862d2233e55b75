//! [`StreamWorkers`]: one [`PartitionWorker`] task per partition of every
//! workspace topic it is told to watch, owned in a `JoinSet` and stopped
//! through a `CancellationToken`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use common::log::Log;
use common::seams::{LogPosition, SampleReader, SeamError};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::StreamWorkersConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::worker::{PartitionWorker, Shared};
use crate::writer::TableWriter;

/// The applied-offset watch of each (workspace, partition) started.
type AppliedWatches = HashMap<(String, u32), watch::Receiver<Option<u64>>>;

/// The running stream workers of this process.
#[derive(Debug)]
pub struct StreamWorkers {
    shared: Shared,
    cancel: CancellationToken,
    tasks: StdMutex<JoinSet<()>>,
    partitions: StdMutex<AppliedWatches>,
}

/// Starts the stream workers (no workspace yet: see
/// [`StreamWorkers::watch_workspace`]), registering their metrics.
pub async fn start(
    config: StreamWorkersConfig,
    log: Arc<dyn Log>,
    writer: Arc<dyn TableWriter>,
    registry: &mut Registry,
) -> StreamWorkers {
    StreamWorkers {
        shared: Shared { log, writer, config, metrics: Metrics::new(registry) },
        cancel: CancellationToken::new(),
        tasks: StdMutex::new(JoinSet::new()),
        partitions: StdMutex::new(HashMap::new()),
    }
}

impl StreamWorkers {
    /// Starts a worker for every partition of `topic` (the samples topic of
    /// `workspace_id`) not already running; returns the partition count.
    /// Calling it again for a watched workspace does nothing more.
    ///
    /// # Errors
    /// [`Error::Log`] when the topic's partition count cannot be read.
    pub async fn watch_workspace(&self, workspace_id: &str, topic: &str) -> Result<u32> {
        let partitions = self
            .shared
            .log
            .partition_count(topic)
            .await
            .map_err(|e| Error::log(format!("reading the partition count of {topic}"), e))?;
        let mut watches = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for partition in 0..partitions {
            let key = (workspace_id.to_owned(), partition);
            if watches.contains_key(&key) {
                continue;
            }
            let (tx, rx) = watch::channel(None);
            watches.insert(key, rx);
            let worker = PartitionWorker::new(&self.shared, workspace_id, topic, partition, tx);
            let cancel = self.cancel.child_token();
            let app_id = worker.app_id().to_owned();
            tasks.spawn(async move {
                match worker.run(cancel).await {
                    Ok(()) => info!(%app_id, "Stream worker stopped."),
                    Err(e) => error!(%app_id, error = %e, "Stream worker failed."),
                }
            });
        }
        Ok(partitions)
    }

    /// Waits until `offset` of the workspace's `partition` is committed to
    /// every lake table.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout`; [`Error::NoWorker`] when no
    /// worker runs (or the worker stopped) for the partition.
    pub async fn wait_for_offset(
        &self,
        workspace_id: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<()> {
        let no_worker = || Error::NoWorker { workspace_id: workspace_id.to_owned(), partition };
        let mut rx = {
            let watches = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            watches.get(&(workspace_id.to_owned(), partition)).cloned().ok_or_else(no_worker)?
        };
        let timed_out =
            || Error::Timeout { partition, offset, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) };
        match tokio::time::timeout(timeout, rx.wait_for(|a| a.is_some_and(|a| a >= offset))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(no_worker()),
            Err(_) => Err(timed_out()),
        }
    }

    /// Stops every worker after it flushed and committed what it buffered.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                error!(error = %e, "Stream worker task panicked.");
            }
        }
    }
}

#[async_trait]
impl SampleReader for StreamWorkers {
    async fn wait_for_position(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for &(partition, offset) in position {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_for_offset(workspace_id, partition, offset, left)
                .await
                .map_err(|e| SeamError { kind: e.kind(), message: e.to_string() })?;
        }
        Ok(())
    }
}
