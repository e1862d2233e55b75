//! The ruler: continuous evaluation of the rules in every workspace's rule
//! groups namespaces, with Prometheus 3.5's semantics.
//!
//! ```text
//!  _control (ControlPlaneStore) ── namespaces ACTIVE/UPDATING ──► Ruler::sync (every second)
//!        rulefmt::parse ──► one task per (workspace, namespace, group) this process owns
//!                               │ at  base + offset + k·interval  (offset = hash(group) mod interval)
//!                               ▼
//!   for each rule, in order:  PromqlEngine::instant_query(expr, t − query_offset)
//!        recording rule ──► __name__ = record, group then rule labels
//!        alerting rule  ──► templates expanded per sample ──► alerting state machine
//!                           ├──► due alerts ──► Notifier queue ──► AlertSink (Alertmanager v2)
//!                           └──► ALERTS, ALERTS_FOR_STATE
//!                      ──► SampleAppender::append (the workspace's log, like remote write)
//!                          + staleness markers for the series the last evaluation had
//!                      ──► SampleReader::wait_until_readable: the next rule sees the result
//! ```
//!
//! Guarantees and semantics:
//! - A group is evaluated at a stable offset within its `interval` (default
//!   [`RulerConfig::default_interval`], 1 m as Prometheus's
//!   `evaluation_interval`), at `t − query_offset` (the group's
//!   `query_offset`, else the workspace's `ruleQueryOffsetInSeconds` from
//!   `Overrides::ruler`). An evaluation that overruns its interval skips the
//!   iterations it missed (counted in
//!   `promlake_rule_group_iterations_missed_total`) rather than piling up.
//! - Rules run in file order, each after the previous one's samples are
//!   readable (`SampleReader::wait_until_readable`, best effort: after
//!   [`RulerConfig::wait_timeout`] the next rule runs anyway, with a
//!   warning), so later rules see earlier results. A rule no later rule of
//!   its group can read (none selects its metric, and none selects an
//!   unknown one) does not wait. In a scaled-out deployment this holds for
//!   the output on partitions this worker owns; output on another worker's
//!   partitions is seen once that worker flushes it to the tables (its
//!   `flush_interval_ms`).
//! - A recording rule's output goes through the log like ingested samples
//!   (stored in the tables, visible in the stream); a series it produced
//!   last time and not this time gets a staleness marker, and so do all of
//!   a group's series when the group is removed. A result with two series
//!   of one label set, or more series than the group's `limit`, fails the
//!   rule (Prometheus's texts) and writes nothing. Unlike Prometheus, which
//!   waits two intervals (for a renamed group to take over), a removed
//!   group's series are marked stale at once.
//! - A changed group restarts with the previous series of its rules (by
//!   name and labels, in order, as Prometheus's `CopyState`), so
//!   staleness carries over an update. Files are parsed once per change.
//!   Groups of a workspace that is not `ACTIVE` are not evaluated.
//! - Which groups this process evaluates is the [`GroupOwner`] seam:
//!   [`AllGroups`] in the one-process deployment; in a scaled-out one each
//!   worker process owns the groups whose hash falls on a log partition it
//!   owns, so a group moves with its partition and runs in one process at
//!   a time (a group that moved away stops without staleness markers: its
//!   new owner goes on, restoring its alerts' `for` state).
//!
//! - Alerting rules follow Prometheus 3.5 (`rules/alerting.go`, see
//!   `alerting`): pending → firing after `for`, `keep_firing_for`,
//!   resolved alerts kept and re-sent for 15 minutes, `limit`; `ALERTS` and
//!   `ALERTS_FOR_STATE` at `t − query_offset`, written only once a fresh
//!   group restored its `for` state from `ALERTS_FOR_STATE` after its
//!   second evaluation ([`RulerConfig::outage_tolerance`],
//!   [`RulerConfig::for_grace_period`]); a changed group carries its
//!   alerts. Alerts due (resolved since last sent, or last sent more than
//!   [`RulerConfig::resend_delay`] ago) are queued in the [`Notifier`] and
//!   posted as Prometheus's notifier posts them; a failed post is counted,
//!   not retried (the resend covers it).
//!
//! - The groups' state is [`Ruler::groups`], and through the
//!   `common::seams::RuleStates` seam the query service's rules and alerts
//!   APIs.
//!
//! - A rule that fails to evaluate, and alerts that could not be sent, are
//!   recorded as the workspace's events (`RulerSeams::events`: AMP's log
//!   shape, component `ruler`) besides being counted in `/metrics`.
//!
//! Not built yet: a scaled-out deployment's rules and alerts APIs show
//! each worker's own groups (no process merges them).

mod alerting;
mod group;
mod notifier;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::limits::Overrides;
use common::rules::RuleGroupsNamespaceRecord;
use common::seams::{AlertSink, PromqlEngine, SampleAppender, SampleReader};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use alerting::{Alert, AlertState};
pub use group::{GroupStatus, ManualGroup, RuleHealth, RuleStatus};
pub use notifier::{AlertmanagerClient, MAX_BATCH, Notifier, QUEUE_CAPACITY, SEND_TIMEOUT};

use crate::group::{GroupKey, GroupRun, GroupSpec, Metrics};

/// Settings of the ruler.
#[derive(Debug, Clone)]
pub struct RulerConfig {
    /// Interval of groups that set none (Prometheus's `evaluation_interval`).
    pub default_interval: Duration,
    /// How often the namespaces are read for changes.
    pub sync_interval: Duration,
    /// How long a rule waits for the previous rule's samples to be applied
    /// before it evaluates anyway.
    pub wait_timeout: Duration,
    /// Minimum time before a firing alert is sent again (Prometheus's
    /// `--rules.alert.resend-delay`, 1 m).
    pub resend_delay: Duration,
    /// How far back `ALERTS_FOR_STATE` is read to restore the `for` state
    /// (Prometheus's `--rules.alert.for-outage-tolerance`, 1 h).
    pub outage_tolerance: Duration,
    /// Minimum time between a restart and a restored alert firing; rules
    /// with a shorter `for` are not restored (Prometheus's
    /// `--rules.alert.for-grace-period`, 10 m).
    pub for_grace_period: Duration,
    /// Labels added to the alerts sent (where they lack them) and given to
    /// templates as `$externalLabels` (Prometheus's `external_labels`).
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// The URL before the alerts' `generatorURL` link and templates'
    /// `$externalURL` (Prometheus's `--web.external-url`).
    pub external_url: String,
}

impl Default for RulerConfig {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(60),
            sync_interval: Duration::from_secs(1),
            wait_timeout: Duration::from_secs(10),
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            external_labels: std::collections::BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

/// Decides which groups this process evaluates, so that each group is
/// evaluated by one process at a time.
pub trait GroupOwner: Send + Sync + std::fmt::Debug + 'static {
    /// Whether this process evaluates the group whose key hashes to `hash`
    /// in `workspace_id`.
    fn owns(&self, workspace_id: &str, hash: u64) -> bool;
}

/// Every group: the one-process deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllGroups;

impl GroupOwner for AllGroups {
    fn owns(&self, _workspace_id: &str, _hash: u64) -> bool {
        true
    }
}

/// What the ruler's groups read and write through.
#[derive(Debug, Clone)]
pub struct RulerSeams {
    /// The namespaces.
    pub store: Arc<dyn ControlPlaneStore>,
    /// Region and account of the namespaces' ARNs.
    pub arns: ArnScheme,
    /// Evaluates rule expressions.
    pub engine: Arc<dyn PromqlEngine>,
    /// Writes recording-rule results to the workspace's log.
    pub appender: Arc<dyn SampleAppender>,
    /// Waits until written results are readable.
    pub reader: Arc<dyn SampleReader>,
    /// The workspaces' rule query offsets.
    pub overrides: Arc<Overrides>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Which groups are this process's.
    pub owner: Arc<dyn GroupOwner>,
    /// Where alerts go: the workspaces' Alertmanagers.
    pub alerts: Arc<dyn AlertSink>,
    /// Where failed evaluations and sends are recorded, per workspace.
    pub events: Arc<dyn common::events::EventSink>,
}

/// A namespace's file as parsed: its `modifiedAt`, its data, the groups
/// (`None`: it did not parse).
type ParsedFile = (f64, String, Option<Arc<rulefmt::RuleGroups>>);

/// Evaluates the rule groups of every workspace.
#[derive(Debug)]
pub struct Ruler {
    seams: RulerSeams,
    config: RulerConfig,
    metrics: Metrics,
    notifier: Arc<Notifier>,
    running: Mutex<HashMap<GroupKey, GroupRun>>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
    /// Each namespace's parsed file, by ARN, with the `modifiedAt` and
    /// data it was parsed from: a file is parsed once per change.
    parsed: Mutex<HashMap<String, ParsedFile>>,
    /// Every group the last sync saw (evaluated here or elsewhere); `None`
    /// before the first sync.
    known: Mutex<Option<std::collections::HashSet<GroupKey>>>,
}

impl Ruler {
    /// A ruler; its metrics are registered in `registry`. Call
    /// [`Ruler::run`] (or [`Ruler::sync`]) to evaluate.
    pub fn new(seams: RulerSeams, config: RulerConfig, registry: &mut Registry) -> Arc<Self> {
        let notifier = Notifier::new(seams.alerts.clone(), seams.events.clone(), seams.clock.clone(), registry);
        Arc::new(Self {
            seams,
            config,
            metrics: Metrics::register(registry),
            notifier,
            running: Mutex::default(),
            syncing: tokio::sync::Mutex::new(()),
            parsed: Mutex::default(),
            known: Mutex::default(),
        })
    }

    /// Reads the namespaces every [`RulerConfig::sync_interval`] and
    /// starts, restarts or stops group tasks to match, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let stop_notifier = CancellationToken::new();
        let notifier = tokio::spawn(self.notifier.clone().run(stop_notifier.clone()));
        loop {
            self.sync().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.sync_interval) => {}
            }
        }
        let runs: Vec<GroupRun> = self.lock().drain().map(|(_, r)| r).collect();
        for run in runs {
            run.stop().await;
        }
        // What the last evaluations queued is still sent.
        stop_notifier.cancel();
        let _ = notifier.await;
    }

    /// One pass: the groups of every evaluated namespace this process owns
    /// run with their current definition; others are stopped (their
    /// series marked stale).
    pub async fn sync(self: &Arc<Self>) {
        let _one_at_a_time = self.syncing.lock().await;
        let (desired, elsewhere) = self.desired();
        let mut stopped = Vec::new();
        let mut started = Vec::new();
        {
            let mut running = self.lock();
            let keys: Vec<GroupKey> = running.keys().cloned().collect();
            for key in keys {
                let keep = desired.get(&key).is_some_and(|spec| running[&key].spec == *spec);
                if !keep && let Some(run) = running.remove(&key) {
                    stopped.push((key.clone(), run, desired.contains_key(&key)));
                }
            }
            for (key, spec) in desired {
                if !running.contains_key(&key) {
                    started.push((key, spec));
                }
            }
        }
        // A changed group hands its rules' last series to its successor;
        // a removed one marks them stale.
        let stops = stopped.into_iter().map(|(key, run, replaced)| async move { (key, run.stop().await, replaced) });
        let mut carried: HashMap<GroupKey, group::PreviousSeries> = HashMap::new();
        for (key, previous, replaced) in futures::future::join_all(stops).await {
            if replaced {
                carried.insert(key, previous);
            } else if elsewhere.contains(&key) {
                // Its new owner goes on writing its series.
            } else {
                group::mark_stale(&self.seams, &key, previous).await;
            }
        }
        // As Prometheus restores the `for` state of the groups it loads at
        // start but not of groups added later: a group restores when this
        // process starts, or when it moves here from another process (a
        // restart of its evaluation); a group created since runs fresh.
        let seen: std::collections::HashSet<GroupKey> = started
            .iter()
            .map(|(k, _)| k.clone())
            .chain(self.lock().keys().cloned())
            .chain(elsewhere.iter().cloned())
            .collect();
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).replace(seen);
        for (key, spec) in started {
            let restore = known.as_ref().is_none_or(|k| k.contains(&key));
            let run = GroupRun::start(
                key.clone(),
                spec,
                carried.remove(&key),
                restore,
                self.seams.clone(),
                self.config.clone(),
                self.metrics.clone(),
                self.notifier.clone(),
            );
            self.lock().insert(key, run);
        }
    }

    /// The state of every group this process evaluates, by workspace,
    /// namespace and group name.
    pub fn groups(&self) -> Vec<GroupStatus> {
        let mut out: Vec<GroupStatus> = self.lock().values().map(GroupRun::status).collect();
        out.sort_by(|a, b| (&a.workspace_id, &a.namespace, &a.name).cmp(&(&b.workspace_id, &b.namespace, &b.name)));
        out
    }

    /// The groups every evaluated namespace of an active workspace
    /// defines that this process owns, and those another process owns.
    fn desired(&self) -> (HashMap<GroupKey, GroupSpec>, std::collections::HashSet<GroupKey>) {
        let prefix = self.seams.arns.all_rule_groups_namespaces_prefix();
        let mut desired = HashMap::new();
        let mut elsewhere = std::collections::HashSet::new();
        let mut seen = std::collections::HashSet::new();
        // Whether each workspace is active, read once per pass.
        let mut active: HashMap<String, bool> = HashMap::new();
        for (arn, doc) in self.seams.store.list(&prefix) {
            let Ok(ns) = serde_json::from_value::<RuleGroupsNamespaceRecord>(doc) else { continue };
            let workspace_active = *active.entry(ns.workspace_id.clone()).or_insert_with(|| {
                self.seams
                    .store
                    .get(&self.seams.arns.workspace(&ns.workspace_id))
                    .and_then(|w| serde_json::from_value::<common::workspace::WorkspaceRecord>(w).ok())
                    .is_some_and(|w| w.is_active())
            });
            if !ns.is_evaluated() || !workspace_active {
                continue;
            }
            seen.insert(arn.clone());
            let Some(file) = self.parse(&arn, &ns) else { continue };
            for g in file.groups.iter().cloned() {
                let key = GroupKey {
                    workspace_id: ns.workspace_id.clone(),
                    namespace: ns.name.clone(),
                    group: g.name.clone(),
                };
                if !self.seams.owner.owns(&key.workspace_id, key.hash()) {
                    elsewhere.insert(key);
                    continue;
                }
                let interval_ms = g
                    .interval_ms
                    .filter(|i| *i > 0)
                    .unwrap_or(i64::try_from(self.config.default_interval.as_millis()).unwrap_or(60_000));
                desired.insert(key, GroupSpec::new(g, interval_ms));
            }
        }
        self.parsed.lock().unwrap_or_else(|p| p.into_inner()).retain(|arn, _| seen.contains(arn));
        (desired, elsewhere)
    }

    /// A namespace's parsed file, parsed again only when it changed.
    /// Validated when it was put; a file this release refuses is skipped
    /// (and was reported when it was put).
    fn parse(&self, arn: &str, ns: &RuleGroupsNamespaceRecord) -> Option<Arc<rulefmt::RuleGroups>> {
        if let Some((modified, data, file)) = self.parsed.lock().unwrap_or_else(|p| p.into_inner()).get(arn)
            && *modified == ns.modified_at
            && *data == ns.data
        {
            return file.clone();
        }
        let file = match rulefmt::parse(ns.data.as_bytes()) {
            Ok(file) => Some(Arc::new(file)),
            Err(_) => {
                tracing::warn!(workspace = %ns.workspace_id, namespace = %ns.name, "A rule groups namespace no longer parses; not evaluated.");
                None
            }
        };
        self.parsed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.to_owned(), (ns.modified_at, ns.data.clone(), file.clone()));
        file
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupKey, GroupRun>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl common::seams::RuleStates for Ruler {
    fn rule_groups(&self, workspace_id: &str) -> Vec<common::rules::RuleGroupState> {
        let mut out: Vec<GroupStatus> =
            self.lock().iter().filter(|(k, _)| k.workspace_id == workspace_id).map(|(_, r)| r.status()).collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out.iter().map(GroupStatus::to_api).collect()
    }
}
