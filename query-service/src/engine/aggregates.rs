//! PromQL's `sum`, `avg`, `stddev` and `stdvar` as DataFusion aggregate
//! functions computing exactly as Prometheus 3.5 does (`promql/engine.go`,
//! `aggregation`): `sum` with Kahan–Neumaier compensation, `avg` as a
//! compensated direct mean that switches to an incremental mean when the
//! running sum would overflow, `stddev`/`stdvar` with Welford's update (NaN
//! once the first value is NaN or infinite). Values are folded in the order
//! the aggregate receives them (series order), as Prometheus does.
//!
//! Partial states (when DataFusion splits an aggregation) merge by
//! compensated addition of sums and Chan's formula for variances; a plan of
//! one partition (the engine's) folds everything in one accumulator.
//!
//! `sum` and `avg` of native histograms ([`hist_udaf`]) fold the `hist`
//! column beside the float aggregate of the same group: Prometheus's `Add`
//! and its incremental histogram mean, the first incompatible pair (mixed
//! exponential and custom buckets, different custom bounds) ending the
//! group with the metric name for the warning. The planner's
//! `PromAggregateResult` node turns the group's float value, histogram
//! state and sample counts into the output row and Prometheus's
//! annotations.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::DataFusionError;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use super::functions::kahan_inc;
use super::histogram::{FloatHistogram, Incompatible};
use super::labels;

/// Which aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PromAgg {
    /// `sum`
    #[default]
    Sum,
    /// `avg`
    Avg,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
}

/// The aggregate function of `kind`.
pub fn udaf(kind: PromAgg) -> AggregateUDF {
    AggregateUDF::new_from_impl(PromAggUdf {
        kind,
        signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PromAggUdf {
    kind: PromAgg,
    signature: Signature,
}

impl AggregateUDFImpl for PromAggUdf {
    fn name(&self) -> &str {
        match self.kind {
            PromAgg::Sum => "prom_sum",
            PromAgg::Avg => "prom_avg",
            PromAgg::Stddev => "prom_stddev",
            PromAgg::Stdvar => "prom_stdvar",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(PromAccumulator { kind: self.kind, ..PromAccumulator::default() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(STATE
            .iter()
            .map(|n| Arc::new(Field::new(format_state_name(args.name, n), DataType::Float64, true)))
            .collect())
    }
}

const STATE: [&str; 6] = ["value", "kahan_c", "count", "mean", "incremental", "seen"];

#[derive(Debug, Default)]
struct PromAccumulator {
    kind: PromAgg,
    seen: bool,
    /// Sum (sum, direct avg) or Welford's M2 (stddev/stdvar).
    value: f64,
    kahan_c: f64,
    count: f64,
    mean: f64,
    incremental: bool,
}

impl PromAccumulator {
    fn add(&mut self, f: f64) {
        if !self.seen {
            self.seen = true;
            self.count = 1.0;
            self.mean = f;
            self.value = match self.kind {
                PromAgg::Sum | PromAgg::Avg => f,
                PromAgg::Stddev | PromAgg::Stdvar if !f.is_finite() => f64::NAN,
                PromAgg::Stddev | PromAgg::Stdvar => 0.0,
            };
            return;
        }
        match self.kind {
            PromAgg::Sum => (self.value, self.kahan_c) = kahan_inc(f, self.value, self.kahan_c),
            PromAgg::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (v, c) = kahan_inc(f, self.value, self.kahan_c);
                    if !v.is_infinite() {
                        (self.value, self.kahan_c) = (v, c);
                        return;
                    }
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.kahan_c /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.kahan_c) = kahan_inc(f / self.count, q * self.mean, q * self.kahan_c);
            }
            PromAgg::Stddev | PromAgg::Stdvar => {
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
        }
    }

    fn result(&self) -> f64 {
        match self.kind {
            PromAgg::Sum => self.value + self.kahan_c,
            PromAgg::Avg if self.incremental => self.mean + self.kahan_c,
            PromAgg::Avg => self.value / self.count + self.kahan_c / self.count,
            PromAgg::Stdvar => self.value / self.count,
            PromAgg::Stddev => (self.value / self.count).sqrt(),
        }
    }
}

impl Accumulator for PromAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<Float64Type>();
        for v in values.iter().flatten() {
            self.add(v);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.seen.then(|| self.result())))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let f = |v: f64| ScalarValue::Float64(Some(v));
        Ok(vec![
            f(self.value),
            f(self.kahan_c),
            f(self.count),
            f(self.mean),
            f(f64::from(u8::from(self.incremental))),
            f(f64::from(u8::from(self.seen))),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let col = |i: usize| states[i].as_primitive::<Float64Type>();
        let (value, c, count, mean, incremental, seen) = (col(0), col(1), col(2), col(3), col(4), col(5));
        for i in 0..states[0].len() {
            if seen.value(i) == 0.0 {
                continue;
            }
            let other = PromAccumulator {
                kind: self.kind,
                seen: true,
                value: value.value(i),
                kahan_c: c.value(i),
                count: count.value(i),
                mean: mean.value(i),
                incremental: incremental.value(i) != 0.0,
            };
            self.merge(&other);
        }
        Ok(())
    }
}

impl PromAccumulator {
    fn merge(&mut self, o: &PromAccumulator) {
        if !self.seen {
            *self = PromAccumulator { kind: self.kind, ..*o };
            return;
        }
        match self.kind {
            PromAgg::Sum => {
                let (v, c) = kahan_inc(o.value, self.value, self.kahan_c);
                (self.value, self.kahan_c) = (v, c + o.kahan_c);
            }
            PromAgg::Avg => {
                let n = self.count + o.count;
                let (a, b) = (self.result(), o.result());
                self.incremental = true;
                self.mean = a * (self.count / n) + b * (o.count / n);
                self.kahan_c = 0.0;
                self.count = n;
            }
            PromAgg::Stddev | PromAgg::Stdvar => {
                let n = self.count + o.count;
                let delta = o.mean - self.mean;
                self.value += o.value + delta * delta * self.count * o.count / n;
                self.mean += delta * o.count / n;
                self.count = n;
            }
        }
    }
}

/// Which aggregation of native histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistAgg {
    /// `sum`: Prometheus's `Add` of every histogram.
    Sum,
    /// `avg`: Prometheus's incremental mean.
    Avg,
}

/// The aggregate function of `kind` over `(hist, labels)`: the group's
/// native histograms (Binary, null for floats) and each row's series labels
/// (for the metric name of an incompatibility warning). Its value is a
/// [`HistState`] encoding (null when the group has no histogram).
pub fn hist_udaf(kind: HistAgg) -> AggregateUDF {
    AggregateUDF::new_from_impl(HistAggUdf {
        kind,
        signature: Signature::exact(vec![DataType::Binary, DataType::Binary], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HistAggUdf {
    kind: HistAgg,
    signature: Signature,
}

impl AggregateUDFImpl for HistAggUdf {
    fn name(&self) -> &str {
        match self.kind {
            HistAgg::Sum => "prom_hist_sum",
            HistAgg::Avg => "prom_hist_avg",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HistAccumulator { kind: self.kind, state: HistState::Empty }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "state"), DataType::Binary, true))])
    }
}

/// A group's histogram aggregation so far.
#[derive(Debug, Clone, PartialEq)]
pub enum HistState {
    /// No histogram yet.
    Empty,
    /// The sum or mean of `count` histograms.
    Value {
        /// Histograms folded.
        count: f64,
        /// Their sum (`sum`) or mean (`avg`).
        histogram: FloatHistogram,
    },
    /// Two histograms could not be combined: Prometheus drops the group and
    /// warns with the metric name of the series that did not fit.
    Incompatible(Incompatible, String),
}

impl HistState {
    /// The Binary encoding (`None`: empty): a tag byte, then the count
    /// (f64, little-endian) and the histogram's stream encoding, or the
    /// incompatibility and the metric name.
    pub fn encode(&self) -> Option<Vec<u8>> {
        match self {
            Self::Empty => None,
            Self::Value { count, histogram } => {
                let mut out = vec![1];
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&histogram.encode());
                Some(out)
            }
            Self::Incompatible(why, name) => {
                let mut out = vec![2, u8::from(*why == Incompatible::Bounds)];
                out.extend_from_slice(name.as_bytes());
                Some(out)
            }
        }
    }

    /// Reads [`HistState::encode`]'s output.
    ///
    /// # Errors
    /// A malformed encoding (a bug) or an invalid histogram.
    pub fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        let bad = |why: &str| DataFusionError::Internal(format!("histogram aggregation state: {why}"));
        match bytes {
            None => Ok(Self::Empty),
            Some([1, rest @ ..]) if rest.len() >= 8 => {
                let (count, hist) = rest.split_at(8);
                let count = f64::from_le_bytes(count.try_into().map_err(|_| bad("count"))?);
                let histogram = FloatHistogram::decode(hist).map_err(|e| bad(&e))?;
                Ok(Self::Value { count, histogram })
            }
            Some([2, why, name @ ..]) => {
                let why = if *why == 1 { Incompatible::Bounds } else { Incompatible::Schema };
                Ok(Self::Incompatible(why, String::from_utf8_lossy(name).into_owned()))
            }
            Some(_) => Err(bad("unknown tag")),
        }
    }
}

#[derive(Debug)]
struct HistAccumulator {
    kind: HistAgg,
    state: HistState,
}

impl HistAccumulator {
    /// Folds one histogram of series `series` (its label encoding).
    fn add(&mut self, h: FloatHistogram, series: &[u8]) {
        let incompatible = |e: Incompatible| {
            HistState::Incompatible(e, labels::get(series, labels::METRIC_NAME).unwrap_or_default().to_owned())
        };
        match &mut self.state {
            HistState::Incompatible(..) => {}
            HistState::Empty => self.state = HistState::Value { count: 1.0, histogram: h },
            HistState::Value { count, histogram } => {
                *count += 1.0;
                let result = match self.kind {
                    HistAgg::Sum => histogram.add(&h),
                    HistAgg::Avg => {
                        // mean += h / n − mean / n, as Prometheus does.
                        let (mut left, mut right) = (h, histogram.clone());
                        left.div(*count);
                        right.div(*count);
                        left.sub(&right).and_then(|()| histogram.add(&left))
                    }
                };
                if let Err(e) = result {
                    self.state = incompatible(e);
                }
            }
        }
    }

    /// Merges another accumulator's state (DataFusion's partial
    /// aggregation): sums add; means weigh by their counts.
    fn merge(&mut self, other: HistState) {
        match (&mut self.state, other) {
            (HistState::Incompatible(..), _) | (_, HistState::Empty) => {}
            (state @ HistState::Empty, other) | (state, other @ HistState::Incompatible(..)) => *state = other,
            (HistState::Value { count, histogram }, HistState::Value { count: n, histogram: mut h }) => {
                let total = *count + n;
                let result = match self.kind {
                    HistAgg::Sum => histogram.add(&h),
                    HistAgg::Avg => {
                        histogram.mul(*count / total);
                        h.mul(n / total);
                        histogram.add(&h)
                    }
                };
                *count = total;
                if let Err(e) = result {
                    self.state = HistState::Incompatible(e, String::new());
                }
            }
        }
    }
}

impl Accumulator for HistAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (hist, series) = (values[0].as_binary::<i32>(), values[1].as_binary::<i32>());
        for i in 0..hist.len() {
            if hist.is_null(i) || matches!(self.state, HistState::Incompatible(..)) {
                continue;
            }
            let h = FloatHistogram::decode(hist.value(i)).map_err(DataFusionError::Execution)?;
            self.add(h, series.value(i));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut state = self.state.clone();
        if let HistState::Value { histogram, .. } = &mut state {
            histogram.compact();
        }
        Ok(ScalarValue::Binary(state.encode()))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.state {
                HistState::Value { histogram, .. } => {
                    (histogram.positive.len() + histogram.negative.len()) * 16 + histogram.custom_values.len() * 8
                }
                HistState::Incompatible(_, name) => name.len(),
                HistState::Empty => 0,
            }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(self.state.encode())])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let states = states[0].as_binary::<i32>();
        for i in 0..states.len() {
            let other = HistState::decode((!states.is_null(i)).then(|| states.value(i)))?;
            self.merge(other);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(kind: PromAgg, values: &[f64]) -> f64 {
        let mut a = PromAccumulator { kind, ..PromAccumulator::default() };
        values.iter().for_each(|v| a.add(*v));
        a.result()
    }

    #[test]
    fn sums_and_means_as_prometheus() {
        // Kahan–Neumaier keeps the small terms that a naive sum loses.
        assert_eq!(fold(PromAgg::Sum, &[1.0, 1e100, 1.0, -1e100]), 2.0);
        assert_eq!(fold(PromAgg::Avg, &[1.0, 1e100, 1.0, -1e100]), 0.5);
        // A running sum that would overflow switches to the incremental mean.
        let big = fold(PromAgg::Avg, &[f64::MAX, f64::MAX, f64::MAX]);
        assert!(big.is_finite() && (big / f64::MAX - 1.0).abs() < 1e-15, "{big}");
        assert!(fold(PromAgg::Avg, &[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(fold(PromAgg::Stdvar, &[1.0, 2.0, 3.0, 4.0]), 1.25);
        assert!(fold(PromAgg::Stddev, &[f64::INFINITY, 1.0]).is_nan());
    }

    fn hist(schema: i32, count: f64, positive: Vec<(i32, f64)>, custom: Vec<f64>) -> FloatHistogram {
        let mut h = FloatHistogram::decode(&schemas::stream::Histogram::default().encode_to_vec()).unwrap();
        h.schema = schema;
        h.count = count;
        h.sum = count;
        h.positive = positive;
        h.custom_values = custom;
        h
    }

    fn fold_hist(kind: HistAgg, hs: &[(&FloatHistogram, &str)]) -> HistState {
        let mut a = HistAccumulator { kind, state: HistState::Empty };
        for (h, name) in hs {
            a.add((*h).clone(), &labels::encode(&[("__name__".to_owned(), (*name).to_owned())]));
        }
        a.state
    }

    use prost::Message;

    #[test]
    fn histograms_sum_and_average_as_prometheus() {
        let a = hist(0, 4.0, vec![(0, 1.0), (1, 3.0)], vec![]);
        let b = hist(1, 8.0, vec![(0, 2.0), (1, 2.0), (2, 4.0)], vec![]);
        // b in schema 0: its bucket 0 ((2^-½, 1]) is bucket 0, its buckets
        // 1 and 2 ((1, 2^½], (2^½, 2]) are bucket 1 ((1, 2]).
        let HistState::Value { count, histogram } = fold_hist(HistAgg::Sum, &[(&a, "x"), (&b, "x")]) else {
            panic!("no sum")
        };
        assert_eq!(count, 2.0);
        assert_eq!((histogram.schema, histogram.count, histogram.sum), (0, 12.0, 12.0));
        assert_eq!(histogram.positive, vec![(0, 3.0), (1, 9.0)]);
        // Prometheus's incremental mean: a + (b/2 − a/2).
        let HistState::Value { histogram: mean, .. } = fold_hist(HistAgg::Avg, &[(&a, "x"), (&b, "x")]) else {
            panic!("no mean")
        };
        assert_eq!((mean.schema, mean.count), (0, 6.0));
        assert_eq!(mean.positive, vec![(0, 1.5), (1, 4.5)]);
    }

    #[test]
    fn incompatible_histograms_end_the_group_with_the_metric_name() {
        let exp = hist(0, 1.0, vec![(0, 1.0)], vec![]);
        let custom = hist(-53, 1.0, vec![(0, 1.0)], vec![0.1, 0.2]);
        let other_bounds = hist(-53, 1.0, vec![(0, 1.0)], vec![0.5]);
        assert_eq!(
            fold_hist(HistAgg::Sum, &[(&exp, "a"), (&custom, "b"), (&exp, "c")]),
            HistState::Incompatible(Incompatible::Schema, "b".into())
        );
        assert_eq!(
            fold_hist(HistAgg::Avg, &[(&custom, "a"), (&other_bounds, "b")]),
            HistState::Incompatible(Incompatible::Bounds, "b".into())
        );
    }

    #[test]
    fn states_round_trip_and_merge() {
        let a = hist(0, 4.0, vec![(0, 1.0), (1, 3.0)], vec![]);
        let states = [
            HistState::Empty,
            HistState::Value { count: 3.0, histogram: a.clone() },
            HistState::Incompatible(Incompatible::Bounds, "m".into()),
        ];
        for s in states {
            assert_eq!(HistState::decode(s.encode().as_deref()).unwrap(), s);
        }
        // Two partial means of 1 and 3 histograms merge into the mean of 4.
        let mut one =
            HistAccumulator { kind: HistAgg::Avg, state: HistState::Value { count: 1.0, histogram: a.clone() } };
        let mut b = a.clone();
        b.mul(5.0);
        one.merge(HistState::Value { count: 3.0, histogram: b });
        let HistState::Value { count, histogram } = one.state else { panic!() };
        assert_eq!(count, 4.0);
        assert_eq!(histogram.count, 4.0 * (1.0 + 15.0) / 4.0);
        assert!(HistState::decode(Some(&[9, 9])).is_err());
    }
}
