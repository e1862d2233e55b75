//! Reading a selection ([`common::seams::Selection`]) from a workspace's
//! tables: the `series` table resolves the label matchers to series ids, the
//! `samples` table gives their samples in the time range.
//!
//! ```text
//!  series table ──(new files only)──► SeriesIndex: id → labels, metric → ids ──► matching ids
//!  samples table snapshot ──► files: day partition ∩ [start, end]?                 │
//!                                    file stats (metric name, timestamp) overlap?  │
//!                               row groups: Parquet statistics overlap?            │
//!                               pages: page index overlaps? ──► decode ────────────┴► samples by series
//! ```
//!
//! Pruning: a file is opened only if its `day` partition and its Delta
//! statistics (min/max `metric_name` and `timestamp`) can hold the
//! selection; within it, a row group is decoded only if its Parquet
//! statistics can, and within that only the pages whose page-index entries
//! can (the metric name's pages intersected with the timestamp's; the rest
//! are neither fetched nor decoded). Files are sorted by metric name, series
//! and time, so a selector of one metric decodes the few pages holding it;
//! time prunes pages only where a page holds part of one series' run (a
//! page spanning several series spans their whole time range).
//! [`SelectStats`] counts what was opened and decoded. Files never change
//! in place: each one's bounds and Parquet footer are parsed once and kept
//! ([`ReadCache`]).
//!
//! The series index of a workspace is kept in memory and extended with the
//! files added since the last read; `series` files are never removed short of
//! deleting the workspace, which resets it.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use common::seams::{Labels, Sample, SampleValue, SelectStats, Selection};
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Float64Type, Int64Type};
use deltalake::logstore::ObjectStoreRef;
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector};
use deltalake::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use deltalake::parquet::errors::{ParquetError, Result as ParquetResult};
use deltalake::parquet::file::metadata::RowGroupMetaData;
use deltalake::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use deltalake::parquet::file::page_index::column_index::ColumnIndexMetaData;
use deltalake::parquet::file::statistics::Statistics;
use deltalake::{DeltaTable, DeltaTableError, Path};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use schemas::tables::{COL_DAY, COL_HISTOGRAM, COL_LABELS, COL_METRIC_NAME, COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE};
use url::Url;

use crate::error::{Error, Result};
use crate::tables::{civil_date, day_of, series_id_from_i64};

/// Files read at once by one selection.
const CONCURRENT_FILES: usize = 8;

/// What the tables hold for a selection.
#[derive(Debug, Default)]
pub struct TableSelection {
    /// The Delta version of the `samples` snapshot read (`None`: no table).
    pub samples_version: Option<u64>,
    /// The Delta version of the `series` snapshot read (`None`: no table).
    pub series_version: Option<u64>,
    /// The matching series with samples in range: labels and samples (by
    /// timestamp).
    pub series: HashMap<u64, (Labels, Vec<Sample>)>,
    /// What was read.
    pub stats: SelectStats,
}

/// The `series` table of one workspace, in memory: every series' labels.
#[derive(Debug, Default)]
pub(crate) struct SeriesIndex {
    files: HashSet<String>,
    by_id: HashMap<u64, Labels>,
    by_metric: HashMap<String, Vec<u64>>,
}

impl SeriesIndex {
    /// Reads the files of `table`'s snapshot not read yet (all of them if a
    /// file read before is gone).
    pub(crate) async fn refresh(&mut self, url: &Url, table: &DeltaTable) -> Result<()> {
        let snapshot = table.snapshot().map_err(|e| Error::delta(url, "reading the snapshot", e))?;
        let files: Vec<(String, Path, u64)> = snapshot
            .log_data()
            .iter()
            .map(|f| (f.path().into_owned(), f.object_store_path(), u64::try_from(f.size()).unwrap_or(0)))
            .collect();
        let active: HashSet<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
        if self.files.iter().any(|f| !active.contains(f.as_str())) {
            *self = Self::default();
        }
        let store = table.log_store().object_store(None);
        let new: Vec<_> = files.into_iter().filter(|(p, _, _)| !self.files.contains(p)).collect();
        let mut reads = futures::stream::iter(new.into_iter().map(|(name, path, size)| {
            let store = store.clone();
            async move {
                let batches =
                    read_file(&store, url, &path, size, &[COL_SERIES_ID, COL_METRIC_NAME, COL_LABELS], None, None)
                        .await?
                        .batches;
                Ok::<_, Error>((name, batches))
            }
        }))
        .buffer_unordered(CONCURRENT_FILES);
        while let Some((name, batches)) = reads.try_next().await? {
            for batch in &batches {
                self.add_batch(url, batch)?;
            }
            self.files.insert(name);
        }
        Ok(())
    }

    pub(crate) fn add_batch(&mut self, url: &Url, batch: &RecordBatch) -> Result<()> {
        let bad = |what: &str| Error::delta(url, "reading the series table", DeltaTableError::Generic(what.into()));
        let ids = batch
            .column_by_name(COL_SERIES_ID)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| bad("no int64 series_id column"))?;
        let names = batch
            .column_by_name(COL_METRIC_NAME)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| bad("no string metric_name column"))?;
        let labels =
            batch.column_by_name(COL_LABELS).and_then(|c| c.as_map_opt()).ok_or_else(|| bad("no map labels column"))?;
        let keys = labels.keys().as_string_opt::<i32>().ok_or_else(|| bad("label names are not strings"))?;
        let values = labels.values().as_string_opt::<i32>().ok_or_else(|| bad("label values are not strings"))?;
        let offsets = labels.value_offsets();
        for row in 0..batch.num_rows() {
            let id = series_id_from_i64(ids.value(row));
            if self.by_id.contains_key(&id) {
                continue;
            }
            let (lo, hi) = (usize::try_from(offsets[row]).unwrap_or(0), usize::try_from(offsets[row + 1]).unwrap_or(0));
            let mut set: Vec<(String, String)> = (lo..hi)
                .filter(|&i| values.is_valid(i))
                .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
                .collect();
            set.sort_unstable();
            self.by_id.insert(id, set.into());
            self.by_metric.entry(names.value(row).to_owned()).or_default().push(id);
        }
        Ok(())
    }

    /// The series matching `selection`.
    pub(crate) fn matching(&self, selection: &Selection) -> HashMap<u64, Labels> {
        let candidates: Box<dyn Iterator<Item = u64> + '_> = match selection.metric_name() {
            Some(name) => Box::new(self.by_metric.get(name).into_iter().flatten().copied()),
            None => Box::new(self.by_id.keys().copied()),
        };
        candidates
            .filter_map(|id| self.by_id.get(&id).map(|l| (id, l)))
            .filter(|(_, labels)| selection.matches(labels))
            .map(|(id, labels)| (id, labels.clone()))
            .collect()
    }
}

/// Files a [`ReadCache`] remembers at most; past it, it starts over (files
/// that compaction replaced fall out that way).
const READ_CACHE_FILES: usize = 4096;

/// What queries keep of the data files they read, which Delta never
/// changes in place: each file's bounds from its Delta statistics (parsed
/// from JSON) and its Parquet metadata (footer and page index, read and
/// decoded), so a repeated query does neither again. Keyed by table and
/// path and size.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    bounds: std::sync::Mutex<HashMap<FileKey, Arc<Bounds>>>,
    metadata: std::sync::Mutex<HashMap<FileKey, ArrowReaderMetadata>>,
}

/// A data file: its table's URL, its path in the table, its size.
type FileKey = (String, Path, u64);

impl ReadCache {
    fn get<V: Clone>(map: &std::sync::Mutex<HashMap<FileKey, V>>, key: &FileKey) -> Option<V> {
        map.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    fn put<V>(map: &std::sync::Mutex<HashMap<FileKey, V>>, key: FileKey, value: V) {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= READ_CACHE_FILES {
            map.clear();
        }
        map.insert(key, value);
    }

    /// A file's bounds, from its Delta statistics (`stats`, read only when
    /// not cached).
    fn bounds(&self, key: FileKey, stats: impl FnOnce() -> Option<String>) -> Arc<Bounds> {
        if let Some(b) = Self::get(&self.bounds, &key) {
            return b;
        }
        let b = Arc::new(Bounds::of_file_stats(stats().as_deref()));
        Self::put(&self.bounds, key, b.clone());
        b
    }
}

/// The inclusive range of a column's values in a file or row group, as far
/// as its statistics tell.
#[derive(Debug, Default)]
struct Bounds {
    metric: Option<(String, String)>,
    timestamp: Option<(i64, i64)>,
}

impl Bounds {
    /// Whether data within these bounds can match.
    fn overlaps(&self, selection: &Selection, metric: Option<&str>) -> bool {
        if let (Some(m), Some((lo, hi))) = (metric, &self.metric)
            && (m < lo.as_str() || m > hi.as_str())
        {
            return false;
        }
        if let Some((lo, hi)) = self.timestamp
            && (hi < selection.start_ms || lo > selection.end_ms)
        {
            return false;
        }
        true
    }

    /// From a Delta `add` action's statistics JSON.
    fn of_file_stats(stats: Option<&str>) -> Self {
        let Some(json) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
            return Self::default();
        };
        let (min, max) = (&json["minValues"], &json["maxValues"]);
        let metric = match (min[COL_METRIC_NAME].as_str(), max[COL_METRIC_NAME].as_str()) {
            (Some(lo), Some(hi)) => Some((lo.to_owned(), hi.to_owned())),
            _ => None,
        };
        let timestamp = match (min[COL_TIMESTAMP].as_i64(), max[COL_TIMESTAMP].as_i64()) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        Self { metric, timestamp }
    }

    /// From a row group's Parquet statistics; `metric_col` and `ts_col` are
    /// the columns' indexes in the file.
    fn of_row_group(rg: &RowGroupMetaData, metric_col: Option<usize>, ts_col: Option<usize>) -> Self {
        let metric = metric_col.and_then(|i| match rg.column(i).statistics() {
            Some(Statistics::ByteArray(s)) => {
                let lo = s.min_opt().and_then(|v| v.as_utf8().ok())?;
                // A truncated maximum would be an upper bound only if marked
                // exact; without that it cannot prune safely.
                let hi = s.max_opt().filter(|_| s.max_is_exact()).and_then(|v| v.as_utf8().ok())?;
                Some((lo.to_owned(), hi.to_owned()))
            }
            _ => None,
        });
        let timestamp = ts_col.and_then(|i| match rg.column(i).statistics() {
            Some(Statistics::Int64(s)) => Some((*s.min_opt()?, *s.max_opt()?)),
            _ => None,
        });
        Self { metric, timestamp }
    }
}

/// A Parquet file in the table's object store, read by byte ranges (the
/// footer first, then the column chunks of the row groups kept).
struct StoreReader {
    store: ObjectStoreRef,
    path: Path,
    size: u64,
}

/// Bytes read at the end of a file at once, to get the footer and the
/// metadata in one request mostly.
const FOOTER_PREFETCH: usize = 64 << 10;

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, ParquetResult<bytes::Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e))) }
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<bytes::Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(|e| ParquetError::External(Box::new(e))) }
            .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let (column_index, offset_index) = options.map_or((PageIndexPolicy::Skip, PageIndexPolicy::Skip), |o| {
                (o.column_index_policy(), o.offset_index_policy())
            });
            let metadata = ParquetMetaDataReader::new()
                .with_column_index_policy(column_index)
                .with_offset_index_policy(offset_index)
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// What to keep of a `samples` file: the rows that can hold `metric` (the
/// selection's metric name, if it has one) in the selection's time range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prune<'a> {
    pub(crate) selection: &'a Selection,
    pub(crate) metric: Option<&'a str>,
}

impl Prune<'_> {
    /// Whether a row group's statistics let it hold wanted rows.
    fn keeps_row_group(&self, rg: &RowGroupMetaData) -> bool {
        Bounds::of_row_group(rg, column_index(rg, COL_METRIC_NAME), column_index(rg, COL_TIMESTAMP))
            .overlaps(self.selection, self.metric)
    }

    /// The rows of row group `rg` (of `num_rows`) on pages that can hold
    /// wanted rows, as sorted disjoint ranges, from the file's page index
    /// (every row where it has none).
    fn page_rows(&self, metadata: &ParquetMetaData, rg: usize, num_rows: usize) -> Vec<Range<usize>> {
        let all: Vec<Range<usize>> = std::iter::once(0..num_rows).collect();
        let group = metadata.row_group(rg);
        let metric_rows = match (self.metric, column_index(group, COL_METRIC_NAME)) {
            (Some(metric), Some(col)) => pages_where(metadata, rg, col, num_rows, |index, page| match index {
                ColumnIndexMetaData::BYTE_ARRAY(ix) => {
                    !ix.is_null_page(page)
                        && ix.min_value(page).is_none_or(|lo| metric.as_bytes() >= lo)
                        && ix.max_value(page).is_none_or(|hi| metric.as_bytes() <= hi)
                }
                _ => true,
            }),
            _ => None,
        };
        let (start, end) = (self.selection.start_ms, self.selection.end_ms);
        let time_rows = column_index(group, COL_TIMESTAMP).and_then(|col| {
            pages_where(metadata, rg, col, num_rows, |index, page| match index {
                ColumnIndexMetaData::INT64(ix) => {
                    !ix.is_null_page(page)
                        && ix.max_value(page).is_none_or(|&hi| hi >= start)
                        && ix.min_value(page).is_none_or(|&lo| lo <= end)
                }
                _ => true,
            })
        });
        intersect(&metric_rows.unwrap_or_else(|| all.clone()), &time_rows.unwrap_or(all))
    }
}

/// The rows of the pages of column `col` in row group `rg` that `keep`
/// accepts (given the column index and the page's number), merged into
/// sorted disjoint ranges; `None` without a page index for the column.
fn pages_where(
    metadata: &ParquetMetaData,
    rg: usize,
    col: usize,
    num_rows: usize,
    keep: impl Fn(&ColumnIndexMetaData, usize) -> bool,
) -> Option<Vec<Range<usize>>> {
    let index = metadata.column_index()?.get(rg)?.get(col)?;
    let pages = metadata.offset_index()?.get(rg)?.get(col)?.page_locations();
    // A column index that does not match the offset index (a malformed
    // file) is not used.
    if matches!(index, ColumnIndexMetaData::NONE)
        || pages.is_empty()
        || usize::try_from(index.num_pages()).ok() != Some(pages.len())
    {
        return None;
    }
    let first_row = |page: usize| usize::try_from(pages[page].first_row_index).ok();
    let mut out: Vec<Range<usize>> = Vec::new();
    for page in 0..pages.len() {
        let start = first_row(page)?;
        let end = if page + 1 < pages.len() { first_row(page + 1)? } else { num_rows };
        if start > end || end > num_rows {
            return None;
        }
        if !keep(index, page) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => out.push(start..end),
        }
    }
    Some(out)
}

/// The intersection of two lists of sorted disjoint ranges.
fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let (lo, hi) = (a[i].start.max(b[j].start), a[i].end.min(b[j].end));
        if lo < hi {
            out.push(lo..hi);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// What [`read_file`] read of one file.
#[derive(Debug, Default)]
pub(crate) struct FileRead {
    /// Row groups in the file.
    pub(crate) row_groups_total: usize,
    /// Row groups decoded (kept by their statistics and with pages kept).
    pub(crate) row_groups_read: usize,
    /// Rows in the row groups decoded.
    pub(crate) rows_total: usize,
    /// Rows on the pages kept by the page index (decoded).
    pub(crate) rows_read: usize,
    pub(crate) batches: Vec<RecordBatch>,
}

/// Reads `columns` (every column if empty) of one Parquet file: with
/// `prune`, only the row groups whose statistics, and within them the rows
/// of the pages whose page-index entries, can hold the wanted rows (pages of
/// other rows are neither fetched nor decoded).
pub(crate) async fn read_file(
    store: &ObjectStoreRef,
    url: &Url,
    path: &Path,
    size: u64,
    columns: &[&str],
    prune: Option<Prune<'_>>,
    cache: Option<&ReadCache>,
) -> Result<FileRead> {
    let err = |e: String| Error::delta(url, "reading a data file", DeltaTableError::Generic(format!("{path}: {e}")));
    let mut reader = StoreReader { store: store.clone(), path: path.clone(), size };
    let policy = if prune.is_some() { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    let key = (url.to_string(), path.clone(), size);
    let cached = cache.and_then(|c| ReadCache::get(&c.metadata, &key));
    let metadata = match cached {
        Some(m) => m,
        None => {
            let m = ArrowReaderMetadata::load_async(&mut reader, options).await.map_err(|e| err(e.to_string()))?;
            if let Some(c) = cache {
                ReadCache::put(&c.metadata, key, m.clone());
            }
            m
        }
    };
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata);
    let metadata = builder.metadata().clone();
    let groups: Vec<usize> = (0..metadata.num_row_groups())
        .filter(|&i| prune.is_none_or(|p| p.keeps_row_group(metadata.row_group(i))))
        .collect();
    let mut out = FileRead { row_groups_total: metadata.num_row_groups(), ..FileRead::default() };
    // The pages of each row group to decode; a row group none of whose
    // pages can hold wanted rows is not read at all.
    let mut kept = Vec::new();
    for rg in groups {
        let num_rows = usize::try_from(metadata.row_group(rg).num_rows()).unwrap_or(0);
        let ranges: Vec<Range<usize>> =
            prune.map_or_else(|| std::iter::once(0..num_rows).collect(), |p| p.page_rows(&metadata, rg, num_rows));
        if !ranges.is_empty() {
            kept.push((rg, num_rows, ranges));
        }
    }
    let groups: Vec<usize> = kept.iter().map(|k| k.0).collect();
    let mut selectors = Vec::new();
    for (_, num_rows, ranges) in kept {
        out.rows_total += num_rows;
        let mut at = 0;
        for r in ranges {
            selectors.push(RowSelector::skip(r.start - at));
            selectors.push(RowSelector::select(r.len()));
            out.rows_read += r.len();
            at = r.end;
        }
        selectors.push(RowSelector::skip(num_rows - at));
    }
    if out.rows_read == 0 {
        return Ok(out);
    }
    out.row_groups_read = groups.len();
    let schema = builder.parquet_schema();
    let mask = if columns.is_empty() {
        ProjectionMask::all()
    } else {
        let wanted: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| schema.column(i).path().parts().first().is_some_and(|p| columns.contains(&p.as_str())))
            .collect();
        ProjectionMask::leaves(schema, wanted)
    };
    let mut builder = builder.with_row_groups(groups).with_projection(mask);
    if out.rows_read < out.rows_total {
        builder = builder.with_row_selection(RowSelection::from(selectors));
    }
    out.batches = builder
        .build()
        .map_err(|e| err(e.to_string()))?
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// The index of a top-level column in a Parquet file.
fn column_index(rg: &RowGroupMetaData, name: &str) -> Option<usize> {
    rg.columns().iter().position(|c| c.column_path().parts() == [name.to_owned()])
}

/// Reads the samples of the series in `wanted` within the selection's range
/// from a `samples` table snapshot.
pub(crate) async fn select_samples(
    url: &Url,
    table: &DeltaTable,
    selection: &Selection,
    wanted: &HashMap<u64, Labels>,
    stats: &mut SelectStats,
    cache: &ReadCache,
) -> Result<HashMap<u64, Vec<Sample>>> {
    let snapshot = table.snapshot().map_err(|e| Error::delta(url, "reading the snapshot", e))?;
    let (first_day, last_day) = (civil_date(day_of(selection.start_ms)), civil_date(day_of(selection.end_ms)));
    let metric = selection.metric_name().map(str::to_owned);
    let mut candidates = Vec::new();
    for f in snapshot.log_data().iter() {
        stats.files_total += 1;
        if wanted.is_empty() {
            continue;
        }
        if let Some(Some(day)) = f.partition_values_map().get(COL_DAY)
            && (day.as_str() < first_day.as_str() || day.as_str() > last_day.as_str())
        {
            continue;
        }
        let (path, size) = (f.object_store_path(), u64::try_from(f.size()).unwrap_or(0));
        if !cache.bounds((url.to_string(), path.clone(), size), || f.stats()).overlaps(selection, metric.as_deref()) {
            continue;
        }
        candidates.push((path, size));
    }
    stats.files_read += candidates.len();
    let store = table.log_store().object_store(None);
    let columns = [COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE, COL_HISTOGRAM];
    let mut reads = futures::stream::iter(candidates.into_iter().map(|(path, size)| {
        let (store, metric) = (store.clone(), metric.clone());
        async move {
            let prune = Some(Prune { selection, metric: metric.as_deref() });
            read_file(&store, url, &path, size, &columns, prune, Some(cache)).await
        }
    }))
    .buffer_unordered(CONCURRENT_FILES);
    let mut out: HashMap<u64, Vec<Sample>> = HashMap::new();
    while let Some(read) = reads.try_next().await? {
        stats.row_groups_total += read.row_groups_total;
        stats.row_groups_read += read.row_groups_read;
        stats.rows_total += read.rows_total;
        stats.rows_read += read.rows_read;
        for batch in &read.batches {
            stats.table_samples += collect_samples(url, batch, selection, wanted, &mut out)?;
        }
    }
    Ok(out)
}

/// Adds the rows of a `samples` batch that belong to `wanted` series and the
/// selection's range to `out`; returns how many.
pub(crate) fn collect_samples(
    url: &Url,
    batch: &RecordBatch,
    selection: &Selection,
    wanted: &HashMap<u64, Labels>,
    out: &mut HashMap<u64, Vec<Sample>>,
) -> Result<usize> {
    let bad = |what: &str| Error::delta(url, "reading the samples table", DeltaTableError::Generic(what.into()));
    let ids = batch
        .column_by_name(COL_SERIES_ID)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| bad("no int64 series_id column"))?;
    let ts = batch
        .column_by_name(COL_TIMESTAMP)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| bad("no int64 timestamp column"))?;
    let values = batch
        .column_by_name(COL_VALUE)
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .ok_or_else(|| bad("no float64 value column"))?;
    let histograms = batch.column_by_name(COL_HISTOGRAM).and_then(|c| c.as_binary_opt::<i32>());
    // Rows come in runs of one series (files are sorted by series): each
    // run's membership is looked up once, its samples added at once.
    let mut n = 0;
    let mut run: Option<(i64, bool)> = None;
    let mut samples: Vec<Sample> = Vec::new();
    let mut flush = |raw: i64, samples: &mut Vec<Sample>| {
        if !samples.is_empty() {
            out.entry(series_id_from_i64(raw)).or_default().append(samples);
        }
    };
    for row in 0..batch.num_rows() {
        let raw = ids.value(row);
        let wanted_run = match run {
            Some((id, wanted_run)) if id == raw => wanted_run,
            _ => {
                if let Some((id, _)) = run {
                    flush(id, &mut samples);
                }
                let w = wanted.contains_key(&series_id_from_i64(raw));
                run = Some((raw, w));
                w
            }
        };
        if !wanted_run {
            continue;
        }
        let t = ts.value(row);
        if t < selection.start_ms || t > selection.end_ms {
            continue;
        }
        let value = match histograms {
            Some(h) if h.is_valid(row) => SampleValue::Histogram(bytes::Bytes::copy_from_slice(h.value(row))),
            _ if values.is_valid(row) => SampleValue::Float(values.value(row)),
            _ => continue,
        };
        samples.push(Sample { timestamp_ms: t, value });
        n += 1;
    }
    if let Some((id, _)) = run {
        flush(id, &mut samples);
    }
    Ok(n)
}

/// Pairs each series' samples with its labels (series without labels are
/// left out).
pub(crate) fn with_labels(
    found: HashMap<u64, Vec<Sample>>,
    wanted: &HashMap<u64, Labels>,
) -> HashMap<u64, (Labels, Vec<Sample>)> {
    found.into_iter().filter_map(|(id, samples)| wanted.get(&id).map(|l| (id, (l.clone(), samples)))).collect()
}

/// Sorts each series' samples by time, keeping one per timestamp (the head
/// and a snapshot taken after a flush both hold the flushed rows).
pub(crate) fn normalize(samples: &mut Vec<Sample>) {
    samples.sort_by_key(|s| s.timestamp_ms);
    samples.dedup_by_key(|s| s.timestamp_ms);
}

#[cfg(test)]
mod tests {
    use deltalake::logstore::object_store::local::LocalFileSystem;
    use deltalake::parquet::arrow::ArrowWriter;
    use deltalake::parquet::file::properties::WriterProperties;

    use super::*;
    use crate::tables::{SampleRow, samples_batch, samples_writer_properties, sort_samples};
    use common::seams::{LabelMatcher, MatchOp};

    fn selection(metric: &str, start_ms: i64, end_ms: i64) -> Selection {
        let m = LabelMatcher::new("__name__", MatchOp::Equal, metric).unwrap();
        Selection { matchers: vec![m], start_ms, end_ms }
    }

    /// A selection of `[start_ms, end_ms]` naming no metric.
    fn any_metric(start_ms: i64, end_ms: i64) -> Selection {
        let m = LabelMatcher::new("job", MatchOp::Equal, "x").unwrap();
        Selection { matchers: vec![m], start_ms, end_ms }
    }

    /// Writes metrics `a` and `b`, 1,000 samples each of series 7 at 0, 1,
    /// …, 999 s, sorted as the tables' files are, with `props`.
    fn two_metrics_file(props: WriterProperties) -> (tempfile::TempDir, ObjectStoreRef, Path, u64) {
        let mut rows: Vec<SampleRow> = ["a", "b"]
            .iter()
            .flat_map(|m| {
                (0..1_000).map(move |i| SampleRow {
                    metric_name: Arc::from(*m),
                    series_id: 7,
                    timestamp_ms: i * 1_000,
                    value: Some(i as f64),
                    histogram: None,
                    stale: false,
                })
            })
            .collect();
        sort_samples(&mut rows);
        let batch = samples_batch(&rows).unwrap();
        let batch = batch.project(&[0, 1, 2, 3, 4, 5]).unwrap(); // without `day`, as in the table's files
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f.parquet")).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(dir.path().join("f.parquet")).unwrap().len();
        let store: ObjectStoreRef = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        (dir, store, Path::from("f.parquet"), size)
    }

    /// One row group, pages of 100 rows (the row-count limit is checked per
    /// written mini-batch).
    fn hundred_row_pages() -> WriterProperties {
        samples_writer_properties().into_builder().set_data_page_row_count_limit(100).set_write_batch_size(100).build()
    }

    /// Reads the selection from the file; returns what was read and the
    /// timestamps (s) of the samples collected.
    async fn read(store: &ObjectStoreRef, path: &Path, size: u64, sel: &Selection) -> (FileRead, Vec<i64>) {
        let url = Url::parse("file:///test/").unwrap();
        let wanted: HashMap<u64, Labels> = HashMap::from([(7, Arc::from(vec![]))]);
        let prune = Prune { selection: sel, metric: sel.metric_name() };
        let read = read_file(store, &url, path, size, &[COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE], Some(prune), None)
            .await
            .unwrap();
        let mut out = HashMap::new();
        for b in &read.batches {
            collect_samples(&url, b, sel, &wanted, &mut out).unwrap();
        }
        let times = out.remove(&7).unwrap_or_default().iter().map(|s| s.timestamp_ms / 1_000).collect();
        (read, times)
    }

    #[tokio::test]
    async fn row_groups_outside_the_selection_are_not_decoded() {
        // 250 rows per row group: a's row groups hold 0–249 s, 250–499 s,
        // … then b's the same. Pages as large as the row groups, so only
        // the row groups' statistics prune.
        let props = samples_writer_properties()
            .into_builder()
            .set_max_row_group_row_count(Some(250))
            .set_data_page_row_count_limit(1_000)
            .build();
        let (_dir, store, path, size) = two_metrics_file(props);
        for (sel, expected_groups, expected) in [
            (selection("a", 300_000, 400_000), 1, (300..=400).collect::<Vec<_>>()),
            (selection("a", 240_000, 260_000), 2, (240..=260).collect()),
            (selection("b", 0, 999_000), 4, (0..1_000).collect()),
            (selection("c", 0, 999_000), 0, vec![]),
            (selection("a", 2_000_000, 3_000_000), 0, vec![]),
        ] {
            let (read, times) = read(&store, &path, size, &sel).await;
            assert_eq!((read.row_groups_total, read.row_groups_read), (8, expected_groups), "{sel:?}");
            assert_eq!(read.rows_read, expected_groups * 250, "{sel:?}");
            // Both metrics share series 7 here, so only a pruned read
            // keeps b's rows out: a's selection gets only a's rows.
            assert_eq!(times, expected, "{sel:?}");
        }
    }

    #[tokio::test]
    async fn pages_outside_the_selection_are_not_decoded() {
        // One row group of 2,000 rows, pages of 100 rows (the row-count
        // limit is checked per written mini-batch): a's pages hold 0–99 s,
        // 100–199 s, …, then b's the same.
        let (_dir, store, path, size) = two_metrics_file(hundred_row_pages());
        for (sel, expected_rows, expected) in [
            // Within one page of a.
            (selection("a", 310_000, 320_000), 100, (310..=320).collect::<Vec<_>>()),
            // Across a page boundary.
            (selection("a", 195_000, 205_000), 200, (195..=205).collect()),
            // b's first pages: a's pages hold the same times but not b.
            (selection("b", 0, 150_000), 200, (0..=150).collect()),
            // Every page of b.
            (selection("b", 0, 999_000), 1_000, (0..1_000).collect()),
            // Outside every page's time range.
            (selection("a", 2_000_000, 3_000_000), 0, vec![]),
        ] {
            let (read, times) = read(&store, &path, size, &sel).await;
            assert_eq!(read.row_groups_total, 1, "{sel:?}");
            assert_eq!(read.rows_total, if expected_rows > 0 { 2_000 } else { 0 }, "{sel:?}");
            assert_eq!(read.rows_read, expected_rows, "{sel:?}");
            assert_eq!(times, expected, "{sel:?}");
        }
        // Without a metric name, time alone prunes: both metrics' pages of
        // 300–399 s.
        let any = any_metric(300_000, 350_000);
        let (read, _) = read(&store, &path, size, &any).await;
        assert_eq!(read.rows_read, 200);
    }

    #[tokio::test]
    async fn a_cached_footer_prunes_and_reads_as_the_file_does() {
        let (_dir, store, path, size) = two_metrics_file(hundred_row_pages());
        let url = Url::parse("file:///test/").unwrap();
        let cache = ReadCache::default();
        let sel = selection("a", 195_000, 205_000);
        let columns = [COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE];
        let read_with = |cache| {
            let (store, path, url, sel) = (&store, &path, &url, &sel);
            async move {
                let prune = Some(Prune { selection: sel, metric: sel.metric_name() });
                read_file(store, url, path, size, &columns, prune, cache).await.unwrap()
            }
        };
        let uncached = read_with(None).await;
        assert!(ReadCache::get(&cache.metadata, &(url.to_string(), path.clone(), size)).is_none());
        let first = read_with(Some(&cache)).await;
        let key = (url.to_string(), path.clone(), size);
        let footer = ReadCache::get(&cache.metadata, &key).expect("the footer is cached");
        assert!(footer.metadata().column_index().is_some(), "with its page index");
        let second = read_with(Some(&cache)).await;
        for read in [&first, &second] {
            assert_eq!((read.rows_read, read.rows_total), (uncached.rows_read, uncached.rows_total));
            assert_eq!(read.batches, uncached.batches);
        }
        assert_eq!(cache.metadata.lock().unwrap().len(), 1);
        // Bounds: parsed once per file.
        let parsed = std::cell::Cell::new(0);
        let stats = || {
            parsed.set(parsed.get() + 1);
            Some(
                r#"{"minValues":{"metric_name":"a","timestamp":0},"maxValues":{"metric_name":"b","timestamp":9}}"#
                    .into(),
            )
        };
        for _ in 0..3 {
            assert!(cache.bounds(key.clone(), stats).overlaps(&selection("a", 0, 5), Some("a")));
        }
        assert_eq!(parsed.get(), 1);
    }

    #[tokio::test]
    async fn page_selections_span_the_row_groups_kept() {
        // Row groups of 300 rows, pages of 100: a 0–299 s, a 300–599 s,
        // a 600–899 s, then a 900–999 s with b 0–199 s, and b's rest.
        let props = samples_writer_properties()
            .into_builder()
            .set_max_row_group_row_count(Some(300))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .build();
        let (_dir, store, path, size) = two_metrics_file(props);
        // Time alone: a's page of 100–199 s (row group 0) and b's (row
        // group 3): the selection skips the row groups and pages between.
        let any = any_metric(120_000, 150_000);
        let (got, _) = read(&store, &path, size, &any).await;
        assert_eq!((got.row_groups_total, got.row_groups_read), (7, 2));
        assert_eq!((got.rows_total, got.rows_read), (600, 200));
        // a at 500 s: row group 1's statistics and page hold it; row group
        // 3's statistics (a–b, 0–999 s) do too, but none of its pages (a at
        // 900–999 s, then b): it is not read at all.
        let (got, times) = read(&store, &path, size, &selection("a", 450_000, 550_000)).await;
        assert_eq!((got.row_groups_read, got.rows_total, got.rows_read), (1, 300, 200));
        assert_eq!(times, (450..=550).collect::<Vec<_>>());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn page_ranges_intersect() {
        assert_eq!(intersect(&[0..10, 20..30], &[5..25]), vec![5..10, 20..25]);
        assert_eq!(intersect(&[0..10], &[10..20]), Vec::<Range<usize>>::new());
        assert_eq!(intersect(&[0..100], &[0..100]), vec![0..100]);
        assert_eq!(intersect(&[0..5, 6..9], &[]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn file_statistics_prune_by_metric_and_time() {
        let stats = r#"{"numRecords":10,"minValues":{"metric_name":"b","timestamp":1000},"maxValues":{"metric_name":"d","timestamp":2000}}"#;
        let b = Bounds::of_file_stats(Some(stats));
        assert!(b.overlaps(&selection("c", 0, 1_000), Some("c")));
        assert!(!b.overlaps(&selection("a", 0, 5_000), Some("a")));
        assert!(!b.overlaps(&selection("e", 0, 5_000), Some("e")));
        assert!(!b.overlaps(&selection("c", 2_001, 5_000), Some("c")));
        assert!(!b.overlaps(&selection("c", 0, 999), Some("c")));
        // No statistics: the file must be read.
        assert!(Bounds::of_file_stats(None).overlaps(&selection("a", 0, 1), Some("a")));
        assert!(Bounds::of_file_stats(Some("{}")).overlaps(&selection("a", 0, 1), Some("a")));
    }
}
