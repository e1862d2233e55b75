//! Reading one partition from one offset: a pool of positioned consumers.
//!
//! Kafka has no "read partition P from offset O" call in the client API;
//! consumers are *positioned* (assigned, or sought) and then stream from that
//! position, prefetching in the background. [`FetchPool`] keeps one
//! [`StreamConsumer`] per (topic, partition), assigned to that partition only
//! (no consumer group, no subscription), and remembers the offset it will
//! deliver next:
//!
//! ```text
//!  fetch(t, p, offset) ──► take consumer (t, p) from the pool, or create one
//!                            │
//!            offset == its next offset? ──no──► query watermarks; offset > high?
//!                            │ yes                 │ no: assign at max(offset, low)
//!                            ▼                     ▼
//!                  recv() until one record or max_wait, then drain what is
//!                  already prefetched up to max_bytes (no further waiting)
//!                            │
//!                  next offset := last returned + 1; put consumer back
//! ```
//!
//! A caller that tails a partition (fetch, then fetch from `last + 1`) hits
//! the fast path every time and reads what librdkafka prefetched; a caller
//! that jumps pays one watermark query and one re-assign. Two concurrent
//! fetches of one partition use two consumers; only one goes back to the pool.
//! Consumers are dropped on the blocking pool, as destroying a librdkafka
//! instance joins its threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::consumer::StreamConsumer;

/// A consumer assigned to (at most) one partition, and where it stands.
pub(crate) struct PositionedConsumer {
    /// The consumer; shared only with blocking tasks that query through it.
    pub(crate) consumer: Arc<StreamConsumer>,
    /// The offset from which the consumer delivers next (the first it could
    /// deliver: retention may make it skip ahead), or `None` when unassigned.
    pub(crate) next_offset: Option<u64>,
}

impl std::fmt::Debug for PositionedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionedConsumer").field("next_offset", &self.next_offset).finish_non_exhaustive()
    }
}

impl Drop for PositionedConsumer {
    fn drop(&mut self) {
        // Destroying the client joins librdkafka's threads: keep that off the
        // async workers when there is a runtime to hand it to.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let consumer = Arc::clone(&self.consumer);
            drop(handle.spawn_blocking(move || drop(consumer)));
        }
    }
}

/// Key of a pooled consumer.
type Key = (String, u32);

/// Idle consumers, at most one per (topic, partition), least recently used
/// evicted beyond the limit.
#[derive(Debug)]
pub(crate) struct FetchPool {
    state: Mutex<PoolState>,
    max_idle: usize,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: HashMap<Key, (u64, PositionedConsumer)>,
    /// Monotonic use counter, for least-recently-used eviction.
    tick: u64,
}

impl FetchPool {
    /// An empty pool keeping at most `max_idle` consumers.
    pub(crate) fn new(max_idle: usize) -> Self {
        Self { state: Mutex::new(PoolState::default()), max_idle: max_idle.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is a plain map: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the idle consumer of (topic, partition), if any.
    pub(crate) fn take(&self, topic: &str, partition: u32) -> Option<PositionedConsumer> {
        self.lock().idle.remove(&(topic.to_owned(), partition)).map(|(_, c)| c)
    }

    /// Returns a consumer to the pool. If one is already idle for the same
    /// partition, or the pool is full, a consumer is dropped (after the lock
    /// is released).
    pub(crate) fn put(&self, topic: &str, partition: u32, consumer: PositionedConsumer) {
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            if let Some((_, old)) = state.idle.insert((topic.to_owned(), partition), (tick, consumer)) {
                dropped.push(old);
            }
            while state.idle.len() > self.max_idle {
                let Some(oldest) = state.idle.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone()) else {
                    break;
                };
                if let Some((_, c)) = state.idle.remove(&oldest) {
                    dropped.push(c);
                }
            }
        }
        drop(dropped);
    }

    /// Drops every idle consumer of `topic` (it was deleted).
    pub(crate) fn forget_topic(&self, topic: &str) {
        let dropped: Vec<_> = {
            let mut state = self.lock();
            let keys: Vec<Key> = state.idle.keys().filter(|(t, _)| t == topic).cloned().collect();
            keys.into_iter().filter_map(|k| state.idle.remove(&k)).collect()
        };
        drop(dropped);
    }

    /// Drops every idle consumer.
    pub(crate) fn clear(&self) {
        let dropped: Vec<_> = self.lock().idle.drain().collect();
        drop(dropped);
    }

    /// Number of idle consumers.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().idle.len()
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;

    fn consumer(next_offset: u64) -> PositionedConsumer {
        let consumer: StreamConsumer =
            ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").create().expect("consumer");
        PositionedConsumer { consumer: Arc::new(consumer), next_offset: Some(next_offset) }
    }

    #[tokio::test]
    async fn pool_keeps_one_per_partition_and_evicts_lru() {
        let pool = FetchPool::new(2);
        pool.put("a", 0, consumer(1));
        pool.put("a", 0, consumer(2));
        assert_eq!(pool.len(), 1);
        pool.put("a", 1, consumer(3));
        pool.put("b", 0, consumer(4));
        assert_eq!(pool.len(), 2);
        assert!(pool.take("a", 0).is_none(), "least recently used is evicted");
        assert_eq!(pool.take("a", 1).and_then(|c| c.next_offset), Some(3));
        pool.forget_topic("b");
        assert_eq!(pool.len(), 0);
        pool.put("c", 0, consumer(5));
        pool.clear();
        assert_eq!(pool.len(), 0);
    }
}
