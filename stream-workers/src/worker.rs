//! [`PartitionWorker`]: one partition of one workspace's samples topic, from
//! the log into the three lake tables, exactly once.
//!
//! ```text
//!            fetch                 decode + dedup            flush (size or age)
//!  log ───────────────► records ───────────────► buffer ─────────────────────────►  samples  ┐ one commit each,
//!  partition p           offsets a..b             rows per table                     series   ├ txn (app id "<topic>/<p>",
//!     ▲                                                                              metadata ┘      version b)
//!     └──── commit_offset(group "stream-workers") after all three, lagging by the dedup horizon
//! ```
//!
//! # Recovery
//!
//! At start the worker reads, for each table `t`, `v_t` = the version of its
//! app id's last transaction (`None`: never). It reads the log from
//! `min(committed consumer offset, min_t(v_t) + 1)` and runs every record
//! through deduplication; a record at offset `o` contributes rows to table
//! `t` only if `o > v_t`. Records at or below every `v_t` therefore only
//! rebuild the deduplication state: the consumer offset is committed
//! `dedup_horizon_ms` (log time) behind what the lake holds, so after a
//! restart the worker has seen every sample committed within that horizon
//! and drops a retried copy of it exactly as it would have without the
//! restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::limits::Overrides;
use common::log::{Log, StoredRecord};
use deltalake::arrow::record_batch::RecordBatch;
use prost::Message;
use schemas::labels::{METRIC_NAME, STALE_NAN_BITS};
use schemas::stream::{WriteBatch, metric_metadata::MetricType};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::StreamWorkersConfig;
use crate::dedup::{Dedup, Fingerprint, Verdict};
use crate::error::{Error, Result};
use crate::head::PartitionHead;
use crate::metrics::{self, CommitLabels, DiscardLabels, Metrics, TableLabels, WorkspaceLabels};
use crate::tables::{self, MetadataRow, SampleRow, SeriesRow, TableKind};
use crate::writer::{AppTransaction, AppendOutcome, TableWriter};

/// How long a worker keeps reading the log at shutdown before its final
/// commit: a clean stop then leaves the lake holding everything acknowledged.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// The consumer group under which workers commit log offsets.
pub const CONSUMER_GROUP: &str = "stream-workers";

/// The Kafka consumer group whose members (one per worker process) split
/// the partitions between them (`log_kafka::KafkaMembership`). It must
/// differ from [`CONSUMER_GROUP`]: the workers' offset commits are
/// "standalone" commits, which Kafka refuses in a group with active members.
pub const MEMBERSHIP_GROUP: &str = "promlake-stream-workers";

/// A table with nothing to write in a flush is still committed (an empty
/// commit advancing its transaction version) at least this often, so a
/// restart never re-reads much more than the dedup horizon.
const EMPTY_COMMIT_INTERVAL: Duration = Duration::from_secs(60);

/// What every partition worker of a process shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) log: Arc<dyn Log>,
    pub(crate) writer: Arc<dyn TableWriter>,
    pub(crate) config: StreamWorkersConfig,
    /// Per-workspace limits: the out-of-order window, the retention.
    pub(crate) overrides: Arc<Overrides>,
    pub(crate) metrics: Metrics,
}

/// Rows waiting for the next flush, and the offsets they cover (the
/// samples themselves wait in the worker's [`PartitionHead`]).
#[derive(Debug, Default)]
struct Buffer {
    series: HashMap<u64, SeriesRow>,
    metadata: Vec<MetadataRow>,
    /// The last offset applied to the buffer.
    last_offset: Option<u64>,
    /// The producer timestamp of that record.
    last_record_ms: i64,
    /// When the first record since the last flush was applied.
    since: Option<Instant>,
}

/// One partition's worker, run with [`PartitionWorker::run`];
/// [`crate::StreamWorkers`] builds and runs one for every partition it owns
/// of the workspaces it watches.
#[derive(Debug)]
pub struct PartitionWorker {
    log: Arc<dyn Log>,
    writer: Arc<dyn TableWriter>,
    config: StreamWorkersConfig,
    overrides: Arc<Overrides>,
    metrics: Metrics,
    workspace_id: String,
    topic: String,
    partition: u32,
    app_id: String,
    applied: watch::Sender<Progress>,
    /// Each table's transaction version for `app_id`, by [`TableKind::ALL`] index.
    versions: [Option<u64>; 3],
    last_commit: [Option<Instant>; 3],
    next_offset: u64,
    dedup: Dedup,
    /// For each series, the `last_timestamp` of the row last written for it.
    series_rows: HashMap<u64, i64>,
    /// For each metric, the metadata last written for it and its timestamp.
    metadata_rows: HashMap<String, (MetricMeta, i64)>,
    buffer: Buffer,
    /// The samples applied and not yet dropped after their commit.
    head: Arc<PartitionHead>,
    /// (producer time of the last record, next offset) of each flush, oldest first.
    flushed: VecDeque<(i64, u64)>,
    consumer_offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct MetricMeta {
    metric_type: &'static str,
    help: String,
    unit: String,
}

fn index(kind: TableKind) -> usize {
    match kind {
        TableKind::Samples => 0,
        TableKind::Series => 1,
        TableKind::Metadata => 2,
    }
}

fn metric_type_name(t: i32) -> &'static str {
    match MetricType::try_from(t) {
        Ok(MetricType::Counter) => "counter",
        Ok(MetricType::Gauge) => "gauge",
        Ok(MetricType::Histogram) => "histogram",
        Ok(MetricType::Gaugehistogram) => "gaugehistogram",
        Ok(MetricType::Summary) => "summary",
        Ok(MetricType::Info) => "info",
        Ok(MetricType::Stateset) => "stateset",
        Ok(MetricType::Unknown) | Err(_) => "unknown",
    }
}

/// How far a partition's worker got, for read-your-writes waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The last offset committed to every table.
    pub(crate) committed: Option<u64>,
    /// The last offset applied to the head or committed: readable through
    /// `select`.
    pub(crate) readable: Option<u64>,
}

impl PartitionWorker {
    /// A worker for one partition; `applied` receives the last offset
    /// committed to every table and the last one readable.
    pub(crate) fn new(
        shared: &Shared,
        workspace_id: &str,
        topic: &str,
        partition: u32,
        applied: watch::Sender<Progress>,
        head: Arc<PartitionHead>,
    ) -> Self {
        let Shared { log, writer, config, overrides, metrics } = shared.clone();
        Self {
            log,
            writer,
            dedup: Dedup::new(overrides.out_of_order_window_ms(workspace_id)),
            config,
            overrides,
            metrics,
            workspace_id: workspace_id.to_owned(),
            topic: topic.to_owned(),
            partition,
            app_id: format!("{topic}/{partition}"),
            applied,
            versions: [None; 3],
            last_commit: [None; 3],
            next_offset: 0,
            series_rows: HashMap::new(),
            metadata_rows: HashMap::new(),
            buffer: Buffer::default(),
            head,
            flushed: VecDeque::new(),
            consumer_offset: None,
        }
    }

    /// The application id of this partition's commits: `<topic>/<partition>`.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Runs until `cancel` fires, then flushes and commits what is buffered.
    ///
    /// # Errors
    /// Fatal conditions only (transient log and lake failures are retried):
    /// an undecodable record ([`Error::Decode`]), another owner of the
    /// partition ([`Error::Fenced`]), or [`Error::Canceled`] when cancelled
    /// while a flush kept failing.
    ///
    /// # Cancellation
    /// Dropping the future (aborting the task) loses only what is buffered,
    /// which the next worker reads again from the log.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        self.run_until(&cancel, None).await
    }

    /// Runs until `cancel` fires. Then, if `shutdown` is `None` or cancelled
    /// too (the process is stopping), drains the log and commits as
    /// [`PartitionWorker::run`] does; otherwise (the partition was revoked:
    /// another process takes it over) it only commits what it buffered,
    /// once, so the next owner starts soon.
    ///
    /// # Errors
    /// As [`PartitionWorker::run`]; a final commit refused because the next
    /// owner already committed is [`Error::Fenced`].
    pub(crate) async fn run_until(
        mut self,
        cancel: &CancellationToken,
        shutdown: Option<&CancellationToken>,
    ) -> Result<()> {
        loop {
            match self.recover().await {
                Ok(()) => break,
                Err(e) if Self::fatal(&e) => return Err(e),
                Err(e) => {
                    warn!(app_id = %self.app_id, error = %e, "Stream worker recovery failed; retrying.");
                    if self.backoff(cancel).await {
                        return Err(Error::Canceled);
                    }
                }
            }
        }
        loop {
            let wait = self.fetch_wait();
            let fetched = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                f = self.log.fetch(&self.topic, self.partition, self.next_offset, self.config.fetch_max_bytes, wait) => f,
            };
            match fetched {
                Ok(f) => {
                    for record in f.records {
                        if record.offset < self.next_offset {
                            continue;
                        }
                        self.apply(record)?;
                    }
                    // What was applied is in the head: readable now.
                    if let Some(last) = self.buffer.last_offset {
                        self.applied.send_if_modified(|p| {
                            let newer = p.readable.is_none_or(|r| r < last);
                            if newer {
                                p.readable = Some(last);
                            }
                            newer
                        });
                    }
                }
                Err(e) => {
                    warn!(app_id = %self.app_id, error = %e, "Fetching from the log failed; retrying.");
                    if self.backoff(cancel).await {
                        break;
                    }
                }
            }
            if self.flush_due() {
                self.flush_until_done(cancel).await?;
            }
        }
        // Shutdown: read what the log already holds (nothing new arrives once
        // the gateway has stopped), then commit it, once, without retries.
        // A revoked partition is not drained: its next owner reads on.
        if shutdown.is_none_or(CancellationToken::is_cancelled) {
            self.drain().await?;
        }
        match self.flush().await {
            Ok(()) => Ok(()),
            Err(e) if self.buffer.last_offset.is_some() => {
                warn!(app_id = %self.app_id, error = %e, "Final flush failed; the next worker re-reads these records.");
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// At shutdown, applies every record already durable in the log, for at
    /// most [`SHUTDOWN_DRAIN`], so that a clean stop leaves the lake complete.
    ///
    /// "Already durable" is the high watermark when the drain starts: an
    /// empty fetch does not mean the end, since a Kafka fetch consumer may
    /// not have prefetched records the log already holds. Without the
    /// watermark (the query failed), it reads until a fetch comes back empty.
    async fn drain(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
        let end = self.log.offsets(&self.topic, self.partition).await.ok().map(|o| o.high_watermark);
        let wait = Duration::from_millis(self.config.fetch_max_wait_ms);
        while end.is_none_or(|end| self.next_offset < end) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                warn!(app_id = %self.app_id, next = self.next_offset, ?end, "Shutdown drain ran out of time.");
                break;
            }
            let max_wait = if end.is_some() { wait.min(left) } else { Duration::ZERO };
            let fetched = self
                .log
                .fetch(&self.topic, self.partition, self.next_offset, self.config.fetch_max_bytes, max_wait)
                .await;
            let Ok(f) = fetched else { break };
            if f.records.is_empty() && end.is_none() {
                break;
            }
            for record in f.records {
                if record.offset >= self.next_offset {
                    self.apply(record)?;
                }
            }
        }
        Ok(())
    }

    fn fatal(e: &Error) -> bool {
        matches!(e, Error::Decode { .. } | Error::Fenced { .. } | Error::Arrow { .. })
    }

    /// Sleeps for the retry backoff; `true` if cancelled meanwhile.
    async fn backoff(&self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => true,
            () = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => false,
        }
    }

    async fn recover(&mut self) -> Result<()> {
        // What the head holds is read again from the log.
        self.head.clear();
        self.buffer = Buffer::default();
        for kind in TableKind::ALL {
            self.versions[index(kind)] =
                self.writer.transaction_version(&self.workspace_id, kind, &self.app_id).await?;
        }
        self.consumer_offset = self
            .log
            .committed_offset(CONSUMER_GROUP, &self.topic, self.partition)
            .await
            .map_err(|e| Error::log("reading the committed offset", e))?;
        let resume = self.versions.iter().map(|v| v.map_or(0, |v| v + 1)).min().unwrap_or(0);
        self.next_offset = self.consumer_offset.map_or(0, |c| c.min(resume));
        let all_applied = self.versions.iter().copied().min().flatten();
        // The head starts empty: only what the tables hold is readable.
        self.applied.send_replace(Progress { committed: all_applied, readable: all_applied });
        info!(
            app_id = %self.app_id, versions = ?self.versions, consumer_offset = ?self.consumer_offset,
            from = self.next_offset, "Stream worker resuming."
        );
        Ok(())
    }

    fn fetch_wait(&self) -> Duration {
        let max = Duration::from_millis(self.config.fetch_max_wait_ms);
        match self.buffer.since {
            Some(since) => self.config.flush_interval().saturating_sub(since.elapsed()).min(max),
            None => max,
        }
    }

    fn flush_due(&self) -> bool {
        match self.buffer.since {
            Some(since) => {
                self.head.open_rows() >= self.config.flush_max_samples
                    || since.elapsed() >= self.config.flush_interval()
                    || self.head.under_pressure()
            }
            None => false,
        }
    }

    fn writes(&self, kind: TableKind, offset: u64) -> bool {
        self.versions[index(kind)].is_none_or(|v| offset > v)
    }

    /// Decodes one record, deduplicates its samples and buffers the rows of
    /// every table that does not hold its offset yet.
    fn apply(&mut self, record: StoredRecord) -> Result<()> {
        let offset = record.offset;
        self.next_offset = offset + 1;
        if self.buffer.since.is_none() {
            self.buffer.since = Some(Instant::now());
        }
        self.buffer.last_offset = Some(offset);
        self.buffer.last_record_ms = record.timestamp_ms;
        let Some(value) = record.value else { return Ok(()) };
        let batch = WriteBatch::decode(value).map_err(|source| Error::Decode {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
            source,
        })?;
        // Read per record, so a changed limit applies without a restart.
        self.dedup.set_window(self.overrides.out_of_order_window_ms(&self.workspace_id));
        let write_samples = self.writes(TableKind::Samples, offset);
        let write_series = self.writes(TableKind::Series, offset);
        let write_metadata = self.writes(TableKind::Metadata, offset);
        let (mut duplicates, mut out_of_order) = (0u64, 0u64);
        let mut rows = Vec::new();
        for series in &batch.series {
            let id = series.series_id;
            let metric: Arc<str> = series
                .labels
                .iter()
                .find(|l| l.name == METRIC_NAME)
                .map(|l| Arc::from(l.value.as_str()))
                .unwrap_or_else(|| Arc::from(""));
            let mut range: Option<(i64, i64)> = None;
            let mut verdicts = Vec::with_capacity(series.samples.len() + series.histograms.len());
            for s in &series.samples {
                verdicts.push((self.dedup.offer(id, s.timestamp_ms, Fingerprint::float(s.value)), s.timestamp_ms));
                if verdicts.last().map(|v| v.0) == Some(Verdict::Accept) && write_samples {
                    rows.push(SampleRow {
                        metric_name: metric.clone(),
                        series_id: id,
                        timestamp_ms: s.timestamp_ms,
                        value: Some(s.value),
                        histogram: None,
                        stale: s.value.to_bits() == STALE_NAN_BITS,
                    });
                }
            }
            for h in &series.histograms {
                let encoded = bytes::Bytes::from(h.encode_to_vec());
                verdicts.push((self.dedup.offer(id, h.timestamp_ms, Fingerprint::histogram(&encoded)), h.timestamp_ms));
                if verdicts.last().map(|v| v.0) == Some(Verdict::Accept) && write_samples {
                    rows.push(SampleRow {
                        metric_name: metric.clone(),
                        series_id: id,
                        timestamp_ms: h.timestamp_ms,
                        value: None,
                        histogram: Some(encoded),
                        stale: h.sum.to_bits() == STALE_NAN_BITS,
                    });
                }
            }
            for (verdict, ts) in verdicts {
                match verdict {
                    Verdict::Accept => {
                        range = Some(range.map_or((ts, ts), |(lo, hi)| (lo.min(ts), hi.max(ts))));
                    }
                    Verdict::Duplicate => {}
                    Verdict::DuplicateConflict => duplicates += 1,
                    Verdict::OutOfOrder => out_of_order += 1,
                }
            }
            if let (Some((lo, hi)), true) = (range, write_series) {
                let due = self.buffer.series.contains_key(&id)
                    || self.series_rows.get(&id).is_none_or(|&last| {
                        hi.saturating_sub(last) >= i64::try_from(self.config.series_refresh_ms).unwrap_or(i64::MAX)
                    });
                if due {
                    let row = self.buffer.series.entry(id).or_insert_with(|| SeriesRow {
                        series_id: id,
                        metric_name: metric.clone(),
                        labels: series.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                        first_timestamp_ms: lo,
                        last_timestamp_ms: hi,
                    });
                    row.first_timestamp_ms = row.first_timestamp_ms.min(lo);
                    row.last_timestamp_ms = row.last_timestamp_ms.max(hi);
                }
            }
        }
        // The head asks for the labels of new series in row order, which is
        // the batch's series order: a cursor finds each in one pass.
        let mut cursor = 0;
        self.head.append(rows, |id| {
            let found = (cursor..batch.series.len())
                .chain(0..cursor)
                .find(|&i| batch.series[i].series_id == id)
                .inspect(|&i| cursor = i);
            let mut labels: Vec<(String, String)> = found
                .map(|i| batch.series[i].labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
                .unwrap_or_default();
            labels.sort_unstable();
            labels.into()
        });
        if write_samples {
            let ws = &self.workspace_id;
            if duplicates > 0 {
                let labels = DiscardLabels { workspace: ws.clone(), reason: metrics::DUPLICATE_SAMPLE };
                self.metrics.discarded.get_or_create(&labels).inc_by(duplicates);
            }
            if out_of_order > 0 {
                let labels = DiscardLabels { workspace: ws.clone(), reason: metrics::OUT_OF_ORDER };
                self.metrics.discarded.get_or_create(&labels).inc_by(out_of_order);
            }
        }
        if write_metadata {
            let refresh_ms = i64::try_from(self.config.series_refresh_ms).unwrap_or(i64::MAX);
            for m in batch.metadata {
                let meta = MetricMeta { metric_type: metric_type_name(m.r#type), help: m.help, unit: m.unit };
                let now = batch.received_at_ms;
                let due = match self.metadata_rows.get(&m.metric_family_name) {
                    Some((last, at)) => *last != meta || now.saturating_sub(*at) >= refresh_ms,
                    None => true,
                };
                if due {
                    self.buffer.metadata.push(MetadataRow {
                        metric_name: m.metric_family_name.clone(),
                        metric_type: meta.metric_type,
                        help: meta.help.clone(),
                        unit: meta.unit.clone(),
                        timestamp_ms: now,
                    });
                    self.metadata_rows.insert(m.metric_family_name, (meta, now));
                }
            }
        }
        Ok(())
    }

    /// Flushes, retrying failed commits after the backoff until they succeed.
    async fn flush_until_done(&mut self, cancel: &CancellationToken) -> Result<()> {
        loop {
            match self.flush().await {
                Ok(()) => return Ok(()),
                Err(e) if Self::fatal(&e) => return Err(e),
                Err(e) => {
                    warn!(app_id = %self.app_id, error = %e, "Flush failed; retrying.");
                    if self.backoff(cancel).await {
                        return Err(Error::Canceled);
                    }
                }
            }
        }
    }

    /// Commits the buffer to every table that does not hold its last offset
    /// yet, then (lagging by the dedup horizon) the log consumer offset.
    /// On failure the buffer is kept, and tables already committed are not
    /// committed again.
    async fn flush(&mut self) -> Result<()> {
        let Some(last) = self.buffer.last_offset else { return Ok(()) };
        for kind in TableKind::ALL {
            let i = index(kind);
            if self.versions[i].is_some_and(|v| v >= last) {
                continue;
            }
            let batches: Vec<RecordBatch> = match kind {
                TableKind::Samples if self.head.seal() => vec![self.head.flushing_batch()?],
                TableKind::Series if !self.buffer.series.is_empty() => vec![tables::series_batch(&self.buffer.series)?],
                TableKind::Metadata if !self.buffer.metadata.is_empty() => {
                    vec![tables::metadata_batch(&self.buffer.metadata)?]
                }
                _ => Vec::new(),
            };
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows == 0 && self.last_commit[i].is_some_and(|t| t.elapsed() < EMPTY_COMMIT_INTERVAL) {
                continue;
            }
            let txn =
                AppTransaction { app_id: self.app_id.clone(), version: last, expected_previous: self.versions[i] };
            let started = Instant::now();
            let table_labels = TableLabels { workspace: self.workspace_id.clone(), table: kind.name() };
            let outcome = match self.writer.append(&self.workspace_id, kind, batches, &txn).await {
                Ok(o) => o,
                Err(e) => {
                    self.metrics.commit_failures.get_or_create(&table_labels).inc();
                    return Err(e);
                }
            };
            self.metrics
                .commit_seconds
                .get_or_create(&CommitLabels { table: kind.name() })
                .observe(started.elapsed().as_secs_f64());
            self.versions[i] = Some(last);
            self.last_commit[i] = Some(Instant::now());
            crate::failpoint::after_commit(kind);
            if let AppendOutcome::Committed { table_version } = outcome {
                debug!(app_id = %self.app_id, table = kind.name(), table_version, offset = last, rows, "Committed.");
                self.metrics.commits.get_or_create(&table_labels).inc();
                self.metrics.rows.get_or_create(&table_labels).inc_by(rows as u64);
                if kind == TableKind::Samples {
                    let ws = WorkspaceLabels { workspace: self.workspace_id.clone() };
                    self.metrics.committed.get_or_create(&ws).inc_by(rows as u64);
                }
            }
        }
        for row in self.buffer.series.values() {
            self.series_rows.insert(row.series_id, row.last_timestamp_ms);
        }
        let record_ms = self.buffer.last_record_ms;
        self.buffer = Buffer::default();
        self.head.drop_flushed();
        self.applied.send_if_modified(|p| {
            let newer = p.committed.is_none_or(|a| a < last);
            if newer {
                p.committed = Some(last);
                p.readable = p.readable.max(Some(last));
            }
            newer
        });
        self.flushed.push_back((record_ms, last + 1));
        crate::failpoint::hit("before_offset_commit");
        self.commit_consumer_offset(record_ms).await;
        Ok(())
    }

    /// Commits the log consumer offset of the newest flush at least the dedup
    /// horizon older (in log time) than the newest flush. Only an
    /// optimisation (it lets retention delete what is below); a failure is
    /// logged and retried at the next flush.
    async fn commit_consumer_offset(&mut self, newest_ms: i64) {
        let horizon = i64::try_from(self.config.dedup_horizon_ms).unwrap_or(i64::MAX);
        let mut target = None;
        while let Some(&(ms, next)) = self.flushed.front() {
            if newest_ms.saturating_sub(ms) < horizon {
                break;
            }
            target = Some(next);
            self.flushed.pop_front();
        }
        let Some(next) = target else { return };
        if self.consumer_offset.is_some_and(|c| c >= next) {
            return;
        }
        match self.log.commit_offset(CONSUMER_GROUP, &self.topic, self.partition, next).await {
            Ok(()) => self.consumer_offset = Some(next),
            Err(e) => warn!(app_id = %self.app_id, error = %e, "Committing the consumer offset failed."),
        }
    }
}
