//! Broker faults while appends stream in: no acknowledged record is lost.
//!
//! One appender task per partition appends small batches continuously,
//! recording every acknowledged (offset, value). Mid-stream the leader of
//! partition 0 goes down and comes back (optionally with the leadership moved
//! to another broker meanwhile). Failed appends are retried by the appender,
//! as a real client would, so a value may be stored twice; what must hold is
//! that every acknowledged value is in the log at its acknowledged offset.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::log::Log;
use log_kafka::{KafkaLog, KafkaLogConfig};
use tokio::task::JoinHandle;

use crate::{Mock, create_topic, fetch_range, mock_cluster, record, test_config};

const TOPIC: &str = "promlake.ws.fault.samples";
const PARTITIONS: u32 = 2;
const BATCH: usize = 3;
/// The broker that leads partition 0 and goes down.
const LEADER: i32 = 1;

/// What one appender saw.
#[derive(Debug, Default)]
struct Appended {
    /// Acknowledged (offset, value).
    acked: Vec<(u64, String)>,
    /// Appends that failed and were retried.
    failures: usize,
    /// The longest successful append.
    max_latency: Duration,
}

fn spawn_appender(
    log: Arc<KafkaLog>,
    partition: u32,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> JoinHandle<Appended> {
    tokio::spawn(async move {
        let mut out = Appended::default();
        let mut seq = 0usize;
        while !stop.load(Ordering::Acquire) {
            let values: Vec<String> = (seq..seq + BATCH).map(|i| format!("p{partition}-{i}")).collect();
            let records = values.iter().map(|v| record(v, Some(v), 1_700_000_000_000 + seq as i64)).collect();
            let started = Instant::now();
            match log.append(TOPIC, partition, records).await {
                Ok(receipt) => {
                    out.max_latency = out.max_latency.max(started.elapsed());
                    // One appender per partition and an idempotent producer:
                    // a batch's offsets are contiguous.
                    assert_eq!(receipt.last_offset - receipt.first_offset + 1, BATCH as u64, "{receipt:?}");
                    for (i, v) in values.into_iter().enumerate() {
                        out.acked.push((receipt.first_offset + i as u64, v));
                    }
                    acks.fetch_add(1, Ordering::AcqRel);
                    seq += BATCH;
                }
                Err(err) => {
                    // Retry the same values; they may then be stored twice.
                    eprintln!("append to partition {partition} failed, retrying: {err}");
                    out.failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        out
    })
}

async fn wait_for_acks(acks: &AtomicUsize, at_least: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acks.load(Ordering::Acquire) < at_least {
        assert!(tokio::time::Instant::now() < deadline, "{what}: only {} acks", acks.load(Ordering::Acquire));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a scenario's outage goes.
struct Outage {
    /// How long the leader of partition 0 stays down.
    down_for: Duration,
    /// The log's delivery timeout.
    delivery_timeout: Duration,
}

/// What a scenario observed on partition 0 (the faulty one).
#[derive(Debug)]
struct Observed {
    failures: usize,
    max_latency: Duration,
}

/// Runs the scenario; `during_outage` runs right after the leader goes down.
async fn appends_survive(mock: &Mock, outage: Outage, during_outage: impl FnOnce(&Mock)) -> Observed {
    create_topic(mock, TOPIC, PARTITIONS as i32);
    mock.partition_leader(TOPIC, 0, Some(LEADER)).unwrap();
    mock.partition_leader(TOPIC, 1, Some(LEADER % 3 + 1)).unwrap();
    let config = KafkaLogConfig { delivery_timeout: outage.delivery_timeout, ..test_config(mock.bootstrap_servers()) };
    let log = KafkaLog::connect(config).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let acks: Vec<Arc<AtomicUsize>> = (0..PARTITIONS).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let appenders: Vec<_> =
        (0..PARTITIONS).map(|p| spawn_appender(log.clone(), p, stop.clone(), acks[p as usize].clone())).collect();

    wait_for_acks(&acks[0], 20, "before the fault").await;
    let before = acks[0].load(Ordering::Acquire);
    mock.broker_down(LEADER).unwrap();
    during_outage(mock);
    tokio::time::sleep(outage.down_for).await;
    mock.broker_up(LEADER).unwrap();
    wait_for_acks(&acks[0], before + 20, "after the fault").await;
    wait_for_acks(&acks[1], 20, "unaffected partition").await;
    stop.store(true, Ordering::Release);

    let mut observed = None;
    for (partition, appender) in appenders.into_iter().enumerate() {
        let appended = tokio::time::timeout(Duration::from_secs(20), appender).await.unwrap().unwrap();
        let high = log.offsets(TOPIC, partition as u32).await.unwrap().high_watermark;
        let stored: HashMap<u64, String> = fetch_range(&log, TOPIC, partition as u32, 0, high)
            .await
            .into_iter()
            .map(|r| (r.offset, String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
            .collect();
        for (offset, value) in &appended.acked {
            assert_eq!(stored.get(offset), Some(value), "partition {partition}: acknowledged record lost");
        }
        eprintln!(
            "partition {partition}: {} acknowledged records, {} stored, {} failed appends, slowest append {:?}",
            appended.acked.len(),
            stored.len(),
            appended.failures,
            appended.max_latency,
        );
        if partition == 0 {
            observed = Some(Observed { failures: appended.failures, max_latency: appended.max_latency });
        }
    }
    log.close().await.unwrap();
    observed.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_down_and_up_loses_no_acknowledged_record() {
    let mock = mock_cluster();
    let outage = Outage { down_for: Duration::from_millis(1500), delivery_timeout: Duration::from_secs(15) };
    let observed = tokio::time::timeout(Duration::from_secs(50), appends_survive(&mock, outage, |_| {})).await.unwrap();
    // The leader does not move (the mock never elects): appends stall for the
    // outage, librdkafka retries them, and none fails.
    assert_eq!(observed.failures, 0, "{observed:?}");
    assert!(observed.max_latency >= Duration::from_secs(1), "the outage did not stall appends: {observed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moves_while_down_loses_no_acknowledged_record() {
    let mock = mock_cluster();
    let outage = Outage { down_for: Duration::from_millis(1500), delivery_timeout: Duration::from_secs(15) };
    let moved = |mock: &Mock| mock.partition_leader(TOPIC, 0, Some(LEADER % 3 + 1)).unwrap();
    let observed = tokio::time::timeout(Duration::from_secs(50), appends_survive(&mock, outage, moved)).await.unwrap();
    assert_eq!(observed.failures, 0, "{observed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_longer_than_delivery_timeout_fails_appends_then_recovers() {
    let mock = mock_cluster();
    let outage = Outage { down_for: Duration::from_secs(4), delivery_timeout: Duration::from_secs(2) };
    let observed = tokio::time::timeout(Duration::from_secs(50), appends_survive(&mock, outage, |_| {})).await.unwrap();
    // Appends time out during the outage (and are retried by the appender);
    // the idempotent producer recovers once the leader is back.
    assert!(observed.failures > 0, "{observed:?}");
}
