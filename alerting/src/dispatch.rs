//! Aggregation groups and the notification log's decision, as
//! Alertmanager's dispatcher (`dispatch.aggrGroup`) and dedup stage
//! (`notify.DedupStage`) make them — pure state over explicit times, so
//! the engine drives them with its clock and the tests with theirs.
//!
//! * An alert routed to a node joins the group of its group labels under
//!   that node (group key `route key:{labels}`); a new group flushes first
//!   after `group_wait` (at once when its first alert started longer ago),
//!   then every `group_interval`.
//! * A flush takes every alert of the group (resolved ones with their end,
//!   firing ones with none), sorted as Alertmanager sorts them (`job`, then
//!   `instance`, then the label sets); after a successful notification the
//!   resolved alerts it carried leave the group unless they changed since.
//! * The notification log's entry for (group key, receiver) decides
//!   whether a flush notifies: the first firing alerts, new firing alerts,
//!   all resolved, new resolved ones (when the receiver sends resolved),
//!   or `repeat_interval` elapsed since the last notification.

use std::collections::{BTreeMap, BTreeSet};

use crate::routing::{LabelSet, RouteNode, RouteOpts};

/// An alert as the dispatcher holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    /// Unix milliseconds.
    pub starts_at_ms: i64,
    /// Unix milliseconds; `None`: no end given.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
    /// When Alertmanager last received it (the authoritative time).
    pub updated_at_ms: i64,
}

impl Alert {
    /// Whether it is resolved at `now` (`ResolvedAt`: an end at or before now).
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms.is_some_and(|e| e <= now_ms)
    }

    /// The fingerprint of its labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }
}

/// Prometheus's `LabelSet.Fingerprint` (`LabelsToSignature`): FNV-1a
/// 64 over each `name 0xff value 0xff` in name order.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// Prometheus's `LabelSet.String()`: `{a="b", c="d"}`.
pub fn labels_string(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", templates::go::go_quote(v))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Alertmanager's order of the alerts of a notification (`AlertSlice`).
pub(crate) fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    label_set_order(&a.labels, &b.labels)
}

/// `LabelSet.Before`: fewer labels first, then the first differing name
/// or value over the union of names.
pub(crate) fn label_set_order(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

/// One aggregation group.
#[derive(Debug, Clone)]
pub struct AggrGroup {
    /// `route key:{group labels}`.
    pub key: String,
    pub labels: LabelSet,
    pub route_id: String,
    pub opts: RouteOpts,
    alerts: BTreeMap<u64, Alert>,
    /// When it flushes next, Unix milliseconds.
    pub next_flush_ms: i64,
    /// Flushes so far.
    pub flushes: u64,
    /// Emptied by a notification: no alert joins it any more (a new
    /// alert for its labels starts a new group).
    pub destroyed: bool,
}

/// What a flush hands the notification pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    pub group_key: String,
    pub receiver: String,
    /// Firing alerts (their end cleared) and resolved ones, sorted.
    pub alerts: Vec<Alert>,
    /// The resolved alerts as flushed, to remove after a successful send.
    pub resolved: Vec<Alert>,
}

impl AggrGroup {
    /// A group of `route` for its first alert, created at `now`: it
    /// flushes first after `group_wait`, or at once when the alert started
    /// more than `group_wait` ago.
    pub fn new(route: &RouteNode, first: &Alert, now_ms: i64) -> Self {
        let group_labels = route.group_labels(&first.labels);
        let wait = if first.starts_at_ms + route.opts.group_wait_ms < now_ms { 0 } else { route.opts.group_wait_ms };
        Self {
            key: format!("{}:{}", route.key(), labels_string(&group_labels)),
            labels: group_labels,
            route_id: route.id().to_owned(),
            opts: route.opts.clone(),
            alerts: BTreeMap::new(),
            next_flush_ms: now_ms + wait,
            flushes: 0,
            destroyed: false,
        }
    }

    /// Adds or replaces an alert (by fingerprint).
    pub fn insert(&mut self, alert: Alert) {
        self.alerts.insert(alert.fingerprint(), alert);
    }

    /// Whether it holds no alert (and can be dropped).
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// The alerts it holds.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Flushes at `now` when due: the next flush is set `group_interval`
    /// later and the alerts are handed over (`None` when not due or empty).
    pub fn flush(&mut self, now_ms: i64) -> Option<Flush> {
        if now_ms < self.next_flush_ms {
            return None;
        }
        self.next_flush_ms = now_ms + self.opts.group_interval_ms;
        self.flushes += 1;
        if self.alerts.is_empty() {
            return None;
        }
        let mut alerts = Vec::with_capacity(self.alerts.len());
        let mut resolved = Vec::new();
        for a in self.alerts.values() {
            let mut a = a.clone();
            if a.resolved_at(now_ms) {
                resolved.push(a.clone());
            } else {
                a.ends_at_ms = None;
            }
            alerts.push(a);
        }
        alerts.sort_by(alert_order);
        Some(Flush { group_key: self.key.clone(), receiver: self.opts.receiver.clone(), alerts, resolved })
    }

    /// After a successful notification: the resolved alerts it carried
    /// leave the group, unless they were updated since
    /// (`DeleteIfNotModified`); a group left empty is destroyed.
    pub fn notified(&mut self, resolved: &[Alert]) {
        for r in resolved {
            let fp = r.fingerprint();
            if self.alerts.get(&fp).is_some_and(|a| a.updated_at_ms == r.updated_at_ms) {
                self.alerts.remove(&fp);
            }
        }
        if self.alerts.is_empty() {
            self.destroyed = true;
        }
    }
}

/// The notification log's entry for one group and receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogEntry {
    /// Fingerprints of the firing alerts last notified.
    pub firing: BTreeSet<u64>,
    /// Fingerprints of the resolved alerts last notified.
    pub resolved: BTreeSet<u64>,
    /// When, Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Why a flush notifies (`NotifyReason`), or does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyReason {
    DoNotNotify,
    FirstNotification,
    NewAlertsInGroup,
    AllAlertsResolved,
    NewResolvedAlerts,
    RepeatIntervalElapsed,
}

impl NotifyReason {
    /// Whether the notification is sent.
    pub fn should_notify(self) -> bool {
        self != NotifyReason::DoNotNotify
    }

    /// Its text in templates' `.NotificationReason` and the webhook's
    /// `notification_reason` (`NotifyReason.String`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReason::DoNotNotify => "none",
            NotifyReason::FirstNotification => "first notification",
            NotifyReason::NewAlertsInGroup => "new alerts added",
            NotifyReason::AllAlertsResolved => "all alerts resolved",
            NotifyReason::NewResolvedAlerts => "some alerts resolved",
            NotifyReason::RepeatIntervalElapsed => "repeat interval elapsed",
        }
    }
}

/// `DedupStage.needsUpdate`: whether a flush with these firing and
/// resolved alerts notifies, given the log's entry.
pub fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_interval_ms: i64,
    now_ms: i64,
) -> NotifyReason {
    let Some(entry) = entry else {
        return if firing.is_empty() { NotifyReason::DoNotNotify } else { NotifyReason::FirstNotification };
    };
    // A firing alert the last notification did not carry.
    if !firing.is_subset(&entry.firing) {
        return if entry.firing.is_empty() { NotifyReason::FirstNotification } else { NotifyReason::NewAlertsInGroup };
    }
    if firing.is_empty() {
        return if entry.firing.is_empty() { NotifyReason::DoNotNotify } else { NotifyReason::AllAlertsResolved };
    }
    // A resolved alert the last notification did not carry.
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return NotifyReason::NewResolvedAlerts;
    }
    if entry.timestamp_ms < now_ms - repeat_interval_ms {
        return NotifyReason::RepeatIntervalElapsed;
    }
    NotifyReason::DoNotNotify
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// An alert with these labels, end and update time.
    pub(crate) fn alert(pairs: &[(&str, &str)], ends: Option<i64>, updated: i64) -> Alert {
        Alert {
            labels: labels(pairs),
            annotations: LabelSet::new(),
            starts_at_ms: 0,
            ends_at_ms: ends,
            generator_url: String::new(),
            updated_at_ms: updated,
        }
    }

    #[test]
    fn fingerprints_are_prometheus_label_signatures() {
        // model.LabelSet{}.Fingerprint() is FNV-1a's offset basis; values
        // checked against prometheus/common's LabelsToSignature.
        assert_eq!(fingerprint(&LabelSet::new()), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fingerprint(&labels(&[("a", "b")])), fingerprint(&labels(&[("ab", "")])));
        assert_eq!(labels_string(&labels(&[("b", "x\"y"), ("a", "1")])), "{a=\"1\", b=\"x\\\"y\"}");
    }

    #[test]
    fn a_group_flushes_after_group_wait_then_every_group_interval() {
        let cfg = amconfig::parse_config(
            "route: {receiver: r, group_by: [alertname], group_wait: 30s, group_interval: 5m}\nreceivers: [{name: r}]\n",
        )
        .unwrap();
        let tree = RouteNode::new(&cfg.route);
        let a = alert(&[("alertname", "Down"), ("instance", "b"), ("job", "x")], None, 1);
        let mut g = AggrGroup::new(&tree, &Alert { starts_at_ms: 1_000, ..a.clone() }, 1_000);
        assert_eq!(g.key, "{}:{alertname=\"Down\"}");
        g.insert(a.clone());
        g.insert(alert(&[("alertname", "Down"), ("instance", "a"), ("job", "x")], Some(20_000), 1));
        assert!(g.flush(30_999).is_none());
        let f = g.flush(31_000).unwrap();
        assert_eq!(g.next_flush_ms, 331_000);
        // Sorted by job, then instance; the resolved one keeps its end.
        let order: Vec<&str> = f.alerts.iter().map(|a| a.labels["instance"].as_str()).collect();
        assert_eq!(order, ["a", "b"]);
        assert_eq!((f.alerts[0].ends_at_ms, f.resolved.len()), (Some(20_000), 1));
        g.notified(&f.resolved);
        assert_eq!(g.alerts().count(), 1);
        assert!(g.flush(331_000).is_some());
        // An alert that started more than group_wait ago: flushed at once.
        let old = AggrGroup::new(&tree, &Alert { starts_at_ms: 0, ..a }, 31_000);
        assert_eq!(old.next_flush_ms, 31_000);
    }

    #[test]
    fn the_log_decides_as_alertmanagers_dedup_stage() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let hour = 3_600_000;
        assert_eq!(needs_update(None, &set(&[1]), &set(&[]), true, hour, 0), NotifyReason::FirstNotification);
        assert_eq!(needs_update(None, &set(&[]), &set(&[1]), true, hour, 0), NotifyReason::DoNotNotify);
        let e = LogEntry { firing: set(&[1, 2]), resolved: set(&[]), timestamp_ms: 0 };
        assert_eq!(needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, hour, 1000), NotifyReason::DoNotNotify);
        assert_eq!(needs_update(Some(&e), &set(&[1, 3]), &set(&[]), true, hour, 1000), NotifyReason::NewAlertsInGroup);
        // One of two resolved: notified only to receivers that send resolved.
        assert_eq!(needs_update(Some(&e), &set(&[1]), &set(&[2]), true, hour, 1000), NotifyReason::NewResolvedAlerts);
        assert_eq!(needs_update(Some(&e), &set(&[1]), &set(&[2]), false, hour, 1000), NotifyReason::DoNotNotify);
        assert_eq!(
            needs_update(Some(&e), &set(&[]), &set(&[1, 2]), false, hour, 1000),
            NotifyReason::AllAlertsResolved
        );
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, hour, hour + 1),
            NotifyReason::RepeatIntervalElapsed
        );
        let empty = LogEntry { firing: set(&[]), resolved: set(&[1]), timestamp_ms: 0 };
        assert_eq!(
            needs_update(Some(&empty), &set(&[1]), &set(&[]), true, hour, 1000),
            NotifyReason::FirstNotification
        );
        assert_eq!(needs_update(Some(&empty), &set(&[]), &set(&[1]), true, hour, 1000), NotifyReason::DoNotNotify);
    }
}
