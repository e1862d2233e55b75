//! Alerting: one Alertmanager-compatible engine per workspace (routing tree,
//! grouping, inhibition, silences, notification log, receivers), the AMP
//! alert manager definition API and the Alertmanager v2 API.
//!
//! Not built yet: see the alerting issue.
