//! Partition ownership: which process works on which partition of the log.
//!
//! Several stream-worker processes (or tasks) split the partitions of the
//! workspace topics between them. A [`Membership`] decides who owns what and
//! tells its [`PartitionOwner`] (the stream workers) when ownership changes:
//!
//! ```text
//!  StreamWorkers ── watch_topic(t) ──► Membership ── assigned([t/0, t/2]) ──► start a worker each
//!                                        (all partitions,  ── revoked([t/2]) ────► stop it, then return
//!                                         or a Kafka group)
//! ```
//!
//! Two implementations:
//! - the stream workers' own `AllPartitions`: one process owns every
//!   partition of the topics it watches (the embedded log, `--role all`);
//! - `log_kafka::KafkaMembership`: a Kafka consumer group, whose rebalances
//!   move partitions between the member processes.
//!
//! Ownership is advisory: two owners of one partition must still be safe
//! (the stream workers fence each other through Delta transaction versions).
//! A membership makes double ownership rare: it calls
//! [`PartitionOwner::revoked`] and waits (up to a bound) for it to return
//! before the partitions can be given to another member.

use std::sync::Arc;

use async_trait::async_trait;

use crate::log::LogResult;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic, e.g. `promlake.ws.<workspaceId>.samples`.
    pub topic: String,
    /// The partition number.
    pub partition: u32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// What a [`Membership`] reports ownership changes to. Implemented by the
/// stream workers.
///
/// Calls never overlap for one partition: a partition is assigned, then
/// revoked, then perhaps assigned again.
#[async_trait]
pub trait PartitionOwner: Send + Sync + 'static {
    /// This process now owns `partitions`: start working on them. Should
    /// return promptly (start tasks, do not wait for them).
    async fn assigned(&self, partitions: Vec<TopicPartition>);

    /// This process no longer owns `partitions`: stop working on them, and
    /// return once stopped (or given up on), so that the next owner starts
    /// after this one ended. The membership bounds the wait.
    async fn revoked(&self, partitions: Vec<TopicPartition>);
}

/// Decides which partitions of the watched topics this process owns.
#[async_trait]
pub trait Membership: Send + Sync + std::fmt::Debug + 'static {
    /// Starts reporting ownership changes to `owner`. Called once, before
    /// any [`Membership::watch_topic`].
    ///
    /// # Errors
    /// When the membership cannot start (e.g. a Kafka client cannot be
    /// created) or was already joined.
    async fn join(&self, owner: Arc<dyn PartitionOwner>) -> LogResult<()>;

    /// Adds `topic` to the topics whose partitions this process may own.
    /// Its partitions are assigned (all of them, or this member's share)
    /// through [`PartitionOwner::assigned`], now or after a rebalance.
    /// Watching a watched topic does nothing.
    ///
    /// # Errors
    /// When the topic cannot be looked up or the subscription fails.
    async fn watch_topic(&self, topic: &str) -> LogResult<()>;

    /// Removes `topic` (its workspace was deleted); partitions of it still
    /// owned are revoked.
    ///
    /// # Errors
    /// When the subscription cannot be changed.
    async fn unwatch_topic(&self, topic: &str) -> LogResult<()>;

    /// Leaves: every partition still owned is revoked (the owner's
    /// [`PartitionOwner::revoked`] is called), then the membership stops.
    /// A Kafka member leaves its group, so the others take its partitions
    /// over at once instead of after the session timeout.
    async fn leave(&self);
}
