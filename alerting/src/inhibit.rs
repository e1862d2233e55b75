//! Inhibition as Alertmanager's `inhibit.Inhibitor` does it: each rule
//! keeps the alerts matching its source matchers and an index from their
//! `equal` labels to one source alert; an alert matching a rule's target
//! matchers is muted while the indexed source alert for its `equal` labels
//! is not resolved — unless that source also matches the target matchers
//! and the muted alert matches the source matchers (a two-sided match does
//! not inhibit itself). Missing `equal` labels compare as empty.
//!
//! The index keeps Alertmanager's quirks: a new source alert replaces the
//! indexed one only when that one is resolved by the new one's end, and
//! collecting a resolved source drops the index entry of its `equal`
//! labels whichever alert it pointed to.

use std::collections::HashMap;

use amconfig::{Matcher, matches_all as matches};

use crate::dispatch::{Alert, fingerprint};
use crate::routing::LabelSet;

/// One inhibition rule and its source alerts.
#[derive(Debug, Clone)]
struct Rule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
    /// Source alerts by fingerprint.
    sources: HashMap<u64, Alert>,
    /// `equal` labels' fingerprint → a source alert's fingerprint.
    index: HashMap<u64, u64>,
}

impl Rule {
    fn equal_fingerprint(&self, labels: &LabelSet) -> u64 {
        let set: LabelSet =
            self.equal.iter().map(|n| (n.clone(), labels.get(n).cloned().unwrap_or_default())).collect();
        fingerprint(&set)
    }

    /// `updateIndex`.
    fn index(&mut self, alert: &Alert) {
        let fp = alert.fingerprint();
        let eq = self.equal_fingerprint(&alert.labels);
        match self.index.get(&eq) {
            None => {
                self.index.insert(eq, fp);
            }
            Some(indexed) if *indexed == fp => {}
            Some(indexed) => match self.sources.get(indexed) {
                None => {
                    self.index.insert(eq, fp);
                }
                Some(existing) => {
                    if alert.ends_at_ms.is_some_and(|end| existing.resolved_at(end)) {
                        self.index.insert(eq, fp);
                    }
                }
            },
        }
    }
}

/// The inhibition rules of a configuration and the source alerts seen.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<Rule>,
}

impl Inhibitor {
    /// The rules of a configuration.
    pub fn new(rules: &[amconfig::InhibitRule]) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|r| Rule {
                    source: r.source_matchers.clone(),
                    target: r.target_matchers.clone(),
                    equal: r.equal.clone(),
                    sources: HashMap::new(),
                    index: HashMap::new(),
                })
                .collect(),
        }
    }

    /// An alert as received (after merging): kept as a source of every rule
    /// whose source matchers it matches (`processAlert`).
    pub fn observe(&mut self, alert: &Alert) {
        for r in &mut self.rules {
            if matches(&r.source, &alert.labels) {
                r.sources.insert(alert.fingerprint(), alert.clone());
                r.index(alert);
            }
        }
    }

    /// The fingerprint of the alert inhibiting `labels` at `now`, if one
    /// does (`Mutes`).
    pub fn mutes(&self, labels: &LabelSet, now_ms: i64) -> Option<u64> {
        for r in &self.rules {
            if !matches(&r.target, labels) {
                continue;
            }
            let two_sided = matches(&r.source, labels);
            let Some(source) = r.index.get(&r.equal_fingerprint(labels)).and_then(|fp| r.sources.get(fp)) else {
                continue;
            };
            if source.resolved_at(now_ms) {
                continue;
            }
            if two_sided && matches(&r.target, &source.labels) {
                continue;
            }
            return Some(source.fingerprint());
        }
        None
    }

    /// Drops the source alerts resolved at `now` (the source caches'
    /// garbage collection, with its index callback).
    pub fn collect(&mut self, now_ms: i64) {
        for r in &mut self.rules {
            let resolved: Vec<Alert> = r.sources.values().filter(|a| a.resolved_at(now_ms)).cloned().collect();
            for a in resolved {
                r.sources.remove(&a.fingerprint());
                let eq = r.equal_fingerprint(&a.labels);
                r.index.remove(&eq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dispatch::tests::labels;

    fn alert(pairs: &[(&str, &str)], ends: Option<i64>) -> Alert {
        crate::dispatch::tests::alert(pairs, ends, 0)
    }

    fn inhibitor(rules: &str) -> Inhibitor {
        let c = amconfig::parse_config(&format!("{rules}route: {{receiver: r}}\nreceivers: [{{name: r}}]\n")).unwrap();
        Inhibitor::new(&c.inhibit_rules)
    }

    #[test]
    fn a_firing_source_mutes_targets_with_equal_labels() {
        let mut ih = inhibitor(
            "inhibit_rules:\n  - {source_matchers: [severity=critical], target_matchers: [severity=warning], equal: [cluster]}\n",
        );
        let critical = alert(&[("alertname", "Down"), ("severity", "critical"), ("cluster", "eu")], Some(10_000));
        ih.observe(&critical);
        let warn_eu = labels(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "eu")]);
        let warn_us = labels(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "us")]);
        assert_eq!(ih.mutes(&warn_eu, 5_000), Some(critical.fingerprint()));
        assert_eq!(ih.mutes(&warn_us, 5_000), None, "equal labels differ");
        assert_eq!(ih.mutes(&warn_eu, 10_000), None, "the source resolved");
        // Missing equal labels compare as empty on both sides.
        let mut ih = inhibitor("inhibit_rules:\n  - {source_matchers: [a=b], target_matchers: [c=d], equal: [zone]}\n");
        ih.observe(&alert(&[("a", "b")], None));
        assert!(ih.mutes(&labels(&[("c", "d")]), 0).is_some());
        assert!(ih.mutes(&labels(&[("c", "d"), ("zone", "x")]), 0).is_none());
    }

    #[test]
    fn a_two_sided_match_does_not_inhibit_itself_and_the_index_keeps_its_quirks() {
        let mut ih =
            inhibitor("inhibit_rules:\n  - {source_matchers: ['a=~\"x|y\"'], target_matchers: ['a=~\"x|y\"']}\n");
        let x = alert(&[("a", "x")], None);
        ih.observe(&x);
        assert_eq!(ih.mutes(&x.labels, 0), None, "the source matches the target side too");
        // An index entry is replaced only when the indexed source is
        // resolved by the new one's end.
        let mut ih = inhibitor("inhibit_rules:\n  - {source_matchers: [s=1], target_matchers: [t=1], equal: [g]}\n");
        let first = alert(&[("s", "1"), ("g", "a"), ("n", "1")], Some(100));
        let second = alert(&[("s", "1"), ("g", "a"), ("n", "2")], Some(1_000));
        ih.observe(&first);
        ih.observe(&second);
        let target = labels(&[("t", "1"), ("g", "a")]);
        assert_eq!(ih.mutes(&target, 50), Some(second.fingerprint()));
        let mut ih = inhibitor("inhibit_rules:\n  - {source_matchers: [s=1], target_matchers: [t=1], equal: [g]}\n");
        let long = alert(&[("s", "1"), ("g", "a"), ("n", "1")], Some(1_000));
        let short = alert(&[("s", "1"), ("g", "a"), ("n", "2")], Some(500));
        ih.observe(&long);
        ih.observe(&short);
        assert_eq!(ih.mutes(&target, 600), Some(long.fingerprint()));
        // Collecting a resolved source drops its equal labels' entry.
        ih.collect(600);
        assert_eq!(ih.mutes(&target, 600), None);
    }
}
