//! Compaction with expiry of the `series` and `metadata` tables.
//!
//! Workers append a `series` row when a series first reaches the lake and
//! again every `series_refresh_ms` while it is active, and a `metadata` row
//! when a metric's metadata changes or is refreshed; so both tables grow by
//! small files of rows repeating keys, and keep rows of series and metrics
//! gone for longer than the retention. In each maintenance pass, when a table
//! has more than `compaction_min_files` files or a file holds an expired row
//! (by its Delta statistics), the table is rewritten:
//!
//! ```text
//!  snapshot (table lock) ─► read every file ─► one row per key:
//!      series:   series_id → labels, min(first_timestamp), max(last_timestamp)
//!      metadata: metric_name → the newest row
//!  ─► drop rows whose last_timestamp (series: < cutoff − series_refresh_ms,
//!     the most a row lags its series) / timestamp (metadata) < cutoff
//!  ─► write sorted files ─► ONE commit (table lock, fresh snapshot, inputs still
//!     active): remove(inputs) + add(outputs)
//! ```
//!
//! The commit is safe while appends go on for the reasons given in
//! [`crate::compaction`] (appends only add files, the inputs are checked
//! against the snapshot the commit is built on, delta-rs' rebase is off and
//! a lost race is retried on a fresh snapshot). Application transactions
//! are table-level actions, untouched by the rewrite, so exactly-once
//! resumption is unaffected. Vacuum deletes the removed files after
//! `expired_file_grace_ms` (these tables keep no time travel), so expired
//! label sets leave the disk within a day like expired samples.

use std::collections::{HashMap, HashSet};

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError, Path};
use schemas::tables::{
    COL_FIRST_TIMESTAMP, COL_HELP, COL_LABELS, COL_LAST_TIMESTAMP, COL_METRIC_NAME, COL_SERIES_ID, COL_TIMESTAMP,
    COL_TYPE, COL_UNIT,
};
use tracing::{info, warn};
use url::Url;

use crate::compaction::lost_commit_race;
use crate::error::{Error, Result};
use crate::scan::read_file;
use crate::tables::{self, MetadataRow, SeriesRow, TableKind, series_id_from_i64};
use crate::writer::DeltaTableWriter;

/// How many times a rewrite commit is rebuilt on a fresh snapshot after
/// losing a race to another process's commit.
const COMMIT_ATTEMPTS: usize = 3;

/// When and what a rewrite of `series` / `metadata` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewritePolicy {
    /// Now, Unix milliseconds (from the injected clock): stamps the removals.
    pub now_ms: i64,
    /// Rows last seen before this, Unix milliseconds, are expired (the start
    /// of the oldest retained day).
    pub cutoff_ms: i64,
    /// Rewrite when the table has more files than this.
    pub min_files: usize,
    /// How far a `series` row's `last_timestamp` may lag the series' newest
    /// sample (the workers' `series_refresh_ms`): a series is expired only
    /// once its row is older than `cutoff_ms` by this much, so no retained
    /// sample loses its labels.
    pub series_lag_ms: i64,
}

/// What a rewrite did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteReport {
    /// Files replaced.
    pub files_removed: usize,
    /// Rows read.
    pub rows_read: u64,
    /// Rows written (one per key still retained).
    pub rows_written: u64,
    /// Keys dropped as expired.
    pub expired: u64,
}

/// One input file.
struct Input {
    path: Path,
    size: u64,
    remove: Remove,
}

impl DeltaTableWriter {
    /// Rewrites the `series` or `metadata` table of a workspace as the
    /// module doc says; a report of zeros when it was not due.
    ///
    /// # Errors
    /// [`Error::Delta`] when reading, writing or committing fails (an input
    /// removed meanwhile only abandons the rewrite).
    pub(crate) async fn rewrite_table(
        &self,
        workspace_id: &str,
        kind: TableKind,
        policy: &RewritePolicy,
    ) -> Result<RewriteReport> {
        let time_col = match kind {
            TableKind::Series => COL_LAST_TIMESTAMP,
            TableKind::Metadata => COL_TIMESTAMP,
            TableKind::Samples => return Ok(RewriteReport::default()),
        };
        let url = self.lake().table_url(workspace_id, kind);
        let slot = self.slot(&url);
        let (table, inputs) = {
            let mut guard = slot.lock().await;
            if !self.load(&mut guard, &url, kind, false).await? {
                return Ok(RewriteReport::default());
            }
            let table = guard.as_ref().ok_or_else(|| Error::delta(&url, "loading", DeltaTableError::NotInitialized))?;
            let snapshot = table.snapshot().map_err(|e| Error::delta(&url, "reading the snapshot", e))?;
            let mut has_expired = false;
            let cutoff = match kind {
                TableKind::Series => policy.cutoff_ms.saturating_sub(policy.series_lag_ms),
                _ => policy.cutoff_ms,
            };
            let inputs: Vec<Input> = snapshot
                .log_data()
                .iter()
                .map(|f| {
                    has_expired |= min_stat(f.stats().as_deref(), time_col).is_none_or(|t| t < cutoff);
                    Input {
                        path: f.object_store_path(),
                        size: u64::try_from(f.size()).unwrap_or(0),
                        remove: f.remove_action(true),
                    }
                })
                .collect();
            if inputs.is_empty() || (inputs.len() <= policy.min_files && !has_expired) {
                return Ok(RewriteReport::default());
            }
            (table.clone(), inputs)
        };
        let store = table.log_store().object_store(None);
        let mut report = RewriteReport { files_removed: inputs.len(), ..RewriteReport::default() };
        let mut series: HashMap<u64, SeriesRow> = HashMap::new();
        let mut metadata: HashMap<String, MetadataRow> = HashMap::new();
        for input in &inputs {
            let batches = read_file(&store, &url, &input.path, input.size, &[], None, None).await?.batches;
            for batch in &batches {
                report.rows_read += batch.num_rows() as u64;
                match kind {
                    TableKind::Series => merge_series(&url, batch, &mut series)?,
                    _ => merge_metadata(&url, batch, &mut metadata)?,
                }
            }
        }
        let before = (series.len() + metadata.len()) as u64;
        series.retain(|_, r| r.last_timestamp_ms >= policy.cutoff_ms.saturating_sub(policy.series_lag_ms));
        metadata.retain(|_, r| r.timestamp_ms >= policy.cutoff_ms);
        report.rows_written = (series.len() + metadata.len()) as u64;
        report.expired = before - report.rows_written;
        let batch = match kind {
            TableKind::Series if !series.is_empty() => Some(tables::series_batch(&series)?),
            TableKind::Metadata if !metadata.is_empty() => {
                let mut rows: Vec<MetadataRow> = metadata.into_values().collect();
                rows.sort_by(|a, b| a.metric_name.cmp(&b.metric_name));
                Some(tables::metadata_batch(&rows)?)
            }
            _ => None,
        };
        let adds = match batch {
            Some(batch) => {
                let mut writer = RecordBatchWriter::for_table(&table)
                    .map_err(|e| Error::delta(&url, "starting a rewrite", e))?
                    .with_writer_properties(kind.writer_properties());
                writer.write(batch).await.map_err(|e| Error::delta(&url, "writing a rewritten file", e))?;
                writer.flush().await.map_err(|e| Error::delta(&url, "finishing a rewritten file", e))?
            }
            None => Vec::new(),
        };
        if self.commit_rewrite(&url, kind, &inputs, &adds, policy).await? {
            info!(
                table = %url, files = report.files_removed, rows_read = report.rows_read,
                rows_written = report.rows_written, expired = report.expired, "Rewrote a table."
            );
            Ok(report)
        } else {
            warn!(table = %url, "Rewrite abandoned: an input was removed meanwhile.");
            for add in &adds {
                let path = Path::parse(&add.path).unwrap_or_else(|_| Path::from(add.path.as_str()));
                if let Err(e) = store.delete(&path).await {
                    warn!(path = %path, error = %e, "Could not delete an uncommitted file; vacuum will.");
                }
            }
            Ok(RewriteReport::default())
        }
    }

    /// Commits a rewrite on a fresh snapshot under the table lock; `false`
    /// when an input is no longer active (nothing committed).
    async fn commit_rewrite(
        &self,
        url: &Url,
        kind: TableKind,
        inputs: &[Input],
        adds: &[Add],
        policy: &RewritePolicy,
    ) -> Result<bool> {
        let slot = self.slot(url);
        let mut guard = slot.lock().await;
        for attempt in 1..=COMMIT_ATTEMPTS {
            if !self.load(&mut guard, url, kind, false).await? {
                return Ok(false);
            }
            let table: &DeltaTable =
                guard.as_ref().ok_or_else(|| Error::delta(url, "loading", DeltaTableError::NotInitialized))?;
            let snapshot = table.snapshot().map_err(|e| Error::delta(url, "reading the snapshot", e))?;
            let active: HashSet<String> = snapshot.log_data().iter().map(|f| f.path().into_owned()).collect();
            if attempt > 1 && !adds.is_empty() && adds.iter().all(|a| active.contains(&a.path)) {
                return Ok(true); // our commit landed after all
            }
            if !inputs.iter().all(|i| active.contains(&i.remove.path)) {
                return Ok(false);
            }
            let actions: Vec<Action> = inputs
                .iter()
                .map(|i| {
                    let mut r = i.remove.clone();
                    r.deletion_timestamp = Some(policy.now_ms);
                    Action::Remove(r)
                })
                .chain(adds.iter().cloned().map(Action::Add))
                .collect();
            let column = if kind == TableKind::Series { COL_LAST_TIMESTAMP } else { COL_TIMESTAMP };
            let operation = DeltaOperation::Delete { predicate: Some(format!("{column} < {}", policy.cutoff_ms)) };
            let committed = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
                .with_actions(actions)
                .build(Some(snapshot), table.log_store(), operation)
                .await;
            self.table_changed(url);
            match committed {
                Ok(_) => return Ok(true),
                Err(e) if attempt < COMMIT_ATTEMPTS && lost_commit_race(&e) => {
                    warn!(table = %url, error = %e, "Rewrite commit lost a race; checking again on a fresh snapshot.");
                }
                Err(e) => return Err(Error::delta(url, "committing a rewrite", e)),
            }
        }
        Ok(false)
    }
}

/// The minimum of a column in a Delta `add` action's statistics.
fn min_stat(stats: Option<&str>, column: &str) -> Option<i64> {
    let json: serde_json::Value = serde_json::from_str(stats?).ok()?;
    json["minValues"][column].as_i64()
}

fn column_err(url: &Url, what: &str) -> Error {
    Error::delta(url, "reading a file to rewrite", DeltaTableError::Generic(what.into()))
}

fn int64<'a>(url: &Url, batch: &'a RecordBatch, name: &str) -> Result<&'a deltalake::arrow::array::Int64Array> {
    batch.column_by_name(name).and_then(|c| c.as_primitive_opt::<Int64Type>()).ok_or_else(|| column_err(url, name))
}

fn strings<'a>(url: &Url, batch: &'a RecordBatch, name: &str) -> Result<&'a deltalake::arrow::array::StringArray> {
    batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(|| column_err(url, name))
}

/// Folds a `series` batch into one row per series.
fn merge_series(url: &Url, batch: &RecordBatch, out: &mut HashMap<u64, SeriesRow>) -> Result<()> {
    let ids = int64(url, batch, COL_SERIES_ID)?;
    let names = strings(url, batch, COL_METRIC_NAME)?;
    let first = int64(url, batch, COL_FIRST_TIMESTAMP)?;
    let last = int64(url, batch, COL_LAST_TIMESTAMP)?;
    let labels =
        batch.column_by_name(COL_LABELS).and_then(|c| c.as_map_opt()).ok_or_else(|| column_err(url, COL_LABELS))?;
    let keys = labels.keys().as_string_opt::<i32>().ok_or_else(|| column_err(url, "label names"))?;
    let values = labels.values().as_string_opt::<i32>().ok_or_else(|| column_err(url, "label values"))?;
    let offsets = labels.value_offsets();
    for row in 0..batch.num_rows() {
        let id = series_id_from_i64(ids.value(row));
        let (lo, hi) = (first.value(row), last.value(row));
        if let Some(existing) = out.get_mut(&id) {
            existing.first_timestamp_ms = existing.first_timestamp_ms.min(lo);
            existing.last_timestamp_ms = existing.last_timestamp_ms.max(hi);
            continue;
        }
        let (a, b) = (usize::try_from(offsets[row]).unwrap_or(0), usize::try_from(offsets[row + 1]).unwrap_or(0));
        let set: Vec<(String, String)> = (a..b)
            .filter(|&i| values.is_valid(i))
            .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
            .collect();
        out.insert(
            id,
            SeriesRow {
                series_id: id,
                metric_name: names.value(row).into(),
                labels: set.into(),
                first_timestamp_ms: lo,
                last_timestamp_ms: hi,
            },
        );
    }
    Ok(())
}

/// The newest metadata of each metric in `batches` (of a `metadata`
/// table), by metric name.
pub(crate) fn newest_metadata(url: &Url, batches: &[RecordBatch]) -> Result<Vec<common::seams::MetricMetadata>> {
    let mut newest = HashMap::new();
    for batch in batches {
        merge_metadata(url, batch, &mut newest)?;
    }
    let mut out: Vec<_> = newest
        .into_values()
        .map(|r| common::seams::MetricMetadata {
            metric: r.metric_name,
            metric_type: r.metric_type.to_owned(),
            help: r.help,
            unit: r.unit,
        })
        .collect();
    out.sort_by(|a, b| a.metric.cmp(&b.metric));
    Ok(out)
}

/// Folds a `metadata` batch into the newest row per metric.
fn merge_metadata(url: &Url, batch: &RecordBatch, out: &mut HashMap<String, MetadataRow>) -> Result<()> {
    let names = strings(url, batch, COL_METRIC_NAME)?;
    let types = strings(url, batch, COL_TYPE)?;
    let helps = strings(url, batch, COL_HELP)?;
    let units = strings(url, batch, COL_UNIT)?;
    let ts = int64(url, batch, COL_TIMESTAMP)?;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        if out.get(names.value(row)).is_some_and(|r| r.timestamp_ms >= t) {
            continue;
        }
        out.insert(
            names.value(row).to_owned(),
            MetadataRow {
                metric_name: names.value(row).to_owned(),
                metric_type: tables::metric_type_static(types.value(row)),
                help: helps.value(row).to_owned(),
                unit: units.value(row).to_owned(),
                timestamp_ms: t,
            },
        );
    }
    Ok(())
}
