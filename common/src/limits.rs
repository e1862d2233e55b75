//! Per-workspace limits, read in one place.
//!
//! [`Limits`] holds the defaults (from the config file's `[limits]` table,
//! themselves defaulting to AMP's documented values); [`Overrides`] answers
//! "what is this limit for this workspace", layering, field by field:
//!
//! 1. the value set through the control-plane API (a workspace's
//!    configuration: `retentionPeriodInDays`, …), when set;
//! 2. else the config file's override for the workspace
//!    (`[limits.overrides."ws-…"]`), when set;
//! 3. else the config file's default.
//!
//! Both sources can be swapped at runtime without locking readers.
//! Components never read limits from raw config: they call one accessor per
//! limit.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;

/// Limits of the ingest path, with AMP's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Sustained ingestion rate, samples (plus histograms and exemplars) per
    /// second. Default 140,000 (AMP).
    pub ingestion_rate: f64,
    /// Burst of the ingestion rate limiter, samples. Default 1,000,000 (AMP).
    pub ingestion_burst_size: u32,
    /// Most labels a series may have, `__name__` included. Default 70 (AMP).
    pub max_label_names_per_series: usize,
    /// Longest label name, bytes. Default 1,024 (Cortex).
    pub max_label_name_length: usize,
    /// Longest label value, bytes. Default 2,048 (Cortex).
    pub max_label_value_length: usize,
    /// How far in the future a sample's timestamp may be, seconds. Default
    /// 600 (Cortex's `creation_grace_period`).
    pub creation_grace_period_seconds: u64,
    /// Largest compressed request body, bytes. Default 10 MiB.
    pub max_request_body_bytes: usize,
    /// Largest decompressed request, bytes. Default 100 MiB (Mimir's
    /// `max_recv_msg_size`).
    pub max_decompressed_bytes: usize,
    /// Most active series per label set (AMP's `limitsPerLabelSet`): a new
    /// series whose labels include every pair of a label set is refused
    /// (429, nothing written) once that many series of the set are active;
    /// an empty label set is the default bucket, for the series no other
    /// set matches. `max_series` 0: no limit. Default none.
    pub limits_per_label_set: Vec<LabelSetLimit>,
}

/// One label set's active-series limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSetLimit {
    /// Label names and values a series must all have (empty: the default
    /// bucket).
    pub label_set: std::collections::BTreeMap<String, String>,
    /// Most active series of the set; 0: no limit.
    pub max_series: u64,
}

/// How long a series stays active after its last sample, for
/// [`IngestLimits::limits_per_label_set`] (the span of an ingester's head).
pub const ACTIVE_SERIES_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);
/// Most label sets a workspace's `limitsPerLabelSet` may have.
pub const MAX_LABEL_SETS: usize = 100;

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            ingestion_rate: 140_000.0,
            ingestion_burst_size: 1_000_000,
            max_label_names_per_series: 70,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period_seconds: 600,
            max_request_body_bytes: 10 << 20,
            max_decompressed_bytes: 100 << 20,
            limits_per_label_set: Vec::new(),
        }
    }
}

/// Per-workspace overrides of [`IngestLimits`]: each field, when set,
/// replaces the default for that workspace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimitsOverride {
    /// See [`IngestLimits::ingestion_rate`].
    pub ingestion_rate: Option<f64>,
    /// See [`IngestLimits::ingestion_burst_size`].
    pub ingestion_burst_size: Option<u32>,
    /// See [`IngestLimits::max_label_names_per_series`].
    pub max_label_names_per_series: Option<usize>,
    /// See [`IngestLimits::max_label_name_length`].
    pub max_label_name_length: Option<usize>,
    /// See [`IngestLimits::max_label_value_length`].
    pub max_label_value_length: Option<usize>,
    /// See [`IngestLimits::creation_grace_period_seconds`].
    pub creation_grace_period_seconds: Option<u64>,
    /// See [`IngestLimits::max_request_body_bytes`].
    pub max_request_body_bytes: Option<usize>,
    /// See [`IngestLimits::max_decompressed_bytes`].
    pub max_decompressed_bytes: Option<usize>,
    /// See [`IngestLimits::limits_per_label_set`].
    pub limits_per_label_set: Option<Vec<LabelSetLimit>>,
}

impl IngestLimitsOverride {
    fn apply(&self, base: &IngestLimits) -> IngestLimits {
        IngestLimits {
            ingestion_rate: self.ingestion_rate.unwrap_or(base.ingestion_rate),
            ingestion_burst_size: self.ingestion_burst_size.unwrap_or(base.ingestion_burst_size),
            max_label_names_per_series: self.max_label_names_per_series.unwrap_or(base.max_label_names_per_series),
            max_label_name_length: self.max_label_name_length.unwrap_or(base.max_label_name_length),
            max_label_value_length: self.max_label_value_length.unwrap_or(base.max_label_value_length),
            creation_grace_period_seconds: self
                .creation_grace_period_seconds
                .unwrap_or(base.creation_grace_period_seconds),
            max_request_body_bytes: self.max_request_body_bytes.unwrap_or(base.max_request_body_bytes),
            max_decompressed_bytes: self.max_decompressed_bytes.unwrap_or(base.max_decompressed_bytes),
            limits_per_label_set: self
                .limits_per_label_set
                .clone()
                .unwrap_or_else(|| base.limits_per_label_set.clone()),
        }
    }

    fn or(&self, lower: &Self) -> Self {
        Self {
            ingestion_rate: self.ingestion_rate.or(lower.ingestion_rate),
            ingestion_burst_size: self.ingestion_burst_size.or(lower.ingestion_burst_size),
            max_label_names_per_series: self.max_label_names_per_series.or(lower.max_label_names_per_series),
            max_label_name_length: self.max_label_name_length.or(lower.max_label_name_length),
            max_label_value_length: self.max_label_value_length.or(lower.max_label_value_length),
            creation_grace_period_seconds: self.creation_grace_period_seconds.or(lower.creation_grace_period_seconds),
            max_request_body_bytes: self.max_request_body_bytes.or(lower.max_request_body_bytes),
            max_decompressed_bytes: self.max_decompressed_bytes.or(lower.max_decompressed_bytes),
            limits_per_label_set: self.limits_per_label_set.clone().or_else(|| lower.limits_per_label_set.clone()),
        }
    }
}

/// Limits of storage (the stream workers), with AMP's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageLimits {
    /// How long samples are kept in the lake, days (AMP's
    /// `retentionPeriodInDays`): 1 to 1095, default 150.
    pub retention_period_days: u32,
    /// How far behind a series' newest sample an older one is still
    /// accepted, seconds (AMP's `outOfOrderTimeWindowInSeconds`). Default 0:
    /// every older sample is dropped as out of order.
    pub out_of_order_time_window_seconds: u64,
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self { retention_period_days: 150, out_of_order_time_window_seconds: 0 }
    }
}

/// Per-workspace overrides of [`StorageLimits`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageLimitsOverride {
    /// See [`StorageLimits::retention_period_days`].
    pub retention_period_days: Option<u32>,
    /// See [`StorageLimits::out_of_order_time_window_seconds`].
    pub out_of_order_time_window_seconds: Option<u64>,
}

impl StorageLimitsOverride {
    fn apply(&self, base: &StorageLimits) -> StorageLimits {
        StorageLimits {
            retention_period_days: self.retention_period_days.unwrap_or(base.retention_period_days),
            out_of_order_time_window_seconds: self
                .out_of_order_time_window_seconds
                .unwrap_or(base.out_of_order_time_window_seconds),
        }
    }

    fn or(&self, lower: &Self) -> Self {
        Self {
            retention_period_days: self.retention_period_days.or(lower.retention_period_days),
            out_of_order_time_window_seconds: self
                .out_of_order_time_window_seconds
                .or(lower.out_of_order_time_window_seconds),
        }
    }
}

/// Settings of rule evaluation and quotas of rule groups namespaces, with
/// AMP's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulerLimits {
    /// How far in the past rule queries evaluate, seconds (AMP's
    /// `ruleQueryOffsetInSeconds`, Prometheus's `rule_query_offset`).
    /// Default 0.
    pub query_offset_seconds: u64,
    /// Most rules in all the rule groups namespaces of a workspace.
    /// Default 2,000 (AMP's "Rules per workspace").
    pub max_rules_per_workspace: usize,
    /// Most rule groups in all the namespaces of a workspace. Default 2,000
    /// (PromLake's: AMP bounds groups only through its rules quota).
    pub max_rule_groups_per_workspace: usize,
    /// Most rule groups namespaces of a workspace. Default 1,000
    /// (PromLake's).
    pub max_rule_groups_namespaces_per_workspace: usize,
    /// Largest rules file (a namespace's `data`), bytes. Default 1 MiB
    /// (AMP's "Rule groups namespace definition file size").
    pub max_rule_groups_namespace_bytes: usize,
}

impl Default for RulerLimits {
    fn default() -> Self {
        Self {
            query_offset_seconds: 0,
            max_rules_per_workspace: 2_000,
            max_rule_groups_per_workspace: 2_000,
            max_rule_groups_namespaces_per_workspace: 1_000,
            max_rule_groups_namespace_bytes: 1 << 20,
        }
    }
}

/// Per-workspace overrides of [`RulerLimits`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulerLimitsOverride {
    /// See [`RulerLimits::query_offset_seconds`].
    pub query_offset_seconds: Option<u64>,
    /// See [`RulerLimits::max_rules_per_workspace`].
    pub max_rules_per_workspace: Option<usize>,
    /// See [`RulerLimits::max_rule_groups_per_workspace`].
    pub max_rule_groups_per_workspace: Option<usize>,
    /// See [`RulerLimits::max_rule_groups_namespaces_per_workspace`].
    pub max_rule_groups_namespaces_per_workspace: Option<usize>,
    /// See [`RulerLimits::max_rule_groups_namespace_bytes`].
    pub max_rule_groups_namespace_bytes: Option<usize>,
}

impl RulerLimitsOverride {
    fn apply(&self, base: &RulerLimits) -> RulerLimits {
        RulerLimits {
            query_offset_seconds: self.query_offset_seconds.unwrap_or(base.query_offset_seconds),
            max_rules_per_workspace: self.max_rules_per_workspace.unwrap_or(base.max_rules_per_workspace),
            max_rule_groups_per_workspace: self
                .max_rule_groups_per_workspace
                .unwrap_or(base.max_rule_groups_per_workspace),
            max_rule_groups_namespaces_per_workspace: self
                .max_rule_groups_namespaces_per_workspace
                .unwrap_or(base.max_rule_groups_namespaces_per_workspace),
            max_rule_groups_namespace_bytes: self
                .max_rule_groups_namespace_bytes
                .unwrap_or(base.max_rule_groups_namespace_bytes),
        }
    }

    fn or(&self, lower: &Self) -> Self {
        Self {
            query_offset_seconds: self.query_offset_seconds.or(lower.query_offset_seconds),
            max_rules_per_workspace: self.max_rules_per_workspace.or(lower.max_rules_per_workspace),
            max_rule_groups_per_workspace: self.max_rule_groups_per_workspace.or(lower.max_rule_groups_per_workspace),
            max_rule_groups_namespaces_per_workspace: self
                .max_rule_groups_namespaces_per_workspace
                .or(lower.max_rule_groups_namespaces_per_workspace),
            max_rule_groups_namespace_bytes: self
                .max_rule_groups_namespace_bytes
                .or(lower.max_rule_groups_namespace_bytes),
        }
    }
}

/// Quotas of a workspace's alert manager definition, with AMP's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingLimits {
    /// Largest alert manager definition (the decoded `data`), bytes.
    /// Default 1 MiB (AMP's "Alert manager definition file size").
    pub max_definition_bytes: usize,
    /// Most inhibition rules in a definition. Default 100 (AMP).
    pub max_inhibition_rules: usize,
    /// Most nodes of the routing tree, the root included. Default 100 (AMP).
    pub max_route_nodes: usize,
    /// Most template files in a definition. Default 100 (AMP).
    pub max_templates: usize,
    /// Longest `repeat_interval` of any route, seconds. Default 5 days (AMP).
    pub max_repeat_interval_seconds: u64,
    /// Most firing alerts a workspace's Alertmanager holds; a new firing
    /// alert over it is refused (429). Default 1,000 (AMP).
    pub max_active_alerts: usize,
    /// Largest total size of the alerts held (labels and annotations),
    /// bytes; an alert over it is refused (429). Default 20 MiB (AMP).
    pub max_alerts_bytes: usize,
    /// Most aggregation groups; an alert that would start another is not
    /// grouped (as Alertmanager's limit; 0: no limit). Default 1,000 (AMP).
    pub max_aggregation_groups: usize,
    /// Most silences a workspace keeps, expired ones included (as
    /// Alertmanager's `--silences.max-silences`; 0: no limit). Default
    /// 1,000.
    pub max_silences: usize,
}

impl Default for AlertingLimits {
    fn default() -> Self {
        Self {
            max_definition_bytes: 1 << 20,
            max_inhibition_rules: 100,
            max_route_nodes: 100,
            max_templates: 100,
            max_repeat_interval_seconds: 5 * 86_400,
            max_active_alerts: 1_000,
            max_alerts_bytes: 20 << 20,
            max_aggregation_groups: 1_000,
            max_silences: 1_000,
        }
    }
}

/// Per-workspace overrides of [`AlertingLimits`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingLimitsOverride {
    /// See [`AlertingLimits::max_definition_bytes`].
    pub max_definition_bytes: Option<usize>,
    /// See [`AlertingLimits::max_inhibition_rules`].
    pub max_inhibition_rules: Option<usize>,
    /// See [`AlertingLimits::max_route_nodes`].
    pub max_route_nodes: Option<usize>,
    /// See [`AlertingLimits::max_templates`].
    pub max_templates: Option<usize>,
    /// See [`AlertingLimits::max_repeat_interval_seconds`].
    pub max_repeat_interval_seconds: Option<u64>,
    /// See [`AlertingLimits::max_active_alerts`].
    pub max_active_alerts: Option<usize>,
    /// See [`AlertingLimits::max_alerts_bytes`].
    pub max_alerts_bytes: Option<usize>,
    /// See [`AlertingLimits::max_aggregation_groups`].
    pub max_aggregation_groups: Option<usize>,
    /// See [`AlertingLimits::max_silences`].
    pub max_silences: Option<usize>,
}

impl AlertingLimitsOverride {
    fn apply(&self, base: &AlertingLimits) -> AlertingLimits {
        AlertingLimits {
            max_definition_bytes: self.max_definition_bytes.unwrap_or(base.max_definition_bytes),
            max_inhibition_rules: self.max_inhibition_rules.unwrap_or(base.max_inhibition_rules),
            max_route_nodes: self.max_route_nodes.unwrap_or(base.max_route_nodes),
            max_templates: self.max_templates.unwrap_or(base.max_templates),
            max_repeat_interval_seconds: self.max_repeat_interval_seconds.unwrap_or(base.max_repeat_interval_seconds),
            max_active_alerts: self.max_active_alerts.unwrap_or(base.max_active_alerts),
            max_alerts_bytes: self.max_alerts_bytes.unwrap_or(base.max_alerts_bytes),
            max_aggregation_groups: self.max_aggregation_groups.unwrap_or(base.max_aggregation_groups),
            max_silences: self.max_silences.unwrap_or(base.max_silences),
        }
    }

    fn or(&self, lower: &Self) -> Self {
        Self {
            max_definition_bytes: self.max_definition_bytes.or(lower.max_definition_bytes),
            max_inhibition_rules: self.max_inhibition_rules.or(lower.max_inhibition_rules),
            max_route_nodes: self.max_route_nodes.or(lower.max_route_nodes),
            max_templates: self.max_templates.or(lower.max_templates),
            max_repeat_interval_seconds: self.max_repeat_interval_seconds.or(lower.max_repeat_interval_seconds),
            max_active_alerts: self.max_active_alerts.or(lower.max_active_alerts),
            max_alerts_bytes: self.max_alerts_bytes.or(lower.max_alerts_bytes),
            max_aggregation_groups: self.max_aggregation_groups.or(lower.max_aggregation_groups),
            max_silences: self.max_silences.or(lower.max_silences),
        }
    }
}

/// Limits of the query path (the Prometheus HTTP API and the engine).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Most samples one query may load from storage (tables and head
    /// together) plus the step points it computes. Default 50,000,000
    /// (Prometheus's `--query.max-samples`, counted here cumulatively rather
    /// than as the peak held at once, so stricter). 0: no limit.
    pub max_samples: usize,
    /// Most series one query may fetch, over all its selectors. Default 0:
    /// no limit (Mimir's `max_fetched_series_per_query`).
    pub max_fetched_series: usize,
    /// Longest time range of a range query, days. Default 32 (AMP). 0: no
    /// limit.
    pub max_query_length_days: u32,
    /// A query's timeout when the request gives none or a longer one,
    /// seconds. Default 120 (Prometheus's `--query.timeout`).
    pub timeout_seconds: u64,
    /// Most points a range query may return per series (Prometheus's fixed
    /// 11,000).
    pub max_points_per_series: i64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_samples: 50_000_000,
            max_fetched_series: 0,
            max_query_length_days: 32,
            timeout_seconds: 120,
            max_points_per_series: 11_000,
        }
    }
}

/// Per-workspace overrides of [`QueryLimits`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimitsOverride {
    /// See [`QueryLimits::max_samples`].
    pub max_samples: Option<usize>,
    /// See [`QueryLimits::max_fetched_series`].
    pub max_fetched_series: Option<usize>,
    /// See [`QueryLimits::max_query_length_days`].
    pub max_query_length_days: Option<u32>,
    /// See [`QueryLimits::timeout_seconds`].
    pub timeout_seconds: Option<u64>,
}

impl QueryLimitsOverride {
    fn apply(&self, base: &QueryLimits) -> QueryLimits {
        QueryLimits {
            max_samples: self.max_samples.unwrap_or(base.max_samples),
            max_fetched_series: self.max_fetched_series.unwrap_or(base.max_fetched_series),
            max_query_length_days: self.max_query_length_days.unwrap_or(base.max_query_length_days),
            timeout_seconds: self.timeout_seconds.unwrap_or(base.timeout_seconds),
            max_points_per_series: base.max_points_per_series,
        }
    }

    fn or(&self, lower: &Self) -> Self {
        Self {
            max_samples: self.max_samples.or(lower.max_samples),
            max_fetched_series: self.max_fetched_series.or(lower.max_fetched_series),
            max_query_length_days: self.max_query_length_days.or(lower.max_query_length_days),
            timeout_seconds: self.timeout_seconds.or(lower.timeout_seconds),
        }
    }
}

/// The range AMP accepts for `retentionPeriodInDays`.
pub const RETENTION_PERIOD_DAYS: std::ops::RangeInclusive<u32> = 1..=1095;
/// The range AMP accepts for `outOfOrderTimeWindowInSeconds`.
pub const OUT_OF_ORDER_WINDOW_SECONDS: std::ops::RangeInclusive<u64> = 0..=600;
/// The range AMP accepts for `ruleQueryOffsetInSeconds`.
pub const RULE_QUERY_OFFSET_SECONDS: std::ops::RangeInclusive<u64> = 0..=86_400;

/// The `[limits]` table of the config file: defaults per component and
/// overrides per workspace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Ingest defaults.
    pub ingest: IngestLimits,
    /// Storage defaults.
    pub storage: StorageLimits,
    /// Query defaults.
    pub query: QueryLimits,
    /// Rule evaluation defaults.
    pub ruler: RulerLimits,
    /// Alert manager definition quotas.
    pub alerting: AlertingLimits,
    /// Per-workspace overrides, keyed by workspace id:
    /// `[limits.overrides."ws-…".ingest]`.
    pub overrides: HashMap<String, WorkspaceOverride>,
}

/// The overrides of one workspace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspaceOverride {
    /// Ingest overrides.
    pub ingest: IngestLimitsOverride,
    /// Storage overrides.
    pub storage: StorageLimitsOverride,
    /// Query overrides.
    pub query: QueryLimitsOverride,
    /// Rule evaluation overrides.
    pub ruler: RulerLimitsOverride,
    /// Alert manager definition quota overrides.
    pub alerting: AlertingLimitsOverride,
}

impl WorkspaceOverride {
    /// This override's fields where set, `lower`'s elsewhere.
    pub fn or(&self, lower: &Self) -> Self {
        Self {
            ingest: self.ingest.or(&lower.ingest),
            storage: self.storage.or(&lower.storage),
            query: self.query.or(&lower.query),
            ruler: self.ruler.or(&lower.ruler),
            alerting: self.alerting.or(&lower.alerting),
        }
    }
}

/// The one place limits are read from: defaults plus per-workspace
/// overrides (config file and API), hot-swappable.
#[derive(Debug)]
pub struct Overrides {
    state: ArcSwap<Resolved>,
    /// The sources `state` is resolved from; writers hold the lock while
    /// they swap `state`, so two updates never lose one another.
    sources: std::sync::Mutex<Sources>,
}

#[derive(Debug, Clone)]
struct Sources {
    config: Limits,
    api: HashMap<String, WorkspaceOverride>,
}

#[derive(Debug)]
struct Resolved {
    ingest_default: Arc<IngestLimits>,
    ingest: HashMap<String, Arc<IngestLimits>>,
    storage_default: Arc<StorageLimits>,
    storage: HashMap<String, Arc<StorageLimits>>,
    query_default: Arc<QueryLimits>,
    query: HashMap<String, Arc<QueryLimits>>,
    ruler_default: Arc<RulerLimits>,
    ruler: HashMap<String, Arc<RulerLimits>>,
    alerting_default: Arc<AlertingLimits>,
    alerting: HashMap<String, Arc<AlertingLimits>>,
}

impl Resolved {
    fn new(sources: &Sources) -> Self {
        let limits = &sources.config;
        let none = WorkspaceOverride::default();
        let mut merged: HashMap<&str, WorkspaceOverride> = HashMap::new();
        for ws in limits.overrides.keys().chain(sources.api.keys()) {
            let api = sources.api.get(ws).unwrap_or(&none);
            let config = limits.overrides.get(ws).unwrap_or(&none);
            merged.insert(ws, api.or(config));
        }
        let mut resolved = Self {
            ingest_default: Arc::new(limits.ingest.clone()),
            ingest: HashMap::new(),
            storage_default: Arc::new(limits.storage.clone()),
            storage: HashMap::new(),
            query_default: Arc::new(limits.query.clone()),
            query: HashMap::new(),
            ruler_default: Arc::new(limits.ruler.clone()),
            ruler: HashMap::new(),
            alerting_default: Arc::new(limits.alerting.clone()),
            alerting: HashMap::new(),
        };
        for (ws, o) in merged {
            resolved.ingest.insert(ws.to_owned(), Arc::new(o.ingest.apply(&limits.ingest)));
            resolved.storage.insert(ws.to_owned(), Arc::new(o.storage.apply(&limits.storage)));
            resolved.query.insert(ws.to_owned(), Arc::new(o.query.apply(&limits.query)));
            resolved.ruler.insert(ws.to_owned(), Arc::new(o.ruler.apply(&limits.ruler)));
            resolved.alerting.insert(ws.to_owned(), Arc::new(o.alerting.apply(&limits.alerting)));
        }
        resolved
    }
}

impl Overrides {
    /// Overrides resolving `limits` (the config file's), with no API values.
    pub fn new(limits: &Limits) -> Self {
        let sources = Sources { config: limits.clone(), api: HashMap::new() };
        Self { state: ArcSwap::from_pointee(Resolved::new(&sources)), sources: std::sync::Mutex::new(sources) }
    }

    /// Replaces the config file's limits (hot reload); readers never block.
    pub fn replace(&self, limits: &Limits) {
        self.update(|s| s.config = limits.clone());
    }

    /// Replaces every value set through the API, keyed by workspace id
    /// (the control plane's view of every workspace's configuration).
    pub fn set_api_overrides(&self, api: HashMap<String, WorkspaceOverride>) {
        self.update(|s| {
            if s.api != api {
                s.api = api;
            }
        });
    }

    /// Sets (or, with `None`, removes) the values set through the API for
    /// one workspace.
    pub fn set_api_override(&self, workspace_id: &str, api: Option<WorkspaceOverride>) {
        self.update(|s| match api {
            Some(o) => {
                s.api.insert(workspace_id.to_owned(), o);
            }
            None => {
                s.api.remove(workspace_id);
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut Sources)) {
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = sources.clone();
        change(&mut sources);
        if before.api != sources.api || before.config != sources.config {
            self.state.store(Arc::new(Resolved::new(&sources)));
        }
    }

    /// Every ingest limit of `workspace_id`.
    pub fn ingest(&self, workspace_id: &str) -> Arc<IngestLimits> {
        let state = self.state.load();
        state.ingest.get(workspace_id).unwrap_or(&state.ingest_default).clone()
    }

    /// Every storage limit of `workspace_id`.
    pub fn storage(&self, workspace_id: &str) -> Arc<StorageLimits> {
        let state = self.state.load();
        state.storage.get(workspace_id).unwrap_or(&state.storage_default).clone()
    }

    /// Every query limit of `workspace_id`.
    pub fn query(&self, workspace_id: &str) -> Arc<QueryLimits> {
        let state = self.state.load();
        state.query.get(workspace_id).unwrap_or(&state.query_default).clone()
    }

    /// Every rule-evaluation setting of `workspace_id`.
    pub fn ruler(&self, workspace_id: &str) -> Arc<RulerLimits> {
        let state = self.state.load();
        state.ruler.get(workspace_id).unwrap_or(&state.ruler_default).clone()
    }

    /// Every alert manager definition quota of `workspace_id`.
    pub fn alerting(&self, workspace_id: &str) -> Arc<AlertingLimits> {
        let state = self.state.load();
        state.alerting.get(workspace_id).unwrap_or(&state.alerting_default).clone()
    }

    /// How long the lake keeps a workspace's samples, days.
    pub fn retention_period_days(&self, workspace_id: &str) -> u32 {
        self.storage(workspace_id).retention_period_days
    }

    /// A workspace's out-of-order window, milliseconds.
    pub fn out_of_order_window_ms(&self, workspace_id: &str) -> u64 {
        self.storage(workspace_id).out_of_order_time_window_seconds.saturating_mul(1000)
    }

    /// The ingestion rate (samples/s) and burst (samples) of a workspace.
    pub fn ingestion_rate(&self, workspace_id: &str) -> (f64, u32) {
        let l = self.ingest(workspace_id);
        (l.ingestion_rate, l.ingestion_burst_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_the_fields_they_set() {
        let limits: Limits = toml_like();
        let o = Overrides::new(&limits);
        assert_eq!(o.ingestion_rate("ws-other"), (140_000.0, 1_000_000));
        let l = o.ingest("ws-a");
        assert_eq!(l.ingestion_rate, 10.0);
        assert_eq!(l.ingestion_burst_size, 1_000_000);
        assert_eq!(l.max_label_names_per_series, 70);
        assert_eq!(o.retention_period_days("ws-a"), 7);
        assert_eq!(o.retention_period_days("ws-other"), 150);
        assert_eq!(o.out_of_order_window_ms("ws-a"), 0);
        assert_eq!(o.query("ws-a").max_samples, 1000);
        assert_eq!(o.query("ws-a").timeout_seconds, 120);
        assert_eq!(o.query("ws-other").max_samples, 50_000_000);
        assert_eq!(o.alerting("ws-a").max_route_nodes, 3);
        assert_eq!(o.alerting("ws-a").max_templates, 100);
        assert_eq!(o.alerting("ws-other").max_route_nodes, 100);
    }

    #[test]
    fn api_values_win_over_the_config_file_field_by_field() {
        let o = Overrides::new(&toml_like());
        let mut api = WorkspaceOverride::default();
        api.storage.out_of_order_time_window_seconds = Some(30);
        api.ruler.query_offset_seconds = Some(60);
        o.set_api_override("ws-a", Some(api.clone()));
        // The config file's retention (7) stays; the API's window applies.
        assert_eq!(o.retention_period_days("ws-a"), 7);
        assert_eq!(o.out_of_order_window_ms("ws-a"), 30_000);
        assert_eq!(o.ruler("ws-a").query_offset_seconds, 60);
        assert_eq!(o.ruler("ws-other").query_offset_seconds, 0);
        api.storage.retention_period_days = Some(3);
        o.set_api_overrides(HashMap::from([("ws-a".to_owned(), api.clone()), ("ws-b".to_owned(), api)]));
        assert_eq!(o.retention_period_days("ws-a"), 3);
        assert_eq!(o.retention_period_days("ws-b"), 3);
        assert_eq!(o.ingestion_rate("ws-a").0, 10.0);
        // A config reload keeps the API's values.
        o.replace(&Limits::default());
        assert_eq!(o.retention_period_days("ws-a"), 3);
        assert_eq!(o.ingestion_rate("ws-a").0, 140_000.0);
        o.set_api_override("ws-a", None);
        assert_eq!(o.retention_period_days("ws-a"), 150);
    }

    fn toml_like() -> Limits {
        let mut limits = Limits::default();
        let mut ov = WorkspaceOverride::default();
        ov.ingest.ingestion_rate = Some(10.0);
        ov.storage.retention_period_days = Some(7);
        ov.query.max_samples = Some(1000);
        ov.alerting.max_route_nodes = Some(3);
        limits.overrides.insert("ws-a".into(), ov);
        limits
    }
}
