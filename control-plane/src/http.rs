//! HTTP routes of the control plane (workspaces, their configuration,
//! rule groups namespaces, the alert manager definition, tags), with the paths, status codes and JSON
//! members of AWS's `amp` service model (rest-json).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::rules::RuleGroupsNamespaceRecord;
use common::workspace::WorkspaceRecord;
use serde_json::json;

use crate::alertmanager::AlertManagerDefinitionRequest;
use crate::error::Error;
use crate::rule_groups::{CreateRuleGroupsNamespace, PutRuleGroupsNamespace};
use crate::workspaces::{CreateWorkspace, UpdateAlias, UpdateConfiguration, WorkspaceService};

/// The control-plane routes: workspaces, their configuration, rule groups
/// namespaces, tags.
pub fn router(service: Arc<WorkspaceService>) -> Router {
    Router::new()
        .route("/workspaces", post(create_workspace).get(list_workspaces))
        .route("/workspaces/{workspace_id}", get(describe_workspace).delete(delete_workspace))
        .route("/workspaces/{workspace_id}/alias", post(update_alias))
        .route("/workspaces/{workspace_id}/configuration", get(describe_configuration).patch(update_configuration))
        .route(
            "/workspaces/{workspace_id}/rulegroupsnamespaces",
            post(create_rule_groups_namespace).get(list_rule_groups_namespaces),
        )
        .route(
            "/workspaces/{workspace_id}/rulegroupsnamespaces/{name}",
            get(describe_rule_groups_namespace).put(put_rule_groups_namespace).delete(delete_rule_groups_namespace),
        )
        .route(
            "/workspaces/{workspace_id}/alertmanager/definition",
            post(create_alert_manager_definition)
                .put(put_alert_manager_definition)
                .get(describe_alert_manager_definition)
                .delete(delete_alert_manager_definition),
        )
        .route("/tags/{resource_arn}", get(list_tags).post(tag_resource).delete(untag_resource))
        .with_state(service)
}

type Svc = State<Arc<WorkspaceService>>;

async fn create_workspace(State(service): Svc, body: Bytes) -> Result<Response, Error> {
    let request = parse_body::<CreateWorkspace>(&body)?;
    let w = service.create(request).await?;
    let body = json!({
        "workspaceId": w.workspace_id,
        "arn": w.arn,
        "status": { "statusCode": w.status },
        "tags": w.tags,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn list_workspaces(State(service): Svc, RawQuery(query): RawQuery) -> Result<Response, Error> {
    let params = Query::parse(query.as_deref());
    let max_results = max_results(&params)?;
    let page = service.list(params.one("alias"), max_results, params.one("nextToken"))?;
    let mut body = json!({ "workspaces": page.workspaces.iter().map(summary).collect::<Vec<_>>() });
    if let Some(token) = page.next_token {
        body["nextToken"] = token.into();
    }
    Ok(Json(body).into_response())
}

async fn describe_workspace(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let w = service.describe(&workspace_id)?;
    let mut d = summary(&w);
    d["prometheusEndpoint"] = WorkspaceService::prometheus_endpoint(&base_url(&headers), &w.workspace_id).into();
    Ok(Json(json!({ "workspace": d })).into_response())
}

async fn delete_workspace(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let params = Query::parse(query.as_deref());
    service.delete(&workspace_id, params.one("clientToken")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn update_alias(State(service): Svc, Path(workspace_id): Path<String>, body: Bytes) -> Result<Response, Error> {
    let request = parse_body::<UpdateAlias>(&body)?;
    service.update_alias(&workspace_id, request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn describe_configuration(State(service): Svc, Path(workspace_id): Path<String>) -> Result<Response, Error> {
    let c = service.describe_configuration(&workspace_id)?;
    Ok(Json(json!({
        "workspaceConfiguration": {
            "status": { "statusCode": c.status },
            "limitsPerLabelSet": c.limits_per_label_set,
            "retentionPeriodInDays": c.retention_period_in_days,
            "outOfOrderTimeWindowInSeconds": c.out_of_order_time_window_in_seconds,
            "ruleQueryOffsetInSeconds": c.rule_query_offset_in_seconds,
        }
    }))
    .into_response())
}

async fn update_configuration(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let request = parse_body::<UpdateConfiguration>(&body)?;
    let status = service.update_configuration(&workspace_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": { "statusCode": status } }))).into_response())
}

async fn list_tags(State(service): Svc, Path(arn): Path<String>) -> Result<Response, Error> {
    Ok(Json(json!({ "tags": service.list_tags(&arn)? })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    tags: BTreeMap<String, String>,
}

async fn tag_resource(State(service): Svc, Path(arn): Path<String>, body: Bytes) -> Result<Response, Error> {
    let request = parse_body::<TagRequest>(&body)?;
    service.tag(&arn, request.tags).await?;
    Ok(Json(json!({})).into_response())
}

async fn untag_resource(
    State(service): Svc,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let keys = Query::parse(query.as_deref()).all("tagKeys");
    service.untag(&arn, &keys).await?;
    Ok(Json(json!({})).into_response())
}

async fn create_rule_groups_namespace(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let request = parse_body::<CreateRuleGroupsNamespace>(&body)?;
    let n = service.create_rule_groups_namespace(&workspace_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(namespace_status(&n))).into_response())
}

async fn put_rule_groups_namespace(
    State(service): Svc,
    Path((workspace_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Error> {
    let request = parse_body::<PutRuleGroupsNamespace>(&body)?;
    let n = service.put_rule_groups_namespace(&workspace_id, &name, request).await?;
    Ok((StatusCode::ACCEPTED, Json(namespace_status(&n))).into_response())
}

async fn describe_rule_groups_namespace(
    State(service): Svc,
    Path((workspace_id, name)): Path<(String, String)>,
) -> Result<Response, Error> {
    use base64::Engine as _;
    let n = service.describe_rule_groups_namespace(&workspace_id, &name)?;
    let mut d = namespace_summary(&n);
    d["data"] = base64::engine::general_purpose::STANDARD.encode(n.data.as_bytes()).into();
    Ok(Json(json!({ "ruleGroupsNamespace": d })).into_response())
}

async fn list_rule_groups_namespaces(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let params = Query::parse(query.as_deref());
    let max_results = max_results(&params)?;
    let page =
        service.list_rule_groups_namespaces(&workspace_id, params.one("name"), max_results, params.one("nextToken"))?;
    let mut body = json!({ "ruleGroupsNamespaces": page.namespaces.iter().map(namespace_summary).collect::<Vec<_>>() });
    if let Some(token) = page.next_token {
        body["nextToken"] = token.into();
    }
    Ok(Json(body).into_response())
}

async fn delete_rule_groups_namespace(
    State(service): Svc,
    Path((workspace_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let params = Query::parse(query.as_deref());
    service.delete_rule_groups_namespace(&workspace_id, &name, params.one("clientToken")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn create_alert_manager_definition(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let request = parse_body::<AlertManagerDefinitionRequest>(&body)?;
    let d = service.create_alert_manager_definition(&workspace_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": d.status }))).into_response())
}

async fn put_alert_manager_definition(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let request = parse_body::<AlertManagerDefinitionRequest>(&body)?;
    let d = service.put_alert_manager_definition(&workspace_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": d.status }))).into_response())
}

async fn describe_alert_manager_definition(
    State(service): Svc,
    Path(workspace_id): Path<String>,
) -> Result<Response, Error> {
    use base64::Engine as _;
    let d = service.describe_alert_manager_definition(&workspace_id)?;
    Ok(Json(json!({
        "alertManagerDefinition": {
            "status": d.status,
            "data": base64::engine::general_purpose::STANDARD.encode(d.data.as_bytes()),
            "createdAt": d.created_at,
            "modifiedAt": d.modified_at,
        }
    }))
    .into_response())
}

async fn delete_alert_manager_definition(
    State(service): Svc,
    Path(workspace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let params = Query::parse(query.as_deref());
    service.delete_alert_manager_definition(&workspace_id, params.one("clientToken")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The answer of create and put: name, ARN, status, tags.
fn namespace_status(n: &RuleGroupsNamespaceRecord) -> serde_json::Value {
    json!({ "name": n.name, "arn": n.arn, "status": n.status, "tags": n.tags })
}

/// AMP's `RuleGroupsNamespaceSummary` (the description adds `data`).
fn namespace_summary(n: &RuleGroupsNamespaceRecord) -> serde_json::Value {
    json!({
        "arn": n.arn,
        "name": n.name,
        "status": n.status,
        "createdAt": n.created_at,
        "modifiedAt": n.modified_at,
        "tags": n.tags,
    })
}

/// The `maxResults` query parameter of a list operation.
fn max_results(params: &Query) -> Result<Option<i64>, Error> {
    match params.one("maxResults") {
        None => Ok(None),
        Some(v) => {
            Ok(Some(v.parse::<i64>().map_err(|_| Error::validation("maxResults", format!("not an integer: {v:?}")))?))
        }
    }
}

/// AMP's `WorkspaceSummary` of a workspace (`WorkspaceDescription` adds
/// the endpoint).
fn summary(w: &WorkspaceRecord) -> serde_json::Value {
    let mut d = json!({
        "workspaceId": w.workspace_id,
        "arn": w.arn,
        "status": { "statusCode": w.status },
        "createdAt": w.created_at,
        "tags": w.tags,
    });
    if let Some(alias) = &w.alias {
        d["alias"] = alias.as_str().into();
    }
    d
}

/// A query string's parameters, repeated keys kept (`tagKeys=a&tagKeys=b`).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Self(form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
}

/// Parses a JSON request body whatever its `Content-Type` (AWS's SDKs send
/// `application/json`, other clients often do not); an empty body is `{}`.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| Error::validation("body", format!("invalid request body: {e}")))
}

/// This server's URL as the client addressed it.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}
