//! A series' label set as one Arrow `Binary` value, so plans group, join and
//! sort series with DataFusion's own operators: the pairs sorted by name,
//! each `name 0xFE value 0xFF`. The bytes 0xFE and 0xFF never occur in
//! UTF-8, so the encoding is unambiguous: equal label sets, and only they,
//! have equal bytes. (Its byte order is not Prometheus's label order — a
//! value's end sorts after every character — so results are sorted on the
//! decoded pairs.)

use std::sync::Arc;

/// The byte after a name.
const NAME_END: u8 = 0xFE;
/// The byte after a value.
const VALUE_END: u8 = 0xFF;

/// The metric name label.
pub const METRIC_NAME: &str = "__name__";

/// The upper-bound label of a classic histogram's buckets.
pub const BUCKET_LABEL: &str = "le";

/// Encodes pairs sorted by name.
pub fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(NAME_END);
        out.extend_from_slice(v.as_bytes());
        out.push(VALUE_END);
    }
    out
}

/// Iterates the (name, value) pairs of an encoded label set (not the
/// delayed-name-removal [mark](mark)).
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    unmarked(bytes).split(|b| *b == VALUE_END).filter(|p| !p.is_empty()).filter_map(|pair| {
        let i = pair.iter().position(|b| *b == NAME_END)?;
        Some((std::str::from_utf8(&pair[..i]).ok()?, std::str::from_utf8(&pair[i + 1..]).ok()?))
    })
}

/// How an operation that drops the metric name drops it.
///
/// Prometheus drops `__name__` (and `__type__`, `__unit__`) where the
/// operation happens; with delayed name removal (an engine option, on in
/// Prometheus's conformance harness) it only flags the series and drops
/// them from the final result, so that later operations still see the
/// name (`label_replace(rate(x[5m]), "n", "$1", "__name__", "(.+)")`) and
/// matching and grouping see the type and unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameDrop {
    /// Drop at once (Prometheus's default).
    #[default]
    Now,
    /// Flag, drop from the final result ([`cleanup`]).
    Delayed,
}

/// The flag of delayed name removal: a pair with an empty name (which no
/// label has) at the start of the encoding. [`iter`] and [`decode`] skip
/// it, [`keep`] and [`drop`] (matching and grouping keys) leave it out.
const MARK: [u8; 2] = [NAME_END, VALUE_END];

/// Whether the set is flagged for delayed name removal.
pub fn is_marked(bytes: &[u8]) -> bool {
    bytes.starts_with(&MARK)
}

/// The set without its flag.
pub fn unmarked(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(&MARK).unwrap_or(bytes)
}

/// The set flagged for delayed name removal (unchanged when it has no
/// metadata label: there would be nothing to drop).
pub fn mark(bytes: &[u8]) -> Vec<u8> {
    if is_marked(bytes) || !iter(bytes).any(|(n, _)| is_metadata_label(n)) {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len() + MARK.len());
    out.extend_from_slice(&MARK);
    out.extend_from_slice(bytes);
    out
}

/// `derived` flagged if `source` was (an aggregation's group labels, a
/// relabelled set).
pub fn mark_as(source: &[u8], derived: Vec<u8>) -> Vec<u8> {
    if is_marked(source) { mark(&derived) } else { derived }
}

/// Drops the name now or flags it, as `mode` says.
pub fn drop_name_as(bytes: &[u8], mode: NameDrop) -> Vec<u8> {
    match mode {
        NameDrop::Now => drop_name(bytes),
        NameDrop::Delayed => mark(bytes),
    }
}

/// A final result's labels: a flagged set loses `__name__`, `__type__` and
/// `__unit__` (and its flag).
pub fn cleanup(bytes: &[u8]) -> Vec<(String, String)> {
    let marked = is_marked(bytes);
    iter(bytes).filter(|(n, _)| !(marked && is_metadata_label(n))).map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
}

/// Decodes into owned pairs.
pub fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    iter(bytes).map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
}

/// The value of one label, if present.
pub fn get<'a>(bytes: &'a [u8], name: &str) -> Option<&'a str> {
    iter(bytes).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Keeps only the named labels (`by`, `on`).
pub fn keep(bytes: &[u8], names: &[String]) -> Vec<u8> {
    filter(bytes, |n| names.iter().any(|k| k == n))
}

/// Drops the named labels (`without`, `ignoring`).
pub fn drop(bytes: &[u8], names: &[String]) -> Vec<u8> {
    filter(bytes, |n| !names.iter().any(|k| k == n))
}

/// The labels Prometheus treats as part of a metric's name: `__name__` and
/// the type-and-unit labels `__type__` and `__unit__`. Every operation that
/// drops the name drops all three (as Prometheus 3.5's
/// `DropReserved(schema.IsMetadataLabel)` does, whether or not the
/// type-and-unit feature is on).
pub fn is_metadata_label(name: &str) -> bool {
    matches!(name, METRIC_NAME | "__type__" | "__unit__")
}

/// Drops `__name__`, `__type__` and `__unit__`.
pub fn drop_name(bytes: &[u8]) -> Vec<u8> {
    filter(bytes, |n| !is_metadata_label(n))
}

/// The pairs whose names `keep` accepts, without the flag.
fn filter(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for pair in unmarked(bytes).split(|b| *b == VALUE_END).filter(|p| !p.is_empty()) {
        let Some(i) = pair.iter().position(|b| *b == NAME_END) else { continue };
        if std::str::from_utf8(&pair[..i]).is_ok_and(&keep) {
            out.extend_from_slice(pair);
            out.push(VALUE_END);
        }
    }
    out
}

/// Sets (or with an empty value, removes) one label; the flag stays.
pub fn set(bytes: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> = decode(bytes).into_iter().filter(|(n, _)| n != name).collect();
    if !value.is_empty() {
        pairs.push((name.to_owned(), value.to_owned()));
        pairs.sort();
    }
    mark_as(bytes, encode(&pairs))
}

/// Encodes a shared label set from the read seam.
pub fn encode_shared(labels: &Arc<[(String, String)]>) -> Vec<u8> {
    encode(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn round_trip_and_edits() {
        let l = pairs(&[("__name__", "up"), ("instance", "a:1"), ("job", "x=y\n")]);
        let e = encode(&l);
        assert_eq!(decode(&e), l);
        assert_eq!(get(&e, "job"), Some("x=y\n"));
        assert_eq!(decode(&keep(&e, &["job".into()])), pairs(&[("job", "x=y\n")]));
        assert_eq!(decode(&drop(&e, &["job".into()])), pairs(&[("__name__", "up"), ("instance", "a:1")]));
        assert_eq!(decode(&drop_name(&e)), pairs(&[("instance", "a:1"), ("job", "x=y\n")]));
        assert_eq!(decode(&set(&e, "a", "b"))[0], ("__name__".into(), "up".into()));
        // The delayed-name-removal flag: invisible to decode, left out of
        // keys, kept by set, honoured by cleanup.
        let m = mark(&e);
        assert!(is_marked(&m) && !is_marked(&e));
        assert_eq!(decode(&m), decode(&e));
        assert_eq!(keep(&m, &["job".into()]), keep(&e, &["job".into()]));
        assert_eq!(drop(&m, &["job".into()]), drop(&e, &["job".into()]));
        assert!(is_marked(&set(&m, "a", "b")));
        assert_eq!(cleanup(&m), pairs(&[("instance", "a:1"), ("job", "x=y\n")]));
        assert_eq!(cleanup(&e), decode(&e));
        // Nothing to drop, nothing to flag.
        assert!(!is_marked(&mark(&drop_name(&e))));
        assert_eq!(drop_name_as(&e, NameDrop::Delayed), m);
        assert_eq!(drop_name_as(&e, NameDrop::Now), drop_name(&e));
        assert_eq!(get(&set(&e, "a", "b"), "a"), Some("b"));
        assert_eq!(get(&set(&e, "job", ""), "job"), None);
        assert!(encode(&[]).is_empty());
    }
}
