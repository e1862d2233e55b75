//! Per-series deduplication, as Prometheus's head does it.
//!
//! For each series the head remembers its newest accepted timestamp and the
//! samples accepted within the out-of-order window below it. A new sample is:
//!
//! - at a timestamp already accepted with the same value (bitwise, so a NaN
//!   equals itself and a staleness marker equals a staleness marker; for
//!   histograms, the same encoded histogram): dropped silently — a retried
//!   request ([Prometheus `storage.ErrDuplicateSampleForTimestamp` is only
//!   raised for a different value](https://github.com/prometheus/prometheus/blob/v3.5.0/tsdb/head_append.go));
//! - at a timestamp already accepted with another value: dropped, counted
//!   as `duplicate_sample`;
//! - older than the newest by more than the window: dropped, counted as
//!   `out_of_order`;
//! - otherwise accepted.
//!
//! So the lake never receives two samples for one (series, timestamp).
//!
//! Only the window is remembered: with the default window of 0, a retried
//! request's samples older than the series' newest are counted as
//! `out_of_order` rather than dropped silently — what Prometheus's head
//! (`storage.ErrOutOfOrderSample`) and Mimir report for them too. Either
//! way they are not written twice.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// What a sample is, for deciding whether two samples at one timestamp are
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Fingerprint {
    /// A float sample: the value's bits.
    Float(u64),
    /// A native histogram: a hash of its encoding.
    Histogram(u64),
}

impl Fingerprint {
    pub(crate) fn float(value: f64) -> Self {
        Fingerprint::Float(value.to_bits())
    }

    pub(crate) fn histogram(encoded: &[u8]) -> Self {
        // SipHash with fixed keys: deterministic, good enough to tell two
        // histograms at one timestamp apart.
        let mut h = std::hash::DefaultHasher::new();
        encoded.hash(&mut h);
        Fingerprint::Histogram(h.finish())
    }
}

/// The verdict on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: write it.
    Accept,
    /// Same timestamp, same value as an accepted sample: drop silently.
    Duplicate,
    /// Same timestamp, another value: drop and count `duplicate_sample`.
    DuplicateConflict,
    /// Too old: drop and count `out_of_order`.
    OutOfOrder,
}

/// One series' memory of what it accepted: the newest sample inline, and
/// the older ones still inside the out-of-order window in a map that stays
/// empty (allocates nothing) while the window is 0. A one-entry `BTreeMap`
/// per series would cost a ~280-byte node for every active series.
#[derive(Debug)]
struct SeriesHead {
    newest_ms: i64,
    newest: Fingerprint,
    /// Accepted samples below `newest_ms` and at or above `newest_ms - window`.
    older: BTreeMap<i64, Fingerprint>,
}

/// The deduplication state of one partition.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    window_ms: i64,
    series: HashMap<u64, SeriesHead>,
}

impl Dedup {
    /// Dedup with an out-of-order window of `window_ms` (0: none).
    pub(crate) fn new(window_ms: u64) -> Self {
        Self { window_ms: i64::try_from(window_ms).unwrap_or(i64::MAX), series: HashMap::new() }
    }

    /// Changes the out-of-order window (the workspace's limit was changed);
    /// series keep what they remember.
    pub(crate) fn set_window(&mut self, window_ms: u64) {
        self.window_ms = i64::try_from(window_ms).unwrap_or(i64::MAX);
    }

    /// Decides on a sample and, when accepted, remembers it.
    pub(crate) fn offer(&mut self, series_id: u64, timestamp_ms: i64, fingerprint: Fingerprint) -> Verdict {
        let head = match self.series.entry(series_id) {
            Entry::Vacant(v) => {
                v.insert(SeriesHead { newest_ms: timestamp_ms, newest: fingerprint, older: BTreeMap::new() });
                return Verdict::Accept;
            }
            Entry::Occupied(o) => o.into_mut(),
        };
        let existing = if timestamp_ms == head.newest_ms { Some(&head.newest) } else { head.older.get(&timestamp_ms) };
        if let Some(existing) = existing {
            return if *existing == fingerprint { Verdict::Duplicate } else { Verdict::DuplicateConflict };
        }
        if head.newest_ms.saturating_sub(timestamp_ms) > self.window_ms {
            return Verdict::OutOfOrder;
        }
        if timestamp_ms > head.newest_ms {
            let keep_from = timestamp_ms.saturating_sub(self.window_ms);
            if head.newest_ms >= keep_from {
                head.older.insert(head.newest_ms, head.newest);
            }
            if head.older.first_key_value().is_some_and(|(&t, _)| t < keep_from) {
                head.older = head.older.split_off(&keep_from);
            }
            head.newest_ms = timestamp_ms;
            head.newest = fingerprint;
        } else {
            head.older.insert(timestamp_ms, fingerprint);
        }
        Verdict::Accept
    }

    /// The newest accepted timestamp of a series.
    #[cfg(test)]
    pub(crate) fn newest(&self, series_id: u64) -> Option<i64> {
        self.series.get(&series_id).map(|h| h.newest_ms)
    }

    /// Samples remembered below the newest of a series.
    #[cfg(test)]
    fn older_len(&self, series_id: u64) -> usize {
        self.series.get(&series_id).map_or(0, |h| h.older.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::labels::STALE_NAN_BITS;

    fn f(v: f64) -> Fingerprint {
        Fingerprint::float(v)
    }

    #[test]
    fn same_timestamp_same_value_is_silent_other_value_is_counted() {
        let mut d = Dedup::new(0);
        assert_eq!(d.offer(1, 1000, f(1.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 1000, f(1.0)), Verdict::Duplicate);
        assert_eq!(d.offer(1, 1000, f(2.0)), Verdict::DuplicateConflict);
        // NaN equals itself bitwise; the staleness marker is its own value.
        assert_eq!(d.offer(2, 5, f(f64::NAN)), Verdict::Accept);
        assert_eq!(d.offer(2, 5, f(f64::NAN)), Verdict::Duplicate);
        assert_eq!(d.offer(2, 5, f(f64::from_bits(STALE_NAN_BITS))), Verdict::DuplicateConflict);
        // Other series are independent.
        assert_eq!(d.offer(3, 1000, f(2.0)), Verdict::Accept);
    }

    #[test]
    fn without_a_window_any_older_sample_is_out_of_order() {
        let mut d = Dedup::new(0);
        assert_eq!(d.offer(1, 1000, f(1.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 999, f(1.0)), Verdict::OutOfOrder);
        assert_eq!(d.offer(1, 2000, f(1.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 1000, f(1.0)), Verdict::OutOfOrder);
        assert_eq!(d.newest(1), Some(2000));
        // Nothing but the newest sample is remembered without a window.
        assert_eq!(d.older_len(1), 0);
    }

    #[test]
    fn within_the_window_older_samples_are_accepted_once() {
        let mut d = Dedup::new(500);
        assert_eq!(d.offer(1, 10_000, f(1.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 9_600, f(0.5)), Verdict::Accept);
        assert_eq!(d.offer(1, 9_600, f(0.5)), Verdict::Duplicate);
        assert_eq!(d.offer(1, 9_600, f(0.7)), Verdict::DuplicateConflict);
        assert_eq!(d.offer(1, 9_500, f(0.5)), Verdict::Accept);
        assert_eq!(d.offer(1, 9_499, f(0.5)), Verdict::OutOfOrder);
        // Moving the newest forward forgets what fell out of the window...
        assert_eq!(d.offer(1, 10_200, f(2.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 9_600, f(0.5)), Verdict::OutOfOrder);
        // ...but still knows what is inside it.
        assert_eq!(d.offer(1, 10_000, f(1.0)), Verdict::Duplicate);
        assert_eq!(d.newest(1), Some(10_200));
        // 10_000 and 9_700.. are inside [10_200 - 500, 10_200): only 10_000 was accepted there.
        assert_eq!(d.older_len(1), 1);
        // A newest sample exactly at the window's edge stays remembered.
        assert_eq!(d.offer(1, 10_700, f(3.0)), Verdict::Accept);
        assert_eq!(d.offer(1, 10_200, f(2.0)), Verdict::Duplicate);
        assert_eq!(d.offer(1, 10_199, f(2.0)), Verdict::OutOfOrder);
    }

    #[test]
    fn histograms_compare_by_encoding() {
        let mut d = Dedup::new(0);
        assert_eq!(d.offer(1, 1, Fingerprint::histogram(b"a")), Verdict::Accept);
        assert_eq!(d.offer(1, 1, Fingerprint::histogram(b"a")), Verdict::Duplicate);
        assert_eq!(d.offer(1, 1, Fingerprint::histogram(b"b")), Verdict::DuplicateConflict);
        assert_eq!(d.offer(1, 1, f(1.0)), Verdict::DuplicateConflict);
    }
}
