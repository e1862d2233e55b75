//! Alerting: one Alertmanager-compatible engine per workspace (routing tree,
//! grouping, inhibition, silences, notification log, receivers) and the
//! Alertmanager v2 API. The alert manager definition it runs is parsed and
//! validated by `amconfig` (the control plane stores it).
//!
//! Built so far: the routing tree ([`routing`]), matched as Alertmanager's
//! dispatcher does and checked against the real `amtool config routes
//! test`. Not built yet: aggregation groups and their timers, inhibition,
//! silences, the notification log, receivers, the v2 API (see the alerting
//! issue).

pub mod routing;
