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
    InstantValue, Labels, LogPosition, MetricMetadata, PromqlEngine, Sample, SampleAppender, SampleReader, SampleValue,
    SeamError, Selected, Selection,
};
use prometheus_client::registry::Registry;
use ruler::{AllGroups, RuleHealth, Ruler, RulerConfig, RulerSeams};

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

#[derive(Debug)]
struct FakeReader;

#[async_trait]
impl SampleReader for FakeReader {
    async fn select(&self, _ws: &str, _s: &Selection) -> Result<Selected, SeamError> {
        Ok(Selected::default())
    }
    async fn metadata(&self, _ws: &str) -> Result<Vec<MetricMetadata>, SeamError> {
        Ok(Vec::new())
    }
    async fn wait_for_position(&self, _ws: &str, _p: &LogPosition, _t: Duration) -> Result<(), SeamError> {
        Ok(())
    }
}

struct Fixture {
    store: Arc<MemoryControlStore>,
    engine: Arc<FakeEngine>,
    appender: Arc<FakeAppender>,
    ruler: Arc<Ruler>,
    registry: Registry,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryControlStore::default());
    let engine = Arc::new(FakeEngine::default());
    let appender = Arc::new(FakeAppender::default());
    let mut registry = Registry::default();
    let seams = RulerSeams {
        store: store.clone(),
        arns: arns(),
        engine: engine.clone(),
        appender: appender.clone(),
        reader: Arc::new(FakeReader),
        overrides: Arc::new(Overrides::new(&Limits::default())),
        clock: Arc::new(SystemClock),
        owner: Arc::new(AllGroups),
    };
    let ruler = Ruler::new(seams, RulerConfig::default(), &mut registry);
    Fixture { store, engine, appender, ruler, registry }
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

fn written(f: &Fixture) -> Vec<(String, String, f64, i64)> {
    f.appender
        .written
        .lock()
        .unwrap()
        .iter()
        .map(|(l, s)| {
            let name = l.iter().find(|(k, _)| k == "__name__").map(|(_, v)| v.clone()).unwrap_or_default();
            let job = l.iter().find(|(k, _)| k == "job").map(|(_, v)| v.clone()).unwrap_or_default();
            let SampleValue::Float(v) = s.value else { panic!("a histogram") };
            (name, job, v, s.timestamp_ms)
        })
        .collect()
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
