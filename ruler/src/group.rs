//! One rule group's evaluation loop, its rules' state and the ruler's
//! metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ErrorKind;
use common::seams::{InstantValue, LabelMatcher, Labels, MatchOp, Sample, SampleValue, SeamError, Selection};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rulefmt::{Rule, RuleGroup};
use tokio_util::sync::CancellationToken;

use crate::alerting::{self, Alert, AlertState, AlertingSpec, AlertingState, Candidate};
use crate::notifier::{Notifier, postable, table_link};
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
    /// Per rule: whether a later rule of the group may read what it writes
    /// (only then does the rule wait for its samples to be readable).
    read_later: Vec<bool>,
}

impl GroupSpec {
    pub(crate) fn new(group: RuleGroup, interval_ms: i64) -> Self {
        let read_later = read_later(&group.rules);
        Self { group, interval_ms, read_later }
    }
}

/// The metric names an expression selects; `None` when it may select any
/// (a selector without a fixed name, `info`, an unparsable expression).
fn selected_names(expr: &str) -> Option<HashSet<String>> {
    use promql_parser::label::MatchOp as Op;
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, out: &mut HashSet<String>) -> bool {
        match e {
            Expr::Aggregate(a) => walk(&a.expr, out) && a.param.as_ref().is_none_or(|p| walk(p, out)),
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => walk(&b.lhs, out) && walk(&b.rhs, out),
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
            Expr::VectorSelector(vs) => selector(vs, out),
            Expr::MatrixSelector(ms) => selector(&ms.vs, out),
            Expr::Call(c) => c.func.name != "info" && c.args.args.iter().all(|a| walk(a, out)),
            Expr::Extension(_) => false,
        }
    }
    fn selector(vs: &promql_parser::parser::VectorSelector, out: &mut HashSet<String>) -> bool {
        let fixed = vs.name.clone().or_else(|| {
            if !vs.matchers.or_matchers.is_empty() {
                return None;
            }
            vs.matchers.matchers.iter().find(|m| m.name == "__name__" && m.op == Op::Equal).map(|m| m.value.clone())
        });
        fixed.map(|n| out.insert(n)).is_some()
    }
    let parsed = promql_parser::parser::parse(expr).ok()?;
    let mut out = HashSet::new();
    walk(&parsed, &mut out).then_some(out)
}

/// For each rule, whether a later rule may read its output: its recorded
/// metric (or `ALERTS`/`ALERTS_FOR_STATE` for an alerting rule) is
/// selected by a later expression, or a later one may select anything
/// (an alerting rule whose templates call `query` counts as such).
fn read_later(rules: &[Rule]) -> Vec<bool> {
    let reads: Vec<Option<HashSet<String>>> = rules
        .iter()
        .map(|r| {
            let queries = r.labels.values().chain(r.annotations.values()).any(|t| t.contains("query"));
            if queries { None } else { selected_names(&r.expr) }
        })
        .collect();
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let writes: &[&str] = if r.is_alerting() { &["ALERTS", "ALERTS_FOR_STATE"] } else { &[r.name()] };
            reads[i + 1..].iter().any(|names| names.as_ref().is_none_or(|n| writes.iter().any(|w| n.contains(*w))))
        })
        .collect()
}

/// The series each rule wrote in its last evaluation, by rule identity
/// (name and labels, as Prometheus's `CopyState` matches rules), and the
/// query offset they were written at (staleness markers go there too).
#[derive(Debug, Default)]
pub(crate) struct PreviousSeries {
    rules: Vec<(String, RuleCarry)>,
    query_offset_ms: i64,
}

/// What a rule hands to its successor when its group changes: the series
/// it wrote last, and an alerting rule's alerts.
#[derive(Debug, Default, Clone)]
pub(crate) struct RuleCarry {
    series: HashSet<Labels>,
    alerts: Option<AlertingState>,
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
    /// The rule as defined.
    pub rule: Rule,
    /// Its expression as PromQL's printer prints it (Prometheus shows and
    /// links the parsed expression).
    pub query: String,
    /// An alerting rule's state: the highest of its alerts' (`None` for a
    /// recording rule).
    pub state: Option<AlertState>,
    /// An alerting rule's alerts: pending, firing, and resolved ones still
    /// kept (to be re-sent as resolved).
    pub alerts: Vec<Alert>,
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
    /// Per rule: the series written last, and an alerting rule's alerts.
    rules: Vec<RuleCarry>,
}

impl GroupState {
    /// A group's initial state: its rules not evaluated yet, each taking
    /// the first unused rule of the same identity from `previous` (its last
    /// series and alerts); alerting rules count as restored when
    /// `restored` (else they restore after the second evaluation).
    fn new(key: &GroupKey, spec: &GroupSpec, previous: &mut PreviousSeries, restored: bool) -> Self {
        let g = &spec.group;
        let rules = g
            .rules
            .iter()
            .map(|r| RuleStatus {
                rule: r.clone(),
                query: printed_expr(&r.expr),
                state: r.is_alerting().then_some(AlertState::Inactive),
                alerts: Vec::new(),
                health: RuleHealth::Unknown,
                last_error: None,
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
            })
            .collect();
        let carried = g
            .rules
            .iter()
            .map(|r| {
                let id = identity(r);
                let i = previous.rules.iter().position(|(other, _)| *other == id);
                let mut carry = i.map(|i| previous.rules.remove(i).1).unwrap_or_default();
                if r.is_alerting() {
                    let alerts = carry.alerts.get_or_insert_with(AlertingState::default);
                    alerts.restored |= restored;
                } else {
                    carry.alerts = None;
                }
                carry
            })
            .collect();
        Self {
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
            rules: carried,
        }
    }
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
    #[allow(clippy::too_many_arguments, reason = "the group's parts, passed once")]
    pub(crate) fn start(
        key: GroupKey,
        spec: GroupSpec,
        previous: Option<PreviousSeries>,
        restore: bool,
        seams: RulerSeams,
        config: RulerConfig,
        metrics: Metrics,
        notifier: Arc<Notifier>,
    ) -> Self {
        // A fresh group restores its alerts' `for` state from
        // `ALERTS_FOR_STATE` when asked to (else it starts with none); a
        // changed one carries its predecessor's alerts.
        let fresh = previous.is_none() && restore;
        let mut previous = previous.unwrap_or_default();
        let state = Arc::new(Mutex::new(GroupState::new(&key, &spec, &mut previous, !fresh)));
        let cancel = CancellationToken::new();
        let evaluator = Evaluator {
            key,
            spec: spec.clone(),
            seams,
            config,
            metrics,
            notifier,
            state: state.clone(),
            restore: fresh,
        };
        // Rules whose successor has no rule of that name: their series are
        // gone from the output, so they go stale at once.
        if previous.rules.iter().any(|(_, c)| !c.series.is_empty()) {
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
            rules: self.spec.group.rules.iter().map(identity).zip(state.rules.iter().cloned()).collect(),
            query_offset_ms: state.status.query_offset_ms,
        }
    }

    pub(crate) fn status(&self) -> GroupStatus {
        status_of(&self.state)
    }
}

/// A group's status with its alerting rules' alerts, by labels.
fn status_of(state: &Mutex<GroupState>) -> GroupStatus {
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut status = state.status.clone();
    for (rule, carry) in status.rules.iter_mut().zip(&state.rules) {
        if let Some(alerts) = &carry.alerts {
            rule.state = Some(alerts.state());
            rule.alerts = alerts.active.values().cloned().collect();
            rule.alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
    }
    status
}

/// A group evaluated at the times its caller chooses, as `promtool test
/// rules` evaluates groups: no schedule, alerting rules restored from the
/// start (they write `ALERTS` at once). The alerts due go to
/// `seams.alerts` through a notifier of its own.
pub struct ManualGroup {
    evaluator: Evaluator,
}

impl std::fmt::Debug for ManualGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualGroup").field("group", &self.evaluator.key).finish_non_exhaustive()
    }
}

impl ManualGroup {
    /// The group `group` of `namespace` in `workspace_id`, reading and
    /// writing through `seams` (its `owner` and `store` unused; `clock`
    /// only timestamps events).
    pub fn new(
        workspace_id: &str,
        namespace: &str,
        group: RuleGroup,
        interval_ms: i64,
        seams: RulerSeams,
        config: RulerConfig,
    ) -> Self {
        let key =
            GroupKey { workspace_id: workspace_id.into(), namespace: namespace.into(), group: group.name.clone() };
        let spec = GroupSpec::new(group, interval_ms);
        let state = GroupState::new(&key, &spec, &mut PreviousSeries::default(), true);
        let mut registry = Registry::default();
        let notifier = Notifier::new(seams.alerts.clone(), seams.events.clone(), seams.clock.clone(), &mut registry);
        let metrics = Metrics::register(&mut registry);
        let state = Arc::new(Mutex::new(state));
        Self { evaluator: Evaluator { key, spec, seams, config, metrics, notifier, state, restore: false } }
    }

    /// Evaluates every rule at `ts` (Unix ms).
    pub async fn evaluate(&self, ts: i64) {
        self.evaluator.evaluate(ts, &CancellationToken::new()).await;
    }

    /// The group's state after the evaluations so far.
    pub fn status(&self) -> GroupStatus {
        status_of(&self.evaluator.state)
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
        previous.rules.into_iter().flat_map(|(_, c)| c.series).map(|l| (l, stale_sample(at))).collect();
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
    notifier: Arc<Notifier>,
    state: Arc<Mutex<GroupState>>,
    /// Whether the alerts' `for` state is restored after the second
    /// evaluation (a fresh start).
    restore: bool,
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
        let mut evaluations = 0_u64;
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
            evaluations += 1;
            // As Prometheus: after the second evaluation, so that recording
            // rules and fresh data are in place.
            if evaluations == 2 && self.restore {
                self.restore_for_state().await;
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
            self.metrics.evaluations.get_or_create(&label).inc();
            let outcome = if rule.is_alerting() {
                self.alert(i, rule, ts, query_offset_ms).await
            } else {
                self.record(i, rule, at).await
            };
            let seconds = rule_started.elapsed().as_secs_f64();
            self.metrics.duration.observe(seconds);
            if outcome.is_err() {
                self.metrics.failures.get_or_create(&label).inc();
            }
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let status = &mut state.status.rules[i];
            status.last_evaluation_ms = Some(ts);
            status.evaluation_seconds = seconds;
            match outcome {
                Ok(()) => (status.health, status.last_error) = (RuleHealth::Ok, None),
                Err(e) => {
                    tracing::warn!(workspace = %ws, group = %self.key.metric_label(), rule = %rule.name(), error = %e, "Evaluating a rule failed.");
                    self.seams.events.record(common::events::WorkspaceEvent::new(
                        ws,
                        "ruler",
                        self.seams.clock.now_ms(),
                        "ERROR",
                        "Evaluating rule failed",
                        &[
                            ("namespace", &self.key.namespace),
                            ("group", &self.key.group),
                            ("name", rule.name()),
                            ("err", &e),
                        ],
                    ));
                    (status.health, status.last_error) = (RuleHealth::Err, Some(e));
                }
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.status.last_evaluation_ms = Some(ts);
        state.status.evaluation_seconds = started.elapsed().as_secs_f64();
        state.status.query_offset_ms = query_offset_ms;
    }

    /// Evaluates a rule's expression at `at`: a vector, or a scalar as one
    /// sample without labels.
    async fn query(&self, expr: &str, at: i64) -> Result<Vec<(Labels, SampleValue)>, String> {
        let value = self.seams.engine.instant_query(&self.key.workspace_id, expr, at).await.map_err(|e| e.message)?;
        match value {
            InstantValue::Vector(v) => Ok(v),
            InstantValue::Scalar(f) => Ok(vec![(Labels::from(Vec::new()), SampleValue::Float(f))]),
            InstantValue::String(_) => Err("rule result is not a vector or scalar".into()),
        }
    }

    /// A recording rule: evaluates, renames and labels the result, and
    /// writes it.
    async fn record(&self, i: usize, rule: &Rule, at: i64) -> Result<(), String> {
        let record = rule.record.as_deref().unwrap_or_default();
        let vector = self.query(&rule.expr, at).await?;
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
        self.write(i, output, returned, at).await
    }

    /// An alerting rule: evaluates at `ts − query offset`, expands the
    /// templates for each sample, moves the alerts through their states,
    /// queues those due to the Alertmanager and writes `ALERTS` and
    /// `ALERTS_FOR_STATE`.
    async fn alert(&self, i: usize, rule: &Rule, ts: i64, query_offset_ms: i64) -> Result<(), String> {
        let ws = &self.key.workspace_id;
        let at = ts - query_offset_ms;
        let vector = self.query(&rule.expr, at).await?;
        let candidates = self.expand(rule, vector, ts).await?;
        let spec = AlertingSpec {
            name: rule.name(),
            labels: &rule.labels,
            hold_ms: rule.for_ms,
            keep_firing_for_ms: rule.keep_firing_for_ms,
        };
        let resend_ms = i64::try_from(self.config.resend_delay.as_millis()).unwrap_or(i64::MAX);
        let (samples, due) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let alerts = state.rules[i].alerts.get_or_insert_with(AlertingState::default);
            let samples = alerts.update(&spec, candidates, ts, self.spec.group.limit)?;
            (samples, alerts.take_due(ts, resend_ms, self.spec.interval_ms))
        };
        if !due.is_empty() {
            let expr = self.state.lock().unwrap_or_else(|p| p.into_inner()).status.rules[i].query.clone();
            let url = format!("{}{}", self.config.external_url, table_link(&expr));
            let postable = due.iter().map(|a| postable(a, &self.config.external_labels, &url)).collect();
            self.notifier.enqueue(ws, postable);
        }
        let returned = samples.iter().map(|(l, _)| l.clone()).collect();
        let output =
            samples.into_iter().map(|(l, v)| (l, Sample { timestamp_ms: at, value: SampleValue::Float(v) })).collect();
        self.write(i, output, returned, at).await
    }

    /// The alerts an alerting rule's result makes, templates expanded (on
    /// a blocking thread when there are templates: `query` calls the
    /// engine synchronously).
    async fn expand(&self, rule: &Rule, vector: Vec<(Labels, SampleValue)>, ts: i64) -> Result<Vec<Candidate>, String> {
        let templated = rule.labels.values().chain(rule.annotations.values()).any(|t| t.contains("{{"));
        if !templated {
            return Ok(candidates(rule, vector, &self.config, ts, None));
        }
        let querier = EngineQuerier {
            engine: self.seams.engine.clone(),
            workspace_id: self.key.workspace_id.clone(),
            handle: tokio::runtime::Handle::current(),
        };
        let (rule, config) = (rule.clone(), self.config.clone());
        tokio::task::spawn_blocking(move || candidates(&rule, vector, &config, ts, Some(&querier)))
            .await
            .map_err(|e| format!("expanding the alert templates: {e}"))
    }

    /// Writes a rule's samples, with staleness markers for the series it
    /// wrote last time and not now, keeps them as its last series, and
    /// waits until they are readable (the next rule must see them).
    async fn write(
        &self,
        i: usize,
        mut output: Vec<(Labels, Sample)>,
        returned: HashSet<Labels>,
        at: i64,
    ) -> Result<(), String> {
        let ws = &self.key.workspace_id;
        {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for gone in state.rules[i].series.difference(&returned) {
                output.push((gone.clone(), stale_sample(at)));
            }
        }
        if output.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let position = self.seams.appender.append(ws, output).await.map_err(|e| e.message)?;
        let appended = t0.elapsed();
        self.state.lock().unwrap_or_else(|p| p.into_inner()).rules[i].series = returned;
        if !self.spec.read_later[i] {
            return Ok(());
        }
        if let Err(SeamError { kind, message }) =
            self.seams.reader.wait_until_readable(ws, &position, self.config.wait_timeout).await
            && kind != ErrorKind::NotFound
        {
            tracing::warn!(workspace = %ws, group = %self.key.metric_label(), rule = i, error = %message, "The rule's samples were not applied in time; the next rule may not see them.");
        }
        tracing::debug!(workspace = %ws, group = %self.key.metric_label(), rule = i, ?appended, applied = ?t0.elapsed(), "Wrote a rule's samples.");
        Ok(())
    }

    /// Prometheus's `RestoreForState`, once after a fresh start: each
    /// alerting rule whose `for` is at least the grace period reads its
    /// `ALERTS_FOR_STATE` series of the last outage tolerance and moves its
    /// pending alerts' `activeAt` so that the time they were pending
    /// before counts. Every alerting rule is then marked restored (and
    /// writes its series), even when reading failed.
    async fn restore_for_state(&self) {
        let ws = &self.key.workspace_id;
        let now = self.seams.clock.now_ms();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let grace = ms(self.config.for_grace_period);
        for (i, rule) in self.spec.group.rules.iter().enumerate() {
            if !rule.is_alerting() {
                continue;
            }
            let spec = AlertingSpec {
                name: rule.name(),
                labels: &rule.labels,
                hold_ms: rule.for_ms,
                keep_firing_for_ms: rule.keep_firing_for_ms,
            };
            let mut series = HashMap::new();
            if rule.for_ms >= grace {
                let matchers: Result<Vec<LabelMatcher>, SeamError> = alerting::for_state_selector(&spec)
                    .into_iter()
                    .map(|(n, v)| LabelMatcher::new(n, MatchOp::Equal, v))
                    .collect();
                let selected = match matchers {
                    Ok(matchers) => {
                        let selection =
                            Selection { matchers, start_ms: now - ms(self.config.outage_tolerance), end_ms: now };
                        self.seams.reader.select(ws, &selection).await
                    }
                    Err(e) => Err(e),
                };
                match selected {
                    Ok(selected) => {
                        for s in selected.series {
                            let last = s.samples.iter().rev().find_map(|x| match x.value {
                                SampleValue::Float(v) => Some((x.timestamp_ms, v)),
                                SampleValue::Histogram(_) => None,
                            });
                            let Some(last) = last else { continue };
                            let labels: Vec<(String, String)> =
                                s.labels.iter().filter(|(k, _)| k != "__name__").cloned().collect();
                            series.insert(Labels::from(labels), last);
                        }
                    }
                    Err(e) => {
                        tracing::error!(workspace = %ws, group = %self.key.metric_label(), alertname = %rule.name(), error = %e, "Failed to restore 'for' state.");
                    }
                }
            }
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.rules[i].alerts.get_or_insert_with(AlertingState::default).restore(rule.for_ms, grace, &series, now);
        }
    }
}

/// An expression as Prometheus's printer prints it (what its rules API
/// shows and its alerts link to).
fn printed_expr(expr: &str) -> String {
    promql_parser::parser::parse(expr).map_or_else(|_| expr.to_owned(), |e| e.to_string())
}

impl GroupStatus {
    /// The group as the rules API shows it: alerting rules with their
    /// pending and firing alerts.
    pub fn to_api(&self) -> common::rules::RuleGroupState {
        let rules = self
            .rules
            .iter()
            .map(|r| common::rules::RuleState {
                name: r.rule.name().to_owned(),
                query: r.query.clone(),
                labels: r.rule.labels.clone(),
                health: match r.health {
                    RuleHealth::Unknown => "unknown",
                    RuleHealth::Ok => "ok",
                    RuleHealth::Err => "err",
                },
                last_error: r.last_error.clone(),
                evaluation_seconds: r.evaluation_seconds,
                last_evaluation_ms: r.last_evaluation_ms,
                alerting: r.state.map(|state| common::rules::AlertingRuleState {
                    state: state.as_str(),
                    for_seconds: r.rule.for_ms as f64 / 1000.0,
                    keep_firing_for_seconds: r.rule.keep_firing_for_ms as f64 / 1000.0,
                    annotations: r.rule.annotations.clone(),
                    alerts: r
                        .alerts
                        .iter()
                        .filter(|a| a.resolved_at_ms.is_none())
                        .map(|a| common::rules::ActiveAlert {
                            labels: a.labels.iter().cloned().collect(),
                            annotations: a.annotations.iter().cloned().collect(),
                            state: a.state.as_str(),
                            active_at_ms: a.active_at_ms,
                            keep_firing_since_ms: a.keep_firing_since_ms,
                            value: a.value,
                        })
                        .collect(),
                }),
            })
            .collect();
        common::rules::RuleGroupState {
            name: self.name.clone(),
            file: self.namespace.clone(),
            interval_seconds: self.interval_ms as f64 / 1000.0,
            limit: self.limit,
            evaluation_seconds: self.evaluation_seconds,
            last_evaluation_ms: self.last_evaluation_ms,
            rules,
        }
    }
}

/// The alerts of a result: for each sample, its labels without
/// `__name__`, the rule's labels expanded over them (an empty expansion
/// removes the label), `alertname`, and the expanded annotations.
fn candidates(
    rule: &Rule,
    vector: Vec<(Labels, SampleValue)>,
    config: &RulerConfig,
    ts: i64,
    querier: Option<&dyn templates::Querier>,
) -> Vec<Candidate> {
    let name = rule.name();
    vector
        .into_iter()
        .map(|(labels, value)| {
            // Prometheus's alert value is the sample's float (0 for a
            // histogram); its templates see the histogram itself.
            let (value, histogram) = match value {
                SampleValue::Float(f) => (f, None),
                SampleValue::Histogram(bytes) => (0.0, template_histogram(&bytes)),
            };
            let data = templates::AlertData {
                labels: labels.iter().cloned().collect(),
                external_labels: config.external_labels.clone(),
                external_url: config.external_url.clone(),
                value,
                histogram,
            };
            let expand = |text: &str| -> String {
                if !text.contains("{{") {
                    return text.to_owned();
                }
                templates::expand_alert_template(name, text, &data, ts, querier).unwrap_or_else(|e| {
                    tracing::warn!(alertname = %name, error = %e, "Expanding alert template failed.");
                    templates::error_text(&e)
                })
            };
            let mut out: BTreeMap<String, String> = labels.iter().filter(|(k, _)| k != "__name__").cloned().collect();
            for (k, v) in &rule.labels {
                let v = expand(v);
                if v.is_empty() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), v);
                }
            }
            out.insert("alertname".into(), name.into());
            let annotations: Vec<(String, String)> =
                rule.annotations.iter().map(|(k, v)| (k.clone(), expand(v))).collect();
            Candidate { labels: out.into_iter().collect::<Vec<_>>().into(), annotations: annotations.into(), value }
        })
        .collect()
}

/// A native histogram sample as alert templates see it (`$value` prints
/// as Go's `FloatHistogram.String()`); `None` if the bytes do not decode.
fn template_histogram(bytes: &[u8]) -> Option<templates::HistogramValue> {
    let h = query_service::engine::histogram::FloatHistogram::decode(bytes).ok()?;
    Some(templates::HistogramValue {
        text: h.go_string(),
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        count: h.count,
        sum: h.sum,
    })
}

/// The templates' `query` function over the PromQL engine, at the
/// evaluation time; called from a blocking thread.
struct EngineQuerier {
    engine: Arc<dyn common::seams::PromqlEngine>,
    workspace_id: String,
    handle: tokio::runtime::Handle,
}

impl templates::Querier for EngineQuerier {
    fn query(&self, expr: &str, at_ms: i64) -> Result<Vec<templates::QuerySample>, String> {
        let value =
            self.handle.block_on(self.engine.instant_query(&self.workspace_id, expr, at_ms)).map_err(|e| e.message)?;
        let sample = |labels: &[(String, String)], v: &SampleValue| templates::QuerySample {
            labels: labels.iter().cloned().collect(),
            value: match v {
                SampleValue::Float(f) => *f,
                SampleValue::Histogram(_) => 0.0,
            },
        };
        match value {
            InstantValue::Vector(v) => Ok(v.iter().map(|(l, v)| sample(l, v)).collect()),
            InstantValue::Scalar(f) => Ok(vec![templates::QuerySample { labels: BTreeMap::new(), value: f }]),
            InstantValue::String(_) => Err("rule result is not a vector or scalar".into()),
        }
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

    /// `$value` of a histogram prints as Prometheus's `String()` (its text
    /// in Prometheus's aggregators.test).
    #[test]
    fn a_histogram_value_prints_as_prometheus_string() {
        use prost::Message as _;
        use schemas::stream::histogram::{Count, ZeroCount};
        use schemas::stream::{BucketSpan, Histogram};
        let h = Histogram {
            count: Some(Count::CountFloat(20.0)),
            sum: 10.0,
            schema: 0,
            zero_threshold: 0.001,
            zero_count: Some(ZeroCount::ZeroCountFloat(2.0)),
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_counts: vec![1.0, 2.0],
            negative_spans: vec![BucketSpan { offset: 0, length: 2 }],
            negative_counts: vec![1.0, 2.0],
            ..Default::default()
        };
        let value = template_histogram(&h.encode_to_vec()).expect("decodes");
        assert_eq!(value.text, "{count:20, sum:10, [-2,-1):2, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}");
    }

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
    fn a_rule_waits_only_when_a_later_rule_may_read_it() {
        let file = rulefmt::parse(
            br#"groups:
  - name: g
    rules:
      - record: a
        expr: sum(x)
      - record: b
        expr: rate(a[5m]) * on() group_left sum(y)
      - record: c
        expr: z
      - alert: A
        expr: c > 1
      - record: d
        expr: count(ALERTS)
      - record: e
        expr: '{job="x"}'
      - record: f
        expr: up
"#,
        )
        .unwrap();
        let spec = GroupSpec::new(file.groups[0].clone(), 1000);
        // a: read by b; b: by e (any name); c: by A; A: by d; d: by e; e: f
        // reads only `up`; f: last.
        assert_eq!(spec.read_later, [true, true, true, true, true, false, false]);
        assert_eq!(selected_names("sum(rate(a[5m])) / b"), Some(["a".to_owned(), "b".to_owned()].into()));
        assert_eq!(selected_names("{__name__=\"a\", job=\"x\"}"), Some(["a".to_owned()].into()));
        assert_eq!(selected_names("{__name__=~\"a.*\"}"), None);
        assert_eq!(selected_names("info(up)"), None);
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
