//! The remote-write route.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::decode::Protocol;
use crate::error::Error;
use crate::metrics::RequestLabels;
use crate::{Gateway, WriteOutcome};

/// `POST /workspaces/{workspace_id}/api/v1/remote_write`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().route("/workspaces/{workspace_id}/api/v1/remote_write", post(remote_write)).with_state(gateway)
}

async fn remote_write(
    State(gateway): State<Arc<Gateway>>,
    Path(workspace_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let protocol = Protocol::from_content_type(content_type).ok();
    let result = match read_body(&gateway, &workspace_id, &headers, body).await {
        Ok(bytes) => {
            let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
            gateway.remote_write(&workspace_id, content_type, encoding, &bytes).await
        }
        Err(e) => Err((e, WriteOutcome::default())),
    };
    let (mut response, outcome) = match result {
        Ok(outcome) => (StatusCode::NO_CONTENT.into_response(), outcome),
        Err((e, outcome)) => (e.into_response(), outcome),
    };
    if protocol == Some(Protocol::V2) {
        let h = response.headers_mut();
        for (name, n) in [
            ("X-Prometheus-Remote-Write-Samples-Written", outcome.written.samples),
            ("X-Prometheus-Remote-Write-Histograms-Written", outcome.written.histograms),
            ("X-Prometheus-Remote-Write-Exemplars-Written", outcome.written.exemplars),
        ] {
            h.insert(name, HeaderValue::from(n));
        }
    }
    let protocol_label = match protocol {
        Some(Protocol::V2) => "2.0",
        Some(Protocol::V1) => "1.0",
        None => "unknown",
    };
    gateway
        .metrics
        .requests
        .get_or_create(&RequestLabels { protocol: protocol_label, code: response.status().as_u16() })
        .inc();
    response
}

/// Reads the body, refusing more than the workspace's
/// `max_request_body_bytes` (before reading, when `Content-Length` says so).
async fn read_body(
    gateway: &Gateway,
    workspace_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, Error> {
    let limit = gateway.overrides.ingest(workspace_id).max_request_body_bytes;
    let too_large = |size: String| {
        Error::TooLarge(format!(
            "request body of {size} bytes exceeds the limit of {limit} bytes (limits.ingest.max_request_body_bytes)"
        ))
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit as u64
    {
        return Err(too_large(len.to_string()));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large("more than that".into())),
        Err(e) => Err(Error::Body(e.to_string())),
    }
}
