//! ensure_topic / delete_topic against the mock, which lacks the admin APIs.

use std::time::Duration;

use common::log::{CleanupPolicy, Log, LogError, TopicSpec};

use crate::{create_topic, mock_cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_administration_on_the_mock() {
    let mock = mock_cluster();
    create_topic(&mock, "_control", 1);
    let mut config = crate::test_config(mock.bootstrap_servers());
    config.request_timeout = Duration::from_secs(2);
    let log = log_kafka::KafkaLog::connect(config).await.unwrap();
    let spec = TopicSpec { partitions: 4, cleanup: CleanupPolicy::Compact };

    assert_eq!(log.ensure_topic("_control", spec).await.unwrap(), 1);
    assert!(matches!(
        log.ensure_topic("_control", TopicSpec { partitions: 0, ..spec }).await,
        Err(LogError::InvalidTopic { .. })
    ));

    // Deleting a topic that does not exist is fine.
    log.delete_topic("never-created").await.unwrap();

    // The mock has no CreateTopics/DeleteTopics: the admin path fails cleanly
    // and quickly with a broker error rather than hanging.
    let started = std::time::Instant::now();
    let created = log.ensure_topic("promlake.ws.new.samples", spec).await;
    eprintln!("ensure_topic on the mock: {created:?}");
    assert!(matches!(created, Err(LogError::Broker { .. })), "{created:?}");
    let deleted = log.delete_topic("_control").await;
    eprintln!("delete_topic on the mock: {deleted:?}");
    assert!(matches!(deleted, Err(LogError::Broker { .. })), "{deleted:?}");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert_eq!(log.partition_count("_control").await.unwrap(), 1);
}
