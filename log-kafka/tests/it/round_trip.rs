//! ensure_topic / partition_count / append / fetch round trips.

use std::time::{Duration, Instant};

use common::log::{CleanupPolicy, Log, LogError, PartitionOffsets, Record, TopicSpec};

use crate::{connect, create_topic, fetch_range, mock_cluster, record};

const TOPIC: &str = "promlake.ws.w1.samples";
const TS: i64 = 1_700_000_000_000;

fn batch(partition: u32, from: usize, n: usize) -> Vec<Record> {
    (from..from + n)
        .map(|i| {
            let value = format!("value-{partition}-{i}");
            // Every third record is a tombstone.
            record(&format!("series-{partition}-{}", i % 4), (i % 3 != 2).then_some(value.as_str()), TS + i as i64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_then_fetch_on_several_partitions() {
    let mock = mock_cluster();
    create_topic(&mock, TOPIC, 3);
    let log = connect(&mock).await;

    // An existing topic keeps its own spec.
    let spec = TopicSpec { partitions: 2, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(3600) } };
    assert_eq!(log.ensure_topic(TOPIC, spec).await.unwrap(), 3);
    assert_eq!(log.partition_count(TOPIC).await.unwrap(), 3);

    for partition in 0..3u32 {
        let first = log.append(TOPIC, partition, batch(partition, 0, 5)).await.unwrap();
        assert_eq!((first.first_offset, first.last_offset), (0, 4));
        let second = log.append(TOPIC, partition, batch(partition, 5, 5)).await.unwrap();
        assert_eq!((second.first_offset, second.last_offset), (5, 9));
    }

    for partition in 0..3u32 {
        let expected = batch(partition, 0, 10);
        let stored = fetch_range(&log, TOPIC, partition, 0, 10).await;
        assert_eq!(stored.len(), 10);
        for (i, (got, want)) in stored.iter().zip(&expected).enumerate() {
            assert_eq!(got.offset, i as u64);
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value, "tombstones read back as None");
            assert_eq!(got.timestamp_ms, want.timestamp_ms);
        }
        assert_eq!(log.offsets(TOPIC, partition).await.unwrap(), PartitionOffsets { log_start: 0, high_watermark: 10 });
    }

    // From a middle offset (re-positions the pooled consumer backwards).
    let middle = log.fetch(TOPIC, 1, 3, 1 << 20, Duration::from_secs(2)).await.unwrap();
    assert_eq!(middle.records.first().map(|r| r.offset), Some(3));
    assert_eq!(middle.offsets, PartitionOffsets { log_start: 0, high_watermark: 10 });
    assert_eq!(middle.records.first().and_then(|r| r.value.clone()), batch(1, 3, 1)[0].value);

    // A tiny max_bytes still returns one record.
    let one = log.fetch(TOPIC, 2, 7, 1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(one.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![7]);
    // ...and the next fetch continues where it stopped.
    let next = log.fetch(TOPIC, 2, 8, 1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(next.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![8]);

    // Beyond the high watermark: nothing, and no reset to the start.
    let beyond = log.fetch(TOPIC, 0, 50, 1 << 20, Duration::from_millis(50)).await.unwrap();
    assert!(beyond.records.is_empty());
    assert_eq!(beyond.offsets.high_watermark, 10);

    log.close().await.unwrap();
    assert!(matches!(log.append(TOPIC, 0, batch(0, 0, 1)).await, Err(LogError::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_at_the_high_watermark_waits_for_data() {
    let mock = mock_cluster();
    create_topic(&mock, TOPIC, 1);
    let log = connect(&mock).await;
    log.append(TOPIC, 0, batch(0, 0, 2)).await.unwrap();
    assert_eq!(fetch_range(&log, TOPIC, 0, 0, 2).await.len(), 2);

    // Nothing arrives: the fetch returns empty after about max_wait.
    let started = Instant::now();
    let empty = log.fetch(TOPIC, 0, 2, 1 << 20, Duration::from_millis(300)).await.unwrap();
    assert!(empty.records.is_empty());
    assert_eq!(empty.offsets.high_watermark, 2);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290), "returned after {waited:?}");

    // A record arrives while a fetch waits: it returns with it, long before
    // max_wait.
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let fetched = log.fetch(TOPIC, 0, 2, 1 << 20, Duration::from_secs(10)).await.unwrap();
            (fetched, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    log.append(TOPIC, 0, vec![record("late", Some("arrival"), TS)]).await.unwrap();
    let (fetched, waited) = waiter.await.unwrap();
    assert_eq!(fetched.records.len(), 1);
    assert_eq!(fetched.records[0].offset, 2);
    assert_eq!(fetched.records[0].value.as_deref(), Some(&b"arrival"[..]));
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(waited >= Duration::from_millis(250), "returned before the record existed: {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_and_partitions_are_not_found() {
    let mock = mock_cluster();
    create_topic(&mock, TOPIC, 2);
    let log = connect(&mock).await;
    let wait = Duration::from_millis(10);

    assert!(matches!(log.partition_count("nope").await, Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.fetch("nope", 0, 0, 100, wait).await, Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.append("nope", 0, batch(0, 0, 1)).await, Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.offsets("nope", 0).await, Err(LogError::TopicNotFound { .. })));
    // Metadata lookups did not auto-create it.
    assert!(matches!(log.partition_count("nope").await, Err(LogError::TopicNotFound { .. })));

    assert!(matches!(log.fetch(TOPIC, 2, 0, 100, wait).await, Err(LogError::PartitionNotFound { partition: 2, .. })));
    assert!(matches!(log.append(TOPIC, 9, batch(0, 0, 1)).await, Err(LogError::PartitionNotFound { .. })));
    assert!(matches!(log.offsets(TOPIC, 2).await, Err(LogError::PartitionNotFound { .. })));

    assert!(matches!(log.partition_count("bad name").await, Err(LogError::InvalidTopic { .. })));

    // Oversized records are refused before anything is sent.
    let huge = Record { key: None, value: Some(vec![0u8; 2_000_000].into()), timestamp_ms: TS };
    assert!(matches!(log.append(TOPIC, 0, vec![huge]).await, Err(LogError::RecordTooLarge { .. })));
    assert_eq!(log.offsets(TOPIC, 0).await.unwrap().high_watermark, 0);
}
