//! Tests of the whole log through the `Log` trait: round trips, group
//! commit, crash recovery on `SimFs`, damaged files on disk, consumer
//! offsets, retention and compaction.

mod basic;
mod crash;
mod maintenance;
mod recovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::log::{CleanupPolicy, Log, Record, StoredRecord, TopicSpec};

use crate::EmbeddedLog;
use crate::config::EmbeddedLogConfig;

/// A delete-policy spec with `partitions` partitions and a day of retention.
fn delete_spec(partitions: u32) -> TopicSpec {
    TopicSpec { partitions, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(86_400) } }
}

/// Settings with small segments, so tests rotate.
fn small_segments(segment_bytes: u64) -> EmbeddedLogConfig {
    EmbeddedLogConfig { segment_bytes, ..EmbeddedLogConfig::default() }
}

fn record(key: &str, value: &str, timestamp_ms: i64) -> Record {
    Record {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        timestamp_ms,
    }
}

/// Every readable record of a partition, without waiting.
async fn fetch_all(log: &EmbeddedLog, topic: &str, partition: u32) -> Vec<StoredRecord> {
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let fetched = log.fetch(topic, partition, offset, 64 * 1024, Duration::ZERO).await.unwrap();
        let Some(last) = fetched.records.last() else { return records };
        offset = last.offset + 1;
        records.extend(fetched.records);
    }
}

/// The segment files of a partition on the real file system, in order.
fn segment_files(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(topic).join(partition.to_string()))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

/// Opens a log on the real file system.
fn open_real(dir: &Path, config: EmbeddedLogConfig) -> Arc<EmbeddedLog> {
    EmbeddedLog::open(dir, config).unwrap()
}
