//! Round trips, waiting fetches, reopening, group commit, consumer offsets
//! and bad input.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::log::{AppendReceipt, CleanupPolicy, Log, LogError, Record, TopicSpec};

use super::{delete_spec, fetch_all, open_real, record, small_segments};
use crate::EmbeddedLog;
use crate::config::EmbeddedLogConfig;
use crate::fs::{DirEntry, Fs, FsFile, RealFs};
use crate::sim::SimFs;

#[tokio::test]
async fn append_and_fetch_round_trip_across_topics_and_partitions() {
    let log = EmbeddedLog::open_with_fs(SimFs::new(), Path::new("/data"), EmbeddedLogConfig::default()).unwrap();
    assert_eq!(log.ensure_topic("samples", delete_spec(3)).await.unwrap(), 3);
    assert_eq!(
        log.ensure_topic("_control", TopicSpec { partitions: 1, cleanup: CleanupPolicy::Compact }).await.unwrap(),
        1
    );
    // An existing topic keeps its own spec.
    assert_eq!(log.ensure_topic("samples", delete_spec(7)).await.unwrap(), 3);
    assert_eq!(log.partition_count("samples").await.unwrap(), 3);
    assert_eq!(log.topics(), vec!["_control".to_owned(), "samples".to_owned()]);

    let receipt = log.append("samples", 1, vec![record("a", "1", 10), record("b", "2", 11)]).await.unwrap();
    assert_eq!(receipt, AppendReceipt { first_offset: 0, last_offset: 1 });
    let receipt = log.append("samples", 1, vec![record("c", "3", 12)]).await.unwrap();
    assert_eq!(receipt, AppendReceipt { first_offset: 2, last_offset: 2 });
    let tombstone = Record { key: Some(Bytes::from_static(b"k")), value: None, timestamp_ms: 5 };
    let keyless = Record { key: None, value: Some(Bytes::from_static(b"v")), timestamp_ms: -1 };
    log.append("samples", 2, vec![tombstone.clone(), keyless.clone()]).await.unwrap();
    log.append("_control", 0, vec![record("arn", "x", 1)]).await.unwrap();

    let part1 = fetch_all(&log, "samples", 1).await;
    let values: Vec<_> =
        part1.iter().map(|r| (r.offset, r.key.clone().unwrap(), r.value.clone().unwrap(), r.timestamp_ms)).collect();
    assert_eq!(
        values,
        vec![
            (0, Bytes::from("a"), Bytes::from("1"), 10),
            (1, Bytes::from("b"), Bytes::from("2"), 11),
            (2, Bytes::from("c"), Bytes::from("3"), 12)
        ]
    );
    let part2 = fetch_all(&log, "samples", 2).await;
    assert_eq!((part2[0].key.clone(), part2[0].value.clone(), part2[0].timestamp_ms), (tombstone.key, None, 5));
    assert_eq!((part2[1].key.clone(), part2[1].value.clone(), part2[1].timestamp_ms), (None, keyless.value, -1));
    assert!(fetch_all(&log, "samples", 0).await.is_empty());
    assert_eq!(fetch_all(&log, "_control", 0).await.len(), 1);

    let offsets = log.offsets("samples", 1).await.unwrap();
    assert_eq!((offsets.log_start, offsets.high_watermark), (0, 3));
    // Fetch from the middle, and past the end.
    let middle = log.fetch("samples", 1, 1, 1 << 20, Duration::ZERO).await.unwrap();
    assert_eq!(middle.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(middle.offsets, offsets);
    assert!(log.fetch("samples", 1, 3, 1 << 20, Duration::ZERO).await.unwrap().records.is_empty());
}

#[tokio::test]
async fn fetch_uses_the_index_and_respects_max_bytes() {
    let log = EmbeddedLog::open_with_fs(SimFs::new(), Path::new("/data"), small_segments(64 * 1024)).unwrap();
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    for batch in 0..50 {
        let records = (0..10).map(|i| record("k", &format!("{batch}-{i}-{}", "x".repeat(80)), 0)).collect();
        log.append("t", 0, records).await.unwrap();
    }
    for from in [0, 1, 137, 255, 499] {
        let fetched = log.fetch("t", 0, from, 1 << 20, Duration::ZERO).await.unwrap();
        assert_eq!(fetched.records[0].offset, from);
        assert_eq!(fetched.records.last().unwrap().offset, 499);
        let value = format!("{}-{}-{}", from / 10, from % 10, "x".repeat(80));
        assert_eq!(fetched.records[0].value.as_deref(), Some(value.as_bytes()));
    }
    // A tiny budget still returns one record; a medium one a few.
    assert_eq!(log.fetch("t", 0, 42, 1, Duration::ZERO).await.unwrap().records.len(), 1);
    let some = log.fetch("t", 0, 42, 1000, Duration::ZERO).await.unwrap().records;
    assert!(some.len() > 1 && some.len() < 10, "{}", some.len());
    assert_eq!(some[0].offset, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_waits_for_new_data_until_max_wait() {
    let log = EmbeddedLog::open_with_fs(SimFs::new(), Path::new("/data"), EmbeddedLogConfig::default()).unwrap();
    log.ensure_topic("t", delete_spec(1)).await.unwrap();

    let start = Instant::now();
    let empty = log.fetch("t", 0, 0, 1024, Duration::from_millis(100)).await.unwrap();
    assert!(empty.records.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(100));

    let waiting = {
        let log = log.clone();
        tokio::spawn(async move { log.fetch("t", 0, 0, 1024, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "the fetch waits for data");
    let start = Instant::now();
    log.append("t", 0, vec![record("k", "v", 1)]).await.unwrap();
    let fetched = waiting.await.unwrap().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "woken by the append, not by max_wait");
    assert_eq!(fetched.records.len(), 1);
    assert_eq!(fetched.offsets.high_watermark, 1);
}

#[tokio::test]
async fn reopen_after_close_keeps_records_offsets_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(150);
    let mut expected = Vec::new();
    {
        let log = open_real(dir.path(), config.clone());
        log.ensure_topic("t", delete_spec(2)).await.unwrap();
        for i in 0..30 {
            let value = format!("value-{i}");
            log.append("t", i % 2, vec![record("k", &value, i64::from(i))]).await.unwrap();
            expected.push((i % 2, value));
        }
        log.commit_offset("g", "t", 1, 7).await.unwrap();
        log.close().await.unwrap();
        assert!(matches!(log.append("t", 0, vec![record("k", "late", 0)]).await, Err(LogError::Closed)));
        assert!(matches!(log.commit_offset("g", "t", 0, 1).await, Err(LogError::Closed)));
        // Reading still works after close.
        assert_eq!(fetch_all(&log, "t", 0).await.len(), 15);
    }
    assert!(super::segment_files(dir.path(), "t", 0).len() > 2, "small segments rotate");
    let log = open_real(dir.path(), config);
    assert_eq!(log.topics(), vec!["t".to_owned()]);
    for partition in 0..2 {
        let values: Vec<String> = fetch_all(&log, "t", partition)
            .await
            .iter()
            .enumerate()
            .map(|(i, r)| {
                assert_eq!(r.offset, i as u64);
                String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()
            })
            .collect();
        let want: Vec<String> = expected.iter().filter(|(p, _)| *p == partition).map(|(_, v)| v.clone()).collect();
        assert_eq!(values, want);
    }
    assert_eq!(log.committed_offset("g", "t", 1).await.unwrap(), Some(7));
    let receipt = log.append("t", 0, vec![record("k", "after", 0)]).await.unwrap();
    assert_eq!(receipt.first_offset, 15);
}

/// Delegates to [`RealFs`] but makes every file sync take a while, as on a
/// real disk, so concurrent appenders pile up behind it.
#[derive(Debug)]
struct SlowSyncFs;

#[derive(Debug)]
struct SlowSyncFile(Arc<dyn FsFile>);

impl Fs for SlowSyncFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        RealFs.read_dir(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(SlowSyncFile(RealFs.create(path)?)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(SlowSyncFile(RealFs.open(path)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        RealFs.exists(path)
    }
}

impl FsFile for SlowSyncFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.0.append(data)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }
    fn sync(&self) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(2));
        self.0.sync()
    }
    fn size(&self) -> io::Result<u64> {
        self.0.size()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.truncate(len)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_share_fsyncs_and_get_contiguous_offsets() {
    const TASKS: u64 = 50;
    const APPENDS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open_with_fs(Arc::new(SlowSyncFs), dir.path(), small_segments(256 * 1024)).unwrap();
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    let before = log.fsync_count();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let log = log.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..APPENDS {
                let receipt = log.append("t", 0, vec![record(&task.to_string(), &i.to_string(), 0)]).await.unwrap();
                assert_eq!(receipt.first_offset, receipt.last_offset);
                got.push((receipt.first_offset, task, i));
            }
            got
        });
    }
    let mut all: Vec<(u64, u64, u64)> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = start.elapsed();
    all.sort();
    let offsets: Vec<u64> = all.iter().map(|(offset, _, _)| *offset).collect();
    assert_eq!(offsets, (0..TASKS * APPENDS).collect::<Vec<_>>(), "unique, contiguous offsets");
    let fsyncs = log.fsync_count() - before;
    assert!(fsyncs * 10 < TASKS * APPENDS, "{fsyncs} fsyncs for {} appends", TASKS * APPENDS);
    // Each receipt names the record that is stored at its offset.
    let stored = fetch_all(&log, "t", 0).await;
    for (offset, task, i) in all {
        let record = &stored[offset as usize];
        assert_eq!(record.key.as_deref(), Some(task.to_string().as_bytes()));
        assert_eq!(record.value.as_deref(), Some(i.to_string().as_bytes()));
    }
    eprintln!("{} appends, {fsyncs} fsyncs, {elapsed:?}", TASKS * APPENDS);
}

#[tokio::test]
async fn consumer_offsets_round_trip_per_group_and_partition_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let odd_group = "../group/with\nany ∂ chars\0";
    {
        let log = open_real(dir.path(), EmbeddedLogConfig::default());
        log.ensure_topic("t", delete_spec(2)).await.unwrap();
        assert_eq!(log.committed_offset("g", "t", 0).await.unwrap(), None);
        log.commit_offset("g", "t", 0, 5).await.unwrap();
        log.commit_offset("g", "t", 0, 9).await.unwrap();
        log.commit_offset("h", "t", 0, 3).await.unwrap();
        log.commit_offset("g", "t", 1, 1).await.unwrap();
        log.commit_offset(odd_group, "t", 1, 42).await.unwrap();
        assert_eq!(log.committed_offset("g", "t", 0).await.unwrap(), Some(9));
        assert_eq!(log.committed_offset("h", "t", 0).await.unwrap(), Some(3));
        assert_eq!(log.committed_offset("h", "t", 1).await.unwrap(), None);
        log.close().await.unwrap();
    }
    let log = open_real(dir.path(), EmbeddedLogConfig::default());
    assert_eq!(log.committed_offset("g", "t", 0).await.unwrap(), Some(9));
    assert_eq!(log.committed_offset("h", "t", 0).await.unwrap(), Some(3));
    assert_eq!(log.committed_offset("g", "t", 1).await.unwrap(), Some(1));
    assert_eq!(log.committed_offset(odd_group, "t", 1).await.unwrap(), Some(42));
    assert_eq!(log.committed_offset("h", "t", 1).await.unwrap(), None);
    assert!(matches!(log.committed_offset("g", "t", 2).await, Err(LogError::PartitionNotFound { .. })));
}

#[tokio::test]
async fn bad_input_is_refused_with_the_right_error() {
    let log = EmbeddedLog::open_with_fs(
        SimFs::new(),
        Path::new("/data"),
        EmbeddedLogConfig { max_record_bytes: 100, ..Default::default() },
    )
    .unwrap();
    for bad in ["", ".", "..", "a/b", "../x", &"x".repeat(250), "sp ace"] {
        assert!(matches!(log.ensure_topic(bad, delete_spec(1)).await, Err(LogError::InvalidTopic { .. })), "{bad:?}");
    }
    assert!(matches!(log.ensure_topic("t", delete_spec(0)).await, Err(LogError::InvalidTopic { .. })));
    assert!(log.topics().is_empty());
    log.ensure_topic("t", delete_spec(2)).await.unwrap();

    let missing =
        |result: Result<_, LogError>| matches!(result, Err(LogError::TopicNotFound { topic }) if topic == "nope");
    assert!(missing(log.append("nope", 0, vec![record("k", "v", 0)]).await.map(|_| ())));
    assert!(missing(log.fetch("nope", 0, 0, 1, Duration::ZERO).await.map(|_| ())));
    assert!(missing(log.offsets("nope", 0).await.map(|_| ())));
    assert!(missing(log.partition_count("nope").await.map(|_| ())));
    assert!(missing(log.commit_offset("g", "nope", 0, 1).await));
    let no_partition =
        |result: Result<_, LogError>| matches!(result, Err(LogError::PartitionNotFound { partition: 2, .. }));
    assert!(no_partition(log.append("t", 2, vec![record("k", "v", 0)]).await.map(|_| ())));
    assert!(no_partition(log.fetch("t", 2, 0, 1, Duration::ZERO).await.map(|_| ())));
    assert!(no_partition(log.offsets("t", 2).await.map(|_| ())));

    let big = record("k", &"v".repeat(100), 0);
    match log.append("t", 0, vec![record("k", "small", 0), big]).await {
        Err(LogError::RecordTooLarge { size_bytes, limit_bytes: 100 }) => assert_eq!(size_bytes, 100 + 1 + 33),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(log.offsets("t", 0).await.unwrap().high_watermark, 0, "nothing of the refused batch was written");

    // Deleting: missing topics are fine; a deleted topic is gone and can be recreated empty.
    log.delete_topic("nope").await.unwrap();
    log.append("t", 0, vec![record("k", "v", 0)]).await.unwrap();
    log.delete_topic("t").await.unwrap();
    assert!(log.topics().is_empty());
    assert!(matches!(log.append("t", 0, vec![record("k", "v", 0)]).await, Err(LogError::TopicNotFound { .. })));
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    assert_eq!(log.offsets("t", 0).await.unwrap().high_watermark, 0);

    log.close().await.unwrap();
    assert!(matches!(log.append("t", 0, vec![record("k", "v", 0)]).await, Err(LogError::Closed)));
    assert!(matches!(log.ensure_topic("u", delete_spec(1)).await, Err(LogError::Closed)));
    assert!(matches!(log.run_maintenance(0).await, Err(LogError::Closed)));
}

#[tokio::test]
async fn deleted_topics_stay_deleted_after_reopen() {
    let fs = SimFs::new();
    let log = EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), EmbeddedLogConfig::default()).unwrap();
    log.ensure_topic("keep", delete_spec(1)).await.unwrap();
    log.ensure_topic("drop", delete_spec(3)).await.unwrap();
    log.append("drop", 1, vec![record("k", "v", 0)]).await.unwrap();
    log.delete_topic("drop").await.unwrap();
    log.close().await.unwrap();
    let log = EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), EmbeddedLogConfig::default()).unwrap();
    assert_eq!(log.topics(), vec!["keep".to_owned()]);
    assert!(!fs.exists(Path::new("/data/drop")).unwrap());
}

#[tokio::test]
async fn a_failed_fsync_fails_the_partition_for_good() {
    let fs = SimFs::new();
    let log = EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), EmbeddedLogConfig::default()).unwrap();
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    log.append("t", 0, vec![record("k", "v", 0)]).await.unwrap();
    // The next mutating operation is the append's write; the one after, its fsync.
    fs.crash_after(1, 0);
    assert!(matches!(log.append("t", 0, vec![record("k", "w", 0)]).await, Err(LogError::Io { .. })));
    assert!(matches!(log.append("t", 0, vec![record("k", "x", 0)]).await, Err(LogError::Closed)));
    // The unsynced record never became readable.
    assert_eq!(log.offsets("t", 0).await.unwrap().high_watermark, 1);
}
