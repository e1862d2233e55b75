//! The Alertmanager v2 API of each workspace, under
//! `/workspaces/{id}/alertmanager/api/v2/`: `status`, `receivers`,
//! `alerts` (GET with Alertmanager's filters, POST), `alerts/groups`,
//! `silences` (GET, POST), `silence/{id}` (GET, DELETE). Shapes, filters,
//! orders and messages are Alertmanager 0.33's; errors are JSON strings
//! (go-swagger's `{"code","message"}` for bodies that do not decode).
//! Every error is mapped to its status in one place (`ApiError`).
//!
//! Scaled out, a request for a workspace whose Alertmanager runs in
//! another alerting process is forwarded there as it came (method, path,
//! headers — a SigV4 signature stays valid — and body), marked with
//! [`FORWARDED_HEADER`] so that it is never forwarded twice; when no
//! process can take it (ownership is moving) it is answered 503.

use std::collections::BTreeMap;
use std::sync::Arc;

use amconfig::{MatchType, Matcher};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::dispatch::{Alert, alert_order, label_set_order};
use crate::engine::Engine;
use crate::registry::{Alertmanagers, Missing};
use crate::service::{Alertmanager, PostOutcome, SilenceRefused};
use crate::silence::{Silence, SilenceError, SilenceState};

/// An API error: a status and Alertmanager's payload.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// A JSON-string payload (how Alertmanager answers its own errors).
    fn text(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, body: Value::String(message.into()) }
    }

    /// go-swagger's `{"code","message"}` payload.
    fn swagger(status: StatusCode, code: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({"code": code, "message": message.into()}) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// The Alertmanager release whose v2 API this reproduces.
pub const API_VERSION: &str = "0.33.1";

/// Marks a request forwarded to the process running its workspace's
/// Alertmanager.
pub const FORWARDED_HEADER: &str = "x-promlake-forwarded";

/// How long a forwarded request may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The routes of the v2 API.
pub fn router(ams: Arc<Alertmanagers>) -> Router {
    const P: &str = "/workspaces/{workspace_id}/alertmanager/api/v2";
    Router::new()
        .route(&format!("{P}/status"), get(status))
        .route(&format!("{P}/receivers"), get(receivers))
        .route(&format!("{P}/alerts"), get(get_alerts).post(post_alerts))
        .route(&format!("{P}/alerts/groups"), get(get_groups))
        .route(&format!("{P}/silences"), get(get_silences).post(post_silence))
        .route(&format!("{P}/silence/{{silence_id}}"), get(get_silence).delete(delete_silence))
        .route_layer(axum::middleware::from_fn_with_state(ams.clone(), forward_elsewhere))
        .with_state(ams)
}

/// Forwards a request for a workspace run by another process to it.
async fn forward_elsewhere(
    State(ams): State<Arc<Alertmanagers>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let ws = path.strip_prefix("/workspaces/").and_then(|rest| rest.split('/').next()).unwrap_or_default().to_owned();
    if !matches!(ams.get(&ws), Err(Missing::Elsewhere)) {
        return next.run(request).await;
    }
    let moving = || moving(&ws).into_response();
    let Some(owner) = ams.owner_url(&ws).filter(|_| !request.headers().contains_key(FORWARDED_HEADER)) else {
        return moving();
    };
    let limit = ams.limits(&ws).max_alerts_bytes;
    match forward(&owner, request, limit).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(workspace = %ws, owner = %owner, error = %e, "Could not forward an Alertmanager API request.");
            moving()
        }
    }
}

/// 503: no process can answer for the workspace's Alertmanager now.
fn moving(workspace_id: &str) -> ApiError {
    ApiError::text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the Alertmanager of workspace {workspace_id} is moving between processes; retry"),
    )
}

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

/// Copies `from` without its hop-by-hop headers (and those its
/// `Connection` names).
fn end_to_end(from: &axum::http::HeaderMap) -> axum::http::HeaderMap {
    let named: Vec<String> = from
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    let mut out = from.clone();
    for name in HOP_BY_HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        out.remove(name);
    }
    out
}

/// Sends `request` to `base` and returns its answer (status, headers and
/// body).
async fn forward(base: &str, request: axum::extract::Request, limit: usize) -> std::result::Result<Response, String> {
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    });
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            return Ok(ApiError::text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response());
        }
        Err(e) => {
            return Ok(
                ApiError::text(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")).into_response()
            );
        }
    };
    let url = format!("{base}{}", parts.uri.path_and_query().map_or("", |p| p.as_str()));
    let mut headers = end_to_end(&parts.headers);
    // The host the client signed (an HTTP/2 request names it in the URI).
    if !headers.contains_key(axum::http::header::HOST)
        && let Some(host) = parts.uri.authority().and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(axum::http::header::HOST, host);
    }
    headers.insert(FORWARDED_HEADER, axum::http::HeaderValue::from_static("1"));
    let answer = CLIENT
        .request(parts.method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    let headers = end_to_end(answer.headers());
    let bytes = answer.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    let mut response = (status, bytes).into_response();
    *response.headers_mut() = headers;
    Ok(response)
}

fn workspace(ams: &Alertmanagers, workspace_id: &str) -> Result<Arc<Alertmanager>> {
    ams.get(workspace_id).map_err(|m| match m {
        Missing::Workspace => ApiError::text(StatusCode::NOT_FOUND, format!("workspace {workspace_id} not found")),
        Missing::Definition => {
            ApiError::text(StatusCode::NOT_FOUND, format!("workspace {workspace_id} has no alert manager definition"))
        }
        // (Forwarded requests that reach a process no longer running it.)
        Missing::Elsewhere => moving(workspace_id),
    })
}

/// strfmt's `DateTime` text (RFC 3339 with milliseconds).
fn date_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The query's parameters, repeated ones kept.
fn params(q: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn flag(params: &[(String, String)], name: &str) -> Result<bool> {
    match params.iter().rev().find(|(k, _)| k == name) {
        None => Ok(true),
        // Go's strconv.ParseBool.
        Some((_, v)) => match v.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(ApiError::swagger(
                StatusCode::BAD_REQUEST,
                400,
                format!("{name} in query must be of type boolean: {v:?}"),
            )),
        },
    }
}

/// `parseFilter`: each `filter` is one matcher.
fn filters(params: &[(String, String)]) -> Result<Vec<Matcher>> {
    let mut out = Vec::new();
    for (_, f) in params.iter().filter(|(k, _)| k == "filter") {
        let parsed = amconfig::parse_matchers(f).map_err(|e| ApiError::text(StatusCode::BAD_REQUEST, e))?;
        if parsed.len() != 1 {
            return Err(ApiError::text(StatusCode::BAD_REQUEST, format!("bad matcher format: {f}")));
        }
        out.extend(parsed);
    }
    Ok(out)
}

fn receiver_filter(params: &[(String, String)]) -> Result<Option<regex::Regex>> {
    let Some((_, r)) = params.iter().find(|(k, _)| k == "receiver") else { return Ok(None) };
    regex::Regex::new(&format!("^(?:{r})$"))
        .map(Some)
        .map_err(|e| ApiError::text(StatusCode::BAD_REQUEST, format!("failed to parse receiver param: {e}")))
}

/// An alert's status: (state, silenced by, inhibited by).
type Status = (&'static str, Vec<String>, Vec<String>);

/// An alert's status at `now`.
fn alert_status(engine: &Engine, a: &Alert, now_ms: i64) -> Status {
    let silenced = engine.silences().muting(&a.labels, now_ms);
    let inhibited: Vec<String> =
        engine.inhibited_by(&a.labels, now_ms).map(|fp| format!("{fp:016x}")).into_iter().collect();
    let state = if silenced.is_empty() && inhibited.is_empty() { "active" } else { "suppressed" };
    (state, silenced, inhibited)
}

/// `AlertToOpenAPIAlert`.
fn gettable_alert(a: &Alert, status: Status, receivers: &[String]) -> Value {
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": date_time(a.starts_at_ms),
        "updatedAt": date_time(a.updated_at_ms),
        "endsAt": a.ends_at_ms.map_or_else(|| "0001-01-01T00:00:00.000Z".to_owned(), date_time),
        "fingerprint": format!("{:016x}", a.fingerprint()),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {"state": status.0, "silencedBy": status.1, "inhibitedBy": status.2, "mutedBy": []},
    });
    if !a.generator_url.is_empty() {
        v["generatorURL"] = json!(a.generator_url);
    }
    v
}

/// The `alertFilter` of the alert and group listings.
struct AlertFilter {
    matchers: Vec<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
}

impl AlertFilter {
    fn new(params: &[(String, String)]) -> Result<Self> {
        Ok(Self {
            matchers: filters(params)?,
            active: flag(params, "active")?,
            silenced: flag(params, "silenced")?,
            inhibited: flag(params, "inhibited")?,
        })
    }

    /// The alert's status when it is listed.
    fn admit(&self, engine: &Engine, a: &Alert, now_ms: i64) -> Option<Status> {
        if a.ends_at_ms.is_some_and(|e| e < now_ms) || !amconfig::matches_all(&self.matchers, &a.labels) {
            return None;
        }
        let status = alert_status(engine, a, now_ms);
        let listed = (self.active || status.0 != "active")
            && (self.silenced || status.1.is_empty())
            && (self.inhibited || status.2.is_empty());
        listed.then_some(status)
    }
}

/// The workspace and the filters of an alert or group listing.
fn listing(
    ams: &Alertmanagers,
    ws: &str,
    q: Option<String>,
) -> Result<(Arc<Alertmanager>, AlertFilter, Option<regex::Regex>)> {
    let am = workspace(ams, ws)?;
    let params = params(q);
    Ok((am, AlertFilter::new(&params)?, receiver_filter(&params)?))
}

async fn status(State(ams): State<Arc<Alertmanagers>>, Path(ws): Path<String>) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    Ok(axum::Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "config": {"original": am.original_config()},
        "uptime": date_time(am.started_ms()),
        // The Alertmanager version whose API this is (amtool compares it
        // with its own); PromLake's own version in `revision`.
        "versionInfo": {
            "branch": "", "buildDate": "", "buildUser": "", "goVersion": "",
            "revision": concat!("promlake-", env!("CARGO_PKG_VERSION")), "version": API_VERSION,
        },
    }))
    .into_response())
}

async fn receivers(State(ams): State<Arc<Alertmanagers>>, Path(ws): Path<String>) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    let names = am.engine().receiver_names();
    Ok(axum::Json(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()).into_response())
}

async fn get_alerts(
    State(ams): State<Arc<Alertmanagers>>,
    Path(ws): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (am, filter, receiver) = listing(&ams, &ws, q)?;
    let now = am.now_ms();
    let engine = am.engine();
    let mut out: Vec<(String, Value)> = Vec::new();
    for s in engine.alerts() {
        let a = &s.alert;
        let receivers = engine.receivers_of(&a.labels);
        if let Some(r) = &receiver
            && !receivers.iter().any(|n| r.is_match(n))
        {
            continue;
        }
        let Some(status) = filter.admit(&engine, a, now) else { continue };
        out.push((format!("{:016x}", a.fingerprint()), gettable_alert(a, status, &receivers)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(axum::Json(out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()).into_response())
}

async fn post_alerts(State(ams): State<Arc<Alertmanagers>>, Path(ws): Path<String>, body: Bytes) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    match am.post_alerts(&body).await {
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            Err(ApiError::swagger(status, e.code, e.message))
        }
        Ok(PostOutcome::Stored) => Ok(StatusCode::OK.into_response()),
        Ok(PostOutcome::Invalid(m)) => Err(ApiError::text(StatusCode::BAD_REQUEST, m)),
        Ok(PostOutcome::Limited(m)) => Err(ApiError::text(StatusCode::TOO_MANY_REQUESTS, m)),
        Ok(PostOutcome::Unavailable(m)) => Err(ApiError::text(StatusCode::SERVICE_UNAVAILABLE, m)),
    }
}

async fn get_groups(
    State(ams): State<Arc<Alertmanagers>>,
    Path(ws): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (am, filter, receiver) = listing(&ams, &ws, q)?;
    let now = am.now_ms();
    let engine = am.engine();
    // (group labels, receiver, alerts with status)
    let mut groups = Vec::new();
    let mut receivers_by_fp: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for g in engine.groups() {
        let name = &g.opts.receiver;
        if receiver.as_ref().is_some_and(|r| !r.is_match(name)) {
            continue;
        }
        let mut alerts: Vec<(Alert, Status)> = Vec::new();
        for a in g.alerts() {
            if let Some(status) = filter.admit(&engine, a, now) {
                receivers_by_fp.entry(a.fingerprint()).or_default().push(name.clone());
                alerts.push((a.clone(), status));
            }
        }
        if alerts.is_empty() {
            continue;
        }
        alerts.sort_by(|a, b| alert_order(&a.0, &b.0));
        groups.push((g.labels.clone(), name.clone(), alerts));
    }
    for r in receivers_by_fp.values_mut() {
        r.sort();
    }
    groups.sort_by(|a, b| if a.0 == b.0 { a.1.cmp(&b.1) } else { label_set_order(&a.0, &b.0) });
    let out: Vec<Value> = groups
        .into_iter()
        .map(|(labels, receiver, alerts)| {
            let alerts: Vec<Value> = alerts
                .into_iter()
                .map(|(a, status)| {
                    let receivers = receivers_by_fp.get(&a.fingerprint()).cloned().unwrap_or_default();
                    gettable_alert(&a, status, &receivers)
                })
                .collect();
            json!({"labels": labels, "receiver": {"name": receiver}, "alerts": alerts})
        })
        .collect();
    Ok(axum::Json(out).into_response())
}

/// `GettableSilence`.
fn gettable_silence(s: &Silence, now_ms: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now_ms).as_str()},
        "updatedAt": date_time(s.updated_at_ms),
        "comment": s.comment,
        "createdBy": s.created_by,
        "startsAt": date_time(s.starts_at_ms.unwrap_or(0)),
        "endsAt": date_time(s.ends_at_ms),
        "matchers": s.matchers.iter().map(|m| json!({
            "name": m.name,
            "value": m.value,
            "isRegex": matches!(m.op, MatchType::Regexp | MatchType::NotRegexp),
            "isEqual": matches!(m.op, MatchType::Equal | MatchType::Regexp),
        })).collect::<Vec<_>>(),
    })
}

async fn get_silences(
    State(ams): State<Arc<Alertmanagers>>,
    Path(ws): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    let matchers = filters(&params(q))?;
    let now = am.now_ms();
    let engine = am.engine();
    let mut list: Vec<&Silence> = engine
        .silences()
        .all()
        .filter(|s| {
            matchers.iter().all(|f| s.matchers.iter().any(|m| m.name == f.name && m.op == f.op && m.value == f.value))
        })
        .collect();
    let rank = |s: SilenceState| match s {
        SilenceState::Active => 1,
        SilenceState::Pending => 2,
        SilenceState::Expired => 3,
    };
    list.sort_by(|a, b| {
        let (sa, sb) = (a.state(now), b.state(now));
        if sa != sb {
            return rank(sa).cmp(&rank(sb));
        }
        match sa {
            SilenceState::Active => a.ends_at_ms.cmp(&b.ends_at_ms),
            SilenceState::Pending => a.starts_at_ms.cmp(&b.starts_at_ms),
            SilenceState::Expired => b.ends_at_ms.cmp(&a.ends_at_ms),
        }
    });
    Ok(axum::Json(list.into_iter().map(|s| gettable_silence(s, now)).collect::<Vec<_>>()).into_response())
}

/// A posted silence (`PostableSilence`).
#[derive(Debug, serde::Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Option<Vec<PostableMatcher>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    comment: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct PostableMatcher {
    name: Option<String>,
    value: Option<String>,
    #[serde(rename = "isRegex")]
    is_regex: Option<bool>,
    #[serde(default, rename = "isEqual")]
    is_equal: Option<bool>,
}

fn parse_time(field: &str, t: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(t).map(|t| t.timestamp_millis()).map_err(|_| {
        ApiError::swagger(
            StatusCode::BAD_REQUEST,
            400,
            format!("parsing silence body from \"\" failed, because parsing time {t:?}: {field} is not a date-time"),
        )
    })
}

async fn post_silence(State(ams): State<Arc<Alertmanagers>>, Path(ws): Path<String>, body: Bytes) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    let p: PostableSilence = serde_json::from_slice(&body).map_err(|e| {
        ApiError::swagger(StatusCode::BAD_REQUEST, 400, format!("parsing silence body from \"\" failed, because {e}"))
    })?;
    let required =
        |name: &str| ApiError::swagger(StatusCode::UNPROCESSABLE_ENTITY, 602, format!("{name} in body is required"));
    let matchers = p.matchers.ok_or_else(|| required("matchers"))?;
    if matchers.is_empty() {
        return Err(ApiError::swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items",
        ));
    }
    let starts = parse_time("startsAt", &p.starts_at.ok_or_else(|| required("startsAt"))?)?;
    let ends = parse_time("endsAt", &p.ends_at.ok_or_else(|| required("endsAt"))?)?;
    let created_by = p.created_by.ok_or_else(|| required("createdBy"))?;
    let comment = p.comment.ok_or_else(|| required("comment"))?;
    if starts >= ends {
        return Err(ApiError::text(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        ));
    }
    let now = am.now_ms();
    if ends < now {
        return Err(ApiError::text(StatusCode::BAD_REQUEST, "Failed to create silence: end time can't be in the past"));
    }
    // The matchers are checked as the silence is set (`validateMatcher`:
    // the name, then an unanchored compile of a regular expression).
    let mut converted = Vec::with_capacity(matchers.len());
    for (i, m) in matchers.into_iter().enumerate() {
        let name = m.name.ok_or_else(|| required(&format!("matchers.{i}.name")))?;
        let value = m.value.ok_or_else(|| required(&format!("matchers.{i}.value")))?;
        let regex = m.is_regex.ok_or_else(|| required(&format!("matchers.{i}.isRegex")))?;
        let invalid = |why: String| {
            ApiError::text(
                StatusCode::BAD_REQUEST,
                format!("invalid silence: invalid label matcher {i} in set 0: {why}"),
            )
        };
        if name.is_empty() {
            return Err(invalid(format!("invalid label name {name:?}")));
        }
        if regex && let Err(e) = amconfig::check_regexp(&value) {
            return Err(invalid(format!("invalid regular expression {value:?}: {e}")));
        }
        let op = match (regex, m.is_equal.unwrap_or(true)) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        };
        converted.push(Matcher::new(&name, op, &value).map_err(invalid)?);
    }
    let silence = Silence {
        id: p.id.unwrap_or_default(),
        matchers: converted,
        starts_at_ms: Some(starts),
        ends_at_ms: ends,
        updated_at_ms: now,
        created_by,
        comment,
    };
    let id = am.set_silence(silence).await.map_err(|e| refused(e, "not found"))?;
    Ok(axum::Json(json!({"silenceID": id})).into_response())
}

/// A refused silence change as Alertmanager answers it.
fn refused(e: SilenceRefused, not_found: &str) -> ApiError {
    match e {
        SilenceRefused::Silence(SilenceError::NotFound) => ApiError::text(StatusCode::NOT_FOUND, not_found),
        SilenceRefused::Silence(SilenceError::Invalid(m)) => ApiError::text(StatusCode::BAD_REQUEST, m),
        SilenceRefused::Unavailable(m) => ApiError::text(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

fn silence_id(id: &str) -> Result<()> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        ApiError::swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            605,
            format!("silenceID in path must be of type uuid: {id:?}"),
        )
    })
}

async fn get_silence(
    State(ams): State<Arc<Alertmanagers>>,
    Path((ws, id)): Path<(String, String)>,
) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    silence_id(&id)?;
    let now = am.now_ms();
    let engine = am.engine();
    let s = engine.silences().get(&id).ok_or(ApiError { status: StatusCode::NOT_FOUND, body: Value::Null })?;
    Ok(axum::Json(gettable_silence(s, now)).into_response())
}

async fn delete_silence(
    State(ams): State<Arc<Alertmanagers>>,
    Path((ws, id)): Path<(String, String)>,
) -> Result<Response> {
    let am = workspace(&ams, &ws)?;
    silence_id(&id)?;
    am.expire_silence(&id).await.map_err(|e| refused(e, "silence not found"))?;
    Ok(StatusCode::OK.into_response())
}
