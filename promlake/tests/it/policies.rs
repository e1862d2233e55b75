//! IAM-style policies of principals, managed with `promlake principal …` and
//! `promlake key …` against a running `promlake serve`, checked with
//! requests signed by botocore: the policy matrix of the control-plane
//! issue (a remote-write-only key cannot query or manage; a key scoped to
//! one workspace's ARN cannot touch another; an explicit Deny beats an
//! Allow; a revoked key fails at once; a rotated one is replaced).

use std::path::Path;
use std::process::Command;

use prost::Message;
use schemas::prompb;
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::sigv4::{aws_with_files, credentials, signed};

/// `promlake <args> --data-dir <data>`: the JSON it printed.
fn promlake(data: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_promlake")).args(args).arg("--data-dir").arg(data).output().unwrap();
    assert!(out.status.success(), "promlake {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A new principal with `policies` (extra CLI flags) and one key.
fn principal(data: &Path, name: &str, policies: &[&str]) -> (String, String) {
    let mut args = vec!["principal", "create", name];
    args.extend_from_slice(policies);
    let created = promlake(data, &args);
    assert_eq!(created["principal"]["name"], name);
    let key = promlake(data, &["key", "create", name]);
    (key["accessKeyId"].as_str().unwrap().to_owned(), key["secretAccessKey"].as_str().unwrap().to_owned())
}

/// A remote-write 1.0 body (snappy protobuf), hex-encoded for the client
/// script.
fn remote_write_hex() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let request = prompb::WriteRequest {
        timeseries: vec![prompb::TimeSeries {
            labels: vec![prompb::Label { name: "__name__".into(), value: "up".into() }],
            samples: vec![prompb::Sample { value: 1.0, timestamp: now }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap();
    body.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_policy_matrix_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TestServer::spawn_sigv4(&data);
    let _ = credentials(&data);
    let ws = |alias: &str| {
        let (ok, v, stderr) = aws_with_files(&data, &["create-workspace", "--alias", alias]);
        assert!(ok, "{stderr}");
        v["workspaceId"].as_str().unwrap().to_owned()
    };
    let (a, b) = (ws("a"), ws("b"));
    let arn_a = format!("arn:aws:aps:us-east-1:000000000000:workspace/{a}");

    // Sends a request signed with (key, secret); returns (status, error type).
    // A body "hex:…" is sent as the bytes it encodes, as a remote write.
    let call = |key: &(String, String), method: &str, path: &str, body: Option<String>| -> (u16, String) {
        let mut spec = json!({
            "url": format!("{}{path}", server.url),
            "method": method,
            "body": body,
            "headers": {"Content-Type": "application/json"},
            "access_key": key.0,
            "secret_key": key.1,
        });
        if let Some(hex) = body.as_deref().and_then(|b| b.strip_prefix("hex:")) {
            spec["body"] = Value::Null;
            spec["body_hex"] = hex.into();
            spec["headers"] = json!({
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
            });
        }
        let (status, headers, body) = signed(spec);
        let error_type = headers["x-amzn-errortype"].as_str().unwrap_or_default().to_owned();
        if status == 403 && error_type == "AccessDeniedException" {
            let message = serde_json::from_str::<Value>(&body).unwrap()["message"].as_str().unwrap().to_owned();
            assert!(message.contains(" is not authorized to perform: "), "{message}");
        }
        (status, error_type)
    };
    let denied = |r: (u16, String)| r.0 == 403 && r.1 == "AccessDeniedException";
    let query = |ws: &str| format!("/workspaces/{ws}/api/v1/query?query=vector%281%29");
    let write = |ws: &str| format!("/workspaces/{ws}/api/v1/remote_write");

    // Remote-write only: writes, cannot query or manage.
    let writer = principal(&data, "writer", &["--policy", "AmazonPrometheusRemoteWriteAccess"]);
    let rw = || Some(format!("hex:{}", remote_write_hex()));
    assert_eq!(call(&writer, "POST", &write(&a), rw()).0, 204);
    assert!(denied(call(&writer, "GET", &query(&a), None)));
    assert!(denied(call(&writer, "GET", &format!("/workspaces/{a}/api/v1/labels"), None)));
    assert!(denied(call(&writer, "GET", "/workspaces", None)));
    assert!(denied(call(&writer, "POST", "/workspaces", Some("{}".into()))));
    assert!(denied(call(
        &writer,
        "POST",
        "/iam/principals",
        Some(r#"{"name":"evil","policies":["AdministratorAccess"]}"#.into())
    )));

    // Query only: reads, cannot write or manage.
    let reader = principal(&data, "reader", &["--policy", "AmazonPrometheusQueryAccess"]);
    assert_eq!(call(&reader, "GET", &query(&a), None).0, 200);
    assert_eq!(call(&reader, "GET", &format!("/workspaces/{b}/api/v1/series?match%5B%5D=up"), None).0, 200);
    assert!(denied(call(&reader, "POST", &write(&a), rw())));
    assert!(denied(call(&reader, "DELETE", &format!("/workspaces/{a}"), None)));

    // Scoped to workspace a's ARN: everything on a, nothing on b.
    let doc = dir.path().join("scoped.json");
    std::fs::write(
        &doc,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "aps:*", "Resource": arn_a}]})
            .to_string(),
    )
    .unwrap();
    let scoped = principal(&data, "scoped", &["--policy-file", doc.to_str().unwrap()]);
    assert_eq!(call(&scoped, "GET", &query(&a), None).0, 200);
    assert_eq!(call(&scoped, "GET", &format!("/workspaces/{a}"), None).0, 200);
    assert!(denied(call(&scoped, "GET", &query(&b), None)));
    assert!(denied(call(&scoped, "POST", &write(&b), rw())));
    assert_eq!(call(&scoped, "POST", &write(&a), rw()).0, 204);
    assert!(denied(call(&scoped, "GET", &format!("/workspaces/{b}"), None)));
    // A workspace that does not exist is denied the same way: no probing.
    assert!(denied(call(&scoped, "GET", "/workspaces/ws-00000000-0000-4000-8000-000000000000", None)));

    // An explicit Deny beats the Allow of a full-access policy.
    let deny = dir.path().join("deny.json");
    std::fs::write(
        &deny,
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": ["aps:QueryMetrics", "aps:Get*"], "Resource": "*"}})
            .to_string(),
    )
    .unwrap();
    let both = principal(
        &data,
        "full-but-no-query",
        &["--policy", "AmazonPrometheusFullAccess", "--policy-file", deny.to_str().unwrap()],
    );
    let r = call(&both, "GET", &query(&a), None);
    assert!(denied(r.clone()), "{r:?}");
    assert!(denied(call(&both, "GET", &format!("/workspaces/{a}/api/v1/labels"), None)));
    assert_eq!(call(&both, "GET", "/workspaces", None).0, 200);

    // Policies replaced take effect at once.
    promlake(&data, &["principal", "set-policies", "writer", "--policy", "AmazonPrometheusQueryAccess"]);
    assert_eq!(call(&writer, "GET", &query(&a), None).0, 200);
    let shown = promlake(&data, &["principal", "show", "writer"]);
    assert_eq!(shown["principal"]["policies"], json!(["AmazonPrometheusQueryAccess"]));
    assert_eq!(shown["principal"]["accessKeys"][0]["accessKeyId"], writer.0.as_str());
    assert!(!shown.to_string().contains(&writer.1), "a secret was shown");

    // A revoked key fails at once; a rotated key is replaced.
    promlake(&data, &["key", "revoke", &reader.0]);
    assert_eq!(call(&reader, "GET", &query(&a), None), (403, "InvalidClientTokenId".to_owned()));
    let rotated = promlake(&data, &["key", "rotate", &writer.0]);
    let new =
        (rotated["accessKeyId"].as_str().unwrap().to_owned(), rotated["secretAccessKey"].as_str().unwrap().to_owned());
    assert_ne!(new.0, writer.0);
    assert_eq!(call(&writer, "GET", &query(&a), None), (403, "InvalidClientTokenId".to_owned()));
    assert_eq!(call(&new, "GET", &query(&a), None).0, 200);

    // Bad policies are refused and change nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["principal", "create", "bad", "--policy", "NoSuchPolicy", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown built-in policy"));
    let out = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["principal", "show", "bad", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a refused principal was created");
}
