//! The control plane over a real embedded log: state is durable, replayed
//! on restart, shared by two stores on one log, and workspace creation is
//! idempotent by client token.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::arn::ArnScheme;
use common::clock::{Clock, ManualClock};
use common::control::ControlPlaneStore;
use common::limits::{Limits, Overrides};
use common::log::Log;
use common::seams::{SeamError, WorkspaceData};
use common::workspace::{WorkspaceRecord, WorkspaceStatusCode};
use control_plane::{
    CreateWorkspace, Error, LogControlStore, UpdateAlias, UpdateConfiguration, WorkspaceConfig, WorkspaceService,
    sync_overrides,
};
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use serde_json::json;

mod alertmanager;
mod rule_groups;

fn arns() -> ArnScheme {
    ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() }
}

fn service(store: Arc<LogControlStore>, log: Arc<dyn Log>, clock: Arc<dyn Clock>) -> Arc<WorkspaceService> {
    Arc::new(WorkspaceService::new(
        store,
        log,
        clock,
        WorkspaceConfig { partitions: 2, log_retention: std::time::Duration::from_secs(3600), arns: arns() },
        Arc::new(Overrides::new(&Limits::default())),
        None,
    ))
}

#[tokio::test]
async fn state_is_replayed_after_reopen_including_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    {
        let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
        let store = LogControlStore::open(log.clone(), clock.clone()).await.unwrap();
        store.put("arn:a", json!({"v": 1})).await.unwrap();
        store.put("arn:b", json!({"v": 2})).await.unwrap();
        store.put("arn:a", json!({"v": 3})).await.unwrap();
        store.delete("arn:b").await.unwrap();
        assert_eq!(store.get("arn:a"), Some(json!({"v": 3})));
        assert_eq!(store.get("arn:b"), None);
        log.close().await.unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let store = LogControlStore::open(log.clone(), clock).await.unwrap();
    assert_eq!(store.get("arn:a"), Some(json!({"v": 3})));
    assert_eq!(store.get("arn:b"), None);
    assert_eq!(store.list("arn:"), vec![("arn:a".to_string(), json!({"v": 3}))]);
}

#[tokio::test]
async fn a_second_store_on_the_same_log_sees_changes() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let writer = LogControlStore::open(log.clone(), clock.clone()).await.unwrap();
    let reader = LogControlStore::open(log.clone(), clock).await.unwrap();
    writer.put("arn:x", json!("hello")).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while reader.get("arn:x").is_none() {
        assert!(std::time::Instant::now() < deadline, "the second store never saw the change");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(reader.get("arn:x"), Some(json!("hello")));
}

#[tokio::test]
async fn workspaces_are_created_once_per_client_token_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_700_000_000_500);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let store = Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.unwrap());
    let svc = service(store.clone(), log.clone(), clock);

    let req =
        CreateWorkspace { alias: Some("  prod  ".into()), client_token: Some("tok-1".into()), ..Default::default() };
    let a = svc.create(req.clone()).await.unwrap();
    let b = svc.create(req).await.unwrap();
    assert_eq!(a.workspace_id, b.workspace_id);
    assert_eq!(a.alias.as_deref(), Some("prod"));
    assert_eq!(a.status, WorkspaceStatusCode::Active);
    assert_eq!(a.created_at, 1_700_000_000.5);
    assert_eq!(a.arn, format!("arn:aws:aps:us-east-1:123456789012:workspace/{}", a.workspace_id));
    assert_eq!(log.partition_count(&a.samples_topic).await.unwrap(), 2);

    let conflict = svc
        .create(CreateWorkspace {
            alias: Some("other".into()),
            client_token: Some("tok-1".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(conflict, Err(Error::Conflict { .. })), "{conflict:?}");

    for bad in [
        CreateWorkspace { alias: Some("   ".into()), ..Default::default() },
        CreateWorkspace { alias: Some("x".repeat(101)), ..Default::default() },
        CreateWorkspace { client_token: Some("has space".into()), ..Default::default() },
        CreateWorkspace { tags: Some(BTreeMap::from([("aws:reserved".into(), "v".into())])), ..Default::default() },
        CreateWorkspace { kms_key_arn: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()), ..Default::default() },
    ] {
        let before = store.list("").len();
        assert!(matches!(svc.create(bad.clone()).await, Err(Error::Validation { .. })), "{bad:?} was accepted");
        assert_eq!(store.list("").len(), before, "a rejected create changed state");
    }
    assert!(matches!(svc.describe("ws-nope"), Err(Error::NotFound { .. })));
    assert!(matches!(svc.describe("ws-00000000-0000-4000-8000-000000000000"), Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn a_creation_interrupted_by_a_crash_is_finished_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let store = Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.unwrap());
    let id = "ws-00000000-0000-4000-8000-0000000000aa";
    let stuck = WorkspaceRecord {
        workspace_id: id.into(),
        arn: arns().workspace(id),
        alias: None,
        status: WorkspaceStatusCode::Creating,
        created_at: 1.0,
        tags: BTreeMap::new(),
        client_token: None,
        samples_topic: schemas::topics::samples_topic(id),
        delete_client_token: None,
        configuration: Default::default(),
    };
    store.put(&stuck.arn, serde_json::to_value(&stuck).unwrap()).await.unwrap();
    let svc = service(store, log.clone(), clock);
    svc.reconcile().await.unwrap();
    assert_eq!(svc.describe(id).unwrap().status, WorkspaceStatusCode::Active);
    assert_eq!(log.partition_count(&stuck.samples_topic).await.unwrap(), 2);
}

/// A [`WorkspaceData`] double that records what it was asked to delete and
/// fails while `fail` is set.
#[derive(Debug, Default)]
struct RecordingData {
    deleted: std::sync::Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl WorkspaceData for RecordingData {
    async fn delete_workspace_data(&self, workspace_id: &str) -> Result<(), SeamError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SeamError { kind: common::ErrorKind::Unavailable, message: "lake unreachable".into() });
        }
        self.deleted.lock().unwrap().push(workspace_id.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn configuration_reaches_the_limits_of_this_process_at_once_and_of_others_by_sync() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let mut limits = Limits::default();
    limits.storage.retention_period_days = 90;
    let overrides = Arc::new(Overrides::new(&limits));
    let store = Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.unwrap());
    let svc = Arc::new(WorkspaceService::new(
        store,
        log.clone(),
        clock.clone(),
        WorkspaceConfig { partitions: 1, log_retention: std::time::Duration::from_secs(3600), arns: arns() },
        overrides.clone(),
        None,
    ));
    let ws = svc.create(CreateWorkspace::default()).await.unwrap().workspace_id;
    assert_eq!(svc.describe_configuration(&ws).unwrap().retention_period_in_days, 90, "the config file's default");
    let update = |json: serde_json::Value| serde_json::from_value::<UpdateConfiguration>(json).unwrap();
    svc.update_configuration(&ws, update(json!({"retentionPeriodInDays": 7}))).await.unwrap();
    svc.update_configuration(&ws, update(json!({"outOfOrderTimeWindowInSeconds": 300}))).await.unwrap();
    assert_eq!(overrides.retention_period_days(&ws), 7, "kept by the second, partial update");
    assert_eq!(overrides.out_of_order_window_ms(&ws), 300_000);
    let c = svc.describe_configuration(&ws).unwrap();
    assert_eq!((c.retention_period_in_days, c.out_of_order_time_window_in_seconds), (7, 300));

    // Another process (a second store on the log) learns it by sync.
    let other_store = LogControlStore::open(log.clone(), clock).await.unwrap();
    let other = Overrides::new(&limits);
    assert_eq!(other.retention_period_days(&ws), 90);
    sync_overrides(&other_store, &arns(), &other);
    assert_eq!(other.retention_period_days(&ws), 7);
    assert_eq!(other.out_of_order_window_ms(&ws), 300_000);
    assert_eq!(other.retention_period_days("ws-00000000-0000-4000-8000-000000000001"), 90);

    for bad in [
        json!({}),
        json!({"retentionPeriodInDays": 0}),
        json!({"retentionPeriodInDays": 1096}),
        json!({"outOfOrderTimeWindowInSeconds": 601}),
        json!({"ruleQueryOffsetInSeconds": 86_401}),
        json!({"limitsPerLabelSet": [{"labelSet": {"0a": "b"}, "limits": {"maxSeries": 1}}]}),
        json!({"limitsPerLabelSet": [{"labelSet": {"a": ""}, "limits": {"maxSeries": 1}}]}),
        json!({"limitsPerLabelSet": [{"labelSet": {"a": "b"}, "limits": {"maxSeries": -1}}]}),
        json!({"limitsPerLabelSet": [{"labelSet": {"a": "b"}, "limits": {}}, {"labelSet": {"a": "b"}, "limits": {}}]}),
    ] {
        assert!(
            matches!(svc.update_configuration(&ws, update(bad.clone())).await, Err(Error::Validation { .. })),
            "{bad} accepted"
        );
    }
    assert_eq!(overrides.retention_period_days(&ws), 7);

    let sets = json!({"limitsPerLabelSet": [
        {"labelSet": {"team": "a", "env": "prod"}, "limits": {"maxSeries": 1000}},
        {"labelSet": {}, "limits": {"maxSeries": 10}},
    ]});
    svc.update_configuration(&ws, update(sets)).await.unwrap();
    let ingest = overrides.ingest(&ws);
    assert_eq!(ingest.limits_per_label_set.len(), 2);
    assert_eq!(ingest.limits_per_label_set[0].max_series, 1000);
    assert!(ingest.limits_per_label_set[1].label_set.is_empty());
    let c = svc.describe_configuration(&ws).unwrap();
    assert_eq!(c.limits_per_label_set.len(), 2);
    assert_eq!(c.retention_period_in_days, 7, "other fields kept");
    svc.update_configuration(&ws, update(json!({"limitsPerLabelSet": []}))).await.unwrap();
    assert!(overrides.ingest(&ws).limits_per_label_set.is_empty());
}

#[tokio::test]
async fn deletion_removes_data_topic_and_record_and_a_failed_step_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let store = Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.unwrap());
    let data = Arc::new(RecordingData::default());
    let overrides = Arc::new(Overrides::new(&Limits::default()));
    let svc = Arc::new(WorkspaceService::new(
        store.clone(),
        log.clone(),
        clock,
        WorkspaceConfig { partitions: 1, log_retention: std::time::Duration::from_secs(3600), arns: arns() },
        overrides.clone(),
        Some(data.clone()),
    ));
    let doomed = svc.create(CreateWorkspace::default()).await.unwrap();
    let kept = svc.create(CreateWorkspace::default()).await.unwrap();
    let update = serde_json::from_value::<UpdateConfiguration>(json!({"retentionPeriodInDays": 3})).unwrap();
    svc.update_configuration(&doomed.workspace_id, update).await.unwrap();

    data.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    svc.delete(&doomed.workspace_id, Some("del-1")).await.unwrap();
    svc.delete(&doomed.workspace_id, Some("del-1")).await.expect("a retry with the same token succeeds");
    assert_eq!(svc.describe(&doomed.workspace_id).unwrap().status, WorkspaceStatusCode::Deleting);
    assert!(matches!(
        svc.update_alias(&doomed.workspace_id, UpdateAlias::default()).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(svc.delete(&doomed.workspace_id, None).await, Err(Error::Conflict { .. })));
    // The data step fails: nothing else is deleted yet.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(svc.describe(&doomed.workspace_id).unwrap().status, WorkspaceStatusCode::Deleting);
    assert!(log.partition_count(&doomed.samples_topic).await.is_ok());

    data.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    svc.reconcile().await.unwrap();
    assert!(matches!(svc.describe(&doomed.workspace_id), Err(Error::NotFound { .. })));
    assert_eq!(*data.deleted.lock().unwrap(), std::slice::from_ref(&doomed.workspace_id));
    assert!(log.partition_count(&doomed.samples_topic).await.is_err(), "the topic is left");
    assert_eq!(store.get(&doomed.arn), None);
    assert_eq!(overrides.retention_period_days(&doomed.workspace_id), 150, "its override is left");
    assert_eq!(svc.describe(&kept.workspace_id).unwrap().status, WorkspaceStatusCode::Active);
    assert!(log.partition_count(&kept.samples_topic).await.is_ok());
}

#[tokio::test]
async fn list_pages_filter_by_alias_prefix_and_tags_change_any_resource_document() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let store = Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.unwrap());
    let svc = service(store, log, clock);
    let mut ids = Vec::new();
    for alias in ["prod-a", "prod-b", "dev", "prod-c", "x"] {
        ids.push(svc.create(CreateWorkspace { alias: Some(alias.into()), ..Default::default() }).await.unwrap());
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = svc.list(None, Some(2), token.as_deref()).unwrap();
        assert!(page.workspaces.len() <= 2);
        seen.extend(page.workspaces.into_iter().map(|w| w.workspace_id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut all: Vec<String> = ids.iter().map(|w| w.workspace_id.clone()).collect();
    all.sort();
    assert_eq!(seen, all, "every workspace once, in id order");
    let prod = svc.list(Some("prod"), None, None).unwrap();
    assert_eq!(prod.workspaces.len(), 3);
    assert!(prod.next_token.is_none());
    assert!(matches!(svc.list(None, Some(0), None), Err(Error::Validation { .. })));
    assert!(matches!(svc.list(None, None, Some("garbage")), Err(Error::Validation { .. })));

    let arn = &ids[0].arn;
    svc.tag(arn, BTreeMap::from([("a".into(), "1".into())])).await.unwrap();
    svc.tag(arn, BTreeMap::from([("b".into(), "2".into()), ("a".into(), "3".into())])).await.unwrap();
    assert_eq!(svc.list_tags(arn).unwrap(), BTreeMap::from([("a".into(), "3".into()), ("b".into(), "2".into())]));
    svc.untag(arn, &["a".into(), "missing".into()]).await.unwrap();
    assert_eq!(svc.describe(&ids[0].workspace_id).unwrap().tags, BTreeMap::from([("b".into(), "2".into())]));
    let fifty: BTreeMap<String, String> = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(svc.tag(arn, fifty).await, Err(Error::ServiceQuotaExceeded { .. })), "51 tags in all");
    assert!(matches!(svc.list_tags("arn:aws:aps:eu-west-1:123456789012:workspace/x"), Err(Error::Validation { .. })));
    assert!(matches!(
        svc.list_tags("arn:aws:aps:us-east-1:123456789012:workspace/ws-00000000-0000-4000-8000-000000000000"),
        Err(Error::NotFound { .. })
    ));
}
