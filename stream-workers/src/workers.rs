//! [`StreamWorkers`]: one [`PartitionWorker`] task per partition of every
//! workspace topic it is told to watch, owned in a `JoinSet` per workspace
//! and stopped through a `CancellationToken`; plus the lake maintenance task
//! ([`crate::maintenance`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use common::clock::Clock;
use common::limits::Overrides;
use common::log::Log;
use common::seams::{LogPosition, SampleReader, SeamError, Selected, SelectedSeries, Selection};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::StreamWorkersConfig;
use crate::error::{Error, Result};
use crate::head::{HeadRead, Heads};
use crate::maintenance::{Maintenance, MaintenanceReport};
use crate::metrics::Metrics;
use crate::scan;
use crate::worker::{PartitionWorker, Shared};
use crate::writer::TableWriter;

/// The applied-offset watch of each (workspace, partition) started.
type AppliedWatches = HashMap<(String, u32), watch::Receiver<Option<u64>>>;

/// The running stream workers of this process.
#[derive(Debug)]
pub struct StreamWorkers {
    shared: Shared,
    cancel: CancellationToken,
    /// The partition workers of each watched workspace.
    tasks: StdMutex<HashMap<String, JoinSet<()>>>,
    partitions: StdMutex<AppliedWatches>,
    maintenance: Arc<Maintenance>,
    maintenance_task: StdMutex<Option<tokio::task::JoinHandle<()>>>,
    /// Every partition's head, read by [`SampleReader::select`].
    heads: Arc<Heads>,
}

/// Starts the stream workers (no workspace yet: see
/// [`StreamWorkers::watch_workspace`]) and their lake maintenance task,
/// registering their metrics. Per-workspace limits (out-of-order window,
/// retention) are read from `overrides` whenever they are needed, so a
/// replaced limit applies without a restart; "now" for retention and vacuum
/// comes from `clock`.
pub async fn start(
    config: StreamWorkersConfig,
    log: Arc<dyn Log>,
    writer: Arc<dyn TableWriter>,
    overrides: Arc<Overrides>,
    clock: Arc<dyn Clock>,
    registry: &mut Registry,
) -> StreamWorkers {
    let metrics = Metrics::new(registry);
    let maintenance = Arc::new(Maintenance {
        writer: writer.clone(),
        overrides: overrides.clone(),
        clock,
        config: config.clone(),
        metrics: metrics.clone(),
        workspaces: StdMutex::new(BTreeSet::new()),
        lock: tokio::sync::Mutex::new(()),
    });
    let cancel = CancellationToken::new();
    let task = tokio::spawn(maintenance.clone().run(cancel.child_token()));
    let heads = Arc::new(Heads::new(config.head_max_bytes, metrics.head_bytes.clone()));
    StreamWorkers {
        heads,
        shared: Shared { log, writer, config, overrides, metrics },
        cancel,
        tasks: StdMutex::new(HashMap::new()),
        partitions: StdMutex::new(HashMap::new()),
        maintenance,
        maintenance_task: StdMutex::new(Some(task)),
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
        let mut all_tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let tasks = all_tasks.entry(workspace_id.to_owned()).or_default();
        self.maintenance.workspaces.lock().unwrap_or_else(|p| p.into_inner()).insert(workspace_id.to_owned());
        for partition in 0..partitions {
            let key = (workspace_id.to_owned(), partition);
            if watches.contains_key(&key) {
                continue;
            }
            let (tx, rx) = watch::channel(None);
            watches.insert(key, rx);
            let head = self.heads.create(workspace_id, partition);
            let worker = PartitionWorker::new(&self.shared, workspace_id, topic, partition, tx, head.clone());
            let cancel = self.cancel.child_token();
            let app_id = worker.app_id().to_owned();
            let (heads, workspace) = (self.heads.clone(), workspace_id.to_owned());
            tasks.spawn(async move {
                match worker.run(cancel).await {
                    Ok(()) => info!(%app_id, "Stream worker stopped."),
                    Err(e) => error!(%app_id, error = %e, "Stream worker failed."),
                }
                heads.remove(&workspace, &head);
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

    /// Runs one lake maintenance pass now (retention, then vacuum, for every
    /// watched workspace), as the background task does every
    /// [`StreamWorkersConfig::maintenance_interval_ms`]; waits for a pass in
    /// progress first.
    ///
    /// # Errors
    /// The first workspace's failure; the others were still maintained.
    pub async fn run_maintenance(&self) -> Result<MaintenanceReport> {
        self.maintenance.run_once().await
    }

    /// Forgets a deleted workspace: stops its partition workers without
    /// flushing (what they buffered is deleted anyway), stops maintaining
    /// it, and deletes its tables (`<lake>/<workspaceId>/`). The caller (the
    /// control plane's workspace deletion) deletes its log topic. Calling it
    /// for an unknown workspace still deletes whatever tables it has.
    ///
    /// # Errors
    /// [`Error::Delta`] when deleting the tables fails; calling again
    /// finishes the deletion.
    pub async fn forget_workspace(&self, workspace_id: &str) -> Result<()> {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(workspace_id);
        if let Some(mut tasks) = tasks {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        self.partitions.lock().unwrap_or_else(|p| p.into_inner()).retain(|(ws, _), _| ws != workspace_id);
        self.heads.remove_workspace(workspace_id);
        self.maintenance.workspaces.lock().unwrap_or_else(|p| p.into_inner()).remove(workspace_id);
        let _no_pass = self.maintenance.lock.lock().await;
        self.shared.writer.delete_workspace(workspace_id).await?;
        info!(workspace = %workspace_id, "Workspace's stream workers stopped and tables deleted.");
        Ok(())
    }

    /// Stops every worker after it flushed and committed what it buffered,
    /// and the maintenance task (a pass in progress is abandoned: every step
    /// of it is safe to interrupt).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let task = self.maintenance_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        let all = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, mut tasks) in all {
            while let Some(joined) = tasks.join_next().await {
                if let Err(e) = joined {
                    error!(error = %e, "Stream worker task panicked.");
                }
            }
        }
    }
}

/// How often a selection loads the tables again because a flush dropped
/// rows from the head that its snapshot does not hold yet.
const SELECT_ATTEMPTS: usize = 10;

#[async_trait]
impl SampleReader for StreamWorkers {
    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<Selected, SeamError> {
        let seam = |e: Error| SeamError { kind: e.kind(), message: e.to_string() };
        for _ in 0..SELECT_ATTEMPTS {
            let tables = self.shared.writer.select(workspace_id, selection).await.map_err(seam)?;
            let mut stats = tables.stats;
            let mut series = tables.series;
            let mut stale = false;
            for head in self.heads.of(workspace_id) {
                match head.select(selection, tables.samples_version, tables.series_version) {
                    HeadRead::Stale => {
                        stale = true;
                        break;
                    }
                    HeadRead::Rows(rows) => {
                        for (id, (labels, samples)) in rows {
                            stats.head_samples += samples.len();
                            series.entry(id).or_insert_with(|| (labels, Vec::new())).1.extend(samples);
                        }
                    }
                }
            }
            if stale {
                continue;
            }
            let mut out: Vec<SelectedSeries> = series
                .into_values()
                .filter(|(_, samples)| !samples.is_empty())
                .map(|(labels, mut samples)| {
                    scan::normalize(&mut samples);
                    SelectedSeries { labels, samples }
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(Selected { series: out, stats });
        }
        Err(SeamError {
            kind: common::ErrorKind::Unavailable,
            message: format!(
                "workspace {workspace_id}: the tables changed under {SELECT_ATTEMPTS} reads in a row; try again"
            ),
        })
    }

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
