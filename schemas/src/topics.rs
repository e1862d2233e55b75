//! Names of the log topics PromLake uses, defined once.
//!
//! | topic | key | value | cleanup |
//! |---|---|---|---|
//! | `promlake.ws.<workspaceId>.samples` | none (the partition is `series_id % partitions`) | [`crate::stream::WriteBatch`] | delete (retention) |
//! | `_control` | resource ARN (UTF-8) | resource JSON; tombstone = deleted | compact |
//! | `_events` | workspace id (UTF-8) | a workspace event's JSON (`common::events::WorkspaceEvent`) | delete (retention) |
//! | `_alerting` | `<workspaceId>\n<a\|s\|n>\n<id>` (UTF-8) | an alert, silence or notification-log entry's JSON (`alerting::state`); tombstone = gone | compact |

/// The compacted control-plane topic, keyed by resource ARN.
pub const CONTROL_TOPIC: &str = "_control";

/// The workspaces' events (rule evaluation failures, notification errors),
/// keyed by workspace id.
pub const EVENTS_TOPIC: &str = "_events";

/// The Alertmanagers' state (alerts, silences, notification log), keyed
/// by workspace, kind and id.
pub const ALERTING_TOPIC: &str = "_alerting";

/// The prefix of every workspace's samples topic.
pub const WORKSPACE_TOPIC_PREFIX: &str = "promlake.ws.";

/// The samples topic of a workspace: `promlake.ws.<workspaceId>.samples`.
pub fn samples_topic(workspace_id: &str) -> String {
    format!("{WORKSPACE_TOPIC_PREFIX}{workspace_id}.samples")
}
