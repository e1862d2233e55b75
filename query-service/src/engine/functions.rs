//! PromQL's range functions over one series' samples in one window, as
//! Prometheus 3.5 computes them (`promql/functions.go`): the window is
//! `(t − range, t]`, staleness markers already removed.

use super::histogram::{FloatHistogram, Incompatible};
use super::vector_fns::F64;
use schemas::stream::histogram::ResetHint;

/// A function of a range vector, evaluated per series and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RangeFn {
    /// `rate`
    Rate,
    /// `increase`
    Increase,
    /// `delta`
    Delta,
    /// `irate`
    Irate,
    /// `idelta`
    Idelta,
    /// `deriv`
    Deriv,
    /// `changes`
    Changes,
    /// `resets`
    Resets,
    /// `avg_over_time`
    AvgOverTime,
    /// `sum_over_time`
    SumOverTime,
    /// `count_over_time`
    CountOverTime,
    /// `min_over_time`
    MinOverTime,
    /// `max_over_time`
    MaxOverTime,
    /// `last_over_time`
    LastOverTime,
    /// `present_over_time`
    PresentOverTime,
    /// `stddev_over_time`
    StddevOverTime,
    /// `stdvar_over_time`
    StdvarOverTime,
    /// `mad_over_time`
    MadOverTime,
    /// `ts_of_min_over_time`
    TsOfMinOverTime,
    /// `ts_of_max_over_time`
    TsOfMaxOverTime,
    /// `ts_of_last_over_time`
    TsOfLastOverTime,
    /// `predict_linear(v, t)`: `t` seconds after the step.
    PredictLinear(F64),
    /// `quantile_over_time(φ, v)`.
    QuantileOverTime(F64),
    /// `double_exponential_smoothing(v, sf, tf)`.
    DoubleExponentialSmoothing(F64, F64),
}

impl RangeFn {
    /// The function of a PromQL name taking only a range vector.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "deriv" => RangeFn::Deriv,
            "changes" => RangeFn::Changes,
            "resets" => RangeFn::Resets,
            "avg_over_time" => RangeFn::AvgOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "mad_over_time" => RangeFn::MadOverTime,
            "ts_of_min_over_time" => RangeFn::TsOfMinOverTime,
            "ts_of_max_over_time" => RangeFn::TsOfMaxOverTime,
            "ts_of_last_over_time" => RangeFn::TsOfLastOverTime,
            _ => return None,
        })
    }

    /// Whether the result keeps the metric name (`last_over_time` and the
    /// selectors of `*_over_time` that return samples unchanged keep it in
    /// Prometheus 3: only `last_over_time` among these).
    pub fn keeps_name(self) -> bool {
        matches!(self, RangeFn::LastOverTime)
    }

    /// The annotation Prometheus gives for a series this function produced
    /// values of: an info for `rate` and `increase` of a metric whose name is
    /// not a counter's, a warning for `quantile_over_time` with φ outside
    /// [0, 1]. `(is_warning, message)`.
    pub fn annotation(self, labels: &[u8]) -> Option<(bool, String)> {
        if let RangeFn::QuantileOverTime(q) = self {
            let q = q.get();
            return (!(0.0..=1.0).contains(&q)).then(|| (true, super::vector_fns::invalid_quantile(q)));
        }
        if !matches!(self, RangeFn::Rate | RangeFn::Increase) {
            return None;
        }
        let name = super::labels::get(labels, super::labels::METRIC_NAME)?;
        let counter = ["_total", "_sum", "_count", "_bucket"].iter().any(|s| name.ends_with(s));
        (!name.is_empty() && !counter).then(|| {
            (
                false,
                format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"
                ),
            )
        })
    }

    /// Evaluates a window that also holds native histogram samples (their
    /// times `hist_ts`, and the histograms `hist` — `None`: one that does
    /// not decode —, in time order; `ts`/`vs`
    /// are the floats), as Prometheus does for floats: a function of floats
    /// drops a mixed window with a warning or ignores the histograms with an
    /// info, `count_over_time` and the like count both. A window of
    /// histograms only gives nothing yet (the engine does not evaluate
    /// histogram values). Returns the value and the annotation
    /// `(is_warning, message)`; `name` is the series' metric name.
    #[allow(clippy::too_many_arguments)]
    pub fn eval_with_histograms(
        self,
        ts: &[i64],
        vs: &[f64],
        hist_ts: &[i64],
        hist: &[Option<&FloatHistogram>],
        t_ms: i64,
        range_ms: i64,
        step_ms: i64,
        name: &str,
    ) -> (Option<f64>, Option<(bool, String)>) {
        if hist_ts.is_empty() {
            return (self.eval(ts, vs, t_ms, range_ms, step_ms), None);
        }
        let (nf, nh) = (vs.len(), hist_ts.len());
        let mixed = || {
            Some((true, format!("PromQL warning: encountered a mix of histograms and floats for metric name {name:?}")))
        };
        let ignored = || {
            Some((
                false,
                format!(
                    "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {name:?}"
                ),
            ))
        };
        let last_is_float = ts.last().is_some_and(|t| Some(t) > hist_ts.last());
        match self {
            RangeFn::CountOverTime => (Some((nf + nh) as f64), None),
            RangeFn::PresentOverTime => (Some(1.0), None),
            RangeFn::LastOverTime => (if last_is_float { vs.last().copied() } else { None }, None),
            RangeFn::TsOfLastOverTime => {
                let last = ts.last().copied().unwrap_or(i64::MIN).max(hist_ts[nh - 1]);
                (Some(last as f64 / 1000.0), None)
            }
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta | RangeFn::SumOverTime | RangeFn::AvgOverTime => {
                (None, if nf > 0 { mixed() } else { None })
            }
            RangeFn::Irate | RangeFn::Idelta => {
                // The window's last two samples.
                if nf + nh < 2 {
                    return (None, None);
                }
                let mut tail: Vec<(i64, bool)> = ts[nf.saturating_sub(2)..]
                    .iter()
                    .map(|t| (*t, false))
                    .chain(hist_ts[nh.saturating_sub(2)..].iter().map(|t| (*t, true)))
                    .collect();
                tail.sort_unstable();
                match (tail[tail.len() - 2].1, tail[tail.len() - 1].1) {
                    (false, false) => (self.eval(ts, vs, t_ms, range_ms, step_ms), None),
                    (true, true) => (None, None),
                    _ => (None, mixed()),
                }
            }
            RangeFn::Changes | RangeFn::Resets => {
                // Float to histogram and back is a change and a reset; two
                // histograms are compared as Prometheus does.
                let mut merged: Vec<(i64, Result<f64, Option<&FloatHistogram>>)> =
                    ts.iter().copied().zip(vs.iter().map(|v| Ok(*v))).collect();
                merged.extend(hist_ts.iter().copied().zip(hist.iter().map(|h| Err(*h))));
                merged.sort_by_key(|m| m.0);
                let counted = merged
                    .windows(2)
                    .filter(|w| match (&w[0].1, &w[1].1, self) {
                        (Ok(a), Ok(b), RangeFn::Changes) => a != b && !(a.is_nan() && b.is_nan()),
                        (Ok(a), Ok(b), _) => b < a,
                        (Err(Some(a)), Err(Some(b)), RangeFn::Changes) => !b.same_as(a),
                        (Err(Some(a)), Err(Some(b)), _) => b.is_reset_after(a),
                        (Err(_), Err(_), _) => false,
                        _ => true,
                    })
                    .count();
                (Some(counted as f64), None)
            }
            RangeFn::MinOverTime
            | RangeFn::MaxOverTime
            | RangeFn::TsOfMinOverTime
            | RangeFn::TsOfMaxOverTime
            | RangeFn::StddevOverTime
            | RangeFn::StdvarOverTime
            | RangeFn::MadOverTime
            | RangeFn::QuantileOverTime(_) => {
                if nf == 0 {
                    return (None, None);
                }
                (self.eval(ts, vs, t_ms, range_ms, step_ms), ignored())
            }
            RangeFn::Deriv | RangeFn::PredictLinear(_) | RangeFn::DoubleExponentialSmoothing(..) => match nf {
                0 => (None, None),
                1 => (None, ignored()),
                _ => (self.eval(ts, vs, t_ms, range_ms, step_ms), ignored()),
            },
        }
    }

    /// Evaluates over `ts`/`vs` (the window's samples, in time order) for
    /// the window `(t_ms − range_ms, t_ms]` (`t_ms` shifted by offset and
    /// `@`) of the step `step_ms`.
    pub fn eval(self, ts: &[i64], vs: &[f64], t_ms: i64, range_ms: i64, step_ms: i64) -> Option<f64> {
        let n = vs.len();
        if n == 0 {
            return None;
        }
        match self {
            RangeFn::Rate => extrapolated(ts, vs, t_ms, range_ms, true, true),
            RangeFn::Increase => extrapolated(ts, vs, t_ms, range_ms, true, false),
            RangeFn::Delta => extrapolated(ts, vs, t_ms, range_ms, false, false),
            RangeFn::Irate => instant(ts, vs, true),
            RangeFn::Idelta => instant(ts, vs, false),
            RangeFn::Deriv => {
                if n < 2 {
                    return None;
                }
                Some(linear_regression(ts, vs, ts[0]).0)
            }
            RangeFn::Changes => {
                Some(vs.windows(2).filter(|w| w[0] != w[1] && !(w[0].is_nan() && w[1].is_nan())).count() as f64)
            }
            RangeFn::Resets => Some(vs.windows(2).filter(|w| w[1] < w[0]).count() as f64),
            RangeFn::AvgOverTime => Some(avg(vs)),
            RangeFn::SumOverTime => Some(kahan_sum(vs.iter().copied())),
            RangeFn::CountOverTime => Some(n as f64),
            RangeFn::MinOverTime => {
                Some(vs.iter().copied().fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }))
            }
            RangeFn::MaxOverTime => {
                Some(vs.iter().copied().fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }))
            }
            RangeFn::LastOverTime => vs.last().copied(),
            RangeFn::PresentOverTime => Some(1.0),
            RangeFn::StdvarOverTime => Some(variance(vs)),
            RangeFn::StddevOverTime => Some(variance(vs).sqrt()),
            RangeFn::MadOverTime => {
                let median = quantile(0.5, vs.to_vec());
                let deviations: Vec<f64> = vs.iter().map(|v| (v - median).abs()).collect();
                Some(quantile(0.5, deviations))
            }
            RangeFn::TsOfMinOverTime => {
                let mut best: Option<(f64, i64)> = None;
                for (&t, &v) in ts.iter().zip(vs) {
                    if best.is_none_or(|(m, _)| v <= m || m.is_nan()) {
                        best = Some((v, t));
                    }
                }
                best.map(|(_, t)| t as f64 / 1000.0)
            }
            RangeFn::TsOfMaxOverTime => {
                let mut best: Option<(f64, i64)> = None;
                for (&t, &v) in ts.iter().zip(vs) {
                    if best.is_none_or(|(m, _)| v >= m || m.is_nan()) {
                        best = Some((v, t));
                    }
                }
                best.map(|(_, t)| t as f64 / 1000.0)
            }
            RangeFn::TsOfLastOverTime => ts.last().map(|t| *t as f64 / 1000.0),
            RangeFn::PredictLinear(duration) => {
                if n < 2 {
                    return None;
                }
                let (slope, intercept) = linear_regression(ts, vs, step_ms);
                Some(slope * duration.get() + intercept)
            }
            RangeFn::QuantileOverTime(q) => Some(quantile(q.get(), vs.to_vec())),
            RangeFn::DoubleExponentialSmoothing(sf, tf) => {
                if n < 2 {
                    return None;
                }
                let (sf, tf) = (sf.get(), tf.get());
                let (mut s0, mut s1, mut b) = (0.0, vs[0], vs[1] - vs[0]);
                for (i, v) in vs.iter().enumerate().skip(1) {
                    let x = sf * v;
                    if i > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let y = (1.0 - sf) * (s1 + b);
                    (s0, s1) = (s1, x + y);
                }
                Some(s1)
            }
        }
    }
}

/// `rate`, `increase` and `delta`: the increase within the window,
/// extrapolated towards its edges as Prometheus does.
fn extrapolated(ts: &[i64], vs: &[f64], t_ms: i64, range_ms: i64, counter: bool, rate: bool) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let (first_t, last_t) = (ts[0], ts[n - 1]);
    let mut result = vs[n - 1] - vs[0];
    if counter {
        let mut prev = vs[0];
        for &v in &vs[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    // Counters cannot go below zero: the extrapolation to the start stops
    // where the counter would have been zero.
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let to_zero = (counter && result > 0.0 && vs[0] >= 0.0).then(|| sampled * (vs[0] / result));
    Some(result * extrapolation_factor(first_t, last_t, n, t_ms, range_ms, rate, to_zero))
}

/// Prometheus's extrapolation of `rate`/`increase`/`delta` of `n` samples
/// from `first_t` to `last_t` in the window ending at `t_ms`: the factor the
/// difference is multiplied by. `to_zero`: seconds before the first sample
/// at which a counter would have been zero (floats only), a bound on the
/// extrapolation to the window's start.
fn extrapolation_factor(
    first_t: i64,
    last_t: i64,
    n: usize,
    t_ms: i64,
    range_ms: i64,
    rate: bool,
    to_zero: Option<f64>,
) -> f64 {
    let range_start = t_ms - range_ms;
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (t_ms - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (n - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if let Some(to_zero) = to_zero
        && to_zero < to_start
    {
        to_start = to_zero;
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range_ms as f64 / 1000.0;
    }
    factor
}

/// Prometheus's texts of the histogram warnings.
pub(crate) fn incompatible(e: Incompatible, name: &str) -> (bool, String) {
    let text = match e {
        Incompatible::Schema => {
            "vector contains a mix of histograms with exponential and custom buckets schemas for metric name"
        }
        Incompatible::Bounds => "vector contains histograms with incompatible custom buckets for metric name",
    };
    (true, format!("PromQL warning: {text} {name:?}"))
}

impl RangeFn {
    /// Evaluates a window of native histograms only (`ts` their times):
    /// the histogram result of `rate`, `increase`, `delta`, `irate`,
    /// `idelta`, `sum_over_time`, `avg_over_time` and `last_over_time`, as
    /// Prometheus computes it (counter resets, the coarsest schema,
    /// extrapolation), with its warnings; `None` for the other functions.
    pub fn eval_histograms(
        self,
        ts: &[i64],
        hs: &[&FloatHistogram],
        t_ms: i64,
        range_ms: i64,
        name: &str,
    ) -> (Option<FloatHistogram>, Vec<(bool, String)>) {
        let n = hs.len();
        let mut notes = Vec::new();
        if n == 0 {
            return (None, notes);
        }
        let not_counter = || (true, format!("PromQL warning: this native histogram metric is not a counter: {name:?}"));
        let not_gauge = || (true, format!("PromQL warning: this native histogram metric is not a gauge: {name:?}"));
        let gauge = |h: &FloatHistogram| h.reset_hint == ResetHint::Gauge;
        let mut result = match self {
            RangeFn::LastOverTime => hs[n - 1].clone(),
            RangeFn::SumOverTime | RangeFn::AvgOverTime => {
                let mut acc = hs[0].clone();
                for h in &hs[1..] {
                    if let Err(e) = acc.add(h) {
                        return (None, vec![incompatible(e, name)]);
                    }
                }
                if self == RangeFn::AvgOverTime {
                    acc.mul(1.0 / n as f64);
                }
                acc
            }
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta => {
                if n < 2 {
                    return (None, notes);
                }
                let counter = self != RangeFn::Delta;
                if counter && (gauge(hs[0]) || hs.iter().any(|h| gauge(h))) {
                    notes.push(not_counter());
                }
                // A reset between the first and second sample: the first
                // counts as empty, its layout (exponential or custom
                // buckets) no longer matters.
                let mut prev = if counter && hs[1].is_reset_after(hs[0]) {
                    FloatHistogram::empty_like(hs[1])
                } else {
                    hs[0].clone()
                };
                let custom = prev.uses_custom_buckets();
                let mut min_schema = prev.schema.min(hs[n - 1].schema);
                if hs[n - 1].uses_custom_buckets() != custom {
                    return (None, vec![incompatible(Incompatible::Schema, name)]);
                }
                if counter {
                    for h in &hs[1..n - 1] {
                        if h.uses_custom_buckets() != custom {
                            return (None, vec![incompatible(Incompatible::Schema, name)]);
                        }
                        min_schema = min_schema.min(h.schema);
                    }
                }
                let mut h = hs[n - 1].to_schema(min_schema);
                if let Err(e) = h.sub(&prev) {
                    return (None, vec![incompatible(e, name)]);
                }
                if counter {
                    for curr in &hs[1..] {
                        if curr.is_reset_after(&prev)
                            && let Err(e) = h.add(&prev)
                        {
                            return (None, vec![incompatible(e, name)]);
                        }
                        prev = (*curr).clone();
                    }
                } else if !gauge(hs[0]) || !gauge(hs[n - 1]) {
                    notes.push(not_gauge());
                }
                h.mul(extrapolation_factor(ts[0], ts[n - 1], n, t_ms, range_ms, self == RangeFn::Rate, None));
                h
            }
            RangeFn::Irate | RangeFn::Idelta => {
                if n < 2 {
                    return (None, notes);
                }
                let (prev, last) = (hs[n - 2], hs[n - 1]);
                let interval = ts[n - 1] - ts[n - 2];
                if interval == 0 {
                    return (None, notes);
                }
                let rate = self == RangeFn::Irate;
                if rate && (gauge(prev) || gauge(last)) {
                    notes.push(not_counter());
                }
                if !rate && (!gauge(prev) || !gauge(last)) {
                    notes.push(not_gauge());
                }
                let mut h = last.clone();
                if (!rate || !last.is_reset_after(prev))
                    && let Err(e) = h.sub(prev)
                {
                    return (None, vec![incompatible(e, name)]);
                }
                if rate {
                    h.mul(1000.0 / interval as f64);
                }
                h
            }
            _ => return (None, notes),
        };
        if self != RangeFn::LastOverTime {
            result.reset_hint = ResetHint::Gauge;
            result.compact();
        }
        (Some(result), notes)
    }
}

/// `irate` and `idelta`: from the last two samples.
fn instant(ts: &[i64], vs: &[f64], rate: bool) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let (last, prev) = (vs[n - 1], vs[n - 2]);
    let interval = ts[n - 1] - ts[n - 2];
    if interval == 0 {
        return None;
    }
    let mut result = if rate && last < prev { last } else { last - prev };
    if rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Kahan–Babuška–Neumaier summation, as Prometheus's `kahansum`.
pub fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        if t.is_infinite() {
            c = 0.0;
        } else if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// `avg_over_time`: a Kahan sum divided by the count, falling back to an
/// incremental mean when the sum overflows (Prometheus 3.5).
fn avg(vs: &[f64]) -> f64 {
    let sum = kahan_sum(vs.iter().copied());
    if sum.is_finite() || vs.iter().any(|v| v.is_infinite() || v.is_nan()) {
        return sum / vs.len() as f64;
    }
    let mut mean = 0.0;
    for (i, v) in vs.iter().enumerate() {
        mean += (v - mean) / (i + 1) as f64;
    }
    mean
}

/// Population variance, as `stdvar_over_time` (Welford with Kahan terms).
fn variance(vs: &[f64]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for &v in vs {
        count += 1.0;
        let delta = v - (mean + c_mean);
        let (m, cm) = kahan_inc(delta / count, mean, c_mean);
        mean = m;
        c_mean = cm;
        let (a, ca) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
        aux = a;
        c_aux = ca;
    }
    (aux + c_aux) / count
}

/// Kahan–Neumaier compensated addition, as Prometheus's `kahanSumInc`.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The φ-quantile of values, as Prometheus's `quantile` (linear
/// interpolation between closest ranks; ±Inf beyond [0, 1], NaN for NaN).
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    // Prometheus sorts with NaN first (sort.Float64s); total_cmp puts
    // negative NaN first and positive NaN last, so order NaNs explicitly.
    let nans: Vec<f64> = values.iter().copied().filter(|v| v.is_nan()).collect();
    values.retain(|v| !v.is_nan());
    let mut sorted = nans;
    sorted.extend(values);
    let n = sorted.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    sorted[lower as usize] * (1.0 - weight) + sorted[upper as usize] * weight
}

/// The least-squares fit of `vs` against time relative to `intercept_ms`:
/// (slope per second, intercept), as Prometheus's `linearRegression`.
pub fn linear_regression(ts: &[i64], vs: &[f64], intercept_ms: i64) -> (f64, f64) {
    let n = vs.len() as f64;
    let (mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let const_y = vs.iter().all(|v| *v == vs[0]);
    if const_y && vs[0].is_finite() {
        return (0.0, vs[0]);
    }
    for (&t, &v) in ts.iter().zip(vs) {
        let x = (t - intercept_ms) as f64 / 1000.0;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // A counter 0,10,…,100 every 30 s from 0: rate over [5m] at 5m is
        // 100/300 extrapolated to the window edges: the first sample sits
        // at the window start (exclusive), so no extrapolation backwards
        // beyond the zero point.
        let ts: Vec<i64> = (1..=10).map(|i| i * 30_000).collect();
        let vs: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        let r = RangeFn::Rate.eval(&ts, &vs, 300_000, 300_000, 300_000).unwrap();
        assert!((r - 100.0 / 300.0).abs() < 1e-9, "{r}");
        let inc = RangeFn::Increase.eval(&ts, &vs, 300_000, 300_000, 300_000).unwrap();
        assert!((inc - 100.0).abs() < 1e-9, "{inc}");
        // A counter reset adds the value before it: +5, then 10 → 2 is +2.
        // The samples span the whole window: no extrapolation.
        let r = RangeFn::Increase.eval(&[0, 10_000, 20_000], &[5.0, 10.0, 2.0], 20_000, 20_000, 20_000).unwrap();
        assert!((r - 7.0).abs() < 1e-9, "{r}");
        assert_eq!(RangeFn::Rate.eval(&[1], &[1.0], 1, 10, 1), None);
    }

    #[test]
    fn over_time_functions() {
        let ts = [1_000, 2_000, 3_000, 4_000];
        let vs = [1.0, 5.0, 2.0, 4.0];
        assert_eq!(RangeFn::AvgOverTime.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(3.0));
        assert_eq!(RangeFn::MinOverTime.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(1.0));
        assert_eq!(RangeFn::MaxOverTime.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(5.0));
        assert_eq!(RangeFn::Changes.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(3.0));
        assert_eq!(RangeFn::Resets.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(1.0));
        assert_eq!(RangeFn::TsOfMaxOverTime.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(2.0));
        assert_eq!(RangeFn::StdvarOverTime.eval(&ts, &vs, 4_000, 10_000, 4_000), Some(2.5));
        assert_eq!(quantile(0.5, vec![1.0, 2.0, 3.0, 4.0]), 2.5);
        let d = RangeFn::Deriv.eval(&ts, &[1.0, 2.0, 3.0, 4.0], 4_000, 10_000, 4_000).unwrap();
        // predict_linear: the regression's value `t` seconds after the step.
        let p = RangeFn::PredictLinear(F64::new(10.0)).eval(&ts, &[1.0, 2.0, 3.0, 4.0], 4_000, 10_000, 4_000);
        // Values 1..4 at 1..4 s: 4 at the step (4 s), slope 1/s.
        assert!((p.unwrap() - 14.0).abs() < 1e-9, "{p:?}");
        // double_exponential_smoothing of a straight line follows it.
        let s = RangeFn::DoubleExponentialSmoothing(F64::new(0.5), F64::new(0.5))
            .eval(&ts, &[1.0, 2.0, 3.0, 4.0], 4_000, 10_000, 4_000)
            .unwrap();
        assert!((s - 4.0).abs() < 1e-9, "{s}");
        assert!((d - 1.0).abs() < 1e-12);
    }
}
