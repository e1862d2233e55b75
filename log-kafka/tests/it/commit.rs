//! commit_offset / committed_offset per consumer group.

use common::log::{Log, LogError};

use crate::{connect, create_topic, mock_cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_round_trip_per_group() {
    let mock = mock_cluster();
    create_topic(&mock, "commits", 2);
    let log = connect(&mock).await;

    assert_eq!(log.committed_offset("workers", "commits", 0).await.unwrap(), None);
    log.commit_offset("workers", "commits", 0, 5).await.unwrap();
    assert_eq!(log.committed_offset("workers", "commits", 0).await.unwrap(), Some(5));
    log.commit_offset("workers", "commits", 0, 7).await.unwrap();
    assert_eq!(log.committed_offset("workers", "commits", 0).await.unwrap(), Some(7));

    // Per partition and per group.
    assert_eq!(log.committed_offset("workers", "commits", 1).await.unwrap(), None);
    assert_eq!(log.committed_offset("ruler", "commits", 0).await.unwrap(), None);
    log.commit_offset("ruler", "commits", 1, 0).await.unwrap();
    assert_eq!(log.committed_offset("ruler", "commits", 1).await.unwrap(), Some(0));
    assert_eq!(log.committed_offset("workers", "commits", 0).await.unwrap(), Some(7));

    // Commits are on the broker, not in this client: a second log sees them.
    let other = connect(&mock).await;
    assert_eq!(other.committed_offset("workers", "commits", 0).await.unwrap(), Some(7));

    assert!(matches!(log.commit_offset("workers", "nope", 0, 1).await, Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.committed_offset("workers", "commits", 2).await, Err(LogError::PartitionNotFound { .. })));
    log.close().await.unwrap();
    other.close().await.unwrap();
}
