//! Segments: the files a partition's records live in, named by the offset
//! of their first record, `<base_offset as 20 digits>.log`.
//!
//! A segment keeps, in memory, its size, how much of it is durable, its last
//! offset, its newest timestamp, and a sparse index (one offset → position
//! entry per [`INDEX_INTERVAL_BYTES`]) so a fetch starts reading near its
//! offset instead of at the start of the file. The index is built by the scan
//! at open and extended by every append.
//!
//! [`Segment::recover`] is the recovery scan; its rules are in the crate docs
//! ("Recovery").

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use common::log::{LogResult, StoredRecord};
use tracing::warn;

use crate::ctx::{Ctx, corrupt, io_err};
use crate::fs::FsFile;
use crate::record::{Decode, DecodedRecord, HEADER_LEN, MIN_BODY_LEN, decode};

/// Bytes of records between two entries of the sparse index.
pub(crate) const INDEX_INTERVAL_BYTES: u64 = 4096;
/// How much a sequential scan reads at once.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// The file name of the segment starting at `base_offset`.
pub(crate) fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// The base offset of a segment file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    parse_offset(digits)
}

/// A 20-digit offset.
pub(crate) fn parse_offset(digits: &str) -> Option<u64> {
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

/// What is known about a segment's contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentMeta {
    /// Bytes written.
    pub(crate) size: u64,
    /// Bytes known to be synced; readers stop here.
    pub(crate) durable_size: u64,
    /// Offset of the last record, if any.
    pub(crate) last_offset: Option<u64>,
    /// Newest record timestamp, if any record.
    pub(crate) max_timestamp_ms: Option<i64>,
    /// Sparse index: (offset, position) pairs, increasing.
    index: Vec<(u64, u64)>,
}

impl SegmentMeta {
    fn push(&mut self, offset: u64, position: u64, len: u64, timestamp_ms: i64) {
        if self.index.last().is_none_or(|&(_, indexed)| position >= indexed + INDEX_INTERVAL_BYTES) {
            self.index.push((offset, position));
        }
        self.size = position + len;
        self.last_offset = Some(offset);
        self.max_timestamp_ms = Some(self.max_timestamp_ms.map_or(timestamp_ms, |max| max.max(timestamp_ms)));
    }

    /// A position at or before the record with `offset`.
    fn position_of(&self, offset: u64) -> u64 {
        match self.index.partition_point(|&(indexed, _)| indexed <= offset) {
            0 => 0,
            i => self.index[i - 1].1,
        }
    }
}

/// One segment file and what is known about it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset the segment starts at (its records' offsets are at least this).
    pub(crate) base_offset: u64,
    /// The file's path.
    pub(crate) path: PathBuf,
    /// The open file: appended under the partition's write lock, read at
    /// positions by anyone.
    pub(crate) file: Arc<dyn FsFile>,
    meta: Mutex<SegmentMeta>,
}

/// A record written by [`Segment::append_batch`]: offset, position within
/// the batch, length, timestamp.
pub(crate) type BatchEntry = (u64, u64, u64, i64);

impl Segment {
    /// Creates an empty segment file (not durably: the caller syncs the
    /// directory).
    pub(crate) fn create(ctx: &Ctx, dir: &Path, base_offset: u64) -> LogResult<Segment> {
        let path = dir.join(segment_name(base_offset));
        let file = ctx.fs.create(&path).map_err(|e| io_err("create segment", &path, e))?;
        Ok(Segment { base_offset, path, file, meta: Mutex::new(SegmentMeta::default()) })
    }

    fn lock_meta(&self) -> MutexGuard<'_, SegmentMeta> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the segment's metadata, without the index.
    pub(crate) fn meta(&self) -> SegmentMeta {
        let meta = self.lock_meta();
        SegmentMeta { index: Vec::new(), ..*meta }
    }

    /// Writes an encoded batch with one write and indexes its records.
    pub(crate) fn append_batch(&self, bytes: &[u8], entries: &[BatchEntry]) -> io::Result<()> {
        let start = self.lock_meta().size;
        self.file.append(bytes)?;
        let mut meta = self.lock_meta();
        for &(offset, position, len, timestamp_ms) in entries {
            meta.push(offset, start + position, len, timestamp_ms);
        }
        meta.size = start + bytes.len() as u64;
        Ok(())
    }

    /// Records that the first `size` bytes are synced.
    pub(crate) fn mark_durable(&self, size: u64) {
        let mut meta = self.lock_meta();
        meta.durable_size = meta.durable_size.max(size);
    }

    /// Appends durable records with offsets in `from..hw` to `out` while
    /// `used` stays within `max_bytes` (always accepting a first record).
    /// Returns whether the reader should stop (`hw` or the budget reached)
    /// rather than go on to the next segment.
    pub(crate) fn read(
        &self,
        from: u64,
        hw: u64,
        max_bytes: usize,
        out: &mut Vec<StoredRecord>,
        used: &mut usize,
    ) -> LogResult<bool> {
        let (start, end) = {
            let meta = self.lock_meta();
            (meta.position_of(from), meta.durable_size)
        };
        let mut reader =
            RecordReader::new(self.file.as_ref(), &self.path, start, end, max_bytes.clamp(4096, SCAN_CHUNK_BYTES));
        loop {
            match reader.next()? {
                Next::End => return Ok(false),
                Next::Bad { pos, reason } => return Err(corrupt(&self.path, pos, reason)),
                Next::Record(record, _) => {
                    if record.offset < from {
                        continue;
                    }
                    if record.offset >= hw || (!out.is_empty() && *used + record.encoded_len > max_bytes) {
                        return Ok(true);
                    }
                    *used += record.encoded_len;
                    out.push(StoredRecord {
                        offset: record.offset,
                        key: record.key,
                        value: record.value,
                        timestamp_ms: record.timestamp_ms,
                    });
                }
            }
        }
    }

    /// Calls `visit` with every durable record, in order.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(DecodedRecord) -> LogResult<()>) -> LogResult<()> {
        let end = self.lock_meta().durable_size;
        let mut reader = RecordReader::new(self.file.as_ref(), &self.path, 0, end, SCAN_CHUNK_BYTES);
        loop {
            match reader.next()? {
                Next::End => return Ok(()),
                Next::Bad { pos, reason } => return Err(corrupt(&self.path, pos, reason)),
                Next::Record(record, _) => visit(record)?,
            }
        }
    }

    /// Opens a segment at startup and scans it (see "Recovery" in the crate
    /// docs). `min_offset` is the lowest offset its records may have (one
    /// past the previous segment's last record); `next_base` is the next
    /// segment's base offset, `None` for the last segment, the only one that
    /// may end in a torn write, which is then truncated.
    pub(crate) fn recover(
        ctx: &Ctx,
        path: PathBuf,
        base_offset: u64,
        min_offset: u64,
        next_base: Option<u64>,
    ) -> LogResult<Segment> {
        let file = ctx.fs.open(&path).map_err(|e| io_err("open segment", &path, e))?;
        let len = file.size().map_err(|e| io_err("stat segment", &path, e))?;
        let mut meta = SegmentMeta::default();
        // Records of a batch whose last record was not seen yet.
        let mut pending: Vec<BatchEntry> = Vec::new();
        let mut expected = min_offset.max(base_offset);
        let mut bad = None;
        let mut reader = RecordReader::new(file.as_ref(), &path, 0, len, SCAN_CHUNK_BYTES);
        loop {
            match reader.next()? {
                Next::End => break,
                Next::Bad { pos, reason } => {
                    bad = Some((pos, reason));
                    break;
                }
                Next::Record(record, pos) => {
                    if record.offset < expected || next_base.is_some_and(|next| record.offset >= next) {
                        let reason = format!(
                            "record offset {} out of order (expected at least {expected}, below {})",
                            record.offset,
                            next_base.map_or("no bound".into(), |next| next.to_string()),
                        );
                        bad = Some((pos, reason));
                        break;
                    }
                    expected = record.offset + 1;
                    pending.push((record.offset, pos, record.encoded_len as u64, record.timestamp_ms));
                    if record.last_in_batch {
                        for (offset, position, len, timestamp_ms) in pending.drain(..) {
                            meta.push(offset, position, len, timestamp_ms);
                        }
                    }
                }
            }
        }
        // `meta.size` is the end of the last complete batch.
        let batch_end = meta.size;
        if next_base.is_some() {
            if let Some((pos, reason)) = bad {
                return Err(corrupt(&path, pos, format!("in a sealed segment: {reason}")));
            }
            if batch_end != len {
                return Err(corrupt(&path, batch_end, "sealed segment ends inside an append batch"));
            }
        } else {
            if let Some((pos, reason)) = &bad
                && let Some(valid) = find_valid_record(file.as_ref(), &path, pos + 1, len, expected)?
            {
                return Err(corrupt(
                    &path,
                    *pos,
                    format!("{reason}; a valid record follows at byte {valid}, so this is not a torn write"),
                ));
            }
            if batch_end < len {
                warn!(
                    segment = %path.display(),
                    bytes_dropped = len - batch_end,
                    records_dropped = pending.len(),
                    reason = bad.as_ref().map_or("incomplete batch", |(_, reason)| reason.as_str()),
                    "Truncating a torn write at the end of the log."
                );
                file.truncate(batch_end).map_err(|e| io_err("truncate torn segment", &path, e))?;
                ctx.sync_file(file.as_ref(), &path)?;
            }
        }
        meta.durable_size = batch_end;
        Ok(Segment { base_offset, path, file, meta: Mutex::new(meta) })
    }
}

/// The first position in `from..end` where a valid record with an offset of
/// at least `min_offset` starts, if any: the evidence that a bad record is
/// corruption rather than a torn write.
fn find_valid_record(file: &dyn FsFile, path: &Path, from: u64, end: u64, min_offset: u64) -> LogResult<Option<u64>> {
    if from >= end {
        return Ok(None);
    }
    let len = usize::try_from(end - from).map_err(|_| corrupt(path, from, "segment too large to scan"))?;
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, from).map_err(|e| io_err("read segment", path, e))?;
    let buf = Bytes::from(buf);
    for start in 0..len.saturating_sub(HEADER_LEN + MIN_BODY_LEN - 1) {
        if let Decode::Record(record) = decode(&buf.slice(start..))
            && record.offset >= min_offset
        {
            return Ok(Some(from + start as u64));
        }
    }
    Ok(None)
}

/// The next thing a [`RecordReader`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A valid record and its position.
    Record(DecodedRecord, u64),
    /// The end of the range, at a record boundary.
    End,
    /// Bytes at `pos` that are not a valid record, or a record running past
    /// the end of the range.
    Bad { pos: u64, reason: String },
}

/// Reads consecutive records of a file range in chunks.
#[derive(Debug)]
pub(crate) struct RecordReader<'a> {
    file: &'a dyn FsFile,
    path: &'a Path,
    pos: u64,
    end: u64,
    buf: Bytes,
    buf_pos: u64,
    chunk_bytes: usize,
}

impl<'a> RecordReader<'a> {
    /// Reads records in `start..end`, `chunk_bytes` at a time.
    pub(crate) fn new(file: &'a dyn FsFile, path: &'a Path, start: u64, end: u64, chunk_bytes: usize) -> Self {
        RecordReader { file, path, pos: start, end, buf: Bytes::new(), buf_pos: start, chunk_bytes }
    }

    /// The next record.
    pub(crate) fn next(&mut self) -> LogResult<Next> {
        loop {
            if self.pos >= self.end {
                return Ok(Next::End);
            }
            // Invariant: buf_pos <= pos <= buf_pos + buf.len().
            let available = self.buf.slice((self.pos - self.buf_pos) as usize..);
            match decode(&available) {
                Decode::Record(record) => {
                    let pos = self.pos;
                    self.pos += record.encoded_len as u64;
                    return Ok(Next::Record(record, pos));
                }
                Decode::Invalid(reason) => return Ok(Next::Bad { pos: self.pos, reason }),
                Decode::NeedMore(needed) => {
                    if self.pos + needed as u64 > self.end {
                        let what = if needed == HEADER_LEN { "record header" } else { "record" };
                        let reason =
                            format!("{what} of {needed} bytes runs past the end of the data at byte {}", self.end);
                        return Ok(Next::Bad { pos: self.pos, reason });
                    }
                    self.fill(needed)?;
                }
            }
        }
    }

    /// Reads at least `needed` bytes (which fit before `end`) from `pos`.
    fn fill(&mut self, needed: usize) -> LogResult<()> {
        let len = (needed.max(self.chunk_bytes) as u64).min(self.end - self.pos) as usize;
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, self.pos).map_err(|e| io_err("read segment", self.path, e))?;
        self.buf = Bytes::from(buf);
        self.buf_pos = self.pos;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_strangers() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for stranger in ["42.log", "0000000000000000004x.log", "00000000000000000042.swap", "offsets"] {
            assert_eq!(parse_segment_name(stranger), None, "{stranger}");
        }
    }

    #[test]
    fn sparse_index_finds_a_position_at_or_before_the_offset() {
        let mut meta = SegmentMeta::default();
        for i in 0..100u64 {
            meta.push(10 + i * 2, i * 1000, 1000, 0);
        }
        assert!(meta.index.len() > 10 && meta.index.len() < 40);
        assert_eq!(meta.position_of(0), 0);
        for i in 0..100u64 {
            let position = meta.position_of(10 + i * 2);
            assert!(position <= i * 1000, "offset {} at {position}", 10 + i * 2);
            assert!(i * 1000 - position < INDEX_INTERVAL_BYTES + 1000);
        }
    }
}
