//! Functions and aggregations over a whole instant vector per step, where
//! SQL has no operator of the same meaning, as Prometheus 3.5 computes them
//! (`promql/functions.go`, `promql/quantile.go`, `promql/engine.go`):
//! `histogram_quantile` and `histogram_fraction` of classic buckets, `label_replace`, `label_join`,
//! `clamp*`, `round`, the date functions, `absent`, `scalar`, and the
//! aggregations `topk`, `bottomk`, `limitk`, `limit_ratio`, `quantile`,
//! `count_values`. Each runs in the `PromVectorFunction` node
//! ([`super::nodes`]) on the rows of one step at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike};

use super::Annotations;
use super::functions::quantile;
use super::histogram::{FloatHistogram, NanObservations};
use super::labels::{self, METRIC_NAME, NameDrop};
use super::nodes::Grid;

/// A float parameter, kept hashable and ordered (its bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct F64(u64);

impl F64 {
    /// Wraps a float.
    pub fn new(v: f64) -> Self {
        Self(v.to_bits())
    }

    /// The float.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// How an aggregation groups series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum Grouping {
    /// `by (…)`: keep these labels (none: one group).
    By(Vec<String>),
    /// `without (…)`: drop these labels and the metric name.
    Without(Vec<String>),
}

impl Grouping {
    fn key(&self, l: &[u8]) -> Vec<u8> {
        match self {
            Grouping::By(names) => labels::keep(l, names),
            Grouping::Without(names) => {
                let mut n = names.clone();
                n.push(METRIC_NAME.to_owned());
                labels::drop(l, &n)
            }
        }
    }
}

/// A date function of `time.Unix(int64(v), 0).UTC()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum DateFn {
    /// `minute`
    Minute,
    /// `hour`
    Hour,
    /// `day_of_week` (Sunday = 0)
    DayOfWeek,
    /// `day_of_month`
    DayOfMonth,
    /// `day_of_year`
    DayOfYear,
    /// `days_in_month`
    DaysInMonth,
    /// `month`
    Month,
    /// `year`
    Year,
}

impl DateFn {
    /// The function of a PromQL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "minute" => DateFn::Minute,
            "hour" => DateFn::Hour,
            "day_of_week" => DateFn::DayOfWeek,
            "day_of_month" => DateFn::DayOfMonth,
            "day_of_year" => DateFn::DayOfYear,
            "days_in_month" => DateFn::DaysInMonth,
            "month" => DateFn::Month,
            "year" => DateFn::Year,
            _ => return None,
        })
    }

    fn eval(self, v: f64) -> f64 {
        // Go's int64(v) of NaN/Inf is undefined; Prometheus yields garbage: NaN here.
        if !v.is_finite() {
            return f64::NAN;
        }
        let Some(t) = DateTime::from_timestamp(v as i64, 0) else { return f64::NAN };
        f64::from(match self {
            DateFn::Minute => t.minute(),
            DateFn::Hour => t.hour(),
            DateFn::DayOfWeek => t.weekday().num_days_from_sunday(),
            DateFn::DayOfMonth => t.day(),
            DateFn::DayOfYear => t.ordinal(),
            DateFn::DaysInMonth => {
                let (y, m) = (t.year(), t.month());
                let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
                let first_next = chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1);
                match (first, first_next) {
                    (Some(a), Some(b)) => u32::try_from((b - a).num_days()).unwrap_or(0),
                    _ => return f64::NAN,
                }
            }
            DateFn::Month => t.month(),
            DateFn::Year => return f64::from(t.year()),
        })
    }
}

/// A parameterised aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum KAgg {
    /// `topk(k, v)`
    Topk,
    /// `bottomk(k, v)`
    Bottomk,
    /// `limitk(k, v)`
    Limitk,
    /// `limit_ratio(r, v)`
    LimitRatio,
    /// `quantile(φ, v)`
    Quantile,
}

/// A native histogram sample of a function's input: labels, time, encoding.
pub type HistRow = (Vec<u8>, i64, bytes::Bytes);

/// What a `PromVectorFunction` node computes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum VecFn {
    /// `histogram_quantile(φ, v)` over classic `le` buckets and native
    /// histograms.
    HistogramQuantile(F64),
    /// `histogram_fraction(lower, upper, v)` over classic buckets and
    /// native histograms.
    HistogramFraction(F64, F64),
    /// `histogram_count(v)` of native histograms.
    HistogramCount,
    /// `histogram_sum(v)` of native histograms.
    HistogramSum,
    /// `histogram_avg(v)` of native histograms.
    HistogramAvg,
    /// `histogram_stddev(v)` of native histograms.
    HistogramStddev,
    /// `histogram_stdvar(v)` of native histograms.
    HistogramStdvar,
    /// `label_replace(v, dst, replacement, src, regex)`.
    LabelReplace {
        /// Destination label.
        dst: String,
        /// Replacement template (`$1`, `${name}`).
        replacement: String,
        /// Source label.
        src: String,
        /// The regular expression (anchored).
        regex: String,
    },
    /// `label_join(v, dst, separator, src…)`.
    LabelJoin {
        /// Destination label.
        dst: String,
        /// Separator.
        separator: String,
        /// Source labels.
        srcs: Vec<String>,
    },
    /// `clamp(v, min, max)`.
    Clamp(F64, F64),
    /// `clamp_min(v, min)`.
    ClampMin(F64),
    /// `clamp_max(v, max)`.
    ClampMax(F64),
    /// `round(v, to_nearest)`.
    Round(F64),
    /// A date function of the values.
    Date(DateFn),
    /// `absent(v)`: 1 with these labels at steps where `v` is empty.
    Absent(Vec<(String, String)>),
    /// `scalar(v)`: the single value per step, else NaN (empty labels).
    Scalar,
    /// `topk` and the other parameterised aggregations.
    Aggregate {
        /// Which.
        op: KAgg,
        /// k, r or φ.
        param: F64,
        /// The groups.
        grouping: Grouping,
    },
    /// `sort(v)` (ascending) and `sort_desc(v)`; NaN last either way.
    Sort {
        /// Descending.
        desc: bool,
    },
    /// `sort_by_label(v, label…)` and `sort_by_label_desc`: natural order of
    /// the labels' values, then of the whole label set.
    SortByLabel {
        /// The labels compared, in order.
        labels: Vec<String>,
        /// Descending.
        desc: bool,
    },
    /// `count_values(label, v)`.
    CountValues {
        /// The label holding each value.
        label: String,
        /// The groups.
        grouping: Grouping,
    },
}

/// One row of a vector: labels, step, value.
pub type Row = (Vec<u8>, i64, f64);

/// A decoded label set.
type Decoded = Vec<(String, String)>;

/// A classic histogram's buckets: (upper bound, cumulative count).
type Buckets = Vec<(f64, f64)>;

impl VecFn {
    /// Whether an instant query's result keeps this function's row order
    /// (the sorting functions, `topk`, `bottomk`) instead of label order.
    pub fn orders(&self) -> bool {
        matches!(
            self,
            VecFn::Sort { .. } | VecFn::SortByLabel { .. } | VecFn::Aggregate { op: KAgg::Topk | KAgg::Bottomk, .. }
        )
    }

    /// Applies the function to every step's rows.
    ///
    /// # Errors
    /// Prometheus's evaluation errors (invalid regular expression or label
    /// name, a `k` that overflows, a NaN ratio).
    /// `params`: a per-step parameter (`topk(scalar(x), v)`) that replaces
    /// the constant one, NaN at steps it lacks.
    pub fn apply(
        &self,
        grid: Grid,
        rows: Vec<Row>,
        params: Option<&BTreeMap<i64, f64>>,
        name_drop: NameDrop,
        histograms: Vec<HistRow>,
    ) -> Result<(Vec<Row>, Annotations), String> {
        let mut notes = Annotations::default();
        let (mut rows, mut histograms) = self.without_conflicts(rows, histograms, &mut notes);
        if matches!(self, VecFn::Absent(_)) {
            // A native histogram sample makes its step present.
            rows.extend(histograms.drain(..).map(|(l, t, _)| (l, t, f64::NAN)));
        }
        let mut rows = self.apply_noting(grid, rows, params, &mut notes, name_drop)?;
        self.apply_histograms(histograms, name_drop, &mut rows, &mut notes)?;
        Ok((rows, notes))
    }

    /// `histogram_quantile` and `histogram_fraction` evaluate neither a
    /// native histogram nor the classic buckets with the same labels at the
    /// same step, with Prometheus's warning.
    fn without_conflicts(
        &self,
        rows: Vec<Row>,
        histograms: Vec<HistRow>,
        notes: &mut Annotations,
    ) -> (Vec<Row>, Vec<HistRow>) {
        if histograms.is_empty() || !matches!(self, VecFn::HistogramQuantile(_) | VecFn::HistogramFraction(..)) {
            return (rows, histograms);
        }
        let le = [labels::BUCKET_LABEL.to_owned()];
        let classic: std::collections::HashSet<(i64, Vec<u8>)> = rows
            .iter()
            .filter(|(l, _, _)| labels::get(l, labels::BUCKET_LABEL).is_some())
            .map(|(l, t, _)| (*t, labels::drop(l, &le)))
            .collect();
        let mut conflicts = std::collections::HashSet::new();
        let histograms = histograms
            .into_iter()
            .filter(|(l, t, _)| {
                let key = (*t, labels::drop(l, &le));
                if !classic.contains(&key) {
                    return true;
                }
                notes.warnings.insert(format!(
                    "PromQL warning: vector contains a mix of classic and native histograms for metric name {:?}",
                    labels::get(l, METRIC_NAME).unwrap_or("")
                ));
                conflicts.insert(key);
                false
            })
            .collect();
        let rows = rows.into_iter().filter(|(l, t, _)| !conflicts.contains(&(*t, labels::drop(l, &le)))).collect();
        (rows, histograms)
    }

    /// The rows of native histogram samples (the functions that take them;
    /// the others ignore them).
    fn apply_histograms(
        &self,
        histograms: Vec<HistRow>,
        name_drop: NameDrop,
        out: &mut Vec<Row>,
        notes: &mut Annotations,
    ) -> Result<(), String> {
        if let VecFn::CountValues { label, grouping } = self {
            // A histogram's value is its `String()` text.
            let mut counts: BTreeMap<(i64, Vec<u8>), f64> = BTreeMap::new();
            for (l, t, h) in histograms {
                let text = FloatHistogram::decode(&h)?.go_string();
                *counts.entry((t, labels::set(&grouping.key(&l), label, &text))).or_default() += 1.0;
            }
            out.extend(counts.into_iter().map(|((t, l), c)| (l, t, c)));
            return Ok(());
        }
        if let VecFn::HistogramQuantile(q) = self
            && !histograms.is_empty()
            && !(0.0..=1.0).contains(&q.get())
        {
            notes.warnings.insert(invalid_quantile(q.get()));
        }
        for (l, t, h) in histograms {
            let h = FloatHistogram::decode(&h)?;
            let name = || labels::get(&l, METRIC_NAME).unwrap_or("").to_owned();
            let v = match self {
                VecFn::HistogramCount => h.count,
                VecFn::HistogramSum => h.sum,
                VecFn::HistogramAvg => h.sum / h.count,
                VecFn::HistogramStddev => h.variance().sqrt(),
                VecFn::HistogramStdvar => h.variance(),
                VecFn::HistogramQuantile(q) => {
                    let (v, nan) = h.quantile(q.get());
                    if let Some(nan) = nan {
                        let result = match nan {
                            NanObservations::NanResult => "result is NaN",
                            NanObservations::SkewedHigher => "result is skewed higher",
                        };
                        notes.infos.insert(format!(
                            "PromQL info: input to histogram_quantile has NaN observations, {result} for metric name {:?}",
                            name()
                        ));
                    }
                    v
                }
                VecFn::HistogramFraction(lower, upper) => {
                    let (v, nan_left_out) = h.fraction(lower.get(), upper.get());
                    if nan_left_out {
                        notes.infos.insert(format!(
                            "PromQL info: input to histogram_fraction has NaN observations, which are excluded from all fractions for metric name {:?}",
                            name()
                        ));
                    }
                    v
                }
                // Prometheus's `topk`, `bottomk` and `quantile` skip
                // histograms with an info.
                VecFn::Aggregate { op: op @ (KAgg::Topk | KAgg::Bottomk | KAgg::Quantile), .. } => {
                    let name = match op {
                        KAgg::Topk => "topk",
                        KAgg::Bottomk => "bottomk",
                        _ => "quantile",
                    };
                    notes.infos.insert(format!("PromQL info: ignored histogram in {name} aggregation"));
                    continue;
                }
                _ => continue,
            };
            out.push((labels::drop_name_as(&l, name_drop), t, v));
        }
        Ok(())
    }

    fn apply_noting(
        &self,
        grid: Grid,
        rows: Vec<Row>,
        params: Option<&BTreeMap<i64, f64>>,
        notes: &mut Annotations,
        name_drop: NameDrop,
    ) -> Result<Vec<Row>, String> {
        let mut by_step: BTreeMap<i64, Vec<(Vec<u8>, f64)>> = BTreeMap::new();
        for (l, t, v) in rows {
            by_step.entry(t).or_default().push((l, v));
        }
        let mut out = Vec::new();
        match self {
            VecFn::Absent(absent_labels) => {
                let encoded = labels::encode(absent_labels);
                for t in grid.steps() {
                    if by_step.get(&t).is_none_or(Vec::is_empty) {
                        out.push((encoded.clone(), t, 1.0));
                    }
                }
                return Ok(out);
            }
            VecFn::Scalar => {
                for t in grid.steps() {
                    let v = match by_step.get(&t).map(Vec::as_slice) {
                        Some([(_, v)]) => *v,
                        _ => f64::NAN,
                    };
                    out.push((Vec::new(), t, v));
                }
                return Ok(out);
            }
            _ => {}
        }
        if let VecFn::CountValues { label, .. } = self
            && label.is_empty()
        {
            return Err(format!("invalid label name {label:?}"));
        }
        let regex = self.label_regex()?;
        for (t, step_rows) in by_step {
            let param = params.map(|p| p.get(&t).copied().unwrap_or(f64::NAN));
            self.step(t, step_rows, regex.as_ref(), param, &mut out, notes, name_drop)?;
        }
        Ok(out)
    }

    /// `label_replace`'s compiled regex (none for other functions), after
    /// the argument checks of `label_replace` and `label_join`.
    fn label_regex(&self) -> Result<Option<regex::Regex>, String> {
        match self {
            VecFn::LabelReplace { regex, dst, .. } => {
                if dst.is_empty() {
                    return Err(format!("invalid destination label name in label_replace(): {dst}"));
                }
                Ok(Some(
                    regex::Regex::new(&format!("^(?s:{regex})$"))
                        .map_err(|_| format!("invalid regular expression in label_replace(): {regex}"))?,
                ))
            }
            VecFn::LabelJoin { dst, srcs, .. } => {
                if dst.is_empty() {
                    return Err(format!("invalid destination label name in label_join(): {dst}"));
                }
                if let Some(bad) = srcs.iter().find(|s| s.is_empty()) {
                    return Err(format!("invalid source label name in label_join(): {bad}"));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Whether the function keeps each sample whole, changing at most its
    /// labels (so native histograms pass through it, as in Prometheus).
    pub fn keeps_samples(&self) -> bool {
        matches!(self, VecFn::LabelReplace { .. } | VecFn::LabelJoin { .. } | VecFn::SortByLabel { .. })
    }

    /// The labels a sample of `labels` gets from a function that
    /// [keeps samples](Self::keeps_samples) (a histogram passing through
    /// finds its output row by them); others leave them as they are.
    ///
    /// # Errors
    /// As [`VecFn::apply`], for an invalid regular expression or label name.
    pub fn relabeler(&self) -> Result<impl Fn(&[u8]) -> Vec<u8> + '_, String> {
        let regex = self.label_regex()?;
        Ok(move |l: &[u8]| match self {
            VecFn::LabelReplace { dst, replacement, src, .. } => match &regex {
                Some(re) => label_replace(l, re, dst, replacement, src),
                None => l.to_vec(),
            },
            VecFn::LabelJoin { dst, separator, srcs } => label_join(l, dst, separator, srcs),
            _ => l.to_vec(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        t: i64,
        rows: Vec<(Vec<u8>, f64)>,
        regex: Option<&regex::Regex>,
        param: Option<f64>,
        out: &mut Vec<Row>,
        notes: &mut Annotations,
        name_drop: NameDrop,
    ) -> Result<(), String> {
        let mut push_no_name = |l: &[u8], v: f64| out.push((labels::drop_name_as(l, name_drop), t, v));
        match self {
            VecFn::Clamp(min, max) => {
                let (min, max) = (min.get(), max.get());
                if max < min {
                    return Ok(());
                }
                for (l, v) in rows {
                    push_no_name(&l, go_max(min, go_min(max, v)));
                }
            }
            VecFn::ClampMin(min) => rows.iter().for_each(|(l, v)| push_no_name(l, go_max(min.get(), *v))),
            VecFn::ClampMax(max) => rows.iter().for_each(|(l, v)| push_no_name(l, go_min(max.get(), *v))),
            VecFn::Round(to_nearest) => {
                let inverse = 1.0 / to_nearest.get();
                rows.iter().for_each(|(l, v)| push_no_name(l, (v * inverse + 0.5).floor() / inverse));
            }
            VecFn::Date(f) => rows.iter().for_each(|(l, v)| push_no_name(l, f.eval(*v))),
            VecFn::LabelReplace { dst, replacement, src, .. } => {
                let Some(re) = regex else { return Err("label_replace without its regex".into()) };
                for (l, v) in rows {
                    out.push((label_replace(&l, re, dst, replacement, src), t, v));
                }
            }
            VecFn::LabelJoin { dst, separator, srcs } => {
                for (l, v) in rows {
                    out.push((label_join(&l, dst, separator, srcs), t, v));
                }
            }
            VecFn::HistogramQuantile(q) => {
                let q = q.get();
                if !(0.0..=1.0).contains(&q) {
                    notes.warnings.insert(invalid_quantile(q));
                }
                for (key, (name, mut buckets)) in bucket_groups(rows, notes, name_drop) {
                    let (v, forced) = bucket_quantile(q, &mut buckets);
                    if forced {
                        notes.infos.insert(format!(
                            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see \
                             https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
                             for metric name {name:?}"
                        ));
                    }
                    out.push((key, t, v));
                }
            }
            // Of native histograms only (`apply_histograms`).
            VecFn::HistogramCount
            | VecFn::HistogramSum
            | VecFn::HistogramAvg
            | VecFn::HistogramStddev
            | VecFn::HistogramStdvar => {}
            VecFn::HistogramFraction(lower, upper) => {
                for (key, (_, mut buckets)) in bucket_groups(rows, notes, name_drop) {
                    out.push((key, t, bucket_fraction(lower.get(), upper.get(), &mut buckets)));
                }
            }
            VecFn::Aggregate { op, param: fixed, grouping } => {
                let p = param.unwrap_or(fixed.get());
                match op {
                    KAgg::Quantile if !(0.0..=1.0).contains(&p) => {
                        notes.warnings.insert(invalid_quantile(p));
                    }
                    KAgg::LimitRatio if !(-1.0..=1.0).contains(&p) && !p.is_nan() => {
                        let to = p.clamp(-1.0, 1.0);
                        notes.warnings.insert(format!(
                            "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                            go_format(p),
                            go_format(to)
                        ));
                    }
                    _ => {}
                }
                aggregate(*op, p, grouping, t, rows, out)?;
            }
            VecFn::CountValues { label, grouping } => {
                let mut counts: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
                for (l, v) in rows {
                    let key = labels::set(&grouping.key(&l), label, &go_format(v));
                    *counts.entry(key).or_default() += 1.0;
                }
                out.extend(counts.into_iter().map(|(l, c)| (l, t, c)));
            }
            VecFn::Sort { desc } => {
                let mut rows = rows;
                if *desc {
                    rows.sort_by(|a, b| nan_last_desc(a.1, b.1));
                } else {
                    rows.sort_by(|a, b| nan_last(a.1, b.1));
                }
                out.extend(rows.into_iter().map(|(l, v)| (l, t, v)));
            }
            VecFn::SortByLabel { labels: names, desc } => {
                let mut rows: Vec<(Decoded, Vec<u8>, f64)> =
                    rows.into_iter().map(|(l, v)| (labels::decode(&l), l, v)).collect();
                rows.sort_by(|a, b| {
                    let (a, b) = if *desc { (b, a) } else { (a, b) };
                    let get = |set: &[(String, String)], n: &str| {
                        set.iter().find(|(k, _)| k == n).map_or(String::new(), |(_, v)| v.clone())
                    };
                    for n in names {
                        let (x, y) = (get(&a.0, n), get(&b.0, n));
                        if x != y {
                            // Natural order, then bytes: a total order for sort_by
                            // ("01" and "1" are equal numerically).
                            return match (natural_less(&x, &y), natural_less(&y, &x)) {
                                (true, false) => std::cmp::Ordering::Less,
                                (false, true) => std::cmp::Ordering::Greater,
                                _ => x.cmp(&y),
                            };
                        }
                    }
                    a.0.cmp(&b.0)
                });
                out.extend(rows.into_iter().map(|(_, l, v)| (l, t, v)));
            }
            VecFn::Absent(_) | VecFn::Scalar => {}
        }
        Ok(())
    }
}

/// Natural order of label values (as the `natsort` package Prometheus
/// uses): runs of digits compare as integers, other runs as strings.
fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let last = |i: usize| -> Option<bool> {
            if i == ca.len() - 1 {
                Some(true)
            } else if i == cb.len() - 1 {
                Some(false)
            } else {
                None
            }
        };
        match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(p), Ok(q)) if p == q => {
                if let Some(r) = last(i) {
                    return r;
                }
            }
            (Ok(p), Ok(q)) => return p < q,
            _ if x == y => {
                if let Some(r) = last(i) {
                    return r;
                }
            }
            _ => return x < y,
        }
    }
    false
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that
/// reads back as `v`, never in exponent form; `+Inf`, `-Inf`, `NaN` (how
/// Prometheus writes values in JSON, label values and messages).
pub fn go_format(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest digits in
/// exponent form with a signed, at least two-digit exponent (`1e+01`).
pub fn go_format_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Prometheus's `labels.Hash()`: xxhash64 of `name 0xff value 0xff`… .
fn prometheus_hash(l: &[u8]) -> u64 {
    let mut buf = Vec::with_capacity(l.len());
    for (n, v) in labels::iter(l) {
        buf.extend_from_slice(n.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

fn aggregate(
    op: KAgg,
    param: f64,
    grouping: &Grouping,
    t: i64,
    rows: Vec<(Vec<u8>, f64)>,
    out: &mut Vec<Row>,
) -> Result<(), String> {
    let mut groups: BTreeMap<Vec<u8>, Vec<(Vec<u8>, f64)>> = BTreeMap::new();
    for (l, v) in rows {
        groups.entry(grouping.key(&l)).or_default().push((l, v));
    }
    match op {
        KAgg::Topk | KAgg::Bottomk | KAgg::Limitk => {
            if !(-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&param) || param.is_nan() {
                return Err(format!("Scalar value {} overflows int64", go_format(param)));
            }
            let k = param as i64;
            if k < 1 {
                return Ok(());
            }
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            for (_, mut members) in groups {
                match op {
                    // NaN ranks last for both.
                    KAgg::Topk => members.sort_by(|a, b| nan_last_desc(a.1, b.1)),
                    KAgg::Bottomk => members.sort_by(|a, b| nan_last(a.1, b.1)),
                    _ => {}
                }
                out.extend(members.into_iter().take(k).map(|(l, v)| (l, t, v)));
            }
        }
        KAgg::LimitRatio => {
            if param.is_nan() {
                return Err(format!("Ratio value {} is NaN", go_format(param)));
            }
            let r = param.clamp(-1.0, 1.0);
            if r == 0.0 {
                return Ok(());
            }
            for (l, v) in groups.into_values().flatten() {
                let offset = prometheus_hash(&l) as f64 / u64::MAX as f64;
                if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                    out.push((l, t, v));
                }
            }
        }
        KAgg::Quantile => {
            for (key, members) in groups {
                // Flagged for delayed name removal as its first member is.
                let key = match members.first() {
                    Some((first, _)) => labels::mark_as(first, key),
                    None => key,
                };
                let values: Vec<f64> = members.into_iter().map(|m| m.1).collect();
                out.push((key, t, quantile(param, values)));
            }
        }
    }
    Ok(())
}

/// Orders `a` before `b` when `a` is larger, NaN last.
fn nan_last_desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Orders `a` before `b` when `a` is smaller, NaN last.
fn nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// A step's bucket series grouped into histograms (by every label but
/// `le`): the result's labels (without the name), the metric name and the
/// (upper bound, cumulative count) of each.
fn bucket_groups(
    rows: Vec<(Vec<u8>, f64)>,
    notes: &mut Annotations,
    name_drop: NameDrop,
) -> Vec<(Vec<u8>, (String, Buckets))> {
    let le = [labels::BUCKET_LABEL.to_owned()];
    let mut groups: BTreeMap<Vec<u8>, (String, Buckets)> = BTreeMap::new();
    for (l, v) in rows {
        let name = labels::get(&l, METRIC_NAME).unwrap_or("").to_owned();
        let bound = labels::get(&l, labels::BUCKET_LABEL);
        // A bucket without a parsable `le` is left out, with a warning.
        let Some(upper) = bound.and_then(parse_go_float) else {
            notes.warnings.insert(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {name:?}",
                bound.unwrap_or("")
            ));
            continue;
        };
        groups.entry(labels::drop(&l, &le)).or_insert_with(|| (name, Vec::new())).1.push((upper, v));
    }
    // Grouped by every label but `le` (two metrics are two histograms); the
    // results drop the name, so two metrics with the same other labels
    // collide as Prometheus's do.
    groups.into_iter().map(|(k, v)| (labels::drop_name_as(&k, name_drop), v)).collect()
}

/// Prometheus's warning for a φ outside [0, 1].
pub fn invalid_quantile(q: f64) -> String {
    format!("PromQL warning: quantile value should be between 0 and 1, got {}", go_format(q))
}

/// Sorts buckets by bound and merges equal bounds; `None` without a +Inf
/// bucket.
fn sorted_buckets(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(u, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => merged.push((u, c)),
        }
    }
    Some(merged)
}

/// Prometheus's `BucketFraction`: the fraction of observations between
/// `lower` and `upper`, interpolated linearly within buckets.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(b) = sorted_buckets(buckets) else { return f64::NAN };
    let count = b[b.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(upper_bound, c)) in b.iter().enumerate() {
        let lower_bound = if i > 0 { b[i - 1].0 } else { f64::NEG_INFINITY };
        let interpolate = |v: f64| rank + (c - rank) * (v - lower_bound) / (upper_bound - lower_bound);
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = c;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Go's `strconv.ParseFloat` for bucket bounds (`+Inf`, `Inf`, `1e3`, …).
fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Prometheus's `BucketQuantile` over (upper bound, cumulative count), and
/// whether monotonicity had to be forced.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut merged) = sorted_buckets(buckets) else { return (f64::NAN, false) };
    let mut forced = false;
    // Ignore tiny deltas, then force monotonicity.
    let mut prev = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if merged.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = q * observations;
    let n = merged.len();
    let b = merged[..n - 1].partition_point(|x| x.1 < rank);
    if b == n - 1 {
        return (merged[n - 2].0, forced);
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return (merged[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus's `almost.Equal`.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < epsilon
}

/// `label_replace` of one label set.
fn label_replace(l: &[u8], re: &regex::Regex, dst: &str, replacement: &str, src: &str) -> Vec<u8> {
    let value = labels::get(l, src).unwrap_or("");
    match re.captures(value) {
        Some(caps) => {
            let mut expanded = String::new();
            caps.expand(replacement, &mut expanded);
            let set = labels::set(l, dst, &expanded);
            // A new name is kept (delayed name removal).
            if dst == METRIC_NAME { labels::unmarked(&set).to_vec() } else { set }
        }
        None => l.to_vec(),
    }
}

/// `label_join` of one label set.
fn label_join(l: &[u8], dst: &str, separator: &str, srcs: &[String]) -> Vec<u8> {
    let joined: Vec<&str> = srcs.iter().map(|s| labels::get(l, s).unwrap_or("")).collect();
    let set = labels::set(l, dst, &joined.join(separator));
    if dst == METRIC_NAME { labels::unmarked(&set).to_vec() } else { set }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantiles_as_prometheus() {
        let mut b = vec![(0.1, 10.0), (0.5, 20.0), (f64::INFINITY, 20.0), (1.0, 20.0)];
        assert!((bucket_quantile(0.5, &mut b).0 - 0.1).abs() < 1e-12);
        let mut b = vec![(0.1, 10.0), (0.5, 20.0), (f64::INFINITY, 30.0)];
        // Rank 27 falls in the +Inf bucket: the second-highest bound.
        assert_eq!(bucket_quantile(0.9, &mut b), (0.5, false));
        let mut no_inf = vec![(0.1, 10.0), (0.5, 20.0)];
        assert!(bucket_quantile(0.5, &mut no_inf).0.is_nan());
        assert_eq!(bucket_quantile(-1.0, &mut b).0, f64::NEG_INFINITY);
        // A decreasing count is forced up, and said so.
        let mut dip = vec![(0.1, 10.0), (0.5, 8.0), (f64::INFINITY, 12.0)];
        assert!(bucket_quantile(0.5, &mut dip).1);
    }

    #[test]
    fn bucket_fractions_as_prometheus() {
        let mut b = vec![(0.0, 0.0), (1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_fraction(0.0, 1.0, &mut b), 0.5);
        assert_eq!(bucket_fraction(1.0, 1.5, &mut b), 0.25);
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, f64::INFINITY, &mut b), 1.0);
        assert_eq!(bucket_fraction(2.0, 1.0, &mut b), 0.0);
        assert!(bucket_fraction(0.0, 1.0, &mut [(1.0, 10.0)]).is_nan());
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("2", "10"));
        assert!(!natural_less("10", "2"));
        assert!(natural_less("a2", "a10"));
        assert!(natural_less("4m5", "4m600"));
        assert!(natural_less("abc", "abd"));
    }

    #[test]
    fn dates() {
        assert_eq!(DateFn::DayOfWeek.eval(0.0), 4.0); // 1970-01-01 was a Thursday
        assert_eq!(DateFn::DaysInMonth.eval(2_678_400.0), 28.0); // 1970-02-01
        assert_eq!(DateFn::Year.eval(1e9), 2001.0);
    }
}
