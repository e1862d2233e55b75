//! The extension nodes of PromQL plans, where SQL semantics don't fit: one
//! logical node type ([`PromNode`]) with its physical counterpart
//! ([`PromExec`]), in these kinds:
//!
//! ```text
//!  SeriesScan     leaf: SampleReader::select(matchers, [start, end]) → raw samples
//!                 (labels, ts, value), every series' samples in time order
//!  InstantVector  raw samples → one row per series and step: the newest sample
//!                 within the lookback (`(t − lookback, t]`, shifted by offset / @),
//!                 none when it is a staleness marker
//!  RangeFunction  raw samples → one row per series and step: a range function
//!                 (rate, *_over_time, …) of the samples in `(t − range, t]`
//!  Steps          leaf: one row per step (ts), for scalars such as time()
//!  VectorFunction a vector → a vector, one step at a time (histogram_quantile,
//!                 label_replace, topk, absent, … : `super::vector_fns`)
//!  AggregateResult DataFusion's aggregate of floats and histograms → each
//!                 group's float or histogram, with Prometheus's annotations
//!  SampleBinary   matched pairs of samples → an operator's results, floats
//!                 or histograms (`super::binary`)
//!  Info           a vector → the vector with the data labels of its targets'
//!                 info series, which it reads itself (`info()`, `super::info`)
//! ```
//!
//! Vector schemas are `labels` (Binary, [`super::labels`]), `ts` (Int64,
//! the step's time) and `value` (Float64); the scan's `ts` is the sample's
//! own time, its `labels` dictionary-encoded (a series' labels once, an
//! Int32 key per sample) and it adds the native histograms (`hist`).
//! Aggregations, vector matching and instant functions are plain
//! DataFusion operators over these columns (see [`super::planner`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use common::seams::{LabelMatcher, MatchOp, SampleReader, SampleValue, Selection};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, DictionaryArray, Float64Builder, Int32Builder, Int64Builder,
    PrimitiveArray, RecordBatch,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use schemas::labels::STALE_NAN_BITS;
use schemas::stream::histogram::ResetHint;

use super::functions::RangeFn;
use super::histogram::FloatHistogram;
use super::labels;
use super::vector_fns::VecFn;

/// Column names of vector plans.
pub const LABELS: &str = "labels";
/// The step (or sample) time, Unix ms.
pub const TS: &str = "ts";
/// The float value.
pub const VALUE: &str = "value";

/// A native histogram sample's encoding (`schemas::stream::Histogram`),
/// null for a float sample.
pub const HIST: &str = "hist";

/// The schema of vector plans.
pub static VECTOR_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(LABELS, DataType::Binary, false),
        Field::new(TS, DataType::Int64, false),
        Field::new(VALUE, DataType::Float64, false),
    ]))
});

/// The schema of the scan: a vector's columns and [`HIST`] (a histogram
/// sample's `value` is NaN).
pub static SCAN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(LABELS, DataType::Binary, false),
        Field::new(TS, DataType::Int64, false),
        Field::new(VALUE, DataType::Float64, false),
        Field::new(HIST, DataType::Binary, true),
    ]))
});

/// The schema of the scan's output: [`SCAN_SCHEMA`] with the labels
/// dictionary-encoded (each series' labels once, a key per sample).
pub static SERIES_SCAN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(LABELS, DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Binary)), false),
        Field::new(TS, DataType::Int64, false),
        Field::new(VALUE, DataType::Float64, false),
        Field::new(HIST, DataType::Binary, true),
    ]))
});

/// The Arrow schema of a node's output.
fn node_schema(kind: &NodeKind) -> SchemaRef {
    match kind {
        NodeKind::Steps { .. } => STEPS_SCHEMA.clone(),
        NodeKind::SeriesScan { .. } => SERIES_SCAN_SCHEMA.clone(),
        NodeKind::AggregateResult { .. }
        | NodeKind::SampleBinary { .. }
        | NodeKind::Info { .. }
        | NodeKind::VectorFunction { histograms: true, .. }
        | NodeKind::InstantVector { histograms: true, .. }
        | NodeKind::RangeFunction { histograms: true, .. } => SCAN_SCHEMA.clone(),
        _ => VECTOR_SCHEMA.clone(),
    }
}

/// The schema of the `Steps` node.
pub static STEPS_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(vec![Field::new(TS, DataType::Int64, false)])));

/// The evaluation grid of a query: `start, start + step, …, ≤ end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub struct Grid {
    /// First step, Unix ms.
    pub start_ms: i64,
    /// Last step bound, Unix ms (inclusive).
    pub end_ms: i64,
    /// Step, ms (positive).
    pub step_ms: i64,
}

impl Grid {
    /// The step times.
    pub fn steps(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.step_ms.max(1);
        (0_i64..)
            .map_while(move |i| i.checked_mul(step).and_then(|d| self.start_ms.checked_add(d)))
            .take_while(move |t| *t <= self.end_ms)
    }
}

/// How a selector maps a step time to the time it reads at: `@` pins it,
/// `offset` shifts it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub struct TimeShift {
    /// `offset`, ms (negative: forward).
    pub offset_ms: i64,
    /// `@`, Unix ms.
    pub at_ms: Option<i64>,
}

impl TimeShift {
    /// The time read at for step `t`.
    pub fn apply(&self, t: i64) -> i64 {
        self.at_ms.unwrap_or(t).saturating_sub(self.offset_ms)
    }
}

/// A label matcher in a form plans can hash and compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct MatcherSpec {
    /// The label.
    pub name: String,
    /// `=`, `!=`, `=~`, `!~`.
    pub op: MatchOpSpec,
    /// The value or pattern.
    pub value: String,
}

impl fmt::Display for MatcherSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let op = match self.op {
            MatchOpSpec::Equal => "=",
            MatchOpSpec::NotEqual => "!=",
            MatchOpSpec::Regex => "=~",
            MatchOpSpec::NotRegex => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// [`MatchOp`] with `Ord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum MatchOpSpec {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatcherSpec {
    /// The seam's matcher (the regex compiled).
    ///
    /// # Errors
    /// An invalid regex.
    pub(crate) fn to_matcher(&self) -> Result<LabelMatcher> {
        let op = match self.op {
            MatchOpSpec::Equal => MatchOp::Equal,
            MatchOpSpec::NotEqual => MatchOp::NotEqual,
            MatchOpSpec::Regex => MatchOp::Regex,
            MatchOpSpec::NotRegex => MatchOp::NotRegex,
        };
        LabelMatcher::new(&self.name, op, &self.value).map_err(|e| DataFusionError::Plan(e.message))
    }
}

/// What a [`PromNode`] does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum NodeKind {
    /// Read raw samples of the matching series in `[start_ms, end_ms]`.
    SeriesScan {
        /// The selector's matchers.
        matchers: Vec<MatcherSpec>,
        /// First sample time read.
        start_ms: i64,
        /// Last sample time read.
        end_ms: i64,
    },
    /// Step-align raw samples with the lookback.
    InstantVector {
        /// The steps.
        grid: Grid,
        /// `offset` / `@`.
        shift: TimeShift,
        /// The lookback delta, ms.
        lookback_ms: i64,
        /// The value is the sample's timestamp, seconds (`timestamp(v)`).
        sample_time: bool,
        /// Native histogram samples are rows too (with a [`HIST`] column):
        /// a selector that is the whole query.
        histograms: bool,
    },
    /// A range function over windows of raw samples.
    RangeFunction {
        /// The steps.
        grid: Grid,
        /// `offset` / `@`.
        shift: TimeShift,
        /// The window, ms.
        range_ms: i64,
        /// The function.
        function: RangeFn,
        /// Histogram results are rows too (with a [`HIST`] column): the
        /// node is the whole query or the input of a histogram function.
        histograms: bool,
        /// The samples are a subquery's steps: their histograms' explicit
        /// counter-reset hints are dropped, as Prometheus drops them (a
        /// step repeating a reset sample must not count it again).
        subquery: bool,
    },
    /// One row per step.
    Steps {
        /// The steps.
        grid: Grid,
    },
    /// A function or aggregation of the whole vector at each step
    /// ([`VecFn`]).
    VectorFunction {
        /// The steps.
        grid: Grid,
        /// The function.
        function: VecFn,
        /// Its input's native histograms pass through as rows (with a
        /// [`HIST`] column): `limitk`/`limit_ratio` of a histogram source.
        histograms: bool,
    },
    /// The rows of an aggregation over a vector with native histograms:
    /// its input is DataFusion's aggregate by (`labels`, `ts`) with
    /// `value` (the floats' aggregate), `hist` (the histograms', a
    /// [`super::aggregates::HistState`]) and the group's float and
    /// histogram sample counts ([`N_FLOATS`], [`N_HISTOGRAMS`]); it outputs
    /// the group's float or histogram and Prometheus's annotations.
    AggregateResult {
        /// The aggregation.
        op: AggOp,
    },
    /// An arithmetic or comparison operator on matched pairs of samples
    /// that may be native histograms ([`super::binary::elem_binop`]): its
    /// input has the result's `labels` and `ts`, and each side's value and
    /// histogram ([`L_VALUE`], [`L_HIST`], [`R_VALUE`], [`R_HIST`]); it
    /// outputs the samples kept, with Prometheus's annotations for those
    /// dropped.
    SampleBinary {
        /// The operator.
        op: super::binary::BinOp,
        /// `bool`: a comparison gives 1 or 0.
        return_bool: bool,
        /// A filtering comparison keeps the right sample (a scalar on the
        /// left of a vector), else the left one.
        keep_right: bool,
    },
    /// `info(v, {…})`: its input is `v`'s rows; it then reads the info
    /// series of `v`'s targets (the spec's matchers and `v`'s `instance`
    /// and `job` values, as Prometheus selects them) in `[start_ms,
    /// end_ms]`, takes their newest sample time per step within the
    /// lookback (through `shift`), and outputs `v`'s rows enriched
    /// ([`super::info::combine`]).
    Info {
        /// The second argument.
        spec: super::info::InfoSpec,
        /// The steps.
        grid: Grid,
        /// `v`'s first selector's `offset` / `@`.
        shift: TimeShift,
        /// The lookback delta, ms.
        lookback_ms: i64,
        /// First info sample time read.
        start_ms: i64,
        /// Last info sample time read.
        end_ms: i64,
    },
}

/// The left operand's value column of [`NodeKind::SampleBinary`]'s input.
pub const L_VALUE: &str = "l_value";
/// The left operand's histogram column (null: a float).
pub const L_HIST: &str = "l_hist";
/// The right operand's value column.
pub const R_VALUE: &str = "r_value";
/// The right operand's histogram column (null: a float).
pub const R_HIST: &str = "r_hist";

/// The float sample count column of [`NodeKind::AggregateResult`]'s input.
pub const N_FLOATS: &str = "n_floats";
/// The histogram sample count column of [`NodeKind::AggregateResult`]'s input.
pub const N_HISTOGRAMS: &str = "n_histograms";

/// An aggregation over a vector that may hold native histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum AggOp {
    /// `sum` (floats or histograms, never both).
    Sum,
    /// `avg` (floats or histograms, never both).
    Avg,
    /// `count`, `group` (every sample counts).
    Count,
    /// `min`, `max`, `stddev`, `stdvar`, `quantile` (histograms ignored),
    /// named as in Prometheus's info.
    FloatsOnly(&'static str),
}

/// The logical extension node of every [`NodeKind`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromNode {
    kind: NodeKind,
    inputs: Vec<LogicalPlan>,
    schema: DFSchemaRef,
}

impl PartialOrd for PromNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.kind.partial_cmp(&other.kind)
    }
}

impl PromNode {
    /// What the node does.
    pub fn kind(&self) -> &NodeKind {
        &self.kind
    }

    /// Whether an instant query whose plan is `plan` keeps its rows' order
    /// (a sorting function or `topk`/`bottomk` at the top).
    pub fn keeps_order(plan: &LogicalPlan) -> bool {
        let LogicalPlan::Extension(ext) = plan else { return false };
        ext.node
            .as_any()
            .downcast_ref::<PromNode>()
            .is_some_and(|n| matches!(&n.kind, NodeKind::VectorFunction { function, .. } if function.orders()))
    }

    /// A node as a logical plan.
    ///
    /// # Errors
    /// When the schema cannot be built (never for these fixed schemas).
    pub fn plan(kind: NodeKind, input: Option<LogicalPlan>) -> Result<LogicalPlan> {
        Self::plan_inputs(kind, input.into_iter().collect())
    }

    /// A node over several inputs (a vector function's vector, then its
    /// per-step parameter as a scalar plan of `ts`, `value`).
    ///
    /// # Errors
    /// As [`PromNode::plan`].
    pub fn plan_inputs(kind: NodeKind, inputs: Vec<LogicalPlan>) -> Result<LogicalPlan> {
        let arrow = node_schema(&kind);
        let schema = Arc::new(DFSchema::try_from(arrow.as_ref().clone())?);
        Ok(LogicalPlan::Extension(Extension { node: Arc::new(PromNode { kind, inputs, schema }) }))
    }
}

impl UserDefinedLogicalNodeCore for PromNode {
    fn name(&self) -> &str {
        match self.kind {
            NodeKind::SeriesScan { .. } => "PromSeriesScan",
            NodeKind::InstantVector { .. } => "PromInstantVector",
            NodeKind::RangeFunction { .. } => "PromRangeFunction",
            NodeKind::Steps { .. } => "PromSteps",
            NodeKind::VectorFunction { .. } => "PromVectorFunction",
            NodeKind::AggregateResult { .. } => "PromAggregateResult",
            NodeKind::SampleBinary { .. } => "PromSampleBinary",
            NodeKind::Info { .. } => "PromInfo",
        }
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        self.inputs.iter().collect()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_kind(&self.kind, f)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(Self { kind: self.kind.clone(), inputs, schema: self.schema.clone() })
    }
}

fn fmt_kind(kind: &NodeKind, f: &mut fmt::Formatter) -> fmt::Result {
    match kind {
        NodeKind::SeriesScan { matchers, start_ms, end_ms } => {
            let m: Vec<String> = matchers.iter().map(MatcherSpec::to_string).collect();
            write!(f, "PromSeriesScan: matchers=[{}], range=[{start_ms}, {end_ms}]", m.join(", "))
        }
        NodeKind::InstantVector { grid, shift, lookback_ms, sample_time, .. } => write!(
            f,
            "PromInstantVector: steps=[{}..{} by {}], lookback={lookback_ms}, offset={}, at={:?}{}",
            grid.start_ms,
            grid.end_ms,
            grid.step_ms,
            shift.offset_ms,
            shift.at_ms,
            if *sample_time { ", value=sample time" } else { "" }
        ),
        NodeKind::RangeFunction { grid, shift, range_ms, function, .. } => write!(
            f,
            "PromRangeFunction: {function:?}, steps=[{}..{} by {}], range={range_ms}, offset={}, at={:?}",
            grid.start_ms, grid.end_ms, grid.step_ms, shift.offset_ms, shift.at_ms
        ),
        NodeKind::Steps { grid } => {
            write!(f, "PromSteps: [{}..{} by {}]", grid.start_ms, grid.end_ms, grid.step_ms)
        }
        NodeKind::VectorFunction { grid, function, .. } => {
            write!(
                f,
                "PromVectorFunction: {function:?}, steps=[{}..{} by {}]",
                grid.start_ms, grid.end_ms, grid.step_ms
            )
        }
        NodeKind::AggregateResult { op } => write!(f, "PromAggregateResult: {op:?}"),
        NodeKind::SampleBinary { op, return_bool, .. } => {
            write!(f, "PromSampleBinary: {}{}", op.symbol(), if *return_bool { " bool" } else { "" })
        }
        NodeKind::Info { spec, grid, shift, lookback_ms, start_ms, end_ms } => {
            let show = |ms: &[MatcherSpec]| ms.iter().map(MatcherSpec::to_string).collect::<Vec<_>>().join(", ");
            write!(
                f,
                "PromInfo: names=[{}], data=[{}], steps=[{}..{} by {}], lookback={lookback_ms}, offset={}, at={:?}, \
                 range=[{start_ms}, {end_ms}]",
                show(&spec.name_matchers),
                show(&spec.data_matchers),
                grid.start_ms,
                grid.end_ms,
                grid.step_ms,
                shift.offset_ms,
                shift.at_ms
            )
        }
    }
}

/// What the physical nodes read through: the workspace and the reader,
/// attached to the session's config.
#[derive(Debug)]
pub struct ReadContext {
    /// The workspace queried.
    pub workspace_id: String,
    /// The tables and the head.
    pub reader: Arc<dyn SampleReader>,
    /// What the query may still load.
    pub budget: Budget,
    /// Warnings and infos raised while evaluating.
    pub annotations: std::sync::Mutex<super::Annotations>,
    /// Whether functions drop the metric name at once or flag the series.
    pub name_drop: labels::NameDrop,
}

impl ReadContext {
    /// Records a `PromQL warning: …`.
    pub fn warn(&self, message: String) {
        self.annotations.lock().unwrap_or_else(|p| p.into_inner()).warnings.insert(message);
    }

    /// Records a `PromQL info: …`.
    pub fn info(&self, message: String) {
        self.annotations.lock().unwrap_or_else(|p| p.into_inner()).infos.insert(message);
    }
}

/// The series and samples one query may load, charged by every scan of its
/// plan (the one place the query limits are enforced).
#[derive(Debug)]
pub struct Budget {
    max_series: usize,
    max_samples: usize,
    series: std::sync::atomic::AtomicUsize,
    samples: std::sync::atomic::AtomicUsize,
}

impl Budget {
    /// A budget with `limits`' maxima (0: no limit).
    pub fn new(limits: &common::limits::QueryLimits) -> Self {
        Self {
            max_series: limits.max_fetched_series,
            max_samples: limits.max_samples,
            series: 0.into(),
            samples: 0.into(),
        }
    }

    /// Charges one scan's series and samples.
    ///
    /// # Errors
    /// A [`common::seams::SeamError`] of kind `LimitExceeded` with Cortex's
    /// text when the query goes over a limit.
    pub fn charge(&self, series: usize, samples: usize) -> std::result::Result<(), common::seams::SeamError> {
        use std::sync::atomic::Ordering::Relaxed;
        let limit = |message: String| common::seams::SeamError { kind: common::ErrorKind::LimitExceeded, message };
        let total_series = self.series.fetch_add(series, Relaxed) + series;
        if self.max_series > 0 && total_series > self.max_series {
            return Err(limit(format!(
                "the query hit the max number of series limit (limit: {} series)",
                self.max_series
            )));
        }
        let total_samples = self.samples.fetch_add(samples, Relaxed) + samples;
        if self.max_samples > 0 && total_samples > self.max_samples {
            return Err(limit("query processing would load too many samples into memory in query execution".into()));
        }
        Ok(())
    }
}

/// Plans [`PromNode`]s into [`PromExec`]s.
#[derive(Debug, Default)]
pub struct PromExtensionPlanner;

#[async_trait]
impl ExtensionPlanner for PromExtensionPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<PromNode>() else { return Ok(None) };
        let ctx = session
            .config()
            .get_extension::<ReadContext>()
            .ok_or_else(|| DataFusionError::Internal("no ReadContext in the session".into()))?;
        Ok(Some(Arc::new(PromExec::new(node.kind.clone(), physical_inputs.to_vec(), ctx))))
    }
}

/// The physical node of every [`NodeKind`].
#[derive(Debug)]
pub struct PromExec {
    kind: NodeKind,
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    ctx: Arc<ReadContext>,
    properties: Arc<PlanProperties>,
    /// What a scan read (files, row groups, samples), for `EXPLAIN ANALYZE`.
    metrics: ExecutionPlanMetricsSet,
}

impl PromExec {
    fn new(kind: NodeKind, inputs: Vec<Arc<dyn ExecutionPlan>>, ctx: Arc<ReadContext>) -> Self {
        let schema = node_schema(&kind);
        // A streaming node keeps its input's partitions; the others make one.
        let partitions = match (&kind, inputs.first()) {
            (NodeKind::SampleBinary { .. }, Some(input)) => input.properties().partitioning.partition_count(),
            _ => 1,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self { kind, inputs, ctx, properties, metrics: ExecutionPlanMetricsSet::new() }
    }

    /// The node's kind (for tests and `EXPLAIN`).
    pub fn kind(&self) -> &NodeKind {
        &self.kind
    }
}

impl DisplayAs for PromExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_kind(&self.kind, f)
    }
}

impl ExecutionPlan for PromExec {
    fn name(&self) -> &str {
        "PromExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inputs.iter().collect()
    }

    /// Each node but the streaming `SampleBinary` reads all of every input
    /// from its one partition (a union below gives several: DataFusion
    /// merges them first).
    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        use datafusion::physical_plan::Distribution;
        let each = match self.kind {
            NodeKind::SampleBinary { .. } => Distribution::UnspecifiedDistribution,
            _ => Distribution::SinglePartition,
        };
        vec![each; self.inputs.len()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PromExec::new(self.kind.clone(), children, self.ctx.clone())))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let scan_metrics = ScanMetrics::new(&self.metrics, &self.kind);
        let kind = self.kind.clone();
        let ctx = self.ctx.clone();
        let mut inputs =
            self.inputs.iter().map(|i| i.execute(partition, context.clone())).collect::<Result<Vec<_>>>()?.into_iter();
        let input = inputs.next();
        let param = inputs.next();
        // A row-by-row operator streams: each input batch gives its output
        // batch, in the input's partitions.
        if let NodeKind::SampleBinary { op, return_bool, keep_right } = &kind {
            let (op, return_bool, keep_right) = (*op, *return_bool, *keep_right);
            let Some(input) = input else { return Err(DataFusionError::Internal("node without input".into())) };
            let stream = input.map(move |batch| sample_binary(&ctx, op, return_bool, keep_right, &[batch?]));
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)));
        }
        let fut = async move {
            match kind {
                NodeKind::SeriesScan { matchers, start_ms, end_ms } => {
                    scan(&ctx, &matchers, start_ms, end_ms, scan_metrics.as_ref()).await
                }
                NodeKind::Steps { grid } => {
                    let ts: Vec<i64> = grid.steps().collect();
                    Ok(RecordBatch::try_new(
                        STEPS_SCHEMA.clone(),
                        vec![Arc::new(datafusion::arrow::array::Int64Array::from(ts))],
                    )?)
                }
                NodeKind::InstantVector { grid, shift, lookback_ms, sample_time, histograms } => {
                    let series = collect_series(input).await?;
                    instant_vector(&ctx, &series, grid, shift, lookback_ms, sample_time, histograms)
                }
                NodeKind::RangeFunction { grid, shift, range_ms, function, histograms, subquery } => {
                    let series = collect_series(input).await?;
                    let window = Window { grid, shift, range_ms, subquery };
                    range_function(&ctx, &series, window, function, histograms)
                }
                NodeKind::AggregateResult { op } => {
                    let Some(input) = input else { return Err(DataFusionError::Internal("node without input".into())) };
                    let batches = datafusion::physical_plan::common::collect(input).await?;
                    aggregate_result(&ctx, op, &batches)
                }
                NodeKind::SampleBinary { .. } => Err(DataFusionError::Internal("SampleBinary streams".into())),
                NodeKind::Info { spec, grid, shift, lookback_ms, start_ms, end_ms } => {
                    let Some(base) = input else { return Err(DataFusionError::Internal("node without input".into())) };
                    let owned = |batches: &[RecordBatch]| -> Vec<super::info::Row> {
                        batches
                            .iter()
                            .flat_map(rows_with_histograms)
                            .map(|(l, t, v, h)| (l.to_vec(), t, v, h.map(bytes::Bytes::copy_from_slice)))
                            .collect()
                    };
                    let base = owned(&datafusion::physical_plan::common::collect(base).await?);
                    // Only the info series of `v`'s targets are read.
                    let info = match super::info::info_matchers(&spec, &base) {
                        Some(matchers) => {
                            let read = scan(&ctx, &matchers, start_ms, end_ms, None).await?;
                            let series = series_of(std::slice::from_ref(&read));
                            owned(&[instant_vector(&ctx, &series, grid, shift, lookback_ms, true, true)?])
                        }
                        None => Vec::new(),
                    };
                    let rows = super::info::combine(&spec, base, &info).map_err(DataFusionError::Execution)?;
                    let mut out = Output::with_histograms();
                    for (l, t, v, h) in rows {
                        match h {
                            Some(h) => out.push_hist(&l, t, &h),
                            None => out.push(&l, t, v),
                        }
                    }
                    out.finish()
                }
                NodeKind::VectorFunction { grid, function, histograms } => {
                    let Some(input) = input else { return Err(DataFusionError::Internal("node without input".into())) };
                    let batches = datafusion::physical_plan::common::collect(input).await?;
                    // Histograms passing through: rows (NaN) in their input
                    // order, restored from this map at the end.
                    // A label function moves them to their new labels.
                    let relabel = function.relabeler().map_err(DataFusionError::Execution)?;
                    let mut passing: HashMap<(Vec<u8>, i64), bytes::Bytes> = HashMap::new();
                    let mut duplicate = false;
                    let in_rows: Vec<_> = if histograms {
                        batches
                            .iter()
                            .flat_map(|b| {
                                rows_with_histograms(b)
                                    .map(|(l, t, v, h)| {
                                        if let Some(h) = h {
                                            let key = (relabel(l), t);
                                            if passing.insert(key, bytes::Bytes::copy_from_slice(h)).is_some() {
                                                duplicate = true;
                                            }
                                        }
                                        (l.to_vec(), t, v)
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .collect()
                    } else {
                        batches
                            .iter()
                            .flat_map(|b| rows(b).map(|(l, t, v)| (l.to_vec(), t, v)).collect::<Vec<_>>())
                            .collect()
                    };
                    // Native histogram rows (an input planned with them).
                    let in_hists: Vec<super::vector_fns::HistRow> = if histograms {
                        Vec::new()
                    } else {
                        batches
                            .iter()
                            .flat_map(|b| {
                                rows_with_histograms(b)
                                    .filter_map(|(l, t, _, h)| {
                                        h.map(|h| (l.to_vec(), t, bytes::Bytes::copy_from_slice(h)))
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .collect()
                    };
                    // A per-step parameter: a scalar plan's (ts, value) rows.
                    let params = match param {
                        Some(p) => {
                            let mut by_step = BTreeMap::new();
                            for b in datafusion::physical_plan::common::collect(p).await? {
                                let t = b.column_by_name(TS).map(|c| c.as_primitive::<Int64Type>().clone());
                                let v = b.column_by_name(VALUE).map(|c| c.as_primitive::<Float64Type>().clone());
                                if let (Some(t), Some(v)) = (t, v) {
                                    for i in 0..b.num_rows() {
                                        by_step.insert(t.value(i), v.value(i));
                                    }
                                }
                            }
                            Some(by_step)
                        }
                        None => None,
                    };
                    let (out_rows, notes) = function
                        .apply(grid, in_rows, params.as_ref(), ctx.name_drop, in_hists)
                        .map_err(DataFusionError::Execution)?;
                    // A relabelling that gives two samples one label set
                    // fails, as in Prometheus (floats and histograms alike).
                    if function.keeps_samples() {
                        let mut keys = std::collections::HashSet::with_capacity(out_rows.len());
                        duplicate |= !out_rows.iter().all(|(l, t, _)| keys.insert((l.as_slice(), *t)));
                    }
                    if duplicate {
                        return Err(DataFusionError::Execution(
                            "vector cannot contain metrics with the same labelset".into(),
                        ));
                    }
                    notes.warnings.into_iter().for_each(|m| ctx.warn(m));
                    notes.infos.into_iter().for_each(|m| ctx.info(m));
                    let mut out = if histograms { Output::with_histograms() } else { Output::new() };
                    for (l, t, v) in out_rows {
                        let key = (l, t);
                        match passing.remove(&key) {
                            Some(h) => out.push_hist(&key.0, t, &h),
                            None => out.push(&key.0, t, v),
                        }
                    }
                    out.finish()
                }
            }
        };
        let stream = futures::stream::once(fut).boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// The counters of a scan, shown by `EXPLAIN ANALYZE` (from the reader's
/// [`common::seams::SelectStats`]).
struct ScanMetrics {
    series: Count,
    files_total: Count,
    files_read: Count,
    row_groups_total: Count,
    row_groups_read: Count,
    rows_total: Count,
    rows_read: Count,
    table_samples: Count,
    head_samples: Count,
}

impl ScanMetrics {
    fn new(set: &ExecutionPlanMetricsSet, kind: &NodeKind) -> Option<Self> {
        if !matches!(kind, NodeKind::SeriesScan { .. }) {
            return None;
        }
        let counter = |name: &'static str| MetricBuilder::new(set).global_counter(name);
        Some(Self {
            series: counter("series"),
            files_total: counter("files_total"),
            files_read: counter("files_read"),
            row_groups_total: counter("row_groups_total"),
            row_groups_read: counter("row_groups_read"),
            rows_total: counter("rows_total"),
            rows_read: counter("rows_read"),
            table_samples: counter("table_samples"),
            head_samples: counter("head_samples"),
        })
    }

    fn record(&self, series: usize, stats: &common::seams::SelectStats) {
        self.series.add(series);
        self.files_total.add(stats.files_total);
        self.files_read.add(stats.files_read);
        self.row_groups_total.add(stats.row_groups_total);
        self.row_groups_read.add(stats.row_groups_read);
        self.rows_total.add(stats.rows_total);
        self.rows_read.add(stats.rows_read);
        self.table_samples.add(stats.table_samples);
        self.head_samples.add(stats.head_samples);
    }
}

async fn scan(
    ctx: &ReadContext,
    matchers: &[MatcherSpec],
    start_ms: i64,
    end_ms: i64,
    metrics: Option<&ScanMetrics>,
) -> Result<RecordBatch> {
    let matchers = matchers.iter().map(MatcherSpec::to_matcher).collect::<Result<Vec<_>>>()?;
    let selection = Selection { matchers, start_ms, end_ms };
    let selected =
        ctx.reader.select(&ctx.workspace_id, &selection).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
    if let Some(m) = metrics {
        m.record(selected.series.len(), &selected.stats);
    }
    let samples = selected.series.iter().map(|s| s.samples.len()).sum();
    ctx.budget.charge(selected.series.len(), samples).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let mut series_b = BinaryBuilder::new();
    let mut keys_b = Int32Builder::with_capacity(samples);
    let mut ts_b = Int64Builder::with_capacity(samples);
    let mut value_b = Float64Builder::with_capacity(samples);
    let mut hist_b = BinaryBuilder::new();
    for (key, s) in selected.series.iter().enumerate() {
        series_b.append_value(labels::encode_shared(&s.labels));
        let key = i32::try_from(key).map_err(|_| DataFusionError::Execution("too many series in one scan".into()))?;
        for sample in &s.samples {
            keys_b.append_value(key);
            ts_b.append_value(sample.timestamp_ms);
            match &sample.value {
                SampleValue::Float(v) => {
                    value_b.append_value(*v);
                    hist_b.append_null();
                }
                // A histogram staleness marker (sum = the stale NaN, as
                // Prometheus writes one) is a staleness marker.
                SampleValue::Histogram(h) if is_stale_histogram(h) => {
                    value_b.append_value(f64::from_bits(STALE_NAN_BITS));
                    hist_b.append_null();
                }
                SampleValue::Histogram(h) => {
                    value_b.append_value(f64::NAN);
                    hist_b.append_value(h);
                }
            }
        }
    }
    let labels = DictionaryArray::<Int32Type>::try_new(keys_b.finish(), Arc::new(series_b.finish()))?;
    let columns: Vec<ArrayRef> =
        vec![Arc::new(labels), Arc::new(ts_b.finish()), Arc::new(value_b.finish()), Arc::new(hist_b.finish())];
    Ok(RecordBatch::try_new(SERIES_SCAN_SCHEMA.clone(), columns)?)
}

/// The output rows of [`NodeKind::AggregateResult`] and its annotations,
/// as Prometheus's `aggregation` ends a step: a group with both floats and
/// histograms has no `sum`/`avg`; one whose histograms could not be
/// combined neither; `min`, `max`, `stddev`, `stdvar` and `quantile`
/// ignore histograms (with an info) and give nothing for a group of
/// histograms only.
fn aggregate_result(ctx: &ReadContext, op: AggOp, batches: &[RecordBatch]) -> Result<RecordBatch> {
    use super::aggregates::HistState;
    let mut out = Output::with_histograms();
    let count = |b: &RecordBatch, name: &str| -> Result<Vec<i64>> {
        let c = b.column_by_name(name).ok_or_else(|| DataFusionError::Internal(format!("no {name} column")))?;
        let c = datafusion::arrow::compute::cast(c, &DataType::Int64)?;
        Ok(c.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0)).collect())
    };
    let (mut mixed, mut ignored) = (false, false);
    for b in batches {
        let (floats, hists) = (count(b, N_FLOATS)?, count(b, N_HISTOGRAMS)?);
        let l = b.column(0).as_binary::<i32>();
        let t = b.column(1).as_primitive::<Int64Type>();
        let v = b.column(2).as_primitive::<Float64Type>();
        let h = b.column_by_name(HIST).map(|c| c.as_binary::<i32>());
        for i in 0..b.num_rows() {
            let (labels, ts) = (l.value(i), t.value(i));
            let value = if v.is_null(i) { f64::NAN } else { v.value(i) };
            match op {
                AggOp::Count => out.push(labels, ts, value),
                AggOp::FloatsOnly(_) => {
                    ignored |= hists[i] > 0;
                    if floats[i] > 0 {
                        out.push(labels, ts, value);
                    }
                }
                AggOp::Sum | AggOp::Avg if floats[i] > 0 && hists[i] > 0 => mixed = true,
                AggOp::Sum | AggOp::Avg if hists[i] > 0 => {
                    let state = HistState::decode(h.filter(|h| h.is_valid(i)).map(|h| h.value(i)))?;
                    match state {
                        HistState::Value { histogram, .. } => out.push_hist(labels, ts, &histogram.encode()),
                        HistState::Incompatible(why, name) => {
                            let (_, note) = super::functions::incompatible(why, &name);
                            ctx.warn(note);
                        }
                        HistState::Empty => {}
                    }
                }
                AggOp::Sum | AggOp::Avg => {
                    if floats[i] > 0 {
                        out.push(labels, ts, value);
                    }
                }
            }
        }
    }
    if mixed {
        ctx.warn("PromQL warning: encountered a mix of histograms and floats for aggregation".into());
    }
    if let (true, AggOp::FloatsOnly(name)) = (ignored, op) {
        ctx.info(format!("PromQL info: ignored histogram in {name} aggregation"));
    }
    out.finish()
}

/// The rows of [`NodeKind::SampleBinary`] for a batch: each row's operands
/// through [`super::binary::elem_binop`]; a filtering comparison keeps the
/// compared sample as it was.
fn sample_binary(
    ctx: &ReadContext,
    op: super::binary::BinOp,
    return_bool: bool,
    keep_right: bool,
    batches: &[RecordBatch],
) -> Result<RecordBatch> {
    use super::binary::{Operand, Outcome, elem_binop};
    let mut out = Output::with_histograms();
    let column = |b: &RecordBatch, name: &str| -> Result<ArrayRef> {
        b.column_by_name(name).cloned().ok_or_else(|| DataFusionError::Internal(format!("no {name} column")))
    };
    let decode = |h: &BinaryArray, i: usize| -> Result<Option<FloatHistogram>> {
        if h.is_null(i) {
            return Ok(None);
        }
        FloatHistogram::decode(h.value(i)).map(Some).map_err(DataFusionError::Internal)
    };
    for b in batches {
        let (l, t) = (column(b, LABELS)?, column(b, TS)?);
        let (l, t) = (l.as_binary::<i32>(), t.as_primitive::<Int64Type>());
        let (lv, lh, rv, rh) = (column(b, L_VALUE)?, column(b, L_HIST)?, column(b, R_VALUE)?, column(b, R_HIST)?);
        let (lv, rv) = (lv.as_primitive::<Float64Type>(), rv.as_primitive::<Float64Type>());
        let (lh, rh) = (lh.as_binary::<i32>(), rh.as_binary::<i32>());
        for i in 0..b.num_rows() {
            let (left, right) = (decode(lh, i)?, decode(rh, i)?);
            let (labels, ts) = (l.value(i), t.value(i));
            let l_operand = left.as_ref().map_or(Operand::Float(lv.value(i)), Operand::Histogram);
            let r_operand = right.as_ref().map_or(Operand::Float(rv.value(i)), Operand::Histogram);
            match elem_binop(op, l_operand, r_operand) {
                Outcome::Dropped(true, note) => ctx.warn(note),
                Outcome::Dropped(false, note) => ctx.info(note),
                Outcome::Compared(holds) if return_bool => out.push(labels, ts, if holds { 1.0 } else { 0.0 }),
                Outcome::Compared(false) => {}
                Outcome::Compared(true) => {
                    let (v, h) = if keep_right { (rv, rh) } else { (lv, lh) };
                    if h.is_valid(i) {
                        out.push_hist(labels, ts, h.value(i));
                    } else {
                        out.push(labels, ts, v.value(i));
                    }
                }
                Outcome::Float(v) => out.push(labels, ts, v),
                Outcome::Histogram(h) => out.push_hist(labels, ts, &h.encode()),
            }
        }
    }
    out.finish()
}

/// Whether a stored histogram is Prometheus's staleness marker.
fn is_stale_histogram(encoded: &[u8]) -> bool {
    use prost::Message;
    schemas::stream::Histogram::decode(encoded).is_ok_and(|h| h.sum.to_bits() == STALE_NAN_BITS)
}

/// One series' raw samples, in time order.
struct RawSeries {
    ts: Vec<i64>,
    vs: Vec<f64>,
    /// Each sample's histogram encoding (`None`: a float); empty when the
    /// series has no histogram sample.
    hist: Vec<Option<bytes::Bytes>>,
}

impl RawSeries {
    /// The histogram encoding of sample `i`, if it is one.
    fn hist(&self, i: usize) -> Option<&bytes::Bytes> {
        self.hist.get(i).and_then(Option::as_ref)
    }
}

async fn collect_series(input: Option<SendableRecordBatchStream>) -> Result<BTreeMap<Vec<u8>, RawSeries>> {
    let Some(input) = input else { return Err(DataFusionError::Internal("node without input".into())) };
    let batches = datafusion::physical_plan::common::collect(input).await?;
    Ok(series_of(&batches))
}

/// The raw series of a scan's (or a subquery's) batches, each in time order.
fn series_of(batches: &[RecordBatch]) -> BTreeMap<Vec<u8>, RawSeries> {
    let mut out: BTreeMap<Vec<u8>, RawSeries> = BTreeMap::new();
    for b in batches {
        let l = LabelsColumn::of(b);
        let t = b.column(1).as_primitive::<Int64Type>();
        let v = b.column(2).as_primitive::<Float64Type>();
        // The histogram column (a scan's, or a subquery's of a histogram
        // source; other subqueries' rows have none).
        let h = b.column_by_name(HIST).map(|c| c.as_binary::<i32>());
        // Rows come in runs of one series: the series is looked up once
        // per run.
        let mut i = 0;
        while i < b.num_rows() {
            let key = l.value(i);
            let end = (i + 1..b.num_rows()).find(|&j| !l.same(i, j)).unwrap_or(b.num_rows());
            let s = match out.get_mut(key) {
                Some(s) => s,
                None => out.entry(key.to_vec()).or_insert_with(|| RawSeries {
                    ts: Vec::new(),
                    vs: Vec::new(),
                    hist: Vec::new(),
                }),
            };
            // Sample `j` of the run lands at `base + j - i`.
            let base = s.ts.len();
            for j in i..end {
                if let Some(h) = h.filter(|h| h.is_valid(j)) {
                    s.hist.resize(base + j - i, None);
                    s.hist.push(Some(bytes::Bytes::copy_from_slice(h.value(j))));
                } else if !s.hist.is_empty() {
                    s.hist.push(None);
                }
            }
            s.ts.extend_from_slice(&t.values()[i..end]);
            s.vs.extend_from_slice(&v.values()[i..end]);
            i = end;
        }
    }
    for s in out.values_mut() {
        if !s.hist.is_empty() {
            s.hist.resize(s.ts.len(), None);
        }
        if s.ts.windows(2).any(|w| w[0] > w[1]) {
            let mut order: Vec<usize> = (0..s.ts.len()).collect();
            order.sort_by_key(|&i| s.ts[i]);
            s.ts = order.iter().map(|&i| s.ts[i]).collect();
            s.vs = order.iter().map(|&i| s.vs[i]).collect();
            if !s.hist.is_empty() {
                s.hist = order.iter().map(|&i| s.hist[i].clone()).collect();
            }
        }
    }
    out
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

struct Output {
    labels: BinaryBuilder,
    ts: Int64Builder,
    value: Float64Builder,
    /// The [`HIST`] column, for nodes that output histograms.
    hist: Option<BinaryBuilder>,
    /// Rows not charged to the query's budget yet.
    uncharged: usize,
}

impl Output {
    fn new() -> Self {
        Self {
            labels: BinaryBuilder::new(),
            ts: Int64Builder::new(),
            value: Float64Builder::new(),
            hist: None,
            uncharged: 0,
        }
    }

    /// An output with a [`HIST`] column.
    fn with_histograms() -> Self {
        Self { hist: Some(BinaryBuilder::new()), ..Self::new() }
    }

    /// A native histogram row (its `value` is NaN); none on an output
    /// without a [`HIST`] column (never a NaN float in its place).
    fn push_hist(&mut self, labels: &[u8], ts: i64, hist: &[u8]) {
        self.push_timed_hist(labels, ts, f64::NAN, hist);
    }

    /// A native histogram row with `value` (its sample's time).
    fn push_timed_hist(&mut self, labels: &[u8], ts: i64, value: f64, hist: &[u8]) {
        debug_assert!(self.hist.is_some(), "a histogram row on a float-only output");
        if self.hist.is_none() {
            return;
        }
        self.uncharged += 1;
        self.labels.append_value(labels);
        self.ts.append_value(ts);
        self.value.append_value(value);
        if let Some(b) = self.hist.as_mut() {
            b.append_value(hist);
        }
    }
}

impl Output {
    /// Charges the rows pushed since the last charge as samples.
    fn charge(&mut self, ctx: &ReadContext) -> Result<()> {
        let rows = std::mem::take(&mut self.uncharged);
        ctx.budget.charge(0, rows).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    fn push(&mut self, labels: &[u8], ts: i64, value: f64) {
        self.uncharged += 1;
        self.labels.append_value(labels);
        self.ts.append_value(ts);
        self.value.append_value(value);
        if let Some(b) = self.hist.as_mut() {
            b.append_null();
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.labels.finish()), Arc::new(self.ts.finish()), Arc::new(self.value.finish())];
        let schema = match self.hist.as_mut() {
            Some(b) => {
                columns.push(Arc::new(b.finish()));
                SCAN_SCHEMA.clone()
            }
            None => VECTOR_SCHEMA.clone(),
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

fn instant_vector(
    ctx: &ReadContext,
    series: &BTreeMap<Vec<u8>, RawSeries>,
    grid: Grid,
    shift: TimeShift,
    lookback_ms: i64,
    sample_time: bool,
    histograms: bool,
) -> Result<RecordBatch> {
    let mut out = if histograms { Output::with_histograms() } else { Output::new() };
    for (labels, s) in series {
        for t in grid.steps() {
            let at = shift.apply(t);
            // The newest sample at or before `at`, if newer than `at − lookback`.
            let idx = s.ts.partition_point(|&x| x <= at);
            if idx == 0 {
                continue;
            }
            let (st, sv) = (s.ts[idx - 1], s.vs[idx - 1]);
            if st <= at.saturating_sub(lookback_ms) || is_stale(sv) {
                continue;
            }
            // A native histogram is the series' value here: not a float
            // (histogram values are not evaluated yet); `timestamp()` has
            // its time all the same.
            if let Some(h) = s.hist(idx - 1) {
                if sample_time && histograms {
                    // `info()`'s info series: the time, and that it is a histogram.
                    out.push_timed_hist(labels, t, st as f64 / 1000.0, h);
                    continue;
                }
                if !sample_time {
                    if histograms {
                        out.push_hist(labels, t, h);
                    }
                    continue;
                }
            }
            out.push(labels, t, if sample_time { st as f64 / 1000.0 } else { sv });
        }
        // Step points count as samples in memory, as in Prometheus.
        out.charge(ctx)?;
    }
    out.finish()
}

/// The windows of a [`NodeKind::RangeFunction`].
#[derive(Debug, Clone, Copy)]
struct Window {
    grid: Grid,
    shift: TimeShift,
    range_ms: i64,
    /// The samples are a subquery's steps.
    subquery: bool,
}

fn range_function(
    ctx: &ReadContext,
    series: &BTreeMap<Vec<u8>, RawSeries>,
    window: Window,
    function: RangeFn,
    histograms: bool,
) -> Result<RecordBatch> {
    let Window { grid, shift, range_ms, subquery } = window;
    let mut out = if histograms { Output::with_histograms() } else { Output::new() };
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    let mut hist_ts = Vec::new();
    for (labels, s) in series {
        let result_labels =
            if function.keeps_name() { labels.clone() } else { labels::drop_name_as(labels, ctx.name_drop) };
        let name = labels::get(labels, labels::METRIC_NAME).unwrap_or("");
        // Each histogram decoded once for all the windows it falls in.
        let decode = |b: &bytes::Bytes| {
            let mut h = FloatHistogram::decode(b)?;
            if subquery && matches!(h.reset_hint, ResetHint::Yes | ResetHint::No) {
                h.reset_hint = ResetHint::Unknown;
            }
            Ok(h)
        };
        let decoded: Vec<Option<std::result::Result<FloatHistogram, String>>> =
            s.hist.iter().map(|h| h.as_ref().map(decode)).collect();
        let mut hist: Vec<Option<&FloatHistogram>> = Vec::new();
        let mut hist_errors: Vec<&String> = Vec::new();
        let mut produced = false;
        for t in grid.steps() {
            let at = shift.apply(t);
            let lo = s.ts.partition_point(|&x| x <= at.saturating_sub(range_ms));
            let hi = s.ts.partition_point(|&x| x <= at);
            ts.clear();
            vs.clear();
            hist_ts.clear();
            hist.clear();
            hist_errors.clear();
            for i in lo..hi {
                if let Some(h) = decoded.get(i).and_then(Option::as_ref) {
                    hist_ts.push(s.ts[i]);
                    hist.push(h.as_ref().ok());
                    if let Err(e) = h {
                        hist_errors.push(e);
                    }
                } else if !is_stale(s.vs[i]) {
                    ts.push(s.ts[i]);
                    vs.push(s.vs[i]);
                }
            }
            // Only the window's last samples count for these, floats or
            // histograms (Prometheus's `instantValue`, `last_over_time`):
            // histograms after floats make a histogram result.
            let last = match function {
                RangeFn::Irate | RangeFn::Idelta => 2,
                RangeFn::LastOverTime => 1,
                _ => 0,
            };
            if last > 0 {
                let mut tail: Vec<i64> =
                    ts.iter().rev().take(last).chain(hist_ts.iter().rev().take(last)).copied().collect();
                tail.sort_unstable();
                if let Some(&from) = tail.len().checked_sub(last).and_then(|i| tail.get(i)) {
                    let floats = ts.partition_point(|&x| x < from);
                    ts.drain(..floats);
                    vs.drain(..floats);
                    let histograms = hist_ts.partition_point(|&x| x < from);
                    hist_ts.drain(..histograms);
                    hist.drain(..histograms);
                }
            }
            if histograms && vs.is_empty() && !hist.is_empty() {
                // A window of histograms: a histogram result.
                if let Some(e) = hist_errors.first() {
                    return Err(DataFusionError::Execution((*e).clone()));
                }
                let valid: Vec<&FloatHistogram> = hist.iter().flatten().copied().collect();
                let (h, notes) = function.eval_histograms(&hist_ts, &valid, at, range_ms, name);
                for (warning, note) in notes {
                    if warning { ctx.warn(note) } else { ctx.info(note) }
                }
                if let Some(h) = h {
                    out.push_hist(&result_labels, t, &h.encode());
                    produced = true;
                    continue;
                }
            }
            let (value, note) = function.eval_with_histograms(&ts, &vs, &hist_ts, &hist, at, range_ms, t, name);
            if let Some((warning, note)) = note {
                if warning { ctx.warn(note) } else { ctx.info(note) }
            }
            if let Some(v) = value {
                out.push(&result_labels, t, v);
                produced = true;
            }
        }
        out.charge(ctx)?;
        if produced && let Some((warning, note)) = function.annotation(labels) {
            if warning { ctx.warn(note) } else { ctx.info(note) }
        }
    }
    out.finish()
}

/// A session state whose physical planner knows [`PromNode`], reading
/// through `ctx`: a copy of one built once (building registers every
/// built-in function and the default catalog, which cost more than the
/// copy).
pub fn session_state(ctx: Arc<ReadContext>) -> SessionState {
    static TEMPLATE: LazyLock<SessionState> = LazyLock::new(|| {
        let config = datafusion::prelude::SessionConfig::new().with_target_partitions(1);
        datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_query_planner(Arc::new(PromQueryPlanner))
            .build()
    });
    let mut state = TEMPLATE.clone();
    state.config_mut().set_extension(ctx);
    state
}

#[derive(Debug)]
struct PromQueryPlanner;

#[async_trait]
impl datafusion::execution::context::QueryPlanner for PromQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner = datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(
            PromExtensionPlanner,
        )]);
        planner.create_physical_plan(logical_plan, session).await
    }
}

/// Reads a batch's rows: labels, time, value, and a scan's (or a root
/// selector's) histogram encoding.
pub fn rows_with_histograms(batch: &RecordBatch) -> impl Iterator<Item = (&[u8], i64, f64, Option<&[u8]>)> + '_ {
    let l = LabelsColumn::of(batch);
    let t = batch.column(1).as_primitive::<Int64Type>();
    let v = batch.column(2).as_primitive::<Float64Type>();
    let h = batch.column_by_name(HIST).map(|c| c.as_binary::<i32>());
    (0..batch.num_rows())
        .map(move |i| (l.value(i), t.value(i), v.value(i), h.filter(|h| h.is_valid(i)).map(|h| h.value(i))))
}

/// A batch's `labels` column: plain (vectors) or dictionary-encoded (the
/// scan's).
#[derive(Clone, Copy)]
enum LabelsColumn<'a> {
    Plain(&'a BinaryArray),
    Dictionary(&'a PrimitiveArray<Int32Type>, &'a BinaryArray),
}

impl<'a> LabelsColumn<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        let column = batch.column(0);
        match column.as_dictionary_opt::<Int32Type>() {
            Some(d) => Self::Dictionary(d.keys(), d.values().as_binary::<i32>()),
            None => Self::Plain(column.as_binary::<i32>()),
        }
    }

    /// Row `i`'s label encoding.
    fn value(self, i: usize) -> &'a [u8] {
        match self {
            Self::Plain(a) => a.value(i),
            Self::Dictionary(keys, values) => values.value(usize::try_from(keys.value(i)).unwrap_or(0)),
        }
    }

    /// Whether rows `i` and `j` have the same labels.
    fn same(self, i: usize, j: usize) -> bool {
        match self {
            Self::Plain(a) => a.value(i) == a.value(j),
            Self::Dictionary(keys, _) => keys.value(i) == keys.value(j),
        }
    }
}

/// Reads a `labels`/`ts`/`value` batch's float rows (a scan's histogram
/// samples are left out: their values are not evaluated yet).
pub fn rows(batch: &RecordBatch) -> impl Iterator<Item = (&[u8], i64, f64)> + '_ {
    rows_with_histograms(batch).filter(|r| r.3.is_none()).map(|(l, t, v, _)| (l, t, v))
}

#[cfg(test)]
mod histogram_marker_tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_histogram_whose_sum_is_the_stale_nan_is_a_staleness_marker() {
        let marker = schemas::stream::Histogram { sum: f64::from_bits(STALE_NAN_BITS), ..Default::default() };
        assert!(is_stale_histogram(&marker.encode_to_vec()));
        let nan_sum = schemas::stream::Histogram { sum: f64::NAN, ..Default::default() };
        assert!(!is_stale_histogram(&nan_sum.encode_to_vec()), "NaN observations are not staleness");
        assert!(!is_stale_histogram(&schemas::stream::Histogram::default().encode_to_vec()));
    }
}
