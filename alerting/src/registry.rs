//! The workspaces' Alertmanagers in this process: one per active
//! workspace whose alert manager definition is in effect, kept in step
//! with the control plane (read every second, as the ruler reads rule
//! namespaces). A changed definition is applied as Alertmanager's reload
//! (alerts, silences and notification log kept); a removed definition or
//! workspace stops its Alertmanager. Also the ruler's in-process
//! [`AlertSink`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::alertmanager::AlertManagerDefinitionRecord;
use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::error::ErrorKind;
use common::limits::Overrides;
use common::seams::{AlertSink, SeamError};
use common::workspace::WorkspaceRecord;
use tokio_util::sync::CancellationToken;

use crate::notify::Notifier;
use crate::service::{Alertmanager, PostOutcome};

/// How often definitions are read.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Running {
    /// The definition's text it runs.
    data: String,
    am: Arc<Alertmanager>,
}

/// The Alertmanagers of this process, by workspace.
#[derive(Debug)]
pub struct Alertmanagers {
    store: Arc<dyn ControlPlaneStore>,
    arns: ArnScheme,
    overrides: Arc<Overrides>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn Notifier>,
    /// What templates see as `.ExternalURL`: this base and
    /// `/workspaces/{id}/alertmanager`.
    external_base: String,
    running: Mutex<BTreeMap<String, Running>>,
}

/// Why a workspace's Alertmanager is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The workspace does not exist or is not active.
    Workspace,
    /// It has no alert manager definition in effect.
    Definition,
}

impl Alertmanagers {
    /// The registry; call [`Self::sync`] (or run [`Self::run`]) to start
    /// the workspaces' Alertmanagers.
    pub fn new(
        store: Arc<dyn ControlPlaneStore>,
        arns: ArnScheme,
        overrides: Arc<Overrides>,
        clock: Arc<dyn Clock>,
        notifier: Arc<dyn Notifier>,
        external_base: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            arns,
            overrides,
            clock,
            notifier,
            external_base: external_base.trim_end_matches('/').to_owned(),
            running: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn workspace_active(&self, workspace_id: &str) -> bool {
        self.store
            .get(&self.arns.workspace(workspace_id))
            .and_then(|w| serde_json::from_value::<WorkspaceRecord>(w).ok())
            .is_some_and(|w| w.is_active())
    }

    /// The workspace's Alertmanager.
    ///
    /// # Errors
    /// [`Missing`]: no such active workspace, or no definition in effect.
    pub fn get(&self, workspace_id: &str) -> Result<Arc<Alertmanager>, Missing> {
        if let Some(r) = self.lock().get(workspace_id) {
            return Ok(r.am.clone());
        }
        if self.workspace_active(workspace_id) { Err(Missing::Definition) } else { Err(Missing::Workspace) }
    }

    /// Brings the running Alertmanagers in step with the control plane.
    pub fn sync(&self) {
        let mut desired: BTreeMap<String, String> = BTreeMap::new();
        for (_, doc) in self.store.list(&self.arns.all_alert_manager_definitions_prefix()) {
            let Ok(record) = serde_json::from_value::<AlertManagerDefinitionRecord>(doc) else { continue };
            if record.is_in_effect() && self.workspace_active(&record.workspace_id) {
                desired.insert(record.workspace_id, record.data);
            }
        }
        let now = self.clock.now_ms();
        let mut running = self.lock();
        running.retain(|ws, r| {
            let keep = desired.contains_key(ws);
            if !keep {
                r.am.stop();
                tracing::info!(workspace = %ws, "Stopped the workspace's Alertmanager.");
            }
            keep
        });
        for (ws, data) in desired {
            if running.get(&ws).is_some_and(|r| r.data == data) {
                continue;
            }
            // Definitions were validated when put; one that no longer
            // parses (a newer PromLake's checks) keeps the old one running.
            let definition = match amconfig::parse_definition(&data) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, "The alert manager definition does not load.");
                    continue;
                }
            };
            let limits = (*self.overrides.alerting(&ws)).clone();
            match running.get_mut(&ws) {
                Some(r) => {
                    r.am.reconfigure(&definition, &data, limits, now);
                    r.data = data;
                    tracing::info!(workspace = %ws, "Applied the workspace's new alert manager definition.");
                }
                None => {
                    let am = Alertmanager::start(
                        &definition,
                        &data,
                        limits,
                        &format!("{}/workspaces/{ws}/alertmanager", self.external_base),
                        self.notifier.clone(),
                        self.clock.clone(),
                    );
                    tracing::info!(workspace = %ws, "Started the workspace's Alertmanager.");
                    running.insert(ws, Running { data, am });
                }
            }
        }
    }

    /// Syncs every second until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            self.sync();
            tokio::select! {
                () = tokio::time::sleep(SYNC_INTERVAL) => {}
                () = stop.cancelled() => break,
            }
        }
        for r in self.lock().values() {
            r.am.stop();
        }
    }
}

/// The ruler's alerts, posted to the workspace's Alertmanager in this
/// process. A workspace without an alert manager definition has nowhere
/// to send them: they are dropped, as when no Alertmanager is configured.
#[async_trait]
impl AlertSink for Alertmanagers {
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
        let Ok(am) = self.get(workspace_id) else { return Ok(()) };
        let body =
            serde_json::to_vec(&alerts).map_err(|e| SeamError { kind: ErrorKind::Internal, message: e.to_string() })?;
        match am.post_alerts(&body) {
            Ok(PostOutcome::Stored) => Ok(()),
            Ok(PostOutcome::Invalid(m)) => Err(SeamError { kind: ErrorKind::BadData, message: m }),
            Ok(PostOutcome::Limited(m)) => Err(SeamError { kind: ErrorKind::LimitExceeded, message: m }),
            Err(e) => Err(SeamError { kind: ErrorKind::BadData, message: e.message }),
        }
    }
}
