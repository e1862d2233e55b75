//! Compaction of the samples table's small files into large sorted ones, by
//! the maintenance pass, while appends go on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::clock::{Clock, SystemClock};
use common::limits::{Limits, Overrides};
use prometheus_client::registry::Registry;
use stream_workers::{StreamWorkersConfig, TableWriter};

use crate::harness::*;

const DAY: i64 = 86_400_000;
const HOUR: u64 = 3_600_000;

/// Background maintenance off (passes are run explicitly), compaction of
/// past days above 8 files, today above 16.
fn compaction_config() -> StreamWorkersConfig {
    StreamWorkersConfig {
        maintenance_start_delay_ms: 10 * HOUR,
        maintenance_interval_ms: 10 * HOUR,
        compaction_min_files: 8,
        compaction_today_min_files: 16,
        ..fast_config()
    }
}

/// Every sample of the table, compared whole, in a canonical order (the
/// reader also asserts each file is sorted and in its day).
async fn all_rows(env: &Env) -> Vec<(String, u64, i64, Option<u64>, Option<Vec<u8>>, bool, String)> {
    let mut rows: Vec<_> = read_samples(&env.lake)
        .await
        .into_iter()
        .map(|s| (s.metric, s.series_id, s.timestamp_ms, s.value_bits, s.histogram, s.stale, s.day))
        .collect();
    rows.sort();
    rows
}

fn files_of_day(env: &Env, timestamp_ms: i64) -> usize {
    parquet_files_on_disk(&env.lake_dir().join(WS).join("samples").join(format!("day={}", civil_day(timestamp_ms))))
}

/// Active files of the table per day partition (a fresh reader).
async fn active_files(env: &Env, timestamp_ms: i64) -> usize {
    let day = civil_day(timestamp_ms);
    stream_workers::read::read_table(&env.lake, WS, stream_workers::TableKind::Samples)
        .await
        .unwrap()
        .iter()
        .filter(|f| f.partition.iter().any(|(k, v)| k == "day" && *v == day))
        .count()
}

#[tokio::test]
async fn a_past_days_small_files_become_one_sorted_file_and_small_or_todays_days_are_left_alone() {
    let env = Env::new(1).await;
    let now = now_ms();
    let (past, few) = (now - 3 * DAY, now - 5 * DAY);
    let mut registry = Registry::default();
    let overrides = Arc::new(Overrides::new(&Limits::default()));
    let workers = env
        .start_with(
            compaction_config(),
            env.writer(),
            None,
            overrides,
            Arc::new(SystemClock) as Arc<dyn Clock>,
            &mut registry,
        )
        .await;
    // 20 flushes, each a file in the past day and today; the first 3 also
    // one in an older day. Several series and metrics per flush (120 series:
    // ids on both sides of the i64 sign bit).
    for i in 0..20i64 {
        let mut all = Vec::new();
        for s in 0..6 {
            let name = if s % 2 == 0 { "node_cpu_seconds_total" } else { "go_goroutines" };
            let mut samples = vec![(past + i * 15_000, (i * 10 + s) as f64), (now - 60_000 + i, i as f64)];
            if i < 3 {
                samples.insert(0, (few + i * 15_000, 1.5));
            }
            // A new series per flush: a series' older samples would be
            // dropped as out of order (window 0).
            all.push(series(&[("__name__", name), ("cpu", &s.to_string()), ("flush", &i.to_string())], &samples));
        }
        let o = env.append(0, &batch(all, vec![])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    }
    assert_eq!(active_files(&env, past).await, 20);
    assert_eq!(active_files(&env, now).await, 20);
    assert_eq!(active_files(&env, few).await, 3);
    let before = all_rows(&env).await;
    assert_eq!(before.len(), 20 * 6 * 2 + 3 * 6);

    // Today's threshold is 16: its 20 files are compacted too.
    let report = workers.run_maintenance().await.unwrap();
    assert_eq!(report.compacted.partitions, 2, "{report:?}");
    assert_eq!(report.compacted.files_removed, 40, "{report:?}");
    assert_eq!(report.compacted.files_added, 2, "{report:?}");
    assert_eq!(report.compacted.aborted, 0);
    assert_eq!(active_files(&env, past).await, 1);
    assert_eq!(active_files(&env, now).await, 1);
    assert_eq!(active_files(&env, few).await, 3, "a day with few files is left alone");
    assert_eq!(all_rows(&env).await, before, "same rows, sorted files");
    // Removed files stay on disk for Delta's 7 days (vacuum).
    assert_eq!(files_of_day(&env, past), 21);
    let again = workers.run_maintenance().await.unwrap();
    assert_eq!(again.compacted, Default::default(), "nothing left to compact");
    workers.shutdown().await;
    let files = metric_value(&registry, &format!("promlake_stream_compacted_files_total{{workspace=\"{WS}\"}}"));
    let rows = metric_value(&registry, &format!("promlake_stream_compacted_rows_total{{workspace=\"{WS}\"}}"));
    assert_eq!((files, rows), (40.0, 240.0));
}

#[tokio::test]
async fn todays_partition_below_its_threshold_is_left_alone() {
    let env = Env::new(1).await;
    let now = now_ms();
    let mut registry = Registry::default();
    let workers = env.start(compaction_config(), env.writer(), None, &mut registry).await;
    for i in 0..12i64 {
        let o = env.append(0, &batch(vec![series(&[("__name__", "up")], &[(now - 60_000 + i, 1.0)])], vec![])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    }
    let before = all_rows(&env).await;
    let report = workers.run_maintenance().await.unwrap();
    assert_eq!(report.compacted, Default::default(), "12 files: above the past-day threshold, not today's");
    assert_eq!(active_files(&env, now).await, 12);
    assert_eq!(all_rows(&env).await, before);
    workers.shutdown().await;
}

#[tokio::test]
async fn compaction_while_appends_go_on_loses_and_doubles_nothing() {
    let env = Env::new(2).await;
    let now = now_ms();
    let past = now - 2 * DAY;
    let config = StreamWorkersConfig { compaction_min_files: 2, compaction_today_min_files: 2, ..compaction_config() };
    let mut registry = Registry::default();
    let workers = Arc::new(env.start(config, env.writer(), None, &mut registry).await);
    // Two partitions keep appending to the same past day and today.
    let appender = {
        let log = env.log.clone();
        let topic = env.topic.clone();
        tokio::spawn(async move {
            let mut expected = BTreeSet::new();
            let mut last = [0u64; 2];
            for i in 0..60i64 {
                let p = (i % 2) as u32;
                let s = series(&[("__name__", "c"), ("i", &i.to_string())], &[(past + i, 1.0), (now - i, 2.0)]);
                expected.insert((s.series_id, past + i));
                expected.insert((s.series_id, now - i));
                let b = batch(vec![s], vec![]);
                let r = common::log::Record {
                    key: None,
                    value: Some(bytes::Bytes::from(prost::Message::encode_to_vec(&b))),
                    timestamp_ms: now_ms(),
                };
                last[p as usize] =
                    common::log::Log::append(log.as_ref(), &topic, p, vec![r]).await.unwrap().last_offset;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            (last, expected)
        })
    };
    // Compactions alternate between the workers' pass (same table locks as
    // the appends) and another writer (another process: only Delta's
    // optimistic concurrency between them).
    let other = env.writer();
    let policy = stream_workers::CompactionPolicy {
        now_ms: now,
        first_day: 0,
        min_files: 2,
        today_min_files: 2,
        target_file_bytes: 64 << 20,
    };
    let mut compacted = 0;
    let mut round = 0;
    while !appender.is_finished() {
        round += 1;
        compacted += if round % 2 == 0 {
            workers.run_maintenance().await.unwrap().compacted.files_removed
        } else {
            other.compact_samples(WS, &policy).await.unwrap().files_removed
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (last, expected) = appender.await.unwrap();
    for (p, o) in last.iter().enumerate() {
        workers.wait_for_offset(WS, p as u32, *o, Duration::from_secs(10)).await.unwrap();
    }
    let r = workers.run_maintenance().await.unwrap();
    compacted += r.compacted.files_removed;
    assert!(compacted > 10, "compaction ran while appending ({compacted} files)");
    // sample_map asserts no (series, timestamp) twice; read_samples that
    // every file is sorted.
    let got: BTreeSet<(u64, i64)> = sample_map(&env.lake).await.into_keys().collect();
    assert_eq!(got, expected);
    assert!(active_files(&env, past).await <= 2, "{}", active_files(&env, past).await);
    Arc::into_inner(workers).unwrap().shutdown().await;
}

#[tokio::test]
async fn an_expired_day_is_removed_by_retention_not_resurrected_by_compaction() {
    let env = Env::new(1).await;
    let now = now_ms();
    let (expired, kept) = (now - 200 * DAY, now - 100 * DAY);
    let mut registry = Registry::default();
    let workers = env.start(compaction_config(), env.writer(), None, &mut registry).await;
    let mut keep = BTreeSet::new();
    for i in 0..10i64 {
        let s = series(&[("__name__", "up"), ("i", &i.to_string())], &[(expired + i, 1.0), (kept + i, 2.0)]);
        keep.insert((s.series_id, kept + i));
        let o = env.append(0, &batch(vec![s], vec![])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(10)).await.unwrap();
    }
    let report = workers.run_maintenance().await.unwrap();
    assert_eq!(report.expired_files_removed, 10);
    assert_eq!((report.compacted.partitions, report.compacted.files_removed), (1, 10), "{report:?}");
    assert_eq!(active_files(&env, expired).await, 0);
    assert_eq!(active_files(&env, kept).await, 1);
    let got: BTreeSet<(u64, i64)> = sample_map(&env.lake).await.into_keys().collect();
    assert_eq!(got, keep);
    workers.shutdown().await;
}
