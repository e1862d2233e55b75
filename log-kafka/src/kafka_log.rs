//! [`KafkaLog`]: the [`Log`] trait over librdkafka clients.
//!
//! One idempotent producer serves every append; one admin client creates and
//! deletes topics; a [`FetchPool`] of positioned consumers serves fetches; one
//! group consumer per consumer group commits and reads offsets. librdkafka's
//! blocking calls (metadata, watermarks, commits, client destruction) run on
//! tokio's blocking pool; waiting for records and acknowledgements is async.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::log::{
    AppendReceipt, CleanupPolicy, Fetched, Log, LogError, LogResult, PartitionOffsets, Record, StoredRecord, TopicSpec,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::config::KafkaLogConfig;
use crate::error::{broker, is_unknown_topic, map_kafka};
use crate::fetch::{FetchPool, PositionedConsumer};

/// How long `append` sleeps before retrying when librdkafka's local queue is
/// full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// How often `ensure_topic`/`delete_topic` re-read metadata while a created
/// or deleted topic propagates.
const CREATE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Kafka's longest topic name.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// A [`Log`] backed by a Kafka-protocol cluster (Apache Kafka, Redpanda,
/// WarpStream, …) through librdkafka.
///
/// Create it with [`KafkaLog::connect`]; see the [crate docs](crate) for the
/// guarantees and how each operation maps onto Kafka.
pub struct KafkaLog {
    config: KafkaLogConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Partition counts seen in metadata, to validate partitions without a
    /// round trip. Only trusted positively: a partition beyond the cached
    /// count triggers a refresh before `PartitionNotFound`.
    partitions: Mutex<HashMap<String, u32>>,
    fetch_pool: FetchPool,
    /// One consumer per consumer group, for commits and committed offsets.
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .field("client_id", &self.config.client_id)
            .field("fetch_pool", &self.fetch_pool)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Runs a blocking librdkafka call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(context: &str, f: impl FnOnce() -> T + Send + 'static) -> LogResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| broker(context, format!("blocking task failed: {e}")))
}

/// Checks a topic name against Kafka's rules.
fn validate_topic(topic: &str) -> LogResult<()> {
    let invalid = |reason| Err(LogError::InvalidTopic { topic: topic.to_owned(), reason });
    if topic.is_empty() {
        return invalid("a topic name cannot be empty");
    }
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return invalid("a topic name has at most 249 characters");
    }
    if topic == "." || topic == ".." {
        return invalid("a topic name cannot be \".\" or \"..\"");
    }
    if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return invalid("a topic name uses only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// A Kafka offset as the log's `u64`; Kafka's negative sentinels become 0.
fn to_u64(offset: i64) -> u64 {
    u64::try_from(offset).unwrap_or(0)
}

/// A log offset as Kafka's `i64`.
fn to_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

impl KafkaLog {
    /// Validates `config`, creates the clients and checks that the cluster
    /// answers a metadata request within `request_timeout`.
    ///
    /// # Errors
    /// [`LogError::Broker`] when the configuration is invalid (the message
    /// names the key), a client cannot be created (an unknown librdkafka
    /// setting, say) or no broker answers.
    pub async fn connect(config: KafkaLogConfig) -> LogResult<Arc<KafkaLog>> {
        config.validate()?;
        let producer: FutureProducer =
            config.producer_config().create().map_err(|e| broker("creating the Kafka producer", e))?;
        let admin: AdminClient<DefaultClientContext> =
            config.admin_config().create().map_err(|e| broker("creating the Kafka admin client", e))?;

        let probe = producer.clone();
        let timeout = config.request_timeout;
        let brokers = blocking("connecting to Kafka", move || {
            probe.client().fetch_metadata(None, timeout).map(|md| md.brokers().len())
        })
        .await?
        .map_err(|e| broker(&format!("connecting to Kafka at {}", config.bootstrap_servers), e))?;
        info!(bootstrap_servers = %config.bootstrap_servers, brokers, "Connected to Kafka.");

        Ok(Arc::new(KafkaLog {
            fetch_pool: FetchPool::new(config.max_fetch_consumers),
            config,
            producer,
            admin,
            partitions: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }))
    }

    /// The configuration this log runs with.
    pub fn config(&self) -> &KafkaLogConfig {
        &self.config
    }

    fn cached_partitions(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A plain map: a panic elsewhere cannot leave it torn.
        self.partitions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The topic's partition count from fresh metadata (and caches it).
    async fn metadata_partitions(&self, topic: &str) -> LogResult<u32> {
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let name = topic.to_owned();
        let answer = blocking("reading topic metadata", move || {
            producer.client().fetch_metadata(Some(&name), timeout).map(|md| {
                md.topics()
                    .iter()
                    .find(|t| t.name() == name)
                    .map(|t| (t.error().map(RDKafkaErrorCode::from), t.partitions().len()))
            })
        })
        .await?
        .map_err(|e| map_kafka("reading topic metadata", topic, None, &e))?;
        let count = match answer {
            None => None,
            Some((Some(code), _)) if is_unknown_topic(code) => None,
            Some((_, 0)) => None,
            // Other topic-level errors (leader not available while the topic
            // is being created, say) still come with the partition list.
            Some((_, n)) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        };
        match count {
            Some(n) => {
                self.cached_partitions().insert(topic.to_owned(), n);
                Ok(n)
            }
            None => {
                self.cached_partitions().remove(topic);
                Err(LogError::TopicNotFound { topic: topic.to_owned() })
            }
        }
    }

    /// Checks that the partition exists, from the cache when it can, and
    /// returns it as Kafka's `i32`.
    async fn check_partition(&self, topic: &str, partition: u32) -> LogResult<i32> {
        validate_topic(topic)?;
        let not_found = || LogError::PartitionNotFound { topic: topic.to_owned(), partition };
        let kafka_partition = i32::try_from(partition).map_err(|_| not_found())?;
        let cached = self.cached_partitions().get(topic).copied();
        if cached.is_some_and(|n| partition < n) {
            return Ok(kafka_partition);
        }
        if partition < self.metadata_partitions(topic).await? { Ok(kafka_partition) } else { Err(not_found()) }
    }

    /// Creates the topic through the admin API; `Ok(None)` if it exists.
    async fn create_topic(&self, topic: &str, spec: TopicSpec) -> LogResult<Option<u32>> {
        let context = format!("creating topic {topic}");
        let partitions = i32::try_from(spec.partitions)
            .map_err(|_| LogError::InvalidTopic { topic: topic.to_owned(), reason: "too many partitions" })?;
        let retention_ms;
        let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(self.config.replication_factor));
        match spec.cleanup {
            CleanupPolicy::Compact => new_topic = new_topic.set("cleanup.policy", "compact"),
            CleanupPolicy::Delete { retention } => {
                retention_ms = retention.as_millis().max(1).to_string();
                new_topic = new_topic.set("cleanup.policy", "delete").set("retention.ms", &retention_ms);
            }
        }
        // With acks=all, an append is acknowledged once every in-sync replica
        // has it; this keeps "in sync" from shrinking to the leader alone.
        if self.config.replication_factor >= 3 {
            new_topic = new_topic.set("min.insync.replicas", "2");
        }
        let options = AdminOptions::new()
            .request_timeout(Some(self.config.request_timeout))
            .operation_timeout(Some(self.config.request_timeout));
        let results = self.admin.create_topics([&new_topic], &options).await.map_err(|e| broker(&context, e))?;
        match results.into_iter().next() {
            Some(Ok(_)) => {}
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return Ok(None),
            Some(Err((_, code))) => return Err(broker(&context, code)),
            None => return Err(broker(&context, "the broker returned no result")),
        }
        info!(topic, partitions, replication_factor = self.config.replication_factor, "Created topic.");
        // Creation returns before every broker knows the topic; wait until
        // metadata shows it so that an append right after does not fail.
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            match self.metadata_partitions(topic).await {
                Ok(n) if n >= spec.partitions => return Ok(Some(n)),
                Ok(_) | Err(LogError::TopicNotFound { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(CREATE_POLL_INTERVAL).await;
                }
                Ok(n) => return Ok(Some(n)),
                Err(e) => return Err(e),
            }
        }
    }

    /// The partition's watermarks, queried through `client`'s connection.
    async fn watermarks<C>(&self, client: C, topic: &str, partition: i32) -> LogResult<PartitionOffsets>
    where
        C: Fn(&str, i32, Duration) -> Result<(i64, i64), KafkaError> + Send + 'static,
    {
        let timeout = self.config.request_timeout;
        let name = topic.to_owned();
        let (low, high) = blocking("reading watermarks", move || client(&name, partition, timeout))
            .await?
            .map_err(|e| map_kafka("reading watermarks", topic, u32::try_from(partition).ok(), &e))?;
        Ok(PartitionOffsets { log_start: to_u64(low), high_watermark: to_u64(high) })
    }

    /// The consumer of `group`, created on first use.
    fn group_consumer(&self, group: &str) -> LogResult<Arc<BaseConsumer>> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(consumer) = groups.get(group) {
            return Ok(Arc::clone(consumer));
        }
        let consumer: BaseConsumer = self
            .config
            .group_consumer_config(group)
            .create()
            .map_err(|e| broker(&format!("creating the consumer of group {group}"), e))?;
        let consumer = Arc::new(consumer);
        groups.insert(group.to_owned(), Arc::clone(&consumer));
        Ok(consumer)
    }

    /// Maps a failed delivery of `record` to partition `partition`.
    fn delivery_error(&self, topic: &str, partition: u32, record: &Record, err: &KafkaError) -> LogError {
        if err.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
            let size_bytes = record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len);
            return LogError::RecordTooLarge { size_bytes, limit_bytes: self.config.message_max_bytes() };
        }
        map_kafka(&format!("appending to {topic}/{partition}"), topic, Some(partition), err)
    }

    /// Reads records from a positioned consumer (see the `fetch` module).
    async fn poll_records(
        &self,
        pc: &mut PositionedConsumer,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> LogResult<Vec<StoredRecord>> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut records: Vec<StoredRecord> = Vec::new();
        let mut bytes = 0usize;
        let mut last_error: Option<KafkaError> = None;
        loop {
            // Wait for the first record; after it, take only what is already
            // prefetched (a zero timeout still polls the queue once).
            let until = if records.is_empty() { deadline } else { tokio::time::Instant::now() };
            let received = match tokio::time::timeout_at(until, pc.consumer.recv()).await {
                Err(_elapsed) => break,
                Ok(received) => received,
            };
            match received {
                Ok(message) => {
                    let message_offset = to_u64(message.offset());
                    if message_offset < offset {
                        continue;
                    }
                    let key = message.key().map(Bytes::copy_from_slice);
                    let value = message.payload().map(Bytes::copy_from_slice);
                    bytes += key.as_ref().map_or(0, Bytes::len) + value.as_ref().map_or(0, Bytes::len);
                    let timestamp_ms = match message.timestamp() {
                        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms,
                        Timestamp::NotAvailable => -1,
                    };
                    records.push(StoredRecord { offset: message_offset, key, value, timestamp_ms });
                    if bytes >= max_bytes {
                        break;
                    }
                }
                Err(err) => {
                    if err.rdkafka_error_code().is_some_and(is_unknown_topic) {
                        return Err(map_kafka("fetching", topic, Some(partition), &err));
                    }
                    // librdkafka retries on its own (leader moves, broker
                    // restarts); report only if nothing was read in time.
                    warn!(topic, partition, error = %err, "Kafka consumer error while fetching.");
                    last_error = Some(err);
                    if !records.is_empty() {
                        break;
                    }
                }
            }
        }
        match (records.is_empty(), last_error) {
            (true, Some(err)) => Err(map_kafka(&format!("fetching {topic}/{partition}"), topic, Some(partition), &err)),
            _ => Ok(records),
        }
    }
}

#[async_trait]
impl Log for KafkaLog {
    /// Returns the partition count from metadata if the topic exists (its
    /// spec is left as it is), else creates it with the admin API:
    /// `spec.partitions` partitions, the configured replication factor,
    /// `cleanup.policy` `compact` or `delete` with `retention.ms`, and
    /// `min.insync.replicas=2` when the replication factor is 3 or more. It
    /// returns once metadata shows the new topic (bounded by
    /// `request_timeout`). Concurrent creators both succeed.
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> LogResult<u32> {
        validate_topic(topic)?;
        if spec.partitions == 0 {
            return Err(LogError::InvalidTopic {
                topic: topic.to_owned(),
                reason: "a topic needs at least one partition",
            });
        }
        match self.metadata_partitions(topic).await {
            Ok(n) => return Ok(n),
            Err(LogError::TopicNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        match self.create_topic(topic, spec).await? {
            Some(n) => Ok(n),
            None => self.metadata_partitions(topic).await,
        }
    }

    /// Deletes the topic with the admin API (Kafka also drops the committed
    /// offsets of its partitions) and waits, up to `request_timeout`, until
    /// metadata no longer shows it. A topic absent from metadata, or one the
    /// broker reports unknown, is not an error.
    async fn delete_topic(&self, topic: &str) -> LogResult<()> {
        validate_topic(topic)?;
        match self.metadata_partitions(topic).await {
            Ok(_) => {}
            Err(LogError::TopicNotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        let context = format!("deleting topic {topic}");
        let options = AdminOptions::new()
            .request_timeout(Some(self.config.request_timeout))
            .operation_timeout(Some(self.config.request_timeout));
        let results = self.admin.delete_topics(&[topic], &options).await.map_err(|e| broker(&context, e))?;
        match results.into_iter().next() {
            Some(Ok(_)) => {}
            Some(Err((_, code))) if is_unknown_topic(code) => {}
            Some(Err((_, code))) => return Err(broker(&context, code)),
            None => return Err(broker(&context, "the broker returned no result")),
        }
        self.fetch_pool.forget_topic(topic);
        info!(topic, "Deleted topic.");
        // Deletion completes asynchronously on the brokers; wait until
        // metadata stops showing the topic so that callers see it gone.
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            match self.metadata_partitions(topic).await {
                Err(LogError::TopicNotFound { .. }) => return Ok(()),
                Ok(_) if Instant::now() < deadline => tokio::time::sleep(CREATE_POLL_INTERVAL).await,
                Ok(_) => {
                    return Err(broker(&context, "the topic still shows in metadata after request_timeout"));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The partition count from fresh metadata.
    async fn partition_count(&self, topic: &str) -> LogResult<u32> {
        validate_topic(topic)?;
        self.metadata_partitions(topic).await
    }

    /// Produces every record to `partition` (in order, with the record's
    /// timestamp as the Kafka create time and a null value for a tombstone)
    /// and waits for every acknowledgement.
    ///
    /// An empty batch appends nothing and returns the high watermark as both
    /// offsets.
    ///
    /// # Errors
    /// If any record fails, [`LogError::Broker`] (or
    /// [`LogError::RecordTooLarge`], [`LogError::TopicNotFound`],
    /// [`LogError::PartitionNotFound`]) once every record of the batch has
    /// resolved. Kafka has no atomic multi-record append outside
    /// transactions: **records of a failed batch that were acknowledged stay
    /// in the log**, so a caller that retries may store them twice.
    ///
    /// # Cancellation
    /// Records handed to librdkafka are delivered (or time out) whether or
    /// not the future is still polled; dropping it only loses the receipt.
    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> LogResult<AppendReceipt> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let kafka_partition = self.check_partition(topic, partition).await?;
        if records.is_empty() {
            let high = self.offsets(topic, partition).await?.high_watermark;
            return Ok(AppendReceipt { first_offset: high, last_offset: high });
        }
        let limit_bytes = self.config.message_max_bytes();
        for record in &records {
            let size_bytes = record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len);
            if size_bytes > limit_bytes {
                return Err(LogError::RecordTooLarge { size_bytes, limit_bytes });
            }
        }

        // Enqueue strictly in order (so the idempotent producer keeps the
        // batch's order), waiting out a full local queue.
        let mut deliveries = Vec::with_capacity(records.len());
        let enqueue_deadline = Instant::now() + self.config.delivery_timeout;
        let mut failure: Option<LogError> = None;
        for record in &records {
            let mut kafka_record =
                FutureRecord::<[u8], [u8]>::to(topic).partition(kafka_partition).timestamp(record.timestamp_ms);
            if let Some(key) = &record.key {
                kafka_record = kafka_record.key(key.as_ref());
            }
            if let Some(value) = &record.value {
                kafka_record = kafka_record.payload(value.as_ref());
            }
            loop {
                match self.producer.send_result(kafka_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                        if Instant::now() < enqueue_deadline =>
                    {
                        kafka_record = returned;
                        tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                    }
                    Err((err, _)) => {
                        failure = Some(self.delivery_error(topic, partition, record, &err));
                        break;
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }

        // Wait for every enqueued record, even after a failure, so that
        // nothing of this batch is still in flight when we return.
        let mut first_offset = u64::MAX;
        let mut last_offset = 0;
        for (delivery, record) in deliveries.into_iter().zip(&records) {
            match delivery.await {
                Ok(Ok(delivery)) => {
                    let offset = to_u64(delivery.offset);
                    first_offset = first_offset.min(offset);
                    last_offset = last_offset.max(offset);
                }
                Ok(Err((err, _))) => {
                    if failure.is_none() {
                        failure = Some(self.delivery_error(topic, partition, record, &err));
                    }
                }
                Err(_canceled) => {
                    if failure.is_none() {
                        failure = Some(broker("appending", "the producer was shut down before acknowledging"));
                    }
                }
            }
        }
        match failure {
            Some(err) => {
                warn!(topic, partition, error = %err, "Kafka append failed.");
                Err(err)
            }
            None => Ok(AppendReceipt { first_offset, last_offset }),
        }
    }

    /// Reads from a pooled consumer positioned on the partition (see
    /// the `fetch` module of this crate). `Fetched::offsets` comes from a watermark query
    /// made during the fetch, raised to cover the records returned.
    ///
    /// An `offset` above the high watermark returns no records after
    /// `max_wait` (Kafka would otherwise reset the position to the start).
    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> LogResult<Fetched> {
        let kafka_partition = self.check_partition(topic, partition).await?;
        let mut pc = match self.fetch_pool.take(topic, partition) {
            Some(pc) => pc,
            None => {
                let consumer: StreamConsumer = self
                    .config
                    .fetch_consumer_config()
                    .create()
                    .map_err(|e| broker("creating a Kafka fetch consumer", e))?;
                debug!(topic, partition, "Created a fetch consumer.");
                PositionedConsumer { consumer: Arc::new(consumer), next_offset: None }
            }
        };
        let query_through = |pc: &PositionedConsumer| {
            let consumer = Arc::clone(&pc.consumer);
            move |t: &str, p: i32, timeout: Duration| consumer.fetch_watermarks(t, p, timeout)
        };

        let (mut offsets, requested) = if pc.next_offset == Some(offset) {
            // Tailing: the query runs while we wait for records.
            let watermarks = self.watermarks(query_through(&pc), topic, kafka_partition);
            let records = self.poll_records(&mut pc, topic, partition, offset, max_bytes, max_wait);
            let (watermarks, records) = tokio::join!(watermarks, records);
            (watermarks?, records.map(|r| (r, offset)))
        } else {
            let offsets = self.watermarks(query_through(&pc), topic, kafka_partition).await?;
            if offset > offsets.high_watermark {
                self.fetch_pool.put(topic, partition, pc);
                tokio::time::sleep(max_wait).await;
                return Ok(Fetched { records: Vec::new(), offsets });
            }
            let start = offset.max(offsets.log_start);
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(topic, kafka_partition, Offset::Offset(to_i64(start)))
                .map_err(|e| broker("positioning a fetch consumer", e))?;
            pc.consumer.assign(&assignment).map_err(|e| broker("positioning a fetch consumer", e))?;
            pc.next_offset = Some(start);
            let records = self.poll_records(&mut pc, topic, partition, start, max_bytes, max_wait).await;
            (offsets, records.map(|r| (r, start)))
        };
        // On error `pc` is dropped: its position is unknown.
        let (records, _) = requested?;
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            pc.next_offset = Some(last.offset + 1);
            offsets.log_start = offsets.log_start.min(first.offset);
            offsets.high_watermark = offsets.high_watermark.max(last.offset + 1);
        }
        self.fetch_pool.put(topic, partition, pc);
        Ok(Fetched { records, offsets })
    }

    /// The watermarks: low (log start) and high, from a ListOffsets query.
    async fn offsets(&self, topic: &str, partition: u32) -> LogResult<PartitionOffsets> {
        let kafka_partition = self.check_partition(topic, partition).await?;
        let producer = self.producer.clone();
        self.watermarks(move |t, p, timeout| producer.client().fetch_watermarks(t, p, timeout), topic, kafka_partition)
            .await
    }

    /// Commits `next_offset` for `group` with a synchronous offset commit from
    /// a consumer with `group.id = group` that never joins the group
    /// (Kafka's "standalone" commit; it fails if the group has active
    /// members using the group protocol).
    async fn commit_offset(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> LogResult<()> {
        let kafka_partition = self.check_partition(topic, partition).await?;
        let consumer = self.group_consumer(group)?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, kafka_partition, Offset::Offset(to_i64(next_offset)))
            .map_err(|e| broker("committing an offset", e))?;
        let result = blocking("committing an offset", move || {
            // Serve queued events (errors, logs) of this otherwise unpolled
            // consumer; it is assigned nothing, so no message is lost.
            let _ = consumer.poll(Duration::ZERO);
            consumer.commit(&offsets, CommitMode::Sync)
        })
        .await?;
        result.map_err(|e| map_kafka(&format!("committing {group} on {topic}/{partition}"), topic, Some(partition), &e))
    }

    /// The committed offset from an OffsetFetch for `group`; `None` when the
    /// group has committed nothing for the partition.
    async fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> LogResult<Option<u64>> {
        let kafka_partition = self.check_partition(topic, partition).await?;
        let consumer = self.group_consumer(group)?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(topic, kafka_partition);
        let timeout = self.config.request_timeout;
        let context = format!("reading the committed offset of {group} on {topic}/{partition}");
        let committed = blocking("reading a committed offset", move || {
            let _ = consumer.poll(Duration::ZERO);
            consumer.committed_offsets(wanted, timeout)
        })
        .await?
        .map_err(|e| map_kafka(&context, topic, Some(partition), &e))?;
        let Some(element) = committed.find_partition(topic, kafka_partition) else {
            return Ok(None);
        };
        element.error().map_err(|e| map_kafka(&context, topic, Some(partition), &e))?;
        Ok(match element.offset() {
            Offset::Offset(n) if n >= 0 => Some(to_u64(n)),
            _ => None,
        })
    }

    /// Refuses further appends, waits (up to `delivery_timeout`) for records
    /// in flight to be acknowledged, and closes the fetch and group
    /// consumers. Fetches still work afterwards (with new consumers).
    ///
    /// # Errors
    /// [`LogError::Broker`] if records were still unacknowledged at the
    /// deadline.
    async fn close(&self) -> LogResult<()> {
        self.closed.store(true, Ordering::Release);
        let producer = self.producer.clone();
        let timeout = self.config.delivery_timeout;
        let flushed = blocking("flushing the producer", move || producer.flush(timeout)).await?;
        self.fetch_pool.clear();
        let groups: Vec<_> = self.groups.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        // A group consumer's drop closes it, which blocks.
        blocking("closing group consumers", move || drop(groups)).await?;
        flushed.map_err(|e| broker("flushing the producer", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        validate_topic("promlake.ws.abc-123.samples").unwrap();
        validate_topic("_control").unwrap();
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(matches!(validate_topic(bad), Err(LogError::InvalidTopic { .. })), "{bad:?}");
        }
    }

    #[test]
    fn offsets_convert() {
        assert_eq!(to_u64(-1001), 0);
        assert_eq!(to_u64(42), 42);
        assert_eq!(to_i64(u64::MAX), i64::MAX);
    }
}
