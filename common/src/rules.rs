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

/// A rule group's state as Prometheus's rules API shows it (`RuleGroup`):
/// what the ruler evaluating it reports through
/// [`crate::seams::RuleStates`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroupState {
    /// The group's name.
    pub name: String,
    /// Its namespace (Prometheus's `file`).
    pub file: String,
    /// The interval in effect, seconds.
    pub interval_seconds: f64,
    /// The group's `limit` (0: none).
    pub limit: i64,
    /// How long its last evaluation took, seconds.
    pub evaluation_seconds: f64,
    /// When it was last evaluated (Unix ms).
    pub last_evaluation_ms: Option<i64>,
    /// Its rules, in order.
    pub rules: Vec<RuleState>,
}

/// A rule's state.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleState {
    /// `record` or `alert`.
    pub name: String,
    /// The expression as PromQL's printer prints it.
    pub query: String,
    /// The rule's labels as written.
    pub labels: BTreeMap<String, String>,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: &'static str,
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// How long its last evaluation took, seconds.
    pub evaluation_seconds: f64,
    /// When it was last evaluated (Unix ms).
    pub last_evaluation_ms: Option<i64>,
    /// For an alerting rule, its alerting state.
    pub alerting: Option<AlertingRuleState>,
}

/// What an alerting rule adds to [`RuleState`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRuleState {
    /// `inactive`, `pending` or `firing`: the highest of its alerts'.
    pub state: &'static str,
    /// `for`, seconds.
    pub for_seconds: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for_seconds: f64,
    /// The annotations as written.
    pub annotations: BTreeMap<String, String>,
    /// Its pending and firing alerts (resolved ones, kept to be re-sent,
    /// are not shown), by labels.
    pub alerts: Vec<ActiveAlert>,
}

/// One pending or firing alert (Prometheus's API `Alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations, expanded.
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// Since when its condition holds (Unix ms).
    pub active_at_ms: i64,
    /// Since when it fires only because of `keep_firing_for`.
    pub keep_firing_since_ms: Option<i64>,
    /// The expression's value at the last evaluation.
    pub value: f64,
}
