//! The AMP control-plane API driven by the real AWS CLI (PyPI `awscli`, with
//! the botocore `amp` model it carries) against `promlake serve`: every
//! workspace, configuration and tag command, their outputs as AWS's shapes,
//! bad input refused with `ValidationException` and changing nothing, and a
//! deleted workspace's data and topic removed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use schemas::prompb;
use serde_json::{Value, json};

use crate::harness::{TestServer, client, post_remote_write, python};

/// The venv's `aws` (next to its python).
fn aws_bin() -> PathBuf {
    python().parent().expect("venv bin").join("aws")
}

/// Runs `aws amp <args>` against `server`: the exit status, stdout parsed as
/// JSON (`null` when empty) and stderr.
pub(crate) fn aws(server: &TestServer, args: &[&str]) -> (bool, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(aws_bin())
        .arg("amp")
        .args(args)
        .args(["--endpoint-url", &server.url, "--region", "us-east-1", "--output", "json"])
        // No profile of the machine's user is read.
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("credentials"))
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("aws printed no JSON ({e}): {stdout}"))
    };
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `aws amp <args>` that must succeed.
pub(crate) fn aws_ok(server: &TestServer, args: &[&str]) -> Value {
    let (ok, json, stderr) = aws(server, args);
    assert!(ok, "aws amp {args:?} failed: {stderr}");
    json
}

/// `aws amp <args>` that must fail with `error` (the exception's name).
pub(crate) fn aws_err(server: &TestServer, args: &[&str], error: &str) -> String {
    let (ok, _, stderr) = aws(server, args);
    assert!(!ok, "aws amp {args:?} succeeded");
    assert!(stderr.contains(error), "aws amp {args:?}: expected {error}, got: {stderr}");
    stderr
}

#[tokio::test]
async fn the_aws_cli_manages_workspaces_configuration_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());

    // create-workspace, idempotent by client token.
    let created = aws_ok(
        &server,
        &["create-workspace", "--alias", "prod", "--tags", "team=infra,env=prod", "--client-token", "tok-1"],
    );
    let ws = created["workspaceId"].as_str().unwrap().to_owned();
    assert!(ws.starts_with("ws-"), "{created}");
    assert_eq!(created["arn"], format!("arn:aws:aps:us-east-1:000000000000:workspace/{ws}"));
    assert_eq!(created["status"]["statusCode"], "ACTIVE");
    assert_eq!(created["tags"], json!({"team": "infra", "env": "prod"}));
    let again = aws_ok(
        &server,
        &["create-workspace", "--alias", "prod", "--tags", "team=infra,env=prod", "--client-token", "tok-1"],
    );
    assert_eq!(again["workspaceId"], created["workspaceId"]);
    aws_err(&server, &["create-workspace", "--alias", "other", "--client-token", "tok-1"], "ConflictException");

    // describe-workspace (AWS CLI v1 prints createdAt as sent: Unix seconds).
    let described = aws_ok(&server, &["describe-workspace", "--workspace-id", &ws])["workspace"].clone();
    assert_eq!(described["workspaceId"], ws.as_str());
    assert_eq!(described["alias"], "prod");
    assert_eq!(described["status"]["statusCode"], "ACTIVE");
    assert_eq!(described["prometheusEndpoint"], format!("{}/workspaces/{ws}/api/v1/", server.url));
    let created_at = described["createdAt"].as_f64().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - 60.0..=now).contains(&created_at), "createdAt {created_at}, now {now}");
    aws_err(
        &server,
        &["describe-workspace", "--workspace-id", "ws-00000000-0000-4000-8000-000000000000"],
        "ResourceNotFoundException",
    );

    // list-workspaces: alias prefix filter, pages followed by the CLI.
    let second =
        aws_ok(&server, &["create-workspace", "--alias", "prod-eu"])["workspaceId"].as_str().unwrap().to_owned();
    let third = aws_ok(&server, &["create-workspace"])["workspaceId"].as_str().unwrap().to_owned();
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> =
            v["workspaces"].as_array().unwrap().iter().map(|w| w["workspaceId"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    let mut all = vec![ws.clone(), second.clone(), third.clone()];
    all.sort();
    assert_eq!(ids(&aws_ok(&server, &["list-workspaces"])), all);
    assert_eq!(ids(&aws_ok(&server, &["list-workspaces", "--page-size", "1"])), all, "pages of one, followed");
    let one_page = aws_ok(&server, &["list-workspaces", "--max-results", "2", "--no-paginate"]);
    assert_eq!(one_page["workspaces"].as_array().unwrap().len(), 2);
    assert!(one_page["nextToken"].is_string(), "{one_page}");
    let mut prod = vec![ws.clone(), second.clone()];
    prod.sort();
    assert_eq!(ids(&aws_ok(&server, &["list-workspaces", "--alias", "prod"])), prod);
    let listed = aws_ok(&server, &["list-workspaces", "--alias", "prod-eu"]);
    assert_eq!(listed["workspaces"][0]["alias"], "prod-eu");
    assert!(listed["workspaces"][0]["createdAt"].is_number());

    // update-workspace-alias (204, no output).
    assert_eq!(
        aws_ok(&server, &["update-workspace-alias", "--workspace-id", &third, "--alias", "staging"]),
        Value::Null
    );
    assert_eq!(aws_ok(&server, &["describe-workspace", "--workspace-id", &third])["workspace"]["alias"], "staging");

    // Configuration: defaults from the config file, then values set.
    let config = aws_ok(&server, &["describe-workspace-configuration", "--workspace-id", &ws]);
    assert_eq!(config["workspaceConfiguration"]["status"]["statusCode"], "ACTIVE");
    assert_eq!(config["workspaceConfiguration"]["retentionPeriodInDays"], 150);
    assert_eq!(config["workspaceConfiguration"]["outOfOrderTimeWindowInSeconds"], 0);
    let updated =
        aws_ok(&server, &["update-workspace-configuration", "--workspace-id", &ws, "--retention-period-in-days", "30"]);
    assert!(["ACTIVE", "UPDATING"].contains(&updated["status"]["statusCode"].as_str().unwrap()), "{updated}");
    let patched = aws_ok(
        &server,
        &[
            "update-workspace-configuration",
            "--workspace-id",
            &ws,
            "--cli-input-json",
            r#"{"outOfOrderTimeWindowInSeconds": 120, "ruleQueryOffsetInSeconds": 30}"#,
        ],
    );
    assert!(patched["status"].is_object());
    let config = aws_ok(&server, &["describe-workspace-configuration", "--workspace-id", &ws]);
    assert_eq!(config["workspaceConfiguration"]["retentionPeriodInDays"], 30, "{config}");
    assert_eq!(config["workspaceConfiguration"]["outOfOrderTimeWindowInSeconds"], 120);
    assert_eq!(config["workspaceConfiguration"]["ruleQueryOffsetInSeconds"], 30);
    // (0 is refused by the CLI itself, from the model's minimum; the
    // server's own check is in the test below.)
    aws_err(
        &server,
        &["update-workspace-configuration", "--workspace-id", &ws, "--retention-period-in-days", "1096"],
        "ValidationException",
    );
    aws_err(
        &server,
        &[
            "update-workspace-configuration",
            "--workspace-id",
            &ws,
            "--limits-per-label-set",
            r#"[{"labelSet": {"team": "a"}, "limits": {"maxSeries": 10}}, {"labelSet": {"team": "a"}, "limits": {}}]"#,
        ],
        "ValidationException",
    );
    let config = aws_ok(&server, &["describe-workspace-configuration", "--workspace-id", &ws]);
    assert_eq!(config["workspaceConfiguration"]["retentionPeriodInDays"], 30, "a refused update changed the state");

    // Active-series limits per label set, enforced on remote write.
    aws_ok(
        &server,
        &[
            "update-workspace-configuration",
            "--workspace-id",
            &ws,
            "--limits-per-label-set",
            r#"[{"labelSet": {"team": "a"}, "limits": {"maxSeries": 2}}, {"labelSet": {}, "limits": {"maxSeries": 1}}]"#,
        ],
    );
    let config = aws_ok(&server, &["describe-workspace-configuration", "--workspace-id", &ws]);
    assert_eq!(
        config["workspaceConfiguration"]["limitsPerLabelSet"],
        json!([{"labelSet": {"team": "a"}, "limits": {"maxSeries": 2}}, {"labelSet": {}, "limits": {"maxSeries": 1}}])
    );
    assert_eq!(config["workspaceConfiguration"]["retentionPeriodInDays"], 30);
    let write = |series: &[(&str, &str)]| {
        let url = format!("{}/workspaces/{ws}/api/v1/remote_write", server.url);
        let body = write_request(series);
        async move { post_remote_write(&client(), &url, &body).await.expect("answer") }
    };
    assert_eq!(write(&[("a1", "a"), ("a2", "a")]).await.status(), 204);
    let refused = write(&[("a1", "a"), ("a3", "a")]).await;
    assert_eq!(refused.status(), 429, "a third team=a series");
    assert!(refused.headers().contains_key("retry-after"));
    let message = refused.text().await.unwrap();
    assert!(message.contains("team=\"a\"") && message.contains("limitsPerLabelSet"), "{message}");
    assert_eq!(write(&[("a1", "a"), ("a2", "a")]).await.status(), 204, "active series go on");
    assert_eq!(write(&[("b1", "b")]).await.status(), 204, "the default bucket holds one");
    assert_eq!(write(&[("b2", "b")]).await.status(), 429, "the default bucket is full");

    // Tags.
    let arn = created["arn"].as_str().unwrap();
    assert_eq!(aws_ok(&server, &["tag-resource", "--resource-arn", arn, "--tags", "cost=42,env=staging"]), Value::Null);
    assert_eq!(
        aws_ok(&server, &["list-tags-for-resource", "--resource-arn", arn])["tags"],
        json!({"team": "infra", "env": "staging", "cost": "42"})
    );
    aws_ok(&server, &["untag-resource", "--resource-arn", arn, "--tag-keys", "team", "cost"]);
    assert_eq!(aws_ok(&server, &["list-tags-for-resource", "--resource-arn", arn])["tags"], json!({"env": "staging"}));
    assert_eq!(
        aws_ok(&server, &["describe-workspace", "--workspace-id", &ws])["workspace"]["tags"],
        json!({"env": "staging"})
    );
    aws_err(
        &server,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            "arn:aws:aps:us-east-1:000000000000:workspace/ws-00000000-0000-4000-8000-000000000000",
        ],
        "ResourceNotFoundException",
    );
    aws_err(&server, &["tag-resource", "--resource-arn", arn, "--tags", "aws:reserved=x"], "ValidationException");

    // delete-workspace: 202, then the workspace is gone.
    assert_eq!(aws_ok(&server, &["delete-workspace", "--workspace-id", &third]), Value::Null);
    wait_deleted(&server, &third).await;
    assert_eq!(ids(&aws_ok(&server, &["list-workspaces"])).len(), 2);
}

#[tokio::test]
async fn bad_control_plane_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = server.create_workspace("kept").await;
    let http = client();
    let state = || async {
        let list = json_of(http.get(format!("{}/workspaces", server.url)).send().await.unwrap()).await;
        let config =
            json_of(http.get(format!("{}/workspaces/{ws}/configuration", server.url)).send().await.unwrap()).await;
        (list, config)
    };
    let before = state().await;
    let too_many_tags: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(&str, String, Value)> = vec![
        ("POST", "/workspaces".into(), json!({"alias": "x", "unknownField": 1})),
        ("POST", "/workspaces".into(), json!({"alias": "x".repeat(101)})),
        ("POST", "/workspaces".into(), json!({"alias": "   "})),
        ("POST", "/workspaces".into(), json!({"tags": too_many_tags})),
        ("POST", "/workspaces".into(), json!({"tags": {"k": "semi;colon"}})),
        ("POST", "/workspaces".into(), json!({"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc"})),
        ("POST", format!("/workspaces/{ws}/alias"), json!({"alias": ""})),
        ("POST", format!("/workspaces/{ws}/alias"), json!({"alias": "a", "extra": true})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"retentionPeriodInDays": 0})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"retentionPeriodInDays": 1096})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"retentionPeriodInDays": "ten"})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"outOfOrderTimeWindowInSeconds": 601})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"ruleQueryOffsetInSeconds": -1})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({})),
        ("PATCH", format!("/workspaces/{ws}/configuration"), json!({"retentionPeriodInDays": 5, "bogus": 1})),
        (
            "PATCH",
            format!("/workspaces/{ws}/configuration"),
            json!({"limitsPerLabelSet": [{"labelSet": {"bad-name": "x"}, "limits": {"maxSeries": 1}}]}),
        ),
        (
            "PATCH",
            format!("/workspaces/{ws}/configuration"),
            json!({"limitsPerLabelSet": [{"labelSet": {"a": "x"}, "limits": {"maxSeries": 1, "other": 2}}]}),
        ),
        ("POST", format!("/tags/arn:aws:aps:us-east-1:000000000000:workspace%2F{ws}"), json!({"tags": too_many_tags})),
    ];
    for (method, path, body) in cases {
        let resp = http
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{method} {path} {body}");
        assert_eq!(resp.headers()["x-amzn-errortype"], "ValidationException", "{method} {path} {body}");
        let err = json_of(resp).await;
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        assert!(err["reason"].is_string(), "{err}");
    }
    // Malformed JSON.
    let resp = http.post(format!("{}/workspaces", server.url)).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // maxResults out of range, a forged page token.
    for q in ["maxResults=0", "maxResults=1001", "maxResults=x", "nextToken=../../etc"] {
        let resp = http.get(format!("{}/workspaces?{q}", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{q}");
    }
    assert_eq!(state().await, before, "a refused request changed the state");
}

/// A deleted workspace's data goes with it: its log topic and its lake
/// tables, and its endpoints answer 404.
#[tokio::test]
async fn deleting_a_workspace_removes_its_topic_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = server.create_workspace("doomed").await;
    let kept = server.create_workspace("kept").await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    for id in [&ws, &kept] {
        let resp = post_remote_write(
            &client(),
            &format!("{}/workspaces/{id}/api/v1/remote_write", server.url),
            &one_sample(now),
        )
        .await
        .expect("answer");
        assert_eq!(resp.status(), 204);
    }
    let lake = dir.path().join("lake");
    let topic = dir.path().join("log").join(schemas::topics::samples_topic(&ws));
    wait_until(|| lake.join(&ws).join("samples").join("_delta_log").is_dir(), "the samples table").await;
    assert!(topic.is_dir());

    let resp = client().delete(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    // Writes and queries are refused from the moment it is DELETING.
    let write = post_remote_write(
        &client(),
        &format!("{}/workspaces/{ws}/api/v1/remote_write", server.url),
        &one_sample(now + 1000),
    )
    .await
    .expect("answer");
    assert_eq!(write.status(), 404);
    wait_deleted(&server, &ws).await;
    assert!(!lake.join(&ws).exists(), "the lake tables are left");
    assert!(!topic.exists(), "the log topic is left");
    let query = client().get(format!("{}/workspaces/{ws}/api/v1/query?query=up", server.url)).send().await.unwrap();
    assert_eq!(query.status(), 404);
    let again = client().delete(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
    assert_eq!(again.status(), 404);
    // The other workspace is untouched.
    assert!(lake.join(&kept).join("samples").join("_delta_log").is_dir());
    let resp = client().get(format!("{}/workspaces/{kept}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A remote-write 1.0 body: one sample for each (name, team) series.
fn write_request(series: &[(&str, &str)]) -> Vec<u8> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let request = prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, team)| prompb::TimeSeries {
                labels: vec![
                    prompb::Label { name: "__name__".into(), value: (*name).into() },
                    prompb::Label { name: "team".into(), value: (*team).into() },
                ],
                samples: vec![prompb::Sample { value: 1.0, timestamp: now }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
}

async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

fn one_sample(ts: i64) -> Vec<u8> {
    let request = prompb::WriteRequest {
        timeseries: vec![prompb::TimeSeries {
            labels: vec![prompb::Label { name: "__name__".into(), value: "up".into() }],
            samples: vec![prompb::Sample { value: 1.0, timestamp: ts }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
}

async fn wait_deleted(server: &TestServer, ws: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client().get(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
        if resp.status() == 404 {
            return;
        }
        let body = json_of(resp).await;
        assert_eq!(body["workspace"]["status"]["statusCode"], "DELETING");
        assert!(Instant::now() < deadline, "workspace {ws} not deleted within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not appear within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
