//! Matching a result against an eval's expectations (`FORMAT.md` §4.3).

use schemas::labels::STALE_NAN_BITS;

use super::script::{Eval, EvalKind, Expected, MessageMatch, SeriesLine, Value};
use crate::engine::histogram::FloatHistogram;
use crate::engine::{Annotations, QueryError, QueryValue, Series};

/// Prometheus's `almost.Equal` with the test's 1e-6 tolerance.
pub fn almost_equal(a: f64, b: f64) -> bool {
    let stale = |v: f64| v.to_bits() == STALE_NAN_BITS;
    if stale(a) || stale(b) {
        return stale(a) && stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    crate::engine::vector_fns::almost_equal(a, b, 1e-6)
}

fn fmt_labels(l: &[(String, String)]) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// An expected or computed sample value.
#[derive(Debug, Clone)]
enum Sample {
    Float(f64),
    Histogram(FloatHistogram),
}

impl Sample {
    fn matches(&self, other: &Sample) -> bool {
        match (self, other) {
            (Sample::Float(a), Sample::Float(b)) => almost_equal(*a, *b),
            (Sample::Histogram(a), Sample::Histogram(b)) => histograms_match(a, b),
            _ => false,
        }
    }
}

fn expected_sample(v: &Option<Value>) -> Option<Sample> {
    match v {
        None => None,
        Some(Value::Float(f)) => Some(Sample::Float(*f)),
        Some(Value::Stale) => Some(Sample::Float(f64::from_bits(STALE_NAN_BITS))),
        Some(Value::Histogram(h)) => Some(
            FloatHistogram::from_proto(&super::stream_histogram(h, 0))
                .map_or(Sample::Float(f64::NAN), Sample::Histogram),
        ),
    }
}

/// Prometheus's `compareNativeHistogram` (of compacted histograms): the
/// same schema, zero threshold and custom bounds, counts and sum within
/// the tolerance, and the same non-empty buckets.
fn histograms_match(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let non_empty = |v: &[(i32, f64)]| v.iter().filter(|(_, c)| *c != 0.0).copied().collect::<Vec<_>>();
    let buckets = |x: &[(i32, f64)], y: &[(i32, f64)]| {
        let (x, y) = (non_empty(x), non_empty(y));
        x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| p.0 == q.0 && almost_equal(p.1, q.1))
    };
    a.schema == b.schema
        && almost_equal(a.count, b.count)
        && almost_equal(a.sum, b.sum)
        && (!a.uses_custom_buckets() || a.custom_values == b.custom_values)
        && a.zero_threshold == b.zero_threshold
        && almost_equal(a.zero_count, b.zero_count)
        && buckets(&a.positive, &b.positive)
        && buckets(&a.negative, &b.negative)
}

/// A result series' samples in time order.
fn samples_of(s: &Series) -> Vec<(i64, Sample)> {
    let mut out: Vec<(i64, Sample)> = s.points.iter().map(|(t, v)| (*t, Sample::Float(*v))).collect();
    out.extend(s.histograms.iter().map(|(t, h)| (*t, Sample::Histogram(h.clone()))));
    out.sort_by_key(|p| p.0);
    out
}

/// Checks a result; `Err` says why it does not match.
pub fn check(eval: &Eval, result: Result<(QueryValue, Annotations), QueryError>) -> Result<(), String> {
    if let Some(fail) = &eval.fail {
        return match result {
            // Failing for lack of a feature is not the failure expected.
            Err(QueryError::Unsupported(what)) => Err(format!("not supported yet: {what}")),
            Err(e) if fail.matches(&e.to_string()) => Ok(()),
            Err(e) => Err(format!("failed with {e:?}, but not with the expected message")),
            Ok(v) => Err(format!("expected a failure, got {v:?}")),
        };
    }
    let (value, annotations) = result.map_err(|e| format!("error: {e}"))?;
    check_annotations("warning", eval.warn.as_deref(), &annotations.warnings)?;
    check_annotations("info", eval.info.as_deref(), &annotations.infos)?;
    match (&eval.expected, eval.kind) {
        (Expected::Scalar(want), _) => match value {
            QueryValue::Scalar(_, got) if almost_equal(got, *want) => Ok(()),
            other => Err(format!("expected scalar {want}, got {other:?}")),
        },
        (Expected::String(want), _) => match value {
            QueryValue::String(_, got) if got == *want => Ok(()),
            other => Err(format!("expected string {want:?}, got {other:?}")),
        },
        (Expected::RangeVector { start_ms, step_ms, series, .. }, _) => match value {
            QueryValue::Matrix(got) => match_matrix(&got, series, *start_ms, *step_ms),
            other => Err(format!("expected a range vector, got {other:?}")),
        },
        (Expected::Series(lines), EvalKind::Instant { .. }) => match value {
            QueryValue::Vector(got) => match_vector(&got, lines, eval.ordered),
            QueryValue::Matrix(got) if lines.is_empty() && got.is_empty() => Ok(()),
            other => Err(format!("expected an instant vector, got {other:?}")),
        },
        (Expected::Series(lines), EvalKind::Range { start_ms, step_ms, .. }) => match value {
            QueryValue::Matrix(got) => match_matrix(&got, lines, start_ms, step_ms),
            other => Err(format!("expected a matrix, got {other:?}")),
        },
    }
}

/// `FORMAT.md` §4.3: unchecked without lines; none for `no_*`; otherwise
/// every line matches some annotation and every annotation some line.
fn check_annotations(
    kind: &str,
    want: Option<&[MessageMatch]>,
    got: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let Some(want) = want else { return Ok(()) };
    if want.is_empty() {
        return match got.first() {
            Some(g) => Err(format!("expected no {kind} annotation, got {g:?}")),
            None => Ok(()),
        };
    }
    if got.is_empty() {
        return Err(format!("expected a {kind} annotation, got none"));
    }
    if let Some(w) = want.iter().find(|w| !got.iter().any(|g| w.matches(g))) {
        return Err(format!("expected a {kind} annotation matching {w:?}, got {got:?}"));
    }
    if let Some(g) = got.iter().find(|g| !want.iter().any(|w| w.matches(g))) {
        return Err(format!("unexpected {kind} annotation {g:?}"));
    }
    Ok(())
}

fn match_vector(got: &[Series], lines: &[SeriesLine], ordered: bool) -> Result<(), String> {
    if got.len() != lines.len() {
        let g: Vec<String> = got.iter().map(|s| format!("{} {:?}", fmt_labels(&s.labels), s.points)).collect();
        return Err(format!("expected {} series, got {}: {}", lines.len(), got.len(), g.join("; ")));
    }
    for (i, line) in lines.iter().enumerate() {
        if line.values.len() != 1 {
            return Err(format!(
                "expected line {} has {} values for an instant query",
                fmt_labels(&line.labels),
                line.values.len()
            ));
        }
        let want = expected_sample(&line.values[0]).ok_or("expected '_' in an instant result")?;
        let pos = got.iter().position(|s| s.labels == line.labels);
        let Some(pos) = pos else { return Err(format!("missing series {}", fmt_labels(&line.labels))) };
        if ordered && pos != i {
            return Err(format!("series {} at position {pos}, expected {i}", fmt_labels(&line.labels)));
        }
        let v = samples_of(&got[pos]).into_iter().next().map_or(Sample::Float(f64::NAN), |p| p.1);
        if !want.matches(&v) {
            return Err(format!("series {}: expected {want:?}, got {v:?}", fmt_labels(&line.labels)));
        }
    }
    Ok(())
}

fn match_matrix(got: &[Series], lines: &[SeriesLine], start_ms: i64, step_ms: i64) -> Result<(), String> {
    if got.windows(2).any(|w| w[0].labels >= w[1].labels) {
        return Err("matrix not sorted by labels".into());
    }
    if got.len() != lines.len() {
        let g: Vec<String> = got.iter().map(|s| fmt_labels(&s.labels)).collect();
        return Err(format!("expected {} series, got {}: {}", lines.len(), got.len(), g.join(", ")));
    }
    for line in lines {
        let Some(series) = got.iter().find(|s| s.labels == line.labels) else {
            return Err(format!("missing series {}", fmt_labels(&line.labels)));
        };
        let mut want = Vec::new();
        for (k, v) in line.values.iter().enumerate() {
            if let Some(f) = expected_sample(v) {
                want.push((start_ms + k as i64 * step_ms, f));
            }
        }
        let got = samples_of(series);
        if want.len() != got.len() || want.iter().zip(&got).any(|((wt, wv), (gt, gv))| wt != gt || !wv.matches(gv)) {
            return Err(format!("series {}: expected {want:?}, got {got:?}", fmt_labels(&line.labels)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_tolerance_and_stale_markers() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        let stale = f64::from_bits(STALE_NAN_BITS);
        assert!(!almost_equal(stale, f64::NAN));
        assert!(almost_equal(stale, stale));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
    }
}
