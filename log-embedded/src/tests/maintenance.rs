//! Retention and compaction, including compaction interrupted by power
//! loss at every step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::log::{CleanupPolicy, Log, Record, StoredRecord, TopicSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{fetch_all, record};
use crate::config::EmbeddedLogConfig;
use crate::fs::Fs;
use crate::sim::SimFs;
use crate::{EmbeddedLog, MaintenanceReport};

const HOUR_MS: i64 = 3_600_000;

fn open(fs: &Arc<SimFs>, config: &EmbeddedLogConfig) -> Arc<EmbeddedLog> {
    EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), config.clone()).unwrap()
}

/// Segments of about three records each.
fn tiny_segments() -> EmbeddedLogConfig {
    EmbeddedLogConfig { segment_bytes: 150, ..EmbeddedLogConfig::default() }
}

fn segment_count(fs: &SimFs, topic: &str) -> usize {
    let dir = Path::new("/data").join(topic).join("0");
    fs.read_dir(&dir).unwrap().iter().filter(|entry| entry.name.ends_with(".log")).count()
}

#[tokio::test]
async fn retention_deletes_old_sealed_segments_below_every_committed_offset() {
    let fs = SimFs::new();
    let config = tiny_segments();
    let log = open(&fs, &config);
    let spec = TopicSpec { partitions: 1, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(3600) } };
    log.ensure_topic("t", spec).await.unwrap();
    // 30 old records, then 6 recent ones.
    for i in 0..36 {
        let timestamp_ms = if i < 30 { 0 } else { 10 * HOUR_MS };
        log.append("t", 0, vec![record("k", &format!("{i:04}"), timestamp_ms)]).await.unwrap();
    }
    let now_ms = 10 * HOUR_MS + 1;
    let segments = segment_count(&fs, "t");
    assert!(segments >= 8, "{segments} segments");

    // Nobody committed: nothing goes.
    assert_eq!(log.run_maintenance(now_ms).await.unwrap(), MaintenanceReport::default());
    assert_eq!(log.offsets("t", 0).await.unwrap().log_start, 0);

    // The slowest group holds retention back.
    log.commit_offset("fast", "t", 0, 36).await.unwrap();
    log.commit_offset("slow", "t", 0, 10).await.unwrap();
    let report = log.run_maintenance(now_ms).await.unwrap();
    assert!(report.segments_deleted > 0);
    let log_start = log.offsets("t", 0).await.unwrap().log_start;
    assert!(log_start > 0 && log_start <= 10, "log start {log_start}");
    let from_zero = log.fetch("t", 0, 0, 1 << 20, Duration::ZERO).await.unwrap();
    assert_eq!(from_zero.records[0].offset, log_start, "a fetch below the log start reads from it");
    assert_eq!(from_zero.offsets.log_start, log_start);
    assert_eq!(segment_count(&fs, "t"), segments - report.segments_deleted as usize);

    // With every group caught up, only the recent records' segments stay,
    // and never the active one.
    log.commit_offset("slow", "t", 0, 36).await.unwrap();
    log.run_maintenance(now_ms).await.unwrap();
    let remaining = fetch_all(&log, "t", 0).await;
    assert!(remaining.iter().any(|r| r.offset == 35));
    assert!(remaining.first().unwrap().offset > 27, "old records went: {}", remaining[0].offset);
    assert!(remaining.iter().filter(|r| r.timestamp_ms == 0).count() < 3);
    for (i, r) in remaining.iter().enumerate() {
        assert_eq!(r.offset, remaining[0].offset + i as u64);
    }
    // Later, everything is old and committed: still the active segment stays.
    log.run_maintenance(100 * HOUR_MS).await.unwrap();
    assert_eq!(segment_count(&fs, "t"), 1);
    assert_eq!(fetch_all(&log, "t", 0).await.last().unwrap().offset, 35);

    // The log start survives a reopen, and appends continue.
    log.close().await.unwrap();
    let log = open(&fs, &config);
    let offsets = log.offsets("t", 0).await.unwrap();
    assert!(offsets.log_start > 27 && offsets.high_watermark == 36, "{offsets:?}");
    assert_eq!(log.append("t", 0, vec![record("k", "x", 0)]).await.unwrap().first_offset, 36);
}

/// Appends a history of keys with overwrites and tombstones, then distinct
/// filler keys so the interesting records end up in sealed segments.
async fn write_history(log: &EmbeddedLog, now_ms: i64) -> Vec<StoredRecord> {
    let compact = TopicSpec { partitions: 1, cleanup: CleanupPolicy::Compact };
    log.ensure_topic("c", compact).await.unwrap();
    let old = now_ms - 48 * HOUR_MS;
    let mut records = Vec::new();
    for round in 0..6 {
        for key in ["a", "b", "c", "d", "e"] {
            records.push(record(key, &format!("{key}{round}"), old));
        }
    }
    // "c" deleted long ago, "d" deleted recently.
    records.push(Record { key: Some(Bytes::from("c")), value: None, timestamp_ms: old });
    records.push(Record { key: Some(Bytes::from("d")), value: None, timestamp_ms: now_ms - 1000 });
    records.push(record("a", "a-final", now_ms));
    for filler in 0..8 {
        records.push(record(&format!("f{filler}"), "filler", now_ms));
    }
    let mut all = Vec::new();
    for record in records {
        let offset = log.append("c", 0, vec![record.clone()]).await.unwrap().first_offset;
        all.push(StoredRecord { offset, key: record.key, value: record.value, timestamp_ms: record.timestamp_ms });
    }
    all
}

/// The base offset of the active (last) segment of `c`/0.
fn active_base(fs: &SimFs) -> u64 {
    let dir = Path::new("/data/c/0");
    fs.read_dir(dir).unwrap().iter().filter_map(|entry| crate::segment::parse_segment_name(&entry.name)).max().unwrap()
}

/// What compaction keeps: records of the active segment as they are; before
/// it, the newest record of each key unless it is a tombstone older than a day.
fn compacted(all: &[StoredRecord], active_base: u64, now_ms: i64) -> BTreeMap<u64, StoredRecord> {
    let mut newest: BTreeMap<Bytes, u64> = BTreeMap::new();
    for record in all {
        newest.insert(record.key.clone().unwrap(), record.offset);
    }
    all.iter()
        .filter(|r| {
            r.offset >= active_base
                || (newest[r.key.as_ref().unwrap()] == r.offset
                    && (r.value.is_some() || r.timestamp_ms > now_ms - 24 * HOUR_MS))
        })
        .map(|r| (r.offset, r.clone()))
        .collect()
}

#[tokio::test]
async fn compaction_keeps_the_newest_record_per_key_and_survives_reopen() {
    let fs = SimFs::new();
    let config = tiny_segments();
    let log = open(&fs, &config);
    let now_ms = 100 * HOUR_MS;
    let all = write_history(&log, now_ms).await;
    let expected = compacted(&all, active_base(&fs), now_ms);
    let before = segment_count(&fs, "c");

    let report = log.run_maintenance(now_ms).await.unwrap();
    assert!(report.segments_compacted > 0 && report.records_compacted > 0, "{report:?}");
    let compacted = fetch_all(&log, "c", 0).await;
    // Sealed segments hold only the newest record of each key; the active
    // segment (the last record) is untouched.
    let got: BTreeMap<u64, StoredRecord> = compacted.iter().map(|r| (r.offset, r.clone())).collect();
    assert_eq!(got, expected, "newest per key, offsets preserved, expired tombstone gone");
    assert!(got.values().any(|r| r.key.as_deref() == Some(&b"d"[..]) && r.value.is_none()), "young tombstone kept");
    assert!(!got.values().any(|r| r.key.as_deref() == Some(&b"c"[..])), "old tombstone and its key gone");
    assert!(segment_count(&fs, "c") < before, "segments were merged");
    let offsets = log.offsets("c", 0).await.unwrap();
    assert_eq!(offsets.high_watermark, all.len() as u64);

    // Nothing more to do; fetching from inside a gap reads the next record.
    assert_eq!(log.run_maintenance(now_ms).await.unwrap(), MaintenanceReport::default());
    let gap = (0..all.len() as u64).find(|offset| !got.contains_key(offset)).unwrap();
    let fetched = log.fetch("c", 0, gap, 1 << 20, Duration::ZERO).await.unwrap();
    assert_eq!(fetched.records[0].offset, *got.range(gap..).next().unwrap().0);

    log.close().await.unwrap();
    let log = open(&fs, &config);
    let reopened: BTreeMap<u64, StoredRecord> =
        fetch_all(&log, "c", 0).await.into_iter().map(|r| (r.offset, r)).collect();
    assert_eq!(reopened, expected);
    assert_eq!(log.append("c", 0, vec![record("z", "z", now_ms)]).await.unwrap().first_offset, all.len() as u64);
}

#[tokio::test]
async fn leftover_compaction_output_is_removed_at_open() {
    let fs = SimFs::new();
    let config = tiny_segments();
    let log = open(&fs, &config);
    let all = write_history(&log, 100 * HOUR_MS).await;
    log.close().await.unwrap();
    let dir = Path::new("/data/c/0");
    let cleaned = dir.join("00000000000000000000-00000000000000000005.cleaned");
    fs.create(&cleaned).unwrap().append(b"half-written compaction output").unwrap();
    let log = open(&fs, &config);
    assert!(!fs.exists(&cleaned).unwrap());
    assert_eq!(fetch_all(&log, "c", 0).await, all);
}

/// Crashes compaction at every mutating file operation: after recovery the
/// partition holds either the old or the compacted records of each group,
/// always every key's newest record, at its offset.
#[tokio::test]
async fn compaction_interrupted_at_every_step_recovers() {
    let config = tiny_segments();
    let now_ms = 100 * HOUR_MS;
    // A fully synced starting state, booted fresh for every crash point.
    let origin = SimFs::new();
    let all = write_history(&open(&origin, &config), now_ms).await;
    let expected = compacted(&all, active_base(&origin), now_ms);
    origin.crash(&mut StdRng::seed_from_u64(0));
    let by_offset: BTreeMap<u64, StoredRecord> = all.iter().map(|r| (r.offset, r.clone())).collect();

    let mut swaps_seen = 0;
    for step in 0.. {
        let fs = origin.recovered();
        let log = open(&fs, &config);
        fs.crash_after(step, step);
        let result = log.run_maintenance(now_ms).await;
        if !fs.is_crashed() {
            result.unwrap();
            assert!(step > 10, "compaction took more than a few steps");
            break;
        }
        assert!(result.is_err(), "step {step}: a crash during compaction is reported");
        fs.crash(&mut StdRng::seed_from_u64(step));
        let after = fs.recovered();
        let names: Vec<String> =
            after.read_dir(Path::new("/data/c/0")).unwrap().into_iter().map(|entry| entry.name).collect();
        swaps_seen += names.iter().filter(|name| name.ends_with(".swap")).count();

        let log = EmbeddedLog::open_with_fs(after.clone(), Path::new("/data"), config.clone())
            .unwrap_or_else(|e| panic!("open after a crash at step {step}: {e}"));
        let stored = fetch_all(&log, "c", 0).await;
        let mut previous = None;
        for record in &stored {
            assert!(previous < Some(record.offset), "step {step}: offsets increase");
            previous = Some(record.offset);
            assert_eq!(Some(record), by_offset.get(&record.offset), "step {step}: only original records");
        }
        for (offset, record) in &expected {
            assert!(stored.contains(record), "step {step}: newest record at {offset} lost");
        }
        let names: Vec<String> =
            after.read_dir(Path::new("/data/c/0")).unwrap().into_iter().map(|entry| entry.name).collect();
        assert!(
            names.iter().all(|name| name.ends_with(".log") || name == "consumer-offsets"),
            "step {step}: {names:?}"
        );
        // Compaction can finish after recovery.
        log.run_maintenance(now_ms).await.unwrap();
        let done: BTreeMap<u64, StoredRecord> =
            fetch_all(&log, "c", 0).await.into_iter().map(|r| (r.offset, r)).collect();
        assert_eq!(done, expected, "step {step}");
    }
    assert!(swaps_seen > 0, "some crash hit between the commit and the clean-up");
}
