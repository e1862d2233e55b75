//! The Alertmanager v2 API of `promlake serve`, driven by the real amtool
//! 0.33.1 and compared with the real Alertmanager 0.33.1 running the same
//! configuration: `amtool alert add | query`, `amtool silence add | query |
//! expire` give the same answers (times and ids aside); bad silences and
//! alerts get Alertmanager's status and message; the notification goes
//! out to the webhook; one workspace never sees another's alerts or
//! silences.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::testing::WebhookSink;
use serde_json::{Value, json};

use crate::harness::{Process, TestServer, client, free_port, reference_bin, wait_http};

const CONFIG: &str = "route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  routes:
    - receiver: pager
      matchers: ['severity=\"page\"']
inhibit_rules:
  - source_matchers: [severity=page]
    target_matchers: [severity=warning]
    equal: [cluster]
receivers:
  - name: team
    webhook_configs: [{url: 'http://127.0.0.1:SINK/team'}]
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:SINK/pager'}]
";

async fn alertmanager(dir: &std::path::Path, config: &str) -> (Process, String) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, config).unwrap();
    let port = free_port();
    let p = Process(
        Command::new(reference_bin().join("prometheus-alertmanager"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready")).await;
    (p, base)
}

/// Runs amtool against `url`; (success, stdout), with stderr checked to
/// be empty (amtool warns there, for instance of a version mismatch).
fn amtool(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(reference_bin().join("amtool"))
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("run amtool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() || stderr.trim().is_empty(), "amtool {args:?} against {url} said: {stderr}");
    (out.status.success(), format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
}

/// A JSON answer with what legitimately differs between two servers
/// (times, silence ids, the receiving server's URL) blanked.
fn normalized(text: &str) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if ["startsAt", "endsAt", "updatedAt", "id", "silencedBy"].contains(&k.as_str()) {
                        *x = json!("-");
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    walk(&mut v);
    v
}

async fn put_definition(server: &TestServer, ws: &str, config: &str) {
    server.create_alert_manager_definition(ws, config).await;
    // In effect once the Alertmanagers' next sync has started it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client()
            .get(format!("{}/workspaces/{ws}/alertmanager/api/v2/status", server.url))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "the Alertmanager of {ws} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_works_against_promlake_as_against_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let sink_port = sink.port;
    let config = CONFIG.replace("SINK", &sink_port.to_string());
    let (_am, am_url) = alertmanager(&dir.path().join("am"), &config).await;
    let server = TestServer::spawn(&dir.path().join("pl"));
    let ws = server.create_workspace("alerts").await;
    let other = server.create_workspace("other").await;
    // No definition: the API says so.
    let resp = client().get(format!("{}/workspaces/{ws}/alertmanager/api/v2/alerts", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    put_definition(&server, &ws, &config).await;
    put_definition(&server, &other, &config).await;
    let pl_url = format!("{}/workspaces/{ws}/alertmanager", server.url);
    let both = [am_url.as_str(), pl_url.as_str()];

    for url in both {
        for alert in [
            vec!["alertname=Disk", "instance=a", "severity=warning", "cluster=eu", "--annotation=summary=disk"],
            vec!["alertname=Down", "instance=b", "severity=page", "cluster=eu"],
            vec!["alertname=Load", "instance=c", "severity=warning", "cluster=us"],
        ] {
            let mut args = vec!["alert", "add"];
            args.extend(alert);
            let (ok, out) = amtool(url, &args);
            assert!(ok, "amtool alert add against {url}: {out}");
        }
    }
    let same = |args: &[&str]| -> Vec<Value> {
        both.iter()
            .map(|url| {
                let (ok, out) = amtool(url, args);
                assert!(ok, "amtool {args:?} against {url}: {out}");
                normalized(&out)
            })
            .collect()
    };
    let check = |args: &[&str]| {
        let answers = same(args);
        assert_eq!(answers[1], answers[0], "amtool {args:?}: PromLake (left) differs from Alertmanager (right)");
        answers.into_iter().next().unwrap()
    };
    // Every alert with its receivers and status (the warning in eu is
    // inhibited by the page in eu).
    let all = check(&["alert", "query", "-o", "json", "--inhibited", "--silenced", "--active"]);
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    check(&["alert", "query", "-o", "json"]);
    check(&["alert", "query", "-o", "json", "alertname=~Disk|Load"]);
    check(&["alert", "query", "-o", "json", "--receiver=pager"]);

    // A silence, queried, then expired.
    let mut ids = Vec::new();
    for url in both {
        let (ok, out) =
            amtool(url, &["silence", "add", "alertname=Load", "-c", "maintenance", "-a", "ops", "-d", "1h"]);
        assert!(ok, "amtool silence add against {url}: {out}");
        ids.push(out.trim().to_owned());
    }
    check(&["silence", "query", "-o", "json"]);
    check(&["silence", "query", "-o", "json", "alertname=Load"]);
    let silenced = check(&["alert", "query", "-o", "json", "--silenced", "alertname=Load"]);
    assert_eq!(silenced[0]["status"]["state"], "suppressed", "{silenced}");
    for (url, id) in both.iter().zip(&ids) {
        let (ok, out) = amtool(url, &["silence", "expire", id]);
        assert!(ok, "amtool silence expire against {url}: {out}");
    }
    check(&["silence", "query", "-o", "json"]);
    let expired = check(&["silence", "query", "-o", "json", "--expired"]);
    assert_eq!(expired.as_array().map(Vec::len), Some(1), "{expired}");

    // Bad input: the same status and message from both, nothing stored.
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let t = |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let silence = |matchers: Value, starts: String, ends: String| {
        json!({"matchers": matchers, "startsAt": starts, "endsAt": ends, "createdBy": "t", "comment": "c"}).to_string()
    };
    let eq = json!([{"name": "a", "value": "b", "isRegex": false}]);
    let bad: Vec<(&str, String)> = vec![
        ("silences", silence(eq.clone(), t(future), t(future - chrono::Duration::minutes(5)))),
        (
            "silences",
            silence(eq.clone(), t(future - chrono::Duration::hours(3)), t(future - chrono::Duration::hours(2))),
        ),
        (
            "silences",
            silence(
                json!([{"name": "a", "value": ".*", "isRegex": true}]),
                t(future),
                t(future + chrono::Duration::hours(1)),
            ),
        ),
        (
            "silences",
            silence(
                json!([{"name": "a", "value": "(", "isRegex": true}]),
                t(future),
                t(future + chrono::Duration::hours(1)),
            ),
        ),
        ("silences", silence(json!([]), t(future), t(future + chrono::Duration::hours(1)))),
        ("silences", "{\"matchers\": ".to_owned()),
        ("alerts", "[{\"labels\": {}}]".to_owned()),
        ("alerts", "[{\"annotations\": {}}]".to_owned()),
    ];
    for (path, body) in &bad {
        let mut answers = Vec::new();
        for url in both {
            let resp = client()
                .post(format!("{url}/api/v2/{path}"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            // Go's and serde's JSON syntax errors are worded differently:
            // what precedes them must agree.
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap().trim().to_owned();
            let text = text.split_once("failed, because ").map_or(text.clone(), |(head, _)| head.to_owned());
            answers.push((status, text));
        }
        assert_eq!(answers[1], answers[0], "POST {path} {body}: PromLake (left) differs from Alertmanager (right)");
        assert!(answers[0].0 >= 400, "{body} was accepted");
    }
    check(&["silence", "query", "-o", "json", "--expired"]);

    // The other workspace saw none of it.
    let other_url = format!("{}/workspaces/{other}/alertmanager", server.url);
    let (ok, out) = amtool(&other_url, &["alert", "query", "-o", "json", "--inhibited", "--silenced"]);
    assert!(ok && normalized(&out) == json!([]), "{out}");
    let (ok, out) = amtool(&other_url, &["silence", "query", "-o", "json", "--expired"]);
    assert!(ok && normalized(&out) == json!([]), "{out}");

    // The page went out to the pager's webhook from both.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pages = sink.received().iter().filter(|(p, _, _)| p == "/pager").count();
        if pages >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "pages received: {pages}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rulers_alerts_reach_the_workspaces_alertmanager_and_its_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let sink_port = sink.port;
    let config_file = dir.path().join("promlake.toml");
    std::fs::write(&config_file, "[ruler]\nevaluation_interval_seconds = 1\n").unwrap();
    let server = TestServer::spawn_with(&dir.path().join("pl"), &["--config", config_file.to_str().unwrap()]);
    let ws = server.create_workspace("ruled").await;
    put_definition(&server, &ws, &CONFIG.replace("SINK", &sink_port.to_string())).await;
    let rules = "groups:\n  - name: always\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1) > 0\n        labels: {severity: page}\n        annotations: {summary: 'value {{ $value }}'}\n";
    server.create_rule_groups_namespace(&ws, "alerts", rules).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = sink.received().into_iter().find(|(p, _, _)| p == "/pager").map(|(_, _, v)| v);
        if let Some(v) = page {
            assert_eq!(v["groupLabels"], json!({"alertname": "AlwaysFiring"}), "{v}");
            assert_eq!(v["alerts"][0]["annotations"]["summary"], "value 1", "{v}");
            assert_eq!(v["status"], "firing");
            break;
        }
        assert!(Instant::now() < deadline, "no notification from the ruler's alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // amtool sees the alert, with the ruler's generator URL.
    let url = format!("{}/workspaces/{ws}/alertmanager", server.url);
    let (ok, out) = amtool(&url, &["alert", "query", "-o", "json", "alertname=AlwaysFiring"]);
    assert!(ok, "{out}");
    let alerts: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(alerts.as_array().map(Vec::len), Some(1), "{alerts}");
}

/// Posts alerts (label pairs) to a workspace's Alertmanager; asserts 200.
async fn post_alerts(url: &str, alerts: &[&[(&str, &str)]]) {
    let body: Vec<Value> = alerts
        .iter()
        .map(|pairs| json!({"labels": pairs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()}))
        .collect();
    let resp = client()
        .post(format!("{url}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(Value::Array(body).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// The alert names of each notification received so far.
fn notified(sink: &WebhookSink) -> Vec<Vec<String>> {
    sink.received()
        .iter()
        .map(|(_, _, v)| {
            v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["labels"]["instance"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

async fn wait_notifications(sink: &WebhookSink, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while notified(sink).len() < n {
        assert!(Instant::now() < deadline, "waited for {n} notifications: {:?}", notified(sink));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_group_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pl");
    let sink = WebhookSink::start();
    let sink_port = sink.port;
    let config = format!(
        "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 2s\n  group_interval: 4s\n  repeat_interval: 1h\nreceivers:\n  - name: team\n    webhook_configs: [{{url: 'http://127.0.0.1:{sink_port}/team'}}]\n"
    );
    let mut server = TestServer::spawn(&data);
    let ws = server.create_workspace("restarts").await;
    put_definition(&server, &ws, &config).await;
    let am = |s: &TestServer| format!("{}/workspaces/{ws}/alertmanager", s.url);
    post_alerts(
        &am(&server),
        &[&[("alertname", "Disk"), ("instance", "a")], &[("alertname", "Disk"), ("instance", "b")]],
    )
    .await;
    wait_notifications(&sink, 1).await;
    // A new alert joins the group and a silence is added; the process dies
    // before the group's next flush.
    post_alerts(&am(&server), &[&[("alertname", "Disk"), ("instance", "c")]]).await;
    let (ok, out) = amtool(&am(&server), &["silence", "add", "alertname=Other", "-c", "kept", "-a", "ops", "-d", "1h"]);
    assert!(ok, "{out}");
    let silence_id = out.trim().to_owned();
    server.kill();

    let mut server = TestServer::spawn(&data);
    // The restored group notifies the new alert once, with the others.
    wait_notifications(&sink, 2).await;
    assert_eq!(notified(&sink)[1], ["a", "b", "c"]);
    let (ok, out) = amtool(&am(&server), &["silence", "query", "-q"]);
    assert!(ok && out.trim() == silence_id, "the silence did not survive: {out}");
    let (ok, out) = amtool(&am(&server), &["alert", "query", "-o", "json"]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap().as_array().map(Vec::len), Some(3), "{out}");
    // Nothing more to say: another restart sends nothing again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.kill();
    let server = TestServer::spawn(&data);
    wait_http(&format!("{}/workspaces/{ws}/alertmanager/api/v2/status", server.url)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(notified(&sink).len(), 2, "a notification was repeated: {:?}", notified(&sink));
}
