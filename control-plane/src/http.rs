//! HTTP routes of the control plane, with AMP's paths and shapes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::workspace::WorkspaceRecord;
use serde_json::json;

use crate::error::Error;
use crate::workspaces::{CreateWorkspace, WorkspaceService};

/// The control-plane routes: `POST /workspaces`, `GET /workspaces/{id}`.
pub fn router(service: Arc<WorkspaceService>) -> Router {
    Router::new()
        .route("/workspaces", post(create_workspace))
        .route("/workspaces/{workspace_id}", get(describe_workspace))
        .with_state(service)
}

async fn create_workspace(State(service): State<Arc<WorkspaceService>>, body: Bytes) -> Result<Response, Error> {
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

async fn describe_workspace(
    State(service): State<Arc<WorkspaceService>>,
    Path(workspace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let w = service.describe(&workspace_id)?;
    Ok(Json(json!({ "workspace": description(&w, &base_url(&headers)) })).into_response())
}

/// AMP's `WorkspaceDescription` of a workspace.
fn description(w: &WorkspaceRecord, base_url: &str) -> serde_json::Value {
    let mut d = json!({
        "workspaceId": w.workspace_id,
        "arn": w.arn,
        "status": { "statusCode": w.status },
        "prometheusEndpoint": WorkspaceService::prometheus_endpoint(base_url, &w.workspace_id),
        "createdAt": w.created_at,
        "tags": w.tags,
    });
    if let Some(alias) = &w.alias {
        d["alias"] = alias.as_str().into();
    }
    d
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
