//! Workspaces: create and describe, with AMP's semantics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::log::{CleanupPolicy, Log, TopicSpec};
use common::workspace::{WorkspaceRecord, WorkspaceStatusCode, is_valid_workspace_id};
use schemas::topics::samples_topic;
use tokio::sync::Mutex;

use crate::error::{Error, FieldError, Result};

/// Settings of workspace creation.
#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// Partitions of each new workspace's samples topic (default 4).
    pub partitions: u32,
    /// How long the log keeps a workspace's records that the stream workers
    /// have already committed to the lake (default 24 h).
    pub log_retention: Duration,
    /// Region and account of ARNs.
    pub arns: ArnScheme,
}

/// A create-workspace request, as AMP's `CreateWorkspaceRequest`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Friendly name, 1–100 characters after trimming.
    pub alias: Option<String>,
    /// Idempotency token, 1–64 printable ASCII characters.
    pub client_token: Option<String>,
    /// Tags, at most 50; keys must not begin with `aws:`.
    pub tags: Option<BTreeMap<String, String>>,
    /// Customer-managed KMS key: refused until encryption at rest exists.
    pub kms_key_arn: Option<String>,
}

/// Creates and describes workspaces; the state lives in the
/// [`ControlPlaneStore`], the data in the log.
#[derive(Debug)]
pub struct WorkspaceService {
    store: Arc<dyn ControlPlaneStore>,
    log: Arc<dyn Log>,
    clock: Arc<dyn Clock>,
    config: WorkspaceConfig,
    /// Serialises creates so that two requests with one client token make
    /// one workspace.
    create_lock: Mutex<()>,
}

impl WorkspaceService {
    /// A service over `store` and `log`.
    pub fn new(
        store: Arc<dyn ControlPlaneStore>,
        log: Arc<dyn Log>,
        clock: Arc<dyn Clock>,
        config: WorkspaceConfig,
    ) -> Self {
        Self { store, log, clock, config, create_lock: Mutex::new(()) }
    }

    /// Creates a workspace: records it `CREATING`, creates its samples topic,
    /// then records it `ACTIVE`. A retry with the same client token returns
    /// the workspace the first request made.
    ///
    /// # Errors
    /// `Validation` for bad fields, `Conflict` when the client token was used
    /// with other parameters, the store's or log's errors otherwise.
    pub async fn create(&self, request: CreateWorkspace) -> Result<WorkspaceRecord> {
        let alias = validate_create(&request)?;
        let tags = request.tags.clone().unwrap_or_default();
        let _guard = self.create_lock.lock().await;
        if let Some(token) = &request.client_token
            && let Some(existing) = self.all().into_iter().find(|w| w.client_token.as_deref() == Some(token))
        {
            if existing.alias != alias || existing.tags != tags {
                return Err(Error::Conflict {
                    message: "a workspace was already created with this client token and other parameters".into(),
                    resource_id: existing.workspace_id,
                    resource_type: "Workspace",
                });
            }
            return Ok(existing);
        }
        let workspace_id = format!("ws-{}", uuid::Uuid::new_v4());
        let mut record = WorkspaceRecord {
            arn: self.config.arns.workspace(&workspace_id),
            samples_topic: samples_topic(&workspace_id),
            workspace_id,
            alias,
            status: WorkspaceStatusCode::Creating,
            created_at: self.clock.now_ms() as f64 / 1000.0,
            tags,
            client_token: request.client_token,
        };
        self.save(&record).await?;
        self.activate(&mut record).await?;
        tracing::info!(workspace = %record.workspace_id, "Created workspace.");
        Ok(record)
    }

    /// The workspace with this id.
    ///
    /// # Errors
    /// `Validation` for an id of the wrong shape, `NotFound` when absent.
    pub fn describe(&self, workspace_id: &str) -> Result<WorkspaceRecord> {
        if !is_valid_workspace_id(workspace_id) {
            return Err(Error::validation("workspaceId", format!("invalid workspace id {workspace_id:?}")));
        }
        self.get(workspace_id).ok_or_else(|| Error::NotFound {
            message: format!("Workspace not found: {workspace_id}"),
            resource_id: workspace_id.to_owned(),
            resource_type: "Workspace",
        })
    }

    /// Finishes workspaces that a crash left `CREATING`.
    ///
    /// # Errors
    /// The store's or log's errors.
    pub async fn reconcile(&self) -> Result<()> {
        for mut w in self.all() {
            if w.status == WorkspaceStatusCode::Creating {
                tracing::info!(workspace = %w.workspace_id, "Finishing the creation of a workspace.");
                self.activate(&mut w).await?;
            }
        }
        Ok(())
    }

    /// The prometheus endpoint of a workspace, given this server's base URL.
    pub fn prometheus_endpoint(base_url: &str, workspace_id: &str) -> String {
        format!("{}/workspaces/{workspace_id}/api/v1/", base_url.trim_end_matches('/'))
    }

    fn get(&self, workspace_id: &str) -> Option<WorkspaceRecord> {
        let doc = self.store.get(&self.config.arns.workspace(workspace_id))?;
        serde_json::from_value(doc).ok()
    }

    fn all(&self) -> Vec<WorkspaceRecord> {
        self.store
            .list(&self.config.arns.workspace_prefix())
            .into_iter()
            .filter_map(|(_, doc)| serde_json::from_value(doc).ok())
            .collect()
    }

    async fn activate(&self, record: &mut WorkspaceRecord) -> Result<()> {
        let spec = TopicSpec {
            partitions: self.config.partitions,
            cleanup: CleanupPolicy::Delete { retention: self.config.log_retention },
        };
        self.log.ensure_topic(&record.samples_topic, spec).await?;
        record.status = WorkspaceStatusCode::Active;
        self.save(record).await
    }

    async fn save(&self, record: &WorkspaceRecord) -> Result<()> {
        let doc = serde_json::to_value(record).map_err(|e| Error::Internal(format!("encoding workspace: {e}")))?;
        self.store.put(&record.arn, doc).await?;
        Ok(())
    }
}

/// AMP's constraints on a create request; returns the trimmed alias.
fn validate_create(request: &CreateWorkspace) -> Result<Option<String>> {
    let mut fields = Vec::new();
    let alias = request.alias.as_deref().map(str::trim).map(str::to_owned);
    if let Some(a) = &alias
        && (a.is_empty() || a.chars().count() > 100)
    {
        fields.push(FieldError::new("alias", "Member must have length between 1 and 100"));
    }
    if let Some(t) = &request.client_token
        && (t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (b'!'..=b'~').contains(&b)))
    {
        fields.push(FieldError::new("clientToken", "Member must have length between 1 and 64 and match [!-~]+"));
    }
    if let Some(tags) = &request.tags {
        if tags.len() > 50 {
            fields.push(FieldError::new("tags", "Member must have at most 50 entries"));
        }
        for (k, v) in tags {
            if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") {
                fields.push(FieldError::new(
                    "tags",
                    format!("invalid tag key {k:?}: 1–128 characters, not starting with aws:"),
                ));
            }
            if v.chars().count() > 256 {
                fields.push(FieldError::new("tags", format!("value of tag {k:?} is longer than 256 characters")));
            }
        }
    }
    if request.kms_key_arn.is_some() {
        fields.push(FieldError::new(
            "kmsKeyArn",
            "customer managed keys are not supported yet: PromLake does not encrypt data at rest yet",
        ));
    }
    if fields.is_empty() { Ok(alias) } else { Err(Error::Validation { message: fields[0].message.clone(), fields }) }
}
