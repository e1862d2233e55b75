//! PromLake's embedded log: [`common::log::Log`] on local disk, for
//! single-node deployments that run without Kafka.
//!
//! ```text
//!  append ─► Partition::append ─(one write)─► active segment ─► group-commit fsync ─► high watermark
//!                                                                                         │
//!  fetch  ◄── positional reads of durable bytes ◄── wakes on watch::channel ◄─────────────┘
//!  run_maintenance ─► retention (Delete topics) / compaction (Compact topics) of sealed segments
//! ```
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/<topic>/topic.meta                      partitions + cleanup policy (text, written atomically)
//! <dir>/<topic>/<partition>/<base:020>.log      segments, named by the offset they start at
//! <dir>/<topic>/<partition>/consumer-offsets    every group's committed offset (written atomically)
//! <dir>/<topic>/<partition>/<a:020>-<e:020>.cleaned / .swap   compaction in progress
//! ```
//!
//! "Written atomically" means: write `<name>.tmp`, fsync it, rename it over
//! `<name>`, fsync the directory. A topic directory is durable (its parent
//! synced) before `ensure_topic` returns; `topic.meta` is the commit point of
//! creation (written last) and of deletion (removed first). Topic names
//! follow Kafka's rules (1–249 characters of `[A-Za-z0-9._-]`, not `.` or
//! `..`); group names may be anything, since they are stored inside the
//! offsets file, not in file names.
//!
//! # Record format
//!
//! ```text
//! ┌─────┬───────┬───────┬────────┬───────┬─────────┬─────┬─────────┬───────┐
//! │ len │ crc32c│ attrs │ offset │ ts_ms │ key_len │ key │ val_len │ value │
//! │ u32 │  u32  │  u8   │  u64   │  i64  │   u32   │     │   u32   │       │
//! └─────┴───────┴───────┴────────┴───────┴─────────┴─────┴─────────┴───────┘
//!               └──────────── len bytes, covered by the crc32c ────────────┘
//! ```
//!
//! Little-endian; a length of `u32::MAX` is a `None` key or value (a `None`
//! value is a tombstone); `attrs` bit 0 marks the last record of an append
//! batch. Records carry their offset, so compaction can leave gaps.
//!
//! # Durability and group commit
//!
//! [`Log::append`](common::log::Log::append) returns only after its records
//! are fsynced (`fdatasync`). Each append writes its whole batch with one
//! write under the partition's write lock, then waits for an fsync that
//! covers it; concurrent appenders share fsyncs (one fsync covers every batch
//! written before it started), see [`EmbeddedLog::fsync_count`]. Fetches see
//! only records below the durable high watermark, which moves by whole
//! batches, so a batch becomes readable all at once. If a write or an fsync
//! fails, the partition refuses every later append (`LogError::Closed`):
//! after a failed fsync the page cache's state is unknown ("fsyncgate").
//! [`Log::close`](common::log::Log::close) waits for in-flight appends, then
//! refuses writes.
//!
//! # Recovery
//!
//! At open, every segment of every partition is scanned and checked:
//! checksums, offsets increasing and within the segment's range.
//! - A bad record in a sealed (not last) segment, or a sealed segment ending
//!   inside a batch, is corruption: open fails with `LogError::Corrupt`.
//!   Sealed segments were fsynced before the next one was created, so no
//!   crash can tear them.
//! - In the last segment, a bad record (header or record running past the
//!   end of the file, checksum mismatch, unparsable body, out-of-order
//!   offset) is a torn write *unless a valid record follows it*: if any
//!   byte position after it starts a record with a valid checksum and an
//!   offset above the last good one, the file was damaged in the middle, and
//!   open fails with `LogError::Corrupt`. Searching every position (not just
//!   the declared length's end) also catches a garbled length field.
//! - A torn tail is truncated back to the end of the last complete batch
//!   (the last record with the batch-end mark), with a warning giving the
//!   bytes dropped. So a batch whose append was never acknowledged is
//!   recovered whole or not at all, never as a prefix.
//! - Leftovers of an interrupted compaction are finished (`.swap`) or
//!   dropped (`.cleaned`), and topics without `topic.meta` are removed.
//!
//! Limit of the rule: if a crash persisted the pages of an unacknowledged
//! write out of order (a later page but not an earlier one), recovery cannot
//! tell this from damage and refuses to open; the operator decides.
//!
//! # Retention and compaction
//!
//! [`EmbeddedLog::run_maintenance`] works on sealed segments only, never
//! the active one.
//! - `Delete { retention }`: deletes the oldest sealed segments whose newest
//!   record is older than `now - retention` *and* whose last offset is below
//!   the lowest offset committed by any consumer group for the partition (no
//!   committed group: nothing is deleted). The log start moves up; a fetch
//!   below it reads from it.
//! - `Compact`: rewrites sealed segments keeping, per key, only the record
//!   with the newest offset in the whole partition (the active segment
//!   included); tombstones are kept until older than
//!   [`EmbeddedLogConfig::compacted_tombstone_retention`] (by record
//!   timestamp); keyless records are kept. Offsets are preserved; adjacent
//!   segments are merged while they fit in `segment_bytes`. The rewrite is
//!   crash-safe (see [`maintenance`]'s docs).
//!
//! # Notes for callers
//!
//! - An empty batch appends nothing; its receipt has `first_offset ==
//!   last_offset ==` the high watermark.
//! - Committed offsets are stored per partition next to its segments and are
//!   deleted with the topic; committing after [`Log::close`] fails with
//!   `LogError::Closed`, fetching still works.
//! - All file access goes through [`Fs`]; `sim::SimFs` (this crate's tests,
//!   or the `sim` feature) simulates power loss for crash tests.
//!
//! [`Log::close`]: common::log::Log::close
//!
//! # Not done yet
//!
//! - No time index: time-based lookups are not offered (the `Log` trait has
//!   none). No size-based retention.
//! - Compaction always rewrites every sealed segment that has anything to
//!   drop (no dirty-ratio threshold) and holds one entry per key in memory.
//! - Retention and compaction run only when called; the binary schedules them.
//! - No read-only open: `open` recovers (truncates torn tails, finishes
//!   compactions), so two processes must never open the same directory, and
//!   nothing locks the directory against that yet.
//! - A record larger than 4 GiB − 1 cannot be stored (length fields are u32).

mod config;
mod ctx;
mod embedded;
pub mod fs;
pub mod maintenance;
mod offsets;
mod partition;
mod record;
mod segment;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod topic;

pub use config::EmbeddedLogConfig;
pub use embedded::EmbeddedLog;
pub use fs::{DirEntry, Fs, FsFile, RealFs};
pub use maintenance::MaintenanceReport;

#[cfg(test)]
mod tests;
