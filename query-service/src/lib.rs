//! Query service: parses PromQL with `promql-parser`, plans it into
//! DataFusion logical plans whose leaves read a workspace's samples through
//! [`common::seams::SampleReader`] (the lake tables and the stream workers'
//! head), and runs them ([`engine`]).
//!
//! ```text
//!  PromQL text ─► promql-parser AST (patches/promql-parser: duration
//!     expressions) ─► planner ─► LogicalPlan
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
//! Native histograms: the scan carries each histogram sample's encoding
//! (a nullable `hist` column, [`engine::histogram`] decodes it, adds,
//! subtracts, scales and re-encodes it); selectors and range functions see
//! histogram samples (a newer histogram hides a float, mixed windows as
//! Prometheus). A "histogram source" — a selector, `rate`/`increase`/
//! `delta`/`irate`/`idelta`/`sum_`/`avg_`/`last_over_time` of a range
//! selector or a subquery (whose steps keep their histograms),
//! `sum`/`avg`/`count`/`group`/`min`/`max`/`stddev`/`stdvar` of a
//! histogram source (histograms summed and averaged in DataFusion's
//! aggregate, [`engine::aggregates`]), `topk`/`bottomk`/`quantile` of one
//! (histograms ignored with Prometheus's info), `limitk`/`limit_ratio` of
//! one (histograms kept), `label_replace`/`label_join`/`sort_by_label` of
//! one (histograms relabelled or sorted), `info()` of one (enriched),
//! `and`/`or`/`unless` with one on a side (samples
//! kept whole), an arithmetic or comparison operator with one on a side
//! (each matched pair through [`engine::binary`], as Prometheus's
//! `vectorElemBinop`: histograms added, subtracted, scaled, negated,
//! compared with `==`/`!=`; other mixes dropped with its info) — is
//! planned with histogram rows: returned when it is the whole query
//! (`histogram`/`histograms` in the JSON), evaluated by `histogram_count`,
//! `_sum`, `_avg`, `_stddev`, `_stdvar`, `_quantile`, `_fraction`. Under
//! expressions that take floats only, a histogram source is still
//! evaluated whole (its annotations, its `bool` and count results) and its
//! histogram rows are left out there.
//!
//! `count_values` counts a histogram source's histograms by their text.
//!
//! Not built yet: where Prometheus reports only the last error of a binary operator per
//! step, PromLake reports each distinct one; the other
//! annotations and positions in their texts, `step()`/`range()` in
//! duration expressions, exemplars. Delayed name removal is an engine
//! option (`Engine::with_delayed_name_removal`), off by default as in
//! Prometheus.

pub mod api;
pub mod engine;
pub mod promqltest;
pub mod seam;
