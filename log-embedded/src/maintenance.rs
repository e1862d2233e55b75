//! Maintenance of sealed segments: retention for `Delete` topics and
//! compaction for `Compact` topics (rules in the crate docs). Both run on a
//! blocking thread under the partition's maintenance lock; appends and
//! fetches go on meanwhile (they never touch sealed segment files except to
//! read them through already open handles, which survive removal).
//!
//! Compaction is crash-safe by a two-step rename. For a group of sealed
//! segments covering offsets `first..end` (`end` is the base of the segment
//! after the group):
//!
//! ```text
//! write  <first>-<end>.cleaned      kept records; fsync
//! rename       → <first>-<end>.swap fsync dir     ← commit point
//! remove the group's <base>.log files
//! rename       → <first>.log        fsync dir
//! ```
//!
//! At open, a `.cleaned` file is deleted (the compaction never committed) and
//! a `.swap` file replaces every segment whose base is in `first..end`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use common::log::LogResult;
use tracing::{info, warn};

use crate::ctx::io_err;
use crate::partition::{CLEANED_SUFFIX, Partition, SWAP_SUFFIX, range_name};
use crate::record::{DecodedRecord, encode};
use crate::segment::{Segment, segment_name};

/// Bytes buffered before a compaction output is written.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// What one [`EmbeddedLog::run_maintenance`](crate::EmbeddedLog::run_maintenance) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Sealed segments deleted by retention.
    pub segments_deleted: u64,
    /// Sealed segments rewritten by compaction.
    pub segments_compacted: u64,
    /// Records removed by compaction (superseded values and expired tombstones).
    pub records_compacted: u64,
}

fn maintenance_lock(partition: &Partition) -> MutexGuard<'_, ()> {
    partition.maintenance.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Deletes the oldest sealed segments whose newest record is older than
/// `now_ms - retention` and whose last offset is below every group's
/// committed offset. Deletes nothing if no group ever committed. Blocking.
pub(crate) fn apply_retention(
    partition: &Partition,
    retention: Duration,
    now_ms: i64,
    report: &mut MaintenanceReport,
) -> LogResult<()> {
    let _maintenance = maintenance_lock(partition);
    let Some(min_committed) = partition.offsets.min() else { return Ok(()) };
    let cutoff = now_ms.saturating_sub(millis(retention));
    let segments = partition.segments();
    // Never the last (active) segment; always from the front, so the log
    // stays a contiguous range.
    for pair in segments.windows(2) {
        let (segment, next) = (&pair[0], &pair[1]);
        let meta = segment.meta();
        let last_offset = meta.last_offset.unwrap_or(next.base_offset.saturating_sub(1));
        let expired = meta.max_timestamp_ms.is_none_or(|newest| newest < cutoff);
        if !expired || last_offset >= min_committed {
            break;
        }
        partition.replace_segments(&[segment.base_offset], None);
        let ctx = &partition.ctx;
        ctx.fs.remove_file(&segment.path).map_err(|e| io_err("remove expired segment", &segment.path, e))?;
        ctx.sync_dir(&partition.dir)?;
        report.segments_deleted += 1;
        info!(
            topic = %partition.topic,
            partition = partition.id,
            base_offset = segment.base_offset,
            log_start = next.base_offset,
            "Retention deleted a segment."
        );
    }
    Ok(())
}

/// Rewrites the sealed segments keeping the newest record of each key (and
/// tombstones younger than the tombstone retention). Blocking.
pub(crate) fn compact(partition: &Partition, now_ms: i64, report: &mut MaintenanceReport) -> LogResult<()> {
    let _maintenance = maintenance_lock(partition);
    let segments = partition.segments();
    if segments.len() < 2 {
        return Ok(());
    }
    let hw = partition.high_watermark();
    let config = &partition.ctx.config;
    let tombstone_cutoff = now_ms.saturating_sub(millis(config.compacted_tombstone_retention));

    // Pass 1: the newest offset of every key in the whole partition.
    let mut newest: HashMap<Bytes, u64> = HashMap::new();
    for segment in &segments {
        segment.for_each(|record| {
            if let (Some(key), true) = (record.key, record.offset < hw) {
                match newest.get_mut(&key[..]) {
                    Some(offset) => *offset = record.offset,
                    None => {
                        newest.insert(Bytes::copy_from_slice(&key), record.offset);
                    }
                }
            }
            Ok(())
        })?;
    }
    let keep = |record: &DecodedRecord| match &record.key {
        // Keyless records cannot be superseded; they stay.
        None => true,
        Some(key) => {
            newest.get(&key[..]) == Some(&record.offset)
                && (record.value.is_some() || record.timestamp_ms > tombstone_cutoff)
        }
    };

    // Pass 2: what each sealed segment keeps, then groups of consecutive
    // segments whose kept records fit in one segment.
    let sealed = segments.len() - 1;
    let mut kept_bytes = vec![0u64; sealed];
    let mut dropped = vec![0u64; sealed];
    for (i, segment) in segments[..sealed].iter().enumerate() {
        segment.for_each(|record| {
            if keep(&record) {
                kept_bytes[i] += record.encoded_len as u64;
            } else {
                dropped[i] += 1;
            }
            Ok(())
        })?;
    }
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, kept) in kept_bytes.iter().enumerate() {
        if i > start && bytes + kept > config.segment_bytes {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += kept;
    }
    groups.push(start..sealed);

    for group in groups {
        if group.len() == 1 && dropped[group.start] == 0 {
            continue;
        }
        let removed: u64 = dropped[group.clone()].iter().sum();
        rewrite(partition, &segments, group.clone(), &keep)?;
        report.segments_compacted += group.len() as u64;
        report.records_compacted += removed;
    }
    Ok(())
}

/// Replaces `segments[group]` by one segment of their kept records.
fn rewrite(
    partition: &Partition,
    segments: &[Arc<Segment>],
    group: Range<usize>,
    keep: &dyn Fn(&DecodedRecord) -> bool,
) -> LogResult<()> {
    let ctx = &partition.ctx;
    let dir = &partition.dir;
    let first = segments[group.start].base_offset;
    let end = segments[group.end].base_offset;
    let cleaned = dir.join(range_name(first, end, CLEANED_SUFFIX));
    let swap = dir.join(range_name(first, end, SWAP_SUFFIX));

    let write_cleaned = || -> LogResult<()> {
        let file = ctx.fs.create(&cleaned).map_err(|e| io_err("create compaction output", &cleaned, e))?;
        let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES);
        let flush = |buf: &mut Vec<u8>| -> LogResult<()> {
            file.append(buf).map_err(|e| io_err("write compaction output", &cleaned, e))?;
            buf.clear();
            Ok(())
        };
        for segment in &segments[group.clone()] {
            segment.for_each(|record| {
                if keep(&record) {
                    let (key, value) = (record.key.as_deref(), record.value.as_deref());
                    // Each kept record is its own complete batch.
                    encode(&mut buf, record.offset, record.timestamp_ms, key, value, true);
                    if buf.len() >= WRITE_CHUNK_BYTES {
                        flush(&mut buf)?;
                    }
                }
                Ok(())
            })?;
        }
        flush(&mut buf)?;
        ctx.sync_file(file.as_ref(), &cleaned)?;
        ctx.fs.rename(&cleaned, &swap).map_err(|e| io_err("rename compaction output", &cleaned, e))?;
        ctx.sync_dir(dir)
    };
    if let Err(err) = write_cleaned() {
        if let Err(cleanup) = ctx.remove_if_exists(&cleaned) {
            warn!(%cleanup, file = %cleaned.display(), "Could not remove a failed compaction output.");
        }
        return Err(err);
    }

    // Committed: from here a crash is finished by the next open.
    for segment in &segments[group.clone()] {
        ctx.remove_if_exists(&segment.path)?;
    }
    let path = dir.join(segment_name(first));
    ctx.fs.rename(&swap, &path).map_err(|e| io_err("rename compaction output", &swap, e))?;
    ctx.sync_dir(dir)?;
    let compacted = Segment::recover(ctx, path, first, first, Some(end))?;
    let bases: Vec<u64> = segments[group.clone()].iter().map(|segment| segment.base_offset).collect();
    partition.replace_segments(&bases, Some(Arc::new(compacted)));
    info!(
        topic = %partition.topic,
        partition = partition.id,
        first_offset = first,
        end_offset = end,
        segments = group.len(),
        "Compacted segments."
    );
    Ok(())
}
