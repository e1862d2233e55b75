//! An alerting rule's alerts: Prometheus 3.5's state machine
//! (`rules/alerting.go`) over millisecond timestamps, without I/O. The group
//! loop evaluates the expression, expands the templates into
//! [`Candidate`]s, and calls [`AlertingState::update`] (the new state and
//! the `ALERTS`/`ALERTS_FOR_STATE` samples), [`AlertingState::take_due`]
//! (what goes to the Alertmanager) and, once after a start,
//! [`AlertingState::restore`] (the `for` state from `ALERTS_FOR_STATE`).

use std::collections::{BTreeMap, HashMap, HashSet};

use common::seams::Labels;

/// How long a resolved alert is kept (and re-sent as resolved):
/// Prometheus's `resolvedRetention`.
pub(crate) const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Neither pending nor firing (a resolved alert, kept for a while).
    Inactive,
    /// Active for less than the rule's `for`.
    Pending,
    /// Active for at least the rule's `for`.
    Firing,
}

impl AlertState {
    /// Prometheus's name of the state (`alertstate` label, APIs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule: one label set of its expression's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Its state.
    pub state: AlertState,
    /// The result's labels without `__name__`, with the rule's labels
    /// (expanded) and `alertname`, sorted by name.
    pub labels: Labels,
    /// The rule's annotations, expanded, sorted by name.
    pub annotations: Labels,
    /// The expression's value at the last evaluation.
    pub value: f64,
    /// When the condition started to hold (Unix ms).
    pub active_at_ms: i64,
    /// When it went firing.
    pub fired_at_ms: Option<i64>,
    /// When it was resolved (only for an inactive alert).
    pub resolved_at_ms: Option<i64>,
    /// When it was last sent to the Alertmanager.
    pub last_sent_at_ms: Option<i64>,
    /// The `endsAt` sent with a firing alert.
    pub valid_until_ms: Option<i64>,
    /// Since when it fires only because of `keep_firing_for`.
    pub keep_firing_since_ms: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`: not pending, and resolved since it was
    /// last sent or last sent more than `resend_delay` before `ts`.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        match (self.resolved_at_ms, self.last_sent_at_ms) {
            (Some(_), None) => true,
            (Some(resolved), Some(sent)) if resolved > sent => true,
            (_, None) => true,
            (_, Some(sent)) => sent.saturating_add(resend_delay_ms) < ts,
        }
    }
}

/// One sample of the expression's result with the rule's templates
/// expanded for it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The alert's labels (see [`Alert::labels`]).
    pub(crate) labels: Labels,
    /// The expanded annotations.
    pub(crate) annotations: Labels,
    /// The sample's value.
    pub(crate) value: f64,
}

/// What an alerting rule is, as its state machine needs it.
#[derive(Debug, Clone)]
pub(crate) struct AlertingSpec<'a> {
    /// `alert:`.
    pub(crate) name: &'a str,
    /// The rule's labels as written (templates unexpanded): the base of the
    /// `ALERTS` series' labels, as in Prometheus.
    pub(crate) labels: &'a BTreeMap<String, String>,
    /// `for`, ms.
    pub(crate) hold_ms: i64,
    /// `keep_firing_for`, ms.
    pub(crate) keep_firing_for_ms: i64,
}

/// An alerting rule's alerts, by label set, and whether its `for` state was
/// restored (until then no `ALERTS`/`ALERTS_FOR_STATE` samples are written).
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertingState {
    pub(crate) active: HashMap<Labels, Alert>,
    pub(crate) restored: bool,
}

/// An `ALERTS` or `ALERTS_FOR_STATE` sample: labels, value.
pub(crate) type AlertSample = (Labels, f64);

impl AlertingState {
    /// Prometheus's `AlertingRule.Eval` after the query: new label sets go
    /// pending (at `ts`), existing ones take the new value and annotations,
    /// pending ones whose `for` passed fire, vanished ones resolve (unless
    /// `keep_firing_for` holds them), resolved ones are forgotten after
    /// [`RESOLVED_RETENTION_MS`]. Returns the `ALERTS` and `ALERTS_FOR_STATE`
    /// samples (written at `ts − query_offset`), none before the state was
    /// restored.
    ///
    /// # Errors
    ///
    /// Two candidates with one label set (state unchanged), or more active
    /// alerts than `limit` (every alert is dropped), with Prometheus's texts.
    pub(crate) fn update(
        &mut self,
        spec: &AlertingSpec<'_>,
        candidates: Vec<Candidate>,
        ts: i64,
        limit: i64,
    ) -> Result<Vec<AlertSample>, String> {
        let mut seen = HashSet::with_capacity(candidates.len());
        for c in &candidates {
            if !seen.insert(c.labels.clone()) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
        }
        for c in candidates {
            match self.active.get_mut(&c.labels) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = c.value;
                    alert.annotations = c.annotations;
                }
                _ => {
                    let alert = Alert {
                        state: AlertState::Pending,
                        labels: c.labels.clone(),
                        annotations: c.annotations,
                        value: c.value,
                        active_at_ms: ts,
                        fired_at_ms: None,
                        resolved_at_ms: None,
                        last_sent_at_ms: None,
                        valid_until_ms: None,
                        keep_firing_since_ms: None,
                    };
                    self.active.insert(c.labels, alert);
                }
            }
        }
        let mut samples = Vec::new();
        let mut active_or_pending = 0_i64;
        let mut forget = Vec::new();
        for (key, a) in &mut self.active {
            if seen.contains(key) {
                a.keep_firing_since_ms = None;
            } else {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && spec.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    keep_firing = ts - since < spec.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending || a.resolved_at_ms.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    forget.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            }
            active_or_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at_ms >= spec.hold_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts);
            }
            if self.restored {
                samples.push((series_labels(spec, a, "ALERTS", Some(a.state)), 1.0));
                samples
                    .push((series_labels(spec, a, "ALERTS_FOR_STATE", None), a.active_at_ms.div_euclid(1000) as f64));
            }
        }
        for key in forget {
            self.active.remove(&key);
        }
        if limit > 0 && active_or_pending > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_or_pending} alerts"));
        }
        Ok(samples)
    }

    /// Prometheus's `sendAlerts`: the alerts that need sending at `ts`,
    /// marked sent, a firing one valid until `ts + 4·max(resend delay,
    /// interval)` (two missed evaluations or sends are tolerated).
    pub(crate) fn take_due(&mut self, ts: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at_ms = Some(ts);
                a.valid_until_ms = Some(ts + 4 * resend_delay_ms.max(interval_ms));
                out.push(a.clone());
            }
        }
        out
    }

    /// Prometheus's `RestoreForState` for this rule at `ts` (wall time),
    /// from the last sample at or before `ts` of each `ALERTS_FOR_STATE`
    /// series (labels without `__name__` → (timestamp ms, value)) read
    /// back to `ts − outage tolerance`: an alert that was pending before a
    /// restart keeps the time it already spent pending (its `activeAt` is
    /// moved by the downtime, and it fires no sooner than `grace` after
    /// `ts`). Rules whose `for` is shorter than `grace` are not restored.
    /// Marks the rule restored.
    pub(crate) fn restore(&mut self, hold_ms: i64, grace_ms: i64, series: &HashMap<Labels, (i64, f64)>, ts: i64) {
        self.restored = true;
        if hold_ms < grace_ms || series.is_empty() {
            return;
        }
        for a in self.active.values_mut() {
            let Some(&(t, v)) = series.get(&a.labels) else { continue };
            if v.to_bits() == schemas::labels::STALE_NAN_BITS {
                continue;
            }
            // Both in whole seconds, as Prometheus's time.Unix(t/1000, 0) and
            // time.Unix(int64(v), 0).
            let down_at = t.div_euclid(1000) * 1000;
            let mut restored = (v as i64).saturating_mul(1000);
            let remaining = hold_ms - (down_at - restored);
            if remaining <= 0 {
                // It was firing: it fires again at the next evaluation if
                // the condition still holds.
            } else if remaining < grace_ms {
                restored = ts + grace_ms - hold_ms;
            } else {
                restored += ts - down_at;
            }
            a.active_at_ms = restored;
        }
    }

    /// The state of the rule: the highest of its alerts'.
    pub(crate) fn state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }
}

/// The labels of an `ALERTS` (with `alertstate`) or `ALERTS_FOR_STATE`
/// series: the rule's labels as written, overwritten by the alert's, then
/// `__name__` and `alertname` (Prometheus's `sample`/`forStateSample`).
pub(crate) fn series_labels(spec: &AlertingSpec<'_>, alert: &Alert, metric: &str, state: Option<AlertState>) -> Labels {
    let mut out: BTreeMap<String, String> =
        spec.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in alert.labels.iter() {
        out.insert(k.clone(), v.clone());
    }
    out.insert("__name__".into(), metric.into());
    out.insert("alertname".into(), spec.name.into());
    if let Some(state) = state {
        out.insert("alertstate".into(), state.as_str().into());
    }
    out.into_iter().collect::<Vec<_>>().into()
}

/// The matchers of a rule's `ALERTS_FOR_STATE` series (every label of
/// [`series_labels`] without an alert): the rule's labels as written,
/// `__name__` and `alertname`.
pub(crate) fn for_state_selector(spec: &AlertingSpec<'_>) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> =
        spec.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
    out.insert("__name__".into(), "ALERTS_FOR_STATE".into());
    out.insert("alertname".into(), spec.name.into());
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        v.sort();
        v.into()
    }

    fn candidate(instance: &str, value: f64) -> Candidate {
        Candidate {
            labels: labels(&[("alertname", "HighLoad"), ("instance", instance)]),
            annotations: labels(&[]),
            value,
        }
    }

    fn spec(rule_labels: &BTreeMap<String, String>, hold_ms: i64, keep_firing_for_ms: i64) -> AlertingSpec<'_> {
        AlertingSpec { name: "HighLoad", labels: rule_labels, hold_ms, keep_firing_for_ms }
    }

    fn states(s: &AlertingState) -> Vec<(String, AlertState)> {
        let mut v: Vec<_> = s.active.values().map(|a| (a.labels[1].1.clone(), a.state)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn pending_then_firing_then_resolved_and_forgotten_after_retention() {
        let rl = BTreeMap::new();
        let sp = spec(&rl, 5 * MIN, 0);
        let mut s = AlertingState { restored: true, ..Default::default() };
        s.update(&sp, vec![candidate("a", 1.0)], 0, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Pending)]);
        assert_eq!(s.take_due(0, MIN, MIN), [], "pending alerts are not sent");
        s.update(&sp, vec![candidate("a", 2.0)], 4 * MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Pending)]);
        let out = s.update(&sp, vec![candidate("a", 3.0)], 5 * MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Firing)]);
        let a = &s.active.values().next().unwrap();
        assert_eq!((a.active_at_ms, a.fired_at_ms, a.value), (0, Some(5 * MIN), 3.0));
        let alerts_series: Vec<_> =
            out.iter().map(|(l, v)| (l.iter().find(|p| p.0 == "__name__").unwrap().1.clone(), *v)).collect();
        assert!(alerts_series.contains(&("ALERTS".into(), 1.0)));
        assert!(alerts_series.contains(&("ALERTS_FOR_STATE".into(), 0.0)));
        // Sent, then again only once the resend delay has passed (strictly).
        assert_eq!(s.take_due(5 * MIN, MIN, MIN).len(), 1);
        assert_eq!(s.active.values().next().unwrap().valid_until_ms, Some(9 * MIN));
        assert_eq!(s.take_due(6 * MIN, MIN, MIN).len(), 0);
        assert_eq!(s.take_due(6 * MIN + 1, MIN, MIN).len(), 1);
        // Vanishes: resolved at once, sent as resolved, kept 15 minutes.
        let out = s.update(&sp, vec![], 7 * MIN, 0).unwrap();
        assert!(out.is_empty(), "a resolved alert has no ALERTS series");
        let a = s.active.values().next().unwrap().clone();
        assert_eq!((a.state, a.resolved_at_ms), (AlertState::Inactive, Some(7 * MIN)));
        assert_eq!(s.take_due(7 * MIN, MIN, MIN).len(), 1, "resolution is sent at once");
        s.update(&sp, vec![], 7 * MIN + RESOLVED_RETENTION_MS, 0).unwrap();
        assert_eq!(s.active.len(), 1, "kept for the retention");
        s.update(&sp, vec![], 7 * MIN + RESOLVED_RETENTION_MS + 1, 0).unwrap();
        assert!(s.active.is_empty(), "forgotten after it");
    }

    #[test]
    fn a_pending_alert_that_vanishes_is_dropped_and_a_returning_resolved_one_starts_over() {
        let rl = BTreeMap::new();
        let sp = spec(&rl, MIN, 0);
        let mut s = AlertingState { restored: true, ..Default::default() };
        s.update(&sp, vec![candidate("a", 1.0)], 0, 0).unwrap();
        s.update(&sp, vec![], MIN / 2, 0).unwrap();
        assert!(s.active.is_empty());
        s.update(&sp, vec![candidate("a", 1.0)], 2 * MIN, 0).unwrap();
        s.update(&sp, vec![candidate("a", 1.0)], 3 * MIN, 0).unwrap();
        s.update(&sp, vec![], 4 * MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Inactive)]);
        s.update(&sp, vec![candidate("a", 1.0)], 5 * MIN, 0).unwrap();
        let a = s.active.values().next().unwrap();
        assert_eq!((a.state, a.active_at_ms, a.resolved_at_ms), (AlertState::Pending, 5 * MIN, None));
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert_after_its_condition_ends() {
        let rl = BTreeMap::new();
        let sp = spec(&rl, 0, 2 * MIN);
        let mut s = AlertingState { restored: true, ..Default::default() };
        s.update(&sp, vec![candidate("a", 1.0)], 0, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Firing)], "for: 0 fires at once");
        let out = s.update(&sp, vec![], MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Firing)]);
        assert_eq!(out.len(), 2, "still written while kept firing");
        assert_eq!(s.active.values().next().unwrap().keep_firing_since_ms, Some(MIN));
        s.update(&sp, vec![], 2 * MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Firing)]);
        s.update(&sp, vec![], 3 * MIN, 0).unwrap();
        assert_eq!(states(&s), [("a".into(), AlertState::Inactive)], "resolved once keep_firing_for passed");
        // The condition returning resets keep_firing_since.
        let mut s = AlertingState { restored: true, ..Default::default() };
        s.update(&sp, vec![candidate("a", 1.0)], 0, 0).unwrap();
        s.update(&sp, vec![], MIN, 0).unwrap();
        s.update(&sp, vec![candidate("a", 1.0)], 2 * MIN, 0).unwrap();
        assert_eq!(s.active.values().next().unwrap().keep_firing_since_ms, None);
    }

    #[test]
    fn errors_duplicate_label_sets_and_the_limit() {
        let rl = BTreeMap::new();
        let sp = spec(&rl, 0, 0);
        let mut s = AlertingState { restored: true, ..Default::default() };
        s.update(&sp, vec![candidate("a", 1.0)], 0, 0).unwrap();
        let err = s.update(&sp, vec![candidate("b", 1.0), candidate("b", 2.0)], MIN, 0).unwrap_err();
        assert_eq!(err, "vector contains metrics with the same labelset after applying alert labels");
        assert_eq!(states(&s), [("a".into(), AlertState::Firing)], "unchanged");
        let err = s.update(&sp, vec![candidate("a", 1.0), candidate("b", 1.0)], MIN, 1).unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(s.active.is_empty());
    }

    #[test]
    fn no_series_before_restoration_and_series_labels_follow_prometheus() {
        let rl: BTreeMap<String, String> =
            [("severity".to_owned(), "page".to_owned()), ("tmpl".to_owned(), "{{ $value }}".to_owned())].into();
        let sp = spec(&rl, MIN, 0);
        let mut s = AlertingState::default();
        let mut c = candidate("a", 1.0);
        c.labels = labels(&[("alertname", "HighLoad"), ("instance", "a"), ("severity", "page")]);
        assert!(s.update(&sp, vec![c.clone()], 0, 0).unwrap().is_empty());
        s.restored = true;
        let out = s.update(&sp, vec![c], 1000, 0).unwrap();
        let alerts = out.iter().find(|(l, _)| l.iter().any(|p| p.1 == "ALERTS")).unwrap();
        // The unexpanded template of a label the alert lacks shows through,
        // as in Prometheus.
        assert_eq!(
            alerts.0,
            labels(&[
                ("__name__", "ALERTS"),
                ("alertname", "HighLoad"),
                ("alertstate", "pending"),
                ("instance", "a"),
                ("severity", "page"),
                ("tmpl", "{{ $value }}"),
            ])
        );
        assert_eq!(
            for_state_selector(&sp),
            labels(&[
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "HighLoad"),
                ("severity", "page"),
                ("tmpl", "{{ $value }}")
            ])
            .to_vec()
        );
    }

    #[test]
    fn restore_keeps_the_time_spent_pending_and_the_grace_period() {
        let rl = BTreeMap::new();
        let hold = 30 * MIN;
        let grace = 10 * MIN;
        let sp = spec(&rl, hold, 0);
        let start = 1_000_000 * 1000;
        let fresh = || {
            let mut s = AlertingState::default();
            s.update(&sp, vec![candidate("a", 1.0)], start, 0).unwrap();
            s
        };
        let key = candidate("a", 1.0).labels;
        // Pending 17 min before going down 3 min ago: 13 min remain, so
        // activeAt moves forward by the downtime.
        let active_at = start - 20 * MIN;
        let down = start - 3 * MIN;
        let mut s = fresh();
        s.restore(hold, grace, &[(key.clone(), (down, (active_at / 1000) as f64))].into(), start);
        assert!(s.restored);
        assert_eq!(s.active[&key].active_at_ms, active_at + 3 * MIN);
        // Only 5 min remained: it fires no sooner than the grace period.
        let active_at = start - 28 * MIN;
        let mut s = fresh();
        s.restore(hold, grace, &[(key.clone(), (down, (active_at / 1000) as f64))].into(), start);
        assert_eq!(s.active[&key].active_at_ms, start + grace - hold);
        // It was firing: the old activeAt is kept.
        let active_at = start - 40 * MIN;
        let mut s = fresh();
        s.restore(hold, grace, &[(key.clone(), (down, (active_at / 1000) as f64))].into(), start);
        assert_eq!(s.active[&key].active_at_ms, active_at);
        // A stale marker: not restored.
        let mut s = fresh();
        let stale = f64::from_bits(schemas::labels::STALE_NAN_BITS);
        s.restore(hold, grace, &[(key.clone(), (down, stale))].into(), start);
        assert_eq!(s.active[&key].active_at_ms, start);
        // `for` shorter than the grace period: not restored.
        let mut s = fresh();
        s.restore(5 * MIN, grace, &[(key.clone(), (down, (active_at / 1000) as f64))].into(), start);
        assert_eq!((s.restored, s.active[&key].active_at_ms), (true, start));
    }
}
