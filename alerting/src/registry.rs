//! The workspaces' Alertmanagers in this process: one per active
//! workspace whose alert manager definition is in effect, kept in step
//! with the control plane (read every second, as the ruler reads rule
//! namespaces). A changed definition is applied as Alertmanager's reload
//! (alerts, silences and notification log kept); a change that failed
//! (`UPDATE_FAILED`) leaves the running one as it was; a removed definition
//! or workspace stops its Alertmanager and deletes its state. Also the
//! ruler's in-process [`AlertSink`].

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

use crate::engine::Change;
use crate::notify::Notifier;
use crate::service::{Alertmanager, PostOutcome};
use crate::state::StateStore;

/// How often definitions are read.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Running {
    /// The definition's text it runs.
    data: String,
    /// The limits it runs with.
    limits: common::limits::AlertingLimits,
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
    state: Arc<dyn StateStore>,
    /// What templates see as `.ExternalURL`: this base and
    /// `/workspaces/{id}/alertmanager`.
    external_base: String,
    running: Mutex<BTreeMap<String, Running>>,
    /// The state read from the log at the first sync, until each
    /// workspace's Alertmanager starts from it.
    restored: tokio::sync::Mutex<Option<BTreeMap<String, Vec<Change>>>>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
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
    /// the workspaces' Alertmanagers, from the state kept in `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn ControlPlaneStore>,
        arns: ArnScheme,
        overrides: Arc<Overrides>,
        clock: Arc<dyn Clock>,
        notifier: Arc<dyn Notifier>,
        state: Arc<dyn StateStore>,
        external_base: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            arns,
            overrides,
            clock,
            notifier,
            state,
            external_base: external_base.trim_end_matches('/').to_owned(),
            running: Mutex::new(BTreeMap::new()),
            restored: tokio::sync::Mutex::new(None),
            syncing: tokio::sync::Mutex::new(()),
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

    /// Brings the running Alertmanagers in step with the control plane
    /// (reading the stored state first, once).
    ///
    /// # Errors
    /// The stored state could not be read (nothing is started then).
    pub async fn sync(&self) -> Result<(), String> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut restored = self.restored.lock().await;
        if restored.is_none() {
            *restored = Some(self.state.load().await?);
        }
        let (left, removed) = self.sync_with(restored.take().unwrap_or_default());
        *restored = Some(left);
        drop(restored);
        for am in removed {
            am.forget().await;
        }
        Ok(())
    }

    /// One pass: returns the restored state not used yet and the
    /// Alertmanagers removed (to forget).
    fn sync_with(
        &self,
        mut restored: BTreeMap<String, Vec<Change>>,
    ) -> (BTreeMap<String, Vec<Change>>, Vec<Arc<Alertmanager>>) {
        let mut desired: BTreeMap<String, String> = BTreeMap::new();
        // Workspaces whose definition exists but is not in effect (a change
        // that failed): their running Alertmanager goes on as it was.
        let mut failed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (_, doc) in self.store.list(&self.arns.all_alert_manager_definitions_prefix()) {
            let Ok(record) = serde_json::from_value::<AlertManagerDefinitionRecord>(doc) else { continue };
            if !self.workspace_active(&record.workspace_id) {
                continue;
            }
            if record.is_in_effect() {
                desired.insert(record.workspace_id, record.data);
            } else if matches!(
                record.status.status_code,
                common::alertmanager::AlertManagerDefinitionStatusCode::UpdateFailed
            ) {
                failed.insert(record.workspace_id);
            }
        }
        let now = self.clock.now_ms();
        let mut running = self.lock();
        let mut removed = Vec::new();
        running.retain(|ws, r| {
            let keep = desired.contains_key(ws) || failed.contains(ws);
            if !keep {
                r.am.stop();
                removed.push(r.am.clone());
                tracing::info!(workspace = %ws, "Stopped the workspace's Alertmanager.");
            }
            keep
        });
        for (ws, data) in desired {
            let limits = (*self.overrides.alerting(&ws)).clone();
            if running.get(&ws).is_some_and(|r| r.data == data && r.limits == limits) {
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
            match running.get_mut(&ws) {
                Some(r) => {
                    r.am.reconfigure(&definition, &data, limits.clone(), now);
                    r.data = data;
                    r.limits = limits;
                    tracing::info!(workspace = %ws, "Applied the workspace's new alert manager definition.");
                }
                None => {
                    let am = Alertmanager::start(
                        &ws,
                        &definition,
                        &data,
                        limits.clone(),
                        &format!("{}/workspaces/{ws}/alertmanager", self.external_base),
                        self.notifier.clone(),
                        self.clock.clone(),
                        self.state.clone(),
                        restored.remove(&ws).unwrap_or_default(),
                    );
                    tracing::info!(workspace = %ws, "Started the workspace's Alertmanager.");
                    running.insert(ws, Running { data, limits, am });
                }
            }
        }
        (restored, removed)
    }

    /// Syncs every second until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "Could not read the alerting state; retrying.");
            }
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
        match am.post_alerts(&body).await {
            Ok(PostOutcome::Stored) => Ok(()),
            Ok(PostOutcome::Invalid(m)) => Err(SeamError { kind: ErrorKind::BadData, message: m }),
            Ok(PostOutcome::Limited(m)) => Err(SeamError { kind: ErrorKind::LimitExceeded, message: m }),
            Ok(PostOutcome::Unavailable(m)) => Err(SeamError { kind: ErrorKind::Unavailable, message: m }),
            Err(e) => Err(SeamError { kind: ErrorKind::BadData, message: e.message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::clock::SystemClock;
    use common::control::MemoryControlStore;

    #[tokio::test]
    async fn alertmanagers_follow_the_definitions_and_survive_a_failed_update() {
        let store = Arc::new(MemoryControlStore::default());
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() };
        let ws = serde_json::json!({"workspaceId": "ws-1", "arn": arns.workspace("ws-1"), "status": "ACTIVE",
            "createdAt": 0.0, "samplesTopic": "promlake.ws.ws-1.samples"});
        store.put(&arns.workspace("ws-1"), ws).await.unwrap();
        let definition = |code: &str| {
            serde_json::json!({"workspaceId": "ws-1", "status": {"statusCode": code},
                "data": "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r}]\n",
                "createdAt": 0.0, "modifiedAt": 0.0})
        };
        let ams = Alertmanagers::new(
            store.clone(),
            arns.clone(),
            Arc::new(Overrides::new(&common::limits::Limits::default())),
            Arc::new(SystemClock),
            Arc::new(crate::notify::HttpNotifier::new()),
            Arc::new(crate::state::InMemory),
            "http://promlake",
        );
        ams.sync().await.unwrap();
        assert_eq!(ams.get("ws-1").err(), Some(Missing::Definition));
        assert_eq!(ams.get("ws-2").err(), Some(Missing::Workspace));
        store.put(&arns.alert_manager_definition("ws-1"), definition("ACTIVE")).await.unwrap();
        ams.sync().await.unwrap();
        let running = ams.get("ws-1").unwrap();
        // A failed update leaves the running Alertmanager as it was.
        store.put(&arns.alert_manager_definition("ws-1"), definition("UPDATE_FAILED")).await.unwrap();
        ams.sync().await.unwrap();
        assert!(Arc::ptr_eq(&running, &ams.get("ws-1").unwrap()));
        store.delete(&arns.alert_manager_definition("ws-1")).await.unwrap();
        ams.sync().await.unwrap();
        assert_eq!(ams.get("ws-1").err(), Some(Missing::Definition));
    }
}
