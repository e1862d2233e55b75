//! Names of the log topics PromLake uses, defined once.
//!
//! | topic | key | value | cleanup |
//! |---|---|---|---|
//! | `promlake.ws.<workspaceId>.samples` | none (the partition is `series_id % partitions`) | [`crate::stream::WriteBatch`] | delete (retention) |
//! | `_control` | resource ARN (UTF-8) | resource JSON; tombstone = deleted | compact |
//! | `_events` | workspace id (UTF-8) | a workspace event's JSON (`common::events::WorkspaceEvent`) | delete (retention) |
//! | `_alerting` | `<workspaceId>\n<a\|s\|n\|i>\n<id>` (UTF-8; the partition is [`alerting_partition`]) | an alert, silence, notification-log entry or inbox batch's JSON (`alerting::state`); tombstone = gone | compact |

/// The compacted control-plane topic, keyed by resource ARN.
pub const CONTROL_TOPIC: &str = "_control";

/// The workspaces' events (rule evaluation failures, notification errors),
/// keyed by workspace id.
pub const EVENTS_TOPIC: &str = "_events";

/// The Alertmanagers' state (alerts, silences, notification log), keyed
/// by workspace, kind and id.
pub const ALERTING_TOPIC: &str = "_alerting";

/// Partitions `_alerting` is created with: the units in which alerting
/// processes share the workspaces (an existing topic keeps its count).
pub const ALERTING_PARTITIONS: u32 = 16;

/// The `_alerting` partition of a workspace's state (of `partitions`):
/// xxh3-64 of its id, modulo the count. Its owner runs the workspace's
/// Alertmanager.
pub fn alerting_partition(workspace_id: &str, partitions: u32) -> u32 {
    u32::try_from(xxhash_rust::xxh3::xxh3_64(workspace_id.as_bytes()) % u64::from(partitions.max(1))).unwrap_or(0)
}

/// The prefix of every workspace's samples topic.
pub const WORKSPACE_TOPIC_PREFIX: &str = "promlake.ws.";

/// The samples topic of a workspace: `promlake.ws.<workspaceId>.samples`.
pub fn samples_topic(workspace_id: &str) -> String {
    format!("{WORKSPACE_TOPIC_PREFIX}{workspace_id}.samples")
}
