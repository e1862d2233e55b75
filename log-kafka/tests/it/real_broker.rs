//! The admin paths against a real broker; opt-in, as no broker runs in CI:
//! `PROMLAKE_TEST_KAFKA=localhost:9092 cargo test -p log-kafka -- --ignored`.

use std::time::Duration;

use common::log::{CleanupPolicy, Log, LogError, TopicSpec};
use log_kafka::KafkaLog;

use crate::{fetch_range, record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker in PROMLAKE_TEST_KAFKA"]
async fn create_append_fetch_delete_on_a_real_broker() {
    let Ok(bootstrap) = std::env::var("PROMLAKE_TEST_KAFKA") else {
        eprintln!("PROMLAKE_TEST_KAFKA is not set; skipping");
        return;
    };
    let mut config = crate::test_config(bootstrap);
    config.replication_factor = std::env::var("PROMLAKE_TEST_KAFKA_RF").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let log = KafkaLog::connect(config).await.unwrap();
    let topic = format!("promlake.test.{}", std::process::id());
    let spec = TopicSpec { partitions: 3, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(3600) } };

    assert_eq!(log.ensure_topic(&topic, spec).await.unwrap(), 3);
    assert_eq!(log.ensure_topic(&topic, TopicSpec { partitions: 1, ..spec }).await.unwrap(), 3);
    let receipt = log.append(&topic, 2, vec![record("k", Some("v"), 1_700_000_000_000)]).await.unwrap();
    assert_eq!(fetch_range(&log, &topic, 2, receipt.first_offset, receipt.last_offset + 1).await.len(), 1);

    log.delete_topic(&topic).await.unwrap();
    assert!(matches!(log.partition_count(&topic).await, Err(LogError::TopicNotFound { .. })));
    log.delete_topic(&topic).await.unwrap();
    log.close().await.unwrap();
}
