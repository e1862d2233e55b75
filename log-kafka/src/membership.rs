//! [`KafkaMembership`]: partition ownership through a Kafka consumer group.
//!
//! Every stream-worker process runs one member of the same consumer group,
//! subscribed to the samples topics of the workspaces it watches. The group
//! coordinator spreads the partitions over the members; a member joining,
//! leaving, or missing heartbeats for `session_timeout` moves partitions.
//! librdkafka reports each move through the rebalance callback, which this
//! module turns into [`PartitionOwner`] calls:
//!
//! ```text
//!  poll thread ── consumer.poll(100 ms) ──► rebalance callback
//!     (one per member)                       ├─ Revoke(tpl): owner.revoked(..) and wait for it,
//!                                            │               bounded by REVOKE_TIMEOUT, then unassign
//!                                            └─ Assign(tpl): assign, pause(tpl), owner.assigned(..)
//! ```
//!
//! The member never consumes: its partitions are paused as soon as they are
//! assigned and it commits nothing (the workers read through
//! [`KafkaLog`](crate::KafkaLog)'s fetch consumers and commit their offsets
//! under another group). It exists only to be in the group, which is why a
//! dedicated thread polls it: polling serves the rebalance callbacks and the
//! heartbeats' outcome, and waiting there for the owner to stop its workers
//! delays this member's rejoin, so the next owner of a revoked partition
//! starts only after the previous one stopped.
//!
//! **Explicit topic list, not a regex subscription.** The member subscribes
//! to exactly the topics [`Membership::watch_topic`] was given (the ACTIVE
//! workspaces the control plane told this process about). A regex
//! (`^promlake\.ws\..+\.samples$`) would be matched by librdkafka against
//! metadata refreshed every `topic.metadata.refresh.interval.ms` (5 min by
//! default), so a new workspace would wait that long, and a process could be
//! assigned a topic whose workspace it does not know yet. Changing the list
//! re-subscribes, which triggers a rebalance; with the cooperative-sticky
//! assignor only the new topic's partitions move.
//!
//! The group id must differ from the group under which the workers commit
//! offsets: those are "standalone" commits, which Kafka refuses in a group
//! with active members.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use common::log::{LogError, LogResult};
use common::membership::{Membership, PartitionOwner, TopicPartition};
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use tracing::{debug, info, warn};

use crate::config::KafkaLogConfig;
use crate::error::broker;

/// How often the poll thread polls (and checks whether to stop).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Longest the rebalance callback waits for the owner to stop the workers
/// of revoked partitions. Well below librdkafka's `max.poll.interval.ms`
/// (5 min), past which the member would be thrown out of the group.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Who to tell; shared by the membership and the consumer's context.
type OwnerSlot = Arc<StdMutex<Option<Arc<dyn PartitionOwner>>>>;

/// A member of a Kafka consumer group deciding which partitions of the
/// watched topics this process owns.
///
/// It subscribes to exactly the watched topics (an explicit list, not a
/// regex: a new workspace is picked up at once, not at the next metadata
/// refresh), uses the cooperative-sticky assignor (a rebalance moves only the
/// partitions that change owner), pauses its assigned partitions (it never
/// consumes or commits; the workers fetch through [`KafkaLog`](crate::KafkaLog)),
/// and is polled by a dedicated thread, on which the rebalance callback
/// calls the [`PartitionOwner`] and, for a revocation, waits (up to 30 s)
/// for it, so the next owner starts after the previous one stopped. The
/// group must differ from the one the workers commit offsets under. See
/// `DESIGN.md` next to this crate.
pub struct KafkaMembership {
    group: String,
    /// Shared with the poll thread; taken out at [`Membership::leave`] so
    /// that the thread drops the last reference, which closes the consumer
    /// there (rdkafka's drop serves the final rebalance callback).
    consumer: StdMutex<Option<Arc<BaseConsumer<MemberContext>>>>,
    owner: OwnerSlot,
    /// The subscription; the async mutex serialises re-subscriptions.
    topics: tokio::sync::Mutex<BTreeSet<String>>,
    stop: Arc<AtomicBool>,
    thread: StdMutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for KafkaMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMembership").field("group", &self.group).finish_non_exhaustive()
    }
}

impl KafkaMembership {
    /// A member of consumer group `group` on the cluster of `config` (its
    /// `session_timeout` and `librdkafka` pass-through apply). It joins the
    /// group when [`Membership::join`] is called and topics are watched.
    ///
    /// # Errors
    /// [`LogError::Broker`] when the configuration is invalid, the consumer
    /// cannot be created, or no tokio runtime is running (the rebalance
    /// callback runs the owner's calls on it).
    pub fn new(config: &KafkaLogConfig, group: &str) -> LogResult<Self> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| broker("creating the Kafka group member (no tokio runtime)", e))?;
        let owner: OwnerSlot = Arc::new(StdMutex::new(None));
        let context = MemberContext { owner: owner.clone(), runtime };
        let consumer: BaseConsumer<MemberContext> = config
            .membership_consumer_config(group)
            .create_with_context(context)
            .map_err(|e| broker("creating the Kafka group member", e))?;
        Ok(Self {
            group: group.to_owned(),
            consumer: StdMutex::new(Some(Arc::new(consumer))),
            owner,
            topics: tokio::sync::Mutex::new(BTreeSet::new()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: StdMutex::new(None),
        })
    }

    /// Subscribes to `topics` (or unsubscribes from all when empty).
    async fn subscribe(&self, topics: &BTreeSet<String>) -> LogResult<()> {
        let consumer = self.consumer.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(consumer) = consumer else {
            return Err(broker("subscribing the Kafka group member", "the member has left its group"));
        };
        let topics: Vec<String> = topics.iter().cloned().collect();
        let result = tokio::task::spawn_blocking(move || {
            if topics.is_empty() {
                consumer.unsubscribe();
                Ok(())
            } else {
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                consumer.subscribe(&names)
            }
        })
        .await
        .map_err(|e| broker("subscribing the Kafka group member", e))?;
        result.map_err(|e| broker(&format!("subscribing group {}", self.group), e))
    }
}

#[async_trait]
impl Membership for KafkaMembership {
    /// Sets the owner and starts the poll thread.
    async fn join(&self, owner: Arc<dyn PartitionOwner>) -> LogResult<()> {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_some() {
            return Err(broker("joining the Kafka group", "already joined"));
        }
        *self.owner.lock().unwrap_or_else(PoisonError::into_inner) = Some(owner);
        let consumer = self.consumer.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(consumer) = consumer else {
            return Err(broker("joining the Kafka group", "the member has left its group"));
        };
        let stop = self.stop.clone();
        let group = self.group.clone();
        let spawned = std::thread::Builder::new()
            .name("promlake-group".into())
            .spawn(move || poll_until_stopped(consumer, &stop, &group))
            .map_err(|e| LogError::io("starting the Kafka group member's thread", e))?;
        *thread = Some(spawned);
        Ok(())
    }

    /// Adds `topic` to the subscription (a rebalance follows).
    async fn watch_topic(&self, topic: &str) -> LogResult<()> {
        let mut topics = self.topics.lock().await;
        if topics.contains(topic) {
            return Ok(());
        }
        let mut wanted = topics.clone();
        wanted.insert(topic.to_owned());
        self.subscribe(&wanted).await?;
        *topics = wanted;
        info!(group = %self.group, topic, "Group member subscribed to a topic.");
        Ok(())
    }

    /// Removes `topic` from the subscription (its partitions are revoked in
    /// the rebalance that follows).
    async fn unwatch_topic(&self, topic: &str) -> LogResult<()> {
        let mut topics = self.topics.lock().await;
        if !topics.contains(topic) {
            return Ok(());
        }
        let mut wanted = topics.clone();
        wanted.remove(topic);
        self.subscribe(&wanted).await?;
        *topics = wanted;
        Ok(())
    }

    /// Stops the poll thread, which closes the consumer: its partitions are
    /// revoked (the owner is called) and it leaves the group, so the other
    /// members get its partitions at once.
    async fn leave(&self) {
        self.consumer.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread
            && tokio::task::spawn_blocking(move || thread.join()).await.is_err()
        {
            warn!(group = %self.group, "The Kafka group member's thread panicked.");
        }
        self.owner.lock().unwrap_or_else(PoisonError::into_inner).take();
        info!(group = %self.group, "Left the consumer group.");
    }
}

impl Drop for KafkaMembership {
    fn drop(&mut self) {
        // Without `leave` (a crash in tests): the thread closes the consumer
        // and ends on its own.
        self.consumer.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.stop.store(true, Ordering::Release);
    }
}

/// The poll thread: keeps the member in its group until `stop`, then drops
/// the consumer there: rdkafka's drop closes it (revoking its partitions,
/// whose callback runs on this thread, and leaving the group).
fn poll_until_stopped(consumer: Arc<BaseConsumer<MemberContext>>, stop: &AtomicBool, group: &str) {
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(POLL_INTERVAL) {
            None => {}
            // Assigned partitions are paused; a message fetched before the
            // pause took effect is simply not used.
            Some(Ok(_)) => {}
            Some(Err(e)) => debug!(group, error = %e, "Kafka group member event."),
        }
    }
    // The last reference unless a re-subscription is in flight, which then
    // closes it when done.
    drop(consumer);
}

/// The consumer's context: turns rebalances into owner calls.
struct MemberContext {
    owner: OwnerSlot,
    runtime: tokio::runtime::Handle,
}

impl MemberContext {
    fn owner(&self) -> Option<Arc<dyn PartitionOwner>> {
        self.owner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs `call` on the runtime and waits for it (up to `timeout`), unless
    /// this thread is itself a runtime thread (the consumer dropped in async
    /// code): then it only starts it, as blocking there could deadlock.
    fn run<F>(&self, what: &'static str, timeout: Duration, call: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(self.runtime.spawn(call));
            return;
        }
        if self.runtime.block_on(async { tokio::time::timeout(timeout, call).await }).is_err() {
            warn!(what, timeout_s = timeout.as_secs(), "Partition owner did not answer in time; going on.");
        }
    }
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions = partitions(tpl);
                info!(partitions = ?names(&partitions), "Partitions revoked from this group member.");
                if let Some(owner) = self.owner()
                    && !partitions.is_empty()
                {
                    self.run("revoked", REVOKE_TIMEOUT, async move { owner.revoked(partitions).await });
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "Kafka group rebalance failed."),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else { return };
        // This member only holds partitions; it must not pull their records.
        if let Err(e) = consumer.pause(tpl) {
            warn!(error = %e, "Pausing assigned partitions failed; their records are fetched and dropped.");
        }
        let partitions = partitions(tpl);
        info!(partitions = ?names(&partitions), "Partitions assigned to this group member.");
        if let Some(owner) = self.owner()
            && !partitions.is_empty()
        {
            self.run("assigned", REVOKE_TIMEOUT, async move { owner.assigned(partitions).await });
        }
    }
}

/// The partitions of a librdkafka list.
fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok().map(|p| TopicPartition::new(e.topic(), p)))
        .collect()
}

fn names(partitions: &[TopicPartition]) -> Vec<String> {
    partitions.iter().map(ToString::to_string).collect()
}
