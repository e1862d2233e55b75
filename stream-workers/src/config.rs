//! The stream workers' configuration (`[stream_workers]` in the config file).

use std::time::Duration;

use serde::Deserialize;

/// How the stream workers consume the log and flush to the lake.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamWorkersConfig {
    /// A partition's buffered samples are flushed (committed to the lake) once
    /// this many are buffered, samples. Default 500,000 (about 8 MB of head).
    pub flush_max_samples: usize,
    /// A partition's buffer is flushed once its oldest record has waited this
    /// long, milliseconds. Default 5,000.
    pub flush_interval_ms: u64,
    /// The memory budget of the head (samples applied but not yet committed,
    /// and their series' labels) of every partition of the process together,
    /// bytes. Above it, every partition with a head flushes at its next step
    /// instead of waiting for `flush_max_samples` or `flush_interval_ms`.
    /// Default 536,870,912 (512 MiB).
    pub head_max_bytes: usize,
    /// Largest fetch from the log, bytes. Default 4 MiB.
    pub fetch_max_bytes: usize,
    /// How long a fetch waits for new records when none is available,
    /// milliseconds. Also bounds how late an age-based flush can be. Default 250.
    pub fetch_max_wait_ms: u64,
    /// Retry horizon of the deduplication across restarts, milliseconds of log
    /// time (record timestamps). The worker commits its log consumer offset
    /// this far behind what the lake holds, and after a restart re-reads that
    /// stretch of the log to rebuild which samples the lake already has; a
    /// retried request whose first copy is at most this much older (in log
    /// time) than the newest committed record is recognised as a duplicate.
    /// Default 600,000 (10 minutes; Prometheus retries a failed request within
    /// seconds, 30 s `remote_timeout` plus at most 5 s of backoff per try).
    pub dedup_horizon_ms: u64,
    /// How often a series' row in the `series` table is refreshed while the
    /// series keeps receiving samples, milliseconds of sample time. A series
    /// gets a row when a worker first commits a sample of it, and again once
    /// its newest sample is this much newer than in its last row; so a
    /// series' `last_timestamp` in the table lags by at most this much.
    /// Default 3,600,000 (1 hour).
    pub series_refresh_ms: u64,
    /// Wait after a failed commit or fetch before retrying, milliseconds.
    /// Default 1,000.
    pub retry_backoff_ms: u64,
    /// How often the lake maintenance pass runs, milliseconds: retention
    /// (expired `day` partitions of `samples` removed), then vacuum (files
    /// removed by retention, tombstones past Delta's retention, orphans)
    /// of every table of every watched workspace. The first pass runs
    /// [`StreamWorkersConfig::maintenance_start_delay_ms`] after start.
    /// Default 3,600,000 (1 hour).
    pub maintenance_interval_ms: u64,
    /// Delay before the first maintenance pass, milliseconds. Default 60,000.
    pub maintenance_start_delay_ms: u64,
    /// How long a file removed by retention stays on disk before vacuum
    /// deletes it, milliseconds: readers that loaded a snapshot before the
    /// removal can finish reading it meanwhile. Delta's default for removed
    /// files (7 days, `delta.deletedFileRetentionDuration`) still applies to
    /// every other removed file; expired data needs no time travel.
    /// `2 × maintenance_interval_ms + expired_file_grace_ms` must stay
    /// within a day (AMP: expired data leaves the disk within a day).
    /// Default 3,600,000 (1 hour).
    pub expired_file_grace_ms: u64,
    /// A file in a table directory that no commit references (a write whose
    /// commit failed or never came) is deleted by vacuum once it is this old,
    /// milliseconds. Must exceed the longest time between writing a Parquet
    /// file and committing it. Default 3,600,000 (1 hour); at least 60,000.
    pub orphan_file_grace_ms: u64,
    /// A Delta checkpoint is written every this many commits of a table
    /// (the table property `delta.checkpointInterval`, set when a table is
    /// created; delta-rs writes it after the commit that reaches it).
    /// Default 100 (Delta's default).
    pub checkpoint_interval: u64,
    /// A past day partition of `samples` is compacted (its small files
    /// rewritten into large sorted ones, see [`crate::compaction`]) by the
    /// maintenance pass when it holds more than this many small files
    /// (files under half of `compaction_target_file_bytes`), files.
    /// Default 8; at least 1.
    pub compaction_min_files: usize,
    /// The same threshold for today's partition (UTC, and later days), which
    /// appends are still filling, files: compacting it early keeps the file
    /// count of the day being read most at bay, at the cost of rewriting its
    /// data more than once. Default 256 (about 20 minutes of 5-second
    /// flushes of one partition); at least `compaction_min_files`.
    pub compaction_today_min_files: usize,
    /// Target size of a compacted file, bytes: the small files of a day are
    /// merged in groups of at most this many bytes, each into one file.
    /// A group is sorted in memory, about 20 times its size at peak.
    /// Default 67,108,864 (64 MiB); at least 1,048,576 (1 MiB).
    pub compaction_target_file_bytes: u64,
}

impl Default for StreamWorkersConfig {
    fn default() -> Self {
        Self {
            flush_max_samples: 500_000,
            flush_interval_ms: 5_000,
            head_max_bytes: 512 << 20,
            fetch_max_bytes: 4 << 20,
            fetch_max_wait_ms: 250,
            dedup_horizon_ms: 600_000,
            series_refresh_ms: 3_600_000,
            retry_backoff_ms: 1_000,
            maintenance_interval_ms: 3_600_000,
            maintenance_start_delay_ms: 60_000,
            expired_file_grace_ms: 3_600_000,
            orphan_file_grace_ms: 3_600_000,
            checkpoint_interval: 100,
            compaction_min_files: 8,
            compaction_today_min_files: 256,
            compaction_target_file_bytes: 64 << 20,
        }
    }
}

impl StreamWorkersConfig {
    /// [`StreamWorkersConfig::flush_interval_ms`] as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// Checks the settings, naming the first bad key.
    ///
    /// # Errors
    /// A message naming the setting and what is wrong with it.
    pub fn validate(&self) -> Result<(), String> {
        if self.flush_max_samples == 0 {
            return Err("stream_workers.flush_max_samples must be at least 1".into());
        }
        if self.fetch_max_bytes == 0 {
            return Err("stream_workers.fetch_max_bytes must be at least 1".into());
        }
        if self.maintenance_interval_ms == 0 {
            return Err("stream_workers.maintenance_interval_ms must be at least 1".into());
        }
        let expiry_ms = self.maintenance_interval_ms.saturating_mul(2).saturating_add(self.expired_file_grace_ms);
        if expiry_ms > DAY_MS {
            return Err(format!(
                "stream_workers: 2 × maintenance_interval_ms + expired_file_grace_ms is {expiry_ms} ms; \
                 it must be at most a day ({DAY_MS} ms) so expired files leave the disk within a day"
            ));
        }
        if self.orphan_file_grace_ms < MIN_ORPHAN_GRACE_MS {
            return Err(format!(
                "stream_workers.orphan_file_grace_ms must be at least {MIN_ORPHAN_GRACE_MS} (files being committed are not orphans)"
            ));
        }
        if self.checkpoint_interval == 0 {
            return Err("stream_workers.checkpoint_interval must be at least 1".into());
        }
        if self.compaction_min_files == 0 {
            return Err("stream_workers.compaction_min_files must be at least 1".into());
        }
        if self.compaction_today_min_files < self.compaction_min_files {
            return Err("stream_workers.compaction_today_min_files must be at least compaction_min_files".into());
        }
        if self.compaction_target_file_bytes < 1 << 20 {
            return Err("stream_workers.compaction_target_file_bytes must be at least 1048576 (1 MiB)".into());
        }
        Ok(())
    }

    /// [`StreamWorkersConfig::maintenance_interval_ms`] as a duration.
    pub fn maintenance_interval(&self) -> Duration {
        Duration::from_millis(self.maintenance_interval_ms)
    }
}

const DAY_MS: u64 = 86_400_000;

/// The smallest orphan grace [`StreamWorkersConfig::validate`] accepts.
/// (Tests construct the config directly to go lower.)
const MIN_ORPHAN_GRACE_MS: u64 = 60_000;
