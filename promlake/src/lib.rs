//! The `promlake` binary's library: configuration, command line, and the
//! wiring of every component, in one place (as Mimir's `modules.go`).
//!
//! ```text
//!            ┌─────────────── promlake serve ─────────────────────┐
//!  HTTP ───► │ router: /workspaces…  (control-plane)               │
//!            │         /workspaces/{id}/api/v1/remote_write ───────│──► Log (embedded | Kafka)
//!            │         /metrics, /-/healthy, /-/ready              │       │        ▲
//!            │ LogControlStore ◄── tails _control ─────────────────│───────┘        │
//!            │ stream workers (one per owned partition) ◄── fetch ─│────────────────┘
//!            │   └──► Delta tables under the lake (samples, series, metadata)
//!            │ membership: all partitions (embedded) or a Kafka    │
//!            │   consumer group (the worker processes split them)  │
//!            │ watcher: the workers watch every active workspace   │
//!            │ embedded log maintenance (retention, compaction)    │
//!            └─────────────────────────────────────────────────────┘
//! ```
//!
//! Shutdown (SIGTERM or SIGINT): stop accepting connections, finish the
//! requests in flight (each answered only after its data is durable), stop
//! background tasks, let the stream workers drain the log into the lake and
//! commit, leave the consumer group (Kafka: the other workers take this
//! one's partitions at once), close the log (final fsync), exit 0.

pub mod cli;
pub mod config;
pub mod identity;
mod serve;

pub use serve::{Server, run};
