//! Damaged segment files on the real file system: torn tails are cut off,
//! damage in the middle refuses to open.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::log::{Log, LogError};

use super::{delete_spec, fetch_all, open_real, record, segment_files, small_segments};
use crate::config::EmbeddedLogConfig;
use crate::record::encoded_len;

/// Size of each test record ("k" and a 10-byte value).
fn record_len() -> u64 {
    encoded_len(Some(b"k"), Some(b"0123456789")) as u64
}

/// Writes `count` single-record batches and closes; returns the last segment.
async fn write_records(dir: &Path, config: &EmbeddedLogConfig, count: u64) -> PathBuf {
    let log = open_real(dir, config.clone());
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    for i in 0..count {
        log.append("t", 0, vec![record("k", &format!("{i:010}"), 0)]).await.unwrap();
    }
    log.close().await.unwrap();
    segment_files(dir, "t", 0).pop().unwrap()
}

async fn values(dir: &Path, config: &EmbeddedLogConfig) -> Vec<u64> {
    let log = open_real(dir, config.clone());
    fetch_all(&log, "t", 0)
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
            std::str::from_utf8(r.value.as_deref().unwrap()).unwrap().parse().unwrap()
        })
        .collect()
}

fn flip_byte(path: &Path, position: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, position).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5a], position).unwrap();
}

#[tokio::test]
async fn torn_final_records_are_truncated_and_appends_continue() {
    let len = record_len();
    // (damage, records that survive)
    type Damage = fn(&Path, u64);
    let damages: [(&str, Damage, u64); 5] = [
        ("cut inside the last record", |path, len| truncate(path, 10 * len - 3), 9),
        ("cut inside the last header", |path, len| truncate(path, 9 * len + 5), 9),
        ("garbage appended", |path, _| append(path, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 10),
        ("zeros appended", |path, _| append(path, &[0; 100]), 10),
        ("last record's value garbled", |path, len| flip_byte(path, 10 * len - 2), 9),
    ];
    for (what, damage, survivors) in damages {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedLogConfig::default();
        let segment = write_records(dir.path(), &config, 10).await;
        damage(&segment, len);
        assert_eq!(values(dir.path(), &config).await, (0..survivors).collect::<Vec<_>>(), "{what}");
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), survivors * len, "{what}: the file was truncated");
        let log = open_real(dir.path(), config.clone());
        let receipt = log.append("t", 0, vec![record("k", "0000000099", 0)]).await.unwrap();
        assert_eq!(receipt.first_offset, survivors, "{what}");
        drop(log);
        assert_eq!(values(dir.path(), &config).await.last(), Some(&99), "{what}");
    }
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[tokio::test]
async fn a_partly_written_batch_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedLogConfig::default();
    let log = open_real(dir.path(), config.clone());
    log.ensure_topic("t", delete_spec(1)).await.unwrap();
    log.append("t", 0, vec![record("k", "0000000000", 0)]).await.unwrap();
    let batch = (1..=4).map(|i| record("k", &format!("{i:010}"), 0)).collect();
    log.append("t", 0, batch).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    // Cut inside the batch's last record: its first three records are intact
    // but the batch is incomplete.
    let segment = segment_files(dir.path(), "t", 0).pop().unwrap();
    truncate(&segment, 5 * record_len() - 1);
    assert_eq!(values(dir.path(), &config).await, vec![0]);
}

#[tokio::test]
async fn damage_followed_by_valid_records_refuses_to_open() {
    let len = record_len();
    // A checksum failure in record 3 of 10, and a garbled length field.
    for (position, what) in [(3 * len + 20, "value byte"), (3 * len, "length field")] {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedLogConfig::default();
        let segment = write_records(dir.path(), &config, 10).await;
        flip_byte(&segment, position);
        match crate::EmbeddedLog::open(dir.path(), config) {
            Err(LogError::Corrupt { location, position: at, reason }) => {
                assert_eq!(at, 3 * len, "{what}: {reason}");
                assert!(location.ends_with(".log"), "{location}");
                assert!(reason.contains("valid record follows"), "{reason}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), 10 * len, "{what}: nothing was truncated");
    }
}

#[tokio::test]
async fn any_damage_in_a_sealed_segment_refuses_to_open() {
    let len = record_len();
    let config = small_segments(3 * len);
    for (what, damage) in [("last record garbled", 1u8), ("last record cut", 2), ("garbage appended", 3)] {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &config, 10).await;
        let segments = segment_files(dir.path(), "t", 0);
        assert!(segments.len() >= 3, "{what}: rotated into {} segments", segments.len());
        let sealed = &segments[0];
        match damage {
            1 => flip_byte(sealed, 3 * len - 1),
            2 => truncate(sealed, 3 * len - 1),
            _ => append(sealed, b"garbage"),
        }
        match crate::EmbeddedLog::open(dir.path(), config.clone()) {
            Err(LogError::Corrupt { location, .. }) => {
                assert!(location.ends_with("00000000000000000000.log"), "{what}: {location}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
}
