//! Integration tests of `KafkaLog` against librdkafka's in-process mock
//! cluster (3 brokers, topics with replication factor 3), plus one opt-in
//! test against a real broker (`PROMLAKE_TEST_KAFKA=host:port`).
//!
//! The mock speaks the real protocol (produce, fetch, list offsets, offset
//! commit/fetch, idempotent producer) and can take brokers down and move
//! leaders, but it does not implement CreateTopics/DeleteTopics: topics are
//! created with `MockCluster::create_topic` and `ensure_topic` then finds
//! them in metadata.

mod commit;
mod fault;
mod real_broker;
mod round_trip;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::log::{Log, Record, StoredRecord};
use log_kafka::{KafkaLog, KafkaLogConfig};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A mock cluster owned by one test.
pub(crate) type Mock = MockCluster<'static, DefaultProducerContext>;

/// Brokers in every mock cluster.
pub(crate) const BROKERS: i32 = 3;

/// A fresh mock cluster of [`BROKERS`] brokers.
pub(crate) fn mock_cluster() -> Mock {
    MockCluster::new(BROKERS).expect("mock cluster")
}

/// Creates a topic on the mock with replication factor 3.
pub(crate) fn create_topic(mock: &Mock, topic: &str, partitions: i32) {
    mock.create_topic(topic, partitions, BROKERS).expect("create mock topic");
}

/// A configuration for `bootstrap_servers` with short timeouts and backoffs,
/// so that faults resolve within a test's time budget.
pub(crate) fn test_config(bootstrap_servers: String) -> KafkaLogConfig {
    let mut config = KafkaLogConfig {
        bootstrap_servers,
        replication_factor: BROKERS,
        request_timeout: Duration::from_secs(10),
        delivery_timeout: Duration::from_secs(15),
        linger: Duration::from_millis(1),
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

/// A `KafkaLog` connected to the mock.
pub(crate) async fn connect(mock: &Mock) -> Arc<KafkaLog> {
    KafkaLog::connect(test_config(mock.bootstrap_servers())).await.expect("connect")
}

/// A record with a string key and value.
pub(crate) fn record(key: &str, value: Option<&str>, timestamp_ms: i64) -> Record {
    Record {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        timestamp_ms,
    }
}

/// Reads `[from, to)` of a partition by tailing fetches.
pub(crate) async fn fetch_range(log: &KafkaLog, topic: &str, partition: u32, from: u64, to: u64) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    let mut next = from;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while next < to {
        assert!(tokio::time::Instant::now() < deadline, "fetching {topic}/{partition} stalled at {next}");
        let fetched = log.fetch(topic, partition, next, 1 << 20, Duration::from_millis(500)).await.expect("fetch");
        for r in fetched.records {
            assert!(r.offset >= next, "offsets go forward");
            next = r.offset + 1;
            if r.offset < to {
                out.push(r);
            }
        }
    }
    out
}
