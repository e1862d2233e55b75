//! Rule groups namespaces with AMP's semantics: create, put (replace),
//! describe, list, delete. Each is one Prometheus rules file of a
//! workspace, stored as a `RuleGroupsNamespaceRecord` under its ARN.
//!
//! - A file is validated as `promtool check rules` does (`rulefmt`) and
//!   against the workspace's quotas (rules, groups, namespaces, file size:
//!   `Overrides::ruler`, the one limits place) before anything is written:
//!   a rejected file is a `ValidationException` (or
//!   `ServiceQuotaExceededException`) and changes nothing.
//! - Create records the namespace `CREATING`, then `ACTIVE`; put records
//!   `UPDATING` with the new file, then `ACTIVE`. The ruler evaluates
//!   `ACTIVE` and `UPDATING` namespaces. A namespace a crash left
//!   `CREATING` or `UPDATING` is finished by [`WorkspaceService::reconcile`],
//!   which validates its file again: one that no longer passes (a quota
//!   lowered meanwhile) ends `CREATION_FAILED` / `UPDATE_FAILED` with the
//!   reason in `statusReason`, and is not evaluated.
//! - Deleting a workspace deletes its namespaces.

use std::collections::BTreeMap;

use common::limits::RulerLimits;
use common::rules::{RuleGroupsNamespaceRecord, RuleGroupsNamespaceStatus, RuleGroupsNamespaceStatusCode};

use crate::error::{Error, Result};
use crate::validate::{DEFAULT_MAX_RESULTS, Fields, MAX_RESULTS};
use crate::workspaces::WorkspaceService;

/// A create-rule-groups-namespace request (`CreateRuleGroupsNamespaceRequest`'s body).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRuleGroupsNamespace {
    /// The namespace's name, unique in the workspace.
    pub name: Option<String>,
    /// The rules file, base64 (a JSON blob).
    pub data: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
    /// Tags.
    pub tags: Option<BTreeMap<String, String>>,
}

/// A put-rule-groups-namespace request (`PutRuleGroupsNamespaceRequest`'s body).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRuleGroupsNamespace {
    /// The new rules file, base64.
    pub data: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

/// A `ListRuleGroupsNamespaces` page.
#[derive(Debug)]
pub struct RuleGroupsNamespacePage {
    /// The namespaces, ordered by name.
    pub namespaces: Vec<RuleGroupsNamespaceRecord>,
    /// The token of the next page, if any.
    pub next_token: Option<String>,
}

/// Longest namespace name, characters (AMP's model).
const MAX_NAME_CHARS: usize = 128;

impl WorkspaceService {
    /// Creates a rule groups namespace from a validated rules file. A retry
    /// with the same client token returns the namespace the first made.
    ///
    /// # Errors
    /// `Validation` (bad fields, a rules file Prometheus would refuse),
    /// `ServiceQuotaExceeded`, `NotFound` (workspace), `Conflict` (name
    /// taken, workspace not active, client token reused differently).
    pub async fn create_rule_groups_namespace(
        &self,
        workspace_id: &str,
        request: CreateRuleGroupsNamespace,
    ) -> Result<RuleGroupsNamespaceRecord> {
        let mut f = Fields::default();
        let name = namespace_name(&mut f, request.name.as_deref());
        f.client_token(request.client_token.as_deref());
        let tags = request.tags.clone().unwrap_or_default();
        f.tags(&tags);
        let data = f.base64_text("data", request.data.as_deref(), "the rules file");
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        let arn = self.arns().rule_groups_namespace(workspace_id, &name);
        if let Some(existing) = self.rule_groups_namespace(workspace_id, &name) {
            if request.client_token.is_some()
                && existing.client_token == request.client_token
                && existing.data == data
                && existing.tags == tags
            {
                return Ok(existing);
            }
            return Err(Error::Conflict {
                message: format!("a rule groups namespace named {name:?} already exists in workspace {workspace_id}"),
                resource_id: name,
                resource_type: "RuleGroupsNamespace",
            });
        }
        self.check_rules_file(workspace_id, &name, &data)?;
        let now = self.now_seconds();
        let mut record = RuleGroupsNamespaceRecord {
            arn,
            workspace_id: workspace_id.to_owned(),
            name,
            status: status(RuleGroupsNamespaceStatusCode::Creating, None),
            data,
            created_at: now,
            modified_at: now,
            tags,
            client_token: request.client_token,
        };
        self.save_doc(&record.arn, &record).await?;
        record.status = status(RuleGroupsNamespaceStatusCode::Active, None);
        self.save_doc(&record.arn, &record).await?;
        tracing::info!(workspace = %workspace_id, namespace = %record.name, "Created rule groups namespace.");
        Ok(record)
    }

    /// Replaces a namespace's rules file.
    ///
    /// # Errors
    /// As [`WorkspaceService::create_rule_groups_namespace`]; `NotFound`
    /// when the namespace does not exist, `Conflict` when it is not
    /// `ACTIVE` (or failed: a failed namespace may be put again).
    pub async fn put_rule_groups_namespace(
        &self,
        workspace_id: &str,
        name: &str,
        request: PutRuleGroupsNamespace,
    ) -> Result<RuleGroupsNamespaceRecord> {
        let mut f = Fields::default();
        let name = namespace_name(&mut f, Some(name));
        f.client_token(request.client_token.as_deref());
        let data = f.base64_text("data", request.data.as_deref(), "the rules file");
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        let mut record = self.rule_groups_namespace(workspace_id, &name).ok_or_else(|| not_found(&name))?;
        use RuleGroupsNamespaceStatusCode::*;
        if !matches!(record.status.status_code, Active | CreationFailed | UpdateFailed) {
            return Err(Error::Conflict {
                message: format!("rule groups namespace {name:?} is {:?}, not ACTIVE", record.status.status_code),
                resource_id: name,
                resource_type: "RuleGroupsNamespace",
            });
        }
        self.check_rules_file(workspace_id, &name, &data)?;
        record.data = data;
        record.modified_at = self.now_seconds();
        record.status = status(Updating, None);
        self.save_doc(&record.arn, &record).await?;
        record.status = status(Active, None);
        self.save_doc(&record.arn, &record).await?;
        tracing::info!(workspace = %workspace_id, namespace = %name, "Updated rule groups namespace.");
        // AMP answers a put with the state the update started in.
        record.status = status(Updating, None);
        Ok(record)
    }

    /// A namespace of a workspace.
    ///
    /// # Errors
    /// `Validation` for a malformed name, `NotFound`.
    pub fn describe_rule_groups_namespace(&self, workspace_id: &str, name: &str) -> Result<RuleGroupsNamespaceRecord> {
        let mut f = Fields::default();
        let name = namespace_name(&mut f, Some(name));
        f.finish()?;
        self.describe(workspace_id)?;
        self.rule_groups_namespace(workspace_id, &name).ok_or_else(|| not_found(&name))
    }

    /// One page of a workspace's namespaces, ordered by name: those whose
    /// name starts with `name` when given, at most `max_results` (1–1000,
    /// default 100), after the page `next_token` ended.
    ///
    /// # Errors
    /// `Validation`, `NotFound` (workspace).
    pub fn list_rule_groups_namespaces(
        &self,
        workspace_id: &str,
        name: Option<&str>,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<RuleGroupsNamespacePage> {
        let mut f = Fields::default();
        if name.is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NAME_CHARS) {
            f.bad("name", "Member must have length between 1 and 128");
        }
        let max = match max_results {
            None => DEFAULT_MAX_RESULTS,
            Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
            Some(_) => {
                f.bad("maxResults", "Member must be between 1 and 1000");
                0
            }
        };
        let next_token = next_token.filter(|t| !t.is_empty());
        if next_token.is_some_and(|t| t.len() > 1000) {
            f.bad("nextToken", "invalid pagination token");
        }
        f.finish()?;
        self.describe(workspace_id)?;
        let mut namespaces: Vec<RuleGroupsNamespaceRecord> = self
            .rule_groups_namespaces(workspace_id)
            .into_iter()
            .filter(|n| name.is_none_or(|p| n.name.starts_with(p)))
            .filter(|n| next_token.is_none_or(|t| n.name.as_str() > t))
            .collect();
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        let next_token = (namespaces.len() > max).then(|| namespaces[max - 1].name.clone());
        namespaces.truncate(max);
        Ok(RuleGroupsNamespacePage { namespaces, next_token })
    }

    /// Deletes a namespace: its rules stop being evaluated.
    ///
    /// # Errors
    /// `Validation`, `NotFound`, `Conflict` when the workspace is not active.
    pub async fn delete_rule_groups_namespace(
        &self,
        workspace_id: &str,
        name: &str,
        client_token: Option<&str>,
    ) -> Result<()> {
        let mut f = Fields::default();
        let name = namespace_name(&mut f, Some(name));
        f.client_token(client_token);
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        let mut record = self.rule_groups_namespace(workspace_id, &name).ok_or_else(|| not_found(&name))?;
        record.status = status(RuleGroupsNamespaceStatusCode::Deleting, None);
        self.save_doc(&record.arn, &record).await?;
        self.store.delete(&record.arn).await?;
        tracing::info!(workspace = %workspace_id, namespace = %name, "Deleted rule groups namespace.");
        Ok(())
    }

    /// Every namespace of a workspace, in name order.
    pub fn rule_groups_namespaces(&self, workspace_id: &str) -> Vec<RuleGroupsNamespaceRecord> {
        all_rule_groups_namespaces(self.store.as_ref(), &self.arns().rule_groups_namespace_prefix(workspace_id))
    }

    /// Finishes namespaces a crash left `CREATING` or `UPDATING` (their
    /// file validated again), and `DELETING` ones (removed). Called by
    /// [`WorkspaceService::reconcile`] under the service's lock.
    pub(crate) async fn reconcile_rule_groups_namespaces(&self, workspace_id: &str) -> Result<()> {
        use RuleGroupsNamespaceStatusCode::*;
        for mut record in self.rule_groups_namespaces(workspace_id) {
            let failed = match record.status.status_code {
                Creating => CreationFailed,
                Updating => UpdateFailed,
                Deleting => {
                    self.store.delete(&record.arn).await?;
                    continue;
                }
                _ => continue,
            };
            record.status = match self.check_rules_file(workspace_id, &record.name, &record.data) {
                Ok(()) => status(Active, None),
                Err(e) => status(failed, Some(e.to_string())),
            };
            tracing::info!(workspace = %workspace_id, namespace = %record.name, status = ?record.status, "Finished a rule groups namespace change.");
            self.save_doc(&record.arn, &record).await?;
        }
        Ok(())
    }

    /// Deletes every namespace of a workspace (the workspace is being
    /// deleted).
    pub(crate) async fn delete_rule_groups_namespaces(&self, workspace_id: &str) -> Result<()> {
        for record in self.rule_groups_namespaces(workspace_id) {
            self.store.delete(&record.arn).await?;
        }
        Ok(())
    }

    /// Validates a rules file as Prometheus would, and the workspace's
    /// quotas with it in place of the namespace `name`'s current file.
    fn check_rules_file(&self, workspace_id: &str, name: &str, data: &str) -> Result<()> {
        let limits = self.overrides.ruler(workspace_id);
        if data.len() > limits.max_rule_groups_namespace_bytes {
            return Err(quota(
                name,
                "rule-groups-namespace-size",
                format!(
                    "the rules file is {} bytes, over the limit of {} bytes per rule groups namespace",
                    data.len(),
                    limits.max_rule_groups_namespace_bytes
                ),
            ));
        }
        let groups = rulefmt::parse(data.as_bytes()).map_err(|errors| Error::Validation {
            message: format!("invalid rules file: {}", errors.join("; ")),
            fields: errors.into_iter().map(|e| crate::error::FieldError::new("data", e)).collect(),
        })?;
        // Failed namespaces are not evaluated: they take no quota.
        let others: Vec<RuleGroupsNamespaceRecord> = self
            .rule_groups_namespaces(workspace_id)
            .into_iter()
            .filter(|n| {
                n.name != name
                    && n.status.status_code != RuleGroupsNamespaceStatusCode::CreationFailed
                    && n.status.status_code != RuleGroupsNamespaceStatusCode::UpdateFailed
            })
            .collect();
        check_quotas(&limits, name, &groups, &others)
    }

    pub(crate) fn now_seconds(&self) -> f64 {
        self.clock.now_ms() as f64 / 1000.0
    }

    fn rule_groups_namespace(&self, workspace_id: &str, name: &str) -> Option<RuleGroupsNamespaceRecord> {
        let doc = self.store.get(&self.arns().rule_groups_namespace(workspace_id, name))?;
        serde_json::from_value(doc).ok()
    }

    pub(crate) async fn save_doc<T: serde::Serialize>(&self, arn: &str, doc: &T) -> Result<()> {
        let doc = serde_json::to_value(doc).map_err(|e| Error::Internal(format!("encoding {arn}: {e}")))?;
        self.store.put(arn, doc).await?;
        Ok(())
    }
}

/// The namespaces under an ARN prefix (a workspace's, or all of a
/// deployment's), in ARN order.
pub fn all_rule_groups_namespaces(
    store: &dyn common::control::ControlPlaneStore,
    prefix: &str,
) -> Vec<RuleGroupsNamespaceRecord> {
    store.list(prefix).into_iter().filter_map(|(_, doc)| serde_json::from_value(doc).ok()).collect()
}

/// The workspace's quotas with `groups` as the file of namespace `name`
/// beside the `others`.
fn check_quotas(
    limits: &RulerLimits,
    name: &str,
    groups: &rulefmt::RuleGroups,
    others: &[RuleGroupsNamespaceRecord],
) -> Result<()> {
    if others.len() + 1 > limits.max_rule_groups_namespaces_per_workspace {
        return Err(quota(
            name,
            "rule-groups-namespaces-per-workspace",
            format!(
                "a workspace may have at most {} rule groups namespaces",
                limits.max_rule_groups_namespaces_per_workspace
            ),
        ));
    }
    // The other files were validated when they were put; one a newer
    // release would refuse counts as empty rather than blocking this one.
    let (mut rules, mut groups_total) = (groups.rule_count(), groups.groups.len());
    for other in others {
        if let Ok(g) = rulefmt::parse(other.data.as_bytes()) {
            rules += g.rule_count();
            groups_total += g.groups.len();
        }
    }
    if rules > limits.max_rules_per_workspace {
        return Err(quota(
            name,
            "rules-per-workspace",
            format!(
                "the workspace would have {rules} rules, over its limit of {} rules in all its rule groups namespaces",
                limits.max_rules_per_workspace
            ),
        ));
    }
    if groups_total > limits.max_rule_groups_per_workspace {
        return Err(quota(
            name,
            "rule-groups-per-workspace",
            format!(
                "the workspace would have {groups_total} rule groups, over its limit of {} rule groups in all its rule groups namespaces",
                limits.max_rule_groups_per_workspace
            ),
        ));
    }
    Ok(())
}

fn quota(name: &str, quota_code: &'static str, message: String) -> Error {
    Error::ServiceQuotaExceeded {
        message,
        resource_id: name.to_owned(),
        resource_type: "RuleGroupsNamespace",
        quota_code,
    }
}

fn status(status_code: RuleGroupsNamespaceStatusCode, status_reason: Option<String>) -> RuleGroupsNamespaceStatus {
    RuleGroupsNamespaceStatus { status_code, status_reason }
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        message: format!("Rule groups namespace not found: {name}"),
        resource_id: name.to_owned(),
        resource_type: "RuleGroupsNamespace",
    }
}

/// A namespace name: 1–128 characters with a letter or digit, no `/` (it
/// is a path segment of its ARN and URL) and no control characters.
fn namespace_name(f: &mut Fields, name: Option<&str>) -> String {
    let Some(name) = name else {
        f.bad("name", "Member must not be null");
        return String::new();
    };
    let ok = (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name.chars().any(|c| c.is_ascii_alphanumeric())
        && !name.chars().any(|c| c == '/' || c.is_control());
    if !ok {
        f.bad(
            "name",
            "Member must have length between 1 and 128, contain a letter or digit, and no '/' or control characters",
        );
    }
    name.to_owned()
}
