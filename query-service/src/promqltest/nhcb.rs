//! `load_with_nhcb` (FORMAT.md §2.3): the classic histograms of a load
//! block — `<base>_bucket{le=…}`, `<base>_count`, `<base>_sum` series —
//! also as native histograms with custom buckets, named `<base>` without
//! `le`, one per slot where any of its series has a sample. Bounds that
//! parse to the same number (`0.2`, `2e-1`) are one bucket. (Prometheus's
//! converter also refuses non-cumulative buckets and stale markers; the
//! scripts have none.)

use std::collections::BTreeMap;

use super::script::{HistogramLit, SeriesLine, Value};

/// The custom-buckets schema.
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// One classic histogram's series in a block.
#[derive(Default)]
struct Classic<'a> {
    /// (upper bound, cumulative counts per slot).
    buckets: Vec<(f64, &'a [Option<Value>])>,
    count: Option<&'a [Option<Value>]>,
    sum: Option<&'a [Option<Value>]>,
}

/// The native histograms with custom buckets made from `series`' classic
/// histograms.
pub fn convert(series: &[SeriesLine]) -> Vec<SeriesLine> {
    // Grouped by (base name, labels other than `__name__` and `le`).
    let mut classics: BTreeMap<(String, Vec<(String, String)>), Classic<'_>> = BTreeMap::new();
    for s in series {
        let Some(name) = s.labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.as_str()) else { continue };
        let others = || -> Vec<(String, String)> {
            s.labels.iter().filter(|(n, _)| n != "__name__" && n != "le").cloned().collect()
        };
        if let Some(base) = name.strip_suffix("_bucket") {
            let Some(le) = s.labels.iter().find(|(n, _)| n == "le").and_then(|(_, v)| v.parse::<f64>().ok()) else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            classics.entry((base.to_owned(), others())).or_default().buckets.push((le, &s.values));
        } else if let Some(base) = name.strip_suffix("_count") {
            classics.entry((base.to_owned(), others())).or_default().count = Some(&s.values);
        } else if let Some(base) = name.strip_suffix("_sum") {
            classics.entry((base.to_owned(), others())).or_default().sum = Some(&s.values);
        }
    }
    let float = |values: Option<&[Option<Value>]>, k: usize| match values.and_then(|v| v.get(k)) {
        Some(Some(Value::Float(f))) => Some(*f),
        _ => None,
    };
    let mut out = Vec::new();
    for ((base, others), mut classic) in classics {
        classic.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let slots = classic
            .buckets
            .iter()
            .map(|(_, v)| v.len())
            .chain(classic.count.map(<[_]>::len))
            .chain(classic.sum.map(<[_]>::len))
            .max()
            .unwrap_or(0);
        let mut values = Vec::with_capacity(slots);
        for k in 0..slots {
            let mut cumulative: Vec<(f64, f64)> =
                classic.buckets.iter().filter_map(|(le, v)| float(Some(v), k).map(|c| (*le, c))).collect();
            // Equal bounds spelled differently are one bucket.
            cumulative.dedup_by(|later, earlier| later.0 == earlier.0);
            if cumulative.is_empty() && float(classic.count, k).is_none() && float(classic.sum, k).is_none() {
                values.push(None);
                continue;
            }
            let highest = cumulative.last().map_or(0.0, |(_, c)| *c);
            let count = float(classic.count, k).unwrap_or(highest);
            let mut custom_values = Vec::new();
            let mut buckets = Vec::new();
            let mut previous = 0.0;
            for (le, c) in &cumulative {
                if le.is_finite() {
                    custom_values.push(*le);
                }
                buckets.push(c - previous);
                previous = *c;
            }
            if cumulative.last().is_none_or(|(le, _)| le.is_finite()) {
                // The `+Inf` bucket from the total count.
                buckets.push(count - previous);
            }
            values.push(Some(Value::Histogram(HistogramLit {
                schema: CUSTOM_BUCKETS_SCHEMA,
                sum: float(classic.sum, k).unwrap_or(0.0),
                count,
                buckets,
                custom_values,
                ..HistogramLit::default()
            })));
        }
        let mut labels = others;
        labels.push(("__name__".to_owned(), base));
        labels.sort();
        out.push(SeriesLine { labels, values });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(labels: &[(&str, &str)], values: &[Option<f64>]) -> SeriesLine {
        let mut labels: Vec<(String, String)> =
            labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        labels.sort();
        SeriesLine { labels, values: values.iter().map(|v| v.map(Value::Float)).collect() }
    }

    #[test]
    fn classic_buckets_become_custom_buckets() {
        let series = [
            line(&[("__name__", "h_bucket"), ("le", "1"), ("job", "a")], &[Some(1.0), Some(2.0)]),
            line(&[("__name__", "h_bucket"), ("le", "+Inf"), ("job", "a")], &[Some(4.0), Some(6.0)]),
            line(&[("__name__", "h_bucket"), ("le", "0.5"), ("job", "a")], &[Some(0.0), None]),
            line(&[("__name__", "h_count"), ("job", "a")], &[Some(4.0), Some(6.0)]),
            line(&[("__name__", "h_sum"), ("job", "a")], &[Some(3.5), Some(7.0)]),
            // No +Inf bucket: added from the count.
            line(&[("__name__", "g_bucket"), ("le", "10")], &[Some(2.0)]),
            line(&[("__name__", "g_count")], &[Some(5.0)]),
            // A bound that is no number: skipped.
            line(&[("__name__", "x_bucket"), ("le", "big")], &[Some(1.0)]),
            line(&[("__name__", "plain")], &[Some(1.0)]),
            // Equal bounds spelled differently; a summary-like pair.
            line(&[("__name__", "d_bucket"), ("le", "0.2")], &[Some(1.0)]),
            line(&[("__name__", "d_bucket"), ("le", "2e-1")], &[Some(1.0)]),
            line(&[("__name__", "s_count")], &[Some(3.0)]),
            line(&[("__name__", "s_sum")], &[Some(9.0)]),
        ];
        let out = convert(&series);
        assert_eq!(out.len(), 4, "{out:?}");
        let (d, g, h, s) = (&out[0], &out[1], &out[2], &out[3]);
        let Some(Value::Histogram(d0)) = &d.values[0] else { panic!("{d:?}") };
        assert_eq!((d0.custom_values.as_slice(), d0.buckets.as_slice()), (&[0.2][..], &[1.0, 0.0][..]));
        let Some(Value::Histogram(s0)) = &s.values[0] else { panic!("{s:?}") };
        assert_eq!((s0.count, s0.sum, s0.custom_values.len(), s0.buckets.as_slice()), (3.0, 9.0, 0, &[3.0][..]));
        assert_eq!(h.labels, [("__name__".to_owned(), "h".to_owned()), ("job".to_owned(), "a".to_owned())]);
        let Some(Value::Histogram(h0)) = &h.values[0] else { panic!("{h:?}") };
        assert_eq!((h0.schema, h0.count, h0.sum), (-53, 4.0, 3.5));
        assert_eq!(h0.custom_values, [0.5, 1.0]);
        assert_eq!(h0.buckets, [0.0, 1.0, 3.0]);
        let Some(Value::Histogram(h1)) = &h.values[1] else { panic!("{h:?}") };
        assert_eq!(h1.custom_values, [1.0], "the 0.5 bucket has no sample in slot 1");
        assert_eq!(h1.buckets, [2.0, 4.0]);
        let Some(Value::Histogram(g0)) = &g.values[0] else { panic!("{g:?}") };
        assert_eq!((g0.count, g0.custom_values.as_slice(), g0.buckets.as_slice()), (5.0, &[10.0][..], &[2.0, 3.0][..]));
    }
}
