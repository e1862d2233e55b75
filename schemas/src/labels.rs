//! Well-known label names and the series identity.
//!
//! A series is identified everywhere (stream record, log partitioning, lake
//! tables) by [`series_id`], a 64-bit xxh3 hash of its sorted label set. It is
//! defined here once; nothing else hashes labels.

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The bit pattern of Prometheus's staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Separator byte between label names and values in the hash input; 0xff
/// never occurs in valid UTF-8, so distinct label sets give distinct inputs.
const SEPARATOR: u8 = 0xff;

/// The series id of a label set: xxh3-64 over `name 0xff value 0xff` for each
/// label, in the order given (callers pass labels sorted by name).
pub fn series_id<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update(&[SEPARATOR]);
        hasher.update(value.as_bytes());
        hasher.update(&[SEPARATOR]);
    }
    hasher.digest()
}

/// Whether `value` is Prometheus's staleness marker.
pub fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_id_separates_names_from_values() {
        let a = series_id([("ab", "c")]);
        let b = series_id([("a", "bc")]);
        assert_ne!(a, b);
        assert_eq!(a, series_id([("ab", "c")]));
        assert_ne!(series_id([]), series_id([("", "")]));
    }

    #[test]
    fn staleness_marker_is_recognised() {
        assert!(is_stale_marker(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_marker(f64::NAN));
    }
}
