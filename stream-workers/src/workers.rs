//! [`StreamWorkers`]: one [`PartitionWorker`] task per owned partition of
//! the workspace topics it watches, plus the lake maintenance task
//! ([`crate::maintenance`]).
//!
//! Which partitions this process owns is a [`Membership`]'s decision: all of
//! them ([`crate::AllPartitions`], one process) or this member's share of a
//! Kafka consumer group (`log_kafka::KafkaMembership`). The membership
//! reports changes through [`PartitionOwner`]:
//!
//! ```text
//!  watch_workspace(ws, topic) ──► Membership::watch_topic(topic)
//!                                        │
//!        assigned([topic/p, …]) ◄────────┤  start a worker task per partition
//!        revoked([topic/p, …])  ◄────────┘  stop those workers (commit what they
//!                                           buffered, no drain), then return
//! ```
//!
//! A worker fenced ([`Error::Fenced`]: another process committed for its
//! partition) while its partition is still owned here starts over from the
//! tables' transaction versions instead of stopping for good: the other
//! process was a previous owner finishing its last commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use common::clock::Clock;
use common::limits::Overrides;
use common::log::Log;
use common::membership::{Membership, PartitionOwner, TopicPartition};
use common::seams::{
    LogPosition, MetricMetadata, SampleReader, SeamError, Selected, SelectedSeries, Selection, WorkspaceData,
};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::StreamWorkersConfig;
use crate::error::{Error, Result};
use crate::head::{Heads, PartitionHead};
use crate::maintenance::{Maintenance, MaintenanceReport};
use crate::metrics::{Metrics, WorkspaceLabels};
use crate::scan;
use crate::worker::{PartitionWorker, Progress, Shared};
use crate::writer::TableWriter;

/// The applied-offset watch of each (workspace, partition) started.
type AppliedWatches = HashMap<(String, u32), watch::Receiver<Progress>>;

/// How long a revocation waits for the partition's worker to commit what it
/// buffered and stop before aborting it (its next owner re-reads the
/// records; fencing keeps the lake exact either way).
const REVOKE_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The running stream workers of this process.
#[derive(Debug)]
pub struct StreamWorkers {
    owned: Arc<Owned>,
    membership: Arc<dyn Membership>,
    maintenance: Arc<Maintenance>,
    maintenance_task: StdMutex<Option<JoinHandle<()>>>,
}

/// The partitions this process owns and their worker tasks: what the
/// membership's [`PartitionOwner`] calls act on.
#[derive(Debug)]
struct Owned {
    shared: Shared,
    /// Cancelled at shutdown; every worker's stop token is a child.
    shutdown: CancellationToken,
    /// Workspace id of each watched samples topic.
    topics: StdMutex<HashMap<String, String>>,
    /// Partition count of each watched topic.
    partition_counts: StdMutex<HashMap<String, u32>>,
    running: StdMutex<HashMap<TopicPartition, Running>>,
    applied: StdMutex<AppliedWatches>,
    /// Every owned partition's head, read by [`SampleReader::select`].
    heads: Arc<Heads>,
}

/// A worker task of an owned partition.
#[derive(Debug)]
struct Running {
    workspace_id: String,
    /// Cancelled when the partition is revoked (or at shutdown).
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn lock<T>(m: &StdMutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: a panic elsewhere cannot leave them torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the stream workers (no workspace yet: see
/// [`StreamWorkers::watch_workspace`]) and their lake maintenance task,
/// registering their metrics, and joins `membership`, which decides which
/// partitions of the watched workspaces this process works on.
/// Per-workspace limits (out-of-order window, retention) are read from
/// `overrides` whenever they are needed, so a replaced limit applies without
/// a restart; "now" for retention and vacuum comes from `clock`.
///
/// # Errors
/// [`Error::Log`] when the membership cannot be joined.
pub async fn start(
    config: StreamWorkersConfig,
    log: Arc<dyn Log>,
    writer: Arc<dyn TableWriter>,
    overrides: Arc<Overrides>,
    clock: Arc<dyn Clock>,
    membership: Arc<dyn Membership>,
    registry: &mut Registry,
) -> Result<StreamWorkers> {
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
    let heads = Arc::new(Heads::new(config.head_max_bytes, metrics.head_bytes.clone()));
    let owned = Arc::new(Owned {
        heads,
        shared: Shared { log, writer, config, overrides, metrics },
        shutdown: CancellationToken::new(),
        topics: StdMutex::new(HashMap::new()),
        partition_counts: StdMutex::new(HashMap::new()),
        running: StdMutex::new(HashMap::new()),
        applied: StdMutex::new(HashMap::new()),
    });
    // The membership holds only a weak reference: dropping the workers (a
    // simulated crash in tests) drops `Owned`, which aborts its tasks.
    membership
        .join(Arc::new(OwnerRef(Arc::downgrade(&owned))))
        .await
        .map_err(|e| Error::log("joining the stream workers' membership", e))?;
    let task = tokio::spawn(maintenance.clone().run(owned.shutdown.child_token()));
    Ok(StreamWorkers { owned, membership, maintenance, maintenance_task: StdMutex::new(Some(task)) })
}

impl StreamWorkers {
    /// Watches the workspace's samples topic `topic`: the membership assigns
    /// this process its partitions (all of them, or its share of a consumer
    /// group), each gets a worker; returns the topic's partition count.
    /// Calling it again for a watched workspace does nothing more.
    ///
    /// # Errors
    /// [`Error::Log`] when the topic's partition count cannot be read or the
    /// membership cannot watch the topic.
    pub async fn watch_workspace(&self, workspace_id: &str, topic: &str) -> Result<u32> {
        let partitions = self
            .owned
            .shared
            .log
            .partition_count(topic)
            .await
            .map_err(|e| Error::log(format!("reading the partition count of {topic}"), e))?;
        lock(&self.owned.topics).insert(topic.to_owned(), workspace_id.to_owned());
        lock(&self.owned.partition_counts).insert(topic.to_owned(), partitions);
        lock(&self.maintenance.workspaces).insert(workspace_id.to_owned());
        self.membership.watch_topic(topic).await.map_err(|e| Error::log(format!("watching {topic}"), e))?;
        Ok(partitions)
    }

    /// Whether this process owns the share `hash` of a workspace's work:
    /// it runs the worker of partition `hash mod partitions` of the
    /// workspace's topic. Shares move with the partitions, so each is
    /// owned by one process at a time (the ruler's groups are shares).
    pub fn owns_share(&self, workspace_id: &str, hash: u64) -> bool {
        let topic = lock(&self.owned.topics).iter().find(|(_, ws)| *ws == workspace_id).map(|(t, _)| t.clone());
        let Some(topic) = topic else { return false };
        let Some(count) = lock(&self.owned.partition_counts).get(&topic).copied().filter(|c| *c > 0) else {
            return false;
        };
        let partition = u32::try_from(hash % u64::from(count)).unwrap_or(0);
        lock(&self.owned.running).contains_key(&TopicPartition::new(topic, partition))
    }

    /// The partitions this process runs a worker for, in order.
    pub fn owned_partitions(&self) -> Vec<TopicPartition> {
        let mut owned: Vec<TopicPartition> = lock(&self.owned.running).keys().cloned().collect();
        owned.sort();
        owned
    }

    /// Waits until `offset` of the workspace's `partition` is committed to
    /// every lake table.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout`; [`Error::NoWorker`] when no
    /// worker runs here (or the worker stopped) for the partition.
    pub async fn wait_for_offset(
        &self,
        workspace_id: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<()> {
        self.wait_until(workspace_id, partition, offset, timeout, |p| p.committed).await
    }

    /// Waits until every (partition, offset) of `position` is `reached`,
    /// all within `timeout`.
    async fn wait_for_all(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
        reached: fn(&Progress) -> Option<u64>,
    ) -> Result<(), SeamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for &(partition, offset) in position {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_until(workspace_id, partition, offset, left, reached)
                .await
                .map_err(|e| SeamError { kind: e.kind(), message: e.to_string() })?;
        }
        Ok(())
    }

    async fn wait_until(
        &self,
        workspace_id: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
        reached: fn(&Progress) -> Option<u64>,
    ) -> Result<()> {
        let no_worker = || Error::NoWorker { workspace_id: workspace_id.to_owned(), partition };
        let mut rx =
            lock(&self.owned.applied).get(&(workspace_id.to_owned(), partition)).cloned().ok_or_else(no_worker)?;
        let timed_out =
            || Error::Timeout { partition, offset, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) };
        match tokio::time::timeout(timeout, rx.wait_for(|p| reached(p).is_some_and(|a| a >= offset))).await {
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
    /// flushing (what they buffered is deleted anyway), stops watching its
    /// topic and maintaining it, and deletes its tables
    /// (`<lake>/<workspaceId>/`). The caller (the control plane's workspace
    /// deletion) deletes its log topic. Calling it for an unknown workspace
    /// still deletes whatever tables it has.
    ///
    /// # Errors
    /// [`Error::Delta`] when deleting the tables fails; calling again
    /// finishes the deletion.
    pub async fn forget_workspace(&self, workspace_id: &str) -> Result<()> {
        let topics: Vec<String> = {
            let mut map = lock(&self.owned.topics);
            let topics: Vec<String> =
                map.iter().filter(|(_, ws)| *ws == workspace_id).map(|(t, _)| t.clone()).collect();
            map.retain(|_, ws| ws != workspace_id);
            lock(&self.owned.partition_counts).retain(|t, _| !topics.contains(t));
            topics
        };
        let stopped: Vec<Running> = {
            let mut running = lock(&self.owned.running);
            let keys: Vec<TopicPartition> =
                running.iter().filter(|(_, r)| r.workspace_id == workspace_id).map(|(k, _)| k.clone()).collect();
            keys.iter().filter_map(|k| running.remove(k)).collect()
        };
        for r in &stopped {
            r.task.abort();
            self.owned.owned_gauge(workspace_id).dec();
        }
        for r in stopped {
            let _ = r.task.await;
        }
        lock(&self.owned.applied).retain(|(ws, _), _| ws != workspace_id);
        self.owned.heads.remove_workspace(workspace_id);
        for topic in topics {
            if let Err(e) = self.membership.unwatch_topic(&topic).await {
                warn!(%topic, error = %e, "Could not stop watching a deleted workspace's topic.");
            }
        }
        lock(&self.maintenance.workspaces).remove(workspace_id);
        let _no_pass = self.maintenance.lock.lock().await;
        self.owned.shared.writer.delete_workspace(workspace_id).await?;
        info!(workspace = %workspace_id, "Workspace's stream workers stopped and tables deleted.");
        Ok(())
    }

    /// Stops every worker after it drained the log and committed what it
    /// buffered, then leaves the membership (a Kafka member leaves its group,
    /// so the others take its partitions over at once), and stops the
    /// maintenance task (a pass in progress is abandoned: every step of it is
    /// safe to interrupt).
    ///
    /// Takes `&self`: whoever still holds the workers (the query API, the
    /// control plane, a connection not yet dropped) cannot keep the buffers
    /// from being drained and committed.
    pub async fn shutdown(&self) {
        self.owned.shutdown.cancel();
        let task = lock(&self.maintenance_task).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        let all: Vec<Running> = lock(&self.owned.running).drain().map(|(_, r)| r).collect();
        for r in all {
            if let Err(e) = r.task.await {
                error!(error = %e, "Stream worker task panicked.");
            }
        }
        self.membership.leave().await;
    }
}

impl Drop for StreamWorkers {
    fn drop(&mut self) {
        // Without `shutdown` (a crash in tests): abandon everything, as a
        // killed process would. `Owned`'s own drop aborts its tasks too, but
        // a membership callback in progress may still hold it briefly.
        if let Some(task) = lock(&self.maintenance_task).take() {
            task.abort();
        }
        for (_, r) in lock(&self.owned.running).drain() {
            r.task.abort();
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        for (_, r) in lock(&self.running).drain() {
            r.task.abort();
        }
    }
}

impl Owned {
    fn owned_gauge(&self, workspace_id: &str) -> prometheus_client::metrics::gauge::Gauge {
        let labels = WorkspaceLabels { workspace: workspace_id.to_owned() };
        self.shared.metrics.owned_partitions.get_or_create(&labels).clone()
    }

    /// Starts a worker for each partition of a watched topic that has none.
    fn start_workers(&self, partitions: Vec<TopicPartition>) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let topics = lock(&self.topics);
        let mut running = lock(&self.running);
        let mut applied = lock(&self.applied);
        for tp in partitions {
            let Some(workspace_id) = topics.get(&tp.topic).cloned() else {
                warn!(partition = %tp, "Assigned a partition of a topic no workspace here watches; ignored.");
                continue;
            };
            if running.get(&tp).is_some_and(|r| !r.task.is_finished()) {
                continue;
            }
            let (tx, rx) = watch::channel(Progress::default());
            applied.insert((workspace_id.clone(), tp.partition), rx);
            let stop = self.shutdown.child_token();
            let task = tokio::spawn(run_partition(
                self.shared.clone(),
                HeadGuard::new(&self.heads, &workspace_id, tp.partition),
                workspace_id.clone(),
                tp.clone(),
                tx,
                stop.clone(),
                self.shutdown.clone(),
            ));
            info!(partition = %tp, workspace = %workspace_id, "Partition assigned: stream worker started.");
            self.owned_gauge(&workspace_id).inc();
            running.insert(tp, Running { workspace_id, stop, task });
        }
    }

    /// Stops the workers of `partitions` (each commits what it buffered),
    /// waiting up to [`REVOKE_STOP_TIMEOUT`] before aborting them.
    async fn stop_workers(&self, partitions: Vec<TopicPartition>) {
        let stopped: Vec<(TopicPartition, Running)> = {
            let mut running = lock(&self.running);
            partitions.into_iter().filter_map(|tp| running.remove(&tp).map(|r| (tp, r))).collect()
        };
        {
            let mut applied = lock(&self.applied);
            for (tp, r) in &stopped {
                r.stop.cancel();
                self.owned_gauge(&r.workspace_id).dec();
                applied.remove(&(r.workspace_id.clone(), tp.partition));
            }
        }
        let deadline = tokio::time::Instant::now() + REVOKE_STOP_TIMEOUT;
        for (tp, r) in stopped {
            let abort = r.task.abort_handle();
            match tokio::time::timeout_at(deadline, r.task).await {
                Ok(_) => info!(partition = %tp, "Partition revoked: stream worker stopped."),
                Err(_) => {
                    abort.abort();
                    warn!(partition = %tp, "Partition revoked: stream worker did not stop in time; aborted.");
                }
            }
        }
    }
}

/// The [`PartitionOwner`] given to the membership: a weak reference, so the
/// membership does not keep the workers alive.
struct OwnerRef(Weak<Owned>);

#[async_trait]
impl PartitionOwner for OwnerRef {
    async fn assigned(&self, partitions: Vec<TopicPartition>) {
        if let Some(owned) = self.0.upgrade() {
            owned.start_workers(partitions);
        }
    }

    async fn revoked(&self, partitions: Vec<TopicPartition>) {
        if let Some(owned) = self.0.upgrade() {
            owned.stop_workers(partitions).await;
        }
    }
}

/// A partition's head, registered for readers while its task runs and
/// removed when the task ends or is aborted.
struct HeadGuard {
    heads: Arc<Heads>,
    workspace_id: String,
    head: Arc<PartitionHead>,
}

impl HeadGuard {
    fn new(heads: &Arc<Heads>, workspace_id: &str, partition: u32) -> Self {
        let head = heads.create(workspace_id, partition);
        Self { heads: heads.clone(), workspace_id: workspace_id.to_owned(), head }
    }
}

impl Drop for HeadGuard {
    fn drop(&mut self) {
        self.heads.remove(&self.workspace_id, &self.head);
    }
}

/// One owned partition's task: runs a [`PartitionWorker`] until `stop`
/// fires; starts a fresh one (from the tables' versions) when fenced while
/// still owned.
async fn run_partition(
    shared: Shared,
    head: HeadGuard,
    workspace_id: String,
    tp: TopicPartition,
    applied: watch::Sender<Progress>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let backoff = Duration::from_millis(shared.config.retry_backoff_ms);
    loop {
        let worker =
            PartitionWorker::new(&shared, &workspace_id, &tp.topic, tp.partition, applied.clone(), head.head.clone());
        match worker.run_until(&stop, Some(&shutdown)).await {
            Ok(()) => {
                info!(partition = %tp, "Stream worker stopped.");
                return;
            }
            Err(e @ Error::Fenced { .. }) if !stop.is_cancelled() => {
                // A previous owner's last commit landed after this worker
                // read the versions. Start over from the tables.
                warn!(partition = %tp, error = %e, "Stream worker fenced while its partition is owned here; resuming from the tables.");
                let labels = WorkspaceLabels { workspace: workspace_id.clone() };
                shared.metrics.fenced.get_or_create(&labels).inc();
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
            Err(e) if stop.is_cancelled() => {
                warn!(partition = %tp, error = %e, "Stream worker stopped; its last commit failed (the next owner re-reads).");
                return;
            }
            Err(e) => {
                error!(partition = %tp, error = %e, "Stream worker failed.");
                return;
            }
        }
    }
}

#[async_trait]
impl WorkspaceData for StreamWorkers {
    async fn delete_workspace_data(&self, workspace_id: &str) -> Result<(), SeamError> {
        self.forget_workspace(workspace_id).await.map_err(|e| SeamError { kind: e.kind(), message: e.to_string() })
    }
}

#[async_trait]
impl SampleReader for StreamWorkers {
    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<Selected, SeamError> {
        // The heads first, then the tables (see `head.rs` for why this
        // order needs no retry).
        let mut head_rows = Vec::new();
        for head in self.owned.heads.of(workspace_id) {
            head_rows.push(head.select(selection));
        }
        let tables = self
            .owned
            .shared
            .writer
            .select(workspace_id, selection)
            .await
            .map_err(|e| SeamError { kind: e.kind(), message: e.to_string() })?;
        let mut stats = tables.stats;
        let mut series = tables.series;
        for rows in head_rows {
            for (id, (labels, samples)) in rows {
                stats.head_samples += samples.len();
                series.entry(id).or_insert_with(|| (labels, Vec::new())).1.extend(samples);
            }
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
        Ok(Selected { series: out, stats })
    }

    async fn metadata(&self, workspace_id: &str) -> Result<Vec<MetricMetadata>, SeamError> {
        self.owned
            .shared
            .writer
            .metadata(workspace_id)
            .await
            .map_err(|e| SeamError { kind: e.kind(), message: e.to_string() })
    }

    async fn wait_for_position(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError> {
        self.wait_for_all(workspace_id, position, timeout, |p| p.committed).await
    }

    /// Partitions another process owns are not waited on: this process
    /// reads them from the tables, once their owner commits.
    async fn wait_until_readable(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError> {
        let here: LogPosition = {
            let applied = lock(&self.owned.applied);
            position.iter().filter(|(p, _)| applied.contains_key(&(workspace_id.to_owned(), *p))).copied().collect()
        };
        self.wait_for_all(workspace_id, &here, timeout, |p| p.readable).await
    }
}
