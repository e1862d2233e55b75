//! One partition: its segments, the append path with group commit, the
//! durable high watermark that readers follow, and its consumer offsets.
//!
//! Locks, always taken in this order and only on blocking threads:
//! `maintenance` → `writer` → `segments` (and a segment's own metadata
//! lock, innermost); `sync_state` is never held while taking another. Readers take `segments` only long enough to
//! copy the list, then read files by position without locks.
//!
//! Group commit: an appender encodes and writes its whole batch with one
//! write under `writer`, notes the offset one past its batch (`target`),
//! releases `writer` and calls [`Partition::sync_to`]`(target)`. There it
//! returns at once if an fsync already covered `target`, waits if another
//! appender's fsync is running (it may cover `target`), and otherwise leads
//! the next fsync: it notes how far the active segment has been written
//! (every batch written so far, its own and others'), fsyncs it, publishes
//! that point as the new high watermark and wakes the waiters. So while one
//! fsync runs, the appenders queueing behind it are all covered by the next.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use common::log::{AppendReceipt, LogError, LogResult, Record, StoredRecord};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::ctx::{Ctx, corrupt, io_err};
use crate::offsets::{ConsumerOffsets, OFFSETS_FILE, OFFSETS_TMP_FILE};
use crate::record::encode;
use crate::segment::{BatchEntry, Segment, parse_offset, parse_segment_name, segment_name};

/// Suffix of a compaction output that is not yet committed.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a committed compaction output that replaces segments.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// `<first base>-<end>` for compaction files covering offsets `first..end`.
pub(crate) fn range_name(first: u64, end: u64, suffix: &str) -> String {
    format!("{first:020}-{end:020}{suffix}")
}

fn parse_range_name(name: &str, suffix: &str) -> Option<(u64, u64)> {
    let (first, end) = name.strip_suffix(suffix)?.split_once('-')?;
    Some((parse_offset(first)?, parse_offset(end)?))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The append side: where the next batch goes.
#[derive(Debug)]
struct Writer {
    next_offset: u64,
    active: Arc<Segment>,
}

/// One partition of a topic.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) ctx: Arc<Ctx>,
    writer: Mutex<Writer>,
    /// Whether an appender is running the group's fsync.
    sync_state: Mutex<bool>,
    /// Signalled when that fsync ends.
    sync_done: Condvar,
    /// All segments, by base offset; the last one is the active segment.
    segments: Mutex<Vec<Arc<Segment>>>,
    /// The high watermark: one past the last durable record.
    durable: watch::Sender<u64>,
    /// Set when a write or fsync failed, or the topic is being deleted.
    failed: AtomicBool,
    /// Held by retention and compaction, one at a time.
    pub(crate) maintenance: Mutex<()>,
    pub(crate) offsets: ConsumerOffsets,
}

impl Partition {
    fn assemble(
        ctx: Arc<Ctx>,
        topic: &str,
        id: u32,
        dir: PathBuf,
        segments: Vec<Arc<Segment>>,
        next_offset: u64,
        offsets: ConsumerOffsets,
    ) -> LogResult<Partition> {
        let active = segments.last().cloned().ok_or_else(|| corrupt(&dir, 0, "partition has no segment files"))?;
        Ok(Partition {
            topic: topic.to_owned(),
            id,
            dir,
            ctx,
            writer: Mutex::new(Writer { next_offset, active }),
            sync_state: Mutex::new(false),
            sync_done: Condvar::new(),
            segments: Mutex::new(segments),
            durable: watch::Sender::new(next_offset),
            failed: AtomicBool::new(false),
            maintenance: Mutex::new(()),
            offsets,
        })
    }

    /// Creates the partition's directory and first segment, durably within
    /// the directory (the caller syncs the topic directory).
    pub(crate) fn create(ctx: Arc<Ctx>, topic_dir: &Path, topic: &str, id: u32) -> LogResult<Partition> {
        let dir = topic_dir.join(id.to_string());
        ctx.fs.create_dir_all(&dir).map_err(|e| io_err("create partition directory", &dir, e))?;
        let segment = Segment::create(&ctx, &dir, 0)?;
        ctx.sync_dir(&dir)?;
        let offsets = ConsumerOffsets::empty(&dir);
        Self::assemble(ctx, topic, id, dir, vec![Arc::new(segment)], 0, offsets)
    }

    /// Opens an existing partition: finishes or discards interrupted
    /// compactions, then scans every segment (see "Recovery" in the crate
    /// docs).
    pub(crate) fn open(ctx: Arc<Ctx>, topic_dir: &Path, topic: &str, id: u32) -> LogResult<Partition> {
        let dir = topic_dir.join(id.to_string());
        let entries = ctx.fs.read_dir(&dir).map_err(|e| io_err("list partition directory", &dir, e))?;
        let mut bases = Vec::new();
        let mut swaps = Vec::new();
        let mut dir_changed = false;
        for entry in entries {
            let name = entry.name.as_str();
            if entry.is_dir {
                warn!(partition = %dir.display(), name, "Ignoring an unexpected directory.");
            } else if let Some(base) = parse_segment_name(name) {
                bases.push(base);
            } else if let Some(range) = parse_range_name(name, SWAP_SUFFIX) {
                swaps.push((range, entry.name.clone()));
            } else if parse_range_name(name, CLEANED_SUFFIX).is_some() {
                info!(file = name, partition = %dir.display(), "Removing the output of an interrupted compaction.");
                ctx.remove_if_exists(&dir.join(name))?;
                dir_changed = true;
            } else if name != OFFSETS_FILE && name != OFFSETS_TMP_FILE {
                warn!(partition = %dir.display(), name, "Ignoring an unexpected file.");
            }
        }
        // A swap file is a committed compaction whose clean-up was cut short:
        // it replaces every segment in its range.
        swaps.sort();
        for ((first, end), name) in swaps {
            info!(file = %name, partition = %dir.display(), "Finishing an interrupted compaction.");
            for base in bases.iter().filter(|&&base| base >= first && base < end) {
                ctx.remove_if_exists(&dir.join(segment_name(*base)))?;
            }
            bases.retain(|&base| base < first || base >= end);
            let (from, to) = (dir.join(&name), dir.join(segment_name(first)));
            ctx.fs.rename(&from, &to).map_err(|e| io_err("rename", &from, e))?;
            bases.push(first);
            dir_changed = true;
        }
        if dir_changed {
            ctx.sync_dir(&dir)?;
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len());
        let mut min_offset = 0;
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(segment_name(base));
            if base < min_offset {
                let reason = format!("segment starts at offset {base}, below the previous segment's end {min_offset}");
                return Err(corrupt(&path, 0, reason));
            }
            let segment = Segment::recover(&ctx, path, base, min_offset, bases.get(i + 1).copied())?;
            min_offset = segment.meta().last_offset.map_or(base, |last| last + 1);
            segments.push(Arc::new(segment));
        }
        let offsets = ConsumerOffsets::load(&ctx, &dir)?;
        Self::assemble(ctx, topic, id, dir, segments, min_offset, offsets)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// A copy of the segment list (the last one is the active segment).
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        lock(&self.segments).clone()
    }

    /// Replaces the segments with these base offsets by `replacement` (when
    /// some), keeping the list ordered. Used by retention and compaction,
    /// under the maintenance lock.
    pub(crate) fn replace_segments(&self, removed: &[u64], replacement: Option<Arc<Segment>>) {
        let mut segments = lock(&self.segments);
        segments.retain(|segment| !removed.contains(&segment.base_offset));
        if let Some(segment) = replacement {
            let at = segments.partition_point(|s| s.base_offset < segment.base_offset);
            segments.insert(at, segment);
        }
    }

    /// The lowest offset still stored.
    pub(crate) fn log_start(&self) -> u64 {
        lock(&self.segments).first().map_or(0, |segment| segment.base_offset)
    }

    /// One past the last durable record.
    pub(crate) fn high_watermark(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Follows the high watermark.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    fn publish(&self, high_watermark: u64) {
        self.durable.send_if_modified(|current| {
            let advanced = high_watermark > *current;
            if advanced {
                *current = high_watermark;
            }
            advanced
        });
    }

    fn check_writable(&self) -> LogResult<()> {
        if self.failed.load(Ordering::Acquire) { Err(LogError::Closed) } else { Ok(()) }
    }

    /// Refuses all further appends: after a failed write or fsync the state
    /// of the page cache is unknown, so nothing more may be acknowledged.
    fn fail(&self, what: &str, err: &LogError) {
        self.failed.store(true, Ordering::Release);
        error!(topic = %self.topic, partition = self.id, %err, what, "Partition refuses further appends.");
    }

    /// Stops appends for good, waiting for a running write; used when the
    /// topic is deleted.
    pub(crate) fn shut(&self) {
        let _writer = self.lock_writer();
        self.failed.store(true, Ordering::Release);
    }

    /// Appends a batch and returns once it is durable. Blocking.
    ///
    /// The batch is written with one write and its last record is marked,
    /// so after a crash recovery keeps all of it or none of it.
    pub(crate) fn append(&self, records: &[Record]) -> LogResult<AppendReceipt> {
        let (receipt, target) = {
            let mut writer = self.lock_writer();
            self.check_writable()?;
            let first_offset = writer.next_offset;
            if records.is_empty() {
                return Ok(AppendReceipt { first_offset, last_offset: first_offset });
            }
            let size = writer.active.meta().size;
            if size > 0 && size >= self.ctx.config.segment_bytes {
                self.rotate(&mut writer)?;
            }
            let mut bytes = Vec::new();
            let mut entries: Vec<BatchEntry> = Vec::with_capacity(records.len());
            for (i, record) in records.iter().enumerate() {
                let offset = first_offset + i as u64;
                let position = bytes.len();
                let last = i + 1 == records.len();
                encode(&mut bytes, offset, record.timestamp_ms, record.key.as_deref(), record.value.as_deref(), last);
                entries.push((offset, position as u64, (bytes.len() - position) as u64, record.timestamp_ms));
            }
            if let Err(e) = writer.active.append_batch(&bytes, &entries) {
                let err = io_err("append to segment", &writer.active.path, e);
                self.fail("write", &err);
                return Err(err);
            }
            writer.next_offset = first_offset + records.len() as u64;
            let last_offset = writer.next_offset - 1;
            (AppendReceipt { first_offset, last_offset }, writer.next_offset)
        };
        self.sync_to(target)?;
        Ok(receipt)
    }

    /// Seals the active segment (fsync) and starts the next one, durably.
    fn rotate(&self, writer: &mut Writer) -> LogResult<()> {
        let sealed = writer.active.clone();
        let size = sealed.meta().size;
        let result = self.ctx.sync_file(sealed.file.as_ref(), &sealed.path).and_then(|()| {
            sealed.mark_durable(size);
            self.publish(writer.next_offset);
            let next = Segment::create(&self.ctx, &self.dir, writer.next_offset)?;
            self.ctx.sync_dir(&self.dir)?;
            Ok(Arc::new(next))
        });
        match result {
            Ok(next) => {
                lock(&self.segments).push(next.clone());
                writer.active = next;
                Ok(())
            }
            Err(err) => {
                self.fail("segment rotation", &err);
                Err(err)
            }
        }
    }

    /// Returns once every record below `target` is durable, sharing the
    /// fsync with concurrent appenders (see the module docs).
    fn sync_to(&self, target: u64) -> LogResult<()> {
        let mut syncing = lock(&self.sync_state);
        loop {
            if self.high_watermark() >= target {
                return Ok(());
            }
            self.check_writable()?;
            if !*syncing {
                break;
            }
            // Another appender's fsync is running; it may cover `target`.
            syncing = self.sync_done.wait(syncing).unwrap_or_else(PoisonError::into_inner);
        }
        // This appender leads the next fsync, without holding the lock so
        // that later appenders can queue up behind it.
        *syncing = true;
        drop(syncing);
        let (segment, next_offset, size) = {
            let writer = self.lock_writer();
            (writer.active.clone(), writer.next_offset, writer.active.meta().size)
        };
        let result = self.ctx.sync_file(segment.file.as_ref(), &segment.path);
        match &result {
            Ok(()) => {
                segment.mark_durable(size);
                self.publish(next_offset);
            }
            Err(err) => self.fail("fsync", err),
        }
        *lock(&self.sync_state) = false;
        self.sync_done.notify_all();
        result
    }

    /// Durable records with offsets in `from..hw`, about `max_bytes` of
    /// them (at least one if any). Blocking.
    pub(crate) fn read(&self, from: u64, hw: u64, max_bytes: usize) -> LogResult<Vec<StoredRecord>> {
        let segments = self.segments();
        let first = segments.partition_point(|segment| segment.base_offset <= from).saturating_sub(1);
        let mut records = Vec::new();
        let mut used = 0;
        for segment in &segments[first..] {
            if segment.read(from, hw, max_bytes, &mut records, &mut used)? {
                break;
            }
        }
        Ok(records)
    }
}
