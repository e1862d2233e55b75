//! The embedded log's settings.

use std::time::Duration;

/// Settings of an [`EmbeddedLog`](crate::EmbeddedLog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedLogConfig {
    /// Size in bytes after which a partition's active segment is sealed and a
    /// new one started (a batch never spans two segments, so a segment can
    /// exceed this by one batch). Retention deletes, and compaction rewrites,
    /// whole sealed segments. Default 64 MiB.
    pub segment_bytes: u64,
    /// Largest accepted record, encoded (key, value and 33 bytes of framing);
    /// larger ones fail with `LogError::RecordTooLarge`. At most 4 GiB − 1.
    /// Default 64 MiB.
    pub max_record_bytes: usize,
    /// How long compaction keeps a tombstone (a record whose value is `None`),
    /// by the record's timestamp, so consumers can see the deletion. Default 24 h.
    pub compacted_tombstone_retention: Duration,
}

impl Default for EmbeddedLogConfig {
    fn default() -> Self {
        EmbeddedLogConfig {
            segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 64 * 1024 * 1024,
            compacted_tombstone_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}
