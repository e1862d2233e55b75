//! The head: samples a partition worker has applied but not yet committed
//! to the lake, readable by queries together with the tables
//! ([`crate::StreamWorkers`]' `SampleReader::select`).
//!
//! ```text
//!  apply(record) ──► open rows ──flush: seal──► flushing rows ──commit samples──►
//!                    + labels of their series                   commit series ──► dropped
//! ```
//!
//! # Reading head and tables consistently
//!
//! A reader first reads every row still in the heads (with their series'
//! labels), then loads the tables' snapshots, and merges by (series,
//! timestamp): a row in both (committed meanwhile) is one sample. Rows
//! leave a head only after the commits of both `samples` and `series` that
//! hold them, and after those commits bumped the tables' commit generation
//! ([`crate::DeltaTableWriter`] refreshes a reader's snapshot when the
//! generation moved), so a row gone from the head when it is read was
//! committed before, and the snapshots the reader uses afterwards hold it
//! and its labels. A
//! head cleared without a commit (its worker stopped or starts over) lost
//! only rows that are not acknowledged to be in the lake: the partition's
//! next worker applies them again from the log. Hence a sample is visible
//! from the moment a worker applied it, never twice, and a reader needs no
//! retry whatever the flushes do meanwhile.
//!
//! # Memory
//!
//! Each head counts its bytes (rows plus the labels of their series) into
//! one process-wide total. Once the total exceeds
//! [`crate::StreamWorkersConfig::head_max_bytes`], every worker with rows
//! flushes at its next step instead of waiting for its size or age trigger,
//! so the head stays near the budget whatever the number of partitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, RwLock};

use common::seams::{Labels, Sample, SampleValue, Selection};
use prometheus_client::metrics::gauge::Gauge;

use crate::tables::SampleRow;

/// The heads of every partition of this process, and their memory total.
#[derive(Debug)]
pub(crate) struct Heads {
    heads: StdMutex<HashMap<String, Vec<Arc<PartitionHead>>>>,
    /// The total, also exported as `promlake_stream_head_bytes`.
    bytes: Gauge,
    max_bytes: usize,
}

impl Heads {
    pub(crate) fn new(max_bytes: usize, bytes: Gauge) -> Self {
        Self { heads: StdMutex::new(HashMap::new()), bytes, max_bytes }
    }

    /// A new, empty head for a partition worker of `workspace_id`,
    /// replacing the previous one of the same partition.
    pub(crate) fn create(&self, workspace_id: &str, partition: u32) -> Arc<PartitionHead> {
        let head = Arc::new(PartitionHead {
            partition,
            state: RwLock::new(HeadState::default()),
            total: self.bytes.clone(),
            max_bytes: self.max_bytes,
        });
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        let list = heads.entry(workspace_id.to_owned()).or_default();
        if let Some(old) = list.iter().position(|h| h.partition == partition) {
            list.remove(old).clear();
        }
        list.push(head.clone());
        head
    }

    /// Removes a partition's head (its worker stopped), if it is still `head`.
    pub(crate) fn remove(&self, workspace_id: &str, head: &Arc<PartitionHead>) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = heads.get_mut(workspace_id) {
            list.retain(|h| !Arc::ptr_eq(h, head));
        }
        head.clear();
    }

    /// Removes every head of a workspace.
    pub(crate) fn remove_workspace(&self, workspace_id: &str) {
        let removed = self.heads.lock().unwrap_or_else(|p| p.into_inner()).remove(workspace_id);
        for head in removed.into_iter().flatten() {
            head.clear();
        }
    }

    /// The heads of a workspace's partitions in this process.
    pub(crate) fn of(&self, workspace_id: &str) -> Vec<Arc<PartitionHead>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).get(workspace_id).cloned().unwrap_or_default()
    }
}

/// One partition's head; written by its worker, read by queries.
#[derive(Debug)]
pub(crate) struct PartitionHead {
    partition: u32,
    state: RwLock<HeadState>,
    total: Gauge,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct HeadState {
    /// Rows applied since the last seal.
    open: Vec<SampleRow>,
    /// Rows being flushed (sealed, not dropped yet), sorted by series and time.
    flushing: Vec<SampleRow>,
    /// The labels of every series with rows in `open` or `flushing`.
    labels: HashMap<u64, Labels>,
    bytes: usize,
}

fn row_bytes(row: &SampleRow) -> usize {
    std::mem::size_of::<SampleRow>() + row.histogram.as_ref().map_or(0, bytes::Bytes::len)
}

fn labels_bytes(labels: &Labels) -> usize {
    std::mem::size_of::<(u64, Labels)>()
        + labels.iter().map(|(n, v)| std::mem::size_of::<(String, String)>() + n.len() + v.len()).sum::<usize>()
}

impl PartitionHead {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HeadState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HeadState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn account(&self, state: &mut HeadState, new_bytes: usize) {
        let delta = i64::try_from(new_bytes).unwrap_or(i64::MAX) - i64::try_from(state.bytes).unwrap_or(i64::MAX);
        self.total.inc_by(delta);
        state.bytes = new_bytes;
    }

    /// Adds one record's accepted rows; `labels` gives the label set of a
    /// series the head does not know yet.
    pub(crate) fn append(&self, rows: Vec<SampleRow>, mut labels: impl FnMut(u64) -> Labels) {
        if rows.is_empty() {
            return;
        }
        let mut state = self.write();
        let mut added = 0;
        for row in &rows {
            added += row_bytes(row);
            if let std::collections::hash_map::Entry::Vacant(e) = state.labels.entry(row.series_id) {
                let l = labels(row.series_id);
                added += labels_bytes(&l);
                e.insert(l);
            }
        }
        state.open.extend(rows);
        let bytes = state.bytes + added;
        self.account(&mut state, bytes);
    }

    /// The open rows' count (the flush-by-size trigger).
    pub(crate) fn open_rows(&self) -> usize {
        self.read().open.len()
    }

    /// Whether the process' heads together exceed their budget while this
    /// one holds rows: flush early.
    pub(crate) fn under_pressure(&self) -> bool {
        usize::try_from(self.total.get()).unwrap_or(0) > self.max_bytes && self.read().bytes > 0
    }

    /// Moves the open rows to the flushing ones (after those of a failed
    /// earlier flush) and sorts them for the `samples` table; returns
    /// whether there are any.
    pub(crate) fn seal(&self) -> bool {
        let mut state = self.write();
        let open = std::mem::take(&mut state.open);
        state.flushing.extend(open);
        crate::tables::sort_samples(&mut state.flushing);
        !state.flushing.is_empty()
    }

    /// The `samples` batch of the flushing rows.
    pub(crate) fn flushing_batch(&self) -> crate::error::Result<deltalake::arrow::record_batch::RecordBatch> {
        crate::tables::samples_batch(&self.read().flushing)
    }

    /// Drops the flushing rows once every table holds them.
    pub(crate) fn drop_flushed(&self) {
        let mut state = self.write();
        state.flushing = Vec::new();
        let HeadState { open, labels, .. } = &mut *state;
        let live: std::collections::HashSet<u64> = open.iter().map(|r| r.series_id).collect();
        labels.retain(|id, _| live.contains(id));
        let bytes =
            state.open.iter().map(row_bytes).sum::<usize>() + state.labels.values().map(labels_bytes).sum::<usize>();
        self.account(&mut state, bytes);
    }

    /// Empties the head (its worker stopped).
    pub(crate) fn clear(&self) {
        let mut state = self.write();
        state.open = Vec::new();
        state.flushing = Vec::new();
        state.labels = HashMap::new();
        self.account(&mut state, 0);
    }

    /// The head's rows matching `selection`, by series (read them before
    /// loading the tables: see the module doc).
    pub(crate) fn select(&self, selection: &Selection) -> HashMap<u64, (Labels, Vec<Sample>)> {
        let state = self.read();
        let mut matching: HashMap<u64, bool> = HashMap::new();
        let mut out: HashMap<u64, (Labels, Vec<Sample>)> = HashMap::new();
        let name = selection.metric_name();
        for row in state.flushing.iter().chain(&state.open) {
            if row.timestamp_ms < selection.start_ms || row.timestamp_ms > selection.end_ms {
                continue;
            }
            if name.is_some_and(|n| *row.metric_name != *n) {
                continue;
            }
            let Some(labels) = state.labels.get(&row.series_id) else { continue };
            if !*matching.entry(row.series_id).or_insert_with(|| selection.matches(labels)) {
                continue;
            }
            let value = match (&row.value, &row.histogram) {
                (_, Some(h)) => SampleValue::Histogram(h.clone()),
                (Some(v), None) => SampleValue::Float(*v),
                (None, None) => continue,
            };
            out.entry(row.series_id)
                .or_insert_with(|| (labels.clone(), Vec::new()))
                .1
                .push(Sample { timestamp_ms: row.timestamp_ms, value });
        }
        out
    }
}

impl Drop for PartitionHead {
    fn drop(&mut self) {
        let bytes = self.state.get_mut().map(|s| s.bytes).unwrap_or_else(|p| p.into_inner().bytes);
        self.total.dec_by(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
