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
//! - [`AllPartitions`]: one process owns every partition of the topics it
//!   watches (the embedded log, `--role all`);
//! - `log_kafka::KafkaMembership`: a Kafka consumer group, whose rebalances
//!   move partitions between the member processes.
//!
//! Ownership is advisory: two owners of one partition must still be safe
//! (the stream workers fence each other through Delta transaction versions).
//! A membership makes double ownership rare: it calls
//! [`PartitionOwner::revoked`] and waits (up to a bound) for it to return
//! before the partitions can be given to another member.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;

use crate::log::{Log, LogError, LogResult};

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

/// Owns every partition of the watched topics; nothing is ever revoked
/// except by [`Membership::unwatch_topic`] and [`Membership::leave`].
#[derive(Debug)]
pub struct AllPartitions {
    log: Arc<dyn Log>,
    state: StdMutex<State>,
}

#[derive(Default)]
struct State {
    owner: Option<Arc<dyn PartitionOwner>>,
    /// Partition count of each watched topic.
    topics: BTreeMap<String, u32>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("joined", &self.owner.is_some()).field("topics", &self.topics).finish()
    }
}

impl AllPartitions {
    /// Ownership of every partition of `log`'s watched topics.
    pub fn new(log: Arc<dyn Log>) -> Self {
        Self { log, state: StdMutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn partitions(topic: &str, count: u32) -> Vec<TopicPartition> {
    (0..count).map(|p| TopicPartition::new(topic, p)).collect()
}

#[async_trait]
impl Membership for AllPartitions {
    async fn join(&self, owner: Arc<dyn PartitionOwner>) -> LogResult<()> {
        let mut state = self.state();
        if state.owner.is_some() {
            return Err(LogError::Broker { context: "joining".into(), message: "already joined".into() });
        }
        state.owner = Some(owner);
        Ok(())
    }

    /// Assigns every partition of `topic` (its count read from the log).
    async fn watch_topic(&self, topic: &str) -> LogResult<()> {
        let count = self.log.partition_count(topic).await?;
        let (owner, added) = {
            let mut state = self.state();
            let known = state.topics.insert(topic.to_owned(), count).unwrap_or(0);
            (state.owner.clone(), partitions(topic, count).split_off(known.min(count) as usize))
        };
        if let Some(owner) = owner
            && !added.is_empty()
        {
            owner.assigned(added).await;
        }
        Ok(())
    }

    async fn unwatch_topic(&self, topic: &str) -> LogResult<()> {
        let (owner, count) = {
            let mut state = self.state();
            (state.owner.clone(), state.topics.remove(topic))
        };
        if let (Some(owner), Some(count)) = (owner, count) {
            owner.revoked(partitions(topic, count)).await;
        }
        Ok(())
    }

    async fn leave(&self) {
        let (owner, topics) = {
            let mut state = self.state();
            (state.owner.take(), std::mem::take(&mut state.topics))
        };
        if let Some(owner) = owner {
            let all = topics.iter().flat_map(|(t, &n)| partitions(t, n)).collect();
            owner.revoked(all).await;
        }
    }
}
