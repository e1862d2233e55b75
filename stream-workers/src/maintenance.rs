//! Lake maintenance: retention, vacuum and workspace deletion, in the
//! background and safe while appends go on.
//!
//! ```text
//!  every maintenance_interval_ms, for each watched workspace:
//!    retention   samples: one commit of `remove` actions for every file of a
//!                `day` partition entirely older than now − retention_period_days
//!    compaction  samples: small files of a day rewritten into large sorted
//!                ones, one commit per day (crate::compaction)
//!    rewrite     series, metadata: one row per key, expired keys dropped,
//!                one commit per table (crate::rewrite)
//!    vacuum      every table: list the table directory and delete
//!                  · files removed by retention, expired_file_grace_ms after removal
//!                  · other removed files, after delta.deletedFileRetentionDuration (7 days)
//!                    (series, metadata: after expired_file_grace_ms, no time travel)
//!                  · files no commit references (failed commits), orphan_file_grace_ms old
//!  checkpoints   written by delta-rs after the commit reaching delta.checkpointInterval
//! ```
//!
//! # Safety while appends go on
//!
//! In one process, retention and appends to a table take the same table lock
//! in [`DeltaTableWriter`], so they never race. Across processes, they race
//! through Delta's optimistic concurrency: a retention commit that lost to
//! appends is rebased by delta-rs (appends add no file it removes); an
//! append that lost to a retention commit is refused by delta-rs' conflict
//! checker without datafusion (it cannot evaluate the append's read
//! predicate, so it assumes the append read the removed files) and the worker
//! retries it, leaving its first Parquet files as orphans for vacuum. So no
//! sample is lost, and none is doubled (the retry is fenced as always).
//!
//! Vacuum decides from a snapshot loaded *before* it lists the directory:
//! a file committed after the snapshot is younger than the orphan grace (a
//! commit follows its Parquet write within seconds), a file removed after
//! the snapshot is still "active" in it; either is kept.
//!
//! # Deviation from Delta's vacuum default
//!
//! Delta keeps removed files 7 days so readers can time-travel to older
//! versions. Files removed by retention hold expired data that PromLake must
//! remove from disk within a day, so they are deleted after
//! `expired_file_grace_ms` (1 hour by default) instead. The cost: a reader
//! that loaded a snapshot older than the grace and reads an expired day
//! afterwards gets a missing-file error for data it is no longer entitled to,
//! and time travel to before a retention commit fails once the grace passed.
//! Every other removed file keeps Delta's 7 days.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};

use common::clock::Clock;
use common::limits::{Overrides, RETENTION_PERIOD_DAYS};
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::protocol::DeltaOperation;
use deltalake::table::config::TablePropertiesExt as _;
use deltalake::{DeltaTableError, ObjectStore, Path};
use futures::StreamExt;
use schemas::tables::COL_DAY;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::compaction::{CompactionPolicy, CompactionReport};
use crate::config::StreamWorkersConfig;
use crate::error::{Error, Result};
use crate::lake::LakeLocation;
use crate::metrics::{Metrics, VacuumLabels, WorkspaceLabels};
use crate::rewrite::{RewritePolicy, RewriteReport};
use crate::tables::{DAY_MS, TableKind, civil_date, day_of};
use crate::writer::{DeltaTableWriter, TableWriter};

/// What [`TableWriter::vacuum`] may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumPolicy {
    /// Now, Unix milliseconds (from the injected clock).
    pub now_ms: i64,
    /// Files of `day` partitions before this day (days since the epoch) hold
    /// expired data: once removed from the table, they are deleted after
    /// `expired_grace_ms` rather than the table's deleted-file retention.
    pub expired_before_day: Option<i32>,
    /// See [`StreamWorkersConfig::expired_file_grace_ms`].
    pub expired_grace_ms: i64,
    /// See [`StreamWorkersConfig::orphan_file_grace_ms`].
    pub orphan_grace_ms: i64,
    /// Every removed file is deleted after `expired_grace_ms`, not the
    /// table's deleted-file retention: set for `series` and `metadata`,
    /// whose rewrites remove expired label sets ([`crate::rewrite`]) and
    /// which keep no time travel.
    pub no_time_travel: bool,
}

/// What a vacuum deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Removed files of expired days.
    pub expired: usize,
    /// Other removed files past the table's deleted-file retention.
    pub removed: usize,
    /// Files no commit references.
    pub orphans: usize,
}

/// What one maintenance pass did, summed over workspaces and tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Files removed from `samples` by retention (commits, not deletions).
    pub expired_files_removed: usize,
    /// Files deleted by vacuum.
    pub vacuumed: VacuumReport,
    /// What compaction of `samples` did.
    pub compacted: CompactionReport,
    /// What the rewrites of `series` and `metadata` did.
    pub rewritten: RewriteReport,
}

/// The state of the background maintenance, shared by [`crate::StreamWorkers`]
/// and its maintenance task.
#[derive(Debug)]
pub(crate) struct Maintenance {
    pub(crate) writer: Arc<dyn TableWriter>,
    pub(crate) overrides: Arc<Overrides>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: StreamWorkersConfig,
    pub(crate) metrics: Metrics,
    /// The workspaces whose tables are maintained (those watched).
    pub(crate) workspaces: StdMutex<BTreeSet<String>>,
    /// Held by a pass and by a workspace deletion: they never overlap.
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl Maintenance {
    /// One pass over every watched workspace: retention, compaction, then vacuum.
    /// A failing workspace does not stop the others.
    ///
    /// # Errors
    /// The first failure (the pass still covered every workspace).
    pub(crate) async fn run_once(&self) -> Result<MaintenanceReport> {
        let _pass = self.lock.lock().await;
        let workspaces: Vec<String> =
            self.workspaces.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        let mut report = MaintenanceReport::default();
        let mut first_error = None;
        for ws in workspaces {
            if let Err(e) = self.workspace(&ws, &mut report).await {
                warn!(workspace = %ws, error = %e, "Lake maintenance failed; retried at the next pass.");
                self.metrics.maintenance_failures.get_or_create(&WorkspaceLabels { workspace: ws.clone() }).inc();
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn workspace(&self, ws: &str, report: &mut MaintenanceReport) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let days = self
            .overrides
            .retention_period_days(ws)
            .clamp(*RETENTION_PERIOD_DAYS.start(), *RETENTION_PERIOD_DAYS.end());
        // A day partition is entirely older than the cutoff when it ends at or
        // before it: every day before the cutoff's day.
        let before_day = day_of(now_ms.saturating_sub(i64::from(days) * DAY_MS));
        let removed = self.writer.expire_samples(ws, before_day, now_ms).await?;
        if removed > 0 {
            info!(workspace = %ws, before = %civil_date(before_day), files = removed, "Retention removed expired days.");
            self.metrics
                .retention_removed
                .get_or_create(&WorkspaceLabels { workspace: ws.to_owned() })
                .inc_by(removed as u64);
        }
        report.expired_files_removed += removed;
        // Compaction leaves the oldest retained day to retention (see the
        // compaction module doc).
        let policy = CompactionPolicy {
            now_ms,
            first_day: before_day.saturating_add(1),
            min_files: self.config.compaction_min_files,
            today_min_files: self.config.compaction_today_min_files,
            target_file_bytes: self.config.compaction_target_file_bytes,
        };
        let compacted = self.writer.compact_samples(ws, &policy).await?;
        if compacted.files_removed > 0 {
            let labels = WorkspaceLabels { workspace: ws.to_owned() };
            self.metrics.compacted_files.get_or_create(&labels).inc_by(compacted.files_removed as u64);
            self.metrics.compacted_rows.get_or_create(&labels).inc_by(compacted.rows);
        }
        report.compacted.partitions += compacted.partitions;
        report.compacted.files_removed += compacted.files_removed;
        report.compacted.files_added += compacted.files_added;
        report.compacted.rows += compacted.rows;
        report.compacted.aborted += compacted.aborted;
        let policy = RewritePolicy {
            now_ms,
            cutoff_ms: i64::from(before_day).saturating_mul(DAY_MS),
            min_files: self.config.compaction_min_files,
            series_lag_ms: i64::try_from(self.config.series_refresh_ms).unwrap_or(i64::MAX),
        };
        for kind in [TableKind::Series, TableKind::Metadata] {
            let done = self.writer.rewrite_table(ws, kind, &policy).await?;
            report.rewritten.files_removed += done.files_removed;
            report.rewritten.rows_read += done.rows_read;
            report.rewritten.rows_written += done.rows_written;
            report.rewritten.expired += done.expired;
        }
        for kind in TableKind::ALL {
            let policy = VacuumPolicy {
                now_ms,
                expired_before_day: (kind == TableKind::Samples).then_some(before_day),
                expired_grace_ms: i64::try_from(self.config.expired_file_grace_ms).unwrap_or(i64::MAX),
                orphan_grace_ms: i64::try_from(self.config.orphan_file_grace_ms).unwrap_or(i64::MAX),
                no_time_travel: kind != TableKind::Samples,
            };
            let done = self.writer.vacuum(ws, kind, &policy).await?;
            for (reason, n) in [("expired", done.expired), ("removed", done.removed), ("orphan", done.orphans)] {
                if n > 0 {
                    let labels = VacuumLabels { workspace: ws.to_owned(), reason };
                    self.metrics.vacuumed.get_or_create(&labels).inc_by(n as u64);
                }
            }
            report.vacuumed.expired += done.expired;
            report.vacuumed.removed += done.removed;
            report.vacuumed.orphans += done.orphans;
        }
        Ok(())
    }

    /// Runs a pass after the start delay, then every interval, until `cancel`.
    pub(crate) async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut wait = std::time::Duration::from_millis(self.config.maintenance_start_delay_ms);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            // Errors are logged and counted per workspace in `run_once`.
            let _ = self.run_once().await;
            wait = self.config.maintenance_interval();
        }
    }
}

/// How many times a retention commit is rebuilt from a fresh snapshot after
/// a conflict with another process's commit (delta-rs itself rebases over
/// commits that do not conflict).
const RETENTION_ATTEMPTS: usize = 3;

impl DeltaTableWriter {
    /// [`TableWriter::expire_samples`] over delta-rs.
    pub(crate) async fn expire_samples_delta(&self, workspace_id: &str, before_day: i32, now_ms: i64) -> Result<usize> {
        let kind = TableKind::Samples;
        let url = self.lake().table_url(workspace_id, kind);
        let slot = self.slot(&url);
        let mut guard = slot.lock().await;
        let cutoff = civil_date(before_day);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !self.load(&mut guard, &url, kind, false).await? {
                return Ok(0);
            }
            let table = guard.as_ref().ok_or_else(|| Error::delta(&url, "loading", DeltaTableError::NotInitialized))?;
            let snapshot = table.snapshot().map_err(|e| Error::delta(&url, "reading the snapshot", e))?;
            let removes: Vec<Action> = snapshot
                .log_data()
                .iter()
                .filter(|f| {
                    f.partition_values_map()
                        .get(COL_DAY)
                        .and_then(|d| d.as_deref())
                        .is_some_and(|d| d < cutoff.as_str())
                })
                .map(|f| {
                    let mut remove = f.remove_action(true);
                    remove.deletion_timestamp = Some(now_ms);
                    Action::Remove(remove)
                })
                .collect();
            if removes.is_empty() {
                return Ok(0);
            }
            let files = removes.len();
            let operation = DeltaOperation::Delete { predicate: Some(format!("{COL_DAY} < '{cutoff}'")) };
            let committed = CommitBuilder::from(CommitProperties::default())
                .with_actions(removes)
                .build(Some(snapshot), table.log_store(), operation)
                .await;
            self.table_changed(&url);
            match committed {
                Ok(_) => return Ok(files),
                Err(e) if attempt < RETENTION_ATTEMPTS && matches!(e, DeltaTableError::Transaction { .. }) => {
                    warn!(table = %url, error = %e, "Retention commit conflicted; retrying on a fresh snapshot.");
                }
                Err(e) => return Err(Error::delta(&url, "committing the retention removal", e)),
            }
        }
    }

    /// [`TableWriter::vacuum`] over delta-rs: lists the table's directory
    /// (delta-rs' own vacuum applies one retention to every removed file).
    pub(crate) async fn vacuum_delta(
        &self,
        workspace_id: &str,
        kind: TableKind,
        policy: &VacuumPolicy,
    ) -> Result<VacuumReport> {
        let url = self.lake().table_url(workspace_id, kind);
        let slot = self.slot(&url);
        // The snapshot is taken under the table lock, the listing without it
        // (see the module doc for why that is safe).
        let (store, active, tombstones, retention_ms) = {
            let mut guard = slot.lock().await;
            if !self.load(&mut guard, &url, kind, false).await? {
                return Ok(VacuumReport::default());
            }
            let table = guard.as_ref().ok_or_else(|| Error::delta(&url, "loading", DeltaTableError::NotInitialized))?;
            let state = table.snapshot().map_err(|e| Error::delta(&url, "reading the snapshot", e))?;
            let active: HashSet<Path> = state.log_data().iter().map(|f| f.object_store_path()).collect();
            let mut tombstones: HashMap<Path, Option<i64>> = HashMap::new();
            let mut stream = state.all_tombstones(table.log_store().as_ref());
            while let Some(t) = stream.next().await {
                let t = t.map_err(|e| Error::delta(&url, "reading removed files", e))?;
                let path = t.path();
                let path = Path::parse(path.as_ref()).unwrap_or_else(|_| Path::from(path.as_ref()));
                tombstones.insert(path, t.deletion_timestamp());
            }
            drop(stream);
            let retention_ms =
                i64::try_from(state.table_config().deleted_file_retention_duration().as_millis()).unwrap_or(i64::MAX);
            (table.log_store().object_store(None), active, tombstones, retention_ms)
        };
        let expired_before = policy.expired_before_day.map(civil_date);
        let mut report = VacuumReport::default();
        let mut doomed = Vec::new();
        let mut listing = store.list(None);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| Error::delta(&url, "listing files", e.into()))?;
            let path = meta.location;
            if hidden(&path) || active.contains(&path) {
                continue;
            }
            let modified_ms = meta.last_modified.timestamp_millis();
            match tombstones.get(&path) {
                Some(deleted_ms) => {
                    let deleted_ms = deleted_ms.unwrap_or(modified_ms);
                    let expired = expired_before
                        .as_deref()
                        .is_some_and(|cutoff| day_partition(&path).is_some_and(|d| d.as_str() < cutoff));
                    let grace = if expired || policy.no_time_travel { policy.expired_grace_ms } else { retention_ms };
                    if policy.now_ms.saturating_sub(deleted_ms) >= grace {
                        if expired {
                            report.expired += 1;
                        } else {
                            report.removed += 1;
                        }
                        doomed.push(path);
                    }
                }
                None if policy.now_ms.saturating_sub(modified_ms) >= policy.orphan_grace_ms => {
                    report.orphans += 1;
                    doomed.push(path);
                }
                None => {}
            }
        }
        drop(listing);
        delete_all(store.as_ref(), &doomed, &url).await?;
        Ok(report)
    }

    /// [`TableWriter::delete_workspace`] over delta-rs.
    pub(crate) async fn delete_workspace_delta(&self, workspace_id: &str) -> Result<()> {
        self.forget_series_index(workspace_id);
        for kind in TableKind::ALL {
            let url = self.lake().table_url(workspace_id, kind);
            let slot = self.slot(&url);
            // Waits for an operation in flight, then forgets the table.
            let mut guard = slot.lock().await;
            *guard = None;
            let table = self
                .lake()
                .table_builder(&url)
                .and_then(|b| b.build())
                .map_err(|e| Error::delta(&url, "opening", e))?;
            let store = table.log_store().object_store(None);
            let mut log = Vec::new();
            let mut data = Vec::new();
            let mut listing = store.list(None);
            while let Some(meta) = listing.next().await {
                match meta {
                    Ok(meta) if meta.location.as_ref().starts_with("_delta_log") => log.push(meta.location),
                    Ok(meta) => data.push(meta.location),
                    Err(deltalake::ObjectStoreError::NotFound { .. }) => {}
                    Err(e) => return Err(Error::delta(&url, "listing files", e.into())),
                }
            }
            drop(listing);
            // The log first: once it is gone no reader sees a table whose
            // files are half deleted; leftover data files are unreferenced.
            delete_all(store.as_ref(), &log, &url).await?;
            delete_all(store.as_ref(), &data, &url).await?;
            self.forget_table(&url);
        }
        // The local store leaves empty directories behind.
        let root = self.lake().table_url(workspace_id, TableKind::Samples);
        if let Some(dir) = LakeLocation::local_dir(&root).and_then(|d| d.parent().map(std::path::Path::to_path_buf)) {
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::delta(&root, "removing the workspace directory", DeltaTableError::from(e)));
                }
            }
        }
        Ok(())
    }
}

async fn delete_all(store: &dyn ObjectStore, paths: &[Path], url: &url::Url) -> Result<()> {
    for path in paths {
        match store.delete(path).await {
            Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => {}
            Err(e) => return Err(Error::delta(url, "deleting a file", e.into())),
        }
    }
    Ok(())
}

/// Delta's hidden files (`_delta_log/`, `_change_data/`, `.tmp` files…):
/// a path component starting with `_` or `.`. Never a data file of ours.
fn hidden(path: &Path) -> bool {
    path.parts().any(|p| p.as_ref().starts_with('_') || p.as_ref().starts_with('.'))
}

/// The `YYYY-MM-DD` of a `day=YYYY-MM-DD/…` path.
fn day_partition(path: &Path) -> Option<String> {
    path.parts().find_map(|p| p.as_ref().strip_prefix(COL_DAY)?.strip_prefix('=').map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_partition_paths() {
        assert!(hidden(&Path::from("_delta_log/00000000000000000000.json")));
        assert!(hidden(&Path::from("day=2024-01-01/.part-1.parquet.crc")));
        assert!(!hidden(&Path::from("day=2024-01-01/part-1.parquet")));
        assert_eq!(day_partition(&Path::from("day=2024-01-01/part-1.parquet")).as_deref(), Some("2024-01-01"));
        assert_eq!(day_partition(&Path::from("part-1.parquet")), None);
    }
}
