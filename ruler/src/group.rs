//! One rule group's evaluation loop, its rules' state and the ruler's
//! metrics.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ErrorKind;
use common::seams::{InstantValue, Labels, Sample, SampleValue, SeamError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rulefmt::{Rule, RuleGroup};
use tokio_util::sync::CancellationToken;

use crate::{RulerConfig, RulerSeams};

/// A group's identity: workspace, namespace, group name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub(crate) workspace_id: String,
    pub(crate) namespace: String,
    pub(crate) group: String,
}

impl GroupKey {
    /// A stable hash: the group's offset within its interval, and which
    /// process owns it.
    pub(crate) fn hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in [&self.workspace_id, &self.namespace, &self.group] {
            h.update(part.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// Prometheus's group key in metrics (`file;group`), with the namespace
    /// as the file.
    fn metric_label(&self) -> String {
        format!("{};{}", self.namespace, self.group)
    }
}

/// A group's definition as evaluated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupSpec {
    pub(crate) group: RuleGroup,
    /// The interval in effect (the group's, else the default), ms.
    pub(crate) interval_ms: i64,
}

/// The series each rule wrote in its last evaluation, by rule identity
/// (name and labels, as Prometheus's `CopyState` matches rules), and the
/// query offset they were written at (staleness markers go there too).
#[derive(Debug, Default)]
pub(crate) struct PreviousSeries {
    rules: Vec<(String, HashSet<Labels>)>,
    query_offset_ms: i64,
}

/// A rule's identity across group updates: its name and labels.
fn identity(rule: &Rule) -> String {
    format!("{}{:?}", rule.name(), rule.labels)
}

/// A rule's health, as Prometheus's rules API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleHealth {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

/// A rule's state.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    /// Record or alert name.
    pub name: String,
    /// The expression.
    pub query: String,
    /// Whether it is an alerting rule.
    pub alerting: bool,
    /// Health of the last evaluation.
    pub health: RuleHealth,
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// When it was last evaluated (the evaluation time, ms).
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took.
    pub evaluation_seconds: f64,
}

/// A group's state.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    /// The workspace.
    pub workspace_id: String,
    /// The namespace (Prometheus's `file`).
    pub namespace: String,
    /// The group's name.
    pub name: String,
    /// Interval in effect, ms.
    pub interval_ms: i64,
    /// Query offset in effect at the last evaluation, ms.
    pub query_offset_ms: i64,
    /// The group's `limit`.
    pub limit: i64,
    /// Its rules, in order.
    pub rules: Vec<RuleStatus>,
    /// When it was last evaluated (ms).
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took.
    pub evaluation_seconds: f64,
}

#[derive(Debug)]
struct GroupState {
    status: GroupStatus,
    previous: Vec<HashSet<Labels>>,
}

/// A running group.
#[derive(Debug)]
pub(crate) struct GroupRun {
    pub(crate) spec: GroupSpec,
    state: Arc<Mutex<GroupState>>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GroupRun {
    /// Starts evaluating `spec`, its rules' last series taken from
    /// `previous` by name.
    pub(crate) fn start(
        key: GroupKey,
        spec: GroupSpec,
        mut previous: PreviousSeries,
        seams: RulerSeams,
        config: RulerConfig,
        metrics: Metrics,
    ) -> Self {
        let g = &spec.group;
        let rules = g
            .rules
            .iter()
            .map(|r| RuleStatus {
                name: r.name().to_owned(),
                query: r.expr.clone(),
                alerting: r.is_alerting(),
                health: RuleHealth::Unknown,
                last_error: None,
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
            })
            .collect();
        // The first unused previous rule of the same identity, in order.
        let carried = g
            .rules
            .iter()
            .map(|r| {
                let id = identity(r);
                let i = previous.rules.iter().position(|(other, _)| *other == id);
                i.map(|i| previous.rules.remove(i).1).unwrap_or_default()
            })
            .collect();
        let state = Arc::new(Mutex::new(GroupState {
            status: GroupStatus {
                workspace_id: key.workspace_id.clone(),
                namespace: key.namespace.clone(),
                name: key.group.clone(),
                interval_ms: spec.interval_ms,
                query_offset_ms: 0,
                limit: g.limit,
                rules,
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
            },
            previous: carried,
        }));
        let cancel = CancellationToken::new();
        let evaluator = Evaluator { key, spec: spec.clone(), seams, config, metrics, state: state.clone() };
        // Rules whose successor has no rule of that name: their series are
        // gone from the output, so they go stale at once.
        if previous.rules.iter().any(|(_, s)| !s.is_empty()) {
            let (seams, key) = (evaluator.seams.clone(), evaluator.key.clone());
            tokio::spawn(async move { mark_stale(&seams, &key, previous).await });
        }
        let task = tokio::spawn(evaluator.run(cancel.clone()));
        Self { spec, state, cancel, task: Some(task) }
    }

    /// Stops the loop (an evaluation in progress finishes its current
    /// rule) and returns the rules' last series.
    pub(crate) async fn stop(mut self) -> PreviousSeries {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        PreviousSeries {
            rules: self.spec.group.rules.iter().map(identity).zip(state.previous.iter().cloned()).collect(),
            query_offset_ms: state.status.query_offset_ms,
        }
    }

    pub(crate) fn status(&self) -> GroupStatus {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).status.clone()
    }
}

impl Drop for GroupRun {
    /// A group dropped without [`GroupRun::stop`] stops evaluating too.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Writes staleness markers for every series in `previous`, at now minus
/// their query offset (a removed group's series end).
pub(crate) async fn mark_stale(seams: &RulerSeams, key: &GroupKey, previous: PreviousSeries) {
    let at = seams.clock.now_ms() - previous.query_offset_ms;
    let samples: Vec<(Labels, Sample)> =
        previous.rules.into_iter().flat_map(|(_, s)| s).map(|l| (l, stale_sample(at))).collect();
    if samples.is_empty() {
        return;
    }
    if let Err(e) = seams.appender.append(&key.workspace_id, samples).await {
        tracing::warn!(workspace = %key.workspace_id, group = %key.metric_label(), error = %e, "Writing the staleness markers of a removed rule group failed.");
    }
}

fn stale_sample(timestamp_ms: i64) -> Sample {
    Sample { timestamp_ms, value: SampleValue::Float(f64::from_bits(schemas::labels::STALE_NAN_BITS)) }
}

struct Evaluator {
    key: GroupKey,
    spec: GroupSpec,
    seams: RulerSeams,
    config: RulerConfig,
    metrics: Metrics,
    state: Arc<Mutex<GroupState>>,
}

impl Evaluator {
    /// Prometheus's schedule: evaluations at `base + offset + k·interval`,
    /// the first one interval after the slot before now; an evaluation
    /// that overran skips the slots it missed.
    async fn run(self, cancel: CancellationToken) {
        let interval = self.spec.interval_ms.max(1);
        let offset = (self.key.hash() % interval as u64) as i64;
        let slot = |now: i64| {
            let adjusted = now - offset;
            adjusted - adjusted.rem_euclid(interval) + offset
        };
        let mut next = slot(self.seams.clock.now_ms()) + interval;
        let label = self.metrics.group_labels(&self.key);
        loop {
            let wait = (next - self.seams.clock.now_ms()).max(0);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
            self.metrics.iterations.get_or_create(&label).inc();
            self.evaluate(next, &cancel).await;
            if cancel.is_cancelled() {
                return;
            }
            let late = self.seams.clock.now_ms() - next;
            let missed = (late / interval - 1).max(0);
            if missed > 0 {
                self.metrics.missed.get_or_create(&label).inc_by(missed as u64);
                tracing::warn!(workspace = %self.key.workspace_id, group = %self.key.metric_label(), missed, "A rule group's evaluation overran its interval; skipping the iterations it missed.");
            }
            next += interval * (1 + missed);
        }
    }

    /// Evaluates every rule of the group at `ts` (minus the query offset).
    async fn evaluate(&self, ts: i64, cancel: &CancellationToken) {
        let ws = &self.key.workspace_id;
        let query_offset_ms = self.spec.group.query_offset_ms.unwrap_or_else(|| {
            i64::try_from(self.seams.overrides.ruler(ws).query_offset_seconds.saturating_mul(1000)).unwrap_or(0)
        });
        let at = ts - query_offset_ms;
        let started = Instant::now();
        let label = self.metrics.group_labels(&self.key);
        for (i, rule) in self.spec.group.rules.iter().enumerate() {
            if cancel.is_cancelled() {
                return;
            }
            let rule_started = Instant::now();
            let outcome = if rule.is_alerting() {
                Err("alerting rules are not evaluated by PromLake yet".to_owned())
            } else {
                self.metrics.evaluations.get_or_create(&label).inc();
                self.record(i, rule, at).await
            };
            let seconds = rule_started.elapsed().as_secs_f64();
            self.metrics.duration.observe(seconds);
            if outcome.is_err() && !rule.is_alerting() {
                self.metrics.failures.get_or_create(&label).inc();
            }
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let status = &mut state.status.rules[i];
            status.last_evaluation_ms = Some(ts);
            status.evaluation_seconds = seconds;
            match outcome {
                Ok(()) => (status.health, status.last_error) = (RuleHealth::Ok, None),
                Err(e) if rule.is_alerting() => (status.health, status.last_error) = (RuleHealth::Unknown, Some(e)),
                Err(e) => {
                    tracing::warn!(workspace = %ws, group = %self.key.metric_label(), rule = %rule.name(), error = %e, "Evaluating a rule failed.");
                    (status.health, status.last_error) = (RuleHealth::Err, Some(e));
                }
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.status.last_evaluation_ms = Some(ts);
        state.status.evaluation_seconds = started.elapsed().as_secs_f64();
        state.status.query_offset_ms = query_offset_ms;
    }

    /// A recording rule: evaluates, renames and labels the result, writes
    /// it with staleness markers for the series that went away, and waits
    /// until it is readable.
    async fn record(&self, i: usize, rule: &Rule, at: i64) -> Result<(), String> {
        let ws = &self.key.workspace_id;
        let record = rule.record.as_deref().unwrap_or_default();
        let t0 = Instant::now();
        let value = self.seams.engine.instant_query(ws, &rule.expr, at).await.map_err(|e| e.message)?;
        let queried = t0.elapsed();
        let vector = match value {
            InstantValue::Vector(v) => v,
            InstantValue::Scalar(f) => vec![(Labels::from(Vec::new()), SampleValue::Float(f))],
            InstantValue::String(_) => return Err("rule result is not a vector or scalar".into()),
        };
        let mut output: Vec<(Labels, Sample)> = Vec::with_capacity(vector.len());
        let mut returned: HashSet<Labels> = HashSet::with_capacity(vector.len());
        for (labels, value) in vector {
            let labels = relabel(&labels, record, &self.spec.group.labels, &rule.labels);
            if !returned.insert(labels.clone()) {
                return Err("vector contains metrics with the same labelset after applying rule labels".into());
            }
            output.push((labels, Sample { timestamp_ms: at, value }));
        }
        let limit = self.spec.group.limit;
        if limit > 0 && output.len() as i64 > limit {
            return Err(format!("exceeded limit of {limit} with {} series", output.len()));
        }
        let previous = self.state.lock().unwrap_or_else(|p| p.into_inner()).previous[i].clone();
        for gone in previous.difference(&returned) {
            output.push((gone.clone(), stale_sample(at)));
        }
        if output.is_empty() {
            return Ok(());
        }
        let position = self.seams.appender.append(ws, output).await.map_err(|e| e.message)?;
        let appended = t0.elapsed();
        self.state.lock().unwrap_or_else(|p| p.into_inner()).previous[i] = returned;
        // The next rule must see these samples.
        if let Err(SeamError { kind, message }) =
            self.seams.reader.wait_until_readable(ws, &position, self.config.wait_timeout).await
            && kind != ErrorKind::NotFound
        {
            tracing::warn!(workspace = %ws, rule = %record, error = %message, "The rule's samples were not applied in time; the next rule may not see them.");
        }
        tracing::debug!(workspace = %ws, rule = %record, ?queried, ?appended, applied = ?t0.elapsed(), "Evaluated a recording rule.");
        Ok(())
    }
}

/// The output labels of a recording rule: `__name__` set to `record`, then
/// the group's labels and the rule's (an empty value removes the label).
fn relabel(
    labels: &[(String, String)],
    record: &str,
    group: &std::collections::BTreeMap<String, String>,
    rule: &std::collections::BTreeMap<String, String>,
) -> Labels {
    let mut out: std::collections::BTreeMap<String, String> = labels.iter().cloned().collect();
    out.insert("__name__".into(), record.into());
    for (k, v) in group.iter().chain(rule) {
        if v.is_empty() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out.into_iter().collect::<Vec<_>>().into()
}

/// Labels of per-group metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    workspace: String,
    /// `namespace;group`, as Prometheus's `rule_group` is `file;group`.
    rule_group: String,
}

/// The ruler's self-metrics (`promlake_rule_*`, after Prometheus's
/// `prometheus_rule_*`).
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    evaluations: Family<GroupLabels, Counter>,
    failures: Family<GroupLabels, Counter>,
    iterations: Family<GroupLabels, Counter>,
    missed: Family<GroupLabels, Counter>,
    duration: Histogram,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            evaluations: Family::default(),
            failures: Family::default(),
            iterations: Family::default(),
            missed: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 4.0, 9)),
        };
        let r = registry.sub_registry_with_prefix("promlake_rule");
        r.register("evaluations", "Rule evaluations.", m.evaluations.clone());
        r.register("evaluation_failures", "Rule evaluations that failed.", m.failures.clone());
        r.register("group_iterations", "Scheduled rule group evaluations.", m.iterations.clone());
        r.register(
            "group_iterations_missed",
            "Rule group evaluations skipped because an evaluation overran the interval.",
            m.missed.clone(),
        );
        r.register("evaluation_duration_seconds", "Time one rule's evaluation took.", m.duration.clone());
        m
    }

    fn group_labels(&self, key: &GroupKey) -> GroupLabels {
        GroupLabels { workspace: key.workspace_id.clone(), rule_group: key.metric_label() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabel_renames_and_applies_group_then_rule_labels() {
        let labels =
            vec![("__name__".to_owned(), "up".to_owned()), ("job".into(), "a".into()), ("x".into(), "1".into())];
        let group = [("team".to_owned(), "g".to_owned()), ("env".to_owned(), "g".to_owned())].into();
        let rule = [("env".to_owned(), "r".to_owned()), ("x".to_owned(), String::new())].into();
        let out = relabel(&labels, "job:up", &group, &rule);
        let want: Vec<(String, String)> = [("__name__", "job:up"), ("env", "r"), ("job", "a"), ("team", "g")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(&*out, want.as_slice());
    }

    #[test]
    fn group_hashes_are_stable_and_distinct() {
        let k = |g: &str| GroupKey { workspace_id: "ws-1".into(), namespace: "ns".into(), group: g.into() };
        assert_eq!(k("a").hash(), k("a").hash());
        assert_ne!(k("a").hash(), k("b").hash());
        let shifted = GroupKey { workspace_id: "ws-1".into(), namespace: "nsa".into(), group: String::new() };
        assert_ne!(k("a").hash(), shifted.hash(), "parts are separated");
    }
}
