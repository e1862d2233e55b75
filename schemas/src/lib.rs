//! Wire and storage schemas shared by every PromLake component.
//!
//! ```text
//! remote write 1.0 ─┐                       ┌─► stream workers
//!   (prometheus.*)  ├─► gateway ─► stream ──┤
//! remote write 2.0 ─┘   record (this crate) └─► downstream consumers
//!   (io.prometheus.write.v2.*)   promlake.stream.v1.WriteBatch
//! ```
//!
//! - [`prompb`]: remote write 1.0 (`prometheus.WriteRequest`), generated from
//!   the upstream `remote.proto` / `types.proto`.
//! - [`writev2`]: remote write 2.0 (`io.prometheus.write.v2.Request`).
//! - [`stream`]: the record the gateway writes to a workspace's log topic,
//!   documented field by field in this crate's `README.md`.
//! - [`labels`]: well-known label names and the one series-id hash.
//! - [`topics`]: names of log topics.
//! - [`tables`]: names of the lake tables and their columns.
//!
//! All protobuf code is generated at build time by `protox` + `prost-build`
//! from the files under `proto/`; no `protoc` is needed.

pub mod labels;
pub mod tables;
pub mod topics;

/// Remote write 1.0 (`prometheus` package), generated from `proto/remote.proto`.
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
pub mod prompb {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Remote write 2.0 (`io.prometheus.write.v2` package).
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
pub mod writev2 {
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
}

/// The stream record (`promlake.stream.v1` package): see `schemas/README.md`.
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
pub mod stream {
    include!(concat!(env!("OUT_DIR"), "/promlake.stream.v1.rs"));
}
