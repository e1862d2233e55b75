//! Several owners of a workspace's partitions: workers split through a Kafka
//! consumer group (librdkafka's mock cluster) with rebalances mid-stream, and
//! a worker fenced by another owner that recovers instead of stopping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::clock::SystemClock;
use common::limits::{Limits, Overrides};
use common::log::{Log, Record};
use common::membership::TopicPartition;
use log_kafka::{KafkaLog, KafkaLogConfig, KafkaMembership};
use prometheus_client::registry::Registry;
use prost::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use stream_workers::{AppTransaction, DeltaTableWriter, LakeLocation, StreamWorkers, TableKind, TableWriter};

use crate::harness::{Env, WS, batch, fast_config, now_ms, sample_map, series};

/// Partitions of the workspace topic on the mock cluster.
const PARTITIONS: u32 = 4;

/// The consumer group of the test's members.
const GROUP: &str = "promlake-stream-workers-test";

/// Expected lake contents: (series id, timestamp) → value bits.
type Samples = BTreeMap<(u64, i64), Option<u64>>;

fn kafka_config(bootstrap_servers: String) -> KafkaLogConfig {
    let mut config = KafkaLogConfig {
        bootstrap_servers,
        replication_factor: 1,
        request_timeout: Duration::from_secs(10),
        delivery_timeout: Duration::from_secs(15),
        linger: Duration::from_millis(1),
        session_timeout: Duration::from_secs(3),
        ..KafkaLogConfig::default()
    };
    for (key, value) in [
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "200"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "200"),
        ("fetch.wait.max.ms", "100"),
    ] {
        config.librdkafka.insert(key.to_owned(), value.to_owned());
    }
    config
}

/// One worker "process": its own Kafka clients, group member and Delta
/// writer, over the shared lake.
async fn start_member(config: &KafkaLogConfig, lake: &LakeLocation, topic: &str) -> StreamWorkers {
    let log: Arc<dyn Log> = KafkaLog::connect(config.clone()).await.expect("connect");
    let membership = Arc::new(KafkaMembership::new(config, GROUP).expect("group member"));
    let writer = Arc::new(DeltaTableWriter::new(lake.clone()));
    let overrides = Arc::new(Overrides::new(&Limits::default()));
    let mut registry = Registry::default();
    let workers =
        stream_workers::start(fast_config(), log, writer, overrides, Arc::new(SystemClock), membership, &mut registry)
            .await
            .expect("start");
    workers.watch_workspace(WS, topic).await.expect("watch");
    workers
}

/// Polls `cond` every 50 ms until it holds or `what` times out (60 s).
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_partitions(topic: &str) -> BTreeSet<TopicPartition> {
    (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Appends one sample per partition per round until `stop`, counting rounds
/// in `rounds`; returns every acknowledged sample and each partition's last
/// acknowledged offset.
async fn produce(
    log: Arc<KafkaLog>,
    topic: String,
    rounds: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> (Samples, Vec<u64>) {
    let base = now_ms() - 3_600_000;
    let mut expected = Samples::new();
    let mut last = vec![0; PARTITIONS as usize];
    let mut round: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        for p in 0..PARTITIONS {
            let t = base + round * 1000;
            let s = series(&[("__name__", "rebalance_test"), ("partition", &p.to_string())], &[(t, round as f64)]);
            expected.insert((s.series_id, t), Some((round as f64).to_bits()));
            let value = Bytes::from(batch(vec![s], vec![]).encode_to_vec());
            let record = Record { key: None, value: Some(value), timestamp_ms: now_ms() };
            last[p as usize] = log.append(&topic, p, vec![record]).await.expect("append").last_offset;
        }
        round += 1;
        rounds.store(round as u64, Ordering::SeqCst);
        // Pacing only: the test waits on `rounds`, never on this.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (expected, last)
}

/// Two members of one consumer group on the mock cluster write one lake:
/// the second joins mid-stream (the partitions split between them), then
/// the first crashes mid-stream (its buffers lost, its partitions move to
/// the second). Every acknowledged sample is in the lake exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_rebalance_on_the_kafka_mock_keep_each_sample_once() {
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).expect("mock cluster");
    let topic = schemas::topics::samples_topic(WS);
    mock.create_topic(&topic, PARTITIONS as i32, 1).expect("create topic");
    let config = kafka_config(mock.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::from_path(&dir.path().join("lake")).unwrap();
    let all = all_partitions(&topic);

    let a = start_member(&config, &lake, &topic).await;
    wait_for("the first member to own every partition", || {
        a.owned_partitions().into_iter().collect::<BTreeSet<_>>() == all
    })
    .await;

    let producer = KafkaLog::connect(config.clone()).await.expect("connect");
    let rounds = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let produced = tokio::spawn(produce(producer.clone(), topic.clone(), rounds.clone(), stop.clone()));
    let after = |n: u64| {
        let rounds = rounds.clone();
        move || rounds.load(Ordering::SeqCst) >= n
    };
    wait_for("20 rounds", after(20)).await;

    // Second member joins: the partitions are split, each owned once.
    let b = start_member(&config, &lake, &topic).await;
    wait_for("the partitions to be split between the members", || {
        let (pa, pb): (BTreeSet<_>, BTreeSet<_>) =
            (a.owned_partitions().into_iter().collect(), b.owned_partitions().into_iter().collect());
        !pa.is_empty()
            && !pb.is_empty()
            && pa.is_disjoint(&pb)
            && pa.union(&pb).cloned().collect::<BTreeSet<_>>() == all
    })
    .await;
    let split_at = rounds.load(Ordering::SeqCst);
    wait_for("20 more rounds", after(split_at + 20)).await;

    // First member crashes: no final flush; its partitions move to the second.
    drop(a);
    wait_for("the second member to own every partition", || {
        b.owned_partitions().into_iter().collect::<BTreeSet<_>>() == all
    })
    .await;
    let moved_at = rounds.load(Ordering::SeqCst);
    wait_for("20 more rounds", after(moved_at + 20)).await;

    stop.store(true, Ordering::SeqCst);
    let (expected, last) = produced.await.unwrap();
    for p in 0..PARTITIONS {
        b.wait_for_offset(WS, p, last[p as usize], Duration::from_secs(30)).await.unwrap();
    }
    b.shutdown().await;
    producer.close().await.unwrap();

    // `sample_map` fails on a (series, timestamp) found twice.
    let lake_samples = sample_map(&lake).await;
    assert!(expected.len() >= (PARTITIONS as usize) * 60, "only {} samples produced", expected.len());
    assert_eq!(lake_samples.len(), expected.len(), "lake holds a different number of samples than acknowledged");
    assert_eq!(lake_samples, expected);
}

/// Another owner commits for the partition while it is still owned here (a
/// previous owner's last commit landing late): the worker's next commit is
/// fenced, and it starts over from the tables' versions instead of stopping
/// for good. Samples of offsets the other owner claimed are not written
/// again; later ones are, once.
#[tokio::test]
async fn a_worker_fenced_while_it_owns_the_partition_resumes_from_the_tables() {
    let env = Env::new(1).await;
    let sample_batch = |t: i64| {
        let s = series(&[("__name__", "fenced_test")], &[(t, t as f64)]);
        (s.series_id, batch(vec![s], vec![]))
    };
    let (id, first) = sample_batch(1_000);
    let o0 = env.append(0, &first).await;
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, o0, Duration::from_secs(10)).await.unwrap();

    // "Another owner" moves the samples table's version for the partition
    // to o0 + 5, as if it had committed offsets o0+1..=o0+5.
    let app_id = format!("{}/0", env.topic);
    let other = env.writer();
    let txn = AppTransaction { app_id, version: o0 + 5, expected_previous: Some(o0) };
    other.append(WS, TableKind::Samples, Vec::new(), &txn).await.unwrap();

    // Seven more records in one append, so the worker's next commit covers
    // o0+1..=o0+7 and expects version o0: fenced.
    let records: Vec<Record> = (1..=7)
        .map(|i| Record {
            key: None,
            value: Some(Bytes::from(sample_batch(1_000 + i * 1000).1.encode_to_vec())),
            timestamp_ms: now_ms(),
        })
        .collect();
    let last = env.log.append(&env.topic, 0, records).await.unwrap().last_offset;
    assert_eq!(last, o0 + 7);
    workers.wait_for_offset(WS, 0, last, Duration::from_secs(10)).await.expect("the fenced worker resumed");
    assert_eq!(workers.owned_partitions(), vec![TopicPartition::new(env.topic.clone(), 0)]);
    workers.shutdown().await;

    let expected: Samples =
        [1_000, 7_000, 8_000].into_iter().map(|t: i64| ((id, t), Some((t as f64).to_bits()))).collect();
    assert_eq!(sample_map(&env.lake).await, expected);
}
