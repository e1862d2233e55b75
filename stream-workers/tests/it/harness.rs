//! Shared set-up: a log with one workspace topic, a lake, record builders and
//! a reader of the samples table that checks the file invariants.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::clock::{Clock, SystemClock};
use common::limits::{Limits, Overrides};
use common::log::{CleanupPolicy, Log, Record, TopicSpec};
use deltalake::arrow::array::{Array, BinaryArray, BooleanArray, Float64Array, Int64Array, MapArray, StringArray};
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prometheus_client::registry::Registry;
use prost::Message;
use schemas::stream::{Histogram, Label, MetricMetadata, Sample, Series, WriteBatch};
use schemas::tables::*;
use stream_workers::read::read_table;
use stream_workers::tables::series_id_from_i64;
use stream_workers::{
    AllPartitions, DeltaTableWriter, LakeLocation, StreamWorkers, StreamWorkersConfig, TableKind, TableWriter,
};
use tempfile::TempDir;

pub(crate) const WS: &str = "ws-3f0e7d8c-1b2a-4c5d-8e9f-0a1b2c3d4e5f";

pub(crate) struct Env {
    pub(crate) dir: TempDir,
    pub(crate) log: Arc<EmbeddedLog>,
    pub(crate) lake: LakeLocation,
    pub(crate) topic: String,
}

impl Env {
    pub(crate) async fn new(partitions: u32) -> Env {
        Self::with_lake(partitions, None).await
    }

    /// An env whose lake is `lake` (an `s3://` one), or a local directory.
    pub(crate) async fn with_lake(partitions: u32, lake: Option<LakeLocation>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogConfig::default()).unwrap();
        let topic = schemas::topics::samples_topic(WS);
        let spec = TopicSpec { partitions, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(86_400) } };
        log.ensure_topic(&topic, spec).await.unwrap();
        let lake = lake.unwrap_or_else(|| LakeLocation::from_path(&dir.path().join("lake")).unwrap());
        Env { dir, log, lake, topic }
    }

    pub(crate) fn writer(&self) -> Arc<DeltaTableWriter> {
        Arc::new(DeltaTableWriter::new(self.lake.clone()))
    }

    /// Appends one WriteBatch record; returns its offset.
    pub(crate) async fn append(&self, partition: u32, batch: &WriteBatch) -> u64 {
        let record = Record { key: None, value: Some(Bytes::from(batch.encode_to_vec())), timestamp_ms: now_ms() };
        self.log.append(&self.topic, partition, vec![record]).await.unwrap().last_offset
    }

    /// Starts workers over `writer` (and `log`, defaulting to the env's log)
    /// watching the workspace.
    pub(crate) async fn start(
        &self,
        config: StreamWorkersConfig,
        writer: Arc<dyn TableWriter>,
        log: Option<Arc<dyn Log>>,
        registry: &mut Registry,
    ) -> StreamWorkers {
        let overrides = Arc::new(Overrides::new(&Limits::default()));
        self.start_with(config, writer, log, overrides, Arc::new(SystemClock), registry).await
    }

    /// [`Env::start`] with given limits and clock.
    pub(crate) async fn start_with(
        &self,
        config: StreamWorkersConfig,
        writer: Arc<dyn TableWriter>,
        log: Option<Arc<dyn Log>>,
        overrides: Arc<Overrides>,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> StreamWorkers {
        let log = log.unwrap_or_else(|| self.log.clone());
        let membership = Arc::new(AllPartitions::new(log.clone()));
        let workers = stream_workers::start(config, log, writer, overrides, clock, membership, registry).await.unwrap();
        workers.watch_workspace(WS, &self.topic).await.unwrap();
        workers
    }

    pub(crate) fn lake_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("lake")
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A test configuration: fast flushes and retries.
pub(crate) fn fast_config() -> StreamWorkersConfig {
    StreamWorkersConfig {
        flush_interval_ms: 50,
        fetch_max_wait_ms: 20,
        retry_backoff_ms: 20,
        ..StreamWorkersConfig::default()
    }
}

pub(crate) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    let mut labels: Vec<Label> =
        labels.iter().map(|(n, v)| Label { name: (*n).to_owned(), value: (*v).to_owned() }).collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let series_id = schemas::labels::series_id(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    Series {
        labels,
        series_id,
        samples: samples.iter().map(|&(t, v)| Sample { timestamp_ms: t, value: v, start_timestamp_ms: 0 }).collect(),
        histograms: Vec::new(),
        exemplars: Vec::new(),
    }
}

pub(crate) fn histogram(timestamp_ms: i64, count: u64, sum: f64) -> Histogram {
    Histogram {
        count: Some(schemas::stream::histogram::Count::CountInt(count)),
        sum,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: Some(schemas::stream::histogram::ZeroCount::ZeroCountInt(0)),
        positive_spans: vec![schemas::stream::BucketSpan { offset: 0, length: 2 }],
        positive_deltas: vec![count as i64 / 2, 0],
        timestamp_ms,
        ..Histogram::default()
    }
}

pub(crate) fn batch(series: Vec<Series>, metadata: Vec<MetricMetadata>) -> WriteBatch {
    WriteBatch { workspace_id: WS.to_owned(), received_at_ms: now_ms(), protocol_version: 1, series, metadata }
}

/// One sample as read back from the samples table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LakeSample {
    pub(crate) metric: String,
    pub(crate) series_id: u64,
    pub(crate) timestamp_ms: i64,
    /// The value's bits (so NaNs compare), `None` for histograms.
    pub(crate) value_bits: Option<u64>,
    pub(crate) histogram: Option<Vec<u8>>,
    pub(crate) stale: bool,
    pub(crate) day: String,
}

/// Reads every sample of the samples table, asserting that each file is
/// sorted by (metric, series, timestamp) and lies in the day partition of
/// its timestamps.
pub(crate) async fn read_samples(lake: &LakeLocation) -> Vec<LakeSample> {
    let mut out = Vec::new();
    for file in read_table(lake, WS, TableKind::Samples).await.unwrap() {
        let day = file.partition.iter().find(|(k, _)| k == COL_DAY).map(|(_, v)| v.clone()).expect("day partition");
        let rows = &file.rows;
        let col = |name: &str| rows.column_by_name(name).unwrap_or_else(|| panic!("column {name}")).clone();
        let metric = col(COL_METRIC_NAME);
        let metric = metric.as_any().downcast_ref::<StringArray>().unwrap();
        let ids = col(COL_SERIES_ID);
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        let ts = col(COL_TIMESTAMP);
        let ts = ts.as_any().downcast_ref::<Int64Array>().unwrap();
        let values = col(COL_VALUE);
        let values = values.as_any().downcast_ref::<Float64Array>().unwrap();
        let hist = col(COL_HISTOGRAM);
        let hist = hist.as_any().downcast_ref::<BinaryArray>().unwrap();
        let stale = col(COL_STALE);
        let stale = stale.as_any().downcast_ref::<BooleanArray>().unwrap();
        let mut previous: Option<(String, u64, i64)> = None;
        for i in 0..rows.num_rows() {
            let key = (metric.value(i).to_owned(), series_id_from_i64(ids.value(i)), ts.value(i));
            if let Some(p) = &previous {
                assert!(*p < key, "file {} not sorted: {p:?} then {key:?}", file.url);
            }
            assert_eq!(day, civil_day(ts.value(i)), "sample at {} in partition {day}", ts.value(i));
            out.push(LakeSample {
                metric: key.0.clone(),
                series_id: key.1,
                timestamp_ms: key.2,
                value_bits: values.is_valid(i).then(|| values.value(i).to_bits()),
                histogram: hist.is_valid(i).then(|| hist.value(i).to_vec()),
                stale: stale.value(i),
                day: day.clone(),
            });
            previous = Some(key);
        }
    }
    out
}

/// (series id, timestamp) → value bits of every sample, asserting no
/// (series, timestamp) is there twice.
pub(crate) async fn sample_map(lake: &LakeLocation) -> BTreeMap<(u64, i64), Option<u64>> {
    let mut map = BTreeMap::new();
    for s in read_samples(lake).await {
        let previous = map.insert((s.series_id, s.timestamp_ms), s.value_bits);
        assert!(previous.is_none(), "({}, {}) twice in the lake", s.series_id, s.timestamp_ms);
    }
    map
}

/// Series rows: series id → (metric, labels, first, last).
pub(crate) async fn read_series(lake: &LakeLocation) -> Vec<(u64, String, BTreeMap<String, String>, i64, i64)> {
    let mut out = Vec::new();
    for file in read_table(lake, WS, TableKind::Series).await.unwrap() {
        let rows = &file.rows;
        let ids = rows.column_by_name(COL_SERIES_ID).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let metric =
            rows.column_by_name(COL_METRIC_NAME).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let labels = rows.column_by_name(COL_LABELS).unwrap().as_any().downcast_ref::<MapArray>().unwrap().clone();
        let first =
            rows.column_by_name(COL_FIRST_TIMESTAMP).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let last =
            rows.column_by_name(COL_LAST_TIMESTAMP).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        for i in 0..rows.num_rows() {
            let entry = labels.value(i);
            let keys = entry.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let values = entry.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            let map = (0..keys.len()).map(|j| (keys.value(j).to_owned(), values.value(j).to_owned())).collect();
            out.push((
                series_id_from_i64(ids.value(i)),
                metric.value(i).to_owned(),
                map,
                first.value(i),
                last.value(i),
            ));
        }
    }
    out
}

/// Metadata rows: (metric, type, help, unit).
pub(crate) async fn read_metadata(lake: &LakeLocation) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for file in read_table(lake, WS, TableKind::Metadata).await.unwrap() {
        let rows = &file.rows;
        let s = |name: &str| rows.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (m, t, h, u) = (s(COL_METRIC_NAME), s(COL_TYPE), s(COL_HELP), s(COL_UNIT));
        for i in 0..rows.num_rows() {
            out.push((m.value(i).to_owned(), t.value(i).to_owned(), h.value(i).to_owned(), u.value(i).to_owned()));
        }
    }
    out
}

/// `YYYY-MM-DD` of a Unix-ms timestamp (UTC): the crate's own day function,
/// checked against known dates below.
pub(crate) fn civil_day(timestamp_ms: i64) -> String {
    let day = i32::try_from(timestamp_ms.div_euclid(86_400_000)).expect("day fits i32");
    stream_workers::tables::civil_date(day)
}

/// The value of a counter or gauge line of the text exposition, 0 if absent.
pub(crate) fn metric_value(registry: &Registry, name_and_labels: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Parquet files on disk under a table directory (committed or not).
pub(crate) fn parquet_files_on_disk(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "_delta_log") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

/// The Python of the tests' venv (deltalake, pyarrow, moto): `PROMLAKE_PYTHON`
/// (set by `scripts/test`), or the last line printed by the idempotent
/// `scripts/python-env` when the tests run with plain cargo.
pub(crate) fn python() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("PROMLAKE_PYTHON") {
        return path.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let out =
        std::process::Command::new(&script).output().unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().into()
}

#[test]
fn civil_day_matches_known_dates() {
    assert_eq!(civil_day(0), "1970-01-01");
    assert_eq!(civil_day(1_714_000_000_000), "2024-04-24");
    assert_eq!(civil_day(-1), "1969-12-31");
    assert_eq!(civil_day(951_782_400_000), "2000-02-29");
    assert_eq!(civil_day(4_102_444_800_000), "2100-01-01");
}
