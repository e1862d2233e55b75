//! A workspace's events: what its rules and notifications did wrong (a
//! rule that failed to evaluate, alerts that could not be sent), recorded
//! per workspace as AMP vends them to the workspace's logs, in AMP's shape:
//!
//! ```json
//! {"workspaceId": "ws-…", "component": "ruler", "time": "2026-12-07T03:53:10.123Z",
//!  "message": {"log": "Evaluating rule failed", "level": "ERROR",
//!              "namespace": "ns", "group": "g", "name": "rule", "err": "…"}}
//! ```
//!
//! Recording never blocks the caller and never fails it: the [`EventSink`]
//! (the control plane's log-backed one writes the `_events` topic, keyed by
//! workspace id) drops events it cannot keep up with, and counts them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One event of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceEvent {
    /// The workspace.
    pub workspace_id: String,
    /// What recorded it: `ruler` (evaluations and the alerts it sends).
    pub component: String,
    /// When, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The message: `log` (what happened), `level` (`WARN`, `ERROR`) and
    /// details (`namespace`, `group`, `name`, `err`, …).
    pub message: BTreeMap<String, String>,
}

impl WorkspaceEvent {
    /// An event at `time_ms` with its message's `log` and `level`, and
    /// `details`.
    pub fn new(
        workspace_id: &str,
        component: &str,
        time_ms: i64,
        level: &str,
        log: &str,
        details: &[(&str, &str)],
    ) -> Self {
        let mut message: BTreeMap<String, String> =
            details.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        message.insert("log".into(), log.into());
        message.insert("level".into(), level.into());
        let time = crate::clock::rfc3339_millis(time_ms);
        Self { workspace_id: workspace_id.into(), component: component.into(), time, message }
    }
}

/// Where events are recorded. Implemented by the control plane (the
/// `_events` topic) and by [`NoEvents`].
pub trait EventSink: Send + Sync + std::fmt::Debug + 'static {
    /// Records an event; returns at once (an event that cannot be kept is
    /// dropped and counted, never an error of the caller).
    fn record(&self, event: WorkspaceEvent);
}

/// Discards events (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn record(&self, _event: WorkspaceEvent) {}
}
