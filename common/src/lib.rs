//! What PromLake's components share, and nothing else.
//!
//! Components never link each other; where one needs another it depends on a
//! trait here, and the `promlake` binary wires the implementations (in one
//! process, or across processes through Kafka and HTTP):
//!
//! ```text
//!                 ┌──────────── ControlPlaneStore (workspaces, …) ───────────┐
//!                 ▼                                                          ▼
//!  ingest-gateway ──► Log ──► stream-workers ──► SampleReader ◄── query-service
//!                                  │                                  ▲
//!                                  └─ ruler ── PromqlEngine ──────────┘
//!                                        └──── AlertSink ──► alerting
//! ```
//!
//! - [`log::Log`]: topics of partitions of durable, ordered records; the
//!   embedded on-disk log and Kafka implement it.
//! - [`membership::Membership`]: which process owns which log partition
//!   (all of them in one process; a Kafka consumer group scaled out), told
//!   to the stream workers through [`membership::PartitionOwner`].
//! - [`control::ControlPlaneStore`]: control-plane resources keyed by ARN,
//!   materialised from the compacted `_control` topic.
//! - [`seams`]: the sample reader, sample appender, PromQL engine and alert
//!   sink seams between the components.
//! - [`workspace`], [`rules`]: control-plane documents the data plane reads.
//! - [`limits`]: per-workspace limits and their overrides, read in one place.
//! - [`clock::Clock`]: injected time; [`duration`]: Prometheus's duration notation.
//! - [`error::ErrorKind`]: what each crate's errors map to at the HTTP edge.

pub mod alertmanager;
pub mod arn;
pub mod clock;
pub mod control;
pub mod duration;
pub mod error;
pub mod events;
pub mod goquote;
pub mod limits;
pub mod log;
pub mod membership;
pub mod rules;
pub mod seams;
pub mod testing;
pub mod workspace;

pub use error::ErrorKind;
