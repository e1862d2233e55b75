//! Workspaces with AMP's semantics: create, describe, list, update alias,
//! delete, configuration and tags.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::limits::{
    LabelSetLimit, MAX_LABEL_SETS, OUT_OF_ORDER_WINDOW_SECONDS, Overrides, RETENTION_PERIOD_DAYS,
    RULE_QUERY_OFFSET_SECONDS, WorkspaceOverride,
};
use common::log::{CleanupPolicy, Log, LogError, TopicSpec};
use common::seams::WorkspaceData;
use common::workspace::{
    ConfigurationStatusCode, WorkspaceConfiguration, WorkspaceRecord, WorkspaceStatusCode, is_valid_workspace_id,
};
use schemas::topics::samples_topic;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::validate::{DEFAULT_MAX_RESULTS, Fields, MAX_RESULTS, MAX_TAGS};

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

/// An update-workspace-alias request (`UpdateWorkspaceAliasRequest`'s body).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAlias {
    /// The new alias; none removes it.
    pub alias: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

/// An update-workspace-configuration request
/// (`UpdateWorkspaceConfigurationRequest`'s body). Fields left out keep
/// their current value.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConfiguration {
    /// Idempotency token.
    pub client_token: Option<String>,
    /// Days the lake keeps samples, 1–1095.
    pub retention_period_in_days: Option<i64>,
    /// The out-of-order window, 0–600 seconds.
    pub out_of_order_time_window_in_seconds: Option<i64>,
    /// The ruler's query offset, 0–86,400 seconds.
    pub rule_query_offset_in_seconds: Option<i64>,
    /// Active-series limits per label set; replaces the current list.
    pub limits_per_label_set: Option<Vec<LimitsPerLabelSet>>,
}

/// AMP's `LimitsPerLabelSet`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsPerLabelSet {
    /// The label set (empty: the default bucket).
    pub label_set: BTreeMap<String, String>,
    /// Its limits.
    pub limits: LimitsPerLabelSetEntry,
}

/// AMP's `LimitsPerLabelSetEntry`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsPerLabelSetEntry {
    /// Most active series; absent or 0: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_series: Option<i64>,
}

/// A `ListWorkspaces` page.
#[derive(Debug)]
pub struct WorkspacePage {
    /// The workspaces, ordered by id.
    pub workspaces: Vec<WorkspaceRecord>,
    /// The token of the next page, if any.
    pub next_token: Option<String>,
}

/// A workspace's effective configuration (`WorkspaceConfigurationDescription`).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfiguration {
    /// The configuration's state.
    pub status: ConfigurationStatusCode,
    /// Days the lake keeps samples.
    pub retention_period_in_days: u32,
    /// The out-of-order window, seconds.
    pub out_of_order_time_window_in_seconds: u64,
    /// The ruler's query offset, seconds.
    pub rule_query_offset_in_seconds: u64,
    /// Active-series limits per label set.
    pub limits_per_label_set: Vec<LimitsPerLabelSet>,
}

/// How often [`WorkspaceService::reconcile`] runs in the background.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// Manages workspaces; the state lives in the [`ControlPlaneStore`], the
/// data in the log and the lake.
#[derive(Debug)]
pub struct WorkspaceService {
    pub(crate) store: Arc<dyn ControlPlaneStore>,
    log: Arc<dyn Log>,
    pub(crate) clock: Arc<dyn Clock>,
    config: WorkspaceConfig,
    pub(crate) overrides: Arc<Overrides>,
    /// Deletes a deleted workspace's lake tables, where this process runs
    /// the stream workers (`--role all`); elsewhere the worker processes
    /// drop the tables of workspaces they see deleted.
    data: Option<Arc<dyn WorkspaceData>>,
    /// Serialises read-modify-write of workspace records in this process,
    /// so two requests never lose one another's change, and two creates
    /// with one client token make one workspace.
    pub(crate) lock: Mutex<()>,
    /// Workspaces whose deletion is being finished by a task of this process.
    deleting: SyncMutex<HashSet<String>>,
}

impl WorkspaceService {
    /// A service over `store` and `log`.
    pub fn new(
        store: Arc<dyn ControlPlaneStore>,
        log: Arc<dyn Log>,
        clock: Arc<dyn Clock>,
        config: WorkspaceConfig,
        overrides: Arc<Overrides>,
        data: Option<Arc<dyn WorkspaceData>>,
    ) -> Self {
        Self { store, log, clock, config, overrides, data, lock: Mutex::new(()), deleting: SyncMutex::default() }
    }

    /// The ARN scheme of this deployment.
    pub fn arns(&self) -> &ArnScheme {
        &self.config.arns
    }

    /// Creates a workspace: records it `CREATING`, creates its samples topic,
    /// then records it `ACTIVE`. A retry with the same client token returns
    /// the workspace the first request made.
    ///
    /// # Errors
    /// `Validation` for bad fields, `Conflict` when the client token was used
    /// with other parameters, the store's or log's errors otherwise.
    pub async fn create(&self, request: CreateWorkspace) -> Result<WorkspaceRecord> {
        let mut f = Fields::default();
        let alias = f.alias(request.alias.as_deref());
        f.client_token(request.client_token.as_deref());
        let tags = request.tags.clone().unwrap_or_default();
        f.tags(&tags);
        if request.kms_key_arn.is_some() {
            f.bad(
                "kmsKeyArn",
                "customer managed keys are not supported yet: PromLake does not encrypt data at rest yet",
            );
        }
        f.finish()?;
        let _guard = self.lock.lock().await;
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
            delete_client_token: None,
            configuration: WorkspaceConfiguration::default(),
        };
        self.save(&record).await?;
        self.activate(&mut record).await?;
        tracing::info!(workspace = %record.workspace_id, "Created workspace.");
        Ok(record)
    }

    /// The workspace with this id.
    ///
    /// # Errors
    /// `NotFound` when absent (an id of another shape is never looked up).
    pub fn describe(&self, workspace_id: &str) -> Result<WorkspaceRecord> {
        self.get(workspace_id).ok_or_else(|| not_found(workspace_id))
    }

    /// One page of workspaces, ordered by id: those whose alias starts with
    /// `alias` when given, at most `max_results` (1–1000, default 100),
    /// after the page `next_token` ended.
    ///
    /// # Errors
    /// `Validation` for a bad `maxResults`, alias or token.
    pub fn list(
        &self,
        alias: Option<&str>,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<WorkspacePage> {
        let mut f = Fields::default();
        if alias.is_some_and(|a| a.is_empty() || a.chars().count() > 100) {
            f.bad("alias", "Member must have length between 1 and 100");
        }
        let max = match max_results {
            None => DEFAULT_MAX_RESULTS,
            Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
            Some(_) => {
                f.bad("maxResults", "Member must be between 1 and 1000");
                0
            }
        };
        if next_token.is_some_and(|t| !is_valid_workspace_id(t)) {
            f.bad("nextToken", "invalid pagination token");
        }
        f.finish()?;
        let mut workspaces: Vec<WorkspaceRecord> = self
            .all()
            .into_iter()
            .filter(|w| alias.is_none_or(|a| w.alias.as_deref().is_some_and(|wa| wa.starts_with(a))))
            .filter(|w| next_token.is_none_or(|t| w.workspace_id.as_str() > t))
            .collect();
        workspaces.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
        let next_token = (workspaces.len() > max).then(|| workspaces[max - 1].workspace_id.clone());
        workspaces.truncate(max);
        Ok(WorkspacePage { workspaces, next_token })
    }

    /// Sets (or removes) a workspace's alias.
    ///
    /// # Errors
    /// `Validation`, `NotFound`, `Conflict` when the workspace is not active.
    pub async fn update_alias(&self, workspace_id: &str, request: UpdateAlias) -> Result<()> {
        let mut f = Fields::default();
        let alias = f.alias(request.alias.as_deref());
        f.client_token(request.client_token.as_deref());
        f.finish()?;
        let _guard = self.lock.lock().await;
        let mut record = self.describe_active(workspace_id)?;
        record.alias = alias;
        self.save(&record).await
    }

    /// Starts deleting a workspace: records it `DELETING` (the data plane
    /// refuses it from then on), then, in the background, deletes its lake
    /// tables, its log topic and finally its record.
    ///
    /// # Errors
    /// `Validation`, `NotFound`, `Conflict` when it is not active.
    pub async fn delete(self: &Arc<Self>, workspace_id: &str, client_token: Option<&str>) -> Result<()> {
        let mut f = Fields::default();
        f.client_token(client_token);
        f.finish()?;
        let record = {
            let _guard = self.lock.lock().await;
            // A retry (same client token) of a delete in progress succeeds.
            if let Some(token) = client_token
                && let Some(current) = self.get(workspace_id)
                && current.status == WorkspaceStatusCode::Deleting
                && current.delete_client_token.as_deref() == Some(token)
            {
                return Ok(());
            }
            let mut record = self.describe_active(workspace_id)?;
            record.status = WorkspaceStatusCode::Deleting;
            record.delete_client_token = client_token.map(str::to_owned);
            self.save(&record).await?;
            record
        };
        tracing::info!(workspace = %workspace_id, "Deleting workspace.");
        let service = self.clone();
        tokio::spawn(async move { service.finish_delete(record).await });
        Ok(())
    }

    /// A workspace's effective configuration: the values set through the
    /// API, else the config file's (read through the limits/overrides place).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn describe_configuration(&self, workspace_id: &str) -> Result<EffectiveConfiguration> {
        let record = self.describe(workspace_id)?;
        Ok(EffectiveConfiguration {
            status: record.configuration.status,
            retention_period_in_days: self.overrides.retention_period_days(workspace_id),
            out_of_order_time_window_in_seconds: self.overrides.storage(workspace_id).out_of_order_time_window_seconds,
            rule_query_offset_in_seconds: self.overrides.ruler(workspace_id).query_offset_seconds,
            limits_per_label_set: self
                .overrides
                .ingest(workspace_id)
                .limits_per_label_set
                .iter()
                .map(|l| LimitsPerLabelSet {
                    label_set: l.label_set.clone(),
                    limits: LimitsPerLabelSetEntry { max_series: Some(l.max_series as i64) },
                })
                .collect(),
        })
    }

    /// Updates the fields given of a workspace's configuration; the others
    /// keep their values. In effect in this process when this returns, in
    /// the others once their view of the control plane has it.
    ///
    /// # Errors
    /// `Validation` (no field, a value out of AMP's range, a field PromLake
    /// cannot honour), `NotFound`, `Conflict` when not active.
    pub async fn update_configuration(
        &self,
        workspace_id: &str,
        request: UpdateConfiguration,
    ) -> Result<ConfigurationStatusCode> {
        let mut f = Fields::default();
        f.client_token(request.client_token.as_deref());
        let retention = in_range(&mut f, "retentionPeriodInDays", request.retention_period_in_days, |d| {
            u32::try_from(d).ok().filter(|d| RETENTION_PERIOD_DAYS.contains(d))
        });
        let window =
            in_range(&mut f, "outOfOrderTimeWindowInSeconds", request.out_of_order_time_window_in_seconds, |s| {
                u64::try_from(s).ok().filter(|s| OUT_OF_ORDER_WINDOW_SECONDS.contains(s))
            });
        let offset = in_range(&mut f, "ruleQueryOffsetInSeconds", request.rule_query_offset_in_seconds, |s| {
            u64::try_from(s).ok().filter(|s| RULE_QUERY_OFFSET_SECONDS.contains(s))
        });
        let label_sets = request.limits_per_label_set.as_deref().map(|list| label_set_limits(&mut f, list));
        if retention.is_none()
            && window.is_none()
            && offset.is_none()
            && request.limits_per_label_set.is_none()
            && request.retention_period_in_days.is_none()
            && request.out_of_order_time_window_in_seconds.is_none()
            && request.rule_query_offset_in_seconds.is_none()
        {
            f.bad(
                "workspaceConfiguration",
                "give at least one of retentionPeriodInDays, outOfOrderTimeWindowInSeconds, \
                 ruleQueryOffsetInSeconds, limitsPerLabelSet",
            );
        }
        f.finish()?;
        let _guard = self.lock.lock().await;
        let mut record = self.describe_active(workspace_id)?;
        let c = &mut record.configuration;
        c.retention_period_in_days = retention.or(c.retention_period_in_days);
        c.out_of_order_time_window_in_seconds = window.or(c.out_of_order_time_window_in_seconds);
        c.rule_query_offset_in_seconds = offset.or(c.rule_query_offset_in_seconds);
        if let Some(sets) = label_sets {
            c.limits_per_label_set = Some(sets);
        }
        c.status = ConfigurationStatusCode::Active;
        self.save(&record).await?;
        self.overrides.set_api_override(workspace_id, Some(record.configuration.as_override()));
        tracing::info!(workspace = %workspace_id, configuration = ?record.configuration, "Updated workspace configuration.");
        Ok(record.configuration.status)
    }

    /// The tags of a resource (any control-plane resource with `tags`).
    ///
    /// # Errors
    /// `Validation` for a malformed ARN, `NotFound`.
    pub fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let (doc, _) = self.tagged(arn)?;
        Ok(serde_json::from_value(doc["tags"].clone()).unwrap_or_default())
    }

    /// Adds or replaces tags of a resource (at most 50 in all).
    ///
    /// # Errors
    /// `Validation`, `NotFound`.
    pub async fn tag(&self, arn: &str, tags: BTreeMap<String, String>) -> Result<()> {
        let mut f = Fields::default();
        f.tags(&tags);
        f.finish()?;
        let _guard = self.lock.lock().await;
        let (mut doc, resource_type) = self.tagged(arn)?;
        let mut current: BTreeMap<String, String> = serde_json::from_value(doc["tags"].clone()).unwrap_or_default();
        current.extend(tags);
        if current.len() > MAX_TAGS {
            return Err(Error::ServiceQuotaExceeded {
                message: format!("a resource may have at most {MAX_TAGS} tags"),
                resource_id: arn.to_owned(),
                resource_type,
                quota_code: "tags-per-resource",
            });
        }
        doc["tags"] = serde_json::to_value(current).map_err(|e| Error::Internal(e.to_string()))?;
        self.store.put(arn, doc).await?;
        Ok(())
    }

    /// Removes tags of a resource (keys it does not have are ignored).
    ///
    /// # Errors
    /// `Validation`, `NotFound`.
    pub async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        let mut f = Fields::default();
        if keys.is_empty() {
            f.bad("tagKeys", "Member must not be empty");
        }
        for k in keys {
            f.tag_key(k);
        }
        f.finish()?;
        let _guard = self.lock.lock().await;
        let (mut doc, _) = self.tagged(arn)?;
        let mut current: BTreeMap<String, String> = serde_json::from_value(doc["tags"].clone()).unwrap_or_default();
        for k in keys {
            current.remove(k);
        }
        doc["tags"] = serde_json::to_value(current).map_err(|e| Error::Internal(e.to_string()))?;
        self.store.put(arn, doc).await?;
        Ok(())
    }

    /// Finishes what a crash (or a failed step) left half done: workspaces
    /// left `CREATING` are activated, those left `DELETING` deleted, rule
    /// groups namespaces left `CREATING`/`UPDATING`/`DELETING` finished.
    /// Runs at start and every [`RECONCILE_INTERVAL`].
    ///
    /// # Errors
    /// The store's or log's errors.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        for mut w in self.all() {
            match w.status {
                WorkspaceStatusCode::Creating => {
                    // Re-read under the lock: a create in progress may
                    // have finished (and the workspace even gone) since.
                    let _guard = self.lock.lock().await;
                    match self.get(&w.workspace_id) {
                        Some(current) if current.status == WorkspaceStatusCode::Creating => {
                            tracing::info!(workspace = %w.workspace_id, "Finishing the creation of a workspace.");
                            w = current;
                            self.activate(&mut w).await?;
                        }
                        _ => {}
                    }
                }
                WorkspaceStatusCode::Deleting => self.finish_delete(w).await,
                WorkspaceStatusCode::Active => {
                    let _guard = self.lock.lock().await;
                    // One workspace's failure does not hold up the others.
                    if let Err(error) = self.reconcile_rule_groups_namespaces(&w.workspace_id).await {
                        tracing::warn!(workspace = %w.workspace_id, %error, "Finishing rule groups namespace changes failed; will retry.");
                    }
                    if let Err(error) = self.reconcile_alert_manager_definition(&w.workspace_id).await {
                        tracing::warn!(workspace = %w.workspace_id, %error, "Finishing an alert manager definition change failed; will retry.");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The prometheus endpoint of a workspace, given this server's base URL.
    pub fn prometheus_endpoint(base_url: &str, workspace_id: &str) -> String {
        format!("{}/workspaces/{workspace_id}/api/v1/", base_url.trim_end_matches('/'))
    }

    /// Deletes a `DELETING` workspace's tables, topic and record, unless a
    /// task of this process is already at it. A failed step is logged and
    /// retried by the next [`WorkspaceService::reconcile`].
    async fn finish_delete(&self, record: WorkspaceRecord) {
        let id = record.workspace_id.clone();
        if !self.deleting.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone()) {
            return;
        }
        if let Err(error) = self.delete_everything(&record).await {
            tracing::warn!(workspace = %id, %error, "Deleting the workspace failed; will retry.");
        }
        self.deleting.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    async fn delete_everything(&self, record: &WorkspaceRecord) -> Result<()> {
        if let Some(data) = &self.data {
            data.delete_workspace_data(&record.workspace_id).await.map_err(|e| Error::Internal(e.message))?;
        }
        match self.log.delete_topic(&record.samples_topic).await {
            Ok(()) | Err(LogError::TopicNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let _guard = self.lock.lock().await;
        self.delete_rule_groups_namespaces(&record.workspace_id).await?;
        self.delete_alert_manager_definition_of(&record.workspace_id).await?;
        self.store.delete(&record.arn).await?;
        self.overrides.set_api_override(&record.workspace_id, None);
        tracing::info!(workspace = %record.workspace_id, "Workspace deleted with its data.");
        Ok(())
    }

    /// The workspace, if it is `ACTIVE` (a change to a workspace being
    /// created or deleted is a conflict, as in AMP).
    pub(crate) fn describe_active(&self, workspace_id: &str) -> Result<WorkspaceRecord> {
        let record = self.describe(workspace_id)?;
        if record.status != WorkspaceStatusCode::Active {
            return Err(Error::Conflict {
                message: format!("workspace {workspace_id} is {:?}, not ACTIVE", record.status),
                resource_id: workspace_id.to_owned(),
                resource_type: "Workspace",
            });
        }
        Ok(record)
    }

    /// A resource of this deployment that has tags, and its type.
    fn tagged(&self, arn: &str) -> Result<(serde_json::Value, &'static str)> {
        let resource_type = self.config.arns.resource_type(arn).ok_or_else(|| {
            Error::validation("resourceArn", format!("{arn:?} is not the ARN of a resource of this deployment"))
        })?;
        match self.store.get(arn) {
            Some(doc) if doc.get("tags").is_some() => Ok((doc, resource_type)),
            _ => Err(Error::NotFound {
                message: format!("Resource not found: {arn}"),
                resource_id: arn.to_owned(),
                resource_type,
            }),
        }
    }

    fn get(&self, workspace_id: &str) -> Option<WorkspaceRecord> {
        if !is_valid_workspace_id(workspace_id) {
            return None;
        }
        let doc = self.store.get(&self.config.arns.workspace(workspace_id))?;
        serde_json::from_value(doc).ok()
    }

    fn all(&self) -> Vec<WorkspaceRecord> {
        all_workspaces(self.store.as_ref(), &self.config.arns)
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

/// Every workspace record of the store.
pub fn all_workspaces(store: &dyn ControlPlaneStore, arns: &ArnScheme) -> Vec<WorkspaceRecord> {
    store.list(&arns.workspace_prefix()).into_iter().filter_map(|(_, doc)| serde_json::from_value(doc).ok()).collect()
}

/// Applies every workspace's API configuration to `overrides` (the API's
/// layer of the limits/overrides place), as the control plane sees them:
/// how processes learn of changes made through another process.
pub fn sync_overrides(store: &dyn ControlPlaneStore, arns: &ArnScheme, overrides: &Overrides) {
    let api: std::collections::HashMap<String, WorkspaceOverride> = all_workspaces(store, arns)
        .into_iter()
        .filter(|w| w.configuration != WorkspaceConfiguration::default())
        .map(|w| (w.workspace_id, w.configuration.as_override()))
        .collect();
    overrides.set_api_overrides(api);
}

fn not_found(workspace_id: &str) -> Error {
    Error::NotFound {
        message: format!("Workspace not found: {workspace_id}"),
        resource_id: workspace_id.to_owned(),
        resource_type: "Workspace",
    }
}

/// AMP's constraints on `limitsPerLabelSet`: at most `MAX_LABEL_SETS` label
/// sets, each unique, label names `[a-zA-Z_][a-zA-Z0-9_]*`, values not
/// empty, `maxSeries` ≥ 0. Returns the limits as the limits place holds them.
fn label_set_limits(f: &mut Fields, list: &[LimitsPerLabelSet]) -> Vec<LabelSetLimit> {
    let field = "limitsPerLabelSet";
    if list.len() > MAX_LABEL_SETS {
        f.bad(field, format!("at most {MAX_LABEL_SETS} label sets"));
    }
    let mut out: Vec<LabelSetLimit> = Vec::with_capacity(list.len());
    for l in list {
        for (name, value) in &l.label_set {
            let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                f.bad(field, format!("invalid label name {name:?}: [a-zA-Z_][a-zA-Z0-9_]*"));
            }
            if value.is_empty() {
                f.bad(field, format!("the value of label {name:?} is empty"));
            }
        }
        let max_series = match l.limits.max_series {
            None => 0,
            Some(n) if n >= 0 => n as u64,
            Some(n) => {
                f.bad(field, format!("maxSeries must be at least 0, not {n}"));
                0
            }
        };
        if out.iter().any(|o| o.label_set == l.label_set) {
            f.bad(field, format!("the label set {:?} is given twice", l.label_set));
        }
        out.push(LabelSetLimit { label_set: l.label_set.clone(), max_series });
    }
    out
}

/// `value` converted by `ok` when given; a value `ok` refuses is a bad field.
fn in_range<T>(f: &mut Fields, name: &str, value: Option<i64>, ok: impl Fn(i64) -> Option<T>) -> Option<T> {
    let v = value?;
    let converted = ok(v);
    if converted.is_none() {
        let range = match name {
            "retentionPeriodInDays" => format!("{RETENTION_PERIOD_DAYS:?}"),
            "outOfOrderTimeWindowInSeconds" => format!("{OUT_OF_ORDER_WINDOW_SECONDS:?}"),
            _ => format!("{RULE_QUERY_OFFSET_SECONDS:?}"),
        };
        f.bad(name, format!("{name} must be within {} (got {v})", range.replace("..=", " to ")));
    }
    converted
}
