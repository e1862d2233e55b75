//! A workspace's alert manager definition with AMP's semantics: create,
//! put (replace), describe, delete. The definition is AMP's YAML document
//! (`alertmanager_config` holding Alertmanager's configuration,
//! `template_files`), stored as an `AlertManagerDefinitionRecord` keyed by
//! `ArnScheme::alert_manager_definition`.
//!
//! - A definition is validated as `amtool check-config` does (`amconfig`:
//!   the configuration, its templates, and receivers PromLake delivers to)
//!   and against the workspace's quotas (`Overrides::alerting`: size,
//!   inhibition rules, routing-tree nodes, templates, `repeat_interval`)
//!   before anything is written: a rejected definition is a
//!   `ValidationException` and changes nothing.
//! - Create records the definition `CREATING`, then `ACTIVE`; put records
//!   `UPDATING` with the new definition, then `ACTIVE`; delete records
//!   `DELETING`, then removes it. A change a crash interrupted is finished by
//!   [`WorkspaceService::reconcile`], validating the definition again
//!   (`CREATION_FAILED` / `UPDATE_FAILED` with `statusReason` if it no
//!   longer passes).
//! - Deleting a workspace deletes its definition.

use common::alertmanager::{
    AlertManagerDefinitionRecord, AlertManagerDefinitionStatus, AlertManagerDefinitionStatusCode,
};

use crate::error::{Error, FieldError, Result};
use crate::validate::Fields;
use crate::workspaces::WorkspaceService;

/// A create or put request's body (`CreateAlertManagerDefinitionRequest`,
/// `PutAlertManagerDefinitionRequest`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertManagerDefinitionRequest {
    /// The definition, base64 (a JSON blob).
    pub data: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl WorkspaceService {
    /// Creates the workspace's alert manager definition. A retry with the
    /// same client token and data returns the definition the first made.
    ///
    /// # Errors
    /// `Validation` (bad fields, a definition Alertmanager or PromLake
    /// refuses, a quota), `NotFound` (workspace), `Conflict` (a definition
    /// exists, workspace not active).
    pub async fn create_alert_manager_definition(
        &self,
        workspace_id: &str,
        request: AlertManagerDefinitionRequest,
    ) -> Result<AlertManagerDefinitionRecord> {
        let mut f = Fields::default();
        f.client_token(request.client_token.as_deref());
        let data = f.base64_text("data", request.data.as_deref(), "the alert manager definition");
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        if let Some(existing) = self.alert_manager_definition(workspace_id) {
            if request.client_token.is_some() && existing.client_token == request.client_token && existing.data == data
            {
                return Ok(existing);
            }
            return Err(Error::Conflict {
                message: format!("workspace {workspace_id} already has an alert manager definition"),
                resource_id: workspace_id.to_owned(),
                resource_type: "AlertManagerDefinition",
            });
        }
        self.check_definition(workspace_id, &data)?;
        let now = self.now_seconds();
        let mut record = AlertManagerDefinitionRecord {
            workspace_id: workspace_id.to_owned(),
            status: status(AlertManagerDefinitionStatusCode::Creating, None),
            data,
            created_at: now,
            modified_at: now,
            client_token: request.client_token,
        };
        let key = self.arns().alert_manager_definition(workspace_id);
        self.save_doc(&key, &record).await?;
        let answer = record.clone();
        record.status = status(AlertManagerDefinitionStatusCode::Active, None);
        self.save_doc(&key, &record).await?;
        tracing::info!(workspace = %workspace_id, "Created the alert manager definition.");
        // AMP answers with the state the creation started in.
        Ok(answer)
    }

    /// Replaces the workspace's alert manager definition (AMP's put updates
    /// an existing one; create makes it).
    ///
    /// # Errors
    /// As [`WorkspaceService::create_alert_manager_definition`];
    /// `NotFound` when there is none; `Conflict` when it is being created,
    /// updated or deleted.
    pub async fn put_alert_manager_definition(
        &self,
        workspace_id: &str,
        request: AlertManagerDefinitionRequest,
    ) -> Result<AlertManagerDefinitionRecord> {
        let mut f = Fields::default();
        f.client_token(request.client_token.as_deref());
        let data = f.base64_text("data", request.data.as_deref(), "the alert manager definition");
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        let now = self.now_seconds();
        let existing = self.alert_manager_definition(workspace_id).ok_or_else(|| not_found(workspace_id))?;
        use AlertManagerDefinitionStatusCode::*;
        if !matches!(existing.status.status_code, Active | CreationFailed | UpdateFailed) {
            return Err(Error::Conflict {
                message: format!("the alert manager definition is {:?}, not ACTIVE", existing.status.status_code),
                resource_id: workspace_id.to_owned(),
                resource_type: "AlertManagerDefinition",
            });
        }
        self.check_definition(workspace_id, &data)?;
        let mut record = existing;
        record.data = data;
        record.modified_at = now;
        record.client_token = request.client_token;
        record.status = status(Updating, None);
        let key = self.arns().alert_manager_definition(workspace_id);
        self.save_doc(&key, &record).await?;
        let answer = record.clone();
        record.status = status(Active, None);
        self.save_doc(&key, &record).await?;
        tracing::info!(workspace = %workspace_id, "Put the alert manager definition.");
        Ok(answer)
    }

    /// The workspace's alert manager definition.
    ///
    /// # Errors
    /// `NotFound` (workspace or definition).
    pub fn describe_alert_manager_definition(&self, workspace_id: &str) -> Result<AlertManagerDefinitionRecord> {
        self.describe(workspace_id)?;
        self.alert_manager_definition(workspace_id).ok_or_else(|| not_found(workspace_id))
    }

    /// Deletes the workspace's alert manager definition.
    ///
    /// # Errors
    /// `Validation`, `NotFound`, `Conflict` when the workspace is not active.
    pub async fn delete_alert_manager_definition(&self, workspace_id: &str, client_token: Option<&str>) -> Result<()> {
        let mut f = Fields::default();
        f.client_token(client_token);
        f.finish()?;
        let _guard = self.lock.lock().await;
        self.describe_active(workspace_id)?;
        let mut record = self.alert_manager_definition(workspace_id).ok_or_else(|| not_found(workspace_id))?;
        let key = self.arns().alert_manager_definition(workspace_id);
        record.status = status(AlertManagerDefinitionStatusCode::Deleting, None);
        self.save_doc(&key, &record).await?;
        self.store.delete(&key).await?;
        tracing::info!(workspace = %workspace_id, "Deleted the alert manager definition.");
        Ok(())
    }

    /// The workspace's definition, whatever its state.
    pub fn alert_manager_definition(&self, workspace_id: &str) -> Option<AlertManagerDefinitionRecord> {
        let doc = self.store.get(&self.arns().alert_manager_definition(workspace_id))?;
        serde_json::from_value(doc).ok()
    }

    /// Finishes a definition change a crash interrupted (validating the
    /// definition again). Called by [`WorkspaceService::reconcile`] under
    /// the service's lock.
    pub(crate) async fn reconcile_alert_manager_definition(&self, workspace_id: &str) -> Result<()> {
        use AlertManagerDefinitionStatusCode::*;
        let Some(mut record) = self.alert_manager_definition(workspace_id) else { return Ok(()) };
        let key = self.arns().alert_manager_definition(workspace_id);
        let failed = match record.status.status_code {
            Creating => CreationFailed,
            Updating => UpdateFailed,
            Deleting => return self.store.delete(&key).await.map_err(Into::into),
            _ => return Ok(()),
        };
        record.status = match self.check_definition(workspace_id, &record.data) {
            Ok(()) => status(Active, None),
            Err(e) => status(failed, Some(e.to_string())),
        };
        tracing::info!(workspace = %workspace_id, status = ?record.status, "Finished an alert manager definition change.");
        self.save_doc(&key, &record).await
    }

    /// Deletes the workspace's definition (the workspace is being deleted).
    pub(crate) async fn delete_alert_manager_definition_of(&self, workspace_id: &str) -> Result<()> {
        if self.alert_manager_definition(workspace_id).is_some() {
            self.store.delete(&self.arns().alert_manager_definition(workspace_id)).await?;
        }
        Ok(())
    }

    /// Validates a definition as Alertmanager would (and for the receivers
    /// PromLake delivers to), then against the workspace's quotas.
    fn check_definition(&self, workspace_id: &str, data: &str) -> Result<()> {
        let limits = self.overrides.alerting(workspace_id);
        let invalid = |message: String| Error::Validation {
            fields: vec![FieldError::new("data", message.clone())],
            message: format!("invalid alert manager definition: {message}"),
        };
        if data.len() > limits.max_definition_bytes {
            return Err(invalid(format!(
                "the definition is {} bytes, over the limit of {} bytes",
                data.len(),
                limits.max_definition_bytes
            )));
        }
        let definition = amconfig::parse_definition(data).map_err(invalid)?;
        let shape = definition.shape();
        let over = |what: &str, n: usize, max: usize| {
            invalid(format!("the definition has {n} {what}, over the limit of {max}"))
        };
        if shape.inhibit_rules > limits.max_inhibition_rules {
            return Err(over("inhibition rules", shape.inhibit_rules, limits.max_inhibition_rules));
        }
        if shape.route_nodes > limits.max_route_nodes {
            return Err(over("routing-tree nodes", shape.route_nodes, limits.max_route_nodes));
        }
        if shape.template_files > limits.max_templates {
            return Err(over("template files", shape.template_files, limits.max_templates));
        }
        let max_repeat_ms = i64::try_from(limits.max_repeat_interval_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if shape.max_repeat_interval_ms > max_repeat_ms {
            return Err(invalid(format!(
                "repeat_interval {} is over the limit of {}",
                common::duration::format(shape.max_repeat_interval_ms),
                common::duration::format(max_repeat_ms)
            )));
        }
        Ok(())
    }
}

fn status(
    status_code: AlertManagerDefinitionStatusCode,
    status_reason: Option<String>,
) -> AlertManagerDefinitionStatus {
    AlertManagerDefinitionStatus { status_code, status_reason }
}

fn not_found(workspace_id: &str) -> Error {
    Error::NotFound {
        message: format!("Alert manager definition not found for workspace {workspace_id}"),
        resource_id: workspace_id.to_owned(),
        resource_type: "AlertManagerDefinition",
    }
}
