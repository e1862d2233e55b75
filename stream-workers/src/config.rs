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
    /// Largest fetch from the log, bytes. Default 4 MiB.
    pub fetch_max_bytes: usize,
    /// How long a fetch waits for new records when none is available,
    /// milliseconds. Also bounds how late an age-based flush can be. Default 250.
    pub fetch_max_wait_ms: u64,
    /// Out-of-order window, milliseconds: a sample older than its series'
    /// newest accepted sample by at most this much is accepted; older ones are
    /// dropped and counted (`out_of_order`). Default 0 (Prometheus's default:
    /// any older sample is dropped). Applies to every workspace until the
    /// per-workspace setting moves to `common::limits`.
    pub out_of_order_window_ms: u64,
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
}

impl Default for StreamWorkersConfig {
    fn default() -> Self {
        Self {
            flush_max_samples: 500_000,
            flush_interval_ms: 5_000,
            fetch_max_bytes: 4 << 20,
            fetch_max_wait_ms: 250,
            out_of_order_window_ms: 0,
            dedup_horizon_ms: 600_000,
            series_refresh_ms: 3_600_000,
            retry_backoff_ms: 1_000,
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
        Ok(())
    }
}
