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

use std::sync::Arc;
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

/// PromLake's Alertmanager running `config` (on the entered runtime).
fn start_promlake(config: &str) -> Arc<alerting::service::Alertmanager> {
    let data = format!("alertmanager_config: |\n{}", config.lines().map(|l| format!("  {l}\n")).collect::<String>());
    let definition = amconfig::parse_definition(&data).unwrap_or_else(|e| panic!("{e}"));
    alerting::service::Alertmanager::start(
        "ws-1",
        &definition,
        &data,
        AlertingLimits::default(),
        EXTERNAL_URL,
        Arc::new(alerting::notify::HttpNotifier::new()),
        Arc::new(SystemClock),
        Arc::new(alerting::state::InMemory),
        Vec::new(),
    )
}

/// What each side sent: (seconds since the start, receiver path, body).
type Sent = Vec<(f64, String, Value)>;

/// Runs `config` (with `{SINK}`/`{SIDE}` placeholders) on both sides,
/// drives `steps` (built from the stream's start time) and collects what
/// each sent within `seconds`.
fn run_side_by_side(config: &str, steps: impl FnOnce(i64) -> Vec<(f64, Step)>, seconds: u64) -> (Sent, Sent) {
    let started = Instant::now();
    let sink = common::testing::WebhookSink::start();
    let sink_url = sink.url();
    let am_config = config.replace("{SINK}", &sink_url).replace("{SIDE}", "am");
    let pl_config = config.replace("{SINK}", &sink_url).replace("{SIDE}", "pl");
    let am = start_alertmanager(&am_config, &[&format!("--web.external-url={EXTERNAL_URL}")]);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let pl = start_promlake(&pl_config);
    let t0 = Instant::now();
    let start = now_ms();
    let mut am_silence = String::new();
    let mut pl_silence = String::new();
    for (at, step) in steps(start) {
        if let Some(wait) = Duration::from_secs_f64(at).checked_sub(t0.elapsed()) {
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
    std::thread::sleep(Duration::from_secs(seconds).saturating_sub(t0.elapsed()));
    for e in pl.delivery_errors() {
        eprintln!("PromLake's delivery error: {e:?}");
    }
    let got = sink.received();
    let side = |s: &str| -> Sent {
        got.iter()
            .filter_map(|(p, at, v)| {
                let t = at.saturating_duration_since(started).as_secs_f64();
                p.strip_prefix(&format!("/{s}/")).map(|r| (t, r.to_owned(), v.clone()))
            })
            .collect()
    };
    (side("am"), side("pl"))
}

/// The differences between what Alertmanager and PromLake sent: the same
/// bodies to the same receivers, within 1 s of each other.
fn differences(theirs: &Sent, ours: &Sent) -> Vec<String> {
    let mut ours = ours.clone();
    let mut problems = Vec::new();
    for (t, r, v) in theirs {
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
    problems
}

#[test]
fn notifications_match_alertmanager_in_content_and_time() {
    let steps = |start: i64| {
        let alert =
            |labels: Value| json!({"labels": labels, "annotations": {"summary": "s"}, "startsAt": rfc3339(start)});
        let disk = |i: &str| alert(json!({"alertname": "Disk", "instance": i, "team": "db"}));
        let down = alert(json!({"alertname": "Down", "instance": "x", "severity": "page"}));
        let slow = alert(json!({"alertname": "Slow", "severity": "warning", "cluster": "eu"}));
        let crit = alert(json!({"alertname": "Crit", "severity": "critical", "cluster": "eu"}));
        let muted = alert(json!({"alertname": "Muted", "team": "muted"}));
        let night = alert(json!({"alertname": "Night", "team": "night"}));
        vec![
            (0.0, Step::Post(vec![(disk("a"), false), (disk("b"), false), (down.clone(), false)])),
            (0.0, Step::Post(vec![(muted, false), (night, false)])),
            (0.5, Step::Post(vec![(slow, false), (crit.clone(), false)])),
            (3.5, Step::Post(vec![(disk("c"), false)])),
            (4.0, Step::Silence("Down")),
            (7.5, Step::Post(vec![(disk("b"), true)])),
            (8.0, Step::Expire),
            (8.5, Step::Post(vec![(crit, true)])),
            (14.0, Step::Post(vec![(down, true)])),
        ]
    };
    let (theirs, ours) = run_side_by_side(CONFIG, steps, 20);
    assert!(theirs.len() >= 8, "Alertmanager sent too little to compare: {theirs:#?}");
    let problems = differences(&theirs, &ours);
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

const RECEIVERS: &str = r#"
route:
  receiver: slack
  group_by: [alertname]
  group_wait: 1s
  group_interval: 3s
  routes:
    - matchers: ['severity="page"']
      receiver: pager
receivers:
  - name: slack
    slack_configs:
      - api_url: '{SINK}/{SIDE}/slack'
        channel: '#alerts'
        send_resolved: true
        fields: [{title: 'Instance', value: '{{ .CommonLabels.instance }}'}, {title: Count, value: '{{ len .Alerts }}', short: true}]
        actions: [{type: button, text: 'Runbook', url: 'http://runbook/{{ .GroupLabels.alertname }}'}]
  - name: pager
    pagerduty_configs:
      - routing_key: 'key-{{ .GroupLabels.alertname }}'
        url: '{SINK}/{SIDE}/pagerduty'
        severity: '{{ .CommonLabels.severity }}'
        class: disk
        details: {instance: '{{ .CommonLabels.instance }}', count: '{{ len .Alerts }}'}
        links: [{href: 'http://dash/{{ .GroupLabels.alertname }}', text: dashboard}]
"#;

#[test]
fn slack_and_pagerduty_payloads_match_alertmanager() {
    let steps = |start: i64| {
        let alert = |labels: Value| json!({"labels": labels, "annotations": {"summary": "<b>disk</b> & more", "description": "d"}, "startsAt": rfc3339(start)});
        let disk = |i: &str| alert(json!({"alertname": "Disk", "instance": i, "severity": "warning"}));
        let down = alert(json!({"alertname": "Down", "instance": "x", "severity": "page"}));
        vec![
            (0.0, Step::Post(vec![(disk("a"), false), (disk("b"), false), (down.clone(), false)])),
            (2.0, Step::Post(vec![(disk("b"), true), (down, true)])),
        ]
    };
    let (theirs, ours) = run_side_by_side(RECEIVERS, steps, 6);
    let receivers: std::collections::BTreeSet<&str> = theirs.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(receivers, ["pagerduty", "slack"].into(), "{theirs:#?}");
    assert!(theirs.iter().any(|(_, _, v)| v["event_action"] == "resolve"), "{theirs:#?}");
    let problems = differences(&theirs, &ours);
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

/// moto's SNS behind a botocore signature check (`sns_server.py`).
struct SnsServer {
    child: std::process::Child,
    port: u64,
    topic_arn: String,
    queue_url: String,
}

impl Drop for SnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SNS_KEY: &str = "AKIDPROMLAKETEST";
const SNS_SECRET: &str = "promlake-test-secret";

fn python() -> std::path::PathBuf {
    common::testing::env_or_setup_script("PROMLAKE_PYTHON", "scripts/python-env")
}

fn sns_server() -> SnsServer {
    use std::io::BufRead as _;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sns_server.py");
    let mut child = std::process::Command::new(python())
        .arg(&script)
        .args([SNS_KEY, SNS_SECRET, "us-east-1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start sns_server.py: {e}"));
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("sns_server.py said {line:?}: {e}"));
    SnsServer {
        child,
        port: v["port"].as_u64().unwrap_or_default(),
        topic_arn: v["topic_arn"].as_str().unwrap_or_default().to_owned(),
        queue_url: v["queue_url"].as_str().unwrap_or_default().to_owned(),
    }
}

impl SnsServer {
    /// The first `n` notifications the queue received (SNS's JSON envelopes).
    fn receive(&self, n: usize) -> Vec<Value> {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sns_server.py");
        let out = std::process::Command::new(python())
            .arg(&script)
            .args(["receive", &self.port.to_string(), &self.queue_url, &n.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn sns_messages_are_signed_and_match_alertmanager() {
    let sns = sns_server();
    let config = format!(
        "route: {{receiver: sns, group_by: [alertname], group_wait: 1s}}
receivers:
  - name: sns
    sns_configs:
      - api_url: 'http://127.0.0.1:{}'
        topic_arn: '{}'
        sigv4: {{region: us-east-1, access_key: {SNS_KEY}, secret_key: {SNS_SECRET}}}
        attributes: {{team: '{{{{ .CommonLabels.team }}}}', status: '{{{{ .Status }}}}'}}
",
        sns.port, sns.topic_arn
    );
    let steps = |start: i64| {
        let alert = json!({"labels": {"alertname": "Disk", "instance": "a", "team": "db"},
            "annotations": {"summary": "disk full", "description": "d"}, "startsAt": rfc3339(start)});
        vec![(0.0, Step::Post(vec![(alert, false)]))]
    };
    let _ = run_side_by_side(&config, steps, 3);
    let messages = sns.receive(2);
    assert_eq!(messages.len(), 2, "both sides' notifications reach the queue: {messages:#?}");
    let essence = |m: &Value| (m["Subject"].clone(), m["Message"].clone(), m["MessageAttributes"].clone());
    assert_eq!(essence(&messages[0]), essence(&messages[1]), "PromLake's and Alertmanager's differ");
    assert_eq!(messages[0]["Subject"], "[FIRING:1] Disk (a db)");
    assert_eq!(messages[0]["MessageAttributes"]["team"]["Value"], "db");
}

#[test]
fn a_bad_signature_is_refused_and_recorded_not_retried() {
    let sns = sns_server();
    let config = format!(
        "route: {{receiver: sns, group_wait: 0s}}
receivers:
  - name: sns
    sns_configs:
      - api_url: 'http://127.0.0.1:{}'
        topic_arn: '{}'
        sigv4: {{region: us-east-1, access_key: {SNS_KEY}, secret_key: wrong-secret}}
",
        sns.port, sns.topic_arn
    );
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let pl = start_promlake(&config);
    let body = json!([{"labels": {"alertname": "A"}}]).to_string();
    assert_eq!(rt.block_on(pl.post_alerts(body.as_bytes())), Ok(alerting::service::PostOutcome::Stored));
    let deadline = Instant::now() + Duration::from_secs(20);
    while pl.delivery_errors().is_empty() {
        assert!(Instant::now() < deadline, "no delivery error recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let errors = pl.delivery_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("unrecoverable error after 1 attempts: unexpected status code 403: The request signature we calculated does not match"), "{errors:#?}");
    assert!(sns.receive(1).is_empty(), "nothing was published");
}

/// aiosmtpd with STARTTLS and AUTH required (`smtp_server.py`), the
/// messages it received.
struct SmtpServer {
    child: std::process::Child,
    port: u64,
    received: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_server(user: &str, password: &str) -> SmtpServer {
    use std::io::BufRead as _;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
    let mut child = std::process::Command::new(python())
        .arg(&script)
        .args([user, password])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start smtp_server.py: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("smtp_server.py said {first:?}: {e}"));
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(v);
            }
        }
    });
    SmtpServer { child, port: v["port"].as_u64().unwrap_or_default(), received }
}

#[test]
fn emails_go_through_starttls_and_auth_and_match_alertmanager() {
    let smtp = smtp_server("alert", "s3cret");
    let config = format!(
        "route: {{receiver: mail, group_by: [alertname], group_wait: 1s, group_interval: 2s}}
receivers:
  - name: mail
    email_configs:
      - to: 'oncall@example.org, Team <team@example.org>'
        from: 'Alertmanager <am@example.org>'
        smarthost: '127.0.0.1:{}'
        auth_username: alert
        auth_password: s3cret
        tls_config: {{insecure_skip_verify: true}}
        text: '{{{{ template \"email.default.subject\" . }}}}{{{{ range .Alerts }}}} {{{{ .Labels.instance }}}}{{{{ end }}}} – été'
        headers: {{x-team: 'ops {{{{ .GroupLabels.alertname }}}} ☎'}}
",
        smtp.port
    );
    let steps = |start: i64| {
        let alert = |i: &str| json!({"labels": {"alertname": "Disk", "instance": i}, "annotations": {"summary": "full"}, "startsAt": rfc3339(start)});
        vec![(0.0, Step::Post(vec![(alert("a"), false), (alert("b"), false)]))]
    };
    let _ = run_side_by_side(&config, steps, 4);
    let got = smtp.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(got.len(), 2, "one email from each side: {got:#?}");
    let essence = |m: &Value| {
        let text = m["parts"].as_array().and_then(|p| p.iter().find(|p| p["content_type"] == "text/plain")).cloned();
        (
            m["mail_from"].clone(),
            m["rcpt_tos"].clone(),
            m["subject"].clone(),
            m["from"].clone(),
            m["to"].clone(),
            m["headers"]["X-Team"].clone(),
            m["content_type"].clone(),
            text,
            m["parts"].as_array().map(|p| p.iter().map(|p| p["content_type"].clone()).collect::<Vec<_>>()),
        )
    };
    assert_eq!(essence(&got[0]), essence(&got[1]), "PromLake's and Alertmanager's emails differ");
    assert_eq!(got[0]["subject"], "[FIRING:2] Disk ");
    assert_eq!(got[0]["rcpt_tos"], json!(["oncall@example.org", "team@example.org"]));
    assert_eq!(got[0]["headers"]["X-Team"], "ops Disk ☎");
    // The HTML parts (html/template's escaping is not reproduced) both
    // list the alerts.
    for m in &got {
        let html = m["parts"].as_array().and_then(|p| p.iter().find(|p| p["content_type"] == "text/html")).cloned();
        let html = html.map(|h| h["body"].as_str().unwrap_or_default().to_owned()).unwrap_or_default();
        assert!(html.contains("[FIRING:2] Disk") && html.contains("instance = b"), "{html}");
    }
}
