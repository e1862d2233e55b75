//! Alerting rules side by side with Prometheus 3.5.3: the same rules file
//! loaded into a real Prometheus (server mode, remote-write receiver on)
//! and into `promlake serve`, the same input written live to both, each
//! sending to its own capturing Alertmanager stub. The alerts sent
//! (labels, annotations, firing then resolved, once each with a 1 m resend
//! delay) and the `ALERTS` series through pending, firing,
//! `keep_firing_for` and resolution match within one evaluation interval.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use schemas::prompb;
use serde_json::{Value, json};

use crate::harness::{TestServer, client, post_remote_write, prometheus_server, prometheus_server_with};

const INTERVAL_MS: i64 = 1000;

const RULES: &str = r#"groups:
  - name: load
    interval: 1s
    rules:
      - record: job:load:max
        expr: max by (job) (load)
      - alert: HighLoad
        expr: load > 5
        for: 3s
        keep_firing_for: 2s
        labels:
          severity: page
          team: "{{ $labels.job }}-oncall"
        annotations:
          summary: "{{ $labels.instance }} load is {{ $value }}"
          description: 'load is {{ printf "%.1f" $value }}, {{ with query "count(load)" }}{{ . | first | value }}{{ end }} instances'
"#;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An Alertmanager stub: records every alert posted to `/api/v2/alerts`
/// with its arrival time (ms).
#[derive(Clone, Default)]
struct Capture {
    alerts: Arc<Mutex<Vec<(i64, Value)>>>,
}

impl Capture {
    async fn start() -> (Self, SocketAddr) {
        let capture = Self::default();
        let state = capture.clone();
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            axum::routing::post(move |body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let alerts: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array of alerts");
                    let at = now_ms();
                    state.alerts.lock().unwrap().extend(alerts.into_iter().map(|a| (at, a)));
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (capture, addr)
    }

    /// (arrival, "firing"/"resolved", labels, annotations) of each alert:
    /// resolved when its `endsAt` is not after its arrival.
    fn received(&self) -> Vec<(i64, &'static str, Value, Value)> {
        self.alerts
            .lock()
            .unwrap()
            .iter()
            .map(|(at, a)| {
                let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
                let status = if ends.timestamp_millis() <= *at { "resolved" } else { "firing" };
                (*at, status, a["labels"].clone(), a["annotations"].clone())
            })
            .collect()
    }
}

fn write_request(values: &[(&str, f64)], ts: i64) -> Vec<u8> {
    let request = prompb::WriteRequest {
        timeseries: values
            .iter()
            .map(|(instance, value)| prompb::TimeSeries {
                labels: vec![
                    prompb::Label { name: "__name__".into(), value: "load".into() },
                    prompb::Label { name: "instance".into(), value: (*instance).into() },
                    prompb::Label { name: "job".into(), value: "node".into() },
                ],
                samples: vec![prompb::Sample { value: *value, timestamp: ts }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
}

/// `ALERTS` at `time_ms` from a Prometheus-compatible query API: (instance,
/// alertstate) pairs.
async fn alerts_at(api: &str, time_ms: i64) -> Vec<(String, String)> {
    let time = format!("{:.3}", time_ms as f64 / 1000.0);
    let resp =
        client().get(format!("{api}/query")).query(&[("query", "ALERTS"), ("time", &time)]).send().await.unwrap();
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "success", "{api}: {body}");
    let mut out: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = &s["metric"];
            assert_eq!(m["severity"], "page", "{m}");
            (m["instance"].as_str().unwrap().to_owned(), m["alertstate"].as_str().unwrap().to_owned())
        })
        .collect();
    out.sort();
    out
}

/// `/rules` and `/alerts` of each API, read at once, with what differs
/// between two servers by nature blanked: times (evaluation times, times
/// of evaluation slots, which differ by up to one interval) and the file
/// (a path for Prometheus, the namespace for PromLake).
async fn rules_and_alerts(apis: &[String; 2]) -> [(Value, Value); 2] {
    let get = |url: String| async move {
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let mut body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(body["status"], "success", "{url}: {body}");
        blank(&mut body["data"]);
        body["data"].take()
    };
    let (a, b, c, d) = tokio::join!(
        get(format!("{}/rules", apis[0])),
        get(format!("{}/alerts", apis[0])),
        get(format!("{}/rules", apis[1])),
        get(format!("{}/alerts", apis[1])),
    );
    [(a, b), (c, d)]
}

fn blank(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    "lastEvaluation" | "activeAt" | "keepFiringSince" => *v = "<time>".into(),
                    "evaluationTime" => *v = json!(0),
                    "file" => *v = "<file>".into(),
                    _ => blank(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(blank),
        _ => {}
    }
}

/// Two capturing Alertmanager stubs, the rules file for Prometheus with a
/// config sending to the first, and a PromLake config (`[ruler]` with
/// `ruler` added) sending to the second.
struct SideBySide {
    prometheus_am: Capture,
    promlake_am: Capture,
    prometheus_config: String,
    promlake_config: std::path::PathBuf,
}

async fn side_by_side(dir: &std::path::Path, rules: &str, ruler: &str) -> SideBySide {
    let (prometheus_am, prometheus_am_addr) = Capture::start().await;
    let (promlake_am, promlake_am_addr) = Capture::start().await;
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let prometheus_config = format!(
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{prometheus_am_addr}']\n"
    );
    let promlake_config = dir.join("promlake.toml");
    std::fs::write(
        &promlake_config,
        format!("[ruler]\nevaluation_interval_seconds = 1\nalertmanager_url = \"http://{promlake_am_addr}\"\n{ruler}"),
    )
    .unwrap();
    SideBySide { prometheus_am, promlake_am, prometheus_config, promlake_config }
}

/// Writes `load` for each (instance, value) to every target every 250 ms
/// for `ms`; returns the first sample's timestamp.
async fn write_for(http: &reqwest::Client, targets: &[String], values: &[(&str, f64)], ms: u64) -> i64 {
    let started = std::time::Instant::now();
    let mut first = None;
    while started.elapsed() < Duration::from_millis(ms) {
        let ts = now_ms();
        first.get_or_insert(ts);
        let body = write_request(values, ts);
        for url in targets {
            let resp = post_remote_write(http, url, &body).await.unwrap();
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    first.unwrap_or_else(now_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_match_prometheus_through_pending_firing_keep_firing_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let SideBySide { prometheus_am, promlake_am, prometheus_config, promlake_config: config } =
        side_by_side(dir.path(), RULES, "").await;
    // Prometheus, rules loaded at start.
    let (_prometheus, prometheus) = prometheus_server(dir.path(), &prometheus_config).await;
    // PromLake, the same file as a rule groups namespace.
    let server = TestServer::spawn_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let ws = server.create_workspace("alerts").await;
    let promlake = format!("{}/workspaces/{ws}/api/v1", server.url);
    let http = client();
    server.create_rule_groups_namespace(&ws, "load", RULES).await;

    // The same input to both, every 250 ms: instance a's load low, high
    // for 8 s, low again; instance b always low.
    let targets = [format!("{prometheus}/api/v1/write"), format!("{promlake}/remote_write")];
    let phase = |ms: u64, a: f64| {
        let (http, targets) = (http.clone(), targets.clone());
        async move { write_for(&http, &targets, &[("a", a), ("b", 1.0)], ms).await }
    };
    // Low long enough for both to evaluate a few times (their `for` state
    // restored, which both do after the second evaluation).
    phase(6000, 1.0).await;
    // While the input is written, the rules and alerts APIs of both are
    // read at the same moments: pending, firing, kept firing, resolved.
    let apis = [format!("{prometheus}/api/v1"), promlake.clone()];
    let high = tokio::spawn(phase(8000, 10.0));
    let started = std::time::Instant::now();
    let mut snapshots = Vec::new();
    for (at_ms, state) in [(2300, "pending"), (6500, "firing")] {
        tokio::time::sleep(Duration::from_millis(at_ms).saturating_sub(started.elapsed())).await;
        snapshots.push((state, rules_and_alerts(&apis).await));
    }
    let high_at = high.await.unwrap();
    let low = tokio::spawn(phase(9000, 1.0));
    let started = std::time::Instant::now();
    for (at_ms, state) in [(1000, "keep_firing_for"), (6000, "resolved")] {
        tokio::time::sleep(Duration::from_millis(at_ms).saturating_sub(started.elapsed())).await;
        snapshots.push((state, rules_and_alerts(&apis).await));
    }
    let low_at = low.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for (state, [(prom_rules, prom_alerts), (lake_rules, lake_alerts)]) in &snapshots {
        assert_eq!(lake_rules, prom_rules, "/api/v1/rules when {state}");
        assert_eq!(lake_alerts, prom_alerts, "/api/v1/alerts when {state}");
    }
    let rule = |i: usize| snapshots[i].1[1].0["groups"][0]["rules"][1].clone();
    assert_eq!(rule(0)["state"], "pending", "{}", rule(0));
    assert_eq!(rule(1)["state"], "firing");
    assert_eq!(rule(2)["alerts"][0]["keepFiringSince"], "<time>", "{}", rule(2));
    assert_eq!((rule(3)["state"].clone(), rule(3)["alerts"].clone()), (json!("inactive"), json!([])));

    // Sent: a firing then a resolved notification for instance a, once
    // each (the resend delay is 1 m), with the same labels and annotations.
    let want_labels =
        json!({"alertname": "HighLoad", "instance": "a", "job": "node", "severity": "page", "team": "node-oncall"});
    let want_annotations = json!({"summary": "a load is 10", "description": "load is 10.0, 2 instances"});
    let mut times = Vec::new();
    for (who, capture) in [("Prometheus", &prometheus_am), ("PromLake", &promlake_am)] {
        let got = capture.received();
        let statuses: Vec<&str> = got.iter().map(|(_, s, _, _)| *s).collect();
        assert_eq!(statuses, ["firing", "resolved"], "{who} sent {got:?}");
        for (_, _, labels, annotations) in &got {
            assert_eq!(labels, &want_labels, "{who}");
            assert_eq!(annotations, &want_annotations, "{who}");
        }
        // Fires `for` after the load went high (plus up to an interval
        // for the first evaluation to see it); resolves `keep_firing_for`
        // after it went low, likewise.
        let (fired, resolved) = (got[0].0, got[1].0);
        times.push((fired, resolved));
        eprintln!(
            "{who}: fired {} ms after the load went high, resolved {} ms after it went low",
            fired - high_at,
            resolved - low_at
        );
        let fire_delay = fired - high_at;
        assert!((3000..3000 + 2 * INTERVAL_MS + 500).contains(&fire_delay), "{who} fired after {fire_delay} ms");
        let resolve_delay = resolved - low_at;
        assert!(
            (2000..2000 + 2 * INTERVAL_MS + 500).contains(&resolve_delay),
            "{who} resolved after {resolve_delay} ms"
        );
    }
    let (prom, lake) = (times[0], times[1]);
    assert!((prom.0 - lake.0).abs() <= INTERVAL_MS + 500, "fired: Prometheus {} PromLake {}", prom.0, lake.0);
    assert!((prom.1 - lake.1).abs() <= INTERVAL_MS + 500, "resolved: Prometheus {} PromLake {}", prom.1, lake.1);

    // ALERTS, queried from each, at times where both must agree: pending
    // between the evaluations that saw the load high and the end of `for`,
    // firing, still firing through `keep_firing_for`, then gone.
    let checks = [
        (high_at - 1000, vec![]),
        (high_at + 2500, vec![("a".to_owned(), "pending".to_owned())]),
        (high_at + 6500, vec![("a".to_owned(), "firing".to_owned())]),
        (low_at + 1000, vec![("a".to_owned(), "firing".to_owned())]),
        (low_at + 6000, vec![]),
    ];
    for (at, want) in checks {
        assert_eq!(alerts_at(&format!("{prometheus}/api/v1"), at).await, want, "Prometheus at {}", at - high_at);
        assert_eq!(alerts_at(&promlake, at).await, want, "PromLake at {}", at - high_at);
    }
}

/// Restart in the middle of a `for`: Prometheus and PromLake, both killed
/// while the alert is pending and started again, restore its `for` state
/// from `ALERTS_FOR_STATE` (grace period 2 s for the test, 10 m by
/// default) and fire at the same time — earlier than a fresh start would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_for_fires_when_prometheus_does() {
    const RULES: &str = "groups:
  - name: slow
    interval: 1s
    rules:
      - alert: Slow
        expr: load > 5
        for: 20s
";
    let dir = tempfile::tempdir().unwrap();
    let SideBySide { prometheus_am, promlake_am, prometheus_config, promlake_config: config } =
        side_by_side(dir.path(), RULES, "for_grace_period_seconds = 2\n").await;
    let grace = ["--rules.alert.for-grace-period=2s"];
    let (prom, mut prometheus) = prometheus_server_with(dir.path(), &prometheus_config, &grace).await;
    let data = dir.path().join("data");
    let mut server = TestServer::spawn_with(&data, &["--config", config.to_str().unwrap()]);
    let ws = server.create_workspace("restart").await;
    server.create_rule_groups_namespace(&ws, "slow", RULES).await;
    let http = client();
    let targets = |prometheus: &str, server: &TestServer| {
        [format!("{prometheus}/api/v1/write"), format!("{}/workspaces/{ws}/api/v1/remote_write", server.url)]
    };
    // Both restored their (empty) state and write ALERTS_FOR_STATE.
    write_for(&http, &targets(&prometheus, &server), &[("a", 1.0)], 4000).await;
    let high_at = write_for(&http, &targets(&prometheus, &server), &[("a", 10.0)], 9000).await;
    // Pending for about 9 s of 20: both go down for 4 s.
    drop(prom);
    server.kill();
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let (_prom, restarted) = prometheus_server_with(dir.path(), &prometheus_config, &grace).await;
    prometheus = restarted;
    let server = TestServer::spawn_with(&data, &["--config", config.to_str().unwrap()]);
    let up_at = now_ms();
    write_for(&http, &targets(&prometheus, &server), &[("a", 10.0)], 24_000).await;

    let fired = |capture: &Capture| capture.received().iter().find(|(_, s, _, _)| *s == "firing").map(|(t, ..)| *t);
    let (prom_fired, lake_fired) = (fired(&prometheus_am), fired(&promlake_am));
    let (Some(prom_fired), Some(lake_fired)) = (prom_fired, lake_fired) else {
        panic!("not fired: Prometheus {prom_fired:?}, PromLake {lake_fired:?}");
    };
    eprintln!(
        "high at 0, down {}..{} ms; Prometheus fired at {} ms, PromLake at {} ms",
        down_at - high_at,
        up_at - high_at,
        prom_fired - high_at,
        lake_fired - high_at
    );
    // Pending time before the restart counted: well before `for` after the
    // restart (a fresh start would fire at up_at + 20 s or later).
    assert!(prom_fired < up_at + 20_000 - 3000, "Prometheus restored its for state");
    assert!(lake_fired < up_at + 20_000 - 3000, "PromLake fired {} ms after restarting", lake_fired - up_at);
    // Not before `for` plus the downtime (the outage does not count).
    assert!(lake_fired >= high_at + 20_000 + (up_at - down_at) - 1000, "PromLake fired too early");
    // At Prometheus's time, within one interval plus the start-up skew.
    assert!(
        (prom_fired - lake_fired).abs() <= 2 * INTERVAL_MS + 500,
        "Prometheus fired at {prom_fired}, PromLake at {lake_fired}"
    );
}

/// A rule that fails and alerts that cannot be sent are recorded as the
/// workspace's events in the `_events` topic, in AMP's log shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_recorded_as_the_workspaces_events() {
    const RULES: &str = "groups:
  - name: broken
    interval: 1s
    rules:
      - record: same
        expr: load
        labels: {instance: same}
      - alert: Always
        expr: vector(1)
";
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every send fails.
    let dead = crate::harness::free_port();
    let config = dir.path().join("promlake.toml");
    std::fs::write(
        &config,
        format!("[ruler]\nevaluation_interval_seconds = 1\nalertmanager_url = \"http://127.0.0.1:{dead}\"\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::spawn_with(&data, &["--config", config.to_str().unwrap()]);
    let ws = server.create_workspace("events").await;
    server.create_rule_groups_namespace(&ws, "ns", RULES).await;
    let targets = [format!("{}/workspaces/{ws}/api/v1/remote_write", server.url)];
    write_for(&client(), &targets, &[("a", 1.0), ("b", 2.0)], 4000).await;
    assert!(server.terminate().success());

    let log = log_embedded::EmbeddedLog::open(&data.join("log"), log_embedded::EmbeddedLogConfig::default()).unwrap();
    let fetched = common::log::Log::fetch(&*log, schemas::topics::EVENTS_TOPIC, 0, 0, 16 << 20, Duration::ZERO)
        .await
        .expect("the _events topic");
    let events: Vec<Value> = fetched
        .records
        .iter()
        .map(|r| {
            assert_eq!(r.key.as_deref(), Some(ws.as_bytes()), "keyed by workspace");
            serde_json::from_slice(r.value.as_deref().unwrap()).unwrap()
        })
        .collect();
    let failed = events.iter().find(|e| e["message"]["log"] == "Evaluating rule failed").expect("a rule failure");
    assert_eq!(failed["workspaceId"], ws.as_str());
    assert_eq!(failed["component"], "ruler");
    assert_eq!(failed["message"]["name"], "same");
    assert_eq!(failed["message"]["namespace"], "ns");
    assert_eq!(failed["message"]["group"], "broken");
    assert_eq!(failed["message"]["err"], "vector contains metrics with the same labelset after applying rule labels");
    let send = events.iter().find(|e| e["message"]["log"] == "Error sending alerts").expect("a send failure");
    assert_eq!(send["message"]["level"], "ERROR");
    assert!(send["message"]["err"].as_str().unwrap().contains(&dead.to_string()), "{send}");
    common::log::Log::close(&*log).await.unwrap();
}
