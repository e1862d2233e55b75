//! Query service: parses PromQL with `promql-parser`, plans it into DataFusion
//! logical plans over the workspace's Delta tables and the workers' head, and
//! serves the Prometheus HTTP API under `/workspaces/{id}/api/v1/`.
//!
//! Not built yet: see the query-service issue.
