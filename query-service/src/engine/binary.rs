//! Arithmetic and comparison operators on single samples, floats or native
//! histograms, as Prometheus's `vectorElemBinop` (3.5) evaluates them: the
//! `PromSampleBinary` node ([`super::nodes::NodeKind::SampleBinary`])
//! applies [`elem_binop`] to each matched pair of samples.
//!
//! ```text
//!  float ⊕ float          every operator, as IEEE floats
//!  histogram ± histogram  added / subtracted (coarser schema, wider zero
//!                         bucket); exponential with custom buckets, or
//!                         other custom bounds: a warning, no sample
//!  histogram * float, float * histogram, histogram / float
//!                         every count and the sum scaled (÷ 0 drops the buckets)
//!  histogram ==/!= histogram  compared whole; the sample kept is the left one
//!  anything else          an info ("incompatible sample types"), no sample
//! ```

use super::histogram::FloatHistogram;

/// An arithmetic or comparison operator (set operators are joins, see
/// [`super::planner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// Unary minus of the left operand (the right one is not read).
    Neg,
}

impl BinOp {
    /// The operator of PromQL's symbol; `None` for set operators.
    pub fn parse(symbol: &str) -> Option<Self> {
        Some(match symbol {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "^" => Self::Pow,
            "atan2" => Self::Atan2,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            ">" => Self::Gt,
            "<" => Self::Lt,
            ">=" => Self::Ge,
            "<=" => Self::Le,
            _ => return None,
        })
    }

    /// PromQL's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub | Self::Neg => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::Atan2 => "atan2",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Lt => "<",
            Self::Ge => ">=",
            Self::Le => "<=",
        }
    }

    /// Whether it compares (filters, or gives 1/0 with `bool`).
    pub fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le)
    }

    fn floats(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Self::Add => (l + r, true),
            Self::Sub => (l - r, true),
            Self::Mul => (l * r, true),
            Self::Div => (l / r, true),
            Self::Mod => (l % r, true),
            Self::Pow => (l.powf(r), true),
            Self::Atan2 => (l.atan2(r), true),
            Self::Eq => (l, l == r),
            Self::Ne => (l, l != r),
            Self::Gt => (l, l > r),
            Self::Lt => (l, l < r),
            Self::Ge => (l, l >= r),
            Self::Le => (l, l <= r),
            Self::Neg => (-l, true),
        }
    }
}

/// One operand: a float sample's value or a histogram sample's histogram.
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a> {
    /// A float sample.
    Float(f64),
    /// A native histogram sample.
    Histogram(&'a FloatHistogram),
}

/// The outcome of [`elem_binop`] for a pair of samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Arithmetic's float result.
    Float(f64),
    /// Arithmetic's histogram result.
    Histogram(FloatHistogram),
    /// A comparison: whether it holds (a filter keeps the sample compared).
    Compared(bool),
    /// No sample, with Prometheus's annotation (`true`: a warning, else an
    /// info).
    Dropped(bool, String),
}

/// `l op r` for one pair of samples.
pub fn elem_binop(op: BinOp, l: Operand<'_>, r: Operand<'_>) -> Outcome {
    use Operand::{Float, Histogram};
    let incompatible = |lt: &str, rt: &str| {
        let symbol = op.symbol();
        Outcome::Dropped(
            false,
            format!(
                "PromQL info: incompatible sample types encountered for binary operator {symbol:?}: {lt} {symbol} {rt}"
            ),
        )
    };
    match (l, r) {
        (Float(a), _) if op == BinOp::Neg => Outcome::Float(-a),
        (Histogram(h), _) if op == BinOp::Neg => {
            // Prometheus's unary minus: `Mul(-1)`, not compacted.
            let mut h = h.clone();
            h.mul(-1.0);
            Outcome::Histogram(h)
        }
        (Float(a), Float(b)) => match op.floats(a, b) {
            (_, keep) if op.is_comparison() => Outcome::Compared(keep),
            (v, _) => Outcome::Float(v),
        },
        (Float(f), Histogram(h)) | (Histogram(h), Float(f)) if op == BinOp::Mul => {
            let mut h = h.clone();
            h.mul(f);
            h.compact();
            Outcome::Histogram(h)
        }
        (Histogram(h), Float(f)) if op == BinOp::Div => {
            let mut h = h.clone();
            h.div(f);
            h.compact();
            Outcome::Histogram(h)
        }
        (Float(_), Histogram(_)) => incompatible("float", "histogram"),
        (Histogram(_), Float(_)) => incompatible("histogram", "float"),
        (Histogram(a), Histogram(b)) => match op {
            BinOp::Add | BinOp::Sub => {
                let mut h = a.clone();
                let combined = if op == BinOp::Add { h.add(b) } else { h.sub(b) };
                match combined {
                    Ok(()) => {
                        h.compact();
                        Outcome::Histogram(h)
                    }
                    Err(_) => Outcome::Dropped(
                        true,
                        format!(
                            "PromQL warning: incompatible bucket layout encountered for binary operator {}",
                            op.symbol()
                        ),
                    ),
                }
            }
            BinOp::Eq => Outcome::Compared(a.same_as(b)),
            BinOp::Ne => Outcome::Compared(!a.same_as(b)),
            _ => incompatible("histogram", "histogram"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::stream::histogram::ResetHint;

    fn hist(count: f64, buckets: &[(i32, f64)]) -> FloatHistogram {
        FloatHistogram {
            schema: 0,
            reset_hint: ResetHint::Unknown,
            count,
            sum: 2.0 * count,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive: buckets.to_vec(),
            negative: Vec::new(),
            custom_values: Vec::new(),
        }
    }

    #[test]
    fn floats_follow_ieee_and_comparisons_only_say_whether_they_hold() {
        let f = Operand::Float;
        assert_eq!(elem_binop(BinOp::Mod, f(7.0), f(-3.0)), Outcome::Float(1.0));
        assert_eq!(elem_binop(BinOp::Pow, f(2.0), f(10.0)), Outcome::Float(1024.0));
        assert_eq!(elem_binop(BinOp::Eq, f(f64::NAN), f(f64::NAN)), Outcome::Compared(false));
        assert_eq!(elem_binop(BinOp::Eq, f(-0.0), f(0.0)), Outcome::Compared(true));
        assert_eq!(elem_binop(BinOp::Le, f(3.0), f(2.0)), Outcome::Compared(false));
    }

    #[test]
    fn histograms_scale_by_floats_and_division_by_zero_drops_the_buckets() {
        let h = hist(4.0, &[(0, 1.0), (1, 0.0), (2, 3.0)]);
        let Outcome::Histogram(triple) = elem_binop(BinOp::Mul, Operand::Float(3.0), Operand::Histogram(&h)) else {
            panic!("3 * h is a histogram");
        };
        assert_eq!((triple.count, triple.sum, triple.zero_count), (12.0, 24.0, 3.0));
        assert_eq!(triple.positive, vec![(0, 3.0), (2, 9.0)], "compacted");
        let Outcome::Histogram(inf) = elem_binop(BinOp::Div, Operand::Histogram(&h), Operand::Float(0.0)) else {
            panic!("h / 0 is a histogram");
        };
        assert!(inf.count.is_infinite() && inf.positive.is_empty(), "{inf:?}");
        let Outcome::Histogram(neg) = elem_binop(BinOp::Neg, Operand::Histogram(&h), Operand::Float(0.0)) else {
            panic!("-h is a histogram");
        };
        assert_eq!(neg.positive, vec![(0, -1.0), (1, -0.0), (2, -3.0)], "unary minus does not compact");
    }

    #[test]
    fn other_mixes_are_dropped_with_prometheus_annotations() {
        let h = hist(4.0, &[(0, 4.0)]);
        assert_eq!(
            elem_binop(BinOp::Div, Operand::Float(1.0), Operand::Histogram(&h)),
            Outcome::Dropped(
                false,
                "PromQL info: incompatible sample types encountered for binary operator \"/\": float / histogram"
                    .into()
            )
        );
        assert!(matches!(
            elem_binop(BinOp::Gt, Operand::Histogram(&h), Operand::Histogram(&h)),
            Outcome::Dropped(false, m) if m.ends_with("histogram > histogram")
        ));
        let mut custom = h.clone();
        custom.schema = crate::engine::histogram::CUSTOM_BUCKETS_SCHEMA;
        custom.custom_values = vec![1.0];
        assert_eq!(
            elem_binop(BinOp::Sub, Operand::Histogram(&h), Operand::Histogram(&custom)),
            Outcome::Dropped(
                true,
                "PromQL warning: incompatible bucket layout encountered for binary operator -".into()
            )
        );
    }

    #[test]
    fn histograms_add_subtract_and_compare_whole() {
        let (a, b) = (hist(4.0, &[(0, 4.0)]), hist(2.0, &[(1, 2.0)]));
        let Outcome::Histogram(sum) = elem_binop(BinOp::Add, Operand::Histogram(&a), Operand::Histogram(&b)) else {
            panic!("a + b is a histogram");
        };
        assert_eq!((sum.count, sum.positive.clone()), (6.0, vec![(0, 4.0), (1, 2.0)]));
        let Outcome::Histogram(diff) = elem_binop(BinOp::Sub, Operand::Histogram(&sum), Operand::Histogram(&b)) else {
            panic!("a + b - b is a histogram");
        };
        assert_eq!(diff.positive, a.positive, "the emptied bucket is compacted away");
        assert_eq!(elem_binop(BinOp::Eq, Operand::Histogram(&diff), Operand::Histogram(&a)), Outcome::Compared(true));
        assert_eq!(elem_binop(BinOp::Ne, Operand::Histogram(&a), Operand::Histogram(&b)), Outcome::Compared(true));
        // Equality is bit for bit (Prometheus's `Equals`): a NaN sum equals itself.
        let nan = FloatHistogram { sum: f64::NAN, ..a.clone() };
        assert_eq!(elem_binop(BinOp::Eq, Operand::Histogram(&nan), Operand::Histogram(&nan)), Outcome::Compared(true));
        // A gauge added to a counter is a gauge.
        let gauge = FloatHistogram { reset_hint: ResetHint::Gauge, ..b.clone() };
        let Outcome::Histogram(sum) = elem_binop(BinOp::Add, Operand::Histogram(&a), Operand::Histogram(&gauge)) else {
            panic!("a + gauge is a histogram");
        };
        assert_eq!(sum.reset_hint, ResetHint::Gauge);
    }
}
