//! The Prometheus HTTP API of a workspace, under
//! `/workspaces/{workspace_id}/api/v1/`: `query`, `query_range`, `series`,
//! `labels`, `label/{name}/values`, `metadata`, `query_exemplars`,
//! `format_query`, `parse_query`, `status/buildinfo`, `rules` and `alerts`
//! (the ruler's state, through the `RuleStates` seam) (and PromLake's
//! `explain`: a query's DataFusion plans, `analyze=true` with each node's
//! metrics), with GET and
//! form-encoded POST, Prometheus 3.5's parameters ([`params`]) and its JSON
//! shapes and error types ([`respond`]).
//!
//! ```text
//!  request ─► workspace active? (control plane) ─► Params ─► Engine::query
//!        (PromQL plan over SampleReader, with the workspace's QueryLimits
//!         from common::limits::Overrides and its timeout)
//!        or SampleReader::select / metadata (series, labels, metadata)
//!        ─► Prometheus JSON ─► response
//! ```
//!
//! Dropping a handler's future drops the query's plan and scans (tested);
//! hyper drops it when it notices the client's connection closed. Exemplars are not stored yet, so
//! `query_exemplars` validates its parameters and answers an empty list.

pub mod ast;
pub mod params;
pub mod respond;
mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::limits::{Overrides, QueryLimits};
use common::seams::{LabelMatcher, MatchOp, RuleStates, SampleReader, Selection};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;

use self::params::{MAX_TIME_MS, MIN_TIME_MS, Params, go_duration, parse_duration};
use self::respond::{ApiError, ErrorType, success};
use crate::engine::{DEFAULT_LOOKBACK_MS, Engine, QueryRequest, QueryValue};

/// The Prometheus version whose API PromLake answers as (`buildinfo`).
pub const PROMETHEUS_API_VERSION: &str = "3.5.3";

/// Warning added when `limit` cut a series or label answer short.
const TRUNCATED: &str = "results truncated due to limit";

/// The earliest and latest sample times a selection reads (years 0 to
/// 9999: the lake's day partitions cover no more).
const READ_RANGE: (i64, i64) = (-62_167_219_200_000, 253_402_300_799_999);

/// What the API needs.
#[derive(Debug)]
pub struct QueryApi {
    engine: Engine,
    reader: Arc<dyn SampleReader>,
    workspaces: Arc<dyn ControlPlaneStore>,
    arns: ArnScheme,
    overrides: Arc<Overrides>,
    clock: Arc<dyn Clock>,
    /// The rules this process evaluates (`None`: it runs no ruler).
    rules: Option<Arc<dyn RuleStates>>,
}

impl QueryApi {
    /// An API reading through `reader`; `workspaces` tells which workspaces
    /// exist and are active.
    pub fn new(
        reader: Arc<dyn SampleReader>,
        workspaces: Arc<dyn ControlPlaneStore>,
        arns: ArnScheme,
        overrides: Arc<Overrides>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { engine: Engine::new(reader.clone()), reader, workspaces, arns, overrides, clock, rules: None }
    }

    /// The API with `rules` and `alerts` answered from `rules`.
    #[must_use]
    pub fn with_rules(mut self, rules: Arc<dyn RuleStates>) -> Self {
        self.rules = Some(rules);
        self
    }

    fn check_workspace(&self, workspace_id: &str) -> Result<(), ApiError> {
        let active = self
            .workspaces
            .get(&self.arns.workspace(workspace_id))
            .and_then(|doc| serde_json::from_value::<common::workspace::WorkspaceRecord>(doc).ok())
            .is_some_and(|w| w.is_active());
        if active {
            Ok(())
        } else {
            Err(ApiError { kind: ErrorType::NotFound, message: format!("workspace {workspace_id} not found") })
        }
    }
}

/// The routes of the Prometheus HTTP API.
pub fn router(api: Arc<QueryApi>) -> Router {
    const P: &str = "/workspaces/{workspace_id}/api/v1";
    Router::new()
        .route(&format!("{P}/query"), get(query).post(query))
        .route(&format!("{P}/query_range"), get(query_range).post(query_range))
        .route(&format!("{P}/series"), get(series).post(series))
        .route(&format!("{P}/labels"), get(labels).post(labels))
        .route(&format!("{P}/label/{{name}}/values"), get(label_values))
        .route(&format!("{P}/metadata"), get(metadata))
        .route(&format!("{P}/query_exemplars"), get(query_exemplars).post(query_exemplars))
        .route(&format!("{P}/format_query"), get(format_query).post(format_query))
        .route(&format!("{P}/parse_query"), get(parse_query).post(parse_query))
        .route(&format!("{P}/status/buildinfo"), get(buildinfo))
        .route(&format!("{P}/explain"), get(explain).post(explain))
        .route(&format!("{P}/rules"), get(rules::rules))
        .route(&format!("{P}/alerts"), get(rules::alerts))
        .with_state(api)
}

/// Largest form-encoded request body, bytes.
const MAX_FORM_BYTES: usize = 8 << 20;

/// The parts of a request every endpoint reads: an active workspace and
/// the parameters.
struct Call {
    api: Arc<QueryApi>,
    workspace_id: String,
    /// The `{name}` of `label/{name}/values` (empty elsewhere).
    path_name: String,
    params: Params,
}

impl FromRequest<Arc<QueryApi>> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, api: &Arc<QueryApi>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(path) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, api)
            .await
            .map_err(|e| ApiError::bad_data(e.body_text()).into_response())?;
        let workspace_id = path.get("workspace_id").cloned().unwrap_or_default();
        api.check_workspace(&workspace_id).map_err(IntoResponse::into_response)?;
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|e| {
            ApiError::bad_data(format!("error parsing form values: {e} (at most {MAX_FORM_BYTES} bytes)"))
                .into_response()
        })?;
        let params = Params::read(parts.uri.query(), &parts.headers, &body).map_err(IntoResponse::into_response)?;
        Ok(Self { api: api.clone(), workspace_id, path_name: path.get("name").cloned().unwrap_or_default(), params })
    }
}

impl Call {
    fn limits(&self) -> QueryLimits {
        (*self.api.overrides.query(&self.workspace_id)).clone()
    }

    /// The engine request for `query` over `[start, end]` by `step`, with
    /// `timeout` and `lookback_delta` from the parameters.
    fn request(
        &self,
        (start, end, step): (i64, i64, i64),
        instant: bool,
        limits: QueryLimits,
    ) -> Result<QueryRequest, ApiError> {
        let (timeout, lookback_ms) = self.query_options()?;
        Ok(QueryRequest {
            query: self.params.get("query").to_owned(),
            start_ms: start,
            end_ms: end,
            step_ms: step,
            lookback_ms,
            subquery_step_ms: crate::engine::DEFAULT_SUBQUERY_STEP_MS,
            instant,
            limits,
            timeout,
        })
    }

    /// `timeout` and `lookback_delta`.
    fn query_options(&self) -> Result<(Option<std::time::Duration>, i64), ApiError> {
        let timeout = match self.params.get("timeout") {
            "" => None,
            t => {
                let ms = parse_duration(t).map_err(|e| ApiError::invalid_param("timeout", e))?;
                Some(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
            }
        };
        let lookback = match self.params.get("lookback_delta") {
            "" => DEFAULT_LOOKBACK_MS,
            l => match parse_duration(l) {
                Ok(ms) if ms <= 0 => DEFAULT_LOOKBACK_MS,
                Ok(ms) => ms,
                Err(e) => return Err(ApiError::bad_data(format!("error parsing lookback delta duration: {e}"))),
            },
        };
        Ok((timeout, lookback))
    }

    /// `start` and `end` of the series and label APIs (open by default).
    fn open_range(&self, end_name: &str) -> Result<(i64, i64), ApiError> {
        let start = self.params.time_or("start", MIN_TIME_MS)?;
        let end = self.params.time_or("end", MAX_TIME_MS)?;
        if end < start {
            return Err(ApiError::bad_data(format!("end timestamp must not be before start {end_name}")));
        }
        Ok((start.max(READ_RANGE.0), end.min(READ_RANGE.1)))
    }

    /// The label sets of the series matching any of `sets` with samples in
    /// `[start, end]`.
    async fn series(
        &self,
        sets: Vec<Vec<LabelMatcher>>,
        start: i64,
        end: i64,
    ) -> Result<BTreeSet<Vec<(String, String)>>, ApiError> {
        let mut out = BTreeSet::new();
        // The same series limit as a query's scans (samples are not counted:
        // Prometheus does not limit these calls by samples).
        let budget = crate::engine::nodes::Budget::new(&self.limits());
        for matchers in sets {
            let selection = Selection { matchers, start_ms: start, end_ms: end };
            let selected =
                self.api.reader.select(&self.workspace_id, &selection).await.map_err(|e| ApiError::storage(&e))?;
            budget.charge(selected.series.len(), 0).map_err(|e| ApiError::storage(&e))?;
            out.extend(selected.series.into_iter().map(|s| s.labels.to_vec()));
        }
        Ok(out)
    }
}

async fn query(call: Call) -> Result<Response, ApiError> {
    let limit = call.params.limit()?;
    let time = call.params.time_or("time", call.api.clock.now_ms())?;
    let req = call.request((time, time, 1_000), true, call.limits())?;
    run(&call, &req, limit).await
}

/// Evaluates a request and answers with its value and annotations, the
/// series cut to `limit` (0: all) with a warning, as Prometheus 3.5 does.
async fn run(call: &Call, req: &QueryRequest, limit: usize) -> Result<Response, ApiError> {
    let (mut value, mut notes) =
        call.api.engine.query_annotated(&call.workspace_id, req).await.map_err(ApiError::query)?;
    if let QueryValue::Vector(series) | QueryValue::Matrix(series) = &mut value
        && limit > 0
        && series.len() > limit
    {
        series.truncate(limit);
        notes.warnings.insert(TRUNCATED.into());
    }
    Ok(respond::annotated(&respond::query_data(&value), &notes))
}

/// `start`, `end` and `step` of a range query, checked as Prometheus 3.5
/// checks them, plus the workspace's range-length limit.
fn range_params(call: &Call, limits: &QueryLimits) -> Result<(i64, i64, i64), ApiError> {
    let p = &call.params;
    let start = p.time("start")?;
    let end = p.time("end")?;
    if end < start {
        return Err(ApiError::invalid_param("end", "end timestamp must not be before start time"));
    }
    let step = parse_duration(p.get("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // i128: `end - start` of two extreme times does not fit an i64.
    let length = i128::from(end) - i128::from(start);
    if length / i128::from(step) > i128::from(limits.max_points_per_series) {
        return Err(ApiError::bad_data(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            thousands(limits.max_points_per_series)
        )));
    }
    let max_length = i64::from(limits.max_query_length_days) * 86_400_000;
    if max_length > 0 && length > i128::from(max_length) {
        return Err(ApiError {
            kind: ErrorType::Execution,
            message: format!(
                "the query time range exceeds the limit (query length: {}, limit: {})",
                go_duration(i64::try_from(length).unwrap_or(i64::MAX)),
                go_duration(max_length)
            ),
        });
    }
    Ok((start, end, step))
}

/// `11000` → `11,000`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

async fn query_range(call: Call) -> Result<Response, ApiError> {
    let limit = call.params.limit()?;
    let limits = call.limits();
    let range = range_params(&call, &limits)?;
    let req = call.request(range, false, limits)?;
    run(&call, &req, limit).await
}

/// Parses `match[]` values into matcher sets (an `or` in a selector gives
/// one set per alternative).
fn match_params(values: &[&str]) -> Result<Vec<Vec<LabelMatcher>>, ApiError> {
    let mut sets = Vec::new();
    for v in values {
        let expr = promql_parser::parser::parse(v).map_err(|e| ApiError::invalid_param("match[]", e))?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(ApiError::invalid_param("match[]", format!("{v:?} is not a series selector")));
        };
        let alternatives: Vec<&[promql_parser::label::Matcher]> = if vs.matchers.or_matchers.is_empty() {
            vec![&vs.matchers.matchers]
        } else {
            vs.matchers.or_matchers.iter().map(Vec::as_slice).collect()
        };
        for alt in alternatives {
            let mut set = Vec::with_capacity(alt.len() + 1);
            if let Some(name) = &vs.name {
                set.push(matcher("__name__", MatchOp::Equal, name)?);
            }
            for m in alt {
                let op = match m.op {
                    PMatchOp::Equal => MatchOp::Equal,
                    PMatchOp::NotEqual => MatchOp::NotEqual,
                    PMatchOp::Re(_) => MatchOp::Regex,
                    PMatchOp::NotRe(_) => MatchOp::NotRegex,
                };
                set.push(matcher(&m.name, op, &m.value)?);
            }
            if set.iter().all(|m| m.matches("")) {
                return Err(ApiError::invalid_param("match[]", "match[] must contain at least one non-empty matcher"));
            }
            sets.push(set);
        }
    }
    Ok(sets)
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Result<LabelMatcher, ApiError> {
    LabelMatcher::new(name, op, value).map_err(|e| ApiError::invalid_param("match[]", e.message))
}

/// Every series: a metric name that is not empty.
fn all_series() -> Result<Vec<Vec<LabelMatcher>>, ApiError> {
    Ok(vec![vec![matcher("__name__", MatchOp::Regex, ".+")?]])
}

fn truncate<T>(items: Vec<T>, limit: usize, warnings: &mut Vec<String>) -> Vec<T> {
    if limit > 0 && items.len() > limit {
        warnings.push(TRUNCATED.into());
        items.into_iter().take(limit).collect()
    } else {
        items
    }
}

async fn series(call: Call) -> Result<Response, ApiError> {
    let matches = call.params.all("match[]");
    if matches.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = call.params.limit()?;
    let (start, end) = call.open_range("time")?;
    let sets = match_params(&matches)?;
    let found: Vec<_> = call.series(sets, start, end).await?.into_iter().collect();
    let mut warnings = Vec::new();
    let found = truncate(found, limit, &mut warnings);
    Ok(success(&respond::label_sets(&found), &warnings, &[]))
}

async fn labels(call: Call) -> Result<Response, ApiError> {
    let limit = call.params.limit()?;
    let (start, end) = call.open_range("time")?;
    let matches = call.params.all("match[]");
    let sets = if matches.is_empty() { all_series()? } else { match_params(&matches)? };
    let names: BTreeSet<String> =
        call.series(sets, start, end).await?.into_iter().flat_map(|s| s.into_iter().map(|(n, _)| n)).collect();
    let mut warnings = Vec::new();
    let names = truncate(names.into_iter().collect(), limit, &mut warnings);
    Ok(success(&serde_json::Value::from(names).to_string(), &warnings, &[]))
}

async fn label_values(call: Call) -> Result<Response, ApiError> {
    let name = call.path_name.clone();
    let name = if let Some(escaped) = name.strip_prefix("U__") { unescape_label_name(escaped) } else { Some(name) };
    let name = match name {
        Some(n) if !n.is_empty() => n,
        _ => return Err(ApiError::bad_data("invalid label name")),
    };
    let limit = call.params.limit()?;
    let (start, end) = call.open_range("time")?;
    let matches = call.params.all("match[]");
    let has_label = matcher(&name, MatchOp::Regex, ".+")?;
    let sets = if matches.is_empty() {
        vec![vec![has_label]]
    } else {
        match_params(&matches)?
            .into_iter()
            .map(|mut s| {
                s.push(has_label.clone());
                s
            })
            .collect()
    };
    let values: BTreeSet<String> = call
        .series(sets, start, end)
        .await?
        .into_iter()
        .filter_map(|s| s.into_iter().find(|(n, _)| *n == name).map(|(_, v)| v))
        .collect();
    let mut warnings = Vec::new();
    let values = truncate(values.into_iter().collect(), limit, &mut warnings);
    Ok(success(&serde_json::Value::from(values).to_string(), &warnings, &[]))
}

/// Prometheus's `U__` escaping of label names in URL paths: `__` is `_`,
/// `_<hex>_` is the code point `<hex>`, other characters stand for
/// themselves. `None` when malformed.
fn unescape_label_name(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

async fn metadata(call: Call) -> Result<Response, ApiError> {
    let number = |name: &str| -> Result<i64, ApiError> {
        match call.params.get(name) {
            "" => Ok(-1),
            v => v.parse::<i64>().map_err(|_| ApiError::bad_data(format!("{name} must be a number"))),
        }
    };
    let limit = number("limit")?;
    let _per_metric = number("limit_per_metric")?; // one entry per metric is kept
    let metric = call.params.get("metric");
    let all = call.api.reader.metadata(&call.workspace_id).await.map_err(|e| ApiError::storage(&e))?;
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for m in all.into_iter().filter(|m| metric.is_empty() || m.metric == metric) {
        if limit >= 0 && out.len() as i64 >= limit {
            break;
        }
        out.insert(m.metric, serde_json::json!([{ "type": m.metric_type, "help": m.help, "unit": m.unit }]));
    }
    Ok(success(&serde_json::Value::from(serde_json::Map::from_iter(out)).to_string(), &[], &[]))
}

async fn query_exemplars(call: Call) -> Result<Response, ApiError> {
    call.open_range("timestamp")?;
    promql_parser::parser::parse(call.params.get("query")).map_err(ApiError::bad_data)?;
    // No exemplars are stored yet: every valid query finds none.
    Ok(success("[]", &[], &[]))
}

async fn format_query(call: Call) -> Result<Response, ApiError> {
    let expr =
        promql_parser::parser::parse(call.params.get("query")).map_err(|e| ApiError::invalid_param("query", e))?;
    Ok(success(&serde_json::Value::from(expr.prettify()).to_string(), &[], &[]))
}

async fn parse_query(call: Call) -> Result<Response, ApiError> {
    let expr =
        promql_parser::parser::parse(call.params.get("query")).map_err(|e| ApiError::invalid_param("query", e))?;
    Ok(success(&ast::translate(&expr).to_string(), &[], &[]))
}

/// PromLake's own `explain`: the query's DataFusion plans (`analyze=true`:
/// run, with each node's metrics), for `query` at `time` or, with `start`,
/// `end` and `step`, over a range.
async fn explain(call: Call) -> Result<Response, ApiError> {
    let limits = call.limits();
    let instant = call.params.get("start").is_empty();
    let range = if instant {
        let t = call.params.time_or("time", call.api.clock.now_ms())?;
        (t, t, 1_000)
    } else {
        range_params(&call, &limits)?
    };
    let req = call.request(range, instant, limits)?;
    let engine = &call.api.engine;
    let text = if call.params.get("analyze") == "true" {
        match tokio::time::timeout(req.effective_timeout(), engine.analyze(&call.workspace_id, &req)).await {
            Ok(r) => r,
            Err(_) => Err(crate::engine::QueryError::Timeout("query timed out in expression evaluation".into())),
        }
    } else {
        engine.explain(&call.workspace_id, &req).await
    }
    .map_err(ApiError::query)?;
    Ok(success(&serde_json::json!({ "plan": text }).to_string(), &[], &[]))
}

async fn buildinfo(_call: Call) -> Response {
    let data = serde_json::json!({
        "version": PROMETHEUS_API_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "promlake",
        "buildDate": "",
        "goVersion": "",
        "application": "PromLake",
        "promlakeVersion": env!("CARGO_PKG_VERSION"),
    });
    success(&data.to_string(), &[], &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_label_names() {
        assert_eq!(unescape_label_name("my_2e_label").as_deref(), Some("my.label"));
        assert_eq!(unescape_label_name("a__b").as_deref(), Some("a_b"));
        assert_eq!(unescape_label_name("_1F600_").as_deref(), Some("😀"));
        assert_eq!(unescape_label_name("bad_zz_"), None);
    }

    #[test]
    fn match_parameters_become_matcher_sets() {
        let sets = match_params(&[r#"up{job="a"}"#, r#"{__name__=~"x.*"}"#]).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0].iter().map(|m| (m.name.as_str(), m.value.as_str())).collect::<Vec<_>>(),
            [("__name__", "up"), ("job", "a")]
        );
        assert!(match_params(&["up + 1"]).is_err());
        assert!(match_params(&["{("]).is_err());
        let e = match_params(&[r#"{job=~".*"}"#]).unwrap_err();
        assert_eq!(e.kind, ErrorType::BadData);
    }
}
