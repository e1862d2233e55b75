//! Power loss on [`SimFs`]: every acknowledged record survives with its
//! offset, nothing else but whole unacknowledged batches appears, and the
//! log opens and goes on.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::log::{AppendReceipt, Log, StoredRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{delete_spec, fetch_all, record, small_segments};
use crate::EmbeddedLog;
use crate::config::EmbeddedLogConfig;
use crate::sim::SimFs;

const PARTITIONS: u32 = 2;

/// What one appender did: acknowledged batches and every attempted batch.
#[derive(Debug, Default)]
struct History {
    acked: Vec<(u32, AppendReceipt, Vec<String>)>,
    attempted: Vec<(u32, Vec<String>)>,
}

/// Checks a recovered partition against what the appenders did.
fn check_partition(stored: &[StoredRecord], partition: u32, histories: &[History]) {
    for (i, record) in stored.iter().enumerate() {
        assert_eq!(record.offset, i as u64, "offsets are contiguous");
    }
    // Every acknowledged record is there, at its offset.
    for history in histories {
        for (p, receipt, values) in &history.acked {
            if *p != partition {
                continue;
            }
            for (i, value) in values.iter().enumerate() {
                let offset = receipt.first_offset + i as u64;
                let record = stored.get(offset as usize).unwrap_or_else(|| panic!("acked offset {offset} lost"));
                assert_eq!(record.value.as_deref(), Some(value.as_bytes()), "offset {offset}");
            }
        }
    }
    // Everything stored is an attempted batch, whole and in order.
    let mut batches: HashMap<&str, &Vec<String>> = HashMap::new();
    for history in histories {
        for (p, values) in &history.attempted {
            if *p == partition {
                batches.insert(values[0].as_str(), values);
            }
        }
    }
    let mut i = 0;
    while i < stored.len() {
        let first = std::str::from_utf8(stored[i].value.as_deref().unwrap()).unwrap();
        let batch = batches.get(first).unwrap_or_else(|| panic!("record at {i} ({first:?}) starts no attempted batch"));
        for (j, value) in batch.iter().enumerate() {
            let record = stored.get(i + j).unwrap_or_else(|| panic!("batch starting at {i} is cut short"));
            assert_eq!(record.value.as_deref(), Some(value.as_bytes()), "batch starting at {i}, record {j}");
            assert!(record.key.is_some());
        }
        i += batch.len();
    }
}

async fn crash_while_appending(seed: u64) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let fs = SimFs::new();
    let config = small_segments(rng.random_range(200..3000));
    let log = EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), config.clone()).unwrap();
    log.ensure_topic("t", delete_spec(PARTITIONS)).await.unwrap();

    let mut appenders = tokio::task::JoinSet::new();
    for writer in 0..4u64 {
        let log = log.clone();
        let mut rng = StdRng::seed_from_u64(seed * 1000 + writer);
        appenders.spawn(async move {
            let mut history = History::default();
            for batch in 0i64.. {
                let partition = rng.random_range(0..PARTITIONS);
                let len = rng.random_range(1..=4);
                let values: Vec<String> = (0..len)
                    .map(|i| format!("w{writer}-b{batch}-r{i}-{}", "x".repeat(rng.random_range(0..80))))
                    .collect();
                history.attempted.push((partition, values.clone()));
                let records = values.iter().map(|value| record(&format!("w{writer}"), value, batch)).collect();
                match log.append("t", partition, records).await {
                    Ok(receipt) => history.acked.push((partition, receipt, values)),
                    Err(_) => break,
                }
            }
            history
        });
    }
    tokio::time::sleep(Duration::from_micros(rng.random_range(0..15_000))).await;
    fs.crash(&mut rng);
    let histories = appenders.join_all().await;
    drop(log);

    let recovered = fs.recovered();
    let log = EmbeddedLog::open_with_fs(recovered.clone(), Path::new("/data"), config.clone()).unwrap();
    let mut stored_total = 0;
    for partition in 0..PARTITIONS {
        let stored = fetch_all(&log, "t", partition).await;
        check_partition(&stored, partition, &histories);
        stored_total += stored.len();
        // The log goes on where it stopped.
        let high_watermark = log.offsets("t", partition).await.unwrap().high_watermark;
        assert_eq!(high_watermark, stored.len() as u64);
        let receipt = log.append("t", partition, vec![record("after", "crash", 0)]).await.unwrap();
        assert_eq!(receipt.first_offset, high_watermark);
    }
    log.close().await.unwrap();
    drop(log);
    // A second, clean reopen sees the same.
    let log = EmbeddedLog::open_with_fs(recovered, Path::new("/data"), config).unwrap();
    assert_eq!(fetch_all(&log, "t", 0).await.last().unwrap().value.as_deref(), Some(&b"crash"[..]));
    let acked: usize = histories.iter().flat_map(|h| &h.acked).map(|(_, _, values)| values.len()).sum();
    (acked, stored_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_power_loss() {
    let (mut acked, mut stored, mut unacked_survivors) = (0, 0, 0);
    for seed in 0..40 {
        let (a, s) = crash_while_appending(seed).await;
        assert!(s >= a);
        acked += a;
        stored += s;
        unacked_survivors += usize::from(s > a);
    }
    assert!(acked > 1000, "the appenders got going before the crashes ({acked} acked)");
    eprintln!("{acked} acked, {stored} recovered, {unacked_survivors} runs kept unacknowledged batches");
}

/// Crashes at every mutating file operation of creating a topic and
/// appending through several rotations.
#[tokio::test]
async fn crash_at_every_step_of_creation_and_rotation() {
    let config = EmbeddedLogConfig { ..small_segments(150) };
    for step in 0.. {
        let fs = SimFs::new();
        let log = EmbeddedLog::open_with_fs(fs.clone(), Path::new("/data"), config.clone()).unwrap();
        fs.crash_after(step, step);
        let created = log.ensure_topic("t", delete_spec(1)).await.is_ok();
        let mut history = History::default();
        if created {
            for batch in 0..8 {
                let values: Vec<String> = (0..2).map(|i| format!("b{batch}-r{i}-{}", "y".repeat(30))).collect();
                history.attempted.push((0, values.clone()));
                let records = values.iter().map(|value| record("k", value, 0)).collect();
                match log.append("t", 0, records).await {
                    Ok(receipt) => history.acked.push((0, receipt, values)),
                    Err(_) => break,
                }
            }
        }
        if !fs.is_crashed() {
            assert!(step > 20, "the loop reached the end of the work");
            break;
        }
        fs.crash(&mut StdRng::seed_from_u64(step));
        let log = EmbeddedLog::open_with_fs(fs.recovered(), Path::new("/data"), config.clone())
            .unwrap_or_else(|e| panic!("open after crash at step {step}: {e}"));
        if created {
            assert_eq!(log.topics(), vec!["t".to_owned()], "step {step}");
        }
        if log.topics().is_empty() {
            continue;
        }
        check_partition(&fetch_all(&log, "t", 0).await, 0, &[history]);
        log.append("t", 0, vec![record("k", "after", 0)]).await.unwrap();
    }
}
