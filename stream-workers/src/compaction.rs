//! Compaction of the `samples` table: a day partition's small files (one
//! per flush, every few seconds) are rewritten into few large files sorted
//! by (`metric_name`, `series_id`, `timestamp`), in the background and safe
//! while appends go on.
//!
//! ```text
//!  per day partition of samples, in each maintenance pass (after retention):
//!    candidates  files smaller than compaction_target_file_bytes / 2
//!    when        > compaction_min_files candidates (a past day)
//!                > compaction_today_min_files candidates (today or later, UTC, injected clock)
//!                never the oldest retained day (retention may remove it any moment)
//!    plan        snapshot under the table lock; candidates grouped, ≤ target bytes per group
//!    rewrite     without the lock: read each group's files (Parquet Arrow reader),
//!                sort (lexsort + take), write one file with the appends' writer properties
//!    commit      under the lock, on a fresh snapshot: every input still active?
//!                  no  → abort (delete the new files; nothing changed)
//!                  yes → ONE commit: remove(inputs) + add(outputs), dataChange=false,
//!                        operation OPTIMIZE, delta-rs rebase disabled (max_retries 0)
//! ```
//!
//! # Safety while appends go on
//!
//! Appends only add files, so the rows of the inputs are exactly the rows of
//! the outputs whatever was appended meanwhile; what must not happen is a
//! commit removing inputs that are no longer active (removed by retention,
//! or by another process's compaction: committing would resurrect expired
//! rows or double the rows). Hence the commit is checked against the fresh
//! snapshot it is built on, and delta-rs' own rebase is disabled: its
//! conflict checker ignores `dataChange=false` removes (two concurrent
//! compactions would both commit) and, without datafusion, cannot tell which
//! partition an append touched. A commit that lost the race to another
//! process's commit fails with `MaxCommitAttempts`; the check and commit are
//! repeated on a new snapshot (the rewritten files are reused), up to
//! [`COMMIT_ATTEMPTS`] times. Any other commit error (outcome unknown) is
//! returned without deleting the new files. In one process appends and compaction commits
//! take the same table lock. An append of another process that loses to a
//! compaction commit is rebased by delta-rs (it read nothing the compaction
//! removed). Retention of another process racing a compaction of the day
//! it expires is avoided by never compacting the oldest retained day.
//! Files of an aborted compaction are deleted at once; files of a commit
//! whose outcome is unknown are left to vacuum (orphans after its grace).
//! Removed inputs are vacuumed by the existing rules (7 days, or the
//! expired-file grace once their day expires).
//!
//! # Memory
//!
//! A group is sorted in memory: about 20 × its compressed bytes of Arrow
//! (≈ 50 bytes per row against ≈ 2.5 on disk), so the default 64 MiB target
//! costs about 1.3 GB at peak. A streaming k-way merge (each input is
//! already sorted) would bound it by the batch size; it is not built yet.
//!
//! # Measured
//!
//! `tests::compaction_bytes_per_sample` (run with `--nocapture`): the
//! node_exporter-shaped data of [`crate::tables`] (1,000 series at 15 s),
//! flushed as 120 files of one scrape each (1,000 samples per file, as
//! 5-second flushes of a small workspace write them), then compacted:
//!
//! | layout | bytes | bytes/sample |
//! |---|---|---|
//! | 120 flush files (zstd 3, the appends' settings) | 1,801,730 | 15.01 |
//! | one compacted file (same settings) | 315,781 | **2.63** |
//!
//! The small files pay a Parquet footer, column chunks and pages per file
//! and, with one sample per series each, no timestamp deltas and no runs of
//! one series' values; the compacted file matches the single sorted file
//! measured in [`crate::tables`] (2.60; the difference is the Delta writer's
//! statistics and the written `stale`/`histogram` columns). Since each
//! output is one sorted file per group, a day of a large workspace becomes
//! files of about the target size.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, Date32Array, Int64Array, RecordBatch, UInt64Array};
use deltalake::arrow::compute::{SortColumn, cast, concat_batches, lexsort_to_indices, take_record_batch};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError, ObjectStore, Path};
use schemas::tables::{COL_DAY, COL_METRIC_NAME, COL_SERIES_ID, COL_TIMESTAMP};
use tracing::{info, warn};
use url::Url;

use crate::error::{Error, Result};
use crate::tables::{TableKind, civil_date, day_of, series_id_from_i64};
use crate::writer::DeltaTableWriter;

/// What [`crate::TableWriter::compact_samples`] may compact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Now, Unix milliseconds (from the injected clock): its UTC day is "today".
    pub now_ms: i64,
    /// Days before this one (days since the epoch) are left alone: the
    /// oldest retained day and older (retention removes them).
    pub first_day: i32,
    /// See [`crate::StreamWorkersConfig::compaction_min_files`].
    pub min_files: usize,
    /// See [`crate::StreamWorkersConfig::compaction_today_min_files`].
    pub today_min_files: usize,
    /// See [`crate::StreamWorkersConfig::compaction_target_file_bytes`].
    pub target_file_bytes: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Day partitions rewritten (one commit each).
    pub partitions: usize,
    /// Small files removed from the table.
    pub files_removed: usize,
    /// Large files added.
    pub files_added: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Partitions whose compaction was abandoned because an input had been
    /// removed meanwhile (by retention or another process's compaction).
    pub aborted: usize,
}

/// How many times a compaction commit is checked and attempted again on a
/// fresh snapshot after losing a race to another process's commit.
pub const COMMIT_ATTEMPTS: usize = 5;

/// One input file of a day partition.
#[derive(Debug, Clone)]
struct Input {
    path: Path,
    size: u64,
    remove: Remove,
}

impl DeltaTableWriter {
    /// [`crate::TableWriter::compact_samples`] over delta-rs.
    pub(crate) async fn compact_samples_delta(
        &self,
        workspace_id: &str,
        policy: &CompactionPolicy,
    ) -> Result<CompactionReport> {
        let url = self.lake().table_url(workspace_id, TableKind::Samples);
        let mut report = CompactionReport::default();
        let Some((table, days)) = self.plan_compaction(&url, policy).await? else { return Ok(report) };
        let store = table.log_store().object_store(None);
        for (day, inputs) in days {
            // Rewrite, without the lock: appends go on.
            let Some(done) = rewrite(&table, &url, inputs, policy).await? else { continue };
            if self.commit_compaction(&url, &day, &done, policy).await? {
                info!(table = %url, day = %day, removed = done.removes.len(), added = done.adds.len(), rows = done.rows, "Compacted a day.");
                report.partitions += 1;
                report.files_removed += done.removes.len();
                report.files_added += done.adds.len();
                report.rows += done.rows;
            } else {
                warn!(table = %url, day = %day, "Compaction abandoned: an input file was removed meanwhile.");
                delete_outputs(store.as_ref(), &done.adds).await;
                report.aborted += 1;
            }
        }
        Ok(report)
    }

    /// The day partitions to compact and their small files, from a snapshot
    /// taken under the table lock; `None` when there is no table.
    async fn plan_compaction(
        &self,
        url: &Url,
        policy: &CompactionPolicy,
    ) -> Result<Option<(DeltaTable, BTreeMap<String, Vec<Input>>)>> {
        let kind = TableKind::Samples;
        let today = civil_date(day_of(policy.now_ms));
        let first_day = civil_date(policy.first_day);
        let slot = self.slot(url);
        let mut guard = slot.lock().await;
        if !self.load(&mut guard, url, kind, false).await? {
            return Ok(None);
        }
        let table = guard.as_ref().ok_or_else(|| Error::delta(url, "loading", DeltaTableError::NotInitialized))?;
        let snapshot = table.snapshot().map_err(|e| Error::delta(url, "reading the snapshot", e))?;
        let mut days: BTreeMap<String, Vec<Input>> = BTreeMap::new();
        for f in snapshot.log_data().iter() {
            let size = u64::try_from(f.size()).unwrap_or(0);
            if size.saturating_mul(2) >= policy.target_file_bytes {
                continue; // already large
            }
            let Some(day) = f.partition_values_map().get(COL_DAY).cloned().flatten() else { continue };
            if day.as_str() < first_day.as_str() {
                continue;
            }
            days.entry(day).or_default().push(Input {
                path: f.object_store_path(),
                size,
                remove: f.remove_action(false),
            });
        }
        days.retain(|day, files| {
            let threshold = if day.as_str() >= today.as_str() { policy.today_min_files } else { policy.min_files };
            files.len() > threshold
        });
        Ok(Some((table.clone(), days)))
    }

    /// Commits one day's compaction on a fresh snapshot; `Ok(false)` when an
    /// input is no longer active (nothing committed).
    async fn commit_compaction(
        &self,
        url: &Url,
        day: &str,
        done: &Rewritten,
        policy: &CompactionPolicy,
    ) -> Result<bool> {
        let (removes, adds) = (&done.removes, &done.adds);
        let kind = TableKind::Samples;
        let slot = self.slot(url);
        let mut guard = slot.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !self.load(&mut guard, url, kind, false).await? {
                return Ok(false);
            }
            let table = guard.as_ref().ok_or_else(|| Error::delta(url, "loading", DeltaTableError::NotInitialized))?;
            let snapshot = table.snapshot().map_err(|e| Error::delta(url, "reading the snapshot", e))?;
            let active: HashSet<String> = snapshot.log_data().iter().map(|f| f.path().into_owned()).collect();
            if attempt > 1 && !adds.is_empty() && adds.iter().all(|a| active.contains(&a.path)) {
                // Defensive: only a definite "lost the race" is retried, but
                // if our commit did land, its files must not be deleted.
                return Ok(true);
            }
            if !removes.iter().all(|r| active.contains(&r.path)) {
                return Ok(false);
            }
            let actions: Vec<Action> =
                removes.iter().cloned().map(Action::Remove).chain(adds.iter().cloned().map(Action::Add)).collect();
            let operation = DeltaOperation::Optimize {
                predicate: Some(format!("{COL_DAY} = '{day}'")),
                target_size: i64::try_from(policy.target_file_bytes).unwrap_or(i64::MAX),
            };
            let committed = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
                .with_actions(actions)
                .build(Some(snapshot), table.log_store(), operation)
                .await;
            self.table_changed(url);
            match committed {
                Ok(_) => return Ok(true),
                // Definitely not committed: another commit took the version.
                Err(e) if attempt < COMMIT_ATTEMPTS && lost_commit_race(&e) => {
                    warn!(table = %url, error = %e, "Compaction commit lost a race; checking again on a fresh snapshot.");
                }
                Err(e) => return Err(Error::delta(url, "committing a compaction", e)),
            }
        }
    }
}

/// A day's inputs rewritten, not committed yet.
#[derive(Debug)]
struct Rewritten {
    removes: Vec<Remove>,
    adds: Vec<Add>,
    rows: u64,
}

/// Rewrites a day's inputs into sorted files (`None`: nothing to merge).
/// On failure the files already written are deleted.
async fn rewrite(
    table: &DeltaTable,
    url: &Url,
    inputs: Vec<Input>,
    policy: &CompactionPolicy,
) -> Result<Option<Rewritten>> {
    let groups = group(inputs, policy.target_file_bytes);
    if groups.is_empty() {
        return Ok(None);
    }
    let store = table.log_store().object_store(None);
    let mut done = Rewritten { removes: Vec::new(), adds: Vec::new(), rows: 0 };
    for g in &groups {
        match rewrite_group(table, store.as_ref(), url, g, policy).await {
            Ok((adds, rows)) => {
                done.adds.extend(adds);
                done.rows += rows;
            }
            Err(e) => {
                delete_outputs(store.as_ref(), &done.adds).await;
                return Err(e);
            }
        }
        done.removes.extend(g.iter().map(|i| {
            let mut r = i.remove.clone();
            r.data_change = false;
            r.deletion_timestamp = Some(policy.now_ms);
            r
        }));
    }
    Ok(Some(done))
}

/// Rewrites one group into one sorted file (with the appends' writer
/// properties); returns its `add` actions (dataChange=false) and row count.
async fn rewrite_group(
    table: &DeltaTable,
    store: &dyn ObjectStore,
    url: &Url,
    group: &[Input],
    policy: &CompactionPolicy,
) -> Result<(Vec<Add>, u64)> {
    let kind = TableKind::Samples;
    let sorted = read_sorted(store, url, group).await?;
    let rows = sorted.num_rows() as u64;
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(|e| Error::delta(url, "starting a compaction write", e))?
        .with_writer_properties(kind.writer_properties())
        .with_target_file_size(policy.target_file_bytes);
    writer.write(sorted).await.map_err(|e| Error::delta(url, "writing a compacted file", e))?;
    let adds = writer.flush().await.map_err(|e| Error::delta(url, "finishing a compacted file", e))?;
    let adds = adds
        .into_iter()
        .map(|mut a| {
            a.data_change = false;
            a
        })
        .collect();
    Ok((adds, rows))
}

/// Groups a day's inputs into groups of at most `target` bytes (a file
/// larger than that is alone); groups of one file are dropped (nothing to
/// merge).
fn group(mut inputs: Vec<Input>, target: u64) -> Vec<Vec<Input>> {
    inputs.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
    let mut groups: Vec<Vec<Input>> = Vec::new();
    let mut current: Vec<Input> = Vec::new();
    let mut bytes = 0u64;
    for i in inputs {
        if !current.is_empty() && bytes.saturating_add(i.size) > target {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(i.size);
        current.push(i);
    }
    groups.push(current);
    groups.retain(|g| g.len() > 1);
    groups
}

/// Reads a group's files into one batch of the table's schema (with the
/// `day` column), sorted by (metric name, series id as u64, timestamp).
async fn read_sorted(store: &dyn ObjectStore, url: &Url, inputs: &[Input]) -> Result<RecordBatch> {
    let schema = TableKind::Samples.arrow_schema();
    let parquet =
        |e: deltalake::parquet::errors::ParquetError| Error::delta(url, "reading a file to compact", e.into());
    let arrow = |source| Error::Arrow { table: TableKind::Samples.name(), source };
    let mut batches = Vec::new();
    for input in inputs {
        let bytes = store
            .get(&input.path)
            .await
            .map_err(|e| Error::delta(url, "reading a file to compact", e.into()))?
            .bytes()
            .await
            .map_err(|e| Error::delta(url, "reading a file to compact", e.into()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(parquet)?
            .with_batch_size(65_536)
            .build()
            .map_err(parquet)?;
        for batch in reader {
            let batch = batch.map_err(arrow)?;
            if batch.num_rows() == 0 {
                continue;
            }
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                let column = if field.name() == COL_DAY {
                    let ts = batch
                        .column_by_name(COL_TIMESTAMP)
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                        .ok_or_else(|| {
                            Error::delta(
                                url,
                                "reading a file to compact",
                                DeltaTableError::generic("no int64 timestamp column"),
                            )
                        })?;
                    Arc::new(Date32Array::from(vec![day_of(ts.value(0)); batch.num_rows()])) as ArrayRef
                } else {
                    let c = batch.column_by_name(field.name()).ok_or_else(|| {
                        Error::delta(
                            url,
                            "reading a file to compact",
                            DeltaTableError::generic(format!("no column {}", field.name())),
                        )
                    })?;
                    if c.data_type() == field.data_type() {
                        c.clone()
                    } else {
                        cast(c, field.data_type()).map_err(arrow)?
                    }
                };
                columns.push(column);
            }
            batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow)?);
        }
    }
    let all = concat_batches(&schema, &batches).map_err(arrow)?;
    drop(batches);
    let col = |name: &str| all.column_by_name(name).cloned();
    let (Some(metric), Some(ids), Some(ts)) = (col(COL_METRIC_NAME), col(COL_SERIES_ID), col(COL_TIMESTAMP)) else {
        return Err(Error::delta(url, "sorting", DeltaTableError::generic("missing sort columns")));
    };
    // Series ids are sorted as the u64 they are (the flush sorts them so).
    let ids = ids
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| Arc::new(a.values().iter().map(|v| series_id_from_i64(*v)).collect::<UInt64Array>()) as ArrayRef)
        .ok_or_else(|| Error::delta(url, "sorting", DeltaTableError::generic("series_id is not int64")))?;
    let keys = [metric, ids, ts].map(|values| SortColumn { values, options: None });
    let indices = lexsort_to_indices(&keys, None).map_err(arrow)?;
    take_record_batch(&all, &indices).map_err(arrow)
}

/// Whether a commit built with `with_max_retries(0)` definitely did not land
/// because another commit took its version (a lost race, worth checking
/// again on a fresh snapshot); any other error leaves the outcome unknown.
pub(crate) fn lost_commit_race(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(_) | TransactionError::VersionAlreadyExists(_)
        } | DeltaTableError::VersionAlreadyExists(_)
    )
}

/// Deletes files written for a compaction that was not committed.
async fn delete_outputs(store: &dyn ObjectStore, adds: &[Add]) {
    for add in adds {
        let path = Path::parse(&add.path).unwrap_or_else(|_| Path::from(add.path.as_str()));
        if let Err(e) = store.delete(&path).await {
            warn!(path = %path, error = %e, "Could not delete an uncommitted compaction file; vacuum will.");
        }
    }
}

#[cfg(test)]
mod tests {
    use deltalake::DeltaTableBuilder;

    use super::*;
    use crate::LakeLocation;
    use crate::read::read_table;
    use crate::tables::tests::node_exporter_like;
    use crate::tables::{DAY_MS, SampleRow, samples_batch, sort_samples};
    use crate::writer::{AppTransaction, TableWriter};

    const WS: &str = "ws-3f0e7d8c-1b2a-4c5d-8e9f-0a1b2c3d4e5f";

    /// Appends `rows` as one file per scrape (`samples` scrapes).
    async fn flush_per_scrape(writer: &DeltaTableWriter, rows: &[SampleRow], samples: usize) {
        for i in 0..samples {
            let mut scrape: Vec<SampleRow> = rows.iter().skip(i).step_by(samples).cloned().collect();
            sort_samples(&mut scrape);
            let batch = samples_batch(&scrape).unwrap();
            let txn = AppTransaction {
                app_id: "t/0".into(),
                version: i as u64,
                expected_previous: i.checked_sub(1).map(|v| v as u64),
            };
            writer.append(WS, TableKind::Samples, vec![batch], &txn).await.unwrap();
        }
    }

    /// (files, bytes) of the table's current version.
    async fn active(lake: &LakeLocation) -> (usize, u64) {
        let url = lake.table_url(WS, TableKind::Samples);
        let mut table = DeltaTableBuilder::from_url(url).unwrap().build().unwrap();
        table.load().await.unwrap();
        let snapshot = table.snapshot().unwrap();
        let files: Vec<i64> = snapshot.log_data().iter().map(|f| f.size()).collect();
        (files.len(), files.iter().map(|s| *s as u64).sum())
    }

    /// Every row, as comparable tuples, sorted.
    async fn rows(lake: &LakeLocation) -> Vec<(String, i64, i64, Option<u64>)> {
        let mut out = Vec::new();
        for f in read_table(lake, WS, TableKind::Samples).await.unwrap() {
            let r = &f.rows;
            let m = r.column_by_name(COL_METRIC_NAME).unwrap();
            let m = m.as_any().downcast_ref::<deltalake::arrow::array::StringArray>().unwrap();
            let id = r.column_by_name(COL_SERIES_ID).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let ts = r.column_by_name(COL_TIMESTAMP).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let v = r.column_by_name(schemas::tables::COL_VALUE).unwrap();
            let v = v.as_any().downcast_ref::<deltalake::arrow::array::Float64Array>().unwrap();
            for i in 0..r.num_rows() {
                out.push((
                    m.value(i).to_owned(),
                    id.value(i),
                    ts.value(i),
                    v.is_valid(i).then(|| v.value(i).to_bits()),
                ));
            }
        }
        out.sort();
        out
    }

    fn policy(now_ms: i64) -> CompactionPolicy {
        CompactionPolicy { now_ms, first_day: 0, min_files: 8, today_min_files: 256, target_file_bytes: 64 << 20 }
    }

    #[tokio::test]
    async fn compaction_bytes_per_sample() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::from_path(dir.path()).unwrap();
        let writer = DeltaTableWriter::new(lake.clone());
        let (series, samples) = (1_000, 120);
        let data = node_exporter_like(series, samples);
        let n = data.len();
        flush_per_scrape(&writer, &data, samples as usize).await;
        let before_rows = rows(&lake).await;
        let (files, before) = active(&lake).await;
        assert_eq!(files, samples as usize);
        let now = data[0].timestamp_ms + 10 * DAY_MS;
        let report = writer.compact_samples(WS, &policy(now)).await.unwrap();
        assert_eq!((report.partitions, report.files_removed, report.files_added), (1, 120, 1), "{report:?}");
        assert_eq!(report.rows, n as u64);
        let (files, after) = active(&lake).await;
        assert_eq!(files, 1);
        assert_eq!(rows(&lake).await, before_rows);
        let per = |b: u64| b as f64 / n as f64;
        println!(
            "samples: {n}; {samples} flush files: {before} B = {:.2} B/sample; compacted: {after} B = {:.2} B/sample",
            per(before),
            per(after)
        );
        assert!(after * 2 < before, "compaction should at least halve {before} B, got {after} B");
        // A second pass finds nothing to do.
        assert_eq!(writer.compact_samples(WS, &policy(now)).await.unwrap(), CompactionReport::default());
    }

    #[tokio::test]
    async fn inputs_removed_by_retention_of_another_process_abort_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::from_path(dir.path()).unwrap();
        let writer = DeltaTableWriter::new(lake.clone());
        let data = node_exporter_like(20, 12);
        flush_per_scrape(&writer, &data, 12).await;
        let now = data[0].timestamp_ms + 10 * DAY_MS;
        let url = lake.table_url(WS, TableKind::Samples);
        let (table, days) = writer.plan_compaction(&url, &policy(now)).await.unwrap().unwrap();
        let (day, inputs) = days.into_iter().next().unwrap();
        let done = rewrite(&table, &url, inputs, &policy(now)).await.unwrap().unwrap();
        // Another process's retention removes the day meanwhile.
        let other = DeltaTableWriter::new(lake.clone());
        assert_eq!(other.expire_samples(WS, day_of(now), now).await.unwrap(), 12);
        assert!(!writer.commit_compaction(&url, &day, &done, &policy(now)).await.unwrap(), "must abort");
        assert_eq!(active(&lake).await.0, 0, "expired rows not resurrected");
        assert!(rows(&lake).await.is_empty());
        // Through the whole path: nothing to compact any more.
        assert_eq!(writer.compact_samples(WS, &policy(now)).await.unwrap(), CompactionReport::default());
    }
}
