//! The control plane over a real embedded log: state is durable, replayed
//! on restart, shared by two stores on one log, and workspace creation is
//! idempotent by client token.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::arn::ArnScheme;
use common::clock::{Clock, ManualClock};
use common::control::ControlPlaneStore;
use common::log::Log;
use common::workspace::{WorkspaceRecord, WorkspaceStatusCode};
use control_plane::{CreateWorkspace, Error, LogControlStore, WorkspaceConfig, WorkspaceService};
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use serde_json::json;

fn arns() -> ArnScheme {
    ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() }
}

fn service(store: Arc<LogControlStore>, log: Arc<dyn Log>, clock: Arc<dyn Clock>) -> WorkspaceService {
    WorkspaceService::new(
        store,
        log,
        clock,
        WorkspaceConfig { partitions: 2, log_retention: std::time::Duration::from_secs(3600), arns: arns() },
    )
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
    assert!(matches!(svc.describe("ws-nope"), Err(Error::Validation { .. })));
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
    };
    store.put(&stuck.arn, serde_json::to_value(&stuck).unwrap()).await.unwrap();
    let svc = service(store, log.clone(), clock);
    svc.reconcile().await.unwrap();
    assert_eq!(svc.describe(id).unwrap().status, WorkspaceStatusCode::Active);
    assert_eq!(log.partition_count(&stuck.samples_topic).await.unwrap(), 2);
}
