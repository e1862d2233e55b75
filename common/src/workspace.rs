//! The workspace resource as stored in the control plane, shared by the
//! control-plane API (which writes it) and the data plane (which reads it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A workspace's lifecycle state, with AMP's enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkspaceStatusCode {
    /// Being created; its log topic may not exist yet.
    Creating,
    /// Ready for writes and queries.
    Active,
    /// An update is in progress.
    Updating,
    /// Being deleted; data-plane requests are refused.
    Deleting,
    /// Creation failed.
    CreationFailed,
}

/// A workspace, as stored under its ARN in the `_control` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRecord {
    /// `ws-` followed by a UUID.
    pub workspace_id: String,
    /// The workspace's ARN.
    pub arn: String,
    /// Optional friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Lifecycle state.
    pub status: WorkspaceStatusCode,
    /// Creation time, Unix seconds (fractional), as AMP reports `createdAt`.
    pub created_at: f64,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The client token of the create request, for idempotent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// The client token of the delete request, so that its retries answer
    /// as the first did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_client_token: Option<String>,
    /// The log topic holding the workspace's samples.
    pub samples_topic: String,
    /// The settings set through `UpdateWorkspaceConfiguration`.
    #[serde(default)]
    pub configuration: WorkspaceConfiguration,
}

/// A workspace configuration's state, with AMP's enum values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigurationStatusCode {
    /// In effect.
    #[default]
    Active,
    /// An update is being applied.
    Updating,
    /// The last update failed.
    UpdateFailed,
}

/// A workspace's settings set through the API, as AMP's
/// `UpdateWorkspaceConfiguration` takes them; a field left unset falls back
/// to the config file (read through `common::limits::Overrides`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceConfiguration {
    /// `retentionPeriodInDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_period_in_days: Option<u32>,
    /// `outOfOrderTimeWindowInSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_order_time_window_in_seconds: Option<u64>,
    /// `ruleQueryOffsetInSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_query_offset_in_seconds: Option<u64>,
    /// `limitsPerLabelSet` (an empty list: set to none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_per_label_set: Option<Vec<crate::limits::LabelSetLimit>>,
    /// The configuration's state.
    #[serde(default)]
    pub status: ConfigurationStatusCode,
}

impl WorkspaceConfiguration {
    /// These settings as limit overrides (the API's layer of
    /// `common::limits::Overrides`).
    pub fn as_override(&self) -> crate::limits::WorkspaceOverride {
        let mut o = crate::limits::WorkspaceOverride::default();
        o.storage.retention_period_days = self.retention_period_in_days;
        o.storage.out_of_order_time_window_seconds = self.out_of_order_time_window_in_seconds;
        o.ruler.query_offset_seconds = self.rule_query_offset_in_seconds;
        o.ingest.limits_per_label_set.clone_from(&self.limits_per_label_set);
        o
    }
}

impl WorkspaceRecord {
    /// Whether the data plane accepts writes and queries for the workspace.
    pub fn is_active(&self) -> bool {
        matches!(self.status, WorkspaceStatusCode::Active | WorkspaceStatusCode::Updating)
    }
}

/// Whether `id` has the shape of a workspace id (`ws-` + lowercase hex UUID),
/// checked before anything is looked up with it.
pub fn is_valid_workspace_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("ws-") else { return false };
    rest.len() == 36
        && rest.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_ids_are_checked() {
        assert!(is_valid_workspace_id("ws-3f0e7d8c-1b2a-4c5d-8e9f-0a1b2c3d4e5f"));
        assert!(!is_valid_workspace_id("ws-3F0E7D8C-1b2a-4c5d-8e9f-0a1b2c3d4e5f"));
        assert!(!is_valid_workspace_id("ws-../../etc"));
        assert!(!is_valid_workspace_id("3f0e7d8c-1b2a-4c5d-8e9f-0a1b2c3d4e5f"));
    }
}
