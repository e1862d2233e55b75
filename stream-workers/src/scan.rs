//! Reading a selection ([`common::seams::Selection`]) from a workspace's
//! tables: the `series` table resolves the label matchers to series ids, the
//! `samples` table gives their samples in the time range.
//!
//! ```text
//!  series table ──(new files only)──► SeriesIndex: id → labels, metric → ids ──► matching ids
//!  samples table snapshot ──► files: day partition ∩ [start, end]?                 │
//!                                    file stats (metric name, timestamp) overlap?  │
//!                               row groups: Parquet statistics overlap? ──► decode ─┴► samples by series
//! ```
//!
//! Pruning: a file is opened only if its `day` partition and its Delta
//! statistics (min/max `metric_name` and `timestamp`) can hold the
//! selection; within it, a row group is decoded only if its Parquet
//! statistics can. Files are sorted by metric name, series and time, so a
//! selector of one metric over a short range decodes few row groups.
//! [`SelectStats`] counts what was opened and decoded.
//!
//! The series index of a workspace is kept in memory and extended with the
//! files added since the last read; `series` files are never removed short of
//! deleting the workspace, which resets it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::seams::{Labels, Sample, SampleValue, SelectStats, Selection};
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Float64Type, Int64Type};
use deltalake::logstore::ObjectStoreRef;
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ArrowReaderOptions;
use deltalake::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use deltalake::parquet::errors::{ParquetError, Result as ParquetResult};
use deltalake::parquet::file::metadata::RowGroupMetaData;
use deltalake::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
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
                    read_file(&store, url, &path, size, &[COL_SERIES_ID, COL_METRIC_NAME, COL_LABELS], |_| true)
                        .await?
                        .2;
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
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Reads `columns` (every column if empty) of the row groups of one Parquet
/// file that `keep` accepts; returns (row groups in the file, row groups
/// read, batches).
pub(crate) async fn read_file(
    store: &ObjectStoreRef,
    url: &Url,
    path: &Path,
    size: u64,
    columns: &[&str],
    keep: impl Fn(&RowGroupMetaData) -> bool,
) -> Result<(usize, usize, Vec<RecordBatch>)> {
    let err = |e: String| Error::delta(url, "reading a data file", DeltaTableError::Generic(format!("{path}: {e}")));
    let reader = StoreReader { store: store.clone(), path: path.clone(), size };
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| err(e.to_string()))?;
    let metadata = builder.metadata().clone();
    let groups: Vec<usize> = (0..metadata.num_row_groups()).filter(|&i| keep(metadata.row_group(i))).collect();
    let total = metadata.num_row_groups();
    if groups.is_empty() {
        return Ok((total, 0, Vec::new()));
    }
    let schema = builder.parquet_schema();
    let mask = if columns.is_empty() {
        ProjectionMask::all()
    } else {
        let wanted: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| schema.column(i).path().parts().first().is_some_and(|p| columns.contains(&p.as_str())))
            .collect();
        ProjectionMask::leaves(schema, wanted)
    };
    let read = groups.len();
    let batches = builder
        .with_row_groups(groups)
        .with_projection(mask)
        .build()
        .map_err(|e| err(e.to_string()))?
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok((total, read, batches))
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
        if !Bounds::of_file_stats(f.stats().as_deref()).overlaps(selection, metric.as_deref()) {
            continue;
        }
        candidates.push((f.object_store_path(), u64::try_from(f.size()).unwrap_or(0)));
    }
    stats.files_read += candidates.len();
    let store = table.log_store().object_store(None);
    let columns = [COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE, COL_HISTOGRAM];
    let mut reads = futures::stream::iter(candidates.into_iter().map(|(path, size)| {
        let (store, metric) = (store.clone(), metric.clone());
        async move {
            read_file(&store, url, &path, size, &columns, |rg| {
                Bounds::of_row_group(rg, column_index(rg, COL_METRIC_NAME), column_index(rg, COL_TIMESTAMP))
                    .overlaps(selection, metric.as_deref())
            })
            .await
        }
    }))
    .buffer_unordered(CONCURRENT_FILES);
    let mut out: HashMap<u64, Vec<Sample>> = HashMap::new();
    while let Some((total, read, batches)) = reads.try_next().await? {
        stats.row_groups_total += total;
        stats.row_groups_read += read;
        for batch in &batches {
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
    let mut n = 0;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        if t < selection.start_ms || t > selection.end_ms {
            continue;
        }
        let id = series_id_from_i64(ids.value(row));
        if !wanted.contains_key(&id) {
            continue;
        }
        let value = match histograms {
            Some(h) if h.is_valid(row) => SampleValue::Histogram(bytes::Bytes::copy_from_slice(h.value(row))),
            _ if values.is_valid(row) => SampleValue::Float(values.value(row)),
            _ => continue,
        };
        out.entry(id).or_default().push(Sample { timestamp_ms: t, value });
        n += 1;
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

    #[tokio::test]
    async fn row_groups_outside_the_selection_are_not_decoded() {
        // Two metrics × 1,000 samples, 250 rows per row group: a's row
        // groups hold 0–249 s, 250–499 s, … then b's the same.
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
        let props: WriterProperties =
            samples_writer_properties().into_builder().set_max_row_group_row_count(Some(250)).build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(dir.path().join("f.parquet")).unwrap().len();
        let store: ObjectStoreRef = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let url = Url::parse("file:///test/").unwrap();
        let path = Path::from("f.parquet");
        let wanted: HashMap<u64, Labels> = HashMap::from([(7, Arc::from(vec![]))]);

        for (sel, expected_groups, expected_rows) in [
            (selection("a", 300_000, 400_000), 1, 101),
            (selection("a", 240_000, 260_000), 2, 21),
            (selection("b", 0, 999_000), 4, 1_000),
            (selection("c", 0, 999_000), 0, 0),
            (selection("a", 2_000_000, 3_000_000), 0, 0),
        ] {
            let metric = sel.metric_name().map(str::to_owned);
            let (total, read, batches) =
                read_file(&store, &url, &path, size, &[COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE], |rg| {
                    Bounds::of_row_group(rg, column_index(rg, COL_METRIC_NAME), column_index(rg, COL_TIMESTAMP))
                        .overlaps(&sel, metric.as_deref())
                })
                .await
                .unwrap();
            assert_eq!((total, read), (8, expected_groups), "{sel:?}");
            // The kept row groups hold the rows asked for (and the rest of their rows).
            let mut out = HashMap::new();
            let mut n = 0;
            for b in &batches {
                n += collect_samples(&url, b, &sel, &wanted, &mut out).unwrap();
            }
            // Both metrics share series 7 here, so only a pruned read
            // keeps b's rows out: a's selection counts only a's rows.
            assert_eq!(n, expected_rows, "{sel:?}");
        }
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
