//! The PromQL engine: parse (`promql-parser`), plan ([`planner`]: DataFusion
//! logical plans with PromQL's extension nodes, [`nodes`]), run the plan on
//! a DataFusion session whose scans read through the
//! [`common::seams::SampleReader`], and shape the rows into Prometheus's
//! result types.

pub mod aggregates;
pub mod binary;
pub mod functions;
pub mod histogram;
pub mod info;
pub mod labels;
pub mod nodes;
pub mod planner;
pub mod vector_fns;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::ErrorKind;
use common::limits::QueryLimits;
use common::seams::{SampleReader, SeamError};
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;

use self::nodes::{Grid, ReadContext};
use self::planner::{PlanSettings, Planned};

/// The default lookback delta (Prometheus's 5 minutes).
pub const DEFAULT_LOOKBACK_MS: i64 = 300_000;

pub use planner::DEFAULT_SUBQUERY_STEP_MS;

/// Why a query failed, with its Prometheus error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse (`bad_data`).
    #[error("{0}")]
    Parse(String),
    /// The query or its parameters are invalid (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed on the data (`execution`).
    #[error("{0}")]
    Execution(String),
    /// Not built yet in PromLake (`execution`, named so).
    #[error("not supported by PromLake yet: {0}")]
    Unsupported(String),
    /// A query limit was hit (`execution`, status 422), with Cortex's text.
    #[error("{0}")]
    Limit(String),
    /// The query ran out of time (`timeout`, status 503).
    #[error("{0}")]
    Timeout(String),
    /// Our fault (`internal`).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// Maps a DataFusion error: a [`SeamError`] raised in a scan (a limit, a
    /// storage failure) keeps its kind; anything else failed evaluation.
    fn from_execution(e: datafusion::common::DataFusionError) -> Self {
        use datafusion::common::DataFusionError;
        if let DataFusionError::Execution(message) = e.find_root() {
            return QueryError::Execution(message.clone());
        }
        if let DataFusionError::External(inner) = e.find_root() {
            if let Some(seam) = inner.downcast_ref::<SeamError>() {
                return match seam.kind {
                    ErrorKind::LimitExceeded => QueryError::Limit(seam.message.clone()),
                    ErrorKind::BadData => QueryError::BadData(seam.message.clone()),
                    ErrorKind::Timeout => QueryError::Timeout(seam.message.clone()),
                    ErrorKind::Internal => QueryError::Internal(seam.message.clone()),
                    _ => QueryError::Execution(seam.message.clone()),
                };
            }
            return QueryError::Execution(inner.to_string());
        }
        QueryError::Execution(e.to_string())
    }
}

impl From<datafusion::common::DataFusionError> for QueryError {
    fn from(e: datafusion::common::DataFusionError) -> Self {
        QueryError::Internal(e.to_string())
    }
}

/// The warnings and infos of an evaluation (Prometheus's annotations), each
/// message once, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `PromQL warning: …`
    pub warnings: std::collections::BTreeSet<String>,
    /// `PromQL info: …`
    pub infos: std::collections::BTreeSet<String>,
}

/// A label set as sorted (name, value) pairs.
pub type LabelPairs = Vec<(String, String)>;

/// One series of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    /// (Unix ms, value), in time order.
    pub points: Vec<(i64, f64)>,
    /// (Unix ms, native histogram), in time order.
    pub histograms: Vec<(i64, histogram::FloatHistogram)>,
    /// Where the series' first row came in the plan's output (the order of
    /// an instant query's sorted result).
    pub order: usize,
}

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A scalar at a time.
    Scalar(i64, f64),
    /// A string at a time.
    String(i64, String),
    /// An instant vector: one point per series.
    Vector(Vec<Series>),
    /// A matrix: series sorted by labels.
    Matrix(Vec<Series>),
}

/// Evaluates PromQL against one reader.
#[derive(Debug, Clone)]
pub struct Engine {
    reader: Arc<dyn SampleReader>,
    name_drop: labels::NameDrop,
}

/// What to evaluate and over which steps.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The expression.
    pub query: String,
    /// First step, Unix ms (= `end_ms` for an instant query).
    pub start_ms: i64,
    /// Last step, Unix ms.
    pub end_ms: i64,
    /// Step, ms (an instant query: any positive value).
    pub step_ms: i64,
    /// Lookback delta, ms.
    pub lookback_ms: i64,
    /// The step of subqueries that give none (`x[5m:]`), ms: Prometheus's
    /// global `evaluation_interval` ([`DEFAULT_SUBQUERY_STEP_MS`], 1 m, by
    /// default).
    pub subquery_step_ms: i64,
    /// An instant query (a vector result) rather than a range query.
    pub instant: bool,
    /// The workspace's query limits (samples, series, timeout).
    pub limits: QueryLimits,
    /// A timeout shorter than the limits' (the API's `timeout` parameter).
    pub timeout: Option<std::time::Duration>,
}

impl QueryRequest {
    /// The timeout that applies: the shorter of the request's and the limit.
    pub fn effective_timeout(&self) -> std::time::Duration {
        let limit = std::time::Duration::from_secs(self.limits.timeout_seconds.max(1));
        self.timeout.map_or(limit, |t| t.min(limit))
    }
}

impl Engine {
    /// An engine reading through `reader`.
    pub fn new(reader: Arc<dyn SampleReader>) -> Self {
        Self { reader, name_drop: labels::NameDrop::Now }
    }

    /// With Prometheus's experimental delayed name removal
    /// (`--enable-feature=promql-delayed-name-removal`, on in its
    /// conformance harness): operations flag the series whose name they
    /// drop, and the name (with `__type__` and `__unit__`) leaves only the
    /// final result, so matching, grouping and `label_replace` still see it.
    #[must_use]
    pub fn with_delayed_name_removal(mut self, on: bool) -> Self {
        self.name_drop = if on { labels::NameDrop::Delayed } else { labels::NameDrop::Now };
        self
    }

    fn context(&self, workspace_id: &str, limits: &QueryLimits) -> Arc<ReadContext> {
        Arc::new(ReadContext {
            workspace_id: workspace_id.to_owned(),
            reader: self.reader.clone(),
            budget: nodes::Budget::new(limits),
            annotations: std::sync::Mutex::new(Annotations::default()),
            name_drop: self.name_drop,
        })
    }

    /// Parses and plans a request: the logical plan (`None` for constants
    /// and strings) and what it plans to.
    ///
    /// # Errors
    /// [`QueryError::Parse`], [`QueryError::BadData`], [`QueryError::Unsupported`].
    pub fn plan(&self, req: &QueryRequest) -> Result<Planned, QueryError> {
        let expr = promql_parser::parser::parse(&req.query).map_err(QueryError::Parse)?;
        let settings = PlanSettings {
            grid: Grid { start_ms: req.start_ms, end_ms: req.end_ms, step_ms: req.step_ms.max(1) },
            lookback_ms: req.lookback_ms,
            subquery_step_ms: req.subquery_step_ms,
            max_points: req.limits.max_samples,
            name_drop: self.name_drop,
        };
        planner::plan(&expr, &settings)
    }

    /// A request's logical plan, or the text of what it folds to (a
    /// constant or a string: nothing to run).
    fn runnable(&self, req: &QueryRequest) -> Result<Result<LogicalPlan, String>, QueryError> {
        Ok(match self.plan(req)? {
            Planned::Vector(p) | Planned::Scalar(p) | Planned::Matrix(p) => Ok(p),
            Planned::Const(v) => Err(format!("constant {v}")),
            Planned::String(s) => Err(format!("string {s:?}")),
        })
    }

    /// Optimizes `plan` and builds its physical plan on a session over `ctx`.
    async fn physical(
        ctx: &Arc<ReadContext>,
        plan: &LogicalPlan,
    ) -> Result<(SessionState, LogicalPlan, Arc<dyn ExecutionPlan>), QueryError> {
        let state = nodes::session_state(ctx.clone());
        let optimized = state.optimize(plan).map_err(|e| QueryError::Internal(e.to_string()))?;
        let physical = state.create_physical_plan(&optimized).await.map_err(|e| QueryError::Internal(e.to_string()))?;
        Ok((state, optimized, physical))
    }

    /// The optimized logical and the physical plan of a request, as text
    /// (`EXPLAIN`).
    ///
    /// # Errors
    /// As [`Engine::query`].
    pub async fn explain(&self, workspace_id: &str, req: &QueryRequest) -> Result<String, QueryError> {
        let plan = match self.runnable(req)? {
            Ok(p) => p,
            Err(text) => return Ok(text),
        };
        let (_, optimized, physical) = Self::physical(&self.context(workspace_id, &req.limits), &plan).await?;
        Ok(format!(
            "logical:\n{}\nphysical:\n{}",
            optimized.display_indent(),
            datafusion::physical_plan::displayable(physical.as_ref()).indent(false)
        ))
    }

    /// Runs a request's plan and prints its physical plan with each node's
    /// metrics (`EXPLAIN ANALYZE`): a scan shows the series, files, row
    /// groups and samples it read.
    ///
    /// # Errors
    /// As [`Engine::query`].
    pub async fn analyze(&self, workspace_id: &str, req: &QueryRequest) -> Result<String, QueryError> {
        let plan = match self.runnable(req)? {
            Ok(p) => p,
            Err(text) => return Ok(text),
        };
        let (state, _, physical) = Self::physical(&self.context(workspace_id, &req.limits), &plan).await?;
        datafusion::physical_plan::collect(physical.clone(), state.task_ctx())
            .await
            .map_err(QueryError::from_execution)?;
        Ok(datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(physical.as_ref())
            .indent(false)
            .to_string())
    }

    /// Evaluates a request within its timeout. Dropping the returned
    /// future (a client gone away) stops the plan: its streams and scans are
    /// dropped with it.
    ///
    /// # Errors
    /// [`QueryError`] for parse, planning and evaluation failures, limits
    /// ([`QueryError::Limit`]) and the timeout ([`QueryError::Timeout`]).
    pub async fn query(&self, workspace_id: &str, req: &QueryRequest) -> Result<QueryValue, QueryError> {
        self.query_annotated(workspace_id, req).await.map(|(v, _)| v)
    }

    /// As [`Engine::query`], with the warnings and infos the evaluation
    /// raised (Prometheus's annotations).
    ///
    /// # Errors
    /// As [`Engine::query`].
    pub async fn query_annotated(
        &self,
        workspace_id: &str,
        req: &QueryRequest,
    ) -> Result<(QueryValue, Annotations), QueryError> {
        let ctx = self.context(workspace_id, &req.limits);
        match tokio::time::timeout(req.effective_timeout(), self.evaluate(&ctx, req)).await {
            Ok(result) => {
                let annotations = std::mem::take(&mut *ctx.annotations.lock().unwrap_or_else(|p| p.into_inner()));
                result.map(|v| (v, annotations))
            }
            Err(_) => Err(QueryError::Timeout("query timed out in expression evaluation".into())),
        }
    }

    async fn evaluate(&self, ctx: &Arc<ReadContext>, req: &QueryRequest) -> Result<QueryValue, QueryError> {
        let planned = self.plan(req)?;
        let grid = Grid { start_ms: req.start_ms, end_ms: req.end_ms, step_ms: req.step_ms.max(1) };
        match planned {
            Planned::Const(v) if req.instant => Ok(QueryValue::Scalar(req.end_ms, v)),
            Planned::Const(v) => Ok(QueryValue::Matrix(vec![Series {
                labels: Vec::new(),
                points: grid.steps().map(|t| (t, v)).collect(),
                histograms: Vec::new(),
                order: 0,
            }])),
            Planned::String(s) if req.instant => Ok(QueryValue::String(req.end_ms, s)),
            Planned::String(_) => Err(QueryError::BadData(
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
            )),
            Planned::Scalar(plan) => {
                let rows = self.run_scalar(ctx, plan).await?;
                if req.instant {
                    let v = rows.first().map_or(f64::NAN, |r| r.1);
                    Ok(QueryValue::Scalar(req.end_ms, v))
                } else {
                    Ok(QueryValue::Matrix(vec![Series {
                        labels: Vec::new(),
                        points: rows,
                        histograms: Vec::new(),
                        order: 0,
                    }]))
                }
            }
            Planned::Vector(plan) => {
                let ordered = req.instant && nodes::PromNode::keeps_order(&plan);
                let mut series = self.run_vector(ctx, plan, true).await?;
                if ordered {
                    series.sort_by_key(|s| s.order);
                }
                Ok(if req.instant { QueryValue::Vector(series) } else { QueryValue::Matrix(series) })
            }
            Planned::Matrix(plan) if req.instant => {
                // A range vector's raw samples, without staleness markers.
                let mut series = self.run_vector(ctx, plan, false).await?;
                for s in &mut series {
                    s.points.retain(|p| !schemas::labels::is_stale_marker(p.1));
                }
                series.retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
                Ok(QueryValue::Matrix(series))
            }
            Planned::Matrix(_) => Err(QueryError::BadData(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
            )),
        }
    }

    async fn execute(
        &self,
        ctx: &Arc<ReadContext>,
        plan: LogicalPlan,
    ) -> Result<Vec<datafusion::arrow::array::RecordBatch>, QueryError> {
        let (state, _, physical) = Self::physical(ctx, &plan).await?;
        datafusion::physical_plan::collect(physical, state.task_ctx()).await.map_err(QueryError::from_execution)
    }

    async fn run_scalar(&self, ctx: &Arc<ReadContext>, plan: LogicalPlan) -> Result<Vec<(i64, f64)>, QueryError> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Float64Type, Int64Type};
        let batches = self.execute(ctx, plan).await?;
        let mut rows = Vec::new();
        for b in &batches {
            let t = b.column_by_name(nodes::TS).map(|c| c.as_primitive::<Int64Type>().clone());
            let v = b.column_by_name(nodes::VALUE).map(|c| c.as_primitive::<Float64Type>().clone());
            let (Some(t), Some(v)) = (t, v) else {
                return Err(QueryError::Internal("scalar plan without ts/value".into()));
            };
            for i in 0..b.num_rows() {
                rows.push((t.value(i), v.value(i)));
            }
        }
        rows.sort_by_key(|r| r.0);
        Ok(rows)
    }

    /// Runs a vector plan into series sorted by labels (series flagged for
    /// delayed name removal lose their name here); `unique` refuses two rows
    /// with one label set at one step (Prometheus's "vector cannot contain
    /// metrics with the same labelset").
    async fn run_vector(
        &self,
        ctx: &Arc<ReadContext>,
        plan: LogicalPlan,
        unique: bool,
    ) -> Result<Vec<Series>, QueryError> {
        let batches = self.execute(ctx, plan).await?;
        type Points = (usize, Vec<(i64, f64)>, Vec<(i64, histogram::FloatHistogram)>);
        let mut by_labels: BTreeMap<LabelPairs, Points> = BTreeMap::new();
        let mut encoded: BTreeMap<Vec<u8>, Vec<(String, String)>> = BTreeMap::new();
        let mut row = 0;
        for b in &batches {
            for (l, t, v, h) in nodes::rows_with_histograms(b) {
                let key = encoded.entry(l.to_vec()).or_insert_with(|| labels::cleanup(l)).clone();
                let entry = by_labels.entry(key).or_insert_with(|| (row, Vec::new(), Vec::new()));
                match h {
                    Some(h) => entry.2.push((t, histogram::FloatHistogram::decode(h).map_err(QueryError::Internal)?)),
                    None => entry.1.push((t, v)),
                }
                row += 1;
            }
        }
        let mut out = Vec::with_capacity(by_labels.len());
        for (labels, (order, mut points, mut histograms)) in by_labels {
            points.sort_by_key(|p| p.0);
            histograms.sort_by_key(|p| p.0);
            let duplicate = points.windows(2).any(|w| w[0].0 == w[1].0)
                || histograms.windows(2).any(|w| w[0].0 == w[1].0)
                || histograms.iter().any(|(t, _)| points.binary_search_by_key(t, |p| p.0).is_ok());
            if unique && duplicate {
                return Err(QueryError::Execution("vector cannot contain metrics with the same labelset".into()));
            }
            out.push(Series { labels, points, histograms, order });
        }
        Ok(out)
    }
}
