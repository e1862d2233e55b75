//! Amazon Resource Names of PromLake's resources, in AMP's format:
//! `arn:aws:aps:<region>:<account>:workspace/<workspaceId>`.

/// The region and account that every ARN of this deployment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScheme {
    /// AWS-style region, `us-east-1` by default.
    pub region: String,
    /// 12-digit account id.
    pub account_id: String,
}

impl ArnScheme {
    /// The ARN of a workspace.
    pub fn workspace(&self, workspace_id: &str) -> String {
        format!("arn:aws:aps:{}:{}:workspace/{workspace_id}", self.region, self.account_id)
    }

    /// The ARN of a rule groups namespace:
    /// `…:rulegroupsnamespace/<workspaceId>/<name>`.
    pub fn rule_groups_namespace(&self, workspace_id: &str, name: &str) -> String {
        format!("{}{name}", self.rule_groups_namespace_prefix(workspace_id))
    }

    /// The ARN prefix of a workspace's rule groups namespaces.
    pub fn rule_groups_namespace_prefix(&self, workspace_id: &str) -> String {
        format!("{}{workspace_id}/", self.all_rule_groups_namespaces_prefix())
    }

    /// The ARN prefix of every workspace's rule groups namespaces.
    pub fn all_rule_groups_namespaces_prefix(&self) -> String {
        format!("arn:aws:aps:{}:{}:rulegroupsnamespace/", self.region, self.account_id)
    }

    /// The key of a workspace's alert manager definition in the control
    /// store: `…:alertmanagerdefinition/<workspaceId>` (AMP gives the
    /// definition no ARN of its own; its API acts on the workspace's).
    pub fn alert_manager_definition(&self, workspace_id: &str) -> String {
        format!("{}{workspace_id}", self.all_alert_manager_definitions_prefix())
    }

    /// The key prefix of every workspace's alert manager definition.
    pub fn all_alert_manager_definitions_prefix(&self) -> String {
        format!("arn:aws:aps:{}:{}:alertmanagerdefinition/", self.region, self.account_id)
    }

    /// The control-store key naming the process that runs the
    /// Alertmanagers of `_alerting` partition `partition` (not a resource:
    /// where requests for its workspaces are forwarded).
    pub fn alerting_partition_owner(&self, partition: u32) -> String {
        format!("arn:aws:aps:{}:{}:alertingpartition/{partition}", self.region, self.account_id)
    }

    /// The resource type of an ARN of this deployment (`Workspace`,
    /// `RuleGroupsNamespace`, …), `None` for another region's, account's or
    /// service's ARN, or an unknown type.
    pub fn resource_type(&self, arn: &str) -> Option<&'static str> {
        let rest = arn.strip_prefix(&format!("arn:aws:aps:{}:{}:", self.region, self.account_id))?;
        let (kind, id) = rest.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        match kind {
            "workspace" if id.contains('/') => None,
            "workspace" => Some("Workspace"),
            "rulegroupsnamespace" => Some("RuleGroupsNamespace"),
            "scraper" => Some("Scraper"),
            _ => None,
        }
    }

    /// The ARN prefix shared by every workspace of this deployment.
    pub fn workspace_prefix(&self) -> String {
        format!("arn:aws:aps:{}:{}:workspace/", self.region, self.account_id)
    }
}
