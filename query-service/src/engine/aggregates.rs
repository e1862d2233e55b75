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

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use super::functions::kahan_inc;

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
}
