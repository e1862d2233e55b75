//! The control-plane store: every control-plane resource (workspace, rule
//! groups namespace, alert manager definition, scraper, credential, policy)
//! as a JSON document keyed by its ARN.
//!
//! The implementation over the log (`control_plane::LogControlStore`) appends
//! each change as a record of the compacted `_control` topic (key = ARN, value
//! = the resource's full state, tombstone = deleted) and every process
//! materialises the topic into memory, so the state survives restarts and is
//! shared by all processes of a deployment.

use async_trait::async_trait;

use crate::ErrorKind;
use crate::log::LogError;

/// A failure of the control-plane store.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Writing to or reading from the log failed.
    #[error("control-plane log: {0}")]
    Log(#[from] LogError),
    /// A stored document could not be (de)serialised.
    #[error("control-plane document for {arn}: {source}")]
    Document {
        /// The resource.
        arn: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl ControlError {
    /// The kind of this error, for the HTTP edge.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::Log(e) => e.kind(),
            ControlError::Document { .. } => ErrorKind::Internal,
        }
    }
}

/// Control-plane resources keyed by ARN.
#[async_trait]
pub trait ControlPlaneStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the full state of a resource. When this returns, the change is
    /// durable and visible to [`ControlPlaneStore::get`] in this process.
    async fn put(&self, arn: &str, document: serde_json::Value) -> Result<(), ControlError>;

    /// Deletes a resource (a tombstone). Deleting a missing one is not an error.
    async fn delete(&self, arn: &str) -> Result<(), ControlError>;

    /// The current state of a resource.
    fn get(&self, arn: &str) -> Option<serde_json::Value>;

    /// Every resource whose ARN starts with `arn_prefix`, ordered by ARN.
    fn list(&self, arn_prefix: &str) -> Vec<(String, serde_json::Value)>;
}

/// An in-memory [`ControlPlaneStore`] for tests of components that read
/// control-plane state; nothing is durable.
#[derive(Debug, Default)]
pub struct MemoryControlStore {
    state: std::sync::RwLock<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[async_trait]
impl ControlPlaneStore for MemoryControlStore {
    async fn put(&self, arn: &str, document: serde_json::Value) -> Result<(), ControlError> {
        self.state.write().unwrap_or_else(|p| p.into_inner()).insert(arn.to_owned(), document);
        Ok(())
    }

    async fn delete(&self, arn: &str) -> Result<(), ControlError> {
        self.state.write().unwrap_or_else(|p| p.into_inner()).remove(arn);
        Ok(())
    }

    fn get(&self, arn: &str) -> Option<serde_json::Value> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).get(arn).cloned()
    }

    fn list(&self, arn_prefix: &str) -> Vec<(String, serde_json::Value)> {
        list_prefix(&self.state.read().unwrap_or_else(|p| p.into_inner()), arn_prefix)
    }
}

/// The entries of `map` whose key starts with `prefix`, in key order: the
/// `list` of every store kept as a sorted map.
pub fn list_prefix(
    map: &std::collections::BTreeMap<String, serde_json::Value>,
    prefix: &str,
) -> Vec<(String, serde_json::Value)> {
    map.range(prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
