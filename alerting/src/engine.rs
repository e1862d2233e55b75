//! One workspace's Alertmanager as pure state over explicit times: the
//! runtime ([`crate::service`]) drives it with its clock, the tests with
//! theirs.
//!
//! Data flow, as in Alertmanager 0.33:
//!
//! 1. [`Engine::put`] takes posted alerts ([`crate::ingest`]), merges each
//!    with the stored alert of the same fingerprint when their activity
//!    overlaps (`Alert.Merge`: earliest start, the younger alert's data, a
//!    posted end beating a resolve-timeout end), checks the workspace's
//!    limits, stores it, shows it to the inhibitor and routes it: each
//!    matching route node puts it in the aggregation group of its group
//!    labels (a new group for a destroyed or missing one).
//! 2. [`Engine::flush_due`] flushes the groups whose timer is due and runs
//!    each flush through the notification pipeline: inhibition → active
//!    time intervals → mute time intervals → silences → per integration of
//!    the receiver, the notification log's decision (`DedupStage`). What is
//!    to be sent comes out as [`Notification`]s; a flush whose alerts were all
//!    muted, or that needs no notification, completes at once.
//! 3. [`Engine::complete`] takes the outcome of a flush's sends: each
//!    delivered integration gets its notification-log entry, and when all
//!    were delivered the resolved alerts it carried leave the group (an
//!    emptied group is destroyed). A group flushes again only after its
//!    previous flush completed (as a group's run loop waits for its
//!    notification).
//!
//! Guarantees: a flush never notifies an integration twice for the same
//! firing and resolved alerts within `repeat_interval`; muted alerts are
//! never sent; an alert refused by a limit is answered (never dropped
//! silently once acknowledged).

use std::collections::{BTreeMap, BTreeSet};

use amconfig::{Config, TimeIntervalSet};
use common::limits::AlertingLimits;
use templates::{NotificationAlert, NotificationData, NotificationTime};

use crate::dispatch::{AggrGroup, Alert, LogEntry, NotifyReason, fingerprint, needs_update};
use crate::ingest::Accepted;
use crate::inhibit::Inhibitor;
use crate::routing::{LabelSet, RouteNode};
use crate::silence::{DEFAULT_RETENTION_MS, Silence, SilenceError, Silences};

/// A receiver's integration: one entry of one of its `*_configs`.
#[derive(Debug, Clone)]
pub struct Integration {
    /// `webhook`, `email`, `slack`, `pagerduty` or `sns`.
    pub name: &'static str,
    /// Its index among the receiver's integrations of that type.
    pub index: usize,
    pub send_resolved: bool,
    pub config: IntegrationConfig,
}

/// An integration's configuration.
#[derive(Debug, Clone)]
pub enum IntegrationConfig {
    Webhook(amconfig::WebhookConfig),
    Email(amconfig::EmailConfig),
    Slack(amconfig::SlackConfig),
    Pagerduty(amconfig::PagerdutyConfig),
    Sns(amconfig::SnsConfig),
}

/// A receiver's integrations in Alertmanager's order
/// (`BuildReceiverIntegrations`: email, pagerduty, slack, webhook, sns),
/// completed from the configuration's `global` section where Alertmanager
/// falls back to it (`http_config`, `pagerduty_url`).
pub fn integrations(r: &amconfig::Receiver, global: &amconfig::Global) -> Vec<Integration> {
    let mut r = r.clone();
    for c in &mut r.pagerduty_configs {
        if c.url.is_none() {
            c.url = global.pagerduty_url.clone();
        }
        c.http_config.get_or_insert_with(|| global.http_config.clone());
    }
    for c in &mut r.webhook_configs {
        c.http_config.get_or_insert_with(|| global.http_config.clone());
    }
    for c in &mut r.sns_configs {
        c.http_config.get_or_insert_with(|| global.http_config.clone());
    }
    let r = &r;
    let mut out = Vec::new();
    for (i, c) in r.email_configs.iter().enumerate() {
        out.push(Integration {
            name: "email",
            index: i,
            send_resolved: c.send_resolved(),
            config: IntegrationConfig::Email(c.clone()),
        });
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        out.push(Integration {
            name: "pagerduty",
            index: i,
            send_resolved: c.send_resolved(),
            config: IntegrationConfig::Pagerduty(c.clone()),
        });
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        out.push(Integration {
            name: "slack",
            index: i,
            send_resolved: c.send_resolved(),
            config: IntegrationConfig::Slack(c.clone()),
        });
    }
    for (i, c) in r.webhook_configs.iter().enumerate() {
        out.push(Integration {
            name: "webhook",
            index: i,
            send_resolved: c.send_resolved(),
            config: IntegrationConfig::Webhook(c.clone()),
        });
    }
    for (i, c) in r.sns_configs.iter().enumerate() {
        out.push(Integration {
            name: "sns",
            index: i,
            send_resolved: c.send_resolved(),
            config: IntegrationConfig::Sns(c.clone()),
        });
    }
    out
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub alert: Alert,
    /// Its end is the resolve timeout's, not a posted one.
    pub timeout: bool,
}

/// An aggregation group's identity: its route node's id and its group
/// labels' fingerprint.
pub type GroupId = (String, u64);

/// One notification to send: an integration of a receiver and the
/// alerts it carries.
#[derive(Debug, Clone)]
pub struct Notification {
    pub receiver: String,
    pub integration: Integration,
    pub group_key: String,
    pub group_labels: LabelSet,
    pub reason: NotifyReason,
    /// Sorted as Alertmanager sorts them; firing ones without an end.
    pub alerts: Vec<Alert>,
    pub external_url: String,
    /// The flush's time.
    pub now_ms: i64,
}

impl Notification {
    /// The data templates see, of the first `max_alerts` alerts (0: all),
    /// and how many were left out.
    pub fn data(&self, max_alerts: u64) -> (NotificationData, u64) {
        let n = self.alerts.len() as u64;
        let keep = if max_alerts > 0 && n > max_alerts { max_alerts } else { n };
        let alerts = &self.alerts[..usize::try_from(keep).unwrap_or(self.alerts.len())];
        let data =
            template_data(&self.receiver, &self.group_labels, self.reason, alerts, &self.external_url, self.now_ms);
        (data, n - keep)
    }
}

/// A flush whose sends are under way.
#[derive(Debug, Clone)]
pub struct Flush {
    pub group: GroupId,
    /// The flush's number (engine-wide, never reused).
    pub number: u64,
    pub sends: Vec<Notification>,
    /// How long the sends may take (the group's `group_interval`).
    pub timeout_ms: i64,
}

#[derive(Debug, Clone)]
struct PendingLog {
    key: LogKey,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
    expiry_ms: i64,
}

/// A flush whose sends are under way, by its engine-wide number.
#[derive(Debug, Clone)]
struct InFlight {
    group: GroupId,
    resolved: Vec<Alert>,
    /// One per send, in order.
    logs: Vec<PendingLog>,
}

#[derive(Debug, Clone)]
struct Group {
    ag: AggrGroup,
    /// The number of its flush under way: it does not flush again before
    /// that one completes.
    busy: Option<u64>,
}

/// A notification-log key: group key, receiver, integration name and index.
pub type LogKey = (String, String, &'static str, usize);

/// A notification-log entry and when it expires.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub entry: LogEntry,
    pub expires_at_ms: i64,
}

/// Why posted alerts were refused by a limit (answered 429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError(pub String);

/// One workspace's Alertmanager.
#[derive(Debug)]
pub struct Engine {
    tree: RouteNode,
    /// In configuration order.
    receivers: Vec<(String, Vec<Integration>)>,
    time_intervals: BTreeMap<String, TimeIntervalSet>,
    external_url: String,
    limits: AlertingLimits,
    alerts: BTreeMap<u64, StoredAlert>,
    groups: BTreeMap<GroupId, Group>,
    inhibitor: Inhibitor,
    silences: Silences,
    nflog: BTreeMap<LogKey, StoredEntry>,
    last_update_ms: i64,
    /// Flushes under way, by number (numbers are never reused, so a
    /// delivery that outlives a reload is still recorded).
    in_flight: BTreeMap<u64, InFlight>,
    next_flush: u64,
    /// What changed since [`Engine::take_changes`] last ran.
    dirty: Dirty,
}

#[derive(Debug, Default)]
struct Dirty {
    alerts: BTreeSet<u64>,
    silences: BTreeSet<String>,
    log: BTreeSet<LogKey>,
}

/// A change of the engine's durable state: the new value, or `None` when
/// it is gone.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Alert(u64, Option<StoredAlert>),
    Silence(String, Option<Silence>),
    Log(LogKey, Option<StoredEntry>),
}

/// Alertmanager's `alert.Alert.Merge` of `old` (stored) and `new` at
/// `now`: the younger alert's data, the earliest start; the end is the
/// younger one's unless the older one's is later and — when the younger is
/// resolved — also resolved, or — when it is firing — not a resolve
/// timeout. The result keeps the younger alert's timeout mark.
fn merge(old: &StoredAlert, new: &StoredAlert, now_ms: i64) -> StoredAlert {
    let (a, o) = if new.alert.updated_at_ms < old.alert.updated_at_ms { (new, old) } else { (old, new) };
    let mut res = o.clone();
    if a.alert.starts_at_ms < o.alert.starts_at_ms {
        res.alert.starts_at_ms = a.alert.starts_at_ms;
    }
    let end = |s: &StoredAlert| s.alert.ends_at_ms.unwrap_or(i64::MIN);
    let later = end(a) > end(o);
    if o.alert.resolved_at(now_ms) {
        if a.alert.resolved_at(now_ms) && later {
            res.alert.ends_at_ms = a.alert.ends_at_ms;
        }
    } else if later && !a.timeout {
        res.alert.ends_at_ms = a.alert.ends_at_ms;
    }
    res
}

fn alert_size(a: &Alert) -> usize {
    a.labels.iter().chain(&a.annotations).map(|(k, v)| k.len() + v.len()).sum::<usize>() + a.generator_url.len()
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn time_of(ms: Option<i64>) -> NotificationTime {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map_or_else(templates::zero_time, |t| t.fixed_offset())
}

/// Alertmanager's `Template.Data` of a notification at `now`.
pub fn template_data(
    receiver: &str,
    group_labels: &LabelSet,
    reason: NotifyReason,
    alerts: &[Alert],
    external_url: &str,
    now_ms: i64,
) -> NotificationData {
    let status = |a: &Alert| if a.resolved_at(now_ms) { "resolved" } else { "firing" };
    let mut data = NotificationData {
        receiver: quote_meta(receiver),
        status: if alerts.iter().any(|a| !a.resolved_at(now_ms)) { "firing" } else { "resolved" }.into(),
        alerts: alerts
            .iter()
            .map(|a| NotificationAlert {
                status: status(a).into(),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: time_of(Some(a.starts_at_ms)),
                ends_at: time_of(a.ends_at_ms),
                generator_url: a.generator_url.clone(),
                fingerprint: format!("{:016x}", a.fingerprint()),
            })
            .collect(),
        notification_reason: reason.as_str().into(),
        group_labels: group_labels.clone(),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        external_url: external_url.into(),
    };
    if let Some((first, rest)) = alerts.split_first() {
        let mut labels = first.labels.clone();
        let mut annotations = first.annotations.clone();
        for a in rest {
            labels.retain(|k, v| a.labels.get(k) == Some(v));
            annotations.retain(|k, v| a.annotations.get(k) == Some(v));
        }
        data.common_labels = labels;
        data.common_annotations = annotations;
    }
    data
}

impl Engine {
    /// The engine of a configuration; `external_url` is what templates see
    /// as `.ExternalURL`.
    pub fn new(config: &Config, limits: AlertingLimits, external_url: &str) -> Self {
        let max_silences = limits.max_silences;
        Self {
            tree: RouteNode::new(&config.route),
            receivers: config.receivers.iter().map(|r| (r.name.clone(), integrations(r, &config.global))).collect(),
            time_intervals: config.time_intervals.iter().map(|t| (t.name.clone(), t.clone())).collect(),
            external_url: external_url.to_owned(),
            limits,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            inhibitor: Inhibitor::new(&config.inhibit_rules),
            silences: Silences::new(DEFAULT_RETENTION_MS, max_silences),
            nflog: BTreeMap::new(),
            last_update_ms: i64::MIN,
            in_flight: BTreeMap::new(),
            next_flush: 1,
            dirty: Dirty::default(),
        }
    }

    /// Runs a new configuration (Alertmanager's reload): the alerts,
    /// silences and notification log are kept; the routing tree,
    /// receivers, time intervals and inhibition rules are replaced and the
    /// stored alerts routed again into new groups (an alert older than its
    /// group's `group_wait` flushes at once; the log keeps what was sent).
    pub fn reconfigure(&mut self, config: &Config, limits: AlertingLimits, now_ms: i64) {
        self.tree = RouteNode::new(&config.route);
        self.receivers = config.receivers.iter().map(|r| (r.name.clone(), integrations(r, &config.global))).collect();
        self.time_intervals = config.time_intervals.iter().map(|t| (t.name.clone(), t.clone())).collect();
        self.inhibitor = Inhibitor::new(&config.inhibit_rules);
        self.silences.set_limit(limits.max_silences);
        self.limits = limits;
        self.groups.clear();
        let alerts: Vec<Alert> = self.alerts.values().map(|s| s.alert.clone()).collect();
        for a in &alerts {
            self.inhibitor.observe(a);
            self.route(a, now_ms);
        }
        // A group whose previous incarnation is still delivering waits for
        // that delivery (and its log entries) before it flushes.
        for (number, f) in &self.in_flight {
            if let Some(g) = self.groups.get_mut(&f.group) {
                g.busy = Some(*number);
            }
        }
    }

    /// The integrations of a receiver.
    pub fn receiver_integrations(&self, receiver: &str) -> &[Integration] {
        self.receivers.iter().find(|(n, _)| n == receiver).map_or(&[], |(_, i)| i.as_slice())
    }

    /// The routing tree.
    pub fn tree(&self) -> &RouteNode {
        &self.tree
    }

    /// Stores and routes posted alerts at `now`. Alerts a limit refuses
    /// are left out and named in the error; the others are stored.
    ///
    /// # Errors
    /// [`LimitError`] when a limit refused one or more alerts.
    pub fn put(&mut self, posted: Vec<Accepted>, now_ms: i64) -> Result<(), LimitError> {
        let mut refused: Option<String> = None;
        for p in posted {
            // Updates are ordered: a later put is never older than an
            // earlier one, whatever the clock's resolution.
            let updated = now_ms.max(self.last_update_ms.saturating_add(1));
            self.last_update_ms = updated;
            let mut new = StoredAlert { alert: p.alert, timeout: p.timeout };
            new.alert.updated_at_ms = updated;
            let fp = new.alert.fingerprint();
            let old = self.alerts.get(&fp);
            if let Some(old) = old {
                let (ns, ne) = (new.alert.starts_at_ms, new.alert.ends_at_ms.unwrap_or(i64::MIN));
                let (os, oe) = (old.alert.starts_at_ms, old.alert.ends_at_ms.unwrap_or(i64::MIN));
                if (ne > os && ne < oe) || (ns > os && ns < oe) {
                    new = merge(old, &new, now_ms);
                }
            }
            if let Err(e) = self.check_limits(old, &new.alert, now_ms) {
                refused.get_or_insert(e);
                continue;
            }
            self.alerts.insert(fp, new.clone());
            self.dirty.alerts.insert(fp);
            self.inhibitor.observe(&new.alert);
            self.route(&new.alert, now_ms);
        }
        refused.map_or(Ok(()), |e| Err(LimitError(e)))
    }

    fn check_limits(&self, old: Option<&StoredAlert>, new: &Alert, now_ms: i64) -> Result<(), String> {
        let firing = |a: &Alert| !a.resolved_at(now_ms);
        if firing(new) && !old.is_some_and(|o| firing(&o.alert)) {
            let active = self.alerts.values().filter(|s| firing(&s.alert)).count();
            if active >= self.limits.max_active_alerts {
                return Err(format!("too many alerts, limit: {}", self.limits.max_active_alerts));
            }
        }
        let total: usize = self.alerts.values().map(|s| alert_size(&s.alert)).sum();
        let total = total - old.map_or(0, |o| alert_size(&o.alert)) + alert_size(new);
        if total > self.limits.max_alerts_bytes {
            return Err(format!("alerts too big, total size limit: {} bytes", self.limits.max_alerts_bytes));
        }
        Ok(())
    }

    fn route(&mut self, alert: &Alert, now_ms: i64) {
        let Self { tree, groups, limits, .. } = self;
        for node in tree.matches(&alert.labels) {
            let id = (node.id().to_owned(), fingerprint(&node.group_labels(&alert.labels)));
            match groups.get_mut(&id) {
                Some(g) if !g.ag.destroyed => g.ag.insert(alert.clone()),
                _ => {
                    let live = groups.values().filter(|g| !g.ag.destroyed).count();
                    if limits.max_aggregation_groups > 0 && live >= limits.max_aggregation_groups {
                        // As Alertmanager: the alert stays stored but is
                        // not grouped under this route.
                        continue;
                    }
                    let mut ag = AggrGroup::new(node, alert, now_ms);
                    ag.insert(alert.clone());
                    groups.insert(id, Group { ag, busy: None });
                }
            }
        }
    }

    /// When a group is next due (for the runtime's timer).
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.values().filter(|g| g.busy.is_none() && !g.ag.destroyed).map(|g| g.ag.next_flush_ms).min()
    }

    /// Flushes every due group at `now`; returns the flushes with sends to
    /// make. Each must be [`complete`](Self::complete)d.
    pub fn flush_due(&mut self, now_ms: i64) -> Vec<Flush> {
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.busy.is_none() && !g.ag.destroyed && g.ag.next_flush_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(f) = self.flush_group(&id, now_ms) {
                out.push(f);
            }
        }
        out
    }

    fn flush_group(&mut self, id: &GroupId, now_ms: i64) -> Option<Flush> {
        let g = self.groups.get_mut(id)?;
        let flush = g.ag.flush(now_ms)?;
        let number = self.next_flush;
        self.next_flush += 1;
        g.busy = Some(number);
        let group_labels = g.ag.labels.clone();
        let opts = g.ag.opts.clone();
        self.in_flight
            .insert(number, InFlight { group: id.clone(), resolved: flush.resolved.clone(), logs: Vec::new() });
        // The pipeline: inhibition, time intervals, silences.
        let mut alerts: Vec<Alert> =
            flush.alerts.into_iter().filter(|a| self.inhibitor.mutes(&a.labels, now_ms).is_none()).collect();
        let in_any =
            |names: &[String]| names.iter().any(|n| self.time_intervals.get(n).is_some_and(|t| t.contains(now_ms)));
        if !opts.active_time_intervals.is_empty() && !in_any(&opts.active_time_intervals) {
            alerts.clear();
        }
        if in_any(&opts.mute_time_intervals) {
            alerts.clear();
        }
        alerts.retain(|a| self.silences.muting(&a.labels, now_ms).is_empty());
        let mut sends = Vec::new();
        let mut logs = Vec::new();
        if !alerts.is_empty() {
            let firing: BTreeSet<u64> =
                alerts.iter().filter(|a| !a.resolved_at(now_ms)).map(Alert::fingerprint).collect();
            let resolved: BTreeSet<u64> =
                alerts.iter().filter(|a| a.resolved_at(now_ms)).map(Alert::fingerprint).collect();
            for integ in self.receiver_integrations(&opts.receiver).to_vec() {
                let (name, index, send_resolved) = (integ.name, integ.index, integ.send_resolved);
                let key: LogKey = (flush.group_key.clone(), opts.receiver.clone(), name, index);
                let entry = self.nflog.get(&key).filter(|e| e.expires_at_ms > now_ms).map(|e| &e.entry);
                let reason = needs_update(entry, &firing, &resolved, send_resolved, opts.repeat_interval_ms, now_ms);
                if !reason.should_notify() {
                    continue;
                }
                let log = PendingLog {
                    key,
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                    expiry_ms: 2 * opts.repeat_interval_ms,
                };
                let sent: Vec<Alert> = if send_resolved {
                    alerts.clone()
                } else {
                    alerts.iter().filter(|a| !a.resolved_at(now_ms)).cloned().collect()
                };
                if sent.is_empty() {
                    // Nothing to send to a receiver that skips resolved
                    // alerts: logged as notified (RetryStage's shortcut).
                    self.log(log, now_ms);
                    continue;
                }
                sends.push(Notification {
                    receiver: opts.receiver.clone(),
                    integration: integ,
                    group_key: flush.group_key.clone(),
                    group_labels: group_labels.clone(),
                    reason,
                    alerts: sent,
                    external_url: self.external_url.clone(),
                    now_ms,
                });
                logs.push(log);
            }
        }
        if let Some(f) = self.in_flight.get_mut(&number) {
            f.logs = logs;
        }
        if sends.is_empty() {
            self.complete(id, number, &[], now_ms);
            return None;
        }
        Some(Flush { group: id.clone(), number, sends, timeout_ms: opts.group_interval_ms })
    }

    fn log(&mut self, log: PendingLog, now_ms: i64) {
        let entry = LogEntry { firing: log.firing, resolved: log.resolved, timestamp_ms: now_ms };
        self.dirty.log.insert(log.key.clone());
        self.nflog.insert(log.key, StoredEntry { entry, expires_at_ms: now_ms + log.expiry_ms });
    }

    /// The outcome of a flush's sends (`delivered[i]` for `sends[i]`) at
    /// `now`: delivered integrations are logged (even when a reload
    /// replaced the group since); when all were, the resolved alerts the
    /// flush carried leave their group.
    pub fn complete(&mut self, group: &GroupId, number: u64, delivered: &[bool], now_ms: i64) {
        let Some(f) = self.in_flight.remove(&number) else { return };
        let all = delivered.iter().all(|d| *d) && delivered.len() == f.logs.len();
        for (log, ok) in f.logs.into_iter().zip(delivered) {
            if *ok {
                self.log(log, now_ms);
            }
        }
        let Some(g) = self.groups.get_mut(group) else { return };
        if g.busy != Some(number) {
            return;
        }
        g.busy = None;
        if all {
            g.ag.notified(&f.resolved);
            if g.ag.destroyed {
                self.groups.remove(group);
            }
        }
    }

    /// Housekeeping at `now`: resolved alerts leave the store (Alertmanager
    /// collects them every `--alerts.gc-interval`), resolved inhibition
    /// sources go, expired silences and log entries are forgotten.
    pub fn collect(&mut self, now_ms: i64) {
        let Self { alerts, nflog, dirty, .. } = self;
        alerts.retain(|fp, s| {
            let keep = !s.alert.resolved_at(now_ms);
            if !keep {
                dirty.alerts.insert(*fp);
            }
            keep
        });
        nflog.retain(|k, e| {
            let keep = e.expires_at_ms > now_ms;
            if !keep {
                dirty.log.insert(k.clone());
            }
            keep
        });
        self.inhibitor.collect(now_ms);
        self.dirty.silences.extend(self.silences.collect(now_ms));
    }

    /// The workspace's silences (changed through [`Self::set_silence`] and
    /// [`Self::expire_silence`]).
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// Creates or updates a silence at `now` (see [`Silences::set`]).
    ///
    /// # Errors
    /// [`SilenceError`] with Alertmanager's message.
    pub fn set_silence(
        &mut self,
        s: Silence,
        now_ms: i64,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, SilenceError> {
        let previous = s.id.clone();
        let id = self.silences.set(s, now_ms, new_id)?;
        self.dirty.silences.insert(id.clone());
        if !previous.is_empty() {
            self.dirty.silences.insert(previous);
        }
        Ok(id)
    }

    /// Expires a silence at `now`.
    ///
    /// # Errors
    /// [`SilenceError::NotFound`].
    pub fn expire_silence(&mut self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        self.silences.expire(id, now_ms)?;
        self.dirty.silences.insert(id.to_owned());
        Ok(())
    }

    /// The durable state's changes since the last call, current values.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        out.extend(dirty.alerts.into_iter().map(|fp| Change::Alert(fp, self.alerts.get(&fp).cloned())));
        out.extend(dirty.silences.into_iter().map(|id| {
            let v = self.silences.get(&id).cloned();
            Change::Silence(id, v)
        }));
        out.extend(dirty.log.into_iter().map(|k| {
            let v = self.nflog.get(&k).cloned();
            Change::Log(k, v)
        }));
        out
    }

    /// Marks changes as not saved yet (their save failed): the next
    /// [`Self::take_changes`] returns them again, with current values.
    pub fn unsaved(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Alert(fp, _) => {
                    self.dirty.alerts.insert(*fp);
                }
                Change::Silence(id, _) => {
                    self.dirty.silences.insert(id.clone());
                }
                Change::Log(k, _) => {
                    self.dirty.log.insert(k.clone());
                }
            }
        }
    }

    /// Every durable item as a deletion (the workspace is going away).
    pub fn all_as_deleted(&self) -> Vec<Change> {
        let mut out: Vec<Change> = self.alerts.keys().map(|fp| Change::Alert(*fp, None)).collect();
        out.extend(self.silences.all().map(|s| Change::Silence(s.id.clone(), None)));
        out.extend(self.nflog.keys().map(|k| Change::Log(k.clone(), None)));
        out
    }

    /// Restores durable state read back from the log at `now`: alerts are
    /// routed again (those older than their group's `group_wait` flush at
    /// once; the restored log keeps what was already sent from going out
    /// again).
    pub fn restore(&mut self, changes: Vec<Change>, now_ms: i64) {
        let mut alerts = Vec::new();
        for c in changes {
            match c {
                Change::Alert(fp, Some(a)) => {
                    self.last_update_ms = self.last_update_ms.max(a.alert.updated_at_ms);
                    alerts.push(a.alert.clone());
                    self.alerts.insert(fp, a);
                }
                Change::Silence(_, Some(s)) => self.silences.restore(s),
                Change::Log(k, Some(e)) => {
                    self.nflog.insert(k, e);
                }
                _ => {}
            }
        }
        for a in &alerts {
            self.inhibitor.observe(a);
            self.route(a, now_ms);
        }
    }

    /// The stored alerts.
    pub fn alerts(&self) -> impl Iterator<Item = &StoredAlert> {
        self.alerts.values()
    }

    /// The receivers of the routes `labels` matches, in tree order (one
    /// per matching route, as Alertmanager lists them).
    pub fn receivers_of(&self, labels: &LabelSet) -> Vec<String> {
        self.tree.matches(labels).iter().map(|n| n.opts.receiver.clone()).collect()
    }

    /// The receivers' names, in configuration order.
    pub fn receiver_names(&self) -> Vec<String> {
        self.receivers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The fingerprint of the alert inhibiting `labels` at `now`, if any.
    pub fn inhibited_by(&self, labels: &LabelSet, now_ms: i64) -> Option<u64> {
        self.inhibitor.mutes(labels, now_ms)
    }

    /// The aggregation groups (live ones) and their alerts.
    pub fn groups(&self) -> impl Iterator<Item = &AggrGroup> {
        self.groups.values().filter(|g| !g.ag.destroyed).map(|g| &g.ag)
    }

    /// The notification log.
    pub fn notification_log(&self) -> &BTreeMap<LogKey, StoredEntry> {
        &self.nflog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dispatch::tests::labels;

    const CONFIG: &str = "
route:
  receiver: team
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - matchers: [quiet=\"yes\"]
      receiver: quiet
receivers:
  - name: team
    webhook_configs: [{url: 'http://sink/a'}, {url: 'http://sink/b', send_resolved: false}]
  - name: quiet
    webhook_configs: [{url: 'http://sink/q', send_resolved: false}]
inhibit_rules:
  - {source_matchers: [severity=critical], target_matchers: [severity=warning], equal: [alertname]}
";

    fn engine() -> Engine {
        Engine::new(&amconfig::parse_config(CONFIG).unwrap(), AlertingLimits::default(), "http://am")
    }

    fn posted(pairs: &[(&str, &str)], starts: i64, ends: Option<i64>) -> Accepted {
        Accepted {
            alert: Alert {
                labels: labels(pairs),
                annotations: LabelSet::new(),
                starts_at_ms: starts,
                ends_at_ms: Some(ends.unwrap_or(starts + 300_000)),
                generator_url: String::new(),
                updated_at_ms: 0,
            },
            timeout: ends.is_none(),
        }
    }

    /// Flushes at `now` and completes every send as delivered; returns
    /// (integration url index, alert statuses) per send.
    fn flush_ok(e: &mut Engine, now: i64) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = Vec::new();
        for f in e.flush_due(now) {
            for n in &f.sends {
                let (data, _) = n.data(0);
                let alerts = data.alerts.iter().map(|a| (a.labels["instance"].clone(), a.status.clone())).collect();
                out.push((format!("{}{}", n.receiver, n.integration.index), alerts));
            }
            let ok = vec![true; f.sends.len()];
            e.complete(&f.group, f.number, &ok, now);
        }
        out
    }

    fn st(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn groups_notify_once_then_on_change_and_after_repeat_interval() {
        let mut e = engine();
        let a = [("alertname", "Disk"), ("instance", "a")];
        let b = [("alertname", "Disk"), ("instance", "b")];
        e.put(vec![posted(&a, 0, Some(10_000_000)), posted(&b, 0, None)], 0).unwrap();
        assert!(flush_ok(&mut e, 9_999).is_empty(), "group_wait not over");
        let sent = flush_ok(&mut e, 10_000);
        let both = st(&[("a", "firing"), ("b", "firing")]);
        assert_eq!(sent, vec![("team0".to_owned(), both.clone()), ("team1".to_owned(), both.clone())]);
        // Nothing new at the next group_interval: no notification.
        assert!(flush_ok(&mut e, 70_000).is_empty());
        // b resolves: the receiver sending resolved alerts is told; the
        // other is not.
        e.put(vec![posted(&b, 0, Some(80_000))], 80_000).unwrap();
        let sent = flush_ok(&mut e, 130_000);
        assert_eq!(sent, vec![("team0".to_owned(), st(&[("a", "firing"), ("b", "resolved")]))]);
        // The resolved alert left the group after its notification.
        assert_eq!(e.groups().next().unwrap().alerts().count(), 1);
        // repeat_interval after the last notification to each integration.
        assert!(flush_ok(&mut e, 190_000).is_empty());
        let t = 10_000 + 3_600_000;
        let due: Vec<i64> = (0..70).map(|i| 130_000 + i * 60_000).filter(|x| *x > t).collect();
        let sent = flush_ok(&mut e, due[0]);
        assert_eq!(sent.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["team1"]);
        let sent = flush_ok(&mut e, due[0] + 60_000 * 2);
        assert_eq!(sent.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["team0"]);
    }

    #[test]
    fn muted_alerts_are_not_sent_and_resolved_muted_alerts_leave_the_group() {
        let mut e = engine();
        let warn = [("alertname", "X"), ("instance", "w"), ("severity", "warning")];
        let crit = [("alertname", "X"), ("instance", "c"), ("severity", "critical")];
        e.put(vec![posted(&warn, 0, None), posted(&crit, 0, None)], 0).unwrap();
        let sent = flush_ok(&mut e, 10_000);
        assert_eq!(sent[0].1, st(&[("c", "firing")]), "the warning is inhibited");
        // A silence on the critical alert: nothing left to send.
        e.set_silence(
            crate::silence::Silence {
                id: String::new(),
                matchers: amconfig::parse_matchers("{severity=\"critical\"}").unwrap(),
                starts_at_ms: None,
                ends_at_ms: 1_000_000,
                updated_at_ms: 0,
                created_by: "t".into(),
                comment: "t".into(),
            },
            20_000,
            || "s1".into(),
        )
        .unwrap();
        // The critical one resolves while silenced: the warning fires
        // again (no longer inhibited) and is the only alert sent.
        e.put(vec![posted(&crit, 0, Some(30_000))], 30_000).unwrap();
        let sent = flush_ok(&mut e, 70_000);
        assert_eq!(sent[0].1, st(&[("w", "firing")]));
        assert_eq!(e.groups().next().unwrap().alerts().count(), 1, "the silenced resolved alert was removed");
    }

    #[test]
    fn merges_keep_the_earliest_start_and_a_posted_end_over_a_timeout() {
        let old = StoredAlert { alert: posted(&[("a", "1")], 1_000, Some(50_000)).alert, timeout: false };
        let mut new = StoredAlert { alert: posted(&[("a", "1")], 5_000, None).alert, timeout: true };
        new.alert.updated_at_ms = 10;
        let m = merge(&old, &new, 10_000);
        assert_eq!((m.alert.starts_at_ms, m.alert.ends_at_ms), (1_000, Some(305_000)));
        // A firing younger alert with a timeout end does not beat an
        // older, later, posted end.
        let old = StoredAlert { alert: posted(&[("a", "1")], 1_000, Some(900_000)).alert, timeout: false };
        let m = merge(&old, &new, 10_000);
        assert_eq!(m.alert.ends_at_ms, Some(900_000));
    }

    #[test]
    fn limits_refuse_new_firing_alerts_but_never_a_resolution() {
        let limits = AlertingLimits { max_active_alerts: 1, ..AlertingLimits::default() };
        let mut e = Engine::new(&amconfig::parse_config(CONFIG).unwrap(), limits, "");
        e.put(vec![posted(&[("alertname", "A")], 0, None)], 0).unwrap();
        let err = e.put(vec![posted(&[("alertname", "B")], 0, None)], 0).unwrap_err();
        assert_eq!(err.0, "too many alerts, limit: 1");
        assert_eq!(e.alerts().count(), 1);
        e.put(vec![posted(&[("alertname", "A")], 0, None)], 1).unwrap();
        e.put(vec![posted(&[("alertname", "C")], 0, Some(1))], 2).unwrap();
        assert_eq!(e.alerts().count(), 2);
    }

    #[test]
    fn a_reload_during_a_delivery_neither_repeats_nor_loses_it() {
        let mut e = engine();
        let a = [("alertname", "Disk"), ("instance", "a")];
        e.put(vec![posted(&a, 0, Some(10_000_000))], 0).unwrap();
        let flushes = e.flush_due(10_000);
        assert_eq!(flushes.len(), 1);
        let f = &flushes[0];
        // The definition is reloaded while the delivery is under way: the
        // rebuilt group waits for it instead of sending the same again.
        e.reconfigure(&amconfig::parse_config(CONFIG).unwrap(), AlertingLimits::default(), 20_000);
        assert!(e.flush_due(20_000).is_empty(), "the same notification sent twice");
        e.complete(&f.group, f.number, &vec![true; f.sends.len()], 21_000);
        assert_eq!(e.notification_log().len(), 2, "both integrations' deliveries logged");
        // The rebuilt group flushes again, and the log says all was sent.
        let later: Vec<Flush> = e.flush_due(100_000);
        assert!(later.iter().all(|f| f.sends.is_empty()), "repeated after the reload: {later:?}");
    }

    #[test]
    fn changes_whose_save_failed_are_saved_again() {
        let mut e = engine();
        e.put(vec![posted(&[("alertname", "A")], 0, None)], 0).unwrap();
        let changes = e.take_changes();
        assert_eq!(changes.len(), 1);
        assert!(e.take_changes().is_empty());
        e.unsaved(&changes);
        assert_eq!(e.take_changes(), changes);
    }
}
