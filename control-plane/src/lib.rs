//! The control plane: AMP-compatible management of workspaces, with its state
//! kept in the log.
//!
//! ```text
//!  POST /workspaces ──► WorkspaceService ──► ControlPlaneStore::put ──► _control topic
//!  GET  /workspaces/{id}        │                  (key = ARN, value = JSON,          │
//!                               │                   tombstone = deleted, compacted)   │
//!                               └──► Log::ensure_topic(samples topic)                 │
//!                                                                                     ▼
//!            every process: LogControlStore tails _control ──► in-memory map ──► get/list
//! ```
//!
//! Guarantees:
//! - A mutation is answered only after its record is durable in `_control`
//!   and applied to this process's view (read-your-writes).
//! - State survives restarts: on start the store replays `_control` from its
//!   first offset before serving. Workspaces left `CREATING` by a crash are
//!   finished on start ([`WorkspaceService::reconcile`]).
//! - Other processes sharing the log see a change as soon as their tail
//!   reads it.
//!
//! Operations (AMP's `amp` model): workspaces (create, describe, list,
//! update alias, delete), workspace configuration (describe, update:
//! `retentionPeriodInDays`, `outOfOrderTimeWindowInSeconds`,
//! `ruleQueryOffsetInSeconds`, `limitsPerLabelSet` — enforced by the
//! gateway), rule groups namespaces (create, put, describe, list, delete:
//! Prometheus rules files validated as `promtool check rules` does, within
//! the workspace's rule quotas; `rule_groups.rs`), the alert manager
//! definition (create, put, describe, delete: AMP's YAML document validated
//! as `amtool check-config` does, within the workspace's alerting quotas;
//! `alertmanager.rs`), tags of any resource (tag, untag, list).
//!
//! - Configuration values are stored in the workspace's record and applied
//!   to the API layer of `common::limits::Overrides` — at once in the
//!   process that served the update, by [`sync_overrides`] in every process
//!   — so the stream workers, the gateway and the ruler read them in the one
//!   limits place. A field PromLake cannot honour (`kmsKeyArn`) is refused
//!   with `ValidationException`.
//! - Deletion records the workspace `DELETING` (the data plane refuses it
//!   from then on, and the 202 answer comes after that is durable), then
//!   deletes its lake tables (through `common::seams::WorkspaceData` where
//!   this process runs the stream workers), its log topic and last its
//!   record; a crash in between is finished by [`WorkspaceService::reconcile`].
//! - Workspace events (rule evaluation failures, notification errors) are
//!   appended to the `_events` topic by [`LogEvents`] (the log a logging
//!   configuration API will expose).
//! - Every error is mapped to AWS's JSON shape and `x-amzn-ErrorType` in one
//!   place (`error.rs`); every request member is checked against the
//!   model's constraints in one place (`validate.rs`).

mod alertmanager;
mod error;
mod events;
mod http;
mod rule_groups;
mod store;
mod validate;
mod workspaces;

pub use alertmanager::AlertManagerDefinitionRequest;
pub use error::{Error, Result};
pub use events::LogEvents;
pub use http::router;
pub use rule_groups::{
    CreateRuleGroupsNamespace, PutRuleGroupsNamespace, RuleGroupsNamespacePage, all_rule_groups_namespaces,
};
pub use store::LogControlStore;
pub use workspaces::{
    CreateWorkspace, EffectiveConfiguration, LimitsPerLabelSet, LimitsPerLabelSetEntry, RECONCILE_INTERVAL,
    UpdateAlias, UpdateConfiguration, WorkspaceConfig, WorkspacePage, WorkspaceService, all_workspaces, sync_overrides,
};
