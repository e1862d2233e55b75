//! The lake tables' Arrow schemas, the rows the worker buffers for them, and
//! the Parquet settings they are written with.
//!
//! Column names come from [`schemas::tables`]; `schemas/README.md` ("Lake
//! tables") documents every column for readers.
//!
//! # Choices
//!
//! - **`timestamp` is int64 Unix milliseconds**, not a Delta `timestamp`
//!   (which is microseconds): milliseconds are what remote write carries and
//!   PromQL computes in, so nothing is converted on the hot paths, and
//!   DELTA_BINARY_PACKED packs millisecond deltas in fewer bits than the same
//!   deltas ×1000. SQL readers convert with `epoch_ms(timestamp)` (DuckDB) or
//!   `timestamp_millis(timestamp)` (Spark).
//! - **`day` is a Delta `date`** (the UTC day of `timestamp`), the partition
//!   column: `WHERE day BETWEEN DATE '…' AND DATE '…'` prunes whole
//!   directories (`day=2024-05-01/`), and retention drops whole days.
//! - **`series_id` is int64**: Delta has no unsigned type, so the `u64` id is
//!   bit-cast ([`series_id_to_i64`]); joins between tables are unaffected.
//! - **`labels` is a Delta `map<string,string>`**, so a plain SQL reader
//!   filters by label directly (`labels['job'] = 'node'` in Spark and DuckDB)
//!   and joins `series` to `samples` on `series_id`; a JSON string would need
//!   JSON functions and parse every row.
//!
//! # Parquet layout of `samples` (measured)
//!
//! Rows within each file are sorted by (`metric_name`, `series_id`,
//! `timestamp`) so row-group statistics prune by metric name and time and
//! each series' timestamps and values sit together. Encodings:
//! `metric_name` and `series_id` dictionary (few distinct values per file,
//! long runs), `timestamp` DELTA_BINARY_PACKED (regular scrape intervals give
//! near-constant deltas: a few bits per sample), `value` BYTE_STREAM_SPLIT
//! (groups the bytes of each double so zstd finds the repeated exponent and
//! high mantissa bytes), `stale` and the rest plain; zstd level 3 on every
//! column, page-level statistics on.
//!
//! Measured by `tests::node_exporter_like_bytes_per_sample` (run it with
//! `--nocapture` to print the figures and the bytes per column) on a
//! node_exporter-shaped batch: 1,000 series (constants, mostly idle integer
//! counters, CPU-seconds counters, byte counters, page-sized gauges), 120
//! samples each at a 15 s interval with 0–2 ms of jitter, i.e. 30 minutes
//! in one file of 120,000 samples:
//!
//! | layout | bytes | bytes/sample |
//! |---|---|---|
//! | delta-rs default (dictionary everywhere, snappy) | 562,260 | 4.69 |
//! | default encodings, zstd | 508,197 | 4.23 |
//! | dictionary for names/ids only, plain timestamp and value, zstd | 323,031 | 2.69 |
//! | + DELTA_BINARY_PACKED timestamp, plain value | 326,292 | 2.72 |
//! | + DELTA_BINARY_PACKED timestamp, dictionary value | 479,846 | 4.00 |
//! | **chosen**: + DELTA_BINARY_PACKED timestamp, BYTE_STREAM_SPLIT value | 312,584 | **2.60** |
//! | chosen with zstd level 9 | 279,752 | 2.33 |
//! | chosen, timestamps on exact 15 s steps (no jitter) | 226,190 | 1.88 |
//! | chosen with pages of at most 8,192 rows (**current**) | 327,418 | **2.73** |
//!
//! Pages are capped at [`DATA_PAGE_ROWS`] rows (+5 % bytes against
//! parquet's 20,000) so that a selection decodes only the pages its metric
//! name (and, where a page holds one series' run, its time range) can be
//! on: the page index (column and offset indexes, written with page-level
//! statistics) lets [`crate::scan`] skip the rest without fetching them.
//! Of the chosen file, `value` takes 67 % (210 KB: the random increments
//! of the generated counters are incompressible), `timestamp` 28 % (88 KB:
//! the jitter costs ≈ 6 bits per sample; with exact steps, as Prometheus's
//! 2 ms timestamp tolerance makes them, it is nearly free), `series_id` 3 %,
//! everything else under 1 KB. BYTE_STREAM_SPLIT saves 4 % over plain
//! values and a value dictionary costs 50 % more; delta and plain
//! timestamps are within 1 % under zstd, delta is kept for its cheap
//! decode. The flush path uses zstd's default level (3) for speed;
//! [`crate::compaction`] rewrites the small files of 5-second flushes into
//! large sorted files like the one measured, with the same settings (2.63
//! bytes/sample measured there); a higher level (9: −10 %) is left for
//! later.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use schemas::tables::*;

use crate::error::{Error, Result};

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The three tables of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    /// [`SAMPLES_TABLE`]: one row per accepted sample.
    Samples,
    /// [`SERIES_TABLE`]: label sets and the time range each series was seen in.
    Series,
    /// [`METADATA_TABLE`]: type, help and unit per metric name.
    Metadata,
}

impl TableKind {
    /// Every table, in the order the worker commits to them.
    pub const ALL: [TableKind; 3] = [TableKind::Samples, TableKind::Series, TableKind::Metadata];

    /// The table's directory name under the workspace.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Samples => SAMPLES_TABLE,
            TableKind::Series => SERIES_TABLE,
            TableKind::Metadata => METADATA_TABLE,
        }
    }

    /// The table's Arrow schema (partition columns included).
    pub fn arrow_schema(self) -> SchemaRef {
        match self {
            TableKind::Samples => SAMPLES_SCHEMA.clone(),
            TableKind::Series => SERIES_SCHEMA.clone(),
            TableKind::Metadata => METADATA_SCHEMA.clone(),
        }
    }

    /// The table's partition columns.
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Samples => &[COL_DAY],
            TableKind::Series | TableKind::Metadata => &[],
        }
    }

    /// The Parquet writer settings of the table's files.
    pub fn writer_properties(self) -> WriterProperties {
        match self {
            TableKind::Samples => samples_writer_properties(),
            TableKind::Series | TableKind::Metadata => {
                WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build()
            }
        }
    }
}

static SAMPLES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COL_METRIC_NAME, DataType::Utf8, false),
        Field::new(COL_SERIES_ID, DataType::Int64, false),
        Field::new(COL_TIMESTAMP, DataType::Int64, false),
        Field::new(COL_VALUE, DataType::Float64, true),
        Field::new(COL_HISTOGRAM, DataType::Binary, true),
        Field::new(COL_STALE, DataType::Boolean, false),
        Field::new(COL_DAY, DataType::Date32, false),
    ]))
});

/// The entries of the `labels` map, named as Delta's Arrow conversion names
/// them (`key_value`, `key`, `value`) so batches match the table's schema.
fn labels_entries() -> Field {
    Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    )
}

static SERIES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES_ID, DataType::Int64, false),
        Field::new(COL_METRIC_NAME, DataType::Utf8, false),
        Field::new(COL_LABELS, DataType::Map(Arc::new(labels_entries()), false), false),
        Field::new(COL_FIRST_TIMESTAMP, DataType::Int64, false),
        Field::new(COL_LAST_TIMESTAMP, DataType::Int64, false),
    ]))
});

static METADATA_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COL_METRIC_NAME, DataType::Utf8, false),
        Field::new(COL_TYPE, DataType::Utf8, false),
        Field::new(COL_HELP, DataType::Utf8, false),
        Field::new(COL_UNIT, DataType::Utf8, false),
        Field::new(COL_TIMESTAMP, DataType::Int64, false),
    ]))
});

/// Rows per data page at most in `samples` files: the page index prunes
/// (and a selection decodes) in units of this many rows.
const DATA_PAGE_ROWS: usize = 8192;

/// Parquet settings of `samples` files; see the module doc for the reasons.
pub(crate) fn samples_writer_properties() -> WriterProperties {
    let col = |name: &str| ColumnPath::from(name);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(col(COL_METRIC_NAME), true)
        .set_column_dictionary_enabled(col(COL_SERIES_ID), true)
        .set_column_encoding(col(COL_TIMESTAMP), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(col(COL_VALUE), Encoding::BYTE_STREAM_SPLIT)
        .build()
}

/// The `series_id` column value of a series id: the `u64` bit-cast to `i64`.
pub fn series_id_to_i64(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

/// The series id of a `series_id` column value (inverse of [`series_id_to_i64`]).
pub fn series_id_from_i64(id: i64) -> u64 {
    u64::from_ne_bytes(id.to_ne_bytes())
}

/// The `day` partition value of a timestamp: days since the Unix epoch (UTC).
pub fn day_of(timestamp_ms: i64) -> i32 {
    i32::try_from(timestamp_ms.div_euclid(DAY_MS)).unwrap_or(if timestamp_ms < 0 { i32::MIN } else { i32::MAX })
}

/// The `YYYY-MM-DD` (UTC) of a `day` value, as Delta writes date partition
/// values (Howard Hinnant's `civil_from_days`).
pub fn civil_date(day: i32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One accepted sample, buffered until the next flush.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampleRow {
    pub(crate) metric_name: Arc<str>,
    pub(crate) series_id: u64,
    pub(crate) timestamp_ms: i64,
    /// `None` for a histogram sample.
    pub(crate) value: Option<f64>,
    /// The encoded `schemas::stream::Histogram` of a histogram sample.
    pub(crate) histogram: Option<bytes::Bytes>,
    pub(crate) stale: bool,
}

/// One row of the `series` table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesRow {
    pub(crate) series_id: u64,
    pub(crate) metric_name: Arc<str>,
    pub(crate) labels: Arc<[(String, String)]>,
    pub(crate) first_timestamp_ms: i64,
    pub(crate) last_timestamp_ms: i64,
}

/// One row of the `metadata` table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetadataRow {
    pub(crate) metric_name: String,
    pub(crate) metric_type: &'static str,
    pub(crate) help: String,
    pub(crate) unit: String,
    pub(crate) timestamp_ms: i64,
}

fn batch(table: TableKind, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(table.arrow_schema(), columns).map_err(|source| Error::Arrow { table: table.name(), source })
}

/// Sorts samples by (day, metric name, series id, timestamp), the order of
/// [`samples_batch`].
pub(crate) fn sort_samples(rows: &mut [SampleRow]) {
    rows.sort_unstable_by(|a, b| {
        (day_of(a.timestamp_ms), &a.metric_name, a.series_id, a.timestamp_ms).cmp(&(
            day_of(b.timestamp_ms),
            &b.metric_name,
            b.series_id,
            b.timestamp_ms,
        ))
    });
}

/// Builds one batch of samples sorted by [`sort_samples`]; the writer splits
/// it by day, keeping the order within each day.
pub(crate) fn samples_batch(rows: &[SampleRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut metric = StringBuilder::with_capacity(n, n * 16);
    let mut series = Int64Builder::with_capacity(n);
    let mut ts = Int64Builder::with_capacity(n);
    let mut value = Float64Builder::with_capacity(n);
    let mut histogram = BinaryBuilder::new();
    let mut stale = BooleanBuilder::with_capacity(n);
    let mut day = Date32Builder::with_capacity(n);
    for r in rows.iter() {
        metric.append_value(&r.metric_name);
        series.append_value(series_id_to_i64(r.series_id));
        ts.append_value(r.timestamp_ms);
        value.append_option(r.value);
        histogram.append_option(r.histogram.as_deref());
        stale.append_value(r.stale);
        day.append_value(day_of(r.timestamp_ms));
    }
    batch(
        TableKind::Samples,
        vec![
            Arc::new(metric.finish()),
            Arc::new(series.finish()),
            Arc::new(ts.finish()),
            Arc::new(value.finish()),
            Arc::new(histogram.finish()),
            Arc::new(stale.finish()),
            Arc::new(day.finish()),
        ],
    )
}

/// Builds the `series` batch, sorted by (metric name, series id).
pub(crate) fn series_batch(rows: &HashMap<u64, SeriesRow>) -> Result<RecordBatch> {
    let mut rows: Vec<&SeriesRow> = rows.values().collect();
    rows.sort_unstable_by(|a, b| (&a.metric_name, a.series_id).cmp(&(&b.metric_name, b.series_id)));
    let mut id = Int64Builder::with_capacity(rows.len());
    let mut metric = StringBuilder::new();
    let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
    let mut labels = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    let mut first = Int64Builder::with_capacity(rows.len());
    let mut last = Int64Builder::with_capacity(rows.len());
    for r in rows {
        id.append_value(series_id_to_i64(r.series_id));
        metric.append_value(&r.metric_name);
        for (name, value) in r.labels.iter() {
            labels.keys().append_value(name);
            labels.values().append_value(value);
        }
        labels.append(true).map_err(|source| Error::Arrow { table: SERIES_TABLE, source })?;
        first.append_value(r.first_timestamp_ms);
        last.append_value(r.last_timestamp_ms);
    }
    batch(
        TableKind::Series,
        vec![
            Arc::new(id.finish()),
            Arc::new(metric.finish()),
            Arc::new(labels.finish()),
            Arc::new(first.finish()),
            Arc::new(last.finish()),
        ],
    )
}

/// Builds the `metadata` batch, in arrival order.
/// The `&'static str` of a `type` value of the `metadata` table (as the
/// worker writes them); `"unknown"` for anything else.
pub(crate) fn metric_type_static(name: &str) -> &'static str {
    const TYPES: [&str; 8] =
        ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"];
    TYPES.iter().find(|t| **t == name).copied().unwrap_or("unknown")
}

pub(crate) fn metadata_batch(rows: &[MetadataRow]) -> Result<RecordBatch> {
    let mut metric = StringBuilder::new();
    let mut ty = StringBuilder::new();
    let mut help = StringBuilder::new();
    let mut unit = StringBuilder::new();
    let mut ts = Int64Builder::with_capacity(rows.len());
    for r in rows {
        metric.append_value(&r.metric_name);
        ty.append_value(r.metric_type);
        help.append_value(&r.help);
        unit.append_value(&r.unit);
        ts.append_value(r.timestamp_ms);
    }
    batch(
        TableKind::Metadata,
        vec![
            Arc::new(metric.finish()),
            Arc::new(ty.finish()),
            Arc::new(help.finish()),
            Arc::new(unit.finish()),
            Arc::new(ts.finish()),
        ],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use deltalake::arrow::array::{Array, Int64Array};
    use deltalake::parquet::arrow::ArrowWriter;

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(day_of(1_714_000_000_000)), "2024-04-24");
        assert_eq!(civil_date(-1), "1969-12-31");
        assert_eq!(civil_date(day_of(951_782_400_000)), "2000-02-29");
    }

    /// A node_exporter-shaped half hour at a 15 s interval with 0–2 ms of
    /// jitter: per 10 series, 3 constants (info, sizes, flags), 2 counters
    /// of integers that mostly do not move (idle interfaces, error counts),
    /// 2 CPU-seconds counters (about 15 s of fractional seconds per scrape),
    /// 1 byte counter growing by random amounts, 2 gauges moving in pages.
    pub(crate) fn node_exporter_like(series: u64, samples: i64) -> Vec<SampleRow> {
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let names = [
            "node_filesystem_size_bytes",
            "node_uname_info",
            "node_network_up",
            "node_network_receive_errs_total",
            "node_network_transmit_drop_total",
            "node_cpu_seconds_total",
            "node_cpu_guest_seconds_total",
            "node_network_receive_bytes_total",
            "node_memory_MemFree_bytes",
            "node_filesystem_avail_bytes",
        ];
        let start = 1_714_000_000_000i64;
        let mut rows = Vec::new();
        for s in 0..series {
            let kind = (s % names.len() as u64) as usize;
            let name: Arc<str> = Arc::from(names[kind]);
            let id = schemas::labels::series_id([("__name__", name.as_ref()), ("i", &s.to_string())]);
            let mut v = match kind {
                0 => (next() % 1000) as f64 * 1_073_741_824.0,
                1 | 2 => 1.0,
                3 | 4 => (next() % 100) as f64,
                5 | 6 => (next() % 10_000_000) as f64 / 100.0,
                _ => (next() % 1_000_000_000) as f64,
            };
            for i in 0..samples {
                let jitter = (next() % 3) as i64;
                match kind {
                    3 | 4 if next() % 20 == 0 => v += 1.0,
                    5 | 6 => v += (1400 + next() % 100) as f64 / 100.0,
                    7 => v += (next() % 100_000) as f64,
                    8 | 9 => v += ((next() % 64) as f64 - 32.0) * 4096.0,
                    _ => {}
                }
                rows.push(SampleRow {
                    metric_name: name.clone(),
                    series_id: id,
                    timestamp_ms: start + i * 15_000 + jitter,
                    value: Some(v),
                    histogram: None,
                    stale: false,
                });
            }
        }
        rows
    }

    fn parquet_bytes(batch: &RecordBatch, props: WriterProperties) -> usize {
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        out.len()
    }

    #[test]
    fn node_exporter_like_bytes_per_sample() {
        let mut rows = node_exporter_like(1_000, 120);
        let n = rows.len();
        sort_samples(&mut rows);
        let batch = samples_batch(&rows).unwrap();
        // The file holds every column but the partition column.
        let day = batch.schema().index_of(COL_DAY).unwrap();
        let keep: Vec<usize> = (0..batch.num_columns()).filter(|&i| i != day).collect();
        let file = batch.project(&keep).unwrap();
        let default = parquet_bytes(&file, WriterProperties::builder().set_compression(Compression::SNAPPY).build());
        let chosen = parquet_bytes(&file, samples_writer_properties());
        let per = |b: usize| b as f64 / n as f64;
        // Where the bytes go, per column (compressed column-chunk sizes).
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, file.schema(), Some(samples_writer_properties())).unwrap();
        w.write(&file).unwrap();
        let meta = w.close().unwrap();
        for rg in meta.row_groups() {
            for c in rg.columns() {
                println!("  {}: {} B", c.column_path(), c.compressed_size());
            }
        }
        println!(
            "samples: {n}; default (dictionary, snappy): {default} B = {:.2} B/sample; chosen: {chosen} B = {:.2} B/sample",
            per(default),
            per(chosen)
        );
        assert!(chosen * 10 < default * 6, "chosen layout {chosen} B should be under 60 % of default {default} B");
        assert!(per(chosen) < 3.0, "{:.2} bytes/sample", per(chosen));
    }

    #[test]
    fn samples_are_sorted_by_day_metric_series_time() {
        let row = |m: &str, id: u64, ts: i64| SampleRow {
            metric_name: Arc::from(m),
            series_id: id,
            timestamp_ms: ts,
            value: Some(1.0),
            histogram: None,
            stale: false,
        };
        let mut rows = vec![row("b", 1, DAY_MS + 5), row("b", 1, 7), row("a", 2, 9), row("a", 1, 8), row("a", 1, 3)];
        sort_samples(&mut rows);
        let batch = samples_batch(&rows).unwrap();
        let ts = batch.column_by_name(COL_TIMESTAMP).unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ts.values().to_vec(), vec![3, 8, 9, 7, DAY_MS + 5]);
        assert_eq!(day_of(-1), -1);
        assert_eq!(series_id_from_i64(series_id_to_i64(u64::MAX)), u64::MAX);
        assert_eq!(series_id_to_i64(u64::MAX), -1);
        assert!(batch.column_by_name(COL_HISTOGRAM).unwrap().is_null(0));
    }
}
