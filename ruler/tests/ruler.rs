//! The ruler over fakes of its seams: what a recording rule writes, its
//! errors, staleness when series or groups go away, and the schedule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::arn::ArnScheme;
use common::clock::SystemClock;
use common::control::{ControlPlaneStore, MemoryControlStore};
use common::limits::{Limits, Overrides};
use common::rules::{RuleGroupsNamespaceRecord, RuleGroupsNamespaceStatus, RuleGroupsNamespaceStatusCode};
use common::seams::{
    AlertSink, InstantValue, Labels, LogPosition, MetricMetadata, PromqlEngine, Sample, SampleAppender, SampleReader,
    SampleValue, SeamError, Selected, SelectedSeries, Selection,
};
use prometheus_client::registry::Registry;
use ruler::{AlertState, AllGroups, RuleHealth, Ruler, RulerConfig, RulerSeams};

const WS: &str = "ws-00000000-0000-0000-0000-000000000001";

fn arns() -> ArnScheme {
    ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>().into()
}

/// Answers each expression with what the test set for it.
#[derive(Debug, Default)]
struct FakeEngine {
    answers: Mutex<std::collections::HashMap<String, InstantValue>>,
    times: Mutex<Vec<i64>>,
}

#[async_trait]
impl PromqlEngine for FakeEngine {
    async fn instant_query(&self, _ws: &str, query: &str, time_ms: i64) -> Result<InstantValue, SeamError> {
        self.times.lock().unwrap().push(time_ms);
        Ok(self.answers.lock().unwrap().get(query).cloned().unwrap_or(InstantValue::Vector(Vec::new())))
    }
}

/// Records what is appended.
#[derive(Debug, Default)]
struct FakeAppender {
    written: Mutex<Vec<(Labels, Sample)>>,
}

#[async_trait]
impl SampleAppender for FakeAppender {
    async fn append(&self, _ws: &str, samples: Vec<(Labels, Sample)>) -> Result<LogPosition, SeamError> {
        self.written.lock().unwrap().extend(samples);
        Ok(vec![(0, 1)])
    }
}

/// Answers selections with the series the test set, filtered by the
/// matchers and the range.
#[derive(Debug, Default)]
struct FakeReader {
    series: Mutex<Vec<SelectedSeries>>,
}

#[async_trait]
impl SampleReader for FakeReader {
    async fn select(&self, _ws: &str, s: &Selection) -> Result<Selected, SeamError> {
        let series = self
            .series
            .lock()
            .unwrap()
            .iter()
            .filter(|x| s.matches(&x.labels))
            .map(|x| SelectedSeries {
                labels: x.labels.clone(),
                samples: x
                    .samples
                    .iter()
                    .filter(|p| (s.start_ms..=s.end_ms).contains(&p.timestamp_ms))
                    .cloned()
                    .collect(),
            })
            .collect();
        Ok(Selected { series, ..Selected::default() })
    }
    async fn metadata(&self, _ws: &str) -> Result<Vec<MetricMetadata>, SeamError> {
        Ok(Vec::new())
    }
    async fn wait_for_position(&self, _ws: &str, _p: &LogPosition, _t: Duration) -> Result<(), SeamError> {
        Ok(())
    }
}

/// Records the alerts sent, with the time they arrived.
#[derive(Debug, Default)]
struct FakeAlertmanager {
    received: Mutex<Vec<(String, serde_json::Value)>>,
}

#[async_trait]
impl AlertSink for FakeAlertmanager {
    async fn send(&self, ws: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
        let mut received = self.received.lock().unwrap();
        for a in alerts.as_array().unwrap() {
            received.push((ws.to_owned(), a.clone()));
        }
        Ok(())
    }
}

/// Records the workspace events.
#[derive(Debug, Default)]
struct FakeEvents(Mutex<Vec<common::events::WorkspaceEvent>>);

impl common::events::EventSink for FakeEvents {
    fn record(&self, event: common::events::WorkspaceEvent) {
        self.0.lock().unwrap().push(event);
    }
}

struct Fixture {
    events: Arc<FakeEvents>,
    store: Arc<MemoryControlStore>,
    engine: Arc<FakeEngine>,
    appender: Arc<FakeAppender>,
    reader: Arc<FakeReader>,
    alertmanager: Arc<FakeAlertmanager>,
    ruler: Arc<Ruler>,
    registry: Registry,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A ruler over fakes; the test calls `sync`.
fn fixture() -> Fixture {
    fixture_with(RulerConfig::default(), false)
}

/// A ruler over fakes; `run`: running (syncing every 50 ms, its notifier
/// sending) until the fixture is dropped.
fn fixture_with(config: RulerConfig, run: bool) -> Fixture {
    let store = Arc::new(MemoryControlStore::default());
    let engine = Arc::new(FakeEngine::default());
    let appender = Arc::new(FakeAppender::default());
    let reader = Arc::new(FakeReader::default());
    let alertmanager = Arc::new(FakeAlertmanager::default());
    let events = Arc::new(FakeEvents::default());
    let mut registry = Registry::default();
    let seams = RulerSeams {
        store: store.clone(),
        arns: arns(),
        engine: engine.clone(),
        appender: appender.clone(),
        reader: reader.clone(),
        overrides: Arc::new(Overrides::new(&Limits::default())),
        clock: Arc::new(SystemClock),
        owner: Arc::new(AllGroups),
        alerts: alertmanager.clone(),
        events: events.clone(),
    };
    let ruler = Ruler::new(seams, RulerConfig { sync_interval: Duration::from_millis(50), ..config }, &mut registry);
    let shutdown = tokio_util::sync::CancellationToken::new();
    if run {
        tokio::spawn(ruler.clone().run(shutdown.clone()));
    }
    Fixture { events, store, engine, appender, reader, alertmanager, ruler, registry, shutdown }
}

/// The workspace's record, `ACTIVE` (the ruler evaluates only those).
async fn put_workspace(store: &MemoryControlStore) {
    let record = common::workspace::WorkspaceRecord {
        workspace_id: WS.into(),
        arn: arns().workspace(WS),
        alias: None,
        status: common::workspace::WorkspaceStatusCode::Active,
        created_at: 0.0,
        tags: Default::default(),
        client_token: None,
        delete_client_token: None,
        samples_topic: "t".into(),
        configuration: Default::default(),
    };
    store.put(&record.arn, serde_json::to_value(&record).unwrap()).await.unwrap();
}

async fn put_namespace(store: &MemoryControlStore, name: &str, data: &str, status: RuleGroupsNamespaceStatusCode) {
    put_workspace(store).await;
    let record = RuleGroupsNamespaceRecord {
        arn: arns().rule_groups_namespace(WS, name),
        workspace_id: WS.into(),
        name: name.into(),
        status: RuleGroupsNamespaceStatus { status_code: status, status_reason: None },
        data: data.into(),
        created_at: 0.0,
        modified_at: 0.0,
        tags: Default::default(),
        client_token: None,
    };
    store.put(&record.arn, serde_json::to_value(&record).unwrap()).await.unwrap();
}

fn set(engine: &FakeEngine, query: &str, vector: Vec<(Labels, f64)>) {
    let v = vector.into_iter().map(|(l, v)| (l, SampleValue::Float(v))).collect();
    engine.answers.lock().unwrap().insert(query.into(), InstantValue::Vector(v));
}

/// Every sample written, as `f` maps (labels' value of a name, sample).
fn written_as<T>(f: &Fixture, map: impl Fn(&dyn Fn(&str) -> String, f64, i64) -> T) -> Vec<T> {
    f.appender
        .written
        .lock()
        .unwrap()
        .iter()
        .map(|(l, s)| {
            let get = |n: &str| l.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
            let SampleValue::Float(v) = s.value else { panic!("a histogram") };
            map(&get, v, s.timestamp_ms)
        })
        .collect()
}

/// (name, job, value, timestamp) of every sample written.
fn written(f: &Fixture) -> Vec<(String, String, f64, i64)> {
    written_as(f, |get, v, t| (get("__name__"), get("job"), v, t))
}

async fn wait_for(f: &Fixture, what: &str, done: impl Fn(&Fixture) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done(f) {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {:?}", written(f));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == schemas::labels::STALE_NAN_BITS
}

const GROUP: &str = "groups:
  - name: g
    interval: 200ms
    query_offset: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: x}
";

#[tokio::test]
async fn a_recording_rule_writes_its_result_and_marks_gone_series_stale() {
    let f = fixture();
    set(&f.engine, "sum by (job) (up)", vec![(labels(&[("job", "a")]), 2.0), (labels(&[("job", "b")]), 1.0)]);
    put_namespace(&f.store, "ns", GROUP, RuleGroupsNamespaceStatusCode::Active).await;
    // Not evaluated: failed namespaces, namespaces of other workspaces
    // that are not active (here: without a workspace record).
    put_namespace(
        &f.store,
        "failed",
        &GROUP.replace("job:up:sum", "other"),
        RuleGroupsNamespaceStatusCode::UpdateFailed,
    )
    .await;
    let other = RuleGroupsNamespaceRecord {
        arn: arns().rule_groups_namespace("ws-00000000-0000-0000-0000-000000000002", "ns"),
        workspace_id: "ws-00000000-0000-0000-0000-000000000002".into(),
        name: "ns".into(),
        status: RuleGroupsNamespaceStatus { status_code: RuleGroupsNamespaceStatusCode::Active, status_reason: None },
        data: GROUP.into(),
        created_at: 0.0,
        modified_at: 0.0,
        tags: Default::default(),
        client_token: None,
    };
    f.store.put(&other.arn, serde_json::to_value(&other).unwrap()).await.unwrap();
    f.ruler.sync().await;
    wait_for(&f, "two evaluations", |f| written(f).len() >= 4).await;
    let w = written(&f);
    assert!(w.iter().all(|(name, _, _, _)| name == "job:up:sum"), "{w:?}");
    let first_ts = w[0].3;
    assert_eq!(w[0..2].iter().map(|x| (x.1.as_str(), x.2)).collect::<Vec<_>>(), [("a", 2.0), ("b", 1.0)]);
    assert_eq!(w[1].3, first_ts);
    // Evaluated at the slot minus the query offset; slots 200 ms apart.
    let times = f.engine.times.lock().unwrap().clone();
    assert_eq!(times[0], first_ts);
    // One slot later, or more when a loaded machine made it skip one.
    assert!(times[1] > times[0] && (times[1] - times[0]) % 200 == 0, "{times:?}");
    let written_labels = f.appender.written.lock().unwrap()[0].0.clone();
    assert_eq!(&*written_labels, &*labels(&[("__name__", "job:up:sum"), ("job", "a"), ("team", "x")]));
    let status = f.ruler.groups();
    assert_eq!(status.len(), 1, "only the active namespace's group runs");
    assert_eq!((status[0].namespace.as_str(), status[0].interval_ms), ("ns", 200));
    assert_eq!(status[0].rules[0].health, RuleHealth::Ok);

    // Job b goes away: one staleness marker, at the next evaluation time.
    set(&f.engine, "sum by (job) (up)", vec![(labels(&[("job", "a")]), 3.0)]);
    f.appender.written.lock().unwrap().clear();
    wait_for(&f, "the staleness marker", |f| written(f).iter().any(|(_, job, v, _)| job == "b" && is_stale(*v))).await;
    wait_for(&f, "another evaluation", |f| written(f).iter().filter(|(_, job, _, _)| job == "a").count() >= 3).await;
    let w = written(&f);
    assert_eq!(w.iter().filter(|(_, job, v, _)| job == "b" && is_stale(*v)).count(), 1, "marked once: {w:?}");
    assert!(w.iter().filter(|(_, job, _, _)| job == "b").all(|(_, _, v, _)| is_stale(*v)), "{w:?}");
    let metrics = {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
        text
    };
    assert!(
        metrics.contains(
            "promlake_rule_evaluations_total{workspace=\"ws-00000000-0000-0000-0000-000000000001\",rule_group=\"ns;g\"}"
        ),
        "{metrics}"
    );

    // The namespace is deleted: every series of the group goes stale.
    f.store.delete(&arns().rule_groups_namespace(WS, "ns")).await.unwrap();
    f.appender.written.lock().unwrap().clear();
    f.ruler.sync().await;
    assert!(f.ruler.groups().is_empty());
    let w = written(&f);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].1 == "a" && is_stale(w[0].2), "{w:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(written(&f).len(), 1, "a stopped group writes nothing more");
}

#[tokio::test]
async fn errors_fail_the_rule_and_write_nothing() {
    let f = fixture();
    let rules = "groups:
  - name: g
    interval: 100ms
    limit: 2
    rules:
      - record: dup
        expr: dup_source
        labels: {job: same}
      - record: many
        expr: many_source
      - record: str
        expr: '\"a string\"'
      - record: scalar
        expr: scalar_source
";
    set(&f.engine, "dup_source", vec![(labels(&[("job", "a")]), 1.0), (labels(&[("job", "b")]), 1.0)]);
    set(&f.engine, "many_source", (0..3).map(|i| (labels(&[("i", &i.to_string())]), 1.0)).collect());
    f.engine.answers.lock().unwrap().insert("\"a string\"".into(), InstantValue::String("a string".into()));
    f.engine.answers.lock().unwrap().insert("scalar_source".into(), InstantValue::Scalar(4.0));
    put_namespace(&f.store, "ns", rules, RuleGroupsNamespaceStatusCode::Active).await;
    f.ruler.sync().await;
    wait_for(&f, "the scalar rule", |f| !written(f).is_empty()).await;
    let w = written(&f);
    assert!(w.iter().all(|(name, _, v, _)| name == "scalar" && *v == 4.0), "only the scalar rule wrote: {w:?}");
    let rules = &f.ruler.groups()[0].rules;
    let errors: Vec<(RuleHealth, Option<&str>)> = rules.iter().map(|r| (r.health, r.last_error.as_deref())).collect();
    assert_eq!(
        errors,
        [
            (RuleHealth::Err, Some("vector contains metrics with the same labelset after applying rule labels")),
            (RuleHealth::Err, Some("exceeded limit of 2 with 3 series")),
            (RuleHealth::Err, Some("rule result is not a vector or scalar")),
            (RuleHealth::Ok, None),
        ]
    );
    // Each failure is one of the workspace's events, in AMP's shape.
    let events = f.events.0.lock().unwrap().clone();
    let limit = events.iter().find(|e| e.message["name"] == "many").expect("an event of the failed rule");
    let json = serde_json::to_value(limit).unwrap();
    assert_eq!(json["workspaceId"], WS);
    assert_eq!(json["component"], "ruler");
    assert_eq!(
        json["message"],
        serde_json::json!({
            "log": "Evaluating rule failed", "level": "ERROR", "namespace": "ns", "group": "g", "name": "many",
            "err": "exceeded limit of 2 with 3 series"
        })
    );
    assert!(chrono::DateTime::parse_from_rfc3339(json["time"].as_str().unwrap()).is_ok(), "{json}");
    assert!(events.iter().all(|e| e.message["name"] != "scalar"), "no event for the rule that worked");
}

#[tokio::test]
async fn a_changed_group_keeps_its_series_and_a_removed_rule_goes_stale() {
    let f = fixture();
    set(&f.engine, "sum by (job) (up)", vec![(labels(&[("job", "a")]), 1.0)]);
    put_namespace(&f.store, "ns", GROUP, RuleGroupsNamespaceStatusCode::Active).await;
    f.ruler.sync().await;
    wait_for(&f, "an evaluation", |f| !written(f).is_empty()).await;
    // Same rule, another interval: restarted, no staleness.
    put_namespace(&f.store, "ns", &GROUP.replace("200ms", "300ms"), RuleGroupsNamespaceStatusCode::Active).await;
    f.ruler.sync().await;
    assert_eq!(f.ruler.groups()[0].interval_ms, 300);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(written(&f).iter().all(|(_, _, v, _)| !is_stale(*v)), "{:?}", written(&f));
    // The rule renamed: the old name's series go stale.
    put_namespace(&f.store, "ns", &GROUP.replace("job:up:sum", "job:up:total"), RuleGroupsNamespaceStatusCode::Active)
        .await;
    f.ruler.sync().await;
    wait_for(&f, "the renamed rule's staleness", |f| {
        written(f).iter().any(|(name, _, v, _)| name == "job:up:sum" && is_stale(*v))
    })
    .await;
    wait_for(&f, "the new name", |f| written(f).iter().any(|(name, _, _, _)| name == "job:up:total")).await;
}

const ALERTS_GROUP: &str = r#"groups:
  - name: alerts
    interval: 200ms
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 400ms
        labels:
          severity: page
          instance_copy: "{{ $labels.instance }}"
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})"
          queried: '{{ with query "sum(up)" }}{{ . | first | value }}{{ end }}'
          external: "{{ $externalLabels.region }} {{ $externalURL }}"
"#;

/// The ALERTS/ALERTS_FOR_STATE samples written: (name, alertstate, value).
fn alert_series(f: &Fixture) -> Vec<(String, String, f64)> {
    written_as(f, |get, v, _| (get("__name__"), get("alertstate"), v))
}

fn received(f: &Fixture) -> Vec<serde_json::Value> {
    f.alertmanager.received.lock().unwrap().iter().map(|(_, a)| a.clone()).collect()
}

#[tokio::test]
async fn an_alerting_rule_goes_pending_fires_resolves_and_reaches_the_alertmanager() {
    let config = RulerConfig {
        resend_delay: Duration::from_secs(3600),
        external_labels: [("region".to_owned(), "eu".to_owned())].into(),
        external_url: "http://promlake.example".into(),
        ..RulerConfig::default()
    };
    let f = fixture_with(config, true);
    set(&f.engine, "up == 0", vec![(labels(&[("__name__", "up"), ("instance", "a:9100"), ("job", "node")]), 0.0)]);
    set(&f.engine, "sum(up)", vec![(labels(&[]), 7.0)]);
    put_namespace(&f.store, "ns", ALERTS_GROUP, RuleGroupsNamespaceStatusCode::Active).await;
    wait_for(&f, "the alert firing", |f| !received(f).is_empty()).await;
    let status = f.ruler.groups();
    let rule = &status[0].rules[0];
    assert_eq!((rule.health, rule.state), (RuleHealth::Ok, Some(AlertState::Firing)), "{rule:?}");
    let alert = &rule.alerts[0];
    assert!(alert.fired_at_ms.unwrap() - alert.active_at_ms >= 400, "fires after `for`: {alert:?}");
    let sent = &received(&f)[0];
    assert_eq!(
        sent["labels"],
        serde_json::json!({
            "alertname": "InstanceDown", "instance": "a:9100", "instance_copy": "a:9100", "job": "node",
            "severity": "page", "region": "eu"
        })
    );
    assert_eq!(
        sent["annotations"],
        serde_json::json!({
            "summary": "a:9100 of node is down (0)", "queried": "7", "external": "eu http://promlake.example"
        })
    );
    assert_eq!(sent["generatorURL"], "http://promlake.example/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    let starts = chrono::DateTime::parse_from_rfc3339(sent["startsAt"].as_str().unwrap()).unwrap();
    let ends = chrono::DateTime::parse_from_rfc3339(sent["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!((ends - starts).num_seconds(), 4 * 3600, "valid for 4 resend delays");
    assert_eq!(starts.timestamp_millis(), alert.fired_at_ms.unwrap());
    // ALERTS and ALERTS_FOR_STATE are written once the `for` state was
    // restored (after the second evaluation): pending, then firing with a
    // staleness marker for the pending series.
    wait_for(&f, "ALERTS firing", |f| alert_series(f).iter().any(|(n, s, _)| n == "ALERTS" && s == "firing")).await;
    let series = alert_series(&f);
    assert!(series.iter().any(|(n, _, v)| n == "ALERTS_FOR_STATE" && *v == (alert.active_at_ms / 1000) as f64));
    if series.iter().any(|(n, s, v)| n == "ALERTS" && s == "pending" && *v == 1.0) {
        assert!(series.iter().any(|(n, s, v)| n == "ALERTS" && s == "pending" && is_stale(*v)), "{series:?}");
    }

    // The condition ends: resolved at once, sent with endsAt = resolution.
    set(&f.engine, "up == 0", vec![]);
    wait_for(&f, "the resolution", |f| received(f).len() >= 2).await;
    let resolved = &received(&f)[1];
    let status = f.ruler.groups();
    let alert = &status[0].rules[0].alerts[0];
    assert_eq!(alert.state, AlertState::Inactive);
    let ends = chrono::DateTime::parse_from_rfc3339(resolved["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!(ends.timestamp_millis(), alert.resolved_at_ms.unwrap());
    assert_eq!(status[0].rules[0].state, Some(AlertState::Inactive));
    wait_for(&f, "ALERTS going stale", |f| {
        alert_series(f).iter().any(|(n, s, v)| n == "ALERTS" && s == "firing" && is_stale(*v))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&f).len(), 2, "sent once as resolved (resend delay 1 h): {:?}", received(&f));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_for_keeps_the_time_already_pending() {
    // `for` 1 h, grace 1 s: a pending alert whose ALERTS_FOR_STATE says it
    // has been active for 59 min 50 s when the ruler went down 2 s ago
    // fires 10 s after the restart (the time remaining), not 1 h later.
    let config = RulerConfig { for_grace_period: Duration::from_secs(1), ..RulerConfig::default() };
    // The group exists when the ruler starts (a restart): it restores.
    let f = fixture_with(config, false);
    let rules = "groups:
  - name: g
    interval: 200ms
    rules:
      - alert: Slow
        expr: up == 0
        for: 1h
";
    set(&f.engine, "up == 0", vec![(labels(&[("__name__", "up"), ("instance", "a")]), 0.0)]);
    let now = common::clock::Clock::now_ms(&SystemClock);
    let down_at = now - 2_000;
    let active_at = (down_at - 3_590_000) / 1000;
    f.reader.series.lock().unwrap().push(SelectedSeries {
        labels: labels(&[("__name__", "ALERTS_FOR_STATE"), ("alertname", "Slow"), ("instance", "a")]),
        samples: vec![Sample { timestamp_ms: down_at, value: SampleValue::Float(active_at as f64) }],
    });
    put_namespace(&f.store, "ns", rules, RuleGroupsNamespaceStatusCode::Active).await;
    tokio::spawn(f.ruler.clone().run(f.shutdown.clone()));
    wait_for(&f, "the restoration", |f| alert_series(f).iter().any(|(n, _, _)| n == "ALERTS_FOR_STATE")).await;
    let alert = f.ruler.groups()[0].rules[0].alerts[0].clone();
    assert_eq!(alert.state, AlertState::Pending);
    // activeAt moved forward by the downtime: (restore time − down time).
    let moved = alert.active_at_ms - active_at * 1000;
    assert!((2_000..6_000).contains(&moved), "moved by {moved} ms: {alert:?}");
    let fires_in = alert.active_at_ms + 3_600_000 - common::clock::Clock::now_ms(&SystemClock);
    assert!((0..12_000).contains(&fires_in), "fires in {fires_in} ms");
    assert!(received(&f).is_empty(), "pending alerts are not sent");
}

#[tokio::test]
async fn a_group_created_while_running_starts_fresh_as_in_prometheus() {
    // Prometheus restores the `for` state only of the groups it loads at
    // start: one added later starts fresh, writing ALERTS from its first
    // evaluation, whatever ALERTS_FOR_STATE says.
    let f = fixture_with(RulerConfig { for_grace_period: Duration::from_secs(1), ..RulerConfig::default() }, true);
    put_workspace(&f.store).await;
    // The ruler's first sync happens with no group.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rules = "groups:
  - name: g
    interval: 200ms
    rules:
      - alert: Slow
        expr: up == 0
        for: 1h
";
    set(&f.engine, "up == 0", vec![(labels(&[("__name__", "up"), ("instance", "a")]), 0.0)]);
    let now = common::clock::Clock::now_ms(&SystemClock);
    f.reader.series.lock().unwrap().push(SelectedSeries {
        labels: labels(&[("__name__", "ALERTS_FOR_STATE"), ("alertname", "Slow"), ("instance", "a")]),
        samples: vec![Sample {
            timestamp_ms: now - 2_000,
            value: SampleValue::Float(((now - 3_000_000) / 1000) as f64),
        }],
    });
    put_namespace(&f.store, "ns", rules, RuleGroupsNamespaceStatusCode::Active).await;
    wait_for(&f, "ALERTS", |f| alert_series(f).iter().any(|(n, _, _)| n == "ALERTS_FOR_STATE")).await;
    let status = f.ruler.groups();
    let alert = &status[0].rules[0].alerts[0];
    // Not restored: active since the group's first evaluation, not 50 min ago.
    assert!(now - alert.active_at_ms < 5_000, "activeAt {} vs now {now}", alert.active_at_ms);
}
