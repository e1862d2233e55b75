//! The seams between the query path, the stream workers, the ruler and the
//! alerting component. Each is implemented by the component named in its
//! doc and, for tests, by an in-memory double; the `promlake` binary wires
//! the real implementations.

use std::time::Duration;

use async_trait::async_trait;

use crate::ErrorKind;

/// A failure behind one of the seams, carrying its kind for the HTTP edge.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SeamError {
    /// What the caller should do about it.
    pub kind: ErrorKind,
    /// A human-readable description.
    pub message: String,
}

/// A position in a workspace's log: for each partition, the offset that the
/// reader must have applied (read-your-writes).
pub type LogPosition = Vec<(u32, u64)>;

/// Reads a workspace's samples from the lake tables and the workers' head.
/// Implemented by the stream workers (stream-workers issue).
#[async_trait]
pub trait SampleReader: Send + Sync + std::fmt::Debug + 'static {
    /// Waits until every partition of the workspace's topic has applied the
    /// given offsets, or `timeout` passes.
    async fn wait_for_position(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError>;
}

/// Evaluates PromQL for a workspace. Implemented by the query service, used
/// by the ruler and the HTTP API.
#[async_trait]
pub trait PromqlEngine: Send + Sync + std::fmt::Debug + 'static {
    /// Evaluates `query` at `time_ms` and returns Prometheus's JSON `data`
    /// object (`resultType` and `result`).
    async fn instant_query(
        &self,
        workspace_id: &str,
        query: &str,
        time_ms: i64,
    ) -> Result<serde_json::Value, SeamError>;
}

/// Receives alerts from the ruler. Implemented by the in-process alerting
/// component and by an Alertmanager v2 HTTP client.
#[async_trait]
pub trait AlertSink: Send + Sync + std::fmt::Debug + 'static {
    /// Sends alerts in the Alertmanager v2 `postableAlerts` JSON shape.
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError>;
}
