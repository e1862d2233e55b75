//! Alerting: one Alertmanager-compatible engine per workspace (routing tree,
//! grouping, inhibition, silences, notification log, receivers) and the
//! Alertmanager v2 API. The alert manager definition it runs is parsed and
//! validated by `amconfig` (the control plane stores it).
//!
//! Built so far: the routing tree ([`routing`]), matched as Alertmanager's
//! dispatcher does and checked against the real `amtool config routes
//! test`; aggregation groups, their flushes and the notification log's
//! decision ([`dispatch`]) as pure state over explicit times; posted
//! alerts checked and completed as `POST /api/v2/alerts` does
//! ([`ingest`]); inhibition ([`inhibit`]). Not built
//! yet: the engine that drives them (merging alerts, timers,
//! persistence in the log), silences, time intervals at
//! notification time, receivers, the v2 API (see the alerting issue).

pub mod dispatch;
pub mod engine;
pub mod ingest;
pub mod inhibit;
pub mod notify;
pub mod routing;
pub mod service;
pub mod silence;
