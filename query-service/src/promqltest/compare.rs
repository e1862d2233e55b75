//! Matching a result against an eval's expectations (`FORMAT.md` §4.3).

use schemas::labels::STALE_NAN_BITS;

use super::script::{Eval, EvalKind, Expected, MessageMatch, SeriesLine, Value};
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

fn expected_float(v: &Option<Value>) -> Result<Option<f64>, String> {
    match v {
        None => Ok(None),
        Some(Value::Float(f)) => Ok(Some(*f)),
        Some(Value::Stale) => Ok(Some(f64::from_bits(STALE_NAN_BITS))),
        Some(Value::Histogram(_)) => Err("native histogram expectations are not supported yet".into()),
    }
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
        let want = expected_float(&line.values[0])?.ok_or("expected '_' in an instant result")?;
        let pos = got.iter().position(|s| s.labels == line.labels);
        let Some(pos) = pos else { return Err(format!("missing series {}", fmt_labels(&line.labels))) };
        if ordered && pos != i {
            return Err(format!("series {} at position {pos}, expected {i}", fmt_labels(&line.labels)));
        }
        let v = got[pos].points.first().map(|p| p.1).unwrap_or(f64::NAN);
        if !almost_equal(v, want) {
            return Err(format!("series {}: expected {want}, got {v}", fmt_labels(&line.labels)));
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
            if let Some(f) = expected_float(v)? {
                want.push((start_ms + k as i64 * step_ms, f));
            }
        }
        if want.len() != series.points.len() {
            return Err(format!("series {}: expected {want:?}, got {:?}", fmt_labels(&line.labels), series.points));
        }
        for ((wt, wv), (gt, gv)) in want.iter().zip(&series.points) {
            if wt != gt || !almost_equal(*gv, *wv) {
                return Err(format!("series {}: expected {want:?}, got {:?}", fmt_labels(&line.labels), series.points));
            }
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
