//! Active-series limits per label set (AMP's `limitsPerLabelSet`, Cortex's
//! `limits_per_label_set`).
//!
//! Per workspace, the gateway tracks the series it has admitted and when
//! each last had a sample; a series is active for
//! [`ACTIVE_SERIES_IDLE`] after its last sample. A request that would make
//! any label set hold more than its `max_series` active series is refused
//! as a whole (429, nothing written), naming the label set; series already
//! active are never refused. The check and the admission of a request's new
//! series are one step under a lock, so concurrent requests cannot overshoot.
//!
//! Limits of this tracking, by design for now: it is per gateway process
//! (scaled out, each gateway counts the series it receives) and in memory
//! (after a restart, series count again from their next sample); a change
//! of a workspace's label sets starts its count afresh.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use common::limits::{ACTIVE_SERIES_IDLE, LabelSetLimit};
use schemas::stream::Series;

/// How often idle series are swept out of a workspace's tracker.
const SWEEP_EVERY_MS: i64 = 60_000;

/// The trackers of every workspace with label-set limits.
#[derive(Debug, Default)]
pub(crate) struct ActiveSeries {
    workspaces: Mutex<HashMap<String, Tracker>>,
}

#[derive(Debug)]
struct Tracker {
    limits: Vec<LabelSetLimit>,
    /// Series id → (last sample time ms, the label sets it counts in).
    series: HashMap<u64, (i64, u128)>,
    /// Active series per label set.
    counts: Vec<u64>,
    last_sweep_ms: i64,
}

/// A refused request: the label set whose limit it would exceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// The label set.
    pub limit: LabelSetLimit,
    /// Its active series now.
    pub active: u64,
    /// The new series the request would add to it.
    pub adding: u64,
}

impl ActiveSeries {
    /// Admits the request's series, or refuses the whole request when its
    /// new series would exceed a label set's limit. Returns the series it
    /// admitted as new, to [`ActiveSeries::release`] if the write fails.
    /// (At most 128 label sets are tracked; the config and the API allow
    /// `MAX_LABEL_SETS`, fewer.)
    pub(crate) fn admit(
        &self,
        workspace_id: &str,
        limits: &[LabelSetLimit],
        series: &[Series],
        now_ms: i64,
    ) -> Result<Admitted, Exceeded> {
        let limits = &limits[..limits.len().min(128)];
        let mut workspaces = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if limits.is_empty() {
            workspaces.remove(workspace_id);
            return Ok(Admitted::default());
        }
        let tracker = workspaces.entry(workspace_id.to_owned()).or_insert_with(|| Tracker::new(limits, now_ms));
        if tracker.limits != limits {
            *tracker = Tracker::new(limits, now_ms);
        }
        tracker.sweep(now_ms);
        // What the request's new series would add, per label set.
        let mut adding = vec![0u64; limits.len()];
        let mut new_series: Vec<(u64, u128)> = Vec::new();
        let mut seen = HashSet::new();
        for s in series {
            if !seen.insert(s.series_id) || tracker.series.contains_key(&s.series_id) {
                continue;
            }
            let mask = tracker.mask(s);
            for (i, n) in adding.iter_mut().enumerate() {
                *n += u64::from(mask >> i & 1 == 1);
            }
            new_series.push((s.series_id, mask));
        }
        for (i, limit) in limits.iter().enumerate() {
            if limit.max_series > 0 && adding[i] > 0 && tracker.counts[i] + adding[i] > limit.max_series {
                return Err(Exceeded { limit: limit.clone(), active: tracker.counts[i], adding: adding[i] });
            }
        }
        for s in series {
            if let Some(entry) = tracker.series.get_mut(&s.series_id) {
                entry.0 = entry.0.max(now_ms);
            }
        }
        for &(id, mask) in &new_series {
            tracker.series.insert(id, (now_ms, mask));
            for (i, count) in tracker.counts.iter_mut().enumerate() {
                *count += u64::from(mask >> i & 1 == 1);
            }
        }
        Ok(Admitted { series: new_series })
    }

    /// Forgets series admitted by a request whose write then failed (unless
    /// a later request refreshed them).
    pub(crate) fn release(&self, workspace_id: &str, admitted: Admitted, admitted_at_ms: i64) {
        if admitted.series.is_empty() {
            return;
        }
        let mut workspaces = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tracker) = workspaces.get_mut(workspace_id) else { return };
        for (id, mask) in admitted.series {
            if tracker.series.get(&id) == Some(&(admitted_at_ms, mask)) {
                tracker.series.remove(&id);
                for (i, count) in tracker.counts.iter_mut().enumerate() {
                    *count -= u64::from(mask >> i & 1 == 1);
                }
            }
        }
    }
}

/// The series a request added to a tracker.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    series: Vec<(u64, u128)>,
}

impl Tracker {
    fn new(limits: &[LabelSetLimit], now_ms: i64) -> Self {
        Self { limits: limits.to_vec(), series: HashMap::new(), counts: vec![0; limits.len()], last_sweep_ms: now_ms }
    }

    /// The label sets a series counts in: every non-empty set whose pairs
    /// it all has; if none, the default bucket (an empty set), if any.
    fn mask(&self, series: &Series) -> u128 {
        let has = |name: &str, value: &str| series.labels.iter().any(|l| l.name == name && l.value == value);
        let mut mask = 0u128;
        for (i, limit) in self.limits.iter().enumerate() {
            if !limit.label_set.is_empty() && limit.label_set.iter().all(|(n, v)| has(n, v)) {
                mask |= 1 << i;
            }
        }
        if mask == 0
            && let Some(i) = self.limits.iter().position(|l| l.label_set.is_empty())
        {
            mask |= 1 << i;
        }
        mask
    }

    fn sweep(&mut self, now_ms: i64) {
        if now_ms - self.last_sweep_ms < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        let idle_before = now_ms - ACTIVE_SERIES_IDLE.as_millis() as i64;
        let counts = &mut self.counts;
        self.series.retain(|_, (last, mask)| {
            let keep = *last >= idle_before;
            if !keep {
                for (i, count) in counts.iter_mut().enumerate() {
                    *count -= u64::from(*mask >> i & 1 == 1);
                }
            }
            keep
        });
    }
}

/// `{name="value", …}`, as the refusal names a label set.
pub(crate) fn label_set_string(limit: &LabelSetLimit) -> String {
    let pairs: Vec<String> = limit.label_set.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::stream::Label;

    fn series(id: u64, labels: &[(&str, &str)]) -> Series {
        Series {
            series_id: id,
            labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
            ..Default::default()
        }
    }

    fn limit(pairs: &[(&str, &str)], max: u64) -> LabelSetLimit {
        LabelSetLimit { label_set: pairs.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect(), max_series: max }
    }

    #[test]
    fn new_series_over_a_label_sets_limit_are_refused_and_active_ones_never() {
        let t = ActiveSeries::default();
        let limits = vec![limit(&[("team", "a")], 2), limit(&[], 1)];
        let a = |id| series(id, &[("__name__", "up"), ("team", "a")]);
        let other = |id| series(id, &[("__name__", "up"), ("team", "b")]);
        t.admit("ws", &limits, &[a(1), a(1)], 0).unwrap();
        t.admit("ws", &limits, &[a(2), other(10)], 0).unwrap();
        // A third team-a series is one too many; the whole request is refused.
        let err = t.admit("ws", &limits, &[a(1), a(3), other(10)], 1).unwrap_err();
        assert_eq!((err.active, err.adding, err.limit.max_series), (2, 1, 2));
        assert_eq!(label_set_string(&err.limit), "{team=\"a\"}");
        // The default bucket holds what no other set matches: one series.
        assert!(t.admit("ws", &limits, &[other(11)], 1).is_err());
        // Active series go on; other workspaces are not affected.
        t.admit("ws", &limits, &[a(1), a(2), other(10)], 2).unwrap();
        t.admit("ws2", &limits, &[a(3), a(4)], 2).unwrap();
        // After the idle time, series are no longer active and make room.
        let later = ACTIVE_SERIES_IDLE.as_millis() as i64 + 120_000;
        t.admit("ws", &limits, &[a(1)], later - 60_000).unwrap();
        t.admit("ws", &limits, &[a(3)], later).unwrap();
        assert!(t.admit("ws", &limits, &[a(4)], later).is_err(), "series 1 and 3 are active");
        // A failed write gives its new series back.
        let admitted = t.admit("ws3", &limits, &[a(1), a(2)], 5).unwrap();
        assert!(t.admit("ws3", &limits, &[a(3)], 5).is_err());
        t.release("ws3", admitted, 5);
        t.admit("ws3", &limits, &[a(3), a(4)], 6).unwrap();
        // A limit of 0 is no limit; no limits at all, nothing is tracked.
        t.admit("ws", &[limit(&[("team", "a")], 0)], &[a(5), a(6), a(7)], later).unwrap();
        t.admit("ws", &[], &[a(8)], later).unwrap();
    }
}
