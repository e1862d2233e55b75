//! The Kafka log backend: [`KafkaLog`] implements [`common::log::Log`] over
//! any Kafka-protocol cluster through librdkafka (`rdkafka`), for scaled-out
//! deployments where several processes share one log.
//!
//! # Data flow
//!
//! ```text
//!  append ──► FutureProducer (idempotent, acks=all) ──► leader ──► ISR replicas
//!                 ▲ resolves when every record's delivery report is in
//!  fetch  ◄── pool of StreamConsumers, one per (topic, partition), assign()ed
//!  offsets ◄─ ListOffsets (watermarks)
//!  commit_offset / committed_offset ◄─► group coordinator (one consumer per group)
//!  ensure_topic / delete_topic ──► AdminClient (CreateTopics / DeleteTopics)
//!
//!  KafkaMembership ──► one group member per process (cooperative-sticky,
//!                      partitions paused) ──► rebalances ──► PartitionOwner
//! ```
//!
//! # Partition ownership
//!
//! [`KafkaMembership`] implements [`common::membership::Membership`]: every
//! stream-worker process is one member of a consumer group subscribed to the
//! watched workspace topics (an explicit list), and rebalances tell the
//! workers which partitions they own. Revocation waits for the workers to
//! stop before the member rejoins; a dead member's partitions move after
//! [`KafkaLogConfig::session_timeout`]. See the `membership` module.
//!
//! # Topics
//!
//! Topic names are the caller's: PromLake uses `promlake.ws.<workspaceId>.samples`
//! for a workspace's samples and `_control` for control-plane state (compacted).
//! Names are checked against Kafka's rules (ASCII letters, digits, `.`, `_`,
//! `-`, at most 249 characters). Clients never auto-create topics
//! (`allow.auto.create.topics=false`): [`Log::ensure_topic`](common::log::Log::ensure_topic) creates them with
//! their [`TopicSpec`](common::log::TopicSpec) and the configured replication
//! factor (default 3, `min.insync.replicas=2`).
//!
//! # Delivery guarantee
//!
//! One idempotent producer (`enable.idempotence=true`, `acks=all`) sends every
//! record to the partition given to [`Log::append`](common::log::Log::append), with the record's
//! `timestamp_ms` as the Kafka create time and a null value for a tombstone.
//! `append` resolves only when every record of the batch has been
//! acknowledged by all in-sync replicas; the receipt's first and last offsets
//! are those of the delivery reports. Idempotence makes librdkafka's own
//! retries (leader moves, broker restarts, lost responses) neither duplicate
//! nor reorder records, so the records of one `append` land in order; offsets
//! of concurrent appends to one partition may interleave.
//!
//! A **failed append** (`LogError::Broker` after `delivery_timeout`, default
//! 60 s, or a non-retriable broker error) means *some* records of the batch
//! may still be durable: Kafka has no atomic multi-record append outside
//! transactions. A caller that retries the batch may therefore store records
//! twice; consumers must tolerate duplicates (the stream workers dedupe by
//! Delta transaction version). This is weaker than the trait's "never part of
//! a batch" wording for cancellation, and the one place where the Kafka log
//! and the embedded log differ.
//!
//! # Fetch design
//!
//! A pool of consumers, each assigned (no group,
//! no subscription) to one partition, remembering the offset it delivers next.
//! A fetch at that offset reads what librdkafka prefetched (waiting up to
//! `max_wait` for the first record, then taking only what is already there,
//! up to about `max_bytes`); a fetch elsewhere queries the watermarks and
//! re-assigns. An offset below the log start reads from the log start
//! (`auto.offset.reset=earliest`); one above the high watermark returns nothing.
//! Fetches only see acknowledged records (Kafka serves reads up to the high
//! watermark).
//!
//! # Other differences from the embedded log
//!
//! - Retention is Kafka's: `retention.ms` deletes old segments whatever
//!   consumer groups have committed, so the trait's "never above the lowest
//!   committed offset" holds only if retention is longer than any consumer lag.
//! - A record with `timestamp_ms == 0` gets the producer's current time
//!   (librdkafka treats 0 as "now"); timestamps should be positive.
//!
//! # Broker behaviour verified in tests
//!
//! Against librdkafka's mock cluster (3 brokers, replication factor 3; details
//! in `DESIGN.md` next to this crate):
//! - the partition leader going down for 1.5 s stalls appends to its
//!   partitions (about 2 s at worst), none fails, and every acknowledged
//!   record is at its acknowledged offset; other partitions are unaffected;
//! - moving the leadership while the old leader is down: appends resume on
//!   the new leader within about a second, nothing acknowledged is lost;
//! - an outage longer than `delivery_timeout` fails the appends in flight
//!   (`MessageTimedOut`); the idempotent producer recovers (no fatal error)
//!   once the leader is back, and the timed-out records were not stored;
//! - a fetch waiting at the high watermark returns as soon as a record
//!   arrives; a fetch beyond it returns nothing instead of resetting;
//! - standalone commits (no group membership) round-trip per group and are
//!   visible to another client;
//! - the mock has no CreateTopics/DeleteTopics: the admin calls time out
//!   (`OperationTimedOut` after `request_timeout`), so topic creation and
//!   deletion are exercised only by the opt-in test against a real broker
//!   (`PROMLAKE_TEST_KAFKA`).

mod config;
mod error;
mod fetch;
mod kafka_log;
mod membership;

pub use config::KafkaLogConfig;
pub use error::ConfigError;
pub use kafka_log::KafkaLog;
pub use membership::KafkaMembership;
