//! The routing tree as Alertmanager's dispatcher builds it from a
//! configuration (`dispatch.NewRoute`): each node's options inherited from
//! its parent and overridden where it sets them, its matchers sorted, its
//! key (`{}/{severity="page"}`) and id; an alert's labels matched down the
//! tree as `Route.Match` does (a node matches when its matchers do; its
//! children are tried in order, stopping at the first match unless that
//! child has `continue`; a node none of whose children matched is itself
//! the match).

use std::collections::{BTreeMap, BTreeSet};

use amconfig::{MatchType, Matcher};

/// Alertmanager's defaults for the root (`DefaultRouteOpts`).
const GROUP_WAIT_MS: i64 = 30_000;
const GROUP_INTERVAL_MS: i64 = 300_000;
const REPEAT_INTERVAL_MS: i64 = 4 * 3_600_000;

/// The options a node applies to the alerts it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    pub group_by_all: bool,
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

/// A node of the routing tree.
#[derive(Debug, Clone)]
pub struct RouteNode {
    pub opts: RouteOpts,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub routes: Vec<RouteNode>,
    key: String,
    id: String,
}

/// A label set.
pub type LabelSet = BTreeMap<String, String>;

impl RouteNode {
    /// The tree of a configuration's root route.
    pub fn new(root: &amconfig::Route) -> RouteNode {
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait_ms: GROUP_WAIT_MS,
            group_interval_ms: GROUP_INTERVAL_MS,
            repeat_interval_ms: REPEAT_INTERVAL_MS,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        };
        build(root, &defaults, None)
    }

    /// The node's key: its ancestors' matchers and its own
    /// (`{}/{severity="page"}`), what group keys start with.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The node's unique id: the key with each node's index among its
    /// siblings (`{}/{severity="page"}/0`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The nodes `labels` is routed to, in tree order.
    pub fn matches(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        if !amconfig::matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let matched = child.matches(labels);
            let stop = !matched.is_empty() && !child.continue_matching;
            all.extend(matched);
            if stop {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The labels an alert is grouped by under this node.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        labels
            .iter()
            .filter(|(k, _)| self.opts.group_by_all || self.opts.group_by.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every node, depth first (as `Route.Walk`).
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a RouteNode)) {
        visit(self);
        for r in &self.routes {
            r.walk(visit);
        }
    }
}

fn build(cr: &amconfig::Route, parent_opts: &RouteOpts, parent: Option<(&str, &str, usize)>) -> RouteNode {
    let mut opts = parent_opts.clone();
    if !cr.receiver.is_empty() {
        opts.receiver = cr.receiver.clone();
    }
    if cr.group_by_all {
        opts.group_by_all = true;
    } else if let Some(g) = &cr.group_by {
        opts.group_by = g.iter().cloned().collect();
        opts.group_by_all = false;
    }
    if let Some(d) = cr.group_wait_ms {
        opts.group_wait_ms = d;
    }
    if let Some(d) = cr.group_interval_ms {
        opts.group_interval_ms = d;
    }
    if let Some(d) = cr.repeat_interval_ms {
        opts.repeat_interval_ms = d;
    }
    opts.mute_time_intervals = cr.mute_time_intervals.clone();
    opts.active_time_intervals = cr.active_time_intervals.clone();
    let mut matchers = cr.matchers.clone();
    matchers.sort_by(|a, b| {
        (a.name.as_str(), a.value.as_str(), op_rank(a.op)).cmp(&(b.name.as_str(), b.value.as_str(), op_rank(b.op)))
    });
    let own = matchers_string(&matchers);
    let (key, id) = match parent {
        None => (own.clone(), own),
        Some((pk, pid, index)) => (format!("{pk}/{own}"), format!("{pid}/{own}/{index}")),
    };
    let routes = cr.routes.iter().enumerate().map(|(i, r)| build(r, &opts, Some((&key, &id, i)))).collect();
    RouteNode { opts, matchers, continue_matching: cr.continue_matching, routes, key, id }
}

fn op_rank(op: MatchType) -> u8 {
    match op {
        MatchType::Equal => 0,
        MatchType::NotEqual => 1,
        MatchType::Regexp => 2,
        MatchType::NotRegexp => 3,
    }
}

/// `Matchers.String()`: `{a="b",c=~"d"}`.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(matcher_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// `Matcher.String()`: names with reserved characters quoted as Go does,
/// values escaped as OpenMetrics does.
pub fn matcher_string(m: &Matcher) -> String {
    let reserved = |c: char| c.is_whitespace() || "{}!=~,\\\"'`".contains(c);
    if m.name.chars().any(reserved) {
        let q = templates::go::go_quote;
        return format!("{}{}{}", q(&m.name), m.op.as_str(), q(&m.value));
    }
    let value = m.value.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"");
    format!("{}{}\"{value}\"", m.name, m.op.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> RouteNode {
        RouteNode::new(&amconfig::parse_config(yaml).unwrap().route)
    }

    #[test]
    fn options_inherit_and_keys_name_the_path() {
        let t = tree(
            "route:\n  receiver: a\n  group_by: [x]\n  group_wait: 10s\n  routes:\n    - receiver: b\n      matchers: ['s=\"page\"', 'a=~\"1|2\"']\n      routes:\n        - group_by: ['...']\n          matchers: ['z!=\"\"']\n    - group_by: []\nreceivers: [{name: a}, {name: b}]\n",
        );
        let b = &t.routes[0];
        assert_eq!((b.opts.receiver.as_str(), b.opts.group_wait_ms), ("b", 10_000));
        assert_eq!(b.opts.group_by, BTreeSet::from(["x".to_owned()]));
        assert_eq!(b.key(), "{}/{a=~\"1|2\",s=\"page\"}");
        assert_eq!(b.id(), "{}/{a=~\"1|2\",s=\"page\"}/0");
        let leaf = &b.routes[0];
        assert!(leaf.opts.group_by_all && leaf.opts.receiver == "b");
        assert_eq!(leaf.id(), "{}/{a=~\"1|2\",s=\"page\"}/0/{z!=\"\"}/0");
        assert!(t.routes[1].opts.group_by.is_empty());
        assert_eq!(t.routes[1].opts.repeat_interval_ms, REPEAT_INTERVAL_MS);
    }
}
