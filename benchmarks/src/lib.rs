//! PromLake's benchmarks: a remote-write load generator, an ingestion
//! harness comparing PromLake with Prometheus and VictoriaMetrics on the same
//! machine, and criterion micro-benchmarks of the decode path.
//!
//! ```text
//! loadgen::Workload ──► loadgen::Pool (prepared, encoded, compressed: before any timing)
//!                            │
//!                            ▼
//!                  driver::Driver ──► C HTTP connections ──► target (remote_write URL)
//!                            │                                  ▲
//!                            ▼                                  │ started, warmed up,
//!                  driver::Report (acked samples/s, p50/p99)   targets::Target (stopped after)
//! ```
//!
//! Binaries: `loadgen` (send a workload to any URL), `ingest_bench` (the
//! comparison), `decode_ratio` (PromLake's decode path against the snappy +
//! protobuf limit); for issue 3, `storage_bench` (bytes per sample after
//! compaction against Prometheus's blocks: [`pipeline`], [`disk`],
//! [`openmetrics`]), `worker_bench` (stream workers against the gateway,
//! in-process: [`pipeline`]) and `memory_bench` (RSS per active series against
//! Prometheus); for issue 4, `query_bench` (PromQL query latency against
//! Prometheus and VictoriaMetrics on the same samples, all loaded over
//! remote write).
//! `benches/decode.rs` is the criterion version of `decode_ratio`.
//! See `benchmarks/README.md` for how to run them and `RESULTS.md` for figures.

pub mod cli;
pub mod decode_path;
pub mod disk;
pub mod driver;
pub mod loadgen;
pub mod openmetrics;
pub mod pipeline;
pub mod targets;
