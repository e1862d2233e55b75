//! PromQL (a `promql-parser` AST) → DataFusion logical plans.
//!
//! Every instant-vector expression becomes a plan of `labels`, `ts` (the
//! step) and `value` rows over the query's step grid (an instant query is a
//! grid of one step):
//!
//! | PromQL | plan |
//! |---|---|
//! | selector | `PromInstantVector(PromSeriesScan)` ([`super::nodes`]) |
//! | range function of `sel[r]` | `PromRangeFunction(PromSeriesScan)` |
//! | `sum by (l) (v)` … | `Projection(labels := prom_labels_keep(labels, l))` → `Aggregate(labels, ts)` |
//! | `v op scalar` | `Projection(value := value op s)` (comparisons: `Filter`); a side that may hold native histograms (a selector …): `PromSampleBinary(Projection(l_value, l_hist, r_value, r_hist))` |
//! | `v op w` (one-to-one) | `Projection(key := match labels)` on both sides → inner `Join(key, ts)` → `Projection` / `Filter`, or `PromSampleBinary` as above |
//! | `v and/unless w` | semi / anti `Join(key, ts)` |
//! | `abs(v)` … | `Projection(value := abs(value), labels := prom_labels_drop_name(labels))` |
//!
//! Scalars are constants when they are (folded at plan time), else plans
//! of `ts`, `value` rows (`time()`, `PromSteps`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BinaryBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{JoinType, ScalarValue};
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, col, lit,
};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Expr as PExpr, LabelModifier, Offset, SubqueryExpr,
    VectorMatchCardinality, VectorSelector,
};

use super::QueryError;
use super::aggregates::PromAgg;
use super::binary::BinOp;
use super::functions::RangeFn;
use super::info::InfoSpec;
use super::labels;
use super::labels::NameDrop;
use super::nodes::{
    AggOp, Grid, HIST, L_HIST, L_VALUE, LABELS, MatchOpSpec, MatcherSpec, N_FLOATS, N_HISTOGRAMS, NodeKind, PromNode,
    R_HIST, R_VALUE, TS, TimeShift, VALUE,
};
use super::vector_fns::{DateFn, F64, Grouping, KAgg, VecFn};

/// What an expression plans to.
#[derive(Debug, Clone)]
pub enum Planned {
    /// A constant scalar.
    Const(f64),
    /// A scalar per step: a plan of `ts`, `value`.
    Scalar(LogicalPlan),
    /// An instant vector: a plan of `labels`, `ts`, `value`.
    Vector(LogicalPlan),
    /// A range vector's raw samples (only as the whole query): `labels`,
    /// `ts` (the sample's time), `value`.
    Matrix(LogicalPlan),
    /// A string.
    String(String),
}

/// The query-wide settings the planner needs.
#[derive(Debug, Clone, Copy)]
pub struct PlanSettings {
    /// The steps.
    pub grid: Grid,
    /// Lookback delta, ms.
    pub lookback_ms: i64,
    /// The step of subqueries that give none, ms.
    pub subquery_step_ms: i64,
    /// Most points a subquery's steps may have (the query's `max_samples`;
    /// 0: no limit).
    pub max_points: usize,
    /// Whether operations drop the metric name at once or flag the series
    /// for delayed name removal.
    pub name_drop: NameDrop,
}

/// Plans `expr` over `settings`.
///
/// # Errors
/// [`QueryError::Unsupported`] for what is not built yet;
/// [`QueryError::BadData`] for invalid expressions the parser let through.
pub fn plan(expr: &PExpr, settings: &PlanSettings) -> Result<Planned, QueryError> {
    let planner = Planner { settings: *settings, query: settings.grid };
    // A selector or range function that is the whole query returns native
    // histograms too.
    if let Some(p) = planner.histogram_source(expr) {
        return p.map(Planned::Vector);
    }
    planner.plan(expr)
}

/// The grouping labels of an aggregation's rows: they keep a
/// delayed-name-removal flag when they keep a metadata label
/// (`sum by (__name__) (rate(x[5m]))`).
fn group_labels(agg: &AggregateExpr) -> Expr {
    match &agg.modifier {
        None => labels_udf(LabelsOp::Keep(Vec::new())).call(vec![col(LABELS)]),
        Some(LabelModifier::Include(l)) => labels_udf(LabelsOp::GroupBy(l.labels.clone())).call(vec![col(LABELS)]),
        Some(LabelModifier::Exclude(l)) => {
            let mut names = l.labels.clone();
            names.push(labels::METRIC_NAME.to_owned());
            labels_udf(LabelsOp::GroupWithout(names)).call(vec![col(LABELS)])
        }
    }
}

/// The matching key of a binary operator's sides: the `on` labels, or all
/// but the `ignoring` ones and the metric name.
fn match_key(b: &BinaryExpr) -> LabelsOp {
    match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(names)) => LabelsOp::Keep(names.labels.clone()),
        Some(LabelModifier::Exclude(names)) => {
            let mut n = names.labels.clone();
            n.push(labels::METRIC_NAME.to_owned());
            LabelsOp::Drop(n)
        }
        None => LabelsOp::Drop(vec![labels::METRIC_NAME.to_owned()]),
    }
}

/// The grouping of an aggregation evaluated by the vector-function node.
fn vec_grouping(agg: &AggregateExpr) -> Grouping {
    match &agg.modifier {
        None => Grouping::By(Vec::new()),
        Some(LabelModifier::Include(l)) => Grouping::By(l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => Grouping::Without(l.labels.clone()),
    }
}

/// The aggregations that keep or select members (`topk`, …, `quantile`).
fn k_agg(op: &str) -> Option<KAgg> {
    match op {
        "topk" => Some(KAgg::Topk),
        "bottomk" => Some(KAgg::Bottomk),
        "limitk" => Some(KAgg::Limitk),
        "limit_ratio" => Some(KAgg::LimitRatio),
        "quantile" => Some(KAgg::Quantile),
        _ => None,
    }
}

/// `min` or `max` of the values as Prometheus takes them: NaN only when
/// every value is NaN, whatever the NaN's bits (Arrow orders floats by
/// their bits: a NaN with another payload or sign would not be skipped by
/// comparing with `f64::NAN`); `rows` filters the rows aggregated.
fn min_max(agg: fn(Expr) -> Expr, rows: Option<Expr>) -> datafusion::common::Result<Expr> {
    use datafusion::functions::expr_fn::coalesce;
    use datafusion::functions::math::expr_fn::isnan;
    use datafusion::logical_expr::ExprFunctionExt;
    let numbers = match &rows {
        Some(r) => r.clone().and(!isnan(col(VALUE))),
        None => !isnan(col(VALUE)),
    };
    let non_nan = agg(col(VALUE)).filter(numbers).build()?;
    let any = match rows {
        Some(r) => agg(col(VALUE)).filter(r).build()?,
        None => agg(col(VALUE)),
    };
    Ok(coalesce(vec![non_nan, any]))
}

/// The column of a histogram aggregation's input holding each row's own
/// series labels (for warnings naming its metric).
const SERIES: &str = "series";

/// A subquery's step when it names none (Prometheus's default evaluation
/// interval).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

struct Planner {
    /// The steps this (sub)expression is evaluated at.
    settings: PlanSettings,
    /// The query's own steps (`start()` and `end()` of `@`).
    query: Grid,
}

fn df(e: datafusion::common::DataFusionError) -> QueryError {
    QueryError::Internal(e.to_string())
}

fn unsupported(what: impl Into<String>) -> QueryError {
    QueryError::Unsupported(what.into())
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Planner {
    fn plan(&self, expr: &PExpr) -> Result<Planned, QueryError> {
        match expr {
            PExpr::NumberLiteral(n) => Ok(Planned::Const(n.val)),
            PExpr::StringLiteral(s) => Ok(Planned::String(s.val.clone())),
            PExpr::Paren(p) => self.plan(&p.expr),
            PExpr::Unary(u) => match self.plan(&u.expr)? {
                Planned::Const(v) => Ok(Planned::Const(-v)),
                Planned::Scalar(p) => Ok(Planned::Scalar(project_value(p, -col(VALUE), None)?)),
                Planned::Vector(p) => {
                    Ok(Planned::Vector(project_value(p, -col(VALUE), Some(self.settings.name_drop))?))
                }
                _ => Err(QueryError::BadData("unary minus needs a scalar or an instant vector".into())),
            },
            PExpr::VectorSelector(vs) => self.selector(vs).map(Planned::Vector),
            PExpr::MatrixSelector(ms) => {
                let (shift, matchers) = self.selector_parts(&ms.vs)?;
                let range = duration_ms(ms.range);
                let grid = self.settings.grid;
                // Raw samples of (t − range, t] at the (single) evaluation time.
                let end = shift.apply(grid.end_ms);
                let scan = PromNode::plan(
                    NodeKind::SeriesScan {
                        matchers,
                        start_ms: end.saturating_sub(range).saturating_add(1),
                        end_ms: end,
                    },
                    None,
                )
                .map_err(df)?;
                Ok(Planned::Matrix(scan))
            }
            PExpr::Call(call) => self.call(call),
            PExpr::Aggregate(agg) => self.aggregate(agg),
            PExpr::Binary(b) => self.binary(b),
            PExpr::Subquery(sq) => Ok(Planned::Matrix(self.subquery(sq)?.0)),
            PExpr::Extension(_) => Err(unsupported("extension expressions")),
        }
    }

    /// The shift of an `offset` and an `@`.
    fn shift(&self, offset: Option<&Offset>, at: Option<&AtModifier>) -> TimeShift {
        let offset_ms = match offset {
            Some(Offset::Pos(d)) => duration_ms(*d),
            Some(Offset::Neg(d)) => -duration_ms(*d),
            None => 0,
        };
        let at_ms = match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query.start_ms),
            Some(AtModifier::End) => Some(self.query.end_ms),
            Some(AtModifier::At(t)) => Some(match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => duration_ms(d),
                Err(e) => -duration_ms(e.duration()),
            }),
        };
        TimeShift { offset_ms, at_ms }
    }

    fn selector_parts(&self, vs: &VectorSelector) -> Result<(TimeShift, Vec<MatcherSpec>), QueryError> {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(unsupported("'or' in label matchers"));
        }
        let shift = self.shift(vs.offset.as_ref(), vs.at.as_ref());
        let mut matchers: Vec<MatcherSpec> = Vec::new();
        if let Some(name) = &vs.name {
            matchers.push(MatcherSpec {
                name: labels::METRIC_NAME.into(),
                op: MatchOpSpec::Equal,
                value: name.clone(),
            });
        }
        for m in &vs.matchers.matchers {
            let op = match m.op {
                PMatchOp::Equal => MatchOpSpec::Equal,
                PMatchOp::NotEqual => MatchOpSpec::NotEqual,
                PMatchOp::Re(_) => MatchOpSpec::Regex,
                PMatchOp::NotRe(_) => MatchOpSpec::NotRegex,
            };
            matchers.push(MatcherSpec { name: m.name.clone(), op, value: m.value.clone() });
        }
        Ok((shift, matchers))
    }

    /// The range of sample times the steps read through `shift`, widened by `back`.
    fn read_range(&self, shift: TimeShift, back: i64) -> (i64, i64) {
        let g = self.settings.grid;
        let (a, b) = (shift.apply(g.start_ms), shift.apply(g.end_ms));
        (a.min(b).saturating_sub(back).saturating_add(1), a.max(b))
    }

    fn selector(&self, vs: &VectorSelector) -> Result<LogicalPlan, QueryError> {
        self.selector_with(vs, false, false)
    }

    /// A selector's instant vector; `sample_time`: each value is its
    /// sample's timestamp in seconds (`timestamp(v)`).
    /// `histograms`: native histogram samples are rows too (the selector
    /// is the whole query).
    fn selector_with(
        &self,
        vs: &VectorSelector,
        sample_time: bool,
        histograms: bool,
    ) -> Result<LogicalPlan, QueryError> {
        let (shift, matchers) = self.selector_parts(vs)?;
        self.instant_vector(matchers, shift, sample_time, histograms)
    }

    /// The instant vector of the series `matchers` select, read through
    /// `shift` (see [`Self::selector_with`]).
    fn instant_vector(
        &self,
        matchers: Vec<MatcherSpec>,
        shift: TimeShift,
        sample_time: bool,
        histograms: bool,
    ) -> Result<LogicalPlan, QueryError> {
        let lookback_ms = self.settings.lookback_ms;
        let (start_ms, end_ms) = self.read_range(shift, lookback_ms);
        let scan = PromNode::plan(NodeKind::SeriesScan { matchers, start_ms, end_ms }, None).map_err(df)?;
        let node = NodeKind::InstantVector { grid: self.settings.grid, shift, lookback_ms, sample_time, histograms };
        PromNode::plan(node, Some(scan)).map_err(df)
    }

    /// The [`VecFn`] of a function that keeps samples whole (see
    /// [`keeps_samples`]).
    fn sample_keeping_fn(&self, call: &Call) -> Result<VecFn, QueryError> {
        let (name, args) = (call.func.name, &call.args.args);
        let strings = |from: usize| args[from..].iter().map(|a| string_arg(a)).collect::<Result<Vec<_>, _>>();
        Ok(match name {
            "label_replace" => VecFn::LabelReplace {
                dst: string_arg(&args[1])?,
                replacement: string_arg(&args[2])?,
                src: string_arg(&args[3])?,
                regex: string_arg(&args[4])?,
            },
            "label_join" => {
                VecFn::LabelJoin { dst: string_arg(&args[1])?, separator: string_arg(&args[2])?, srcs: strings(3)? }
            }
            "sort_by_label" | "sort_by_label_desc" => {
                VecFn::SortByLabel { labels: strings(1)?, desc: name == "sort_by_label_desc" }
            }
            _ => return Err(QueryError::Internal(format!("{name} does not keep samples"))),
        })
    }

    /// `info(v, {matchers})` ([`super::info`]): `v`'s rows, floats and
    /// histograms, into a `PromInfo` node that reads the info series where
    /// `v`'s first selector reads.
    fn info(&self, call: &Call) -> Result<LogicalPlan, QueryError> {
        let args = &call.args.args;
        let base = match self.histogram_source(&args[0]) {
            Some(p) => p?,
            None => match self.plan(&args[0])? {
                Planned::Vector(p) => p,
                _ => return Err(QueryError::BadData("info needs an instant vector".into())),
            },
        };
        let matchers = match args.get(1).map(|a| strip_parens(a)) {
            None => Vec::new(),
            Some(PExpr::VectorSelector(vs)) => self.selector_parts(vs)?.1,
            Some(_) => return Err(QueryError::BadData("info's second argument must be label matchers".into())),
        };
        let spec = InfoSpec::new(matchers);
        let (offset_ms, at) = info_reference(&args[0]);
        let shift = TimeShift { offset_ms, ..self.shift(None, at.as_ref()) };
        let lookback_ms = self.settings.lookback_ms;
        let (start_ms, end_ms) = self.read_range(shift, lookback_ms);
        let node = NodeKind::Info { spec, grid: self.settings.grid, shift, lookback_ms, start_ms, end_ms };
        PromNode::plan(node, Some(with_hist_column(base)?)).map_err(df)
    }

    /// A range function of a range vector: a matrix selector's raw samples
    /// or a subquery's steps.
    fn range_fn(&self, arg: &PExpr, function: RangeFn) -> Result<LogicalPlan, QueryError> {
        self.range_fn_with(arg, function, false)
    }

    /// `histograms`: histogram results are rows too (the function is the
    /// whole query or the input of a histogram function).
    fn range_fn_with(&self, arg: &PExpr, function: RangeFn, histograms: bool) -> Result<LogicalPlan, QueryError> {
        let subquery = matches!(strip_parens(arg), PExpr::Subquery(_));
        let (input, shift, range_ms) = match strip_parens(arg) {
            PExpr::MatrixSelector(ms) => {
                let (shift, matchers) = self.selector_parts(&ms.vs)?;
                let range_ms = duration_ms(ms.range);
                let (start_ms, end_ms) = self.read_range(shift, range_ms);
                let scan = PromNode::plan(NodeKind::SeriesScan { matchers, start_ms, end_ms }, None).map_err(df)?;
                (scan, shift, range_ms)
            }
            PExpr::Subquery(sq) => self.subquery(sq)?,
            _ => return Err(QueryError::BadData("expected a range vector".into())),
        };
        let grid = self.settings.grid;
        let node = NodeKind::RangeFunction { grid, shift, range_ms, function, histograms, subquery };
        PromNode::plan(node, Some(input)).map_err(df)
    }

    /// A subquery `expr[range:step] offset … @ …`: `expr` planned over the
    /// steps that are multiples of `step` within the windows the outer steps
    /// read (as Prometheus aligns them), with the shift and range that map
    /// an outer step to its window.
    fn subquery(&self, sq: &SubqueryExpr) -> Result<(LogicalPlan, TimeShift, i64), QueryError> {
        let shift = self.shift(sq.offset.as_ref(), sq.at.as_ref());
        let range_ms = duration_ms(sq.range);
        let step = sq.step.map_or(self.settings.subquery_step_ms, duration_ms).max(1);
        let g = self.settings.grid;
        let (a, b) = (shift.apply(g.start_ms), shift.apply(g.end_ms));
        let from = a.min(b).saturating_sub(range_ms);
        // Go's integer division (towards zero), then strictly after `from`.
        let mut start = step * (from / step);
        if start <= from {
            start = start.saturating_add(step);
        }
        let inner_grid = Grid { start_ms: start, end_ms: a.max(b), step_ms: step };
        // Each step is a point of every series the subquery evaluates: a grid
        // over the query's sample limit cannot be evaluated.
        let points = (i128::from(inner_grid.end_ms) - i128::from(inner_grid.start_ms)) / i128::from(step) + 1;
        if self.settings.max_points > 0 && points > self.settings.max_points as i128 {
            return Err(QueryError::Limit(
                "query processing would load too many samples into memory in query execution".into(),
            ));
        }
        let inner = Planner { settings: PlanSettings { grid: inner_grid, ..self.settings }, query: self.query };
        // Its native histograms are samples of the range too.
        if let Some(p) = inner.histogram_source(&sq.expr) {
            return Ok((p?, shift, range_ms));
        }
        match inner.plan(&sq.expr)? {
            Planned::Vector(p) => Ok((p, shift, range_ms)),
            _ => Err(QueryError::BadData("subquery is only allowed on instant vector".into())),
        }
    }

    /// A parameter that must be a number known at plan time.
    fn const_arg(&self, function: &str, arg: &PExpr) -> Result<f64, QueryError> {
        match self.plan(arg)? {
            Planned::Const(v) => Ok(v),
            _ => Err(unsupported(format!("{function} with a parameter that varies per step"))),
        }
    }

    /// `function(arg)` as a `PromVectorFunction` over the vector `arg`.
    fn vector_fn(&self, function: &str, arg: &PExpr, f: VecFn) -> Result<Planned, QueryError> {
        match self.plan(arg)? {
            Planned::Vector(p) => self.vector_fn_of(p, f),
            _ => Err(QueryError::BadData(format!("{function} needs an instant vector"))),
        }
    }

    /// A function of native histograms: over a histogram source (see
    /// [`Planner::histogram_source`]), its histogram samples are the
    /// function's input too.
    fn histogram_fn(&self, function: &str, arg: &PExpr, f: VecFn) -> Result<Planned, QueryError> {
        match self.histogram_source(arg) {
            Some(p) => self.vector_fn_of(p?, f),
            None => self.vector_fn(function, arg, f),
        }
    }

    /// The plan of an expression whose native histograms PromLake evaluates
    /// (a selector; a range function of a range selector or subquery; an
    /// aggregation of one of these; an operator with one of these on a
    /// side), with histogram rows; `None` for other expressions.
    fn histogram_source(&self, e: &PExpr) -> Option<Result<LogicalPlan, QueryError>> {
        match strip_parens(e) {
            PExpr::Binary(b) if matches!(b.op.to_string().as_str(), "and" | "or" | "unless") => {
                self.histogram_set_operation(b)
            }
            PExpr::Binary(b) => self.histogram_binary(b),
            PExpr::Unary(u) => {
                let input = self.histogram_source(&u.expr)?;
                Some(input.and_then(|p| {
                    sample_binary(
                        LogicalPlanBuilder::from(with_hist_column(p)?),
                        (drop_name_as(col(LABELS), self.settings.name_drop), col(TS)),
                        (col(VALUE), col(HIST)),
                        (lit(0.0), lit(ScalarValue::Binary(None))),
                        NodeKind::SampleBinary { op: BinOp::Neg, return_bool: false, keep_right: false },
                    )
                }))
            }
            PExpr::VectorSelector(vs) => Some(self.selector_with(vs, false, true)),
            PExpr::Call(call) if call.func.name == "info" => Some(self.info(call)),
            // Functions that keep samples whole pass histograms through.
            PExpr::Call(call) if keeps_samples(call.func.name) => {
                let input = self.histogram_source(call.args.args.first()?)?;
                Some(input.and_then(|p| {
                    let function = self.sample_keeping_fn(call)?;
                    let node = NodeKind::VectorFunction { grid: self.settings.grid, function, histograms: true };
                    PromNode::plan(node, Some(p)).map_err(df)
                }))
            }
            PExpr::Call(call) => {
                let function = RangeFn::from_name(call.func.name)?;
                let arg = call.args.args.first()?;
                matches!(strip_parens(arg), PExpr::MatrixSelector(_) | PExpr::Subquery(_))
                    .then(|| self.range_fn_with(arg, function, true))
            }
            PExpr::Aggregate(agg) => self.histogram_aggregation(agg),
            _ => None,
        }
    }

    /// `and`, `or` or `unless` with a histogram source on a side: set
    /// operators keep whole samples, histograms as floats (the other side,
    /// if it is no histogram source, gets a null [`HIST`] column).
    fn histogram_set_operation(&self, b: &BinaryExpr) -> Option<Result<LogicalPlan, QueryError>> {
        let (l, r) = (self.histogram_source(&b.lhs), self.histogram_source(&b.rhs));
        if l.is_none() && r.is_none() {
            return None;
        }
        let side = |source: Option<Result<LogicalPlan, QueryError>>, e: &PExpr| -> Result<LogicalPlan, QueryError> {
            let plan = match source {
                Some(p) => p?,
                None => match self.plan(e)? {
                    Planned::Vector(p) => p,
                    _ => {
                        return Err(QueryError::BadData(format!("set operator {} not allowed with a scalar", b.op)));
                    }
                },
            };
            with_hist_column(plan)
        };
        Some((|| {
            let (l, r) = (side(l, &b.lhs)?, side(r, &b.rhs)?);
            self.set_operation(b, l, r, &b.op.to_string(), true)
        })())
    }

    /// An aggregation of a histogram source, planned with its histogram
    /// rows (see [`Planner::histogram_source`]); `None` when its input is
    /// no histogram source or the aggregation does not take histograms.
    fn histogram_aggregation(&self, agg: &AggregateExpr) -> Option<Result<LogicalPlan, QueryError>> {
        match agg.op.to_string().as_str() {
            "sum" | "avg" | "count" | "group" | "min" | "max" | "stddev" | "stdvar" => {
                let input = self.histogram_source(&agg.expr)?;
                Some(input.and_then(|p| self.histogram_aggregate(agg, p)))
            }
            // `limitk` and `limit_ratio` keep the histograms they select;
            // `topk`, `bottomk` and `quantile` (with a constant parameter
            // here) see them to ignore them with Prometheus's info, their
            // output holding floats only.
            name @ ("topk" | "bottomk" | "quantile" | "limitk" | "limit_ratio") => {
                let op = k_agg(name)?;
                let keeps = matches!(op, KAgg::Limitk | KAgg::LimitRatio);
                let (param, per_step) = match self.plan(agg.param.as_deref()?) {
                    Ok(Planned::Const(v)) => (v, None),
                    Ok(p @ Planned::Scalar(_)) if keeps => (f64::NAN, Some(p)),
                    _ => return None,
                };
                let input = self.histogram_source(&agg.expr)?;
                let node = NodeKind::VectorFunction {
                    grid: self.settings.grid,
                    function: VecFn::Aggregate { op, param: F64::new(param), grouping: vec_grouping(agg) },
                    histograms: keeps,
                };
                Some(input.and_then(|p| {
                    let mut inputs = vec![p];
                    if let Some(s) = per_step {
                        inputs.push(self.scalar_plan(s)?);
                    }
                    PromNode::plan_inputs(node, inputs).map_err(df)
                }))
            }
            _ => None,
        }
    }

    /// `sum`, `avg`, `count`, `group`, `min`, `max`, `stddev` or `stdvar`
    /// of a histogram source, as Prometheus aggregates vectors holding
    /// native histograms: DataFusion's aggregate by (group, step) folds the
    /// floats as [`Planner::aggregate`] does and the histograms with
    /// [`super::aggregates::hist_udaf`], counting both; the
    /// `PromAggregateResult` node makes the rows and annotations.
    fn histogram_aggregate(&self, agg: &AggregateExpr, input: LogicalPlan) -> Result<LogicalPlan, QueryError> {
        use super::aggregates::{HistAgg, hist_udaf};
        use datafusion::logical_expr::ExprFunctionExt;
        let op = agg.op.to_string();
        let floats = col(HIST).is_null();
        let prom = |kind| super::aggregates::udaf(kind).call(vec![col(VALUE)]).filter(floats.clone()).build();
        let (value, result) = match op.as_str() {
            "sum" => (prom(PromAgg::Sum), AggOp::Sum),
            "avg" => (prom(PromAgg::Avg), AggOp::Avg),
            "count" => (Ok(datafusion::logical_expr::cast(count(col(VALUE)), DataType::Float64)), AggOp::Count),
            "group" => (Ok(max(lit(1.0))), AggOp::Count),
            "min" => (min_max(min, Some(floats.clone())), AggOp::FloatsOnly("min")),
            "max" => (min_max(max, Some(floats.clone())), AggOp::FloatsOnly("max")),
            "stddev" => (prom(PromAgg::Stddev), AggOp::FloatsOnly("stddev")),
            "stdvar" => (prom(PromAgg::Stdvar), AggOp::FloatsOnly("stdvar")),
            _ => return Err(unsupported(format!("aggregation {op} of native histograms"))),
        };
        let value = value.map_err(df)?;
        let hist = match result {
            AggOp::Sum => hist_udaf(HistAgg::Sum).call(vec![col(HIST), col(SERIES)]),
            AggOp::Avg => hist_udaf(HistAgg::Avg).call(vec![col(HIST), col(SERIES)]),
            _ => lit(ScalarValue::Binary(None)),
        };
        let n_floats = count(lit(1)).filter(floats).build().map_err(df)?;
        // An input of floats only (`topk`'s) has no histogram column.
        let input = if input.schema().has_column_with_unqualified_name(HIST) {
            input
        } else {
            LogicalPlanBuilder::from(input)
                .project(vec![col(LABELS), col(TS), col(VALUE), lit(ScalarValue::Binary(None)).alias(HIST)])
                .and_then(LogicalPlanBuilder::build)
                .map_err(df)?
        };
        let p = LogicalPlanBuilder::from(input)
            .project(vec![group_labels(agg).alias(LABELS), col(TS), col(VALUE), col(HIST), col(LABELS).alias(SERIES)])
            .and_then(|b| {
                b.aggregate(
                    vec![col(LABELS), col(TS)],
                    vec![
                        value.alias(VALUE),
                        hist.alias(HIST),
                        n_floats.alias(N_FLOATS),
                        count(col(HIST)).alias(N_HISTOGRAMS),
                    ],
                )
            })
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)?;
        PromNode::plan(NodeKind::AggregateResult { op: result }, Some(p)).map_err(df)
    }

    fn vector_fn_of(&self, input: LogicalPlan, f: VecFn) -> Result<Planned, QueryError> {
        let node = NodeKind::VectorFunction { grid: self.settings.grid, function: f, histograms: false };
        PromNode::plan(node, Some(input)).map(Planned::Vector).map_err(df)
    }

    fn call(&self, call: &Call) -> Result<Planned, QueryError> {
        let name = call.func.name;
        let args = &call.args.args;
        if let Some(function) = RangeFn::from_name(name) {
            return self.range_fn(&args[0], function).map(Planned::Vector);
        }
        let math = |f: fn(Expr) -> Expr| -> Result<Planned, QueryError> {
            match self.plan(&args[0])? {
                Planned::Vector(p) => {
                    Ok(Planned::Vector(project_value(p, f(col(VALUE)), Some(self.settings.name_drop))?))
                }
                _ => Err(QueryError::BadData(format!("{name} needs an instant vector"))),
            }
        };
        use datafusion::functions::math::expr_fn as m;
        match name {
            "info" => Ok(Planned::Vector(floats_only(self.info(call)?)?)),
            "abs" => math(m::abs),
            "ceil" => math(m::ceil),
            "floor" => math(m::floor),
            "exp" => math(m::exp),
            "sqrt" => math(m::sqrt),
            "ln" => math(m::ln),
            "log2" => math(m::log2),
            "log10" => math(m::log10),
            "sgn" => math(m::signum),
            "sin" => math(m::sin),
            "cos" => math(m::cos),
            "tan" => math(m::tan),
            "asin" => math(m::asin),
            "acos" => math(m::acos),
            "atan" => math(m::atan),
            "sinh" => math(m::sinh),
            "cosh" => math(m::cosh),
            "tanh" => math(m::tanh),
            "asinh" => math(m::asinh),
            "acosh" => math(m::acosh),
            "atanh" => math(m::atanh),
            "deg" => math(m::degrees),
            "rad" => math(m::radians),
            "time" => {
                let steps = PromNode::plan(NodeKind::Steps { grid: self.settings.grid }, None).map_err(df)?;
                let p = LogicalPlanBuilder::from(steps)
                    .project(vec![
                        col(TS),
                        (datafusion::logical_expr::cast(col(TS), DataType::Float64) / lit(1000.0)).alias(VALUE),
                    ])
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)?;
                Ok(Planned::Scalar(p))
            }
            "pi" => Ok(Planned::Const(std::f64::consts::PI)),
            "sort" | "sort_desc" => self.vector_fn(name, &args[0], VecFn::Sort { desc: name == "sort_desc" }),
            name if keeps_samples(name) => self.vector_fn(name, &args[0], self.sample_keeping_fn(call)?),
            "predict_linear" => {
                let t = self.const_arg(name, &args[1])?;
                self.range_fn(&args[0], RangeFn::PredictLinear(F64::new(t))).map(Planned::Vector)
            }
            "quantile_over_time" => {
                let q = self.const_arg(name, &args[0])?;
                self.range_fn(&args[1], RangeFn::QuantileOverTime(F64::new(q))).map(Planned::Vector)
            }
            "double_exponential_smoothing" => {
                let (sf, tf) = (self.const_arg(name, &args[1])?, self.const_arg(name, &args[2])?);
                if sf <= 0.0 || sf >= 1.0 {
                    return Err(QueryError::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if tf <= 0.0 || tf >= 1.0 {
                    return Err(QueryError::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
                let f = RangeFn::DoubleExponentialSmoothing(F64::new(sf), F64::new(tf));
                self.range_fn(&args[0], f).map(Planned::Vector)
            }
            "histogram_fraction" => {
                let (lower, upper) = (self.const_arg(name, &args[0])?, self.const_arg(name, &args[1])?);
                self.histogram_fn(name, &args[2], VecFn::HistogramFraction(F64::new(lower), F64::new(upper)))
            }
            "histogram_quantile" => {
                let q = self.const_arg(name, &args[0])?;
                self.histogram_fn(name, &args[1], VecFn::HistogramQuantile(F64::new(q)))
            }
            "histogram_count" => self.histogram_fn(name, &args[0], VecFn::HistogramCount),
            "histogram_sum" => self.histogram_fn(name, &args[0], VecFn::HistogramSum),
            "histogram_stddev" => self.histogram_fn(name, &args[0], VecFn::HistogramStddev),
            "histogram_stdvar" => self.histogram_fn(name, &args[0], VecFn::HistogramStdvar),
            "histogram_avg" => self.histogram_fn(name, &args[0], VecFn::HistogramAvg),
            "clamp" => {
                let (min, max) = (self.const_arg(name, &args[1])?, self.const_arg(name, &args[2])?);
                self.vector_fn(name, &args[0], VecFn::Clamp(F64::new(min), F64::new(max)))
            }
            "clamp_min" => {
                let min = self.const_arg(name, &args[1])?;
                self.vector_fn(name, &args[0], VecFn::ClampMin(F64::new(min)))
            }
            "clamp_max" => {
                let max = self.const_arg(name, &args[1])?;
                self.vector_fn(name, &args[0], VecFn::ClampMax(F64::new(max)))
            }
            "round" => {
                let to = match args.get(1) {
                    Some(a) => self.const_arg(name, a)?,
                    None => 1.0,
                };
                self.vector_fn(name, &args[0], VecFn::Round(F64::new(to)))
            }
            "absent" => {
                // A series whose sample is a native histogram is present.
                let labels = absent_labels(&args[0]);
                self.histogram_fn(name, &args[0], VecFn::Absent(labels))
            }
            "absent_over_time" => {
                let present = self.range_fn(&args[0], RangeFn::PresentOverTime)?;
                let labels = absent_labels(&args[0]);
                self.vector_fn_of(present, VecFn::Absent(labels))
            }
            "scalar" => {
                let Planned::Vector(p) = self.vector_fn(name, &args[0], VecFn::Scalar)? else {
                    return Err(QueryError::Internal("scalar() did not plan to a vector".into()));
                };
                let p = LogicalPlanBuilder::from(p)
                    .project(vec![col(TS), col(VALUE)])
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)?;
                Ok(Planned::Scalar(p))
            }
            "timestamp" => match strip_parens(&args[0]) {
                PExpr::VectorSelector(vs) => {
                    let p = self.selector_with(vs, true, false)?;
                    Ok(Planned::Vector(project_value(p, col(VALUE), Some(self.settings.name_drop))?))
                }
                other => match self.plan(other)? {
                    Planned::Vector(p) => {
                        let t = datafusion::logical_expr::cast(col(TS), DataType::Float64) / lit(1000.0);
                        Ok(Planned::Vector(project_value(p, t, Some(self.settings.name_drop))?))
                    }
                    _ => Err(QueryError::BadData("timestamp needs an instant vector".into())),
                },
            },
            _ if DateFn::from_name(name).is_some() => {
                let f = DateFn::from_name(name).map(VecFn::Date).ok_or_else(|| unsupported(name))?;
                match args.first() {
                    Some(a) => self.vector_fn(name, a, f),
                    None => {
                        // Of the step time: vector(time()).
                        let now = promql_parser::parser::parse("vector(time())").map_err(QueryError::Internal)?;
                        self.vector_fn(name, &now, f)
                    }
                }
            }
            "vector" => {
                let scalar = self.plan(&args[0])?;
                let steps = self.scalar_plan(scalar)?;
                let p = LogicalPlanBuilder::from(steps)
                    .project(vec![lit(ScalarValue::Binary(Some(Vec::new()))).alias(LABELS), col(TS), col(VALUE)])
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)?;
                Ok(Planned::Vector(p))
            }
            _ => Err(unsupported(format!("function {name}"))),
        }
    }

    /// A scalar as a per-step plan.
    fn scalar_plan(&self, s: Planned) -> Result<LogicalPlan, QueryError> {
        match s {
            Planned::Scalar(p) => Ok(p),
            Planned::Const(v) => {
                let steps = PromNode::plan(NodeKind::Steps { grid: self.settings.grid }, None).map_err(df)?;
                LogicalPlanBuilder::from(steps)
                    .project(vec![col(TS), lit(v).alias(VALUE)])
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)
            }
            _ => Err(QueryError::BadData("expected a scalar".into())),
        }
    }

    fn aggregate(&self, agg: &AggregateExpr) -> Result<Planned, QueryError> {
        let op = agg.op.to_string();
        // Over a histogram source the aggregation sees the histograms as
        // Prometheus's does (counts them, ignores them with an info, drops
        // mixed groups); what follows takes floats only, so the histogram
        // rows it yields are left out here.
        if let Some(p) = self.histogram_aggregation(agg) {
            return floats_only(p?).map(Planned::Vector);
        }
        if op == "count_values" {
            let param = agg.param.as_deref().ok_or_else(|| QueryError::BadData("count_values needs a label".into()))?;
            // A label name that is not UTF-8 (Go keeps a literal's bytes).
            if let PExpr::StringLiteral(s) = strip_parens(param)
                && let Some(bytes) = &s.bytes
            {
                return Err(QueryError::Execution(format!(
                    "invalid label name {}",
                    common::goquote::go_quote_bytes(bytes)
                )));
            }
            let Planned::String(label) = self.plan(param)? else {
                return Err(QueryError::BadData("count_values needs a string parameter".into()));
            };
            // Histograms are counted too (by their text).
            let input = match self.histogram_source(&agg.expr) {
                Some(p) => p?,
                None => match self.plan(&agg.expr)? {
                    Planned::Vector(p) => p,
                    _ => return Err(QueryError::BadData("count_values needs an instant vector".into())),
                },
            };
            return self.vector_fn_of(input, VecFn::CountValues { label, grouping: vec_grouping(agg) });
        }
        let Planned::Vector(input) = self.plan(&agg.expr)? else {
            return Err(QueryError::BadData(format!("{op} needs an instant vector")));
        };
        let grouping = group_labels(agg);
        let vec_grouping = vec_grouping(agg);
        if let Some(k_op) = k_agg(&op) {
            let param = agg.param.as_deref().ok_or_else(|| QueryError::BadData(format!("{op} needs a parameter")))?;
            return match self.plan(param)? {
                Planned::Const(v) => {
                    self.vector_fn_of(input, VecFn::Aggregate { op: k_op, param: F64::new(v), grouping: vec_grouping })
                }
                // A parameter that varies per step: a second input.
                p @ Planned::Scalar(_) => {
                    let f = VecFn::Aggregate { op: k_op, param: F64::new(f64::NAN), grouping: vec_grouping };
                    let node = NodeKind::VectorFunction { grid: self.settings.grid, function: f, histograms: false };
                    PromNode::plan_inputs(node, vec![input, self.scalar_plan(p)?]).map(Planned::Vector).map_err(df)
                }
                _ => Err(QueryError::BadData(format!("{op} needs a scalar parameter"))),
            };
        }
        let prom = |kind| super::aggregates::udaf(kind).call(vec![col(VALUE)]);
        let value = match op.as_str() {
            "sum" => prom(PromAgg::Sum),
            "avg" => prom(PromAgg::Avg),
            "min" => min_max(min, None).map_err(df)?,
            "max" => min_max(max, None).map_err(df)?,
            "count" => datafusion::logical_expr::cast(count(col(VALUE)), DataType::Float64),
            "group" => max(lit(1.0)),
            "stddev" => prom(PromAgg::Stddev),
            "stdvar" => prom(PromAgg::Stdvar),
            _ => return Err(unsupported(format!("aggregation {op}"))),
        };
        let p = LogicalPlanBuilder::from(input)
            .project(vec![grouping.alias(LABELS), col(TS), col(VALUE)])
            .and_then(|b| b.aggregate(vec![col(LABELS), col(TS)], vec![value.alias(VALUE)]))
            .and_then(|b| b.project(vec![col(LABELS), col(TS), col(VALUE)]))
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)?;
        Ok(Planned::Vector(p))
    }

    /// An arithmetic or comparison operator with a histogram source on a
    /// side (see [`Planner::histogram_source`]): the operands' samples,
    /// floats or histograms, through the `PromSampleBinary` node; `None`
    /// for set operators and operators on no histogram source.
    fn histogram_binary(&self, b: &BinaryExpr) -> Option<Result<LogicalPlan, QueryError>> {
        let op = b.op.to_string();
        let comparison = BinOp::parse(&op)?.is_comparison();
        let (l, r) = (self.histogram_source(&b.lhs), self.histogram_source(&b.rhs));
        if l.is_none() && r.is_none() {
            return None;
        }
        let side = |source: Option<Result<LogicalPlan, QueryError>>, e: &PExpr| -> Result<Planned, QueryError> {
            match source {
                Some(p) => p.and_then(with_hist_column).map(Planned::Vector),
                None => match self.plan(e)? {
                    Planned::Vector(p) => with_hist_column(p).map(Planned::Vector),
                    other => Ok(other),
                },
            }
        };
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let planned = (|| match (side(l, &b.lhs)?, side(r, &b.rhs)?) {
            (Planned::Vector(l), Planned::Vector(r)) => self.vector_vector(b, l, r, &op, comparison, return_bool, true),
            (Planned::Vector(v), s) => self.vector_scalar(v, s, &op, comparison, return_bool, false, true),
            (s, Planned::Vector(v)) => self.vector_scalar(v, s, &op, comparison, return_bool, true, true),
            _ => Err(QueryError::Internal("a histogram source that is no vector".into())),
        })();
        Some(planned.and_then(|p| match p {
            Planned::Vector(p) => Ok(p),
            _ => Err(QueryError::Internal("a vector operator without a vector".into())),
        }))
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Planned, QueryError> {
        // Histogram samples are operands too (for their annotations and
        // `bool` results); what follows takes their float results.
        if let Some(p) = self.histogram_binary(b) {
            return floats_only(p?).map(Planned::Vector);
        }
        let op = b.op.to_string();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.plan(&b.lhs)?;
        let rhs = self.plan(&b.rhs)?;
        let comparison = matches!(op.as_str(), "==" | "!=" | ">" | "<" | ">=" | "<=");
        match (lhs, rhs) {
            (Planned::Const(a), Planned::Const(c)) => {
                let v = const_op(&op, a, c).ok_or_else(|| unsupported(format!("operator {op}")))?;
                Ok(Planned::Const(v))
            }
            (Planned::Vector(v), s @ (Planned::Const(_) | Planned::Scalar(_))) => {
                self.vector_scalar(v, s, &op, comparison, return_bool, false, false)
            }
            (s @ (Planned::Const(_) | Planned::Scalar(_)), Planned::Vector(v)) => {
                self.vector_scalar(v, s, &op, comparison, return_bool, true, false)
            }
            (a @ (Planned::Const(_) | Planned::Scalar(_)), c @ (Planned::Const(_) | Planned::Scalar(_))) => {
                let (a, c) = (self.scalar_plan(a)?, self.scalar_plan(c)?);
                let joined = LogicalPlanBuilder::from(a)
                    .alias("l")
                    .and_then(|l| {
                        l.join(
                            LogicalPlanBuilder::from(c).alias("r")?.build()?,
                            JoinType::Inner,
                            (vec!["l.ts"], vec!["r.ts"]),
                            None,
                        )
                    })
                    .map_err(df)?;
                let e = binary_expr(&op, col("l.value"), col("r.value"), true)?;
                let p = joined
                    .project(vec![col("l.ts").alias(TS), e.alias(VALUE)])
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)?;
                Ok(Planned::Scalar(p))
            }
            (Planned::Vector(l), Planned::Vector(r)) => {
                self.vector_vector(b, l, r, &op, comparison, return_bool, false)
            }
            _ => Err(QueryError::BadData(format!("operator {op} on strings or range vectors"))),
        }
    }

    /// A vector and a scalar (`scalar_left`: `s op v`); `hist`: the
    /// vector has a [`HIST`] column and the samples go through the
    /// `PromSampleBinary` node.
    #[allow(clippy::too_many_arguments)]
    fn vector_scalar(
        &self,
        v: LogicalPlan,
        s: Planned,
        op: &str,
        comparison: bool,
        return_bool: bool,
        scalar_left: bool,
        hist: bool,
    ) -> Result<Planned, QueryError> {
        if matches!(op, "and" | "or" | "unless") {
            return Err(QueryError::BadData(format!("set operator {op} not allowed with a scalar")));
        }
        let (plan, sv) = match s {
            Planned::Const(c) => (v, lit(c)),
            Planned::Scalar(sp) => {
                // Both sides qualified: a side's unqualified `ts` beside the
                // other's `s.ts` would be ambiguous.
                let mut columns =
                    vec![col("v.labels").alias(LABELS), col("v.ts").alias(TS), col("v.value").alias(VALUE)];
                if hist {
                    columns.push(col(format!("v.{HIST}")).alias(HIST));
                }
                columns.push(col("s.value").alias("s_value"));
                let joined = LogicalPlanBuilder::from(v)
                    .alias("v")
                    .and_then(|b| {
                        b.join(
                            LogicalPlanBuilder::from(sp).alias("s")?.build()?,
                            JoinType::Inner,
                            (vec!["v.ts"], vec!["s.ts"]),
                            None,
                        )
                    })
                    .and_then(|b| b.project(columns))
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(df)?;
                (joined, col("s_value"))
            }
            _ => return Err(QueryError::BadData(format!("operator {op} on strings or range vectors"))),
        };
        if hist {
            // Arithmetic and `bool` drop the name; a filter keeps the
            // vector's sample (and name).
            let labels = if comparison && !return_bool {
                col(LABELS)
            } else {
                drop_name_as(col(LABELS), self.settings.name_drop)
            };
            let vector = (col(VALUE), col(HIST));
            let scalar = (sv, lit(ScalarValue::Binary(None)));
            let (l, r) = if scalar_left { (scalar, vector) } else { (vector, scalar) };
            let node = binary_node(op, return_bool, scalar_left)?;
            return sample_binary(LogicalPlanBuilder::from(plan), (labels, col(TS)), l, r, node).map(Planned::Vector);
        }
        let (l, r) = if scalar_left { (sv, col(VALUE)) } else { (col(VALUE), sv) };
        if comparison && !return_bool {
            let cond = binary_expr(op, l, r, false)?;
            // A filtering comparison keeps the vector's value (and name).
            let p = LogicalPlanBuilder::from(plan)
                .filter(cond)
                .and_then(|b| b.project(vec![col(LABELS), col(TS), col(VALUE)]))
                .and_then(LogicalPlanBuilder::build)
                .map_err(df)?;
            return Ok(Planned::Vector(p));
        }
        let e = binary_expr(op, l, r, true)?;
        let p = LogicalPlanBuilder::from(plan)
            .project(vec![drop_name_as(col(LABELS), self.settings.name_drop).alias(LABELS), col(TS), e.alias(VALUE)])
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)?;
        Ok(Planned::Vector(p))
    }

    /// `and`, `or` or `unless` of two vector plans (`hist`: both have a
    /// [`HIST`] column, kept).
    fn set_operation(
        &self,
        b: &BinaryExpr,
        l: LogicalPlan,
        r: LogicalPlan,
        op: &str,
        hist: bool,
    ) -> Result<LogicalPlan, QueryError> {
        let key_op = match_key(b);
        let out = |side: &str| {
            let mut columns = vec![
                col(format!("{side}.labels")).alias(LABELS),
                col(format!("{side}.ts")).alias(TS),
                col(format!("{side}.value")).alias(VALUE),
            ];
            if hist {
                columns.push(col(format!("{side}.{HIST}")).alias(HIST));
            }
            columns
        };
        let (lk, rk) = (keyed(l.clone(), &key_op, "l", hist)?, keyed(r, &key_op, "r", hist)?);
        if op == "or" {
            // lhs, plus the rhs series whose key no lhs series has at that step.
            let missing = LogicalPlanBuilder::from(rk)
                .join(lk, JoinType::LeftAnti, (vec!["r.key", "r.ts"], vec!["l.key", "l.ts"]), None)
                .and_then(|b| b.project(out("r")))
                .and_then(LogicalPlanBuilder::build)
                .map_err(df)?;
            return LogicalPlanBuilder::from(l).union(missing).and_then(LogicalPlanBuilder::build).map_err(df);
        }
        let jt = if op == "and" { JoinType::LeftSemi } else { JoinType::LeftAnti };
        LogicalPlanBuilder::from(lk)
            .join(rk, jt, (vec!["l.key", "l.ts"], vec!["r.key", "r.ts"]), None)
            .and_then(|b| b.project(out("l")))
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)
    }

    /// Two vectors matched by their keys; `hist`: both have a [`HIST`]
    /// column and the samples go through the `PromSampleBinary` node.
    #[allow(clippy::too_many_arguments)]
    fn vector_vector(
        &self,
        b: &BinaryExpr,
        l: LogicalPlan,
        r: LogicalPlan,
        op: &str,
        comparison: bool,
        return_bool: bool,
        hist: bool,
    ) -> Result<Planned, QueryError> {
        let modifier = b.modifier.as_ref();
        let card = modifier.map(|m| &m.card);
        let matching = modifier.and_then(|m| m.matching.as_ref());
        let key_op = match_key(b);
        if matches!(op, "and" | "or" | "unless") {
            return self.set_operation(b, l, r, op, hist).map(Planned::Vector);
        }
        // The matched pairs through the `SampleBinary` node, each row
        // labelled `result_labels`.
        let pairs = |joined: LogicalPlanBuilder, result_labels: Expr| -> Result<LogicalPlan, QueryError> {
            let (left, right) =
                ((col("l.value"), col(format!("l.{HIST}"))), (col("r.value"), col(format!("r.{HIST}"))));
            let node = binary_node(op, return_bool, false)?;
            sample_binary(joined, (result_labels, col("l.ts")), left, right, node)
        };
        let (lk, rk) = (keyed(l, &key_op, "l", hist)?, keyed(r, &key_op, "r", hist)?);
        let on = (vec!["l.key", "l.ts"], vec!["r.key", "r.ts"]);
        if let Some(VectorMatchCardinality::ManyToOne(include) | VectorMatchCardinality::OneToMany(include)) = card {
            // Many-to-one: the result has the "many" side's labels (without the
            // name for arithmetic and `bool`), plus the `group_x` labels taken
            // from the "one" side; the value is `l op r` (a filtering
            // comparison keeps the left operand's value).
            let (many, one) =
                if matches!(card, Some(VectorMatchCardinality::ManyToOne(_))) { ("l", "r") } else { ("r", "l") };
            let joined = LogicalPlanBuilder::from(lk).join(rk, JoinType::Inner, on, None).map_err(df)?;
            // Arithmetic drops the name at once, even with delayed name
            // removal (Prometheus's resultMetric); `bool` drops it (or flags
            // the series); a filtering comparison keeps it.
            let mode = self.settings.name_drop;
            let mut result_labels = col(format!("{many}.labels"));
            if !comparison {
                result_labels = drop_name(result_labels);
            } else if return_bool {
                result_labels = drop_name_as(result_labels, mode);
            } else {
                result_labels = unmark(result_labels, mode);
            }
            if !include.labels.is_empty() {
                result_labels = labels_udf(LabelsOp::Include(include.labels.clone()))
                    .call(vec![result_labels, col(format!("{one}.labels"))]);
            }
            if hist {
                return pairs(joined, result_labels).map(Planned::Vector);
            }
            let p = if comparison && !return_bool {
                let cond = binary_expr(op, col("l.value"), col("r.value"), false)?;
                joined.filter(cond).and_then(|b| {
                    b.project(vec![result_labels.alias(LABELS), col("l.ts").alias(TS), col("l.value").alias(VALUE)])
                })
            } else {
                let e = binary_expr(op, col("l.value"), col("r.value"), true)?;
                joined.project(vec![result_labels.alias(LABELS), col("l.ts").alias(TS), e.alias(VALUE)])
            }
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)?;
            return Ok(Planned::Vector(p));
        }
        let joined = LogicalPlanBuilder::from(lk).join(rk, JoinType::Inner, on, None).map_err(df)?;
        // One-to-one result labels: the lhs's, without the name for
        // arithmetic (and `bool`), reduced to the `on` labels or without the
        // `ignoring` ones.
        let mode = self.settings.name_drop;
        let mut result_labels = col("l.labels");
        if !comparison {
            result_labels = drop_name(result_labels);
        } else if !return_bool {
            result_labels = unmark(result_labels, mode);
        }
        result_labels = match matching {
            Some(LabelModifier::Include(names)) => {
                labels_udf(LabelsOp::Keep(names.labels.clone())).call(vec![result_labels])
            }
            Some(LabelModifier::Exclude(names)) => {
                labels_udf(LabelsOp::Drop(names.labels.clone())).call(vec![result_labels])
            }
            None => result_labels,
        };
        if comparison && return_bool {
            result_labels = drop_name_as(result_labels, mode);
        }
        if hist {
            return pairs(joined, result_labels).map(Planned::Vector);
        }
        if comparison && !return_bool {
            let cond = binary_expr(op, col("l.value"), col("r.value"), false)?;
            let p = joined
                .filter(cond)
                .and_then(|b| {
                    b.project(vec![result_labels.alias(LABELS), col("l.ts").alias(TS), col("l.value").alias(VALUE)])
                })
                .and_then(LogicalPlanBuilder::build)
                .map_err(df)?;
            return Ok(Planned::Vector(p));
        }
        let e = binary_expr(op, col("l.value"), col("r.value"), true)?;
        let p = joined
            .project(vec![result_labels.alias(LABELS), col("l.ts").alias(TS), e.alias(VALUE)])
            .and_then(LogicalPlanBuilder::build)
            .map_err(df)?;
        Ok(Planned::Vector(p))
    }
}

/// A vector plan with a [`HIST`] column (null where it had none: some
/// histogram sources — `topk`, `quantile` — and other expressions yield
/// floats only) and plain `labels`, one schema for both sides of an
/// operator (a scan's labels are dictionary-encoded).
fn with_hist_column(plan: LogicalPlan) -> Result<LogicalPlan, QueryError> {
    let hist = if plan.schema().has_column_with_unqualified_name(HIST) {
        col(HIST)
    } else {
        lit(ScalarValue::Binary(None)).alias(HIST)
    };
    LogicalPlanBuilder::from(plan)
        .project(vec![
            datafusion::logical_expr::cast(col(LABELS), DataType::Binary).alias(LABELS),
            col(TS),
            col(VALUE),
            hist,
        ])
        .and_then(LogicalPlanBuilder::build)
        .map_err(df)
}

/// A `SampleBinary` node (see [`NodeKind::SampleBinary`]) over `input`'s
/// rows projected to the result's labels and step and each operand's value
/// and histogram.
fn sample_binary(
    input: LogicalPlanBuilder,
    (labels, ts): (Expr, Expr),
    (l_value, l_hist): (Expr, Expr),
    (r_value, r_hist): (Expr, Expr),
    node: NodeKind,
) -> Result<LogicalPlan, QueryError> {
    let operands = input
        .project(vec![
            labels.alias(LABELS),
            ts.alias(TS),
            l_value.alias(L_VALUE),
            l_hist.alias(L_HIST),
            r_value.alias(R_VALUE),
            r_hist.alias(R_HIST),
        ])
        .and_then(LogicalPlanBuilder::build)
        .map_err(df)?;
    PromNode::plan(node, Some(operands)).map_err(df)
}

/// The `SampleBinary` node of operator `op` (`keep_right`: a filtering
/// comparison keeps the right operand, a vector after a scalar).
fn binary_node(op: &str, return_bool: bool, keep_right: bool) -> Result<NodeKind, QueryError> {
    let op = BinOp::parse(op).ok_or_else(|| QueryError::Internal(format!("{op} is no sample operator")))?;
    Ok(NodeKind::SampleBinary { op, return_bool, keep_right })
}

/// `p`'s rows with their matching key (see [`match_key`]), as the join
/// side `alias`; `hist`: the [`HIST`] column is kept.
fn keyed(p: LogicalPlan, key_op: &LabelsOp, alias: &str, hist: bool) -> Result<LogicalPlan, QueryError> {
    let mut columns = vec![col(LABELS), col(TS), col(VALUE)];
    if hist {
        columns.push(col(HIST));
    }
    columns.push(labels_udf(key_op.clone()).call(vec![col(LABELS)]).alias("key"));
    LogicalPlanBuilder::from(p)
        .project(columns)
        .and_then(|b| b.alias(alias))
        .and_then(LogicalPlanBuilder::build)
        .map_err(df)
}

/// The float rows of a plan with a [`HIST`] column, as a plain vector.
fn floats_only(p: LogicalPlan) -> Result<LogicalPlan, QueryError> {
    if !p.schema().has_column_with_unqualified_name(HIST) {
        return Ok(p);
    }
    LogicalPlanBuilder::from(p)
        .filter(col(HIST).is_null())
        .and_then(|b| b.project(vec![col(LABELS), col(TS), col(VALUE)]))
        .and_then(LogicalPlanBuilder::build)
        .map_err(df)
}

/// Whether function `name` keeps each sample whole, changing at most its
/// labels, so native histograms pass through it ([`VecFn::keeps_samples`]).
fn keeps_samples(name: &str) -> bool {
    matches!(name, "label_replace" | "label_join" | "sort_by_label" | "sort_by_label_desc")
}

/// The `offset` (ms) and `@` at which `info(e, …)` reads its info series: those
/// of `e`'s first vector selector (in Prometheus's traversal order), its
/// offset plus those of the subqueries around it up to the innermost `@`,
/// which pins the time (Prometheus's `infoSelectTimestampAndOffset`).
fn info_reference(e: &PExpr) -> (i64, Option<AtModifier>) {
    fn first<'a>(
        e: &'a PExpr,
        path: &mut Vec<&'a SubqueryExpr>,
    ) -> Option<(&'a VectorSelector, Vec<&'a SubqueryExpr>)> {
        match e {
            PExpr::VectorSelector(vs) => Some((vs, path.clone())),
            PExpr::MatrixSelector(ms) => Some((&ms.vs, path.clone())),
            PExpr::Paren(p) => first(&p.expr, path),
            PExpr::Unary(u) => first(&u.expr, path),
            PExpr::Binary(b) => first(&b.lhs, path).or_else(|| first(&b.rhs, path)),
            PExpr::Aggregate(a) => first(&a.expr, path).or_else(|| a.param.as_deref().and_then(|p| first(p, path))),
            PExpr::Call(c) => c.args.args.iter().find_map(|a| first(a, path)),
            PExpr::Subquery(sq) => {
                path.push(sq);
                let found = first(&sq.expr, path);
                path.pop();
                found
            }
            _ => None,
        }
    }
    let Some((vs, subqueries)) = first(e, &mut Vec::new()) else { return (0, None) };
    let signed = |o: Option<&Offset>| match o {
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
        None => 0,
    };
    let mut offset_ms = signed(vs.offset.as_ref());
    let mut at = vs.at.clone();
    for sq in subqueries.iter().rev() {
        if at.is_some() {
            break;
        }
        offset_ms += signed(sq.offset.as_ref());
        at = sq.at.clone();
    }
    (offset_ms, at)
}

/// A string literal argument.
fn string_arg(e: &PExpr) -> Result<String, QueryError> {
    match strip_parens(e) {
        PExpr::StringLiteral(s) if s.bytes.is_some() => {
            Err(QueryError::BadData("invalid UTF-8 in string literal".into()))
        }
        PExpr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(QueryError::BadData("expected a string literal".into())),
    }
}

/// The labels `absent` gives its 1: a selector's equality matchers (not the
/// metric name), a label with any other matcher left out.
fn absent_labels(arg: &PExpr) -> Vec<(String, String)> {
    let vs = match arg {
        PExpr::VectorSelector(vs) => vs,
        PExpr::MatrixSelector(ms) => &ms.vs,
        _ => return Vec::new(),
    };
    let mut set: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == labels::METRIC_NAME {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !seen.contains(&m.name) {
            set.insert(m.name.clone(), m.value.clone());
            seen.insert(m.name.clone());
        } else {
            set.remove(&m.name);
        }
    }
    set.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

fn strip_parens(e: &PExpr) -> &PExpr {
    match e {
        PExpr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

/// `value` computed from each row; a vector's rows (`name_drop` given)
/// lose their metric name.
fn project_value(p: LogicalPlan, value: Expr, name_drop: Option<NameDrop>) -> Result<LogicalPlan, QueryError> {
    let mut cols = Vec::new();
    if let Some(mode) = name_drop {
        cols.push(drop_name_as(col(LABELS), mode).alias(LABELS));
    }
    cols.push(col(TS));
    cols.push(value.alias(VALUE));
    LogicalPlanBuilder::from(p).project(cols).and_then(LogicalPlanBuilder::build).map_err(df)
}

fn drop_name(labels: Expr) -> Expr {
    labels_udf(LabelsOp::DropName).call(vec![labels])
}

/// Drops the name now or flags the series for delayed name removal.
fn drop_name_as(labels: Expr, mode: NameDrop) -> Expr {
    match mode {
        NameDrop::Now => drop_name(labels),
        NameDrop::Delayed => labels_udf(LabelsOp::Mark).call(vec![labels]),
    }
}

/// Clears the delayed-name-removal flag (a filtering comparison's result
/// keeps its name).
fn unmark(labels: Expr, mode: NameDrop) -> Expr {
    match mode {
        NameDrop::Now => labels,
        NameDrop::Delayed => labels_udf(LabelsOp::Unmark).call(vec![labels]),
    }
}

/// `l op r` as a DataFusion expression; comparisons give 1.0/0.0 when
/// `as_value`, a boolean otherwise.
fn binary_expr(op: &str, l: Expr, r: Expr, as_value: bool) -> Result<Expr, QueryError> {
    let e = match op {
        "+" => l + r,
        "-" => l - r,
        "*" => l * r,
        "/" => l / r,
        "%" => prom_udf(PromBinary::Mod).call(vec![l, r]),
        "^" => datafusion::functions::math::expr_fn::power(l, r),
        "atan2" => datafusion::functions::math::expr_fn::atan2(l, r),
        "==" | "!=" | ">" | "<" | ">=" | "<=" => {
            // IEEE comparisons (NaN equals nothing, -0 == 0), as Go compares,
            // not Arrow's total order: 1 or 0, and a filter keeps the 1s.
            let cmp = prom_udf(PromBinary::Cmp(op.to_owned())).call(vec![l, r]);
            return Ok(if as_value { cmp } else { cmp.eq(lit(1.0)) });
        }
        _ => return Err(unsupported(format!("operator {op}"))),
    };
    Ok(e)
}

fn const_op(op: &str, a: f64, b: f64) -> Option<f64> {
    let bool_v = |c: bool| if c { 1.0 } else { 0.0 };
    Some(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        "%" => a % b,
        "^" => a.powf(b),
        "atan2" => a.atan2(b),
        "==" => bool_v(a == b),
        "!=" => bool_v(a != b),
        ">" => bool_v(a > b),
        "<" => bool_v(a < b),
        ">=" => bool_v(a >= b),
        "<=" => bool_v(a <= b),
        _ => return None,
    })
}

/// A label-set edit on the `labels` column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelsOp {
    /// Keep only these labels.
    Keep(Vec<String>),
    /// Drop these labels.
    Drop(Vec<String>),
    /// Drop `__name__` (and `__type__`, `__unit__`).
    DropName,
    /// Flag for delayed name removal.
    Mark,
    /// Clear the delayed-name-removal flag.
    Unmark,
    /// An aggregation's `by` labels, flagged as the input is.
    GroupBy(Vec<String>),
    /// An aggregation's labels without these, flagged as the input is.
    GroupWithout(Vec<String>),
    /// `group_left(…)` / `group_right(…)`: copy these labels from the
    /// second argument (the "one" side), deleting those it lacks.
    Include(Vec<String>),
}

/// The scalar UDF applying a [`LabelsOp`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct LabelsUdf {
    op: LabelsOp,
    name: String,
    signature: Signature,
}

fn labels_udf(op: LabelsOp) -> ScalarUDF {
    let name = match &op {
        LabelsOp::Keep(n) => format!("prom_labels_keep[{}]", n.join(",")),
        LabelsOp::Drop(n) => format!("prom_labels_drop[{}]", n.join(",")),
        LabelsOp::DropName => "prom_labels_drop_name".to_owned(),
        LabelsOp::Mark => "prom_labels_mark".to_owned(),
        LabelsOp::Unmark => "prom_labels_unmark".to_owned(),
        LabelsOp::GroupBy(n) => format!("prom_labels_group_by[{}]", n.join(",")),
        LabelsOp::GroupWithout(n) => format!("prom_labels_group_without[{}]", n.join(",")),
        LabelsOp::Include(n) => format!("prom_labels_include[{}]", n.join(",")),
    };
    let args = if matches!(op, LabelsOp::Include(_)) { vec![DataType::Binary; 2] } else { vec![DataType::Binary] };
    ScalarUDF::new_from_impl(LabelsUdf { op, name, signature: Signature::exact(args, Volatility::Immutable) })
}

impl ScalarUDFImpl for LabelsUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = arrays[0].as_binary::<i32>();
        let other = arrays.get(1).map(|a| a.as_binary::<i32>());
        let mut out = BinaryBuilder::with_capacity(input.len(), input.value_data().len());
        for i in 0..input.len() {
            let l = input.value(i);
            let v = match &self.op {
                LabelsOp::Keep(n) => labels::keep(l, n),
                LabelsOp::Drop(n) => labels::drop(l, n),
                LabelsOp::DropName => labels::drop_name(l),
                LabelsOp::Mark => labels::mark(l),
                LabelsOp::Unmark => labels::unmarked(l).to_vec(),
                LabelsOp::GroupBy(n) => labels::mark_as(l, labels::keep(l, n)),
                LabelsOp::GroupWithout(n) => labels::mark_as(l, labels::drop(l, n)),
                LabelsOp::Include(names) => {
                    let one = other.map_or(&[][..], |o| o.value(i));
                    let mut set = l.to_vec();
                    for n in names {
                        set = labels::set(&set, n, labels::get(one, n).unwrap_or(""));
                    }
                    set
                }
            };
            out.append_value(v);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Float operators whose semantics differ from SQL's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PromBinary {
    /// Go's `math.Mod`: the sign of the dividend, NaN for a zero divisor.
    Mod,
    /// An IEEE comparison (`==`, `!=`, `>`, `<`, `>=`, `<=`): 1 or 0.
    Cmp(String),
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PromBinaryUdf {
    op: PromBinary,
    signature: Signature,
}

fn prom_udf(op: PromBinary) -> ScalarUDF {
    ScalarUDF::new_from_impl(PromBinaryUdf {
        op,
        signature: Signature::exact(vec![DataType::Float64, DataType::Float64], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for PromBinaryUdf {
    fn name(&self) -> &str {
        match &self.op {
            PromBinary::Mod => "prom_mod",
            PromBinary::Cmp(op) => match op.as_str() {
                "==" => "prom_eq",
                "!=" => "prom_ne",
                ">" => "prom_gt",
                "<" => "prom_lt",
                ">=" => "prom_ge",
                _ => "prom_le",
            },
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (
            arrays[0].as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
            arrays[1].as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
        );
        let f: fn(f64, f64) -> f64 = match &self.op {
            PromBinary::Mod => |x, y| x % y,
            PromBinary::Cmp(op) => match op.as_str() {
                "==" => |x, y| f64::from(u8::from(x == y)),
                "!=" => |x, y| f64::from(u8::from(x != y)),
                ">" => |x, y| f64::from(u8::from(x > y)),
                "<" => |x, y| f64::from(u8::from(x < y)),
                ">=" => |x, y| f64::from(u8::from(x >= y)),
                _ => |x, y| f64::from(u8::from(x <= y)),
            },
        };
        let out: datafusion::arrow::array::Float64Array =
            a.iter().zip(b.iter()).map(|(x, y)| Some(f(x?, y?))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
