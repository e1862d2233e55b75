//! The control plane: AMP-compatible management of workspaces, with its state
//! kept in the log.
//!
//! ```text
//!  POST /workspaces ──► WorkspaceService ──► ControlPlaneStore::put ──► _control topic
//!  GET  /workspaces/{id}        │                  (key = ARN, value = JSON,          │
//!                               │                   tombstone = deleted, compacted)   │
//!                               └──► Log::ensure_topic(samples topic)                 │
//!                                                                                     ▼
//!            every process: LogControlStore tails _control ──► in-memory map ──► get/list
//! ```
//!
//! Guarantees:
//! - A mutation is answered only after its record is durable in `_control`
//!   and applied to this process's view (read-your-writes).
//! - State survives restarts: on start the store replays `_control` from its
//!   first offset before serving. Workspaces left `CREATING` by a crash are
//!   finished on start ([`WorkspaceService::reconcile`]).
//! - Other processes sharing the log see a change as soon as their tail
//!   reads it.
//!
//! This crate implements create and describe; the rest of AMP's API (list,
//! update, delete, configuration, tags, rule groups namespaces, …) comes with
//! the control-plane issue.

mod error;
mod http;
mod store;
mod workspaces;

pub use error::{Error, Result};
pub use http::router;
pub use store::LogControlStore;
pub use workspaces::{CreateWorkspace, WorkspaceConfig, WorkspaceService};
