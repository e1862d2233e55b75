//! Exactly once across crashes: aborted workers, Parquet written without a
//! commit, one table committed and not the next, commits without the log
//! offset, and retried requests whose first copy is already in the lake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::log::{AppendReceipt, Fetched, Log, LogError, LogResult, PartitionOffsets, Record, TopicSpec};
use deltalake::arrow::record_batch::RecordBatch;
use prometheus_client::registry::Registry;
use schemas::stream::WriteBatch;
use stream_workers::{
    AppTransaction, AppendOutcome, CONSUMER_GROUP, DeltaTableWriter, Error, StreamWorkersConfig, TableKind, TableWriter,
};

use crate::harness::*;

/// A deterministic batch: `n` series of metric `m`, one sample each at `t`.
fn record(m: &str, n: usize, t: i64) -> WriteBatch {
    let series = (0..n)
        .map(|i| {
            let i = i.to_string();
            series(&[("__name__", m), ("instance", &i)], &[(t, t as f64 + 0.5)])
        })
        .collect();
    batch(series, vec![])
}

/// The (series, timestamp) → value bits every batch given should produce.
fn expected(batches: &[&WriteBatch]) -> BTreeMap<(u64, i64), Option<u64>> {
    let mut map = BTreeMap::new();
    for b in batches {
        for s in &b.series {
            for p in &s.samples {
                map.insert((s.series_id, p.timestamp_ms), Some(p.value.to_bits()));
            }
        }
    }
    map
}

/// Wraps the Delta writer; once armed, appends to `table` write their
/// Parquet files and then fail before committing.
#[derive(Debug)]
struct FailBeforeCommit {
    inner: DeltaTableWriter,
    table: TableKind,
    armed: AtomicBool,
    failures: AtomicUsize,
}

#[async_trait]
impl TableWriter for FailBeforeCommit {
    async fn transaction_version(
        &self,
        ws: &str,
        table: TableKind,
        app_id: &str,
    ) -> stream_workers::Result<Option<u64>> {
        self.inner.transaction_version(ws, table, app_id).await
    }

    async fn append(
        &self,
        ws: &str,
        table: TableKind,
        batches: Vec<RecordBatch>,
        txn: &AppTransaction,
    ) -> stream_workers::Result<AppendOutcome> {
        let staged = self.inner.stage(ws, table, batches).await?;
        if table == self.table && self.armed.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::Injected("crash between Parquet write and commit"));
        }
        self.inner.commit_staged(ws, table, staged, txn).await
    }

    async fn select(
        &self,
        ws: &str,
        selection: &common::seams::Selection,
    ) -> stream_workers::Result<stream_workers::scan::TableSelection> {
        self.inner.select(ws, selection).await
    }

    async fn metadata(&self, ws: &str) -> stream_workers::Result<Vec<common::seams::MetricMetadata>> {
        self.inner.metadata(ws).await
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn aborted_workers_and_retried_requests_leave_each_sample_once() {
    let env = Env::new(2).await;
    let r1 = record("a", 20, 1000);
    let r2 = record("b", 20, 1000);
    let r3 = record("a", 20, 2000);
    let mut last = [0u64; 2];
    for (p, r) in [(0, &r1), (1, &r2), (0, &r3)] {
        last[p as usize] = env.append(p, r).await;
    }
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    for p in 0..2 {
        workers.wait_for_offset(WS, p, last[p as usize], Duration::from_secs(10)).await.unwrap();
    }
    // More records, then a crash (abort, no flush) at whatever point the
    // workers are.
    let r4 = record("c", 20, 3000);
    env.append(1, &r4).await;
    drop(workers);

    // Retries of committed requests (r1, r3) and of one that may or may not
    // be committed (r4), interleaved with new ones.
    let r5 = record("a", 20, 4000);
    for (p, r) in [(0, &r1), (1, &r4), (0, &r5), (0, &r3), (1, &r2)] {
        last[p as usize] = env.append(p, r).await;
    }
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    for p in 0..2 {
        workers.wait_for_offset(WS, p, last[p as usize], Duration::from_secs(10)).await.unwrap();
    }
    workers.shutdown().await;
    assert_eq!(sample_map(&env.lake).await, expected(&[&r1, &r2, &r3, &r4, &r5]));
    // The retries were silent duplicates, not conflicts.
    let dup = format!("promlake_stream_samples_discarded_total{{workspace=\"{WS}\",reason=\"duplicate_sample\"}}");
    assert_eq!(metric_value(&registry, &dup), 0.0);
    // Series rows: every series present (possibly once per worker run).
    let series_ids: std::collections::BTreeSet<u64> = read_series(&env.lake).await.iter().map(|r| r.0).collect();
    assert_eq!(series_ids.len(), 60);
}

/// Parquet files written, commit never done, worker killed: the files are
/// invisible and the restarted worker writes the samples once.
#[tokio::test]
async fn a_crash_between_parquet_write_and_commit_loses_and_doubles_nothing() {
    for failing in [TableKind::Samples, TableKind::Series] {
        let env = Env::new(1).await;
        let r1 = record("a", 10, 1000);
        let o1 = env.append(0, &r1).await;
        let writer = Arc::new(FailBeforeCommit {
            inner: DeltaTableWriter::new(env.lake.clone()),
            table: failing,
            armed: AtomicBool::new(false),
            failures: AtomicUsize::new(0),
        });
        let mut registry = Registry::default();
        let workers = env.start(fast_config(), writer.clone(), None, &mut registry).await;
        workers.wait_for_offset(WS, 0, o1, Duration::from_secs(10)).await.unwrap();

        writer.armed.store(true, Ordering::SeqCst);
        // New series, so every table gets rows.
        let r2 = record("b", 10, 2000);
        env.append(0, &r2).await;
        wait_until("an injected failure", || writer.failures.load(Ordering::SeqCst) >= 2).await;
        drop(workers); // the crash
        let on_disk = parquet_files_on_disk(&env.lake_dir().join(WS).join(failing.name()));
        let in_table = stream_workers::read::read_table(&env.lake, WS, failing).await.unwrap().len();
        assert!(
            on_disk > in_table,
            "{failing:?}: expected uncommitted files ({on_disk} on disk, {in_table} in the table)"
        );

        // A retry of r2 and a new record, then a clean restart.
        env.append(0, &r2).await;
        let r3 = record("a", 10, 3000);
        let o3 = env.append(0, &r3).await;
        let mut registry = Registry::default();
        let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
        workers.wait_for_offset(WS, 0, o3, Duration::from_secs(10)).await.unwrap();
        workers.shutdown().await;
        assert_eq!(sample_map(&env.lake).await, expected(&[&r1, &r2, &r3]), "{failing:?}");
        let series_ids: std::collections::BTreeSet<u64> = read_series(&env.lake).await.iter().map(|r| r.0).collect();
        assert_eq!(series_ids.len(), 20, "{failing:?}");
    }
}

/// A log whose offset commits fail (or are counted), delegating the rest.
#[derive(Debug)]
struct OffsetCommitsFail {
    inner: Arc<dyn Log>,
    fail: bool,
    commits: AtomicUsize,
}

#[async_trait]
impl Log for OffsetCommitsFail {
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> LogResult<u32> {
        self.inner.ensure_topic(topic, spec).await
    }
    async fn delete_topic(&self, topic: &str) -> LogResult<()> {
        self.inner.delete_topic(topic).await
    }
    async fn partition_count(&self, topic: &str) -> LogResult<u32> {
        self.inner.partition_count(topic).await
    }
    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> LogResult<AppendReceipt> {
        self.inner.append(topic, partition, records).await
    }
    async fn fetch(&self, t: &str, p: u32, offset: u64, max_bytes: usize, max_wait: Duration) -> LogResult<Fetched> {
        self.inner.fetch(t, p, offset, max_bytes, max_wait).await
    }
    async fn offsets(&self, topic: &str, partition: u32) -> LogResult<PartitionOffsets> {
        self.inner.offsets(topic, partition).await
    }
    async fn commit_offset(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> LogResult<()> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(LogError::Closed);
        }
        self.inner.commit_offset(group, topic, partition, next_offset).await
    }
    async fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> LogResult<Option<u64>> {
        self.inner.committed_offset(group, topic, partition).await
    }
    async fn close(&self) -> LogResult<()> {
        self.inner.close().await
    }
}

/// Tables committed, log offset not: the restart resumes from the tables'
/// transaction versions and appends nothing twice. With the offset committed
/// (no dedup horizon) it lands one past the last committed record.
#[tokio::test]
async fn a_crash_after_the_commits_before_the_offset_commit_doubles_nothing() {
    let env = Env::new(1).await;
    let config = StreamWorkersConfig { dedup_horizon_ms: 0, ..fast_config() };
    let r1 = record("a", 10, 1000);
    let r2 = record("b", 10, 1000);
    env.append(0, &r1).await;
    let o2 = env.append(0, &r2).await;
    let failing = Arc::new(OffsetCommitsFail { inner: env.log.clone(), fail: true, commits: AtomicUsize::new(0) });
    let mut registry = Registry::default();
    let workers = env.start(config.clone(), env.writer(), Some(failing.clone()), &mut registry).await;
    workers.wait_for_offset(WS, 0, o2, Duration::from_secs(10)).await.unwrap();
    wait_until("an offset commit attempt", || failing.commits.load(Ordering::SeqCst) >= 1).await;
    drop(workers);
    assert_eq!(env.log.committed_offset(CONSUMER_GROUP, &env.topic, 0).await.unwrap(), None);

    let r3 = record("a", 10, 2000);
    let o3 = env.append(0, &r3).await;
    let counting = Arc::new(OffsetCommitsFail { inner: env.log.clone(), fail: false, commits: AtomicUsize::new(0) });
    let mut registry = Registry::default();
    let workers = env.start(config, env.writer(), Some(counting.clone()), &mut registry).await;
    workers.wait_for_offset(WS, 0, o3, Duration::from_secs(10)).await.unwrap();
    workers.shutdown().await;
    assert_eq!(sample_map(&env.lake).await, expected(&[&r1, &r2, &r3]));
    assert_eq!(env.log.committed_offset(CONSUMER_GROUP, &env.topic, 0).await.unwrap(), Some(o3 + 1));
    // Nothing was replayed into the samples table: r1 and r2 were committed once.
    let committed = metric_value(&registry, &format!("promlake_stream_samples_committed_total{{workspace=\"{WS}\"}}"));
    assert_eq!(committed, 10.0);
}

/// The writer refuses an append whose expected version is stale (a second
/// owner) and recognises one that already landed.
#[tokio::test]
async fn appends_are_fenced_by_the_transaction_version() {
    let env = Env::new(1).await;
    let writer = env.writer();
    let app = "topic/0".to_owned();
    let txn = |version, expected_previous| AppTransaction { app_id: app.clone(), version, expected_previous };
    assert_eq!(writer.transaction_version(WS, TableKind::Metadata, &app).await.unwrap(), None);
    let outcome = writer.append(WS, TableKind::Metadata, vec![], &txn(5, None)).await.unwrap();
    assert!(matches!(outcome, AppendOutcome::Committed { .. }));
    assert_eq!(writer.transaction_version(WS, TableKind::Metadata, &app).await.unwrap(), Some(5));
    // Same version again: already there.
    let again = writer.append(WS, TableKind::Metadata, vec![], &txn(5, None)).await.unwrap();
    assert!(matches!(again, AppendOutcome::AlreadyCommitted { .. }), "{again:?}");
    // A writer that thinks the table is elsewhere is refused.
    let fenced = writer.append(WS, TableKind::Metadata, vec![], &txn(9, Some(3))).await;
    assert!(matches!(fenced, Err(Error::Fenced { found: Some(5), .. })), "{fenced:?}");
    // Another writer instance (another process) sees the same version.
    let other = env.writer();
    assert_eq!(other.transaction_version(WS, TableKind::Metadata, &app).await.unwrap(), Some(5));
    assert!(matches!(
        other.append(WS, TableKind::Metadata, vec![], &txn(9, Some(5))).await,
        Ok(AppendOutcome::Committed { .. })
    ));
    assert!(matches!(
        writer.append(WS, TableKind::Metadata, vec![], &txn(10, Some(5))).await,
        Err(Error::Fenced { .. })
    ));
}
