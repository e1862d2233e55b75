//! Alert manager definitions as stored in the control plane, shared by the
//! control-plane API (which writes them) and the alerting engine (which
//! runs them). One document per workspace, keyed by
//! [`crate::arn::ArnScheme::alert_manager_definition`].

use serde::{Deserialize, Serialize};

/// A definition's lifecycle state, with AMP's enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertManagerDefinitionStatusCode {
    /// Recorded, not yet in effect.
    Creating,
    /// In effect.
    Active,
    /// A new definition is being put in effect.
    Updating,
    /// Being deleted.
    Deleting,
    /// The creation failed (`statusReason` says why); not in effect.
    CreationFailed,
    /// The update failed (`statusReason` says why); not in effect.
    UpdateFailed,
}

/// A definition's status, AMP's `AlertManagerDefinitionStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertManagerDefinitionStatus {
    /// The state.
    pub status_code: AlertManagerDefinitionStatusCode,
    /// Why a creation or update failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// A workspace's alert manager definition: AMP's YAML document holding
/// `alertmanager_config` (Alertmanager's configuration) and
/// `template_files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertManagerDefinitionRecord {
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Lifecycle state.
    pub status: AlertManagerDefinitionStatus,
    /// The definition, as uploaded (decoded from base64).
    pub data: String,
    /// Creation time, Unix seconds (fractional).
    pub created_at: f64,
    /// Last modification time, Unix seconds (fractional).
    pub modified_at: f64,
    /// The client token of the last create or put, for idempotent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl AlertManagerDefinitionRecord {
    /// Whether the alerting engine runs this definition (`ACTIVE`, or
    /// `UPDATING` to a definition validated when it was put).
    pub fn is_in_effect(&self) -> bool {
        matches!(
            self.status.status_code,
            AlertManagerDefinitionStatusCode::Active | AlertManagerDefinitionStatusCode::Updating
        )
    }
}
