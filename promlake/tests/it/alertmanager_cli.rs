//! The alert manager definition driven by the real AWS CLI against
//! `promlake serve`: create, describe, put, delete with AWS's shapes, and
//! a definition refused exactly when the real `amtool check-config`
//! 0.33.1 refuses its configuration (or when it names a receiver type
//! PromLake does not deliver to), with `ValidationException` and nothing
//! changed.

use std::process::Command;

use base64::Engine as _;

use crate::amp_cli::{aws, aws_err, aws_ok};
use crate::harness::{TestServer, reference_bin};

const CONFIG: &str = "route:
  receiver: team
  group_by: [alertname, cluster]
  routes:
    - receiver: pager
      matchers: ['severity=\"page\"']
inhibit_rules:
  - source_matchers: [severity=page]
    target_matchers: [severity=ticket]
    equal: [cluster]
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
  - name: pager
    sns_configs:
      - topic_arn: arn:aws:sns:us-east-1:123456789012:pager
        sigv4: {region: us-east-1}
";

/// AMP's document around an Alertmanager configuration.
fn definition(config: &str) -> String {
    let indented: String = config.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "alertmanager_config: |\n{indented}template_files:\n  default_template: |\n    {{{{ define \"sns.default.message\" }}}}{{{{ .Status }}}}{{{{ end }}}}\n"
    )
}

fn described(server: &TestServer, ws: &str) -> (String, String) {
    let d = aws_ok(server, &["describe-alert-manager-definition", "--workspace-id", ws]);
    let d = &d["alertManagerDefinition"];
    let data = base64::engine::general_purpose::STANDARD.decode(d["data"].as_str().unwrap()).unwrap();
    (d["status"]["statusCode"].as_str().unwrap().to_owned(), String::from_utf8(data).unwrap())
}

#[tokio::test]
async fn the_aws_cli_manages_the_alert_manager_definition() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = aws_ok(&server, &["create-workspace"])["workspaceId"].as_str().unwrap().to_owned();
    let file = dir.path().join("definition.yml");
    std::fs::write(&file, definition(CONFIG)).unwrap();
    let data = format!("fileb://{}", file.display());

    aws_err(&server, &["describe-alert-manager-definition", "--workspace-id", &ws], "ResourceNotFoundException");
    let created = aws_ok(&server, &["create-alert-manager-definition", "--workspace-id", &ws, "--data", &data]);
    assert_eq!(created["status"]["statusCode"], "CREATING");
    assert_eq!(described(&server, &ws), ("ACTIVE".to_owned(), definition(CONFIG)));
    aws_err(&server, &["create-alert-manager-definition", "--workspace-id", &ws, "--data", &data], "ConflictException");

    let replaced = definition(&CONFIG.replace("[alertname, cluster]", "['...']"));
    std::fs::write(&file, &replaced).unwrap();
    let put = aws_ok(&server, &["put-alert-manager-definition", "--workspace-id", &ws, "--data", &data]);
    assert_eq!(put["status"]["statusCode"], "UPDATING");
    assert_eq!(described(&server, &ws), ("ACTIVE".to_owned(), replaced));

    aws_ok(&server, &["delete-alert-manager-definition", "--workspace-id", &ws]);
    aws_err(&server, &["describe-alert-manager-definition", "--workspace-id", &ws], "ResourceNotFoundException");
    aws_err(&server, &["delete-alert-manager-definition", "--workspace-id", &ws], "ResourceNotFoundException");
    // Put updates an existing definition; create makes one.
    aws_err(
        &server,
        &["put-alert-manager-definition", "--workspace-id", &ws, "--data", &data],
        "ResourceNotFoundException",
    );
    aws_err(&server, &["describe-alert-manager-definition", "--workspace-id", "ws-nope"], "ResourceNotFoundException");
}

/// Alertmanager configurations, valid and not.
const CONFIGS: &[&str] = &[
    CONFIG,
    "route: {receiver: r}\nreceivers: [{name: r}]\n",
    "route: {receiver: r, group_wait: 10s, routes: [{matchers: ['a=~\"x|y\"'], continue: true}]}\nreceivers: [{name: r}]\n",
    "route: {receiver: r}\nreceivers: [{name: r, slack_configs: [{api_url: 'https://hooks.slack.com/x', channel: c}]}]\n",
    "route: {receiver: r}\nreceivers: [{name: r, pagerduty_configs: [{routing_key: k}]}]\n",
    "global: {smtp_smarthost: 'smtp:587', smtp_from: a@b}\nroute: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: c@d}]}]\n",
    "route: {receiver: nope}\nreceivers: [{name: r}]\n",
    "route: {receiver: r, colour: red}\nreceivers: [{name: r}]\n",
    "route: {receiver: r, routes: [{matchers: ['a=\"b']}]}\nreceivers: [{name: r}]\n",
    "route: {receiver: r, routes: [{group_by: [a, '...']}]}\nreceivers: [{name: r}]\n",
    "route: {receiver: r}\nreceivers: [{name: r, sns_configs: [{sigv4: {region: x}}]}]\n",
    "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'ftp://x'}]}]\n",
    "route: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: c@d}]}]\n",
    "route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n",
    "time_intervals: [{name: t, time_intervals: [{weekdays: [funday]}]}]\nroute: {receiver: r}\nreceivers: [{name: r}]\n",
];

#[tokio::test]
async fn a_definition_is_refused_exactly_when_amtool_refuses_its_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = aws_ok(&server, &["create-workspace"])["workspaceId"].as_str().unwrap().to_owned();
    let amtool = reference_bin().join("amtool");
    let first = dir.path().join("first.yml");
    std::fs::write(&first, definition(CONFIG)).unwrap();
    aws_ok(
        &server,
        &["create-alert-manager-definition", "--workspace-id", &ws, "--data", &format!("fileb://{}", first.display())],
    );
    let (mut accepted, mut refused) = (0, 0);
    for (i, config) in CONFIGS.iter().enumerate() {
        let config_file = dir.path().join(format!("config{i}.yml"));
        std::fs::write(&config_file, config).unwrap();
        let check = Command::new(&amtool).arg("check-config").arg(&config_file).output().expect("run amtool");
        let file = dir.path().join(format!("definition{i}.yml"));
        std::fs::write(&file, definition(config)).unwrap();
        let data = format!("fileb://{}", file.display());
        let (ok, _, stderr) = aws(&server, &["put-alert-manager-definition", "--workspace-id", &ws, "--data", &data]);
        assert_eq!(
            ok,
            check.status.success(),
            "configuration {i}: amtool says {}, PromLake says {stderr}",
            String::from_utf8_lossy(&check.stdout)
        );
        if ok {
            accepted += 1;
            assert_eq!(described(&server, &ws).1, definition(config));
        } else {
            refused += 1;
            assert!(stderr.contains("ValidationException"), "configuration {i}: {stderr}");
            // The definition in place is the last accepted one.
            let (status, kept) = described(&server, &ws);
            assert_eq!(status, "ACTIVE");
            assert_ne!(kept, definition(config));
        }
    }
    assert!(accepted >= 5 && refused >= 8, "{accepted} accepted, {refused} refused");

    // amtool accepts OpsGenie; PromLake, which does not deliver to it, refuses it by name.
    let opsgenie = "route: {receiver: r}\nreceivers: [{name: r, opsgenie_configs: [{api_key: k}]}]\n";
    let config_file = dir.path().join("opsgenie.yml");
    std::fs::write(&config_file, opsgenie).unwrap();
    assert!(Command::new(&amtool).arg("check-config").arg(&config_file).output().unwrap().status.success());
    let file = dir.path().join("opsgenie-definition.yml");
    std::fs::write(&file, definition(opsgenie)).unwrap();
    let stderr = aws_err(
        &server,
        &["put-alert-manager-definition", "--workspace-id", &ws, "--data", &format!("fileb://{}", file.display())],
        "ValidationException",
    );
    assert!(stderr.contains("opsgenie"), "{stderr}");
}
