//! [`AllPartitions`]: the [`Membership`] of a process that is the only
//! stream worker (the embedded log, `--role all`): it owns every partition
//! of every topic it watches, from the moment it watches it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use common::log::{Log, LogError, LogResult};
use common::membership::{Membership, PartitionOwner, TopicPartition};

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
