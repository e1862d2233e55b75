//! PromLake's Alertmanager side by side with the real Alertmanager 0.33.1:
//! the same configuration (webhook receivers pointing at one local sink,
//! under a path per side) and the same timed stream of alerts and
//! silences go to both; the webhook notifications each sends — whole
//! version-4 payloads: receiver, group key and labels, status, alerts with
//! their status and times, `truncatedAlerts`, notification reason — must
//! be the same and arrive within 1 s of each other.
//!
//! The stream covers grouping (`group_by`, `group_wait`, `group_interval`,
//! `repeat_interval`), `continue`, `max_alerts`, inhibition with `equal`
//! (and its end when the source resolves), a silence added and expired
//! mid-stream, resolution (and a receiver that does not send resolved
//! alerts), and mute/active time intervals.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::clock::SystemClock;
use common::limits::AlertingLimits;
use serde_json::{Value, json};
use support::{http, start_alertmanager};

const CONFIG: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: [alertname]
  group_wait: 2s
  group_interval: 4s
  repeat_interval: 10s
  routes:
    - matchers: ['team="db"']
      receiver: db
      continue: true
    - matchers: ['team="db"']
      receiver: default
      group_by: [team]
    - matchers: ['severity="page"']
      receiver: pager
      group_by: [alertname, instance]
      group_wait: 1s
    - matchers: ['team="muted"']
      mute_time_intervals: [always]
    - matchers: ['team="night"']
      active_time_intervals: [never]
time_intervals:
  - name: always
    time_intervals: [{times: [{start_time: '00:00', end_time: '24:00'}]}]
  - name: never
    time_intervals: [{years: ['1999']}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
receivers:
  - name: default
    webhook_configs: [{url: '{SINK}/{SIDE}/default'}]
  - name: db
    webhook_configs: [{url: '{SINK}/{SIDE}/db', max_alerts: 1}]
  - name: pager
    webhook_configs: [{url: '{SINK}/{SIDE}/pager', send_resolved: false}]
"#;

const EXTERNAL_URL: &str = "http://alertmanager.test";

/// A notification as received: seconds since the start, side, body.
type Received = (f64, String, Value);

/// A webhook sink recording what it receives.
fn start_sink(t0: Instant) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let url = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0usize);
                    if body.len() < len {
                        continue;
                    }
                    let at = t0.elapsed().as_secs_f64();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let value: Value = serde_json::from_str(&body[..len]).unwrap_or(Value::Null);
                    sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((at, path, value));
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                }
            });
        }
    });
    (url, got)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    use common::clock::Clock as _;
    SystemClock.now_ms()
}

/// One step of the stream.
enum Step {
    /// Alerts posted (labels, annotations, resolved now).
    Post(Vec<(Value, bool)>),
    /// A silence on `alertname` created.
    Silence(&'static str),
    /// The silence expired.
    Expire,
}

#[test]
fn notifications_match_alertmanager_in_content_and_time() {
    let t0 = Instant::now();
    let (sink, got) = start_sink(t0);
    let am_config = CONFIG.replace("{SINK}", &sink).replace("{SIDE}", "am");
    let pl_config = CONFIG.replace("{SINK}", &sink).replace("{SIDE}", "pl");
    let am = start_alertmanager(&am_config, &[&format!("--web.external-url={EXTERNAL_URL}")]);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let data = format!("alertmanager_config: |\n{}", pl_config.lines().map(|l| format!("  {l}\n")).collect::<String>());
    let definition = amconfig::parse_definition(&data).unwrap_or_else(|e| panic!("{e}"));
    let pl = alerting::service::Alertmanager::start(
        "ws-1",
        &definition,
        &data,
        AlertingLimits::default(),
        EXTERNAL_URL,
        Arc::new(alerting::notify::HttpNotifier::new()),
        Arc::new(SystemClock),
        Arc::new(alerting::state::InMemory),
        Vec::new(),
    );

    let start = now_ms();
    let alert = |labels: Value| json!({"labels": labels, "annotations": {"summary": "s"}, "startsAt": rfc3339(start)});
    let disk = |i: &str| alert(json!({"alertname": "Disk", "instance": i, "team": "db"}));
    let down = alert(json!({"alertname": "Down", "instance": "x", "severity": "page"}));
    let slow = alert(json!({"alertname": "Slow", "severity": "warning", "cluster": "eu"}));
    let crit = alert(json!({"alertname": "Crit", "severity": "critical", "cluster": "eu"}));
    let muted = alert(json!({"alertname": "Muted", "team": "muted"}));
    let night = alert(json!({"alertname": "Night", "team": "night"}));
    let steps: Vec<(f64, Step)> = vec![
        (0.0, Step::Post(vec![(disk("a"), false), (disk("b"), false), (down.clone(), false)])),
        (0.0, Step::Post(vec![(muted, false), (night, false)])),
        (0.5, Step::Post(vec![(slow, false), (crit.clone(), false)])),
        (3.5, Step::Post(vec![(disk("c"), false)])),
        (4.0, Step::Silence("Down")),
        (7.5, Step::Post(vec![(disk("b"), true)])),
        (8.0, Step::Expire),
        (8.5, Step::Post(vec![(crit, true)])),
        (14.0, Step::Post(vec![(down, true)])),
    ];
    let mut am_silence = String::new();
    let mut pl_silence = String::new();
    for (at, step) in steps {
        let due = Duration::from_secs_f64(at);
        if let Some(wait) = due.checked_sub(t0.elapsed().saturating_sub(Duration::ZERO)) {
            std::thread::sleep(wait);
        }
        let now = now_ms();
        match step {
            Step::Post(alerts) => {
                let body: Vec<Value> = alerts
                    .into_iter()
                    .map(|(mut a, resolved)| {
                        if resolved {
                            a["endsAt"] = json!(rfc3339(now));
                        }
                        a
                    })
                    .collect();
                let body = serde_json::to_vec(&body).unwrap_or_default();
                let answer = http("POST", &format!("{}/api/v2/alerts", am.url), &body);
                assert_eq!(answer.map(|a| a.0), Some(200));
                assert_eq!(rt.block_on(pl.post_alerts(&body)), Ok(alerting::service::PostOutcome::Stored));
            }
            Step::Silence(name) => {
                let ends = rfc3339(now + 3_600_000);
                let body = json!({
                    "matchers": [{"name": "alertname", "value": name, "isRegex": false, "isEqual": true}],
                    "startsAt": rfc3339(now), "endsAt": ends, "createdBy": "test", "comment": "mid-stream"
                });
                let answer = http("POST", &format!("{}/api/v2/silences", am.url), body.to_string().as_bytes())
                    .unwrap_or_else(|| panic!("no answer"));
                let id: Value = serde_json::from_str(&answer.1).unwrap_or(Value::Null);
                am_silence = id["silenceID"].as_str().unwrap_or_default().to_owned();
                let silence = alerting::silence::Silence {
                    id: String::new(),
                    matchers: amconfig::parse_matchers(&format!("{{alertname=\"{name}\"}}")).unwrap_or_default(),
                    starts_at_ms: Some(now),
                    ends_at_ms: now + 3_600_000,
                    updated_at_ms: 0,
                    created_by: "test".into(),
                    comment: "mid-stream".into(),
                };
                pl_silence = rt.block_on(pl.set_silence(silence)).unwrap_or_else(|e| panic!("{e:?}"));
            }
            Step::Expire => {
                let answer = http("DELETE", &format!("{}/api/v2/silence/{am_silence}", am.url), b"");
                assert_eq!(answer.map(|a| a.0), Some(200));
                rt.block_on(pl.expire_silence(&pl_silence)).unwrap_or_else(|e| panic!("{e:?}"));
            }
        }
    }
    std::thread::sleep(Duration::from_secs(20).saturating_sub(t0.elapsed()));
    let got = got.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let side = |s: &str| -> Vec<(f64, String, Value)> {
        got.iter()
            .filter_map(|(t, p, v)| p.strip_prefix(&format!("/{s}/")).map(|r| (*t, r.to_owned(), v.clone())))
            .collect()
    };
    let (theirs, mut ours) = (side("am"), side("pl"));
    assert!(theirs.len() >= 8, "Alertmanager sent too little to compare: {theirs:#?}");
    let mut problems = Vec::new();
    for (t, r, v) in &theirs {
        match ours.iter().position(|(_, r2, v2)| r2 == r && v2 == v) {
            Some(i) => {
                let (t2, _, _) = ours.remove(i);
                if (t2 - t).abs() > 1.0 {
                    problems.push(format!("{r} at {t:.2}s from Alertmanager, at {t2:.2}s from PromLake: {v}"));
                }
            }
            None => problems.push(format!("only Alertmanager sent, at {t:.2}s to {r}: {v}")),
        }
    }
    for (t, r, v) in &ours {
        problems.push(format!("only PromLake sent, at {t:.2}s to {r}: {v}"));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    // The stream exercised what it is meant to: max_alerts truncation,
    // a resolved notification, the inhibited alert once its source resolved.
    let all: Vec<&Value> = theirs.iter().map(|(_, _, v)| v).collect();
    assert!(all.iter().any(|v| v["truncatedAlerts"] == json!(2)));
    assert!(all.iter().any(|v| v["status"] == json!("resolved")));
    assert!(all.iter().any(|v| v["groupLabels"]["alertname"] == json!("Slow")));
    assert!(
        !all.iter().any(|v| v["commonLabels"]["team"] == json!("muted") || v["commonLabels"]["team"] == json!("night"))
    );
}
