//! The log: named topics of numbered partitions, each an ordered sequence of
//! durable records addressed by offset. Kafka's model, so the embedded on-disk
//! log and a Kafka cluster are interchangeable behind [`Log`].
//!
//! Guarantees every implementation gives:
//! - [`Log::append`] returns only once the records are durable (fsynced by the
//!   embedded log; acknowledged with `acks=all` by Kafka). Offsets within a
//!   partition are strictly increasing and never reused.
//! - [`Log::fetch`] returns only durable records, in offset order; a record
//!   once returned is returned again by any later fetch of its offset, unless
//!   retention or compaction removed it.
//! - A compacted topic keeps at least the newest record of every key; a record
//!   whose value is `None` (a tombstone) deletes its key.
//! - Retention never deletes a record at or above the lowest offset that any
//!   consumer group has committed for its partition.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ErrorKind;

/// How a topic's old records are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments older than the retention period, but never above
    /// the lowest committed consumer offset.
    Delete {
        /// How long records are kept, at least.
        retention: Duration,
    },
    /// Keep the newest record of each key (Kafka's `cleanup.policy=compact`).
    Compact,
}

/// What a topic looks like; used when creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// How old records are removed.
    pub cleanup: CleanupPolicy,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Key: the series id for samples, the resource ARN for `_control`.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone (deletes the key in a compacted topic).
    pub value: Option<Bytes>,
    /// Producer's wall-clock time, Unix milliseconds.
    pub timestamp_ms: i64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Position of the record in its partition.
    pub offset: u64,
    /// As appended.
    pub key: Option<Bytes>,
    /// As appended; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// As appended.
    pub timestamp_ms: i64,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Offset of the first appended record.
    pub first_offset: u64,
    /// Offset of the last appended record.
    pub last_offset: u64,
}

/// The bounds of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionOffsets {
    /// The lowest offset still readable (records below were removed).
    pub log_start: u64,
    /// One past the last durable record: the offset the next append gets.
    pub high_watermark: u64,
}

/// The answer to a fetch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetched {
    /// Records at or after the requested offset, in order (possibly empty).
    pub records: Vec<StoredRecord>,
    /// The partition's bounds when the fetch was answered.
    pub offsets: PartitionOffsets,
}

/// A failure of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The topic does not exist.
    #[error("topic {topic} does not exist")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
    },
    /// The partition number is out of range for the topic.
    #[error("topic {topic} has no partition {partition}")]
    PartitionNotFound {
        /// The topic asked for.
        topic: String,
        /// The partition asked for.
        partition: u32,
    },
    /// The topic name is not acceptable.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic asked for.
        topic: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A record is larger than the log accepts.
    #[error("record of {size_bytes} bytes exceeds the log's limit of {limit_bytes} bytes")]
    RecordTooLarge {
        /// Encoded size of the record.
        size_bytes: usize,
        /// The limit.
        limit_bytes: usize,
    },
    /// Stored data failed its checksum or could not be parsed where no torn
    /// write can explain it; the log refuses to guess.
    #[error("corrupt log data in {location} at byte {position}: {reason}")]
    Corrupt {
        /// File or partition holding the bad data.
        location: String,
        /// Byte position of the bad record.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("log I/O failed ({context}): {source}")]
    Io {
        /// What the log was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The broker (Kafka) failed or is unreachable.
    #[error("broker error ({context}): {message}")]
    Broker {
        /// What the log was doing.
        context: String,
        /// The broker's or client's error.
        message: String,
    },
    /// The log was closed (shutdown) or failed earlier and accepts no more writes.
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// The kind of this error, for the HTTP edge.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::TopicNotFound { .. } | LogError::PartitionNotFound { .. } => ErrorKind::NotFound,
            LogError::InvalidTopic { .. } => ErrorKind::BadData,
            LogError::RecordTooLarge { .. } => ErrorKind::TooLarge,
            LogError::Corrupt { .. } => ErrorKind::Internal,
            LogError::Io { .. } | LogError::Broker { .. } | LogError::Closed => ErrorKind::Unavailable,
        }
    }

    /// An I/O error with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LogError::Io { context: context.into(), source }
    }
}

/// Result of log operations.
pub type LogResult<T> = Result<T, LogError>;

/// A durable, partitioned, ordered log: the spine of PromLake.
///
/// Implemented by `log_embedded::EmbeddedLog` (on-disk segments) and
/// `log_kafka::KafkaLog` (any Kafka-protocol broker).
#[async_trait]
pub trait Log: Send + Sync + std::fmt::Debug + 'static {
    /// Creates the topic if it does not exist and returns its partition
    /// count (an existing topic keeps its own spec).
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> LogResult<u32>;

    /// Deletes a topic and all its records and committed offsets.
    /// Deleting a topic that does not exist is not an error.
    async fn delete_topic(&self, topic: &str) -> LogResult<()>;

    /// The topic's partition count.
    async fn partition_count(&self, topic: &str) -> LogResult<u32>;

    /// Appends records to one partition, returning once they are durable.
    ///
    /// # Cancellation
    /// Dropping the future may or may not leave the records in the log; it
    /// never leaves part of a batch readable without the rest.
    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> LogResult<AppendReceipt>;

    /// Reads durable records at or after `offset`, up to about `max_bytes`
    /// (at least one record when any is available). When none is available it
    /// waits up to `max_wait` for one. An `offset` below the log start reads
    /// from the log start.
    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> LogResult<Fetched>;

    /// The partition's current bounds.
    async fn offsets(&self, topic: &str, partition: u32) -> LogResult<PartitionOffsets>;

    /// Durably records that `group` has processed everything below
    /// `next_offset` in the partition.
    async fn commit_offset(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> LogResult<()>;

    /// The offset `group` last committed for the partition, if any.
    async fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> LogResult<Option<u64>>;

    /// Stops accepting appends, finishes and syncs what is in flight.
    async fn close(&self) -> LogResult<()>;
}
