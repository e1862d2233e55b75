//! Rule groups namespaces driven by the real AWS CLI against `promlake
//! serve`: every operation with AWS's shapes, and a rules file refused
//! exactly when the real `promtool check rules` refuses it, with
//! `ValidationException` and nothing changed.

use std::process::Command;

use base64::Engine as _;
use serde_json::json;

use crate::amp_cli::{aws, aws_err, aws_ok};
use crate::harness::{TestServer, reference_bin};

const RULES: &str = "groups:
  - name: node
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.instance }} of {{ $labels.job }} is down'
";

#[tokio::test]
async fn the_aws_cli_manages_rule_groups_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = aws_ok(&server, &["create-workspace"])["workspaceId"].as_str().unwrap().to_owned();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, RULES).unwrap();
    let data = format!("fileb://{}", file.display());

    let created = aws_ok(
        &server,
        &[
            "create-rule-groups-namespace",
            "--workspace-id",
            &ws,
            "--name",
            "node",
            "--data",
            &data,
            "--tags",
            "team=sre",
        ],
    );
    let arn = format!("arn:aws:aps:us-east-1:000000000000:rulegroupsnamespace/{ws}/node");
    assert_eq!(
        created,
        json!({"name": "node", "arn": arn, "status": {"statusCode": "ACTIVE"}, "tags": {"team": "sre"}})
    );
    let described = aws_ok(&server, &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", "node"]);
    let d = &described["ruleGroupsNamespace"];
    let decoded = base64::engine::general_purpose::STANDARD.decode(d["data"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), RULES);
    assert_eq!((&d["arn"], &d["status"]["statusCode"]), (&json!(arn), &json!("ACTIVE")));
    assert!(d["createdAt"].is_number() || d["createdAt"].is_string(), "{d}");
    assert!(d["modifiedAt"].is_number() || d["modifiedAt"].is_string(), "{d}");

    // put replaces the file.
    let replaced = RULES.replace("30s", "1m");
    std::fs::write(&file, &replaced).unwrap();
    let put = aws_ok(&server, &["put-rule-groups-namespace", "--workspace-id", &ws, "--name", "node", "--data", &data]);
    assert_eq!(put["status"]["statusCode"], "UPDATING");
    let d = aws_ok(&server, &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", "node"]);
    let decoded = base64::engine::general_purpose::STANDARD.decode(d["ruleGroupsNamespace"]["data"].as_str().unwrap());
    assert_eq!(String::from_utf8(decoded.unwrap()).unwrap(), replaced);
    assert_eq!(d["ruleGroupsNamespace"]["status"]["statusCode"], "ACTIVE");

    // list, by name prefix and by pages.
    for name in ["app-a", "app-b"] {
        aws_ok(&server, &["create-rule-groups-namespace", "--workspace-id", &ws, "--name", name, "--data", &data]);
    }
    let listed = aws_ok(&server, &["list-rule-groups-namespaces", "--workspace-id", &ws, "--name", "app-"]);
    let names: Vec<&str> =
        listed["ruleGroupsNamespaces"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app-a", "app-b"]);
    assert!(listed["ruleGroupsNamespaces"][0].get("data").is_none(), "a summary has no data");
    // The CLI follows nextToken itself: pages of one still list all three.
    let all = aws_ok(&server, &["list-rule-groups-namespaces", "--workspace-id", &ws, "--page-size", "1"]);
    assert_eq!(all["ruleGroupsNamespaces"].as_array().unwrap().len(), 3, "{all}");

    // Tags on the namespace's ARN.
    aws_ok(&server, &["tag-resource", "--resource-arn", &arn, "--tags", "env=prod"]);
    let tags = aws_ok(&server, &["list-tags-for-resource", "--resource-arn", &arn]);
    assert_eq!(tags["tags"], json!({"team": "sre", "env": "prod"}));

    // Errors.
    aws_err(
        &server,
        &["create-rule-groups-namespace", "--workspace-id", &ws, "--name", "node", "--data", &data],
        "ConflictException",
    );
    aws_err(
        &server,
        &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", "nope"],
        "ResourceNotFoundException",
    );
    aws_ok(&server, &["delete-rule-groups-namespace", "--workspace-id", &ws, "--name", "app-a"]);
    aws_err(
        &server,
        &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", "app-a"],
        "ResourceNotFoundException",
    );
}

/// Rules files (valid and not): PromLake refuses exactly those promtool
/// refuses, and a refused one changes nothing.
const FILES: &[&str] = &[
    RULES,
    "groups: []\n",
    "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: rate(x[5m])\n",
    "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: rate(x[5m]\n",
    "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
    "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n",
    "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ humanise $value }}'}\n",
    "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ $value | humanize }}'}\n",
    "groups:\n  - name: a\n    rules:\n      - recrd: r\n        expr: up\n",
    "groups:\n  - name: a\n    rules:\n      - record: 'r{x=\"y\"}'\n        expr: up\n",
    "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up\n    keep_firing_for: 10m\n    labels: {__name__: x}\n",
];

#[tokio::test]
async fn a_rules_file_is_refused_exactly_when_promtool_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = aws_ok(&server, &["create-workspace"])["workspaceId"].as_str().unwrap().to_owned();
    let promtool = reference_bin().join("promtool");
    for (i, content) in FILES.iter().enumerate() {
        let file = dir.path().join(format!("rules{i}.yml"));
        std::fs::write(&file, content).unwrap();
        let check = Command::new(&promtool).args(["check", "rules"]).arg(&file).output().expect("run promtool");
        let data = format!("fileb://{}", file.display());
        let name = format!("ns{i}");
        let (ok, _, stderr) =
            aws(&server, &["create-rule-groups-namespace", "--workspace-id", &ws, "--name", &name, "--data", &data]);
        assert_eq!(
            ok,
            check.status.success(),
            "file {i}: promtool says {}{}, PromLake says {stderr}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        if !ok {
            assert!(stderr.contains("ValidationException"), "file {i}: {stderr}");
            aws_err(
                &server,
                &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", &name],
                "ResourceNotFoundException",
            );
            // A put of the refused file leaves the first file in place.
            aws_ok(
                &server,
                &[
                    "create-rule-groups-namespace",
                    "--workspace-id",
                    &ws,
                    "--name",
                    &name,
                    "--data",
                    &format!("fileb://{}", dir.path().join("rules0.yml").display()),
                ],
            );
            aws_err(
                &server,
                &["put-rule-groups-namespace", "--workspace-id", &ws, "--name", &name, "--data", &data],
                "ValidationException",
            );
            let d = aws_ok(&server, &["describe-rule-groups-namespace", "--workspace-id", &ws, "--name", &name]);
            let kept =
                base64::engine::general_purpose::STANDARD.decode(d["ruleGroupsNamespace"]["data"].as_str().unwrap());
            assert_eq!(String::from_utf8(kept.unwrap()).unwrap(), RULES);
        }
    }
}
