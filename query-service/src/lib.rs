//! Query service: parses PromQL with `promql-parser`, plans it into
//! DataFusion logical plans whose leaves read a workspace's samples through
//! [`common::seams::SampleReader`] (the lake tables and the stream workers'
//! head), and runs them ([`engine`]).
//!
//! ```text
//!  PromQL text ─► promql-parser AST ─► planner ─► LogicalPlan
//!     (PromSeriesScan → PromInstantVector / PromRangeFunction extension
//!      nodes, then DataFusion Projection / Aggregate / Join / Filter with
//!      label UDFs) ─► DataFusion optimizer + physical planner (PromExec for
//!      the extension nodes) ─► record batches of (labels, ts, value) ─►
//!      scalar / vector / matrix
//! ```
//!
//! [`promqltest`] runs Prometheus's conformance scripts through the real
//! storage path (embedded log → stream workers → Delta tables and head);
//! the `promqltest` binary prints per file and in total `N passed, N
//! failed, N skipped`.
//!
//! [`api`] serves the Prometheus HTTP API of each workspace over the engine.
//!
//! Annotations (Prometheus's warnings and infos) are collected per query in
//! its `ReadContext` and returned beside the result (`Engine::query_annotated`):
//! non-counter `rate`/`increase`, invalid quantile and ratio, bad bucket
//! label, forced monotonicity.
//!
//! Not built yet: native histograms (their samples are left out of scans),
//! the other annotations and positions in their texts, duration expressions (`[1m+30s]`,
//! `offset (2 * 1m)`: `promql-parser` does not parse them), delayed name
//! removal, exemplars.

pub mod api;
pub mod engine;
pub mod promqltest;
