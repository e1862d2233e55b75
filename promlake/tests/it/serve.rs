//! `promlake serve`: workspaces persist across restarts, SIGTERM shuts down
//! cleanly, bad flags and config are refused with a clear message.

use std::process::Command;

use crate::harness::{TestServer, client};

#[tokio::test]
async fn workspaces_survive_restarts_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::spawn(dir.path());
    let ws = server.create_workspace("persisted").await;
    let resp = client().get(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let before: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(before["workspace"]["alias"], "persisted");
    assert_eq!(before["workspace"]["status"]["statusCode"], "ACTIVE");
    assert!(before["workspace"]["prometheusEndpoint"].as_str().unwrap().ends_with("/api/v1/"));

    // A second process on the same data directory is refused.
    let second = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["serve", "--listen", "127.0.0.1:0", "--auth", "none", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another promlake process"));

    let status = server.terminate();
    assert!(status.success(), "SIGTERM exit: {status:?}");

    let server = TestServer::spawn(dir.path());
    let resp = client().get(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let after: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(after["workspace"]["workspaceId"], before["workspace"]["workspaceId"]);
    assert_eq!(after["workspace"]["createdAt"], before["workspace"]["createdAt"]);

    let missing = client()
        .get(format!("{}/workspaces/ws-00000000-0000-4000-8000-000000000000", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-amzn-errortype"], "ResourceNotFoundException");

    let bad = client()
        .post(format!("{}/workspaces", server.url))
        .header("content-type", "application/json")
        .body(r#"{"alias":"x","kmsKeyArn":"arn:aws:kms:us-east-1:000000000000:key/x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.headers()["x-amzn-errortype"], "ValidationException");
    let body: serde_json::Value = serde_json::from_str(&bad.text().await.unwrap()).unwrap();
    assert_eq!(body["fieldList"][0]["name"], "kmsKeyArn");
}

#[test]
fn bad_config_refuses_to_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "log = \"embedded\"\nunknown_key = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["serve", "--listen", "127.0.0.1:0", "--auth", "none", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_key"), "{}", String::from_utf8_lossy(&out.stderr));

    let help = Command::new(env!("CARGO_BIN_EXE_promlake")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--data-dir", "--listen", "--auth", "--role", "--config"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
