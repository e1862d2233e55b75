//! Alerting: one Alertmanager-compatible engine per workspace (routing tree,
//! grouping, inhibition, silences, notification log, receivers) and the
//! Alertmanager v2 API. The alert manager definition it runs is parsed and
//! validated by `amconfig` (the control plane stores it).
//!
//! Data flow: the [`registry`] keeps one running [`service::Alertmanager`]
//! per workspace whose definition is in effect; the v2 API ([`api`]) and
//! the ruler's in-process `AlertSink` post alerts ([`ingest`]) to it; its
//! [`engine`] merges and routes them ([`routing`]) into aggregation groups
//! ([`dispatch`]), and at each due flush runs inhibition ([`inhibit`]),
//! time intervals, silences ([`silence`]) and the notification log's
//! decision; [`notify`] delivers the notifications with retries.
//!
//! Guarantees: notifications match Alertmanager 0.33.1's in content and
//! timing (checked side by side, `tests/side_by_side.rs`); an integration
//! is never notified twice for the same alerts within `repeat_interval`;
//! one workspace's alerts and silences are never visible to another.
//! Alerts, silences and the notification log are kept in the log
//! ([`state`]) and restored at start. Scaled out, each workspace's
//! Alertmanager runs in one process at a time, the owner of its state's
//! partition ([`registry`]); a successor resumes from the log; the others
//! forward its API requests ([`api`]) and send it their rulers' alerts
//! through the log's inbox ([`state`]).

pub mod api;
pub mod dispatch;
pub mod engine;
pub mod ingest;
pub mod inhibit;
pub mod notify;
pub mod registry;
pub mod routing;
pub mod service;
pub mod silence;
pub mod state;
