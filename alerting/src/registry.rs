//! The workspaces' Alertmanagers in this process: one per active
//! workspace whose alert manager definition is in effect and whose state
//! partition this process owns, kept in step with the control plane (read
//! every second, as the ruler reads rule namespaces). A changed definition
//! is applied as Alertmanager's reload (alerts, silences and notification
//! log kept); a change that failed (`UPDATE_FAILED`) leaves the running one
//! as it was; a removed definition or workspace stops its Alertmanager and
//! deletes its state. Also the ruler's in-process [`AlertSink`].
//!
//! One owner per workspace: the registry is the [`PartitionOwner`] of the
//! `_alerting` topic's partitions ([`crate::state`] keeps each workspace's
//! state in one of them). A [`common::membership::Membership`] hands them
//! out — all of them to the one process on the embedded log, each to one
//! member of the Kafka consumer group [`MEMBERSHIP_GROUP`] when several
//! alerting processes run:
//!
//! ```text
//!  assigned([_alerting/3]) ─► read partition 3's state ─► start its workspaces' Alertmanagers from it
//!  revoked([_alerting/3])  ─► stop flushing, let deliveries finish, save ─► return (the next owner reads it)
//! ```
//!
//! A process that died is replaced after the group's session timeout; its
//! successor resumes from what it saved (a notification delivered but not
//! yet logged is sent again, once, as after a restart). Ownership is
//! advisory: while a rebalance is in progress two processes may briefly
//! both run a workspace.

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
use common::membership::{PartitionOwner, TopicPartition};
use common::seams::{AlertSink, SeamError};
use common::workspace::WorkspaceRecord;
use tokio_util::sync::CancellationToken;

use crate::engine::Change;
use crate::notify::Notifier;
use crate::service::{Alertmanager, PostOutcome};
use crate::state::{InboxBatch, StateStore};

/// How often definitions are read.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How long a revoked workspace's deliveries in flight may take to finish
/// before they are abandoned (and sent again by the successor).
const HANDOVER_GRACE: Duration = Duration::from_secs(5);

/// The Kafka consumer group in which alerting processes share the
/// `_alerting` partitions.
pub const MEMBERSHIP_GROUP: &str = "promlake-alerting";

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
    /// Which `_alerting` partitions this process owns.
    partitions: Mutex<Partitions>,
    /// The state read from owned partitions, until each workspace's
    /// Alertmanager starts from it.
    restored: tokio::sync::Mutex<BTreeMap<String, Vec<Change>>>,
    /// One sync pass (or revocation) at a time.
    syncing: tokio::sync::Mutex<()>,
    /// One reader of assigned partitions at a time.
    loading: tokio::sync::Mutex<()>,
    /// Wakes [`Self::run`] for an early sync (partitions were assigned).
    wake: tokio::sync::Notify,
    /// The URL other processes reach this one at, announced for the
    /// partitions it owns (requests for their workspaces are forwarded
    /// there).
    advertised: Mutex<Option<String>>,
}

/// The `_alerting` partitions of this process.
#[derive(Debug, Default)]
struct Partitions {
    /// Assigned, state not read yet (read at the next sync).
    pending: std::collections::BTreeSet<u32>,
    /// Assigned and read: their workspaces run here.
    owned: std::collections::BTreeSet<u32>,
    /// Stops the task applying each owned partition's inbox.
    inboxes: BTreeMap<u32, CancellationToken>,
}

/// Why a workspace's Alertmanager is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The workspace does not exist or is not active.
    Workspace,
    /// It has no alert manager definition in effect.
    Definition,
    /// It runs in another process (this one does not own its partition).
    Elsewhere,
}

impl Alertmanagers {
    /// The registry; once partitions are assigned to it (as a
    /// [`PartitionOwner`]), [`Self::sync`] (or [`Self::run`]) starts their
    /// workspaces' Alertmanagers from the state kept in `state`.
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
            partitions: Mutex::new(Partitions::default()),
            restored: tokio::sync::Mutex::new(BTreeMap::new()),
            syncing: tokio::sync::Mutex::new(()),
            loading: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            advertised: Mutex::new(None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn partitions(&self) -> std::sync::MutexGuard<'_, Partitions> {
        self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn partition_of(&self, workspace_id: &str) -> u32 {
        schemas::topics::alerting_partition(workspace_id, self.state.partitions())
    }

    /// The workspace's alerting limits.
    pub fn limits(&self, workspace_id: &str) -> Arc<common::limits::AlertingLimits> {
        self.overrides.alerting(workspace_id)
    }

    /// Sets the URL this process is reached at (announced at each sync for
    /// the partitions it owns).
    pub fn advertise(&self, url: &str) {
        *self.advertised.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(url.trim_end_matches('/').to_owned());
        self.wake.notify_one();
    }

    fn advertised(&self) -> Option<String> {
        self.advertised.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The URL of the process that announced it runs the workspace's
    /// Alertmanager (`None`: none did, or it is this one).
    pub fn owner_url(&self, workspace_id: &str) -> Option<String> {
        let key = self.arns.alerting_partition_owner(self.partition_of(workspace_id));
        let url = self.store.get(&key)?.get("url")?.as_str()?.to_owned();
        (Some(&url) != self.advertised().as_ref()).then_some(url)
    }

    /// Announces this process as the owner of the partitions it owns
    /// (where another process's announcement stands).
    async fn announce(&self) -> Result<(), String> {
        let Some(url) = self.advertised() else { return Ok(()) };
        let owned: Vec<u32> = self.partitions().owned.iter().copied().collect();
        for p in owned {
            let key = self.arns.alerting_partition_owner(p);
            if self.store.get(&key).is_some_and(|d| d.get("url").and_then(|u| u.as_str()) == Some(&url)) {
                continue;
            }
            self.store
                .put(&key, serde_json::json!({"url": url, "sinceMs": self.clock.now_ms()}))
                .await
                .map_err(|e| format!("announcing the owner of alerting partition {p}: {e}"))?;
        }
        Ok(())
    }

    /// Whether this process runs the workspace's Alertmanager (owns its
    /// partition).
    pub fn owns(&self, workspace_id: &str) -> bool {
        self.partitions().owned.contains(&self.partition_of(workspace_id))
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
        let owns = {
            // Ownership read under `running`, as a sync pass changes both.
            let running = self.lock();
            if let Some(r) = running.get(workspace_id) {
                return Ok(r.am.clone());
            }
            self.owns(workspace_id)
        };
        if !self.workspace_active(workspace_id) {
            Err(Missing::Workspace)
        } else if !owns && self.store.get(&self.arns.alert_manager_definition(workspace_id)).is_some() {
            Err(Missing::Elsewhere)
        } else {
            Err(Missing::Definition)
        }
    }

    /// Brings the running Alertmanagers in step with the control plane,
    /// reading the state of newly assigned partitions first.
    ///
    /// # Errors
    /// The state of an assigned partition could not be read (its
    /// workspaces start at a later sync, once it is read).
    pub async fn sync(self: &Arc<Self>) -> Result<(), String> {
        // Partitions are read outside the `syncing` lock: a revocation
        // never waits for them.
        let loading = self.loading.lock().await;
        let pending: Vec<u32> = self.partitions().pending.iter().copied().collect();
        let mut failed = None;
        let mut loaded = Vec::new();
        for p in pending {
            match self.state.load(p).await {
                Ok(state) => loaded.push((p, state)),
                Err(e) => failed = Some(format!("reading the state of alerting partition {p}: {e}")),
            }
        }
        drop(loading);
        let one_at_a_time = self.syncing.lock().await;
        let mut restored = self.restored.lock().await;
        let mut taken = Vec::new();
        let mut inboxes = Vec::new();
        {
            let partitions = self.partitions();
            for (p, state) in loaded {
                // (Revoked while it was read: not ours.)
                if !partitions.pending.contains(&p) {
                    continue;
                }
                restored.extend(state.state);
                taken.push(p);
                inboxes.push((p, state.next, state.inbox));
            }
        }
        let removed = self.sync_with(&mut restored, &taken);
        drop(restored);
        // Inboxes are applied once their workspaces' Alertmanagers run (a
        // revocation, waiting for `syncing`, finds their stop tokens).
        for (p, next, batches) in inboxes {
            let stop = CancellationToken::new();
            self.partitions().inboxes.insert(p, stop.clone());
            tokio::spawn(follow_inbox(Arc::downgrade(self), p, next, batches.into(), stop));
            tracing::info!(partition = p, "Took over the alerting partition's workspaces.");
        }
        drop(one_at_a_time);
        for am in removed {
            am.forget().await;
        }
        if let Err(e) = self.announce().await {
            failed.get_or_insert(e);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Syncs until this process owns the partitions assigned to it (or
    /// `patience` ends): a process on Kafka waits for its first assignment
    /// before it serves, so that it does not answer for its workspaces as
    /// if another process ran them.
    pub async fn wait_for_assignment(self: &Arc<Self>, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "Could not read the alerting state; retrying.");
            }
            let done = {
                let p = self.partitions();
                p.pending.is_empty() && !p.owned.is_empty()
            };
            if done || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Applies an inbox batch to its workspace's Alertmanager here, then
    /// deletes it. A batch for a workspace without an Alertmanager is
    /// dropped, as alerts are without one; one the Alertmanager could not
    /// make durable is kept (retried).
    async fn apply_inbox(&self, batch: &InboxBatch) -> Result<(), String> {
        let ws = &batch.workspace_id;
        match self.get(ws) {
            Ok(am) => match am.post_alerts(&batch.alerts).await {
                Ok(PostOutcome::Stored) => {}
                Ok(PostOutcome::Unavailable(m)) => return Err(m),
                Ok(PostOutcome::Invalid(m) | PostOutcome::Limited(m)) => {
                    tracing::warn!(workspace = %ws, error = %m, "Alerts from the inbox refused in part.");
                }
                Err(e) => tracing::warn!(workspace = %ws, error = %e.message, "Alerts from the inbox refused."),
            },
            // Moved on: the next owner applies it.
            Err(Missing::Elsewhere) => return Ok(()),
            Err(Missing::Workspace | Missing::Definition) => {}
        }
        self.state.delete_inbox(batch).await
    }

    /// One pass, taking the restored state it uses and taking over the
    /// partitions `taken` (read, still assigned); returns the Alertmanagers
    /// removed (to forget).
    fn sync_with(&self, restored: &mut BTreeMap<String, Vec<Change>>, taken: &[u32]) -> Vec<Arc<Alertmanager>> {
        let mut owned = self.partitions().owned.clone();
        owned.extend(taken);
        let mut desired: BTreeMap<String, String> = BTreeMap::new();
        // Workspaces whose definition exists but is not in effect (a change
        // that failed): their running Alertmanager goes on as it was.
        let mut failed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (_, doc) in self.store.list(&self.arns.all_alert_manager_definitions_prefix()) {
            let Ok(record) = serde_json::from_value::<AlertManagerDefinitionRecord>(doc) else { continue };
            if !owned.contains(&self.partition_of(&record.workspace_id)) || !self.workspace_active(&record.workspace_id)
            {
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
            // A workspace whose partition is being revoked is kept: the
            // revocation hands it over (forgetting it would delete its state).
            let keep = desired.contains_key(ws) || failed.contains(ws) || !owned.contains(&self.partition_of(ws));
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
        // Owned once their Alertmanagers run (`get` holds `running` first:
        // it never sees a partition owned and its workspace not started).
        {
            let mut partitions = self.partitions();
            for p in taken {
                partitions.pending.remove(p);
                partitions.owned.insert(*p);
            }
        }
        removed
    }

    /// Hands over the Alertmanagers of `partitions` (each stops flushing,
    /// lets its deliveries finish, saves) and forgets their restored state.
    async fn release(&self, partitions: &std::collections::BTreeSet<u32>) {
        // Not ours from now: a sync reading them does not take them.
        {
            let mut mine = self.partitions();
            for p in partitions {
                mine.pending.remove(p);
                mine.owned.remove(p);
            }
        }
        // A sync pass starting Alertmanagers ends first (it is short).
        let one_at_a_time = self.syncing.lock().await;
        self.restored.lock().await.retain(|ws, _| !partitions.contains(&self.partition_of(ws)));
        {
            let mut mine = self.partitions();
            for p in partitions {
                if let Some(stop) = mine.inboxes.remove(p) {
                    stop.cancel();
                }
            }
        }
        let leaving: Vec<(String, Arc<Alertmanager>)> = {
            let mut running = self.lock();
            let names: Vec<String> =
                running.keys().filter(|ws| partitions.contains(&self.partition_of(ws))).cloned().collect();
            names.into_iter().filter_map(|ws| running.remove(&ws).map(|r| (ws, r.am))).collect()
        };
        drop(one_at_a_time);
        futures::future::join_all(leaving.iter().map(|(ws, am)| async move {
            am.release(HANDOVER_GRACE).await;
            tracing::info!(workspace = %ws, "Handed the workspace's Alertmanager over.");
        }))
        .await;
    }

    /// Syncs every second until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "Could not read the alerting state; retrying.");
            }
            tokio::select! {
                () = tokio::time::sleep(SYNC_INTERVAL) => {}
                () = self.wake.notified() => {}
                () = stop.cancelled() => break,
            }
        }
        for stop in self.partitions().inboxes.values() {
            stop.cancel();
        }
        for r in self.lock().values() {
            r.am.stop();
        }
    }
}

/// How long one read of an inbox waits for new batches.
const INBOX_WAIT: Duration = Duration::from_millis(500);

/// Applies `partition`'s inbox, from the `pending` batches and then those
/// posted at or after `next`, until `stop`.
async fn follow_inbox(
    ams: std::sync::Weak<Alertmanagers>,
    partition: u32,
    mut next: u64,
    mut pending: std::collections::VecDeque<InboxBatch>,
    stop: CancellationToken,
) {
    loop {
        while let Some(batch) = pending.front() {
            if stop.is_cancelled() {
                return;
            }
            // Never cut short half-way (a batch whose alerts were saved is
            // then deleted).
            let Some(me) = ams.upgrade() else { return };
            let applied = me.apply_inbox(batch).await;
            drop(me);
            match applied {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(e) => {
                    tracing::warn!(partition, error = %e, "Could not apply an alerting inbox batch; retrying.");
                    tokio::select! {
                        () = tokio::time::sleep(SYNC_INTERVAL) => continue,
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
        let Some(state) = ams.upgrade().map(|me| me.state.clone()) else { return };
        let read = tokio::select! {
            read = state.tail_inbox(partition, next, INBOX_WAIT) => read,
            () = stop.cancelled() => return,
        };
        match read {
            Ok((batches, after)) => {
                pending.extend(batches);
                next = after;
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "Could not read the alerting inbox; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(SYNC_INTERVAL) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

fn alerting_partitions(partitions: Vec<TopicPartition>) -> std::collections::BTreeSet<u32> {
    partitions.into_iter().filter(|p| p.topic == schemas::topics::ALERTING_TOPIC).map(|p| p.partition).collect()
}

/// Ownership of `_alerting` partitions: their workspaces' Alertmanagers
/// run here from the assignment (once the state is read, at the next
/// sync) until the revocation.
#[async_trait]
impl PartitionOwner for Alertmanagers {
    async fn assigned(&self, partitions: Vec<TopicPartition>) {
        let assigned = alerting_partitions(partitions);
        {
            let mut mine = self.partitions();
            let new: Vec<u32> = assigned.difference(&mine.owned).copied().collect();
            mine.pending.extend(new);
        }
        self.wake.notify_one();
        tracing::info!(partitions = ?assigned, "Assigned alerting partitions.");
    }

    async fn revoked(&self, partitions: Vec<TopicPartition>) {
        let revoked = alerting_partitions(partitions);
        tracing::info!(partitions = ?revoked, "Alerting partitions revoked; handing them over.");
        self.release(&revoked).await;
    }
}

/// The ruler's alerts, posted to the workspace's Alertmanager in this
/// process, or to its inbox in the log when another process runs it. A
/// workspace without an alert manager definition has nowhere to send
/// them: they are dropped, as when no Alertmanager is configured.
#[async_trait]
impl AlertSink for Alertmanagers {
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
        let body =
            serde_json::to_vec(&alerts).map_err(|e| SeamError { kind: ErrorKind::Internal, message: e.to_string() })?;
        let am = match self.get(workspace_id) {
            Ok(am) => am,
            // Through the log to the process that runs it.
            Err(Missing::Elsewhere) => {
                return self
                    .state
                    .post_inbox(workspace_id, body)
                    .await
                    .map_err(|message| SeamError { kind: ErrorKind::Unavailable, message });
            }
            Err(Missing::Workspace | Missing::Definition) => return Ok(()),
        };
        match am.post_alerts(&body).await {
            Ok(PostOutcome::Stored) => Ok(()),
            Ok(PostOutcome::Invalid(m)) => Err(SeamError { kind: ErrorKind::BadData, message: m }),
            Ok(PostOutcome::Limited(m)) => Err(SeamError { kind: ErrorKind::LimitExceeded, message: m }),
            Ok(PostOutcome::Unavailable(m)) => Err(SeamError { kind: ErrorKind::Unavailable, message: m }),
            Err(e) => Err(SeamError { kind: ErrorKind::BadData, message: e.message }),
        }
    }
}

/// The ruler's alerts in a process that runs no Alertmanagers (`--role
/// worker`): posted to the workspace's inbox in the log, which the process
/// running its Alertmanager applies. Dropped for a workspace without an
/// alert manager definition in effect.
#[derive(Debug)]
pub struct InboxSink {
    store: Arc<dyn ControlPlaneStore>,
    arns: ArnScheme,
    state: Arc<dyn StateStore>,
}

impl InboxSink {
    /// Posting through `state` ([`crate::state::LogState`]).
    pub fn new(store: Arc<dyn ControlPlaneStore>, arns: ArnScheme, state: Arc<dyn StateStore>) -> Self {
        Self { store, arns, state }
    }
}

#[async_trait]
impl AlertSink for InboxSink {
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
        let in_effect = self
            .store
            .get(&self.arns.alert_manager_definition(workspace_id))
            .and_then(|d| serde_json::from_value::<AlertManagerDefinitionRecord>(d).ok())
            .is_some_and(|d| d.is_in_effect());
        if !in_effect {
            return Ok(());
        }
        let body =
            serde_json::to_vec(&alerts).map_err(|e| SeamError { kind: ErrorKind::Internal, message: e.to_string() })?;
        self.state
            .post_inbox(workspace_id, body)
            .await
            .map_err(|message| SeamError { kind: ErrorKind::Unavailable, message })
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
        ams.assigned(vec![TopicPartition::new(schemas::topics::ALERTING_TOPIC, 0)]).await;
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

    /// The one-owner handover: a workspace runs only where its partition
    /// is owned; another process's alerts reach it through the inbox; a
    /// revoked owner saves and stops, and the next owner resumes from the
    /// log — the pending group is notified once, and handing it back does
    /// not notify it again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_workspace_runs_where_its_partition_is_owned_and_moves_with_its_state() {
        let sink = common::testing::WebhookSink::start();
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn common::log::Log> =
            log_embedded::EmbeddedLog::open(dir.path(), log_embedded::EmbeddedLogConfig::default()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Arc::new(MemoryControlStore::default());
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() };
        let ws = serde_json::json!({"workspaceId": "ws-1", "arn": arns.workspace("ws-1"), "status": "ACTIVE",
            "createdAt": 0.0, "samplesTopic": "promlake.ws.ws-1.samples"});
        store.put(&arns.workspace("ws-1"), ws).await.unwrap();
        let data = format!(
            "alertmanager_config: |\n  route: {{receiver: r, group_wait: 6s, group_interval: 1h, repeat_interval: 4h}}\n  receivers: [{{name: r, webhook_configs: [{{url: '{}/hook'}}]}}]\n",
            sink.url()
        );
        let definition = serde_json::json!({"workspaceId": "ws-1", "status": {"statusCode": "ACTIVE"},
            "data": data, "createdAt": 0.0, "modifiedAt": 0.0});
        store.put(&arns.alert_manager_definition("ws-1"), definition).await.unwrap();
        let registry = || async {
            Alertmanagers::new(
                store.clone(),
                arns.clone(),
                Arc::new(Overrides::new(&common::limits::Limits::default())),
                clock.clone(),
                Arc::new(crate::notify::HttpNotifier::new()),
                Arc::new(crate::state::LogState::open(log.clone(), clock.clone()).await.unwrap()),
                "http://promlake",
            )
        };
        let (a, b) = (registry().await, registry().await);
        let partition = schemas::topics::alerting_partition("ws-1", schemas::topics::ALERTING_PARTITIONS);
        let others: Vec<TopicPartition> = (0..schemas::topics::ALERTING_PARTITIONS)
            .filter(|p| *p != partition)
            .map(|p| TopicPartition::new(schemas::topics::ALERTING_TOPIC, p))
            .collect();
        let home = || vec![TopicPartition::new(schemas::topics::ALERTING_TOPIC, partition)];

        // B owns every partition but the workspace's: it does not run it.
        b.assigned(others).await;
        b.sync().await.unwrap();
        assert_eq!(b.get("ws-1").err(), Some(Missing::Elsewhere));
        a.assigned(home()).await;
        a.sync().await.unwrap();
        let alert = br#"[{"labels": {"alertname": "Handover"}}]"#;
        assert_eq!(a.get("ws-1").unwrap().post_alerts(alert).await.unwrap(), PostOutcome::Stored);
        // B's ruler sends to A's Alertmanager through the log.
        let inbox = serde_json::json!([{"labels": {"alertname": "ViaInbox"}}]);
        AlertSink::send(b.as_ref(), "ws-1", inbox).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while a.get("ws-1").unwrap().engine().alerts().count() < 2 {
            assert!(std::time::Instant::now() < deadline, "the inbox was not applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // A hands it over before the group is due; B resumes it.
        a.revoked(home()).await;
        assert_eq!(a.get("ws-1").err(), Some(Missing::Elsewhere));
        b.assigned(home()).await;
        b.sync().await.unwrap();
        let resumed = b.get("ws-1").unwrap();
        assert_eq!(resumed.engine().alerts().count(), 2, "the successor has the alerts");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while sink.received().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // (A second one, were it sent, would follow at once.)
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = sink.received();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let names: Vec<&str> =
            sent[0].2["alerts"].as_array().unwrap().iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
        assert_eq!(names, ["Handover", "ViaInbox"]);

        // Handed back: the notification log came along, nothing is repeated.
        b.revoked(home()).await;
        a.assigned(home()).await;
        a.sync().await.unwrap();
        assert!(a.get("ws-1").is_ok());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sink.received().len(), 1, "{:?}", sink.received());
    }

    /// A process without Alertmanagers sends the ruler's alerts to the
    /// workspace's inbox when its definition is in effect, and drops them
    /// otherwise.
    #[tokio::test]
    async fn the_inbox_sink_posts_only_for_workspaces_with_a_definition_in_effect() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn common::log::Log> =
            log_embedded::EmbeddedLog::open(dir.path(), log_embedded::EmbeddedLogConfig::default()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let state = Arc::new(crate::state::LogState::open(log, clock).await.unwrap());
        let store = Arc::new(MemoryControlStore::default());
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() };
        let definition = |code: &str| {
            serde_json::json!({"workspaceId": "ws-1", "status": {"statusCode": code},
                "data": "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r}]\n",
                "createdAt": 0.0, "modifiedAt": 0.0})
        };
        let sink = InboxSink::new(store.clone(), arns.clone(), state.clone());
        let alerts = serde_json::json!([{"labels": {"alertname": "A"}}]);
        let inbox = || async {
            let p = schemas::topics::alerting_partition("ws-1", state.partitions());
            state.load(p).await.unwrap().inbox
        };
        sink.send("ws-1", alerts.clone()).await.unwrap();
        store.put(&arns.alert_manager_definition("ws-1"), definition("CREATING")).await.unwrap();
        sink.send("ws-1", alerts.clone()).await.unwrap();
        assert!(inbox().await.is_empty(), "no definition in effect: dropped");
        store.put(&arns.alert_manager_definition("ws-1"), definition("ACTIVE")).await.unwrap();
        sink.send("ws-1", alerts.clone()).await.unwrap();
        let posted = inbox().await;
        assert_eq!(posted.len(), 1);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&posted[0].alerts).unwrap(), alerts);
    }
}
