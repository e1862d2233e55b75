//! The seam over Delta Lake: [`TableWriter`] appends Arrow batches to one
//! table of a workspace in one commit that carries an application
//! transaction, and reads a table's transaction version back.
//!
//! [`DeltaTableWriter`] implements it with delta-rs (`RecordBatchWriter` to
//! write Parquet files, `CommitBuilder` to commit them with a `txn` action);
//! [`MemoryTableWriter`] keeps rows in memory for unit tests.
//!
//! An append is *fenced*: it states the transaction version it expects the
//! table to hold for its app id (what the worker read at start or committed
//! last). The writer re-reads the table just before committing and refuses
//! ([`Error::Fenced`]) if another writer moved it, and delta-rs' conflict
//! checker refuses a commit racing another one with the same app id; so two
//! owners of one partition cannot both append the same offsets. Finding the
//! table already at the version being committed means an earlier attempt
//! succeeded (for example its answer was lost): that is
//! [`AppendOutcome::AlreadyCommitted`], not an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use common::seams::{MetricMetadata, Selection};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use futures::StreamExt as _;
use url::Url;

use crate::compaction::{CompactionPolicy, CompactionReport};
use crate::error::{Error, Result};
use crate::lake::LakeLocation;
use crate::maintenance::{VacuumPolicy, VacuumReport};
use crate::rewrite::{RewritePolicy, RewriteReport};
use crate::scan::{self, SeriesIndex, TableSelection};
use crate::tables::TableKind;

/// The application transaction a commit carries (Delta's `txn` action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTransaction {
    /// `<topic>/<partition>`: stable whichever worker owns the partition.
    pub app_id: String,
    /// The last log offset the commit covers.
    pub version: u64,
    /// The version the table must hold for `app_id` before this commit
    /// (`None`: no commit with this app id yet).
    pub expected_previous: Option<u64>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Committed as the given table version.
    Committed {
        /// The Delta table version created.
        table_version: u64,
    },
    /// The table already held the transaction version (an earlier attempt
    /// committed); nothing was added.
    AlreadyCommitted {
        /// The version of the snapshot it was found in: the earlier commit's
        /// version is at most this.
        table_version: u64,
    },
}

/// Appends to the lake tables, exactly once per application transaction.
#[async_trait]
pub trait TableWriter: Send + Sync + std::fmt::Debug + 'static {
    /// The version of `app_id`'s last transaction in the table; `None` if the
    /// table does not exist or holds no transaction of `app_id`.
    async fn transaction_version(&self, workspace_id: &str, table: TableKind, app_id: &str) -> Result<Option<u64>>;

    /// Removes from the `samples` table, in one commit, every file of a `day`
    /// partition before `before_day` (days since the epoch), stamping the
    /// removals with `now_ms`; returns how many files were removed. Data
    /// files stay on disk until [`TableWriter::vacuum`].
    /// The default (test doubles) removes nothing.
    ///
    /// # Errors
    /// [`Error::Delta`] when the table cannot be read or the commit fails
    /// (conflicts with other processes' commits are retried first).
    async fn expire_samples(&self, workspace_id: &str, before_day: i32, now_ms: i64) -> Result<usize> {
        let _ = (workspace_id, before_day, now_ms);
        Ok(0)
    }

    /// Deletes from a table's directory what `policy` allows: removed files
    /// past their grace, and files no commit references. The default (test
    /// doubles) deletes nothing.
    ///
    /// # Errors
    /// [`Error::Delta`] when listing or deleting fails.
    async fn vacuum(&self, workspace_id: &str, table: TableKind, policy: &VacuumPolicy) -> Result<VacuumReport> {
        let _ = (workspace_id, table, policy);
        Ok(VacuumReport::default())
    }

    /// Rewrites small files of `samples` day partitions into large sorted
    /// ones as `policy` allows ([`crate::compaction`]), one commit per day.
    /// The default (test doubles) compacts nothing.
    ///
    /// # Errors
    /// [`Error::Delta`] when reading, writing or committing fails; an input
    /// removed meanwhile is not an error (the day is left alone).
    async fn compact_samples(&self, workspace_id: &str, policy: &CompactionPolicy) -> Result<CompactionReport> {
        let _ = (workspace_id, policy);
        Ok(CompactionReport::default())
    }

    /// Rewrites the `series` or `metadata` table into one row per key,
    /// without expired rows, as `policy` allows ([`crate::rewrite`]). The
    /// default (test doubles) does nothing.
    ///
    /// # Errors
    /// [`Error::Delta`] when reading, writing or committing fails.
    async fn rewrite_table(
        &self,
        workspace_id: &str,
        table: TableKind,
        policy: &RewritePolicy,
    ) -> Result<RewriteReport> {
        let _ = (workspace_id, table, policy);
        Ok(RewriteReport::default())
    }

    /// Deletes every table of a workspace (log first, then data files).
    /// The caller stops the workspace's writers first. The default (test
    /// doubles) does nothing.
    ///
    /// # Errors
    /// [`Error::Delta`] when listing or deleting fails; calling it again
    /// finishes the job.
    async fn delete_workspace(&self, workspace_id: &str) -> Result<()> {
        let _ = workspace_id;
        Ok(())
    }

    /// Appends `batches` (in the table's Arrow schema) in one commit carrying
    /// `txn`, creating the table on first use. An empty `batches` commits only
    /// the transaction (advancing its version).
    ///
    /// # Errors
    /// [`Error::Fenced`] when the table's version for the app id is neither
    /// `txn.expected_previous` nor `txn.version`; [`Error::Delta`] when
    /// writing or committing fails (nothing is visible then: Parquet files
    /// written without a commit are never read, and vacuum removes them).
    ///
    /// # Cancellation
    /// Dropping the future may leave unreferenced Parquet files, never a
    /// partial commit: the commit is one atomic put of the log entry.
    async fn append(
        &self,
        workspace_id: &str,
        table: TableKind,
        batches: Vec<RecordBatch>,
        txn: &AppTransaction,
    ) -> Result<AppendOutcome>;

    /// The series of the tables' current snapshots that match `selection`,
    /// with their samples in its range ([`crate::scan`]), and the Delta
    /// versions of the snapshots read (`samples` loaded first).
    ///
    /// # Errors
    /// [`Error::Delta`] when a table or file cannot be read.
    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<TableSelection>;

    /// The newest `metadata` row of each metric in the table's current
    /// snapshot, by metric name.
    ///
    /// # Errors
    /// [`Error::Delta`] when the table or a file cannot be read.
    async fn metadata(&self, workspace_id: &str) -> Result<Vec<MetricMetadata>>;
}

/// Parquet files written to a table but not committed yet.
#[derive(Debug)]
pub struct StagedFiles {
    adds: Vec<Add>,
}

impl StagedFiles {
    /// How many files were written.
    pub fn file_count(&self) -> usize {
        self.adds.len()
    }
}

/// Delta's default `delta.checkpointInterval`.
const DEFAULT_CHECKPOINT_INTERVAL: u64 = 100;

pub(crate) type TableSlot = Arc<tokio::sync::Mutex<Option<DeltaTable>>>;

/// How long a reader's snapshot of a table is used without refreshing it
/// when this process has not committed to the table since: the most a
/// query lags behind commits made by other processes. Commits of this
/// process (the ones that take rows out of its heads) make the next read
/// refresh at once.
const READ_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A reader's snapshot of one table.
#[derive(Debug, Default)]
struct ReadSlot {
    table: Option<DeltaTable>,
    /// The table's commit generation (see [`DeltaTableWriter::table_changed`])
    /// read before the last refresh.
    generation: u64,
    refreshed: Option<std::time::Instant>,
}

/// [`TableWriter`] over delta-rs, for every workspace of one lake.
///
/// Keeps each table it has used loaded (its snapshot is refreshed
/// incrementally before every commit), one lock per table so the appends of
/// the partitions of one workspace queue up instead of conflicting.
#[derive(Debug)]
pub struct DeltaTableWriter {
    lake: LakeLocation,
    tables: StdMutex<HashMap<Url, TableSlot>>,
    /// Tables loaded by readers: a query never waits for a commit's lock.
    read_tables: StdMutex<HashMap<Url, Arc<tokio::sync::Mutex<ReadSlot>>>>,
    /// Per table, the commits this process has made or attempted.
    generations: StdMutex<HashMap<Url, u64>>,
    /// The `series` table of each workspace read so far, in memory.
    series_indexes: StdMutex<HashMap<String, Arc<tokio::sync::Mutex<SeriesIndex>>>>,
    /// What queries keep of the data files they read.
    read_cache: scan::ReadCache,
    checkpoint_interval: u64,
}

impl DeltaTableWriter {
    /// A writer for the tables under `lake`.
    pub fn new(lake: LakeLocation) -> Self {
        Self {
            lake,
            tables: StdMutex::new(HashMap::new()),
            read_tables: StdMutex::new(HashMap::new()),
            generations: StdMutex::new(HashMap::new()),
            series_indexes: StdMutex::new(HashMap::new()),
            read_cache: scan::ReadCache::default(),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }

    /// Tables this writer creates get `delta.checkpointInterval = commits`:
    /// delta-rs writes a checkpoint after every `commits`-th commit
    /// ([`crate::StreamWorkersConfig::checkpoint_interval`]). Tables created
    /// earlier keep their setting. Default 100.
    pub fn with_checkpoint_interval(mut self, commits: u64) -> Self {
        self.checkpoint_interval = commits.max(1);
        self
    }

    /// The lake this writer writes to.
    pub fn lake(&self) -> &LakeLocation {
        &self.lake
    }

    pub(crate) fn slot(&self, url: &Url) -> TableSlot {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.entry(url.clone()).or_default().clone()
    }

    /// Drops a table's cached state (its directory was deleted).
    pub(crate) fn forget_table(&self, url: &Url) {
        self.tables.lock().unwrap_or_else(|p| p.into_inner()).remove(url);
        self.read_tables.lock().unwrap_or_else(|p| p.into_inner()).remove(url);
    }

    /// Drops a workspace's series index (its tables were deleted).
    pub(crate) fn forget_series_index(&self, workspace_id: &str) {
        self.series_indexes.lock().unwrap_or_else(|p| p.into_inner()).remove(workspace_id);
    }

    /// Notes that this process committed (or tried to commit) to a table:
    /// readers refresh their snapshot of it before their next read. Called
    /// after every commit attempt, before the caller drops what the commit
    /// holds from a head.
    pub(crate) fn table_changed(&self, url: &Url) {
        *self.generations.lock().unwrap_or_else(|p| p.into_inner()).entry(url.clone()).or_default() += 1;
    }

    fn generation(&self, url: &Url) -> u64 {
        self.generations.lock().unwrap_or_else(|p| p.into_inner()).get(url).copied().unwrap_or(0)
    }

    /// A reader's copy of a table's latest snapshot; `None` if there is no
    /// table. The snapshot is refreshed (a listing of the table's log) when
    /// this process has committed to the table since the last refresh, or
    /// [`READ_REFRESH`] after it.
    async fn read_snapshot(&self, url: &Url, kind: TableKind) -> Result<Option<DeltaTable>> {
        let slot = {
            let mut tables = self.read_tables.lock().unwrap_or_else(|p| p.into_inner());
            tables.entry(url.clone()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        // Read before refreshing: a commit made meanwhile refreshes again.
        let generation = self.generation(url);
        let fresh = guard.generation == generation && guard.refreshed.is_some_and(|t| t.elapsed() < READ_REFRESH);
        if guard.table.is_some() && fresh {
            return Ok(guard.table.clone());
        }
        let started = std::time::Instant::now();
        if !self.load(&mut guard.table, url, kind, false).await? {
            return Ok(None);
        }
        guard.generation = generation;
        guard.refreshed = Some(started);
        Ok(guard.table.clone())
    }

    /// Loads the table into `slot` (refreshing it if loaded), creating it when
    /// `create` is set and it does not exist. `Ok(false)`: no table.
    pub(crate) async fn load(
        &self,
        slot: &mut Option<DeltaTable>,
        url: &Url,
        kind: TableKind,
        create: bool,
    ) -> Result<bool> {
        if let Some(table) = slot.as_mut() {
            table.update_incremental(None).await.map_err(|e| Error::delta(url, "refreshing", e))?;
            return Ok(true);
        }
        if let Some(dir) = LakeLocation::local_dir(url) {
            if !create && !dir.exists() {
                return Ok(false);
            }
            tokio::fs::create_dir_all(&dir).await.map_err(|e| Error::delta(url, "creating the directory", e.into()))?;
        }
        let mut table =
            self.lake.table_builder(url).and_then(|b| b.build()).map_err(|e| Error::delta(url, "opening", e))?;
        // Looking first spares a load of a table that does not exist yet
        // (delta-rs logs that at ERROR level), as on every first start.
        let exists = has_log(&table).await.map_err(|e| Error::delta(url, "listing the log", e))?;
        let loaded = if exists { table.load().await } else { Err(DeltaTableError::NotATable(url.to_string())) };
        match loaded {
            Ok(()) => {
                *slot = Some(table);
                return Ok(true);
            }
            Err(DeltaTableError::NotATable(_)) if create => {}
            Err(DeltaTableError::NotATable(_)) => return Ok(false),
            Err(e) => return Err(Error::delta(url, "loading", e)),
        }
        let schema: StructType = kind
            .arrow_schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| Error::delta(url, "converting the schema", e.into()))?;
        let created = table
            .create()
            .with_table_name(kind.name())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(kind.partition_columns().iter().copied())
            .with_configuration_property(TableProperty::CheckpointInterval, Some(self.checkpoint_interval.to_string()))
            .with_save_mode(SaveMode::Ignore)
            // Losing the race for version 0 must fail the create: with
            // retries delta-rs would commit it again as the next version, a
            // second `metaData` action with a new table id over the winner's.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        let table = match created {
            Ok(table) => table,
            // Another process created it between our load and our create.
            Err(_) => {
                let mut table = self
                    .lake
                    .table_builder(url)
                    .and_then(|b| b.build())
                    .map_err(|e| Error::delta(url, "opening", e))?;
                table.load().await.map_err(|e| Error::delta(url, "loading after a concurrent create", e))?;
                table
            }
        };
        *slot = Some(table);
        Ok(true)
    }

    /// Writes `batches` as Parquet files into the table (creating it if
    /// needed) without committing them: the first half of
    /// [`TableWriter::append`], public so tests can stop between the halves.
    ///
    /// # Errors
    /// [`Error::Delta`] when the table cannot be created or a file written.
    pub async fn stage(&self, workspace_id: &str, kind: TableKind, batches: Vec<RecordBatch>) -> Result<StagedFiles> {
        let url = self.lake.table_url(workspace_id, kind);
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(StagedFiles { adds: Vec::new() });
        }
        let slot = self.slot(&url);
        let mut writer = {
            let mut guard = slot.lock().await;
            self.load(&mut guard, &url, kind, true).await?;
            let table = guard.as_ref().ok_or_else(|| Error::delta(&url, "loading", DeltaTableError::NotInitialized))?;
            RecordBatchWriter::for_table(table)
                .map_err(|e| Error::delta(&url, "starting a write", e))?
                .with_writer_properties(kind.writer_properties())
        };
        for batch in batches {
            writer.write(batch).await.map_err(|e| Error::delta(&url, "writing Parquet", e))?;
        }
        let adds = writer.flush().await.map_err(|e| Error::delta(&url, "finishing Parquet files", e))?;
        crate::failpoint::hit("after_parquet_write");
        Ok(StagedFiles { adds })
    }

    /// Commits staged files with `txn`: the second half of
    /// [`TableWriter::append`].
    ///
    /// # Errors
    /// As [`TableWriter::append`].
    pub async fn commit_staged(
        &self,
        workspace_id: &str,
        kind: TableKind,
        staged: StagedFiles,
        txn: &AppTransaction,
    ) -> Result<AppendOutcome> {
        let url = self.lake.table_url(workspace_id, kind);
        let slot = self.slot(&url);
        let mut guard = slot.lock().await;
        self.load(&mut guard, &url, kind, true).await?;
        let table = guard.as_mut().ok_or_else(|| Error::delta(&url, "loading", DeltaTableError::NotInitialized))?;
        let found =
            current_version(table, &txn.app_id).await.map_err(|e| Error::delta(&url, "reading the transaction", e))?;
        if found == Some(txn.version) {
            // Committed by an earlier attempt (maybe after a reader's last
            // refresh): the caller drops the rows from its head next.
            self.table_changed(&url);
            let table_version = table.version().unwrap_or(0);
            return Ok(AppendOutcome::AlreadyCommitted { table_version });
        }
        if found != txn.expected_previous {
            return Err(Error::Fenced {
                table_url: url.to_string(),
                app_id: txn.app_id.clone(),
                expected: txn.expected_previous,
                found,
            });
        }
        let version = i64::try_from(txn.version).unwrap_or(i64::MAX);
        let properties =
            CommitProperties::default().with_application_transaction(Transaction::new(&txn.app_id, version));
        let partition_by = Some(kind.partition_columns().iter().map(|c| (*c).to_owned()).collect::<Vec<_>>())
            .filter(|p| !p.is_empty());
        let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by, predicate: None };
        let snapshot = table.snapshot().map_err(|e| Error::delta(&url, "reading the snapshot", e))?;
        let finalized = CommitBuilder::from(properties)
            .with_actions(staged.adds.into_iter().map(Action::Add).collect())
            .build(Some(snapshot), table.log_store(), operation)
            .await;
        self.table_changed(&url);
        let finalized = finalized.map_err(|e| Error::delta(&url, "committing", e))?;
        Ok(AppendOutcome::Committed { table_version: finalized.version() })
    }
}

/// Whether the table's `_delta_log/` holds any object (one listing request).
pub(crate) async fn has_log(table: &DeltaTable) -> Result<bool, DeltaTableError> {
    let store = table.log_store().object_store(None);
    let mut listing = store.list(Some(&deltalake::Path::from("_delta_log")));
    match listing.next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(e.into()),
    }
}

async fn current_version(table: &DeltaTable, app_id: &str) -> Result<Option<u64>, DeltaTableError> {
    let snapshot = table.snapshot()?;
    let version = snapshot.transaction_version(table.log_store().as_ref(), app_id).await?;
    Ok(version.and_then(|v| u64::try_from(v).ok()))
}

#[async_trait]
impl TableWriter for DeltaTableWriter {
    async fn metadata(&self, workspace_id: &str) -> Result<Vec<MetricMetadata>> {
        let url = self.lake.table_url(workspace_id, TableKind::Metadata);
        let files = crate::read::read_table(&self.lake, workspace_id, TableKind::Metadata).await?;
        let batches: Vec<RecordBatch> = files.into_iter().map(|f| f.rows).collect();
        crate::rewrite::newest_metadata(&url, &batches)
    }

    async fn transaction_version(&self, workspace_id: &str, table: TableKind, app_id: &str) -> Result<Option<u64>> {
        let url = self.lake.table_url(workspace_id, table);
        let slot = self.slot(&url);
        let mut guard = slot.lock().await;
        if !self.load(&mut guard, &url, table, false).await? {
            return Ok(None);
        }
        match guard.as_ref() {
            Some(t) => current_version(t, app_id).await.map_err(|e| Error::delta(&url, "reading the transaction", e)),
            None => Ok(None),
        }
    }

    async fn append(
        &self,
        workspace_id: &str,
        table: TableKind,
        batches: Vec<RecordBatch>,
        txn: &AppTransaction,
    ) -> Result<AppendOutcome> {
        let staged = self.stage(workspace_id, table, batches).await?;
        self.commit_staged(workspace_id, table, staged, txn).await
    }

    async fn expire_samples(&self, workspace_id: &str, before_day: i32, now_ms: i64) -> Result<usize> {
        self.expire_samples_delta(workspace_id, before_day, now_ms).await
    }

    async fn vacuum(&self, workspace_id: &str, table: TableKind, policy: &VacuumPolicy) -> Result<VacuumReport> {
        self.vacuum_delta(workspace_id, table, policy).await
    }

    async fn compact_samples(&self, workspace_id: &str, policy: &CompactionPolicy) -> Result<CompactionReport> {
        self.compact_samples_delta(workspace_id, policy).await
    }

    async fn delete_workspace(&self, workspace_id: &str) -> Result<()> {
        self.delete_workspace_delta(workspace_id).await
    }

    async fn rewrite_table(
        &self,
        workspace_id: &str,
        table: TableKind,
        policy: &RewritePolicy,
    ) -> Result<RewriteReport> {
        DeltaTableWriter::rewrite_table(self, workspace_id, table, policy).await
    }

    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<TableSelection> {
        let samples_url = self.lake.table_url(workspace_id, TableKind::Samples);
        let series_url = self.lake.table_url(workspace_id, TableKind::Series);
        let samples = self.read_snapshot(&samples_url, TableKind::Samples).await?;
        let series = self.read_snapshot(&series_url, TableKind::Series).await?;
        let version = |t: &DeltaTable| t.version();
        let mut out = TableSelection {
            samples_version: samples.as_ref().and_then(version),
            series_version: series.as_ref().and_then(version),
            ..TableSelection::default()
        };
        let (Some(samples), Some(series)) = (samples, series) else { return Ok(out) };
        let index = {
            let mut indexes = self.series_indexes.lock().unwrap_or_else(|p| p.into_inner());
            indexes.entry(workspace_id.to_owned()).or_default().clone()
        };
        let wanted = {
            let mut index = index.lock().await;
            index.refresh(&series_url, &series).await?;
            index.matching(selection)
        };
        let found =
            scan::select_samples(&samples_url, &samples, selection, &wanted, &mut out.stats, &self.read_cache).await?;
        out.series = scan::with_labels(found, &wanted);
        Ok(out)
    }
}

/// An in-memory [`TableWriter`] for unit tests: keeps every committed batch
/// and each app id's version per table.
#[derive(Debug, Default)]
pub struct MemoryTableWriter {
    state: StdMutex<HashMap<(String, TableKind), MemoryTable>>,
}

#[derive(Debug, Default)]
struct MemoryTable {
    batches: Vec<RecordBatch>,
    versions: HashMap<String, u64>,
    commits: u64,
}

impl MemoryTableWriter {
    /// Every batch committed to a table, in commit order.
    pub fn batches(&self, workspace_id: &str, table: TableKind) -> Vec<RecordBatch> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(&(workspace_id.to_owned(), table)).map(|t| t.batches.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl TableWriter for MemoryTableWriter {
    async fn metadata(&self, workspace_id: &str) -> Result<Vec<MetricMetadata>> {
        let url = Url::parse(&format!("memory:///{workspace_id}/metadata/"))
            .map_err(|e| Error::InvalidLake { location: workspace_id.to_owned(), reason: e.to_string() })?;
        crate::rewrite::newest_metadata(&url, &self.batches(workspace_id, TableKind::Metadata))
    }

    async fn transaction_version(&self, workspace_id: &str, table: TableKind, app_id: &str) -> Result<Option<u64>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(state.get(&(workspace_id.to_owned(), table)).and_then(|t| t.versions.get(app_id).copied()))
    }

    async fn append(
        &self,
        workspace_id: &str,
        table: TableKind,
        batches: Vec<RecordBatch>,
        txn: &AppTransaction,
    ) -> Result<AppendOutcome> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let t = state.entry((workspace_id.to_owned(), table)).or_default();
        let found = t.versions.get(&txn.app_id).copied();
        if found == Some(txn.version) {
            return Ok(AppendOutcome::AlreadyCommitted { table_version: t.commits });
        }
        if found != txn.expected_previous {
            return Err(Error::Fenced {
                table_url: format!("memory://{workspace_id}/{}", table.name()),
                app_id: txn.app_id.clone(),
                expected: txn.expected_previous,
                found,
            });
        }
        t.batches.extend(batches.into_iter().filter(|b| b.num_rows() > 0));
        t.versions.insert(txn.app_id.clone(), txn.version);
        t.commits += 1;
        Ok(AppendOutcome::Committed { table_version: t.commits })
    }

    async fn delete_workspace(&self, workspace_id: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.retain(|(ws, _), _| ws != workspace_id);
        Ok(())
    }

    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<TableSelection> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let table = |kind| state.get(&(workspace_id.to_owned(), kind));
        let url = Url::parse(&format!("memory:///{workspace_id}/"))
            .map_err(|e| Error::InvalidLake { location: workspace_id.to_owned(), reason: e.to_string() })?;
        let mut out = TableSelection {
            samples_version: table(TableKind::Samples).map(|t| t.commits),
            series_version: table(TableKind::Series).map(|t| t.commits),
            ..TableSelection::default()
        };
        let mut index = SeriesIndex::default();
        for batch in table(TableKind::Series).map(|t| t.batches.as_slice()).unwrap_or_default() {
            index.add_batch(&url, batch)?;
        }
        let wanted = index.matching(selection);
        let mut found = HashMap::new();
        for batch in table(TableKind::Samples).map(|t| t.batches.as_slice()).unwrap_or_default() {
            out.stats.table_samples += scan::collect_samples(&url, batch, selection, &wanted, &mut found)?;
        }
        out.series = scan::with_labels(found, &wanted);
        Ok(out)
    }
}

#[cfg(test)]
mod read_refresh_tests {
    use std::time::{Duration, Instant};

    use common::seams::{LabelMatcher, MatchOp};

    use super::*;
    use crate::tables::{SampleRow, SeriesRow, samples_batch, series_batch};

    const WS: &str = "ws-refresh";

    /// Commits one sample of `m` at `t` (seconds) to `samples` and its
    /// series to `series`, as log offset `version` of one partition.
    async fn commit(w: &DeltaTableWriter, t: i64, version: u64) {
        let labels: Arc<[(String, String)]> = vec![("__name__".to_owned(), "m".to_owned())].into();
        let series = HashMap::from([(
            7,
            SeriesRow { series_id: 7, metric_name: "m".into(), labels, first_timestamp_ms: 0, last_timestamp_ms: t },
        )]);
        let sample = SampleRow {
            metric_name: "m".into(),
            series_id: 7,
            timestamp_ms: t * 1_000,
            value: Some(t as f64),
            histogram: None,
            stale: false,
        };
        let txn =
            AppTransaction { app_id: "t/0".into(), version, expected_previous: (version > 1).then(|| version - 1) };
        let batches = [
            (TableKind::Samples, samples_batch(&[sample]).unwrap()),
            (TableKind::Series, series_batch(&series).unwrap()),
        ];
        for (kind, batch) in batches {
            w.append(WS, kind, vec![batch], &txn).await.unwrap();
        }
    }

    async fn samples(w: &DeltaTableWriter) -> usize {
        let m = LabelMatcher::new("__name__", MatchOp::Equal, "m").unwrap();
        let got = w.select(WS, &Selection { matchers: vec![m], start_ms: 0, end_ms: i64::MAX }).await.unwrap();
        got.series.values().map(|(_, s)| s.len()).sum()
    }

    #[tokio::test]
    async fn a_reader_sees_this_process_commits_at_once_and_other_processes_within_the_refresh_interval() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::from_path(dir.path()).unwrap();
        let (here, other) = (DeltaTableWriter::new(lake.clone()), DeltaTableWriter::new(lake));
        // No table yet: nothing, and the absence is not remembered.
        assert_eq!(samples(&here).await, 0);
        commit(&here, 1, 1).await;
        assert_eq!(samples(&here).await, 1);
        // This process's commit: seen by its next read, with no wait.
        commit(&here, 2, 2).await;
        assert_eq!(samples(&here).await, 2);
        // Another process's commit (another writer on the same lake): seen
        // once READ_REFRESH has passed since the last refresh.
        commit(&other, 3, 3).await;
        let deadline = Instant::now() + READ_REFRESH * 5;
        while samples(&here).await < 3 {
            assert!(Instant::now() < deadline, "another process's commit never became visible");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
