//! Alerting: one Alertmanager-compatible engine per workspace (routing tree,
//! grouping, inhibition, silences, notification log, receivers) and the
//! Alertmanager v2 API. The alert manager definition it runs is parsed and
//! validated by `amconfig` (the control plane stores it).
//!
//! Built so far: the routing tree ([`routing`]), matched as Alertmanager's
//! dispatcher does and checked against the real `amtool config routes
//! test`; aggregation groups, their flushes and the notification log's
//! decision ([`dispatch`]); posted alerts checked and completed as
//! `POST /api/v2/alerts` does ([`ingest`]); inhibition ([`inhibit`]);
//! silences ([`silence`]); the engine that merges, groups and runs the
//! notification pipeline ([`engine`]); delivery with retries and the
//! webhook integration ([`notify`]); one workspace's running
//! Alertmanager ([`service`]), checked side by side with Alertmanager
//! 0.33.1 (`tests/side_by_side.rs`). Not built yet: state kept in the log,
//! the v2 API, the SNS/Slack/PagerDuty/email integrations (see the
//! alerting issue).

pub mod dispatch;
pub mod engine;
pub mod ingest;
pub mod inhibit;
pub mod notify;
pub mod routing;
pub mod service;
pub mod silence;
