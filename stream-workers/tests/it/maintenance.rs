//! Lake maintenance: retention per workspace (from the table and from disk),
//! checkpoints, vacuum of orphan files, workspace deletion; all while
//! appends go on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::clock::{Clock, ManualClock, SystemClock};
use common::limits::{Limits, Overrides, WorkspaceOverride};
use common::log::{CleanupPolicy, Log, Record, TopicSpec};
use deltalake::arrow::array::Int64Array;
use prometheus_client::registry::Registry;
use prost::Message;
use schemas::stream::WriteBatch;
use schemas::tables::{COL_SERIES_ID, COL_TIMESTAMP};
use stream_workers::read::read_table;
use stream_workers::tables::series_id_from_i64;
use stream_workers::{DeltaTableWriter, StreamWorkersConfig, TableKind};

use crate::harness::*;

const DAY: i64 = 86_400_000;
const HOUR: u64 = 3_600_000;
const WS2: &str = "ws-00000000-1b2a-4c5d-8e9f-0a1b2c3d4e5f";

/// Workers whose background maintenance does not run during the test
/// (passes are run explicitly).
fn maintenance_config() -> StreamWorkersConfig {
    StreamWorkersConfig {
        maintenance_start_delay_ms: 10 * HOUR,
        maintenance_interval_ms: 10 * HOUR,
        expired_file_grace_ms: 600_000,
        orphan_file_grace_ms: HOUR,
        ..fast_config()
    }
}

/// (series id, timestamp) of every sample of a workspace's samples table.
async fn pairs(env: &Env, ws: &str) -> BTreeSet<(u64, i64)> {
    let mut out = BTreeSet::new();
    for file in read_table(&env.lake, ws, TableKind::Samples).await.unwrap() {
        let ids =
            file.rows.column_by_name(COL_SERIES_ID).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let ts =
            file.rows.column_by_name(COL_TIMESTAMP).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        for i in 0..file.rows.num_rows() {
            assert!(out.insert((series_id_from_i64(ids.value(i)), ts.value(i))), "sample twice");
        }
    }
    out
}

/// Parquet files on disk in one day partition of a workspace's samples table.
fn files_of_day(env: &Env, ws: &str, timestamp_ms: i64) -> usize {
    parquet_files_on_disk(&env.lake_dir().join(ws).join("samples").join(format!("day={}", civil_day(timestamp_ms))))
}

async fn append_to(env: &Env, topic: &str, ws: &str, series: Vec<schemas::stream::Series>) -> u64 {
    let batch = WriteBatch {
        workspace_id: ws.to_owned(),
        received_at_ms: now_ms(),
        protocol_version: 1,
        series,
        metadata: vec![],
    };
    let record = Record { key: None, value: Some(Bytes::from(batch.encode_to_vec())), timestamp_ms: now_ms() };
    env.log.append(topic, 0, vec![record]).await.unwrap().last_offset
}

#[tokio::test]
async fn retention_removes_expired_days_from_the_table_then_from_disk_per_workspace() {
    let env = Env::new(1).await;
    let topic2 = schemas::topics::samples_topic(WS2);
    let spec = TopicSpec { partitions: 1, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(86_400) } };
    env.log.ensure_topic(&topic2, spec).await.unwrap();
    let now = now_ms();
    let clock = ManualClock::new(now);
    // Default retention 30 days; WS2 overridden to 10.
    let mut limits = Limits::default();
    limits.storage.retention_period_days = 30;
    let mut o = WorkspaceOverride::default();
    o.storage.retention_period_days = Some(10);
    limits.overrides.insert(WS2.to_owned(), o);
    let overrides = Arc::new(Overrides::new(&limits));

    let ages = [40 * DAY, 20 * DAY, DAY];
    let old = |ws: &str| {
        let s = series(&[("__name__", "node_load1"), ("ws", ws)], &ages.map(|a| (now - a, a as f64)));
        (s.series_id, s)
    };
    let (id1, s1) = old(WS);
    let (id2, s2) = old(WS2);
    let o1 = env.append(0, &batch(vec![s1], vec![])).await;
    let o2 = append_to(&env, &topic2, WS2, vec![s2]).await;

    let mut registry = Registry::default();
    let workers = env
        .start_with(maintenance_config(), env.writer(), None, overrides, clock.clone() as Arc<dyn Clock>, &mut registry)
        .await;
    workers.watch_workspace(WS2, &topic2).await.unwrap();
    workers.wait_for_offset(WS, 0, o1, Duration::from_secs(10)).await.unwrap();
    workers.wait_for_offset(WS2, 0, o2, Duration::from_secs(10)).await.unwrap();
    for ws in [WS, WS2] {
        for age in ages {
            assert_eq!(files_of_day(&env, ws, now - age), 1, "{ws} day -{}", age / DAY);
        }
    }

    // Appends go on while retention runs: a new series, one record at a time.
    let appender = {
        let log = env.log.clone();
        let topic = env.topic.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut expected = BTreeSet::new();
            for i in 0..40 {
                let s = series(&[("__name__", "up"), ("i", &i.to_string())], &[(now - i, 1.0)]);
                expected.insert((s.series_id, now - i));
                let b = WriteBatch {
                    workspace_id: WS.to_owned(),
                    received_at_ms: now_ms(),
                    protocol_version: 1,
                    series: vec![s],
                    metadata: vec![],
                };
                let r = Record { key: None, value: Some(Bytes::from(b.encode_to_vec())), timestamp_ms: now_ms() };
                last = log.append(&topic, 0, vec![r]).await.unwrap().last_offset;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (last, expected)
        })
    };
    let first = workers.run_maintenance().await.unwrap();
    assert_eq!(first.expired_files_removed, 3, "WS: day -40; WS2: days -40 and -20");
    // Within the grace nothing is deleted from disk.
    assert_eq!(first.vacuumed.expired, 0);
    while !appender.is_finished() {
        let again = workers.run_maintenance().await.unwrap();
        assert_eq!(again.expired_files_removed, 0);
    }
    let (last, appended) = appender.await.unwrap();
    workers.wait_for_offset(WS, 0, last, Duration::from_secs(10)).await.unwrap();

    // Gone from the tables at once…
    let mut expected1: BTreeSet<(u64, i64)> = [(id1, now - 20 * DAY), (id1, now - DAY)].into();
    expected1.extend(appended);
    assert_eq!(pairs(&env, WS).await, expected1, "WS keeps 30 days and every concurrent append");
    assert_eq!(pairs(&env, WS2).await, [(id2, now - DAY)].into(), "WS2 keeps 10 days");
    // …still on disk during the grace…
    assert_eq!(files_of_day(&env, WS, now - 40 * DAY), 1);
    assert_eq!(files_of_day(&env, WS2, now - 20 * DAY), 1);

    // …and deleted from disk once it passed.
    clock.advance(600_001);
    let later = workers.run_maintenance().await.unwrap();
    assert_eq!(later.vacuumed.expired, 3, "{later:?}");
    // (`removed` may count `series` files replaced by their rewrite, which
    // the concurrent appends can trigger; samples files are only expired.)
    assert_eq!(later.vacuumed.orphans, 0, "{later:?}");
    assert_eq!(files_of_day(&env, WS, now - 40 * DAY), 0);
    assert_eq!(files_of_day(&env, WS2, now - 40 * DAY), 0);
    assert_eq!(files_of_day(&env, WS2, now - 20 * DAY), 0);
    assert_eq!(files_of_day(&env, WS, now - 20 * DAY), 1, "WS's day -20 is within its retention");
    assert_eq!(files_of_day(&env, WS2, now - DAY), 1);
    assert_eq!(pairs(&env, WS).await, expected1);
    workers.shutdown().await;
    let removed =
        metric_value(&registry, &format!("promlake_stream_retention_removed_files_total{{workspace=\"{WS2}\"}}"));
    assert_eq!(removed, 2.0);
}

#[tokio::test]
async fn the_background_pass_runs_soon_after_start() {
    let env = Env::new(1).await;
    let now = now_ms();
    let o =
        env.append(0, &batch(vec![series(&[("__name__", "a")], &[(now - 200 * DAY, 1.0), (now, 2.0)])], vec![])).await;
    let config = StreamWorkersConfig {
        maintenance_start_delay_ms: 300,
        maintenance_interval_ms: 100,
        expired_file_grace_ms: 0,
        ..maintenance_config()
    };
    let mut registry = Registry::default();
    let overrides = Arc::new(Overrides::new(&Limits::default()));
    let workers = env.start_with(config, env.writer(), None, overrides, Arc::new(SystemClock), &mut registry).await;
    workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    assert_eq!(files_of_day(&env, WS, now - 200 * DAY), 1, "the first pass waits for the start delay");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while files_of_day(&env, WS, now - 200 * DAY) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "expired files still on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pairs(&env, WS).await.len(), 1);
    workers.shutdown().await;
}

#[tokio::test]
async fn checkpoints_appear_and_the_table_reads_from_them_alone() {
    let env = Env::new(1).await;
    let writer = Arc::new(DeltaTableWriter::new(env.lake.clone()).with_checkpoint_interval(5));
    let mut registry = Registry::default();
    let workers = env.start(maintenance_config(), writer, None, &mut registry).await;
    let mut expected = BTreeSet::new();
    for i in 0..12 {
        let s = series(&[("__name__", "c"), ("i", &i.to_string())], &[(now_ms(), 1.0)]);
        expected.insert((s.series_id, s.samples[0].timestamp_ms));
        let o = env.append(0, &batch(vec![s], vec![])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    }
    workers.shutdown().await;

    let log_dir = env.lake_dir().join(WS).join("samples").join("_delta_log");
    let version = |p: &PathBuf| p.file_name().unwrap().to_str().unwrap()[..20].parse::<u64>().unwrap();
    let entries: Vec<PathBuf> = std::fs::read_dir(&log_dir).unwrap().map(|e| e.unwrap().path()).collect();
    let checkpoint = entries
        .iter()
        .filter(|p| p.to_str().unwrap().ends_with(".checkpoint.parquet"))
        .map(version)
        .max()
        .expect("a checkpoint after 12 commits with an interval of 5");
    assert!(checkpoint >= 5, "{checkpoint}");
    assert!(log_dir.join("_last_checkpoint").exists());
    // Without the commits the checkpoint covers, only the checkpoint can
    // tell a fresh reader which files the table holds.
    for p in entries.iter().filter(|p| p.extension().is_some_and(|x| x == "json") && version(p) <= checkpoint) {
        std::fs::remove_file(p).unwrap();
    }
    assert_eq!(pairs(&env, WS).await, expected);
}

fn set_age(path: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn vacuum_deletes_old_orphans_but_not_referenced_or_fresh_files() {
    let env = Env::new(1).await;
    let now = now_ms();
    let s = series(&[("__name__", "a")], &[(now, 1.0)]);
    let o = env.append(0, &batch(vec![s.clone()], vec![])).await;
    let mut registry = Registry::default();
    let workers = env.start(maintenance_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();

    let day_dir = env.lake_dir().join(WS).join("samples").join(format!("day={}", civil_day(now)));
    let referenced = std::fs::read_dir(&day_dir).unwrap().map(|e| e.unwrap().path()).next().unwrap();
    let old_orphan = day_dir.join("part-00000-old-orphan.c000.zstd.parquet");
    let fresh_orphan = day_dir.join("part-00000-fresh-orphan.c000.zstd.parquet");
    let root_orphan = env.lake_dir().join(WS).join("series").join("part-00000-old-orphan.parquet");
    for p in [&old_orphan, &fresh_orphan, &root_orphan] {
        std::fs::copy(&referenced, p).unwrap();
    }
    set_age(&referenced, Duration::from_secs(2 * 3600));
    set_age(&old_orphan, Duration::from_secs(2 * 3600));
    set_age(&root_orphan, Duration::from_secs(2 * 3600));
    set_age(&fresh_orphan, Duration::from_secs(30 * 60));

    let report = workers.run_maintenance().await.unwrap();
    assert_eq!(report.vacuumed.orphans, 2, "{report:?}");
    assert!(!old_orphan.exists() && !root_orphan.exists(), "old orphans deleted");
    assert!(fresh_orphan.exists(), "an orphan younger than the grace may be a commit in progress");
    assert!(referenced.exists(), "a referenced file is never an orphan, however old");
    assert_eq!(pairs(&env, WS).await, [(s.series_id, now)].into());
    workers.shutdown().await;
}

#[tokio::test]
async fn forgetting_a_workspace_stops_its_workers_and_deletes_its_tables() {
    let env = Env::new(2).await;
    let o = env.append(1, &batch(vec![series(&[("__name__", "a")], &[(now_ms(), 1.0)])], vec![])).await;
    let mut registry = Registry::default();
    let workers = env.start(maintenance_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 1, o, Duration::from_secs(10)).await.unwrap();
    let ws_dir = env.lake_dir().join(WS);
    assert!(parquet_files_on_disk(&ws_dir.join("samples")) > 0);

    workers.forget_workspace(WS).await.unwrap();
    assert!(!ws_dir.exists(), "tables deleted: {:?}", std::fs::read_dir(&ws_dir).map(|d| d.count()));
    let waited = workers.wait_for_offset(WS, 1, o, Duration::from_millis(100)).await;
    assert!(matches!(waited, Err(stream_workers::Error::NoWorker { .. })), "{waited:?}");
    // Nothing writes the tables again: new records are not consumed.
    env.append(0, &batch(vec![series(&[("__name__", "b")], &[(now_ms(), 1.0)])], vec![])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ws_dir.exists());
    assert_eq!(workers.run_maintenance().await.unwrap(), Default::default());
    // Idempotent.
    workers.forget_workspace(WS).await.unwrap();
    workers.shutdown().await;
}

#[tokio::test]
async fn series_and_metadata_are_rewritten_one_row_per_key_without_expired_rows() {
    use common::seams::{LabelMatcher, MatchOp, SampleReader, Selection};
    use schemas::stream::{MetricMetadata, metric_metadata::MetricType};

    let env = Env::new(1).await;
    let now = now_ms();
    let clock = ManualClock::new(now);
    let mut limits = Limits::default();
    limits.storage.retention_period_days = 30;
    let overrides = Arc::new(Overrides::new(&limits));
    // Every flush refreshes every series' and metric's row: many small files
    // repeating keys.
    let config = StreamWorkersConfig { series_refresh_ms: 1, compaction_min_files: 2, ..maintenance_config() };
    let mut registry = Registry::default();
    let workers =
        env.start_with(config, env.writer(), None, overrides, clock.clone() as Arc<dyn Clock>, &mut registry).await;
    // `gone` was last seen 40 days ago; `kept` keeps being scraped.
    let gone = series(&[("__name__", "gone"), ("job", "x")], &[(now - 40 * DAY, 1.0)]);
    let meta = |name: &str, help: &str| MetricMetadata {
        metric_family_name: name.into(),
        r#type: MetricType::Gauge as i32,
        help: help.into(),
        unit: String::new(),
    };
    let o = env.append(0, &batch(vec![gone.clone()], vec![meta("gone", "old")])).await;
    workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    let mut kept = None;
    for i in 0..5i64 {
        let s = series(&[("__name__", "kept"), ("job", "x")], &[(now - 60_000 + i * 10_000, i as f64)]);
        let o = env.append(0, &batch(vec![s.clone()], vec![meta("kept", &format!("help {i}"))])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
        kept = Some(s);
    }
    let kept = kept.unwrap();
    let series_files = || parquet_files_on_disk(&env.lake_dir().join(WS).join("series"));
    assert!(read_series(&env.lake).await.len() >= 6, "a row per flush: {:?}", read_series(&env.lake).await.len());
    let before_files = series_files();
    assert!(before_files >= 6, "{before_files}");

    let report = workers.run_maintenance().await.unwrap();
    // Metadata rows carry their receive time, so `gone`'s (received now) stays.
    assert_eq!(report.rewritten.expired, 1, "the `gone` series: {report:?}");
    let rows = read_series(&env.lake).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].0, kept.series_id);
    assert_eq!((rows[0].3, rows[0].4), (now - 60_000, now - 20_000), "first and last timestamps merged");
    assert_eq!(rows[0].2.get("job").map(String::as_str), Some("x"));
    let meta_rows = read_metadata(&env.lake).await;
    assert_eq!(
        meta_rows,
        vec![
            ("gone".into(), "gauge".into(), "old".into(), String::new()),
            ("kept".into(), "gauge".into(), "help 4".into(), String::new())
        ],
        "the newest row per metric"
    );

    // The removed files leave the disk after the grace, not Delta's 7 days.
    assert_eq!(series_files(), before_files + 1, "removed files stay until vacuum");
    clock.advance(600_001);
    workers.run_maintenance().await.unwrap();
    assert_eq!(series_files(), 1);

    // Reads resolve labels from the rewritten table, and appends go on.
    let s = series(&[("__name__", "kept"), ("job", "x")], &[(now, 9.0)]);
    let o = env.append(0, &batch(vec![s], vec![])).await;
    workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    let sel = Selection {
        matchers: vec![LabelMatcher::new("job", MatchOp::Equal, "x").unwrap()],
        start_ms: now - 50 * DAY,
        end_ms: now,
    };
    let got = workers.select(WS, &sel).await.unwrap();
    assert_eq!(got.series.len(), 1, "{got:?}");
    assert_eq!(got.series[0].samples.len(), 6);
    let rows = read_series(&env.lake).await;
    assert_eq!(rows.len(), 2, "the rewritten row and the new refresh: {rows:#?}");
    workers.shutdown().await;
}

#[tokio::test]
async fn rewrites_while_appends_go_on_lose_no_series() {
    let env = Arc::new(Env::new(2).await);
    let now = now_ms();
    let config = StreamWorkersConfig { series_refresh_ms: 1, compaction_min_files: 1, ..maintenance_config() };
    let mut registry = Registry::default();
    let workers = env.start(config, env.writer(), None, &mut registry).await;
    // Passes run back to back while the appender writes; it waits for a new
    // pass every ten series, so at least six passes interleave with appends
    // however slow the machine.
    let passes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let appender = {
        let (env, passes) = (env.clone(), passes.clone());
        tokio::spawn(async move {
            let mut ids = BTreeSet::new();
            let mut last = [0u64; 2];
            for i in 0..60u32 {
                let s = series(&[("__name__", "up"), ("i", &i.to_string())], &[(now - i64::from(i), 1.0)]);
                ids.insert(s.series_id);
                last[(i % 2) as usize] = env.append(i % 2, &batch(vec![s], vec![])).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                if i % 10 == 9 {
                    let seen = passes.load(std::sync::atomic::Ordering::SeqCst);
                    while passes.load(std::sync::atomic::Ordering::SeqCst) <= seen {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (ids, last)
        })
    };
    while !appender.is_finished() {
        workers.run_maintenance().await.unwrap();
        passes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let (ids, last) = appender.await.unwrap();
    let passes = passes.load(std::sync::atomic::Ordering::SeqCst);
    assert!(passes >= 6, "only {passes} passes raced the appends");
    for (p, o) in last.iter().enumerate() {
        workers.wait_for_offset(WS, p as u32, *o, Duration::from_secs(10)).await.unwrap();
    }
    workers.run_maintenance().await.unwrap();
    let rows = read_series(&env.lake).await;
    let found: BTreeSet<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(found, ids, "after {passes} passes");
    assert_eq!(rows.len(), ids.len(), "one row per series after the last rewrite");
    workers.shutdown().await;
}
