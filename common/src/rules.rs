//! Rule groups namespaces as stored in the control plane, shared by the
//! control-plane API (which writes them) and the ruler (which evaluates
//! them). One document per namespace, keyed by its ARN
//! (`…:rulegroupsnamespace/<workspaceId>/<name>`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A namespace's lifecycle state, with AMP's enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleGroupsNamespaceStatusCode {
    /// Recorded, not yet in effect.
    Creating,
    /// In effect: the ruler evaluates its rules.
    Active,
    /// A new rules file is being put in effect.
    Updating,
    /// Being deleted.
    Deleting,
    /// The creation failed (`statusReason` says why); not evaluated.
    CreationFailed,
    /// The update failed (`statusReason` says why); not evaluated.
    UpdateFailed,
}

/// A namespace's status, AMP's `RuleGroupsNamespaceStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroupsNamespaceStatus {
    /// The state.
    pub status_code: RuleGroupsNamespaceStatusCode,
    /// Why a creation or update failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// A rule groups namespace: one Prometheus rules file of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroupsNamespaceRecord {
    /// Its ARN (the document's key).
    pub arn: String,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Unique within the workspace.
    pub name: String,
    /// Lifecycle state.
    pub status: RuleGroupsNamespaceStatus,
    /// The rules file (Prometheus's YAML format), as uploaded.
    pub data: String,
    /// Creation time, Unix seconds (fractional).
    pub created_at: f64,
    /// Last modification time, Unix seconds (fractional).
    pub modified_at: f64,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The client token of the create request, for idempotent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl RuleGroupsNamespaceRecord {
    /// Whether the ruler evaluates this namespace's rules (`ACTIVE`, or
    /// `UPDATING` to a file that was validated when it was put).
    pub fn is_evaluated(&self) -> bool {
        matches!(
            self.status.status_code,
            RuleGroupsNamespaceStatusCode::Active | RuleGroupsNamespaceStatusCode::Updating
        )
    }
}
