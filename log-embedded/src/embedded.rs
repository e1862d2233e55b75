//! [`EmbeddedLog`]: the topics of one data directory behind [`Log`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use common::log::{
    AppendReceipt, CleanupPolicy, Fetched, Log, LogError, LogResult, PartitionOffsets, Record, TopicSpec,
};
use tokio::sync::{Mutex as AsyncMutex, RwLock as AsyncRwLock};
use tracing::{info, warn};

use crate::config::EmbeddedLogConfig;
use crate::ctx::{Ctx, blocking, io_err};
use crate::fs::{Fs, RealFs};
use crate::maintenance::{MaintenanceReport, apply_retention, compact};
use crate::partition::Partition;
use crate::record::encoded_len;
use crate::topic::{Topic, validate_spec, validate_topic_name};

/// The embedded, durable, on-disk [`Log`]. See the [crate docs](crate).
#[derive(Debug)]
pub struct EmbeddedLog {
    ctx: Arc<Ctx>,
    dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation and deletion.
    admin: AsyncMutex<()>,
    /// `true` once closed. Every write holds a read guard until its data is
    /// durable, so [`Log::close`] taking the write guard waits for them.
    gate: Arc<AsyncRwLock<bool>>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `dir` on the real file system,
    /// recovering every topic (see "Recovery" in the crate docs).
    ///
    /// Blocking: call it before serving, or inside `spawn_blocking`.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] when stored data is damaged in a way no torn
    /// write explains; [`LogError::Io`] when the directory cannot be read.
    pub fn open(dir: &Path, config: EmbeddedLogConfig) -> LogResult<Arc<EmbeddedLog>> {
        Self::open_with_fs(Arc::new(RealFs), dir, config)
    }

    /// Like [`EmbeddedLog::open`] on any [`Fs`], e.g.
    /// `sim::SimFs` in crash tests.
    ///
    /// # Errors
    /// As [`EmbeddedLog::open`].
    pub fn open_with_fs(fs: Arc<dyn Fs>, dir: &Path, config: EmbeddedLogConfig) -> LogResult<Arc<EmbeddedLog>> {
        let ctx = Arc::new(Ctx::new(fs, config));
        ctx.fs.create_dir_all(dir).map_err(|e| io_err("create log directory", dir, e))?;
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            ctx.sync_dir(parent)?;
        }
        let mut topics = BTreeMap::new();
        let entries = ctx.fs.read_dir(dir).map_err(|e| io_err("list log directory", dir, e))?;
        for entry in entries {
            if !entry.is_dir || validate_topic_name(&entry.name).is_err() {
                warn!(name = %entry.name, dir = %dir.display(), "Ignoring an unexpected entry in the log directory.");
                continue;
            }
            match Topic::open(&ctx, dir, &entry.name)? {
                Some(topic) => {
                    topics.insert(entry.name, Arc::new(topic));
                }
                None => {
                    warn!(topic = %entry.name, "Removing a topic whose creation or deletion was interrupted.");
                    let path = dir.join(&entry.name);
                    ctx.fs.remove_dir_all(&path).map_err(|e| io_err("remove topic directory", &path, e))?;
                    ctx.sync_dir(dir)?;
                }
            }
        }
        info!(dir = %dir.display(), topics = topics.len(), "Opened the embedded log.");
        Ok(Arc::new(EmbeddedLog {
            ctx,
            dir: dir.to_path_buf(),
            topics: RwLock::new(topics),
            admin: AsyncMutex::new(()),
            gate: Arc::new(AsyncRwLock::new(false)),
        }))
    }

    /// The names of the existing topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.read_topics().keys().cloned().collect()
    }

    /// File and directory fsyncs done since open (a metric; group commit
    /// keeps it far below the number of appends).
    pub fn fsync_count(&self) -> u64 {
        self.ctx.fsync_count()
    }

    /// Runs retention (`Delete` topics) and compaction (`Compact` topics)
    /// once over every partition, with `now_ms` (Unix milliseconds) as the
    /// current time. The binary calls it periodically.
    ///
    /// # Errors
    /// [`LogError::Closed`] after [`Log::close`]; I/O errors of the first
    /// partition that failed (the others are still processed).
    pub async fn run_maintenance(&self, now_ms: i64) -> LogResult<MaintenanceReport> {
        let guard = self.gate.clone().read_owned().await;
        if *guard {
            return Err(LogError::Closed);
        }
        let topics: Vec<Arc<Topic>> = self.read_topics().values().cloned().collect();
        let mut report = MaintenanceReport::default();
        let mut first_error = None;
        for topic in topics {
            for partition in &topic.partitions {
                let (partition, cleanup) = (partition.clone(), topic.spec.cleanup);
                let result = blocking(move || {
                    let mut report = MaintenanceReport::default();
                    match cleanup {
                        CleanupPolicy::Delete { retention } => {
                            apply_retention(&partition, retention, now_ms, &mut report)?
                        }
                        CleanupPolicy::Compact => compact(&partition, now_ms, &mut report)?,
                    }
                    Ok(report)
                })
                .await;
                match result {
                    Ok(done) => {
                        report.segments_deleted += done.segments_deleted;
                        report.segments_compacted += done.segments_compacted;
                        report.records_compacted += done.records_compacted;
                    }
                    Err(err) => {
                        warn!(%err, "Log maintenance failed for a partition.");
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        drop(guard);
        first_error.map_or(Ok(report), Err)
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn topic(&self, topic: &str) -> LogResult<Arc<Topic>> {
        self.read_topics().get(topic).cloned().ok_or_else(|| LogError::TopicNotFound { topic: topic.to_owned() })
    }

    fn partition(&self, topic: &str, partition: u32) -> LogResult<Arc<Partition>> {
        self.topic(topic)?
            .partitions
            .get(partition as usize)
            .cloned()
            .ok_or_else(|| LogError::PartitionNotFound { topic: topic.to_owned(), partition })
    }

    /// A read guard of the gate, failing once the log is closed.
    async fn open_gate(&self) -> LogResult<tokio::sync::OwnedRwLockReadGuard<bool>> {
        let guard = self.gate.clone().read_owned().await;
        if *guard { Err(LogError::Closed) } else { Ok(guard) }
    }
}

#[async_trait]
impl Log for EmbeddedLog {
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> LogResult<u32> {
        validate_topic_name(topic)?;
        if let Ok(existing) = self.topic(topic) {
            return Ok(existing.spec.partitions);
        }
        validate_spec(topic, &spec)?;
        let _gate = self.open_gate().await?;
        let _admin = self.admin.lock().await;
        if let Ok(existing) = self.topic(topic) {
            return Ok(existing.spec.partitions);
        }
        let (ctx, root, name) = (self.ctx.clone(), self.dir.clone(), topic.to_owned());
        let created = blocking(move || Topic::create(&ctx, &root, &name, spec)).await?;
        self.write_topics().insert(topic.to_owned(), Arc::new(created));
        info!(topic, partitions = spec.partitions, "Created a topic.");
        Ok(spec.partitions)
    }

    async fn delete_topic(&self, topic: &str) -> LogResult<()> {
        validate_topic_name(topic)?;
        let _gate = self.open_gate().await?;
        let _admin = self.admin.lock().await;
        let Some(removed) = self.write_topics().remove(topic) else { return Ok(()) };
        let (ctx, root, name) = (self.ctx.clone(), self.dir.clone(), topic.to_owned());
        blocking(move || {
            for partition in &removed.partitions {
                partition.shut();
            }
            Topic::delete_files(&ctx, &root, &name)
        })
        .await?;
        info!(topic, "Deleted a topic.");
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> LogResult<u32> {
        Ok(self.topic(topic)?.spec.partitions)
    }

    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> LogResult<AppendReceipt> {
        let target = self.partition(topic, partition)?;
        let limit_bytes = self.ctx.config.max_record_bytes.min(u32::MAX as usize);
        for record in &records {
            let size_bytes = encoded_len(record.key.as_deref(), record.value.as_deref());
            if size_bytes > limit_bytes {
                return Err(LogError::RecordTooLarge { size_bytes, limit_bytes });
            }
        }
        let gate = self.open_gate().await?;
        // The guard moves into the blocking task: even if this future is
        // dropped, `close` waits until the batch is durable or failed.
        blocking(move || {
            let receipt = target.append(&records);
            drop(gate);
            receipt
        })
        .await
    }

    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> LogResult<Fetched> {
        let source = self.partition(topic, partition)?;
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut watermark = source.subscribe();
        let mut offset = offset;
        loop {
            let high_watermark = *watermark.borrow_and_update();
            let log_start = source.log_start();
            let from = offset.max(log_start);
            let offsets = PartitionOffsets { log_start, high_watermark };
            if from < high_watermark {
                let reader = source.clone();
                let records = blocking(move || reader.read(from, high_watermark, max_bytes)).await?;
                if !records.is_empty() {
                    return Ok(Fetched { records, offsets });
                }
                // Everything up to the watermark was compacted away.
                offset = high_watermark;
            }
            match tokio::time::timeout_at(deadline, watermark.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(LogError::Closed),
                Err(_elapsed) => return Ok(Fetched { records: Vec::new(), offsets }),
            }
        }
    }

    async fn offsets(&self, topic: &str, partition: u32) -> LogResult<PartitionOffsets> {
        let source = self.partition(topic, partition)?;
        Ok(PartitionOffsets { log_start: source.log_start(), high_watermark: source.high_watermark() })
    }

    async fn commit_offset(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> LogResult<()> {
        let target = self.partition(topic, partition)?;
        let gate = self.open_gate().await?;
        let group = group.to_owned();
        blocking(move || {
            let result = target.offsets.commit(&target.ctx, &group, next_offset);
            drop(gate);
            result
        })
        .await
    }

    async fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> LogResult<Option<u64>> {
        Ok(self.partition(topic, partition)?.offsets.get(group))
    }

    async fn close(&self) -> LogResult<()> {
        let mut closed = self.gate.write().await;
        if !*closed {
            *closed = true;
            info!(dir = %self.dir.display(), "Closed the embedded log.");
        }
        Ok(())
    }
}
