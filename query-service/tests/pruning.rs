//! A selector's plan reads only the files of the lake that can hold its
//! metric and time range, counted from the scan's metrics in `EXPLAIN
//! ANALYZE` output (files and row groups read of the total), over real Delta
//! tables written by the stream workers from an embedded log, and the rows
//! of a file it decodes (only the pages the page index cannot rule out).
//! Row-group pruning inside a file is tested by the stream workers' scan
//! tests (`stream-workers/src/scan.rs`), where files hold several row groups.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::clock::SystemClock;
use common::limits::{Limits, Overrides, QueryLimits};
use common::log::{CleanupPolicy, Log, Record, TopicSpec};
use common::seams::SampleReader;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prost::Message;
use query_service::engine::{Engine, QueryRequest};
use schemas::stream::{Label, Sample, Series, WriteBatch};
use stream_workers::{AllPartitions, DeltaTableWriter, LakeLocation, StreamWorkers, StreamWorkersConfig};

const WS: &str = "ws-00000000-0000-4000-8000-000000000001";
const DAY1: i64 = 1_714_003_200_000; // 2024-04-25T00:00:00Z
const DAY2: i64 = DAY1 + 86_400_000;

struct Stack {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    workers: Arc<StreamWorkers>,
    topic: String,
}

impl Stack {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogConfig::default()).unwrap();
        let lake = LakeLocation::from_path(&dir.path().join("lake")).unwrap();
        let mut limits = Limits::default();
        limits.storage.out_of_order_time_window_seconds = 100 * 365 * 86_400;
        let config = StreamWorkersConfig {
            flush_interval_ms: 100,
            fetch_max_wait_ms: 10,
            maintenance_start_delay_ms: u64::MAX / 4,
            maintenance_interval_ms: u64::MAX / 4,
            ..StreamWorkersConfig::default()
        };
        let workers = stream_workers::start(
            config,
            log.clone() as Arc<dyn Log>,
            Arc::new(DeltaTableWriter::new(lake)),
            Arc::new(Overrides::new(&limits)),
            Arc::new(SystemClock),
            Arc::new(AllPartitions::new(log.clone() as Arc<dyn Log>)),
            &mut prometheus_client::registry::Registry::default(),
        )
        .await
        .unwrap();
        let topic = schemas::topics::samples_topic(WS);
        let spec =
            TopicSpec { partitions: 1, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(86_400) } };
        log.ensure_topic(&topic, spec).await.unwrap();
        workers.watch_workspace(WS, &topic).await.unwrap();
        Self { _dir: dir, log, workers: Arc::new(workers), topic }
    }

    /// Appends one series' samples and waits until they are committed to the
    /// tables (one flush, so one file).
    async fn write(&self, metric: &str, samples: &[(i64, f64)]) {
        self.write_all(&[(metric, samples.to_vec())]).await;
    }

    /// Appends several series (one per metric) in one record and waits until
    /// they are committed to the tables (one file).
    async fn write_all(&self, metrics: &[(&str, Vec<(i64, f64)>)]) {
        let series = metrics
            .iter()
            .map(|(metric, samples)| {
                let labels = vec![
                    Label { name: "__name__".into(), value: (*metric).into() },
                    Label { name: "job".into(), value: "x".into() },
                ];
                let series_id = schemas::labels::series_id(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
                let samples =
                    samples.iter().map(|&(t, v)| Sample { timestamp_ms: t, value: v, start_timestamp_ms: 0 }).collect();
                Series { labels, series_id, samples, histograms: vec![], exemplars: vec![] }
            })
            .collect();
        let now = common::clock::Clock::now_ms(&SystemClock);
        let batch =
            WriteBatch { workspace_id: WS.into(), received_at_ms: now, protocol_version: 1, series, metadata: vec![] };
        let record = Record { key: None, value: Some(Bytes::from(batch.encode_to_vec())), timestamp_ms: now };
        let receipt = self.log.append(&self.topic, 0, vec![record]).await.unwrap();
        self.workers.wait_for_position(WS, &vec![(0, receipt.last_offset)], Duration::from_secs(30)).await.unwrap();
    }
}

/// A metric's value in the `PromExec` scan line of `EXPLAIN ANALYZE`
/// (DataFusion shows counts of 1,000 and more rounded: `24.58 K`).
fn scan_metric(analyzed: &str, name: &str) -> usize {
    let line =
        analyzed.lines().find(|l| l.contains("PromSeriesScan")).unwrap_or_else(|| panic!("no scan in\n{analyzed}"));
    let value = line.split(&format!("{name}=")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
    let value = value.split([',', ']']).next().unwrap().trim();
    let (number, scale) = match value.split_once(' ') {
        Some((n, "K")) => (n, 1e3),
        Some((n, "M")) => (n, 1e6),
        None => (value, 1.0),
        Some(_) => panic!("unknown unit in {value}"),
    };
    (number.parse::<f64>().unwrap() * scale).round() as usize
}

fn instant(query: &str, at_ms: i64) -> QueryRequest {
    QueryRequest {
        query: query.into(),
        start_ms: at_ms,
        end_ms: at_ms,
        step_ms: 1000,
        lookback_ms: 300_000,
        subquery_step_ms: query_service::engine::DEFAULT_SUBQUERY_STEP_MS,
        instant: true,
        limits: QueryLimits::default(),
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_selector_reads_only_the_files_that_can_hold_it() {
    let stack = Stack::new().await;
    // Three flushes, three files: metric a on day 1, metric b on day 1,
    // metric a on day 2.
    stack.write("a", &[(DAY1 + 1_000, 1.0), (DAY1 + 2_000, 2.0)]).await;
    stack.write("b", &[(DAY1 + 1_000, 10.0), (DAY1 + 2_000, 20.0)]).await;
    stack.write("a", &[(DAY2 + 1_000, 3.0), (DAY2 + 2_000, 4.0)]).await;
    let engine = Engine::new(stack.workers.clone() as Arc<dyn SampleReader>);

    // `a` a minute into day 1: b's file is pruned by its metric-name
    // statistics, day 2's by the partition.
    let analyzed = engine.analyze(WS, &instant("a", DAY1 + 60_000)).await.unwrap();
    assert!(analyzed.contains("PromSeriesScan: matchers=[__name__=\"a\"]"), "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "files_total"), 3, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "files_read"), 1, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "row_groups_read"), scan_metric(&analyzed, "row_groups_total"), "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "table_samples"), 2, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "series"), 1, "{analyzed}");
    let value = engine.query(WS, &instant("a", DAY1 + 60_000)).await.unwrap();
    let query_service::engine::QueryValue::Vector(series) = value else { panic!("{value:?}") };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].points, vec![(DAY1 + 60_000, 2.0)]);

    // Late on day 1, after a's samples (beyond the lookback): no file read.
    let analyzed = engine.analyze(WS, &instant("a", DAY1 + 7_200_000)).await.unwrap();
    assert_eq!(scan_metric(&analyzed, "files_read"), 0, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "table_samples"), 0, "{analyzed}");

    // A range over both days reads both of a's files, never b's.
    let analyzed = engine.analyze(WS, &instant("count_over_time(a[2d])", DAY2 + 60_000)).await.unwrap();
    assert_eq!(scan_metric(&analyzed, "files_read"), 2, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "table_samples"), 4, "{analyzed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_selector_decodes_only_the_pages_that_can_hold_it() {
    let stack = Stack::new().await;
    // One file (one flush) of 3 metrics × 20,000 samples a second apart:
    // 60,000 rows sorted by metric and time, in pages of at most 8,192 rows.
    let samples = |scale: f64| (0..20_000).map(|i| (DAY1 + i * 1_000, scale * i as f64)).collect::<Vec<_>>();
    stack.write_all(&[("a", samples(1.0)), ("b", samples(2.0)), ("c", samples(3.0))]).await;
    let engine = Engine::new(stack.workers.clone() as Arc<dyn SampleReader>);

    // b at 10,000 s: the lookback (300 s) covers b's rows 9,701–10,000,
    // on b's second page (rows 24,576–32,767 of the file). The pages before
    // and after it hold the ends of a and c too, so their timestamps span
    // the whole file and their metric names include b: they are decoded
    // as well. The other five pages are not.
    let at = DAY1 + 10_000_000;
    let analyzed = engine.analyze(WS, &instant("b", at)).await.unwrap();
    assert_eq!(scan_metric(&analyzed, "files_read"), 1, "{analyzed}");
    assert_eq!(scan_metric(&analyzed, "rows_total"), 60_000, "{analyzed}");
    let rows_read = scan_metric(&analyzed, "rows_read");
    assert!((24_000..=24_600).contains(&rows_read), "3 pages of 8,192 rows: {analyzed}");
    assert_eq!(scan_metric(&analyzed, "table_samples"), 300, "{analyzed}");
    let value = engine.query(WS, &instant("b", at)).await.unwrap();
    let query_service::engine::QueryValue::Vector(series) = value else { panic!("{value:?}") };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].points, vec![(at, 20_000.0)]);

    // a's first 100 s: a's first page, and the page holding a's end and
    // b's start (b's timestamps there start at 0); a's second page
    // (8,192–16,383 s) is ruled out by time, b's and c's by name.
    let analyzed = engine.analyze(WS, &instant("count_over_time(a[100s])", DAY1 + 99_000)).await.unwrap();
    let rows_read = scan_metric(&analyzed, "rows_read");
    assert!((16_300..=16_400).contains(&rows_read), "2 pages: {analyzed}");
    assert_eq!(scan_metric(&analyzed, "table_samples"), 100, "{analyzed}");
}
