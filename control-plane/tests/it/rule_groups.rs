//! Rule groups namespaces: AMP's operations and states, validation as
//! promtool does it, quotas, nothing changed by a refused request.

use std::sync::Arc;

use base64::Engine as _;
use common::clock::{Clock, ManualClock};
use common::control::ControlPlaneStore;
use common::limits::{Limits, Overrides, RulerLimitsOverride, WorkspaceOverride};
use common::rules::{RuleGroupsNamespaceRecord, RuleGroupsNamespaceStatusCode as Status};
use control_plane::{
    CreateRuleGroupsNamespace, CreateWorkspace, Error, LogControlStore, PutRuleGroupsNamespace, WorkspaceConfig,
    WorkspaceService,
};
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};

const RULES: &str = "groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 5m
        annotations:
          summary: '{{ $labels.instance }} is down'
";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn create(name: &str, data: &str) -> CreateRuleGroupsNamespace {
    CreateRuleGroupsNamespace { name: Some(name.into()), data: Some(b64(data)), ..Default::default() }
}

fn put(data: &str) -> PutRuleGroupsNamespace {
    PutRuleGroupsNamespace { data: Some(b64(data)), client_token: None }
}

/// `n` recording rules in one group named `group`.
fn rules(group: &str, n: usize) -> String {
    let mut s = format!("groups:\n  - name: {group}\n    rules:\n");
    for i in 0..n {
        s.push_str(&format!("      - record: r{i}\n        expr: up\n"));
    }
    s
}

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) store: Arc<LogControlStore>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) service: Arc<WorkspaceService>,
    pub(super) overrides: Arc<Overrides>,
    pub(super) ws: String,
}

pub(super) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store = Arc::new(LogControlStore::open(log.clone(), dyn_clock.clone()).await.unwrap());
    let overrides = Arc::new(Overrides::new(&Limits::default()));
    let service = Arc::new(WorkspaceService::new(
        store.clone(),
        log,
        dyn_clock,
        WorkspaceConfig { partitions: 1, log_retention: std::time::Duration::from_secs(3600), arns: super::arns() },
        overrides.clone(),
        None,
    ));
    let ws = service.create(CreateWorkspace::default()).await.unwrap().workspace_id;
    Fixture { _dir: dir, store, clock, service, overrides, ws }
}

fn names(f: &Fixture) -> Vec<(String, String)> {
    f.service.rule_groups_namespaces(&f.ws).into_iter().map(|n| (n.name, n.data)).collect()
}

#[tokio::test]
async fn create_describe_put_list_delete() {
    let f = fixture().await;
    let s = &f.service;
    let mut request = create("node-rules", RULES);
    request.tags = Some([("team".to_owned(), "infra".to_owned())].into());
    let created = s.create_rule_groups_namespace(&f.ws, request).await.unwrap();
    assert_eq!(created.status.status_code, Status::Active);
    assert_eq!(created.arn, format!("arn:aws:aps:us-east-1:123456789012:rulegroupsnamespace/{}/node-rules", f.ws));
    let described = s.describe_rule_groups_namespace(&f.ws, "node-rules").unwrap();
    assert_eq!((described.data.as_str(), described.created_at), (RULES, 1_700_000_000.0));
    assert_eq!(described.tags["team"], "infra");

    f.clock.advance(5_000);
    let replaced = rules("other", 2);
    let answer = s.put_rule_groups_namespace(&f.ws, "node-rules", put(&replaced)).await.unwrap();
    assert_eq!(answer.status.status_code, Status::Updating, "AMP answers a put UPDATING");
    let described = s.describe_rule_groups_namespace(&f.ws, "node-rules").unwrap();
    assert_eq!(described.status.status_code, Status::Active);
    assert_eq!((described.data.as_str(), described.modified_at), (replaced.as_str(), 1_700_000_005.0));
    assert_eq!(described.created_at, 1_700_000_000.0);
    assert_eq!(described.tags["team"], "infra", "a put keeps the tags");

    for name in ["a-1", "a-2", "b-1"] {
        s.create_rule_groups_namespace(&f.ws, create(name, &rules(name, 1))).await.unwrap();
    }
    let page = s.list_rule_groups_namespaces(&f.ws, Some("a-"), None, None).unwrap();
    assert_eq!(page.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["a-1", "a-2"]);
    assert!(page.next_token.is_none());
    let first = s.list_rule_groups_namespaces(&f.ws, None, Some(3), None).unwrap();
    assert_eq!(first.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["a-1", "a-2", "b-1"]);
    let second = s.list_rule_groups_namespaces(&f.ws, None, Some(3), first.next_token.as_deref()).unwrap();
    assert_eq!(second.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["node-rules"]);
    assert!(second.next_token.is_none());
    assert!(matches!(s.list_rule_groups_namespaces(&f.ws, None, Some(0), None), Err(Error::Validation { .. })));

    s.delete_rule_groups_namespace(&f.ws, "a-1", Some("token")).await.unwrap();
    assert!(matches!(s.describe_rule_groups_namespace(&f.ws, "a-1"), Err(Error::NotFound { .. })));
    assert!(matches!(s.delete_rule_groups_namespace(&f.ws, "a-1", None).await, Err(Error::NotFound { .. })));
    assert!(matches!(s.put_rule_groups_namespace(&f.ws, "a-1", put(RULES)).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        s.describe_rule_groups_namespace("ws-00000000-0000-0000-0000-000000000000", "a-2"),
        Err(Error::NotFound { resource_type: "Workspace", .. })
    ));
}

#[tokio::test]
async fn refused_files_and_requests_change_nothing() {
    let f = fixture().await;
    let s = &f.service;
    s.create_rule_groups_namespace(&f.ws, create("ns", RULES)).await.unwrap();
    let before = names(&f);

    let invalid = [
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(up\n",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ nosuch }}'}\n",
        "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
        "groups:\n  - name: g\n    rulez: []\n",
        "not: [valid",
    ];
    for data in invalid {
        let e = s.create_rule_groups_namespace(&f.ws, create("new", data)).await.unwrap_err();
        assert!(
            matches!(&e, Error::Validation { message, .. } if message.starts_with("invalid rules file: ")),
            "{e:?}"
        );
        let e = s.put_rule_groups_namespace(&f.ws, "ns", put(data)).await.unwrap_err();
        assert!(matches!(e, Error::Validation { .. }), "{e:?}");
    }
    let e = s.create_rule_groups_namespace(&f.ws, create("new", RULES.replace("5m", "5 minutes").as_str())).await;
    assert!(matches!(e, Err(Error::Validation { .. })));

    // Bad members.
    let mut bad_base64 = create("new", RULES);
    bad_base64.data = Some("not base64!".into());
    let mut no_data = create("new", RULES);
    no_data.data = None;
    for (request, field) in [
        (bad_base64, "data"),
        (no_data, "data"),
        (create("", RULES), "name"),
        (create("a/b", RULES), "name"),
        (create(&"n".repeat(129), RULES), "name"),
    ] {
        match s.create_rule_groups_namespace(&f.ws, request).await {
            Err(Error::Validation { fields, .. }) => assert_eq!(fields[0].name, field),
            other => panic!("{other:?}"),
        }
    }
    // A name in use, with or without another client token.
    assert!(matches!(
        s.create_rule_groups_namespace(&f.ws, create("ns", &rules("x", 1))).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(names(&f), before, "nothing changed");
}

#[tokio::test]
async fn a_client_token_makes_creation_idempotent() {
    let f = fixture().await;
    let s = &f.service;
    let mut request = create("ns", RULES);
    request.client_token = Some("once".into());
    let first = s.create_rule_groups_namespace(&f.ws, request.clone()).await.unwrap();
    f.clock.advance(1_000);
    let again = s.create_rule_groups_namespace(&f.ws, request.clone()).await.unwrap();
    assert_eq!(first, again);
    request.data = Some(b64(&rules("other", 1)));
    assert!(matches!(s.create_rule_groups_namespace(&f.ws, request).await, Err(Error::Conflict { .. })));
}

#[tokio::test]
async fn quotas_count_every_namespace_of_the_workspace() {
    let f = fixture().await;
    let s = &f.service;
    let mut api = std::collections::HashMap::new();
    api.insert(
        f.ws.clone(),
        WorkspaceOverride {
            ruler: RulerLimitsOverride {
                max_rules_per_workspace: Some(5),
                max_rule_groups_per_workspace: Some(3),
                max_rule_groups_namespaces_per_workspace: Some(3),
                max_rule_groups_namespace_bytes: Some(400),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    f.overrides.set_api_overrides(api);

    s.create_rule_groups_namespace(&f.ws, create("a", &rules("a", 3))).await.unwrap();
    let over = s.create_rule_groups_namespace(&f.ws, create("b", &rules("b", 3))).await;
    assert!(matches!(over, Err(Error::ServiceQuotaExceeded { quota_code: "rules-per-workspace", .. })), "{over:?}");
    s.create_rule_groups_namespace(&f.ws, create("b", &rules("b", 2))).await.unwrap();
    // Replacing a file counts its new rules instead of its old ones.
    s.put_rule_groups_namespace(&f.ws, "a", put(&rules("a", 3))).await.unwrap();
    let over = s.put_rule_groups_namespace(&f.ws, "a", put(&rules("a", 4))).await;
    assert!(matches!(over, Err(Error::ServiceQuotaExceeded { .. })), "{over:?}");
    // Groups.
    let two_groups = "groups:\n  - name: x\n    rules: []\n  - name: y\n    rules: []\n";
    let over = s.create_rule_groups_namespace(&f.ws, create("c", two_groups)).await;
    assert!(matches!(over, Err(Error::ServiceQuotaExceeded { quota_code: "rule-groups-per-workspace", .. })));
    // Size.
    let big = format!("# {}\n{}", "x".repeat(400), rules("c", 0));
    let over = s.create_rule_groups_namespace(&f.ws, create("c", &big)).await;
    assert!(matches!(over, Err(Error::ServiceQuotaExceeded { quota_code: "rule-groups-namespace-size", .. })));
    // Namespaces.
    s.create_rule_groups_namespace(&f.ws, create("c", "groups: []\n")).await.unwrap();
    let over = s.create_rule_groups_namespace(&f.ws, create("d", "groups: []\n")).await;
    assert!(matches!(
        over,
        Err(Error::ServiceQuotaExceeded { quota_code: "rule-groups-namespaces-per-workspace", .. })
    ));
    assert_eq!(names(&f).len(), 3);
    assert_eq!(s.describe_rule_groups_namespace(&f.ws, "a").unwrap().data, rules("a", 3));
}

#[tokio::test]
async fn reconcile_finishes_interrupted_changes_and_workspace_deletion_removes_namespaces() {
    let f = fixture().await;
    let s = &f.service;
    s.create_rule_groups_namespace(&f.ws, create("ok", RULES)).await.unwrap();
    // As a crash would leave them: one creating (valid), one updating to a
    // file over a quota lowered meanwhile, one deleting.
    let arns = super::arns();
    let record = |name: &str, status: Status, data: &str| RuleGroupsNamespaceRecord {
        arn: arns.rule_groups_namespace(&f.ws, name),
        workspace_id: f.ws.clone(),
        name: name.into(),
        status: common::rules::RuleGroupsNamespaceStatus { status_code: status, status_reason: None },
        data: data.into(),
        created_at: 1.0,
        modified_at: 1.0,
        tags: Default::default(),
        client_token: None,
    };
    for r in [
        record("creating", Status::Creating, &rules("c", 1)),
        // Reconciled first (name order): it fails, and then takes no quota.
        record("a-updating", Status::Updating, &rules("u", 3000)),
        record("deleting", Status::Deleting, &rules("d", 1)),
    ] {
        f.store.put(&r.arn, serde_json::to_value(&r).unwrap()).await.unwrap();
    }
    s.reconcile().await.unwrap();
    let status = |name: &str| s.describe_rule_groups_namespace(&f.ws, name).map(|n| n.status);
    assert_eq!(status("creating").unwrap().status_code, Status::Active);
    let failed = status("a-updating").unwrap();
    assert_eq!(failed.status_code, Status::UpdateFailed);
    assert!(failed.status_reason.as_deref().unwrap().contains("rules"), "{failed:?}");
    assert!(status("deleting").is_err());
    // A failed namespace can be put again.
    s.put_rule_groups_namespace(&f.ws, "a-updating", put(&rules("u", 1))).await.unwrap();
    assert_eq!(status("a-updating").unwrap().status_code, Status::Active);

    s.delete(&f.ws, None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f.store.list(&arns.rule_groups_namespace_prefix(&f.ws)).is_empty() || s.describe(&f.ws).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the workspace's namespaces were not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
