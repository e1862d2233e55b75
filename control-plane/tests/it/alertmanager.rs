//! The alert manager definition: AMP's operations and states, validation
//! as amtool does it (and of the receivers PromLake delivers to), quotas,
//! nothing changed by a refused request, reconciliation after a crash.

use base64::Engine as _;
use common::alertmanager::{AlertManagerDefinitionRecord, AlertManagerDefinitionStatusCode as Status};
use common::control::ControlPlaneStore;
use common::limits::{AlertingLimitsOverride, WorkspaceOverride};
use control_plane::{AlertManagerDefinitionRequest, Error};

use super::rule_groups::fixture;

const DEFINITION: &str = "alertmanager_config: |
  route:
    receiver: team
    group_by: [alertname]
    routes:
      - receiver: pager
        matchers: ['severity=\"page\"']
  receivers:
    - name: team
      webhook_configs:
        - url: http://127.0.0.1:9/hook
    - name: pager
      sns_configs:
        - topic_arn: arn:aws:sns:us-east-1:123456789012:pager
          sigv4:
            region: us-east-1
template_files:
  default_template: |
    {{ define \"sns.default.message\" }}{{ .Status }}{{ end }}
";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn request(data: &str) -> AlertManagerDefinitionRequest {
    AlertManagerDefinitionRequest { data: Some(b64(data)), client_token: None }
}

/// A definition routing through `n` child routes with `repeat`.
fn routes(n: usize, repeat: &str) -> String {
    let mut s =
        format!("alertmanager_config: |\n  route:\n    receiver: r\n    repeat_interval: {repeat}\n    routes:\n");
    for i in 0..n {
        s.push_str(&format!("      - receiver: r\n        matchers: ['n=\"{i}\"']\n"));
    }
    s.push_str("  receivers:\n    - name: r\n");
    s
}

#[tokio::test]
async fn create_describe_put_delete_with_amps_states() {
    let f = fixture().await;
    let s = &f.service;
    assert!(matches!(s.describe_alert_manager_definition(&f.ws), Err(Error::NotFound { .. })));
    let answer = s.create_alert_manager_definition(&f.ws, request(DEFINITION)).await.unwrap();
    assert_eq!(answer.status.status_code, Status::Creating);
    let d = s.describe_alert_manager_definition(&f.ws).unwrap();
    assert_eq!((d.status.status_code, d.data.as_str()), (Status::Active, DEFINITION));
    // A second create is a conflict; a retry with the same token is not.
    let again = s.create_alert_manager_definition(&f.ws, request(DEFINITION)).await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");

    f.clock.advance(5_000);
    let replaced = DEFINITION.replace("group_by: [alertname]", "group_by: ['...']");
    let answer = s.put_alert_manager_definition(&f.ws, request(&replaced)).await.unwrap();
    assert_eq!(answer.status.status_code, Status::Updating);
    let d = s.describe_alert_manager_definition(&f.ws).unwrap();
    assert_eq!((d.status.status_code, d.data.as_str()), (Status::Active, replaced.as_str()));
    assert!(d.modified_at > d.created_at);

    s.delete_alert_manager_definition(&f.ws, None).await.unwrap();
    assert!(matches!(s.describe_alert_manager_definition(&f.ws), Err(Error::NotFound { .. })));
    assert!(matches!(s.delete_alert_manager_definition(&f.ws, None).await, Err(Error::NotFound { .. })));
    // Put updates an existing definition only, as AMP's does.
    let e = s.put_alert_manager_definition(&f.ws, request(DEFINITION)).await;
    assert!(matches!(e, Err(Error::NotFound { .. })), "{e:?}");
    // Unknown workspace.
    let e = s.create_alert_manager_definition("ws-nope", request(DEFINITION)).await;
    assert!(matches!(e, Err(Error::NotFound { .. })), "{e:?}");
}

#[tokio::test]
async fn refused_definitions_change_nothing() {
    let f = fixture().await;
    let s = &f.service;
    s.create_alert_manager_definition(&f.ws, request(DEFINITION)).await.unwrap();
    let bad = [
        // Not YAML, no alertmanager_config, an unknown member.
        "alertmanager_config: [",
        "template_files: {}\n",
        "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r}]\nextra: 1\n",
        // Alertmanager refuses: undefined receiver, unknown field, bad matcher, bad duration.
        "alertmanager_config: |\n  route: {receiver: nope}\n  receivers: [{name: r}]\n",
        "alertmanager_config: |\n  route: {receiver: r, colour: red}\n  receivers: [{name: r}]\n",
        "alertmanager_config: |\n  route: {receiver: r, routes: [{matchers: ['a=~\"(\"']}]}\n  receivers: [{name: r}]\n",
        "alertmanager_config: |\n  route: {receiver: r, group_wait: 5 minutes}\n  receivers: [{name: r}]\n",
        // A template that does not parse.
        "alertmanager_config: |\n  templates: [t]\n  route: {receiver: r}\n  receivers: [{name: r}]\ntemplate_files:\n  t: '{{ define \"x\" }}{{ nope }}{{ end }}'\n",
        // A receiver type PromLake does not deliver to.
        "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r, opsgenie_configs: [{api_key: k}]}]\n",
    ];
    for data in bad {
        let e = s.put_alert_manager_definition(&f.ws, request(data)).await;
        assert!(matches!(e, Err(Error::Validation { .. })), "{data:?} gave {e:?}");
    }
    let e = s.put_alert_manager_definition(&f.ws, AlertManagerDefinitionRequest::default()).await;
    assert!(matches!(e, Err(Error::Validation { .. })), "{e:?}");
    let e = s
        .put_alert_manager_definition(
            &f.ws,
            AlertManagerDefinitionRequest { data: Some("%%%".into()), client_token: None },
        )
        .await;
    assert!(matches!(e, Err(Error::Validation { .. })), "{e:?}");
    let opsgenie = s.put_alert_manager_definition(&f.ws, request(bad[8])).await.unwrap_err().to_string();
    assert!(opsgenie.contains("opsgenie"), "the message names the receiver type: {opsgenie}");
    let d = s.describe_alert_manager_definition(&f.ws).unwrap();
    assert_eq!((d.status.status_code, d.data.as_str()), (Status::Active, DEFINITION));
}

#[tokio::test]
async fn amps_quotas_apply_from_the_limits_place() {
    let f = fixture().await;
    let s = &f.service;
    let mut api = std::collections::HashMap::new();
    api.insert(
        f.ws.clone(),
        WorkspaceOverride {
            alerting: AlertingLimitsOverride {
                max_route_nodes: Some(3),
                max_inhibition_rules: Some(1),
                max_templates: Some(1),
                max_definition_bytes: Some(2_000),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    f.overrides.set_api_overrides(api);
    // The root and two children: 3 nodes.
    s.create_alert_manager_definition(&f.ws, request(&routes(2, "4h"))).await.unwrap();
    let over = s.put_alert_manager_definition(&f.ws, request(&routes(3, "4h"))).await.unwrap_err();
    assert!(over.to_string().contains("routing-tree nodes"), "{over}");
    // repeat_interval at most 5 days (AMP's default, not overridden here).
    s.put_alert_manager_definition(&f.ws, request(&routes(1, "5d"))).await.unwrap();
    let over = s.put_alert_manager_definition(&f.ws, request(&routes(1, "121h"))).await.unwrap_err();
    assert!(over.to_string().contains("repeat_interval"), "{over}");
    let inhibit = routes(0, "1h").replace(
        "  receivers:",
        "  inhibit_rules:\n    - {source_matchers: [a=b], target_matchers: [c=d]}\n    - {source_matchers: [a=b], target_matchers: [e=f]}\n  receivers:",
    );
    let over = s.put_alert_manager_definition(&f.ws, request(&inhibit)).await.unwrap_err();
    assert!(over.to_string().contains("inhibition rules"), "{over}");
    let templates = format!("{}template_files:\n  a: x\n  b: y\n", routes(0, "1h"));
    let over = s.put_alert_manager_definition(&f.ws, request(&templates)).await.unwrap_err();
    assert!(over.to_string().contains("template files"), "{over}");
    let big = format!("# {}\n{}", "x".repeat(2_000), routes(0, "1h"));
    let over = s.put_alert_manager_definition(&f.ws, request(&big)).await.unwrap_err();
    assert!(over.to_string().contains("bytes"), "{over}");
    assert_eq!(s.describe_alert_manager_definition(&f.ws).unwrap().data, routes(1, "5d"));
}

#[tokio::test]
async fn reconcile_finishes_an_interrupted_change_and_workspace_deletion_removes_it() {
    let f = fixture().await;
    let s = &f.service;
    let key = super::arns().alert_manager_definition(&f.ws);
    let record = |status: Status, data: &str| AlertManagerDefinitionRecord {
        workspace_id: f.ws.clone(),
        status: common::alertmanager::AlertManagerDefinitionStatus { status_code: status, status_reason: None },
        data: data.into(),
        created_at: 1.0,
        modified_at: 1.0,
        client_token: None,
    };
    // As a crash would leave it: creating, valid.
    f.store.put(&key, serde_json::to_value(record(Status::Creating, DEFINITION)).unwrap()).await.unwrap();
    s.reconcile().await.unwrap();
    assert_eq!(s.describe_alert_manager_definition(&f.ws).unwrap().status.status_code, Status::Active);
    // Updating to a definition that no longer passes (a receiver undefined).
    let broken = DEFINITION.replace("receiver: pager", "receiver: gone");
    f.store.put(&key, serde_json::to_value(record(Status::Updating, &broken)).unwrap()).await.unwrap();
    s.reconcile().await.unwrap();
    let d = s.describe_alert_manager_definition(&f.ws).unwrap();
    assert_eq!(d.status.status_code, Status::UpdateFailed);
    assert!(d.status.status_reason.as_deref().unwrap_or_default().contains("gone"), "{d:?}");
    // A failed definition may be put again.
    s.put_alert_manager_definition(&f.ws, request(DEFINITION)).await.unwrap();
    assert_eq!(s.describe_alert_manager_definition(&f.ws).unwrap().status.status_code, Status::Active);

    s.delete(&f.ws, None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.store.get(&key).is_some() || s.describe(&f.ws).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the workspace's definition was not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
