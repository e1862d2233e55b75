//! SigV4 authentication of `promlake serve` (its default `--auth sigv4`)
//! with real clients: the credentials and config files of the first start
//! used by the AWS CLI alone; requests signed by botocore accepted, and the
//! same requests with one byte of body, a header, the date, the region or
//! the service changed refused with 403; presigned URLs and
//! `UNSIGNED-PAYLOAD`; a real Prometheus 3.5.3 remote-writing with its
//! `sigv4:` config.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{TestServer, client, free_port, metric_value, prometheus_agent, python};

/// The admin key pair of `<data_dir>/credentials`.
pub(crate) fn credentials(data_dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data_dir.join("credentials")).expect("credentials file");
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim_start_matches([' ', '=']).trim().to_owned()))
            .unwrap_or_else(|| panic!("{key} missing in {text}"))
    };
    assert!(text.starts_with("[default]\n"), "{text}");
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// One request signed by botocore (`sigv4_client.py`): status, headers, body.
pub(crate) fn signed(spec: Value) -> (u16, Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sigv4_client.py");
    let out = Command::new(python()).arg(script).arg(spec.to_string()).output().expect("run sigv4_client.py");
    assert!(out.status.success(), "sigv4_client.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("sigv4_client.py output");
    (v["status"].as_u64().unwrap() as u16, v["headers"].clone(), v["body"].as_str().unwrap().to_owned())
}

/// `aws amp <args>` with only the server's credentials and config files.
pub(crate) fn aws_with_files(data_dir: &Path, args: &[&str]) -> (bool, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(python().parent().unwrap().join("aws"))
        .arg("amp")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_SHARED_CREDENTIALS_FILE", data_dir.join("credentials"))
        .env("AWS_CONFIG_FILE", data_dir.join("config"))
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).unwrap() };
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn first_start_writes_files_that_the_aws_cli_uses_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::spawn_sigv4(&data);
    let (key_id, secret) = credentials(&data);
    assert!(key_id.starts_with("AKIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(secret.len(), 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("credentials")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(data.join("config")).unwrap();
    assert!(config.contains("region = us-east-1"), "{config}");
    assert!(config.contains(&format!("endpoint_url = {}", server.url)), "{config}");
    // The secret is not in the log in clear.
    let log_bytes: Vec<u8> = walk(&data.join("log")).iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!log_bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is stored in clear");

    let (ok, created, stderr) = aws_with_files(&data, &["create-workspace", "--alias", "signed"]);
    assert!(ok, "{stderr}");
    let ws = created["workspaceId"].as_str().unwrap().to_owned();
    let (ok, listed, stderr) = aws_with_files(&data, &["list-workspaces"]);
    assert!(ok, "{stderr}");
    assert_eq!(listed["workspaces"][0]["workspaceId"], ws.as_str());

    // A restart keeps the key (no second admin key, the same file).
    assert!(server.terminate().success());
    let server = TestServer::spawn_sigv4(&data);
    assert_eq!(credentials(&data), (key_id, secret));
    let config = std::fs::read_to_string(data.join("config")).unwrap();
    assert!(config.contains(&format!("endpoint_url = {}", server.url)), "{config}");
    let (ok, described, stderr) = aws_with_files(&data, &["describe-workspace", "--workspace-id", &ws]);
    assert!(ok, "{stderr}");
    assert_eq!(described["workspace"]["alias"], "signed");

    // Without credentials the CLI's request is refused.
    std::fs::write(dir.path().join("empty"), "").unwrap();
    let out = Command::new(python().parent().unwrap().join("aws"))
        .args(["amp", "list-workspaces", "--no-sign-request"])
        .env("AWS_CONFIG_FILE", data.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("empty"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Missing Authentication Token"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[tokio::test]
async fn botocore_signatures_are_verified_and_any_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn_sigv4(dir.path());
    let (key_id, secret) = credentials(dir.path());
    let spec = |method: &str, path: &str, body: Option<&str>| {
        json!({
            "url": format!("{}{path}", server.url),
            "method": method,
            "body": body,
            "headers": {"Content-Type": "application/json"},
            "access_key": key_id,
            "secret_key": secret,
        })
    };
    let with = |mut s: Value, k: &str, v: Value| {
        s[k] = v;
        s
    };

    let (status, _, body) = signed(spec("POST", "/workspaces", Some(r#"{"alias":"orig"}"#)));
    assert_eq!(status, 202, "{body}");
    let ws = serde_json::from_str::<Value>(&body).unwrap()["workspaceId"].as_str().unwrap().to_owned();
    let alias_path = format!("/workspaces/{ws}/alias");
    let rename = spec("POST", &alias_path, Some(r#"{"alias":"renamed-by-attacker"}"#));

    let refused: Vec<(&str, Value, &str)> = vec![
        ("one byte of body", with(rename.clone(), "tamper", json!("body")), "SignatureDoesNotMatch"),
        ("a signed header", with(rename.clone(), "tamper", json!("header")), "SignatureDoesNotMatch"),
        ("the date", with(rename.clone(), "tamper", json!("date")), "SignatureDoesNotMatch"),
        ("the query", with(rename.clone(), "tamper", json!("query")), "SignatureDoesNotMatch"),
        ("another region", with(rename.clone(), "region", json!("us-west-2")), "SignatureDoesNotMatch"),
        ("another service", with(rename.clone(), "service", json!("execute-api")), "SignatureDoesNotMatch"),
        ("signed 10 min ago", with(rename.clone(), "time_offset_seconds", json!(-600)), "SignatureDoesNotMatch"),
        ("signed 10 min ahead", with(rename.clone(), "time_offset_seconds", json!(600)), "SignatureDoesNotMatch"),
        (
            "a wrong secret",
            // (Another first character: one that differs from the secret's.)
            with(
                rename.clone(),
                "secret_key",
                json!(format!("{}{}", if secret.starts_with('x') { 'y' } else { 'x' }, &secret[1..])),
            ),
            "SignatureDoesNotMatch",
        ),
        ("an unknown key", with(rename.clone(), "access_key", json!("AKIAAAAAAAAAAAAAAAAA")), "InvalidClientTokenId"),
    ];
    for (what, spec, error_type) in refused {
        let (status, headers, body) = signed(spec);
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(headers["x-amzn-errortype"], error_type, "{what}: {body}");
        let message = serde_json::from_str::<Value>(&body).unwrap()["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty());
        if what == "signed 10 min ago" {
            assert!(message.starts_with("Signature expired:"), "{message}");
        }
    }
    // The workspace was not renamed by any of them; the genuine request is.
    let describe = spec("GET", &format!("/workspaces/{ws}"), None);
    let alias = || serde_json::from_str::<Value>(&signed(describe.clone()).2).unwrap()["workspace"]["alias"].clone();
    assert_eq!(alias(), "orig");
    let (status, _, body) = signed(spec("POST", &alias_path, Some(r#"{"alias":"renamed"}"#)));
    assert_eq!(status, 204, "{body}");
    assert_eq!(alias(), "renamed");

    // UNSIGNED-PAYLOAD, declared by the client, is accepted.
    let unsigned =
        with(spec("POST", &alias_path, Some(r#"{"alias":"unsigned-payload"}"#)), "unsigned_payload", json!(true));
    let (status, _, body) = signed(unsigned);
    assert_eq!(status, 204, "{body}");
    assert_eq!(alias(), "unsigned-payload");

    // Query strings and encoded paths (an ARN in the path) canonicalised.
    let (status, _, body) = signed(spec("GET", "/workspaces?maxResults=5&alias=unsigned", None));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["workspaces"][0]["workspaceId"], ws.as_str());
    let arn = format!("arn:aws:aps:us-east-1:000000000000:workspace/{ws}");
    let encoded: String = arn.replace(':', "%3A").replace('/', "%2F");
    let (status, _, body) = signed(spec("GET", &format!("/tags/{encoded}"), None));
    assert_eq!(status, 200, "{body}");

    // Presigned URLs, and their expiry.
    let presigned = with(spec("GET", &format!("/workspaces/{ws}"), None), "presign", json!(true));
    let (status, _, body) = signed(presigned.clone());
    assert_eq!(status, 200, "{body}");
    let expired = with(with(presigned.clone(), "expires", json!(5)), "time_offset_seconds", json!(-60));
    let (status, _, body) = signed(expired);
    assert_eq!(status, 403);
    assert!(body.contains("expired"), "{body}");
    let (status, _, _) = signed(with(presigned, "tamper", json!("path")));
    assert_eq!(status, 403);

    // Unauthenticated callers learn nothing about which workspaces exist.
    let http = client();
    let existing = http.get(format!("{}/workspaces/{ws}/api/v1/query?query=up", server.url)).send().await.unwrap();
    let missing = http
        .get(format!("{}/workspaces/ws-00000000-0000-4000-8000-000000000000/api/v1/query?query=up", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(existing.status(), 403);
    assert_eq!(missing.status(), 403);
    assert_eq!(existing.headers()["x-amzn-errortype"], "MissingAuthenticationTokenException");
    assert_eq!(existing.text().await.unwrap(), missing.text().await.unwrap());
    // Health checks need no signature; /metrics (it names workspaces) does.
    assert_eq!(http.get(format!("{}/-/healthy", server.url)).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{}/metrics", server.url)).send().await.unwrap().status(), 403);
    let (status, _, body) = signed(spec("GET", "/metrics", None));
    assert_eq!(status, 200);
    assert!(body.contains("promlake_"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_with_its_sigv4_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("promlake");
    let server = TestServer::spawn_sigv4(&data);
    let (key_id, secret) = credentials(&data);
    let (ok, created, stderr) = aws_with_files(&data, &["create-workspace", "--alias", "prometheus"]);
    assert!(ok, "{stderr}");
    let ws = created["workspaceId"].as_str().unwrap().to_owned();

    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{ targets: ["127.0.0.1:{prom_port}"] }}]
remote_write:
  - url: {url}/workspaces/{ws}/api/v1/remote_write
    queue_config:
      batch_send_deadline: 200ms
    sigv4:
      region: us-east-1
      access_key: {key_id}
      secret_key: {secret}
"#,
        url = server.url
    );
    let prom = prometheus_agent(dir.path(), &config, prom_port).await;
    let prom_metrics = format!("http://127.0.0.1:{prom_port}/metrics");
    let written = format!("promlake_ingest_written_total{{workspace=\"{ws}\",kind=\"sample\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = client().get(&prom_metrics).send().await.unwrap().text().await.unwrap();
        let sent = metric_value(&text, "prometheus_remote_storage_samples_total{");
        let failed = metric_value(&text, "prometheus_remote_storage_samples_failed_total{");
        assert_eq!(failed, 0.0, "Prometheus's signed writes failed");
        let (status, _, metrics) = signed(json!({
            "url": format!("{}/metrics", server.url),
            "method": "GET",
            "body": null,
            "access_key": key_id,
            "secret_key": secret,
        }));
        assert_eq!(status, 200);
        let ours = metric_value(&metrics, &written);
        if sent > 500.0 && ours >= sent {
            break;
        }
        assert!(Instant::now() < deadline, "signed writes did not arrive: sent {sent}, written {ours}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(prom);

    // The data is readable with a signed query.
    let (status, _, body) = signed(json!({
        "url": format!("{}/workspaces/{ws}/api/v1/query?query=count(prometheus_build_info)", server.url),
        "method": "GET",
        "body": null,
        "access_key": key_id,
        "secret_key": secret,
    }));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
}
