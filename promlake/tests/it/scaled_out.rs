//! Scaled out (issue 3): a gateway process and two worker processes
//! (`--role gateway`, `--role worker`) share a Kafka log, a librdkafka mock
//! cluster hosted by this test on loopback, and one lake directory. The two
//! workers split the workspace's partitions in their consumer group; one is
//! SIGKILLed mid-stream, the other takes its partitions over (after the
//! group's session timeout) and the lake, read by the independent reader,
//! holds exactly the acknowledged samples, each (series, timestamp) once.
//!
//! The mock implements no CreateTopics: the test creates `_control` on it,
//! and the workspace's samples topic (whose name holds the random workspace
//! id) is created by the mock's automatic topic creation, which the
//! processes' metadata lookups trigger because the test's config passes
//! `allow.auto.create.topics=true` through to librdkafka (the mock's
//! default: 4 partitions, as `[workspaces] partitions` says).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use schemas::prompb;
use serde_json::{Value, json};

use crate::harness::{TestServer, client, post_remote_write, read_lake_with_python};

/// Partitions of the workspace topic (the mock's auto-creation default).
const PARTITIONS: f64 = 4.0;
/// Long-lived series, one sample each per request.
const SERIES: usize = 8;
/// Pause between requests (pacing only; the test waits on conditions).
const PACE: Duration = Duration::from_millis(40);
/// Longest any awaited condition may take.
const PATIENCE: Duration = Duration::from_secs(60);

fn config(bootstrap: &str, lake: &std::path::Path) -> String {
    format!(
        r#"log = "kafka://{bootstrap}"
lake = "{lake}"

[kafka]
replication_factor = 1
session_timeout_ms = 3000

[kafka.librdkafka]
"allow.auto.create.topics" = "true"
"reconnect.backoff.ms" = "20"
"reconnect.backoff.max.ms" = "200"
"retry.backoff.ms" = "20"
"retry.backoff.max.ms" = "200"
"fetch.wait.max.ms" = "100"

[workspaces]
partitions = 4

[stream_workers]
flush_interval_ms = 200
fetch_max_wait_ms = 50
retry_backoff_ms = 100
"#,
        lake = lake.display()
    )
}

/// The samples of one request: ((series id, timestamp), value).
type Samples = Vec<((i64, i64), f64)>;

/// Request `i`: one sample for each series at `base + i s`.
fn request(base_ms: i64, i: usize) -> (Vec<u8>, Samples) {
    let ts = base_ms + i as i64 * 1000;
    let mut timeseries = Vec::new();
    let mut samples = Vec::new();
    for s in 0..SERIES {
        // Labels sorted by name, as the series id is defined on.
        let labels = [("__name__", "scaled_out"), ("s", &*s.to_string())].map(|(n, v)| (n.to_owned(), v.to_owned()));
        let id = schemas::labels::series_id(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let value = (i * 100 + s) as f64;
        samples.push(((id as i64, ts), value));
        timeseries.push(prompb::TimeSeries {
            labels: labels.into_iter().map(|(name, value)| prompb::Label { name, value }).collect(),
            samples: vec![prompb::Sample { value, timestamp: ts }],
            ..Default::default()
        });
    }
    let body = prompb::WriteRequest { timeseries, metadata: Vec::new() }.encode_to_vec();
    (snap::raw::Encoder::new().compress_vec(&body).unwrap(), samples)
}

/// Posts one remote-write request until it is acknowledged.
async fn send_until_acked(http: &reqwest::Client, url: &str, ws: &str, body: &[u8]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match post_remote_write(http, &format!("{url}/workspaces/{ws}/api/v1/remote_write"), body).await {
            Some(r) if r.status().is_success() => return,
            Some(r) => assert!(r.status().is_server_error() || r.status() == 429, "status {}", r.status()),
            None => {}
        }
        assert!(Instant::now() < deadline, "a remote write was not acknowledged within {PATIENCE:?}");
        tokio::time::sleep(PACE).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A worker's `promlake_stream_owned_partitions` for the workspace.
async fn owned(worker: &TestServer, ws: &str) -> f64 {
    worker.metric(&format!("promlake_stream_owned_partitions{{workspace=\"{ws}\"}}")).await
}

/// A worker's `promlake_stream_samples_committed_total` for the workspace.
async fn committed(worker: &TestServer, ws: &str) -> f64 {
    worker.metric(&format!("promlake_stream_samples_committed_total{{workspace=\"{ws}\"}}")).await
}

/// A mock Kafka cluster with `_control` (and `_alerting`, 4 partitions),
/// and a gateway and two processes of `role` (`worker`, `alerting`) on it
/// sharing a lake under `dir`, their config `extra` appended. The mock
/// must outlive the processes.
async fn cluster(
    dir: &std::path::Path,
    extra: &str,
    role: &str,
) -> (MockCluster<'static, DefaultProducerContext>, TestServer, TestServer, TestServer) {
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(schemas::topics::CONTROL_TOPIC, 1, 1).expect("create _control");
    mock.create_topic(schemas::topics::ALERTING_TOPIC, 4, 1).expect("create _alerting");
    let config_path = dir.join("promlake.toml");
    std::fs::write(&config_path, format!("{}{extra}", config(&mock.bootstrap_servers(), &dir.join("lake")))).unwrap();
    let config_arg = config_path.to_str().unwrap().to_owned();
    let spawn = |name: &str, role: &str| {
        let data = dir.join(name);
        let args = ["--config".to_owned(), config_arg.clone(), "--role".to_owned(), role.to_owned()];
        tokio::task::spawn_blocking(move || {
            TestServer::spawn_with(&data, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let (gateway, w1, w2) =
        tokio::join!(spawn("gateway", "gateway"), spawn(&format!("{role}-1"), role), spawn(&format!("{role}-2"), role));
    (mock, gateway.unwrap(), w1.unwrap(), w2.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_two_workers_with_one_killed_mid_stream_keep_each_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    // Dropped last: it must outlive the processes.
    let (mock, gateway, mut w1, mut w2) = cluster(dir.path(), "", "worker").await;
    let lake = dir.path().join("lake");

    let ws = gateway.create_workspace("scaled-out").await;
    let http = client();
    // An hour ago, on a whole second: far from "now" and from retention.
    let base_ms = (now_ms() - 3_600_000) / 1000 * 1000;
    let mut acked: HashMap<(i64, i64), f64> = HashMap::new();
    let mut i = 0;
    let mut push = async |i: &mut usize| {
        let (body, samples) = request(base_ms, *i);
        send_until_acked(&http, &gateway.url, &ws, &body).await;
        for (key, value) in samples {
            assert!(acked.insert(key, value).is_none());
        }
        *i += 1;
        tokio::time::sleep(PACE).await;
    };

    // Both workers own a share of the partitions and commit samples.
    let started = Instant::now();
    loop {
        push(&mut i).await;
        let (o1, o2) = (owned(&w1, &ws).await, owned(&w2, &ws).await);
        let (c1, c2) = (committed(&w1, &ws).await, committed(&w2, &ws).await);
        if o1 > 0.0 && o2 > 0.0 && o1 + o2 == PARTITIONS && c1 > 0.0 && c2 > 0.0 {
            eprintln!("split after {:?} and {i} requests: {o1} + {o2} partitions", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the workers did not split the partitions and commit: owned {o1} + {o2}, committed {c1} + {c2}"
        );
    }
    for _ in 0..10 {
        push(&mut i).await;
    }

    // Worker 1 dies mid-stream; writes go on; worker 2 takes every partition.
    w1.kill();
    let killed_at = Instant::now();
    loop {
        push(&mut i).await;
        let o2 = owned(&w2, &ws).await;
        if o2 == PARTITIONS {
            eprintln!("worker 2 owns every partition {:?} after the kill", killed_at.elapsed());
            break;
        }
        assert!(killed_at.elapsed() < PATIENCE, "worker 2 owns {o2} partitions {PATIENCE:?} after the kill");
    }
    for _ in 0..10 {
        push(&mut i).await;
    }

    // A clean stop of worker 2 (which owns every partition) drains what the
    // log holds into the lake: nothing is written any more.
    assert!(w2.terminate().success(), "worker 2 did not stop cleanly");
    drop(gateway);

    let (rows, _) = read_lake_with_python(&lake, &ws);
    let mut seen = HashSet::new();
    let doubled: Vec<_> = rows.iter().filter(|r| !seen.insert((r.0, r.1))).collect();
    assert!(
        doubled.is_empty(),
        "the lake holds {} (series, timestamp) more than once, e.g. {:?}",
        doubled.len(),
        doubled.iter().take(3).collect::<Vec<_>>()
    );
    let mut lost: Vec<_> = acked.keys().filter(|k| !seen.contains(k)).collect();
    lost.sort();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged samples are not in the lake, e.g. {:?} (requests {:?} of {i})",
        lost.len(),
        acked.len(),
        lost.iter().take(3).collect::<Vec<_>>(),
        lost.iter().take(3).map(|(_, ts)| (ts - base_ms) / 1000).collect::<Vec<_>>()
    );
    let extra: Vec<_> = seen.iter().filter(|k| !acked.contains_key(k)).collect();
    assert!(extra.is_empty(), "samples in the lake that were never sent: {:?}", &extra[..extra.len().min(3)]);
    for (id, ts, bits, _) in &rows {
        let want = acked[&(*id, *ts)].to_le_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(bits.as_deref(), Some(want.as_str()), "value of ({id}, {ts})");
    }
    eprintln!("{i} requests, {} samples in the lake, exactly once", rows.len());
    drop(dir);
    drop(mock);
}

/// The groups of `ns` (`g0`…) a worker evaluated in the last 2.5 s.
async fn evaluating(worker: &TestServer, ws: &str, groups: usize) -> HashSet<usize> {
    let count = async |g: usize| {
        worker
            .metric(&format!("promlake_rule_group_iterations_total{{workspace=\"{ws}\",rule_group=\"ns;g{g}\"}}"))
            .await
    };
    let mut before = Vec::new();
    for g in 0..groups {
        before.push(count(g).await);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut out = HashSet::new();
    for (g, before) in before.into_iter().enumerate() {
        if count(g).await > before {
            out.insert(g);
        }
    }
    out
}

/// Scaled out, each rule group is evaluated by the one worker that owns its
/// partition, and moves to the survivor when its worker dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_groups_are_split_between_workers_and_move_with_their_partitions() {
    const GROUPS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let (mock, gateway, mut w1, w2) =
        cluster(dir.path(), "\n[ruler]\nevaluation_interval_seconds = 1\n", "worker").await;
    let ws = gateway.create_workspace("scaled-out-rules").await;
    let rules: String = (0..GROUPS)
        .map(|g| format!("  - name: g{g}\n    rules:\n      - record: r_g{g}\n        expr: vector({g})\n"))
        .collect();
    gateway.create_rule_groups_namespace(&ws, "ns", &format!("groups:\n{rules}")).await;

    // Once both workers own partitions, every group runs in exactly one.
    let http = client();
    let base_ms = (now_ms() - 3_600_000) / 1000 * 1000;
    let started = Instant::now();
    let mut i = 0;
    loop {
        send_until_acked(&http, &gateway.url, &ws, &request(base_ms, i).0).await;
        i += 1;
        let (o1, o2) = (owned(&w1, &ws).await, owned(&w2, &ws).await);
        if o1 > 0.0 && o2 > 0.0 && o1 + o2 == PARTITIONS {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the workers did not split the partitions: {o1} + {o2}");
        tokio::time::sleep(PACE).await;
    }
    let all: HashSet<usize> = (0..GROUPS).collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (e1, e2) = tokio::join!(evaluating(&w1, &ws, GROUPS), evaluating(&w2, &ws, GROUPS));
        eprintln!("worker 1 evaluates {e1:?}, worker 2 {e2:?}");
        if e1.is_disjoint(&e2) && e1.union(&e2).copied().collect::<HashSet<_>>() == all {
            break;
        }
        assert!(Instant::now() < deadline, "groups not split: worker 1 {e1:?}, worker 2 {e2:?}");
    }

    // Worker 1 dies: worker 2 takes its partitions, and with them its groups.
    w1.kill();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let e2 = evaluating(&w2, &ws, GROUPS).await;
        if e2 == all {
            break;
        }
        assert!(Instant::now() < deadline, "worker 2 evaluates only {e2:?} after worker 1 died");
    }
    drop((gateway, w2, dir));
    drop(mock);
}

/// Whether `server` runs the workspace's Alertmanager: a request marked
/// as forwarded is answered there (503 where another process runs it:
/// forwarded requests are not forwarded again).
async fn runs_alertmanager(server: &TestServer, ws: &str) -> bool {
    let url = format!("{}/workspaces/{ws}/alertmanager/api/v2/status", server.url);
    client().get(url).header("x-promlake-forwarded", "1").send().await.is_ok_and(|r| r.status() == 200)
}

/// Scaled out, each workspace's Alertmanager runs in exactly one alerting
/// process (the owner of its `_alerting` partition); the API of the other
/// forwards to it. One is SIGKILLed with alerts posted and their groups
/// still waiting: the other takes its workspaces over from the log, and
/// every workspace's group is notified exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanagers_are_split_between_alerting_processes_and_resume_in_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, gateway, mut a1, a2) = cluster(dir.path(), "", "alerting").await;
    let sink = common::testing::WebhookSink::start();
    let config = |ws: &str| {
        format!(
            "route: {{receiver: r, group_wait: 4s, group_interval: 1h, repeat_interval: 4h}}\n\
             receivers: [{{name: r, webhook_configs: [{{url: '{}/{ws}'}}]}}]\n",
            sink.url()
        )
    };

    // Workspaces until each process runs at least one (a workspace's
    // partition is a hash of its id).
    let mut owners: Vec<(String, bool)> = Vec::new();
    while owners.len() < 4 || owners.iter().all(|(_, first)| *first) || owners.iter().all(|(_, first)| !*first) {
        assert!(owners.len() < 24, "the processes did not split the workspaces: {owners:?}");
        let ws = gateway.create_workspace(&format!("alerting-{}", owners.len())).await;
        gateway.create_alert_manager_definition(&ws, &config(&ws)).await;
        let deadline = Instant::now() + PATIENCE;
        let first = loop {
            let (in1, in2) = tokio::join!(runs_alertmanager(&a1, &ws), runs_alertmanager(&a2, &ws));
            assert!(!(in1 && in2), "{ws} runs in both processes");
            if in1 || in2 {
                break in1;
            }
            assert!(Instant::now() < deadline, "no process runs the Alertmanager of {ws}");
            tokio::time::sleep(PACE).await;
        };
        owners.push((ws, first));
    }

    // An alert to each, posted to the process NOT running it: forwarded
    // (503 only while a late rebalance moves it: sent again).
    for (ws, first) in &owners {
        let server = if *first { &a2 } else { &a1 };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let resp = client()
                .post(format!("{}/workspaces/{ws}/alertmanager/api/v2/alerts", server.url))
                .header("content-type", "application/json")
                .body(format!(r#"[{{"labels": {{"alertname": "Scaled", "workspace": "{ws}"}}}}]"#))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{text}");
            assert!(Instant::now() < deadline, "{ws}: {text}");
            tokio::time::sleep(PACE).await;
        }
    }
    // Process 1 dies while its groups wait: the survivor runs them all.
    a1.kill();
    let deadline = Instant::now() + PATIENCE;
    for (ws, _) in &owners {
        while !runs_alertmanager(&a2, ws).await {
            assert!(Instant::now() < deadline, "the survivor did not take {ws} over");
            tokio::time::sleep(PACE).await;
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while sink.received().len() < owners.len() {
        assert!(Instant::now() < deadline, "notifications missing: {:?}", sink.received());
        tokio::time::sleep(PACE).await;
    }
    // The survivor has every workspace's alert (through its API).
    for (ws, _) in &owners {
        let url = format!("{}/workspaces/{ws}/alertmanager/api/v2/alerts", a2.url);
        let alerts: serde_json::Value =
            serde_json::from_str(&client().get(url).send().await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(alerts.as_array().map(Vec::len), Some(1), "{ws}: {alerts}");
        assert_eq!(alerts[0]["labels"]["workspace"], ws.as_str(), "{alerts}");
    }
    // Nothing more comes (group_interval is an hour).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let received = sink.received();
    let mut notified: Vec<String> =
        received.iter().map(|(path, _, _)| path.trim_start_matches('/').to_owned()).collect();
    notified.sort();
    let mut expected: Vec<String> = owners.iter().map(|(ws, _)| ws.clone()).collect();
    expected.sort();
    assert_eq!(notified, expected, "each workspace once: {received:?}");
    for (path, _, body) in &received {
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(body["alerts"][0]["labels"]["workspace"], path.trim_start_matches('/'), "{body}");
        assert_eq!(body["alerts"][0]["status"], "firing", "{body}");
    }
    drop((gateway, a2, dir));
    drop(mock);
}

/// Scaled out with SigV4: a request signed by botocore for a workspace run
/// by the other alerting process is forwarded with its signature and
/// accepted there; a tampered one is refused where it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_alertmanager_requests_are_forwarded_with_their_signature() {
    use base64::Engine as _;

    use crate::sigv4::{credentials, signed};

    let dir = tempfile::tempdir().unwrap();
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(schemas::topics::CONTROL_TOPIC, 1, 1).expect("create _control");
    mock.create_topic(schemas::topics::ALERTING_TOPIC, 4, 1).expect("create _alerting");
    let config_path = dir.path().join("promlake.toml");
    // Every process verifies with the same master key.
    let auth = format!("\n[auth]\nmaster_key_file = \"{}\"\n", dir.path().join("master.key").display());
    std::fs::write(&config_path, format!("{}{auth}", config(&mock.bootstrap_servers(), &dir.path().join("lake"))))
        .unwrap();
    let config_arg = config_path.to_str().unwrap().to_owned();
    let spawn = |name: &str, role: &str| {
        let data = dir.path().join(name);
        let args = ["--config".to_owned(), config_arg.clone(), "--role".to_owned(), role.to_owned()];
        tokio::task::spawn_blocking(move || {
            TestServer::spawn_sigv4_with(&data, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    // The gateway first: it creates the master key and the admin's key pair.
    let gateway = spawn("gateway", "gateway").await.unwrap();
    let (a1, a2) = tokio::join!(spawn("alerting-1", "alerting"), spawn("alerting-2", "alerting"));
    let (a1, a2) = (a1.unwrap(), a2.unwrap());
    let (key_id, secret) = credentials(&dir.path().join("gateway"));
    let call = |server: &TestServer, method: &str, path: &str, body: Option<String>, extra: Value| {
        let mut headers = json!({"Content-Type": "application/json"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            headers[k] = v.clone();
        }
        let spec = json!({"url": format!("{}{path}", server.url), "method": method, "body": body,
            "headers": headers, "access_key": key_id, "secret_key": secret});
        let (status, _, text) = signed(spec);
        (status, text)
    };

    let (status, body) = call(&gateway, "POST", "/workspaces", Some(r#"{"alias":"signed"}"#.into()), json!({}));
    assert_eq!(status, 202, "{body}");
    let ws = serde_json::from_str::<Value>(&body).unwrap()["workspaceId"].as_str().unwrap().to_owned();
    let data = "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r}]\n";
    let definition = json!({"data": base64::engine::general_purpose::STANDARD.encode(data)}).to_string();
    let (status, body) =
        call(&gateway, "POST", &format!("/workspaces/{ws}/alertmanager/definition"), Some(definition), json!({}));
    assert_eq!(status, 202, "{body}");

    // Which process runs it: a request marked as forwarded is answered only
    // there.
    let status_path = format!("/workspaces/{ws}/alertmanager/api/v2/status");
    let own = json!({"x-promlake-forwarded": "1"});
    let deadline = Instant::now() + PATIENCE;
    let (owner, other) = loop {
        let in1 = call(&a1, "GET", &status_path, None, own.clone()).0 == 200;
        let in2 = call(&a2, "GET", &status_path, None, own.clone()).0 == 200;
        assert!(!(in1 && in2), "{ws} runs in both processes");
        if in1 || in2 {
            break if in1 { (&a1, &a2) } else { (&a2, &a1) };
        }
        assert!(Instant::now() < deadline, "no process runs the Alertmanager of {ws}");
        tokio::time::sleep(PACE).await;
    };

    // Signed requests to the other process: forwarded, verified, answered.
    let alerts_path = format!("/workspaces/{ws}/alertmanager/api/v2/alerts");
    let alert = r#"[{"labels": {"alertname": "Signed"}}]"#.to_owned();
    let (status, body) = call(other, "POST", &alerts_path, Some(alert.clone()), json!({}));
    assert_eq!(status, 200, "{body}");
    for (server, headers) in [(other, json!({})), (owner, own.clone())] {
        let (status, body) = call(server, "GET", &alerts_path, None, headers);
        assert_eq!(status, 200, "{body}");
        let listed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed[0]["labels"]["alertname"], "Signed", "{listed}");
    }
    // Tampered: refused by the process it reached, nothing stored.
    let spec = json!({"url": format!("{}{alerts_path}", other.url), "method": "POST",
        "body": r#"[{"labels": {"alertname": "Tampered"}}]"#, "headers": {"Content-Type": "application/json"},
        "access_key": key_id, "secret_key": secret, "tamper": "body"});
    let (status, headers, body) = signed(spec);
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["x-amzn-errortype"], "SignatureDoesNotMatch", "{body}");
    let (_, body) = call(owner, "GET", &alerts_path, None, own);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap().as_array().map(Vec::len), Some(1), "{body}");
    drop((gateway, a1, a2, dir));
    drop(mock);
}
