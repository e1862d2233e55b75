//! `amconfig::parse_config` against the real `amtool check-config` 0.33.1:
//! on every configuration below both accept or both refuse, and where
//! Alertmanager's own checks refuse (not its YAML decoder), the messages
//! are the same. Receiver types PromLake does not deliver to are accepted
//! by amtool and refused by PromLake, by name.
//!
//! amtool is found in `$PROMLAKE_REF_BIN` (a directory), else fetched by
//! `../shared/tools/fetch-reference-binaries`; the test fails if it is missing.

use std::path::PathBuf;
use std::process::Command;

use amconfig::{ConfigError, parse_config};
use common::testing::reference_bin;

fn amtool() -> PathBuf {
    let path = reference_bin().join("amtool");
    assert!(path.is_file(), "amtool not found at {} (set PROMLAKE_REF_BIN)", path.display());
    path
}

/// amtool's verdict: `Ok(())` or `Err(message)`.
fn check_config(dir: &std::path::Path, i: usize, yaml: &str) -> Result<(), String> {
    let file = dir.join(format!("c{i}.yml"));
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("write: {e}"));
    let out = Command::new(amtool()).arg("check-config").arg(&file).output().unwrap_or_else(|e| panic!("amtool: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(());
    }
    let start = stdout.find("FAILED: ").unwrap_or_else(|| panic!("amtool failed without FAILED: {stdout}"));
    let rest = &stdout[start + "FAILED: ".len()..];
    // A multi-line YAML error runs up to the "Found:" block or the end.
    let end = rest.find("\n\n").or_else(|| rest.find("\nFound:")).unwrap_or(rest.len());
    Err(rest[..end].trim_end().to_owned())
}

const R: &str = "route: {receiver: r}\nreceivers: [{name: r}]\n";

fn cases() -> Vec<String> {
    let with_receiver = |configs: &str| format!("route: {{receiver: r}}\nreceivers:\n  - name: r\n{configs}");
    let with_route = |route: &str| format!("route:\n  receiver: r\n{route}receivers: [{{name: r}}, {{name: s}}]\n");
    let mut c: Vec<String> = vec![
        // Valid.
        R.into(),
        "global:\n  resolve_timeout: 1m\n  smtp_smarthost: smtp.example.com:587\n  smtp_from: am@example.com\n  slack_api_url: https://hooks.slack.com/services/x\n".to_owned() + R,
        with_route("  group_by: [alertname, cluster]\n  group_wait: 10s\n  group_interval: 1m\n  repeat_interval: 3h\n  routes:\n    - receiver: s\n      matchers: ['severity=\"page\"', 'team=~\"db|web\"']\n      continue: true\n    - match: {a: b}\n      match_re: {c: 'd.*'}\n      group_by: ['...']\n"),
        with_route("  routes:\n    - matchers: ['{a=b, c!=d}', 'e!~f', 'ü=x', '\"foo bar\"=baz']\n"),
        with_route("  routes:\n    - matchers: ['a=b c', 'x=~\\d+']\n"),
        "time_intervals:\n  - name: office\n    time_intervals:\n      - times: [{start_time: '09:00', end_time: '17:00'}]\n        weekdays: ['monday:friday']\n        days_of_month: ['1:10', '-3:-1']\n        months: ['january:march']\n        years: ['2024:2030']\n        location: Europe/Paris\nmute_time_intervals:\n  - name: night\n    time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]\nroute:\n  receiver: r\n  routes:\n    - {receiver: r, mute_time_intervals: [night], active_time_intervals: [office]}\nreceivers: [{name: r}]\n".into(),
        "inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [alertname, cluster]\n  - source_match: {a: b}\n    target_match_re: {c: 'x|y'}\n  - {}\n".to_owned() + R,
        with_receiver("    webhook_configs:\n      - url: http://127.0.0.1:5001/hook\n        send_resolved: false\n        max_alerts: 10\n        timeout: 10s\n        http_config:\n          basic_auth: {username: u, password: p}\n      - url: 'http://x/{{ .GroupLabels.team }}'\n      - url_file: /etc/url\n"),
        with_receiver("    sns_configs:\n      - topic_arn: arn:aws:sns:us-east-1:123456789012:t\n        sigv4: {region: us-east-1, access_key: AK, secret_key: SK}\n        subject: s\n        attributes: {k: v}\n      - phone_number: '+15555550100'\n      - target_arn: arn:x\n        api_url: https://sns.us-east-1.amazonaws.com\n"),
        with_receiver("    slack_configs:\n      - api_url: https://hooks.slack.com/services/x\n        channel: '#alerts'\n        fields: [{title: t, value: v, short: true}]\n        actions: [{type: button, text: Runbook, url: 'http://r'}, {type: button, text: Ack, name: ack}]\n      - app_token: xoxb-1\n        channel: c\n"),
        with_receiver("    pagerduty_configs:\n      - routing_key: abc\n        severity: critical\n        details: {a: b}\n        images: [{src: s, alt: a, href: h}]\n        links: [{href: h, text: t}]\n      - service_key: xyz\n        url: https://events.eu.pagerduty.com/v2/enqueue\n"),
        with_receiver("    email_configs:\n      - to: team@example.com\n        from: am@example.com\n        smarthost: smtp.example.com:587\n        auth_username: u\n        auth_password: p\n        headers: {Subject: s, x-custom: y}\n        require_tls: yes\n        tls_config: {insecure_skip_verify: true}\n"),
        "templates: ['/nowhere/*.tmpl']\n".to_owned() + R,
        "tracing: {endpoint: 'localhost:4317', client_type: grpc}\n".to_owned() + R,
        "route: {receiver: r}\nreceivers: [{name: r}, ~]\n".into(),
        "global:\n  http_config:\n    authorization: {type: Bearer, credentials: x}\n    tls_config: {cert_file: c, key_file: k, min_version: TLS12}\n".to_owned() + R,
        // Refused by Alertmanager's checks.
        "receivers: [{name: r}]\n".into(),
        "route: {}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: x}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n".into(),
        "route: {receiver: r}\nreceivers: [{}]\n".into(),
        "route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: r, continue: true}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: r, mute_time_intervals: [x]}\nreceivers: [{name: r}]\ntime_intervals: [{name: x}]\n".into(),
        with_route("  routes:\n    - receiver: nope\n"),
        with_route("  routes:\n    - group_by: [a, '...']\n"),
        with_route("  routes:\n    - group_by: [a, a]\n"),
        with_route("  routes:\n    - group_by: ['']\n"),
        with_route("  routes:\n    - group_interval: 0\n"),
        with_route("  routes:\n    - repeat_interval: 0\n"),
        with_route("  group_wait: 5 minutes\n"),
        with_route("  group_wait: 1m1h\n"),
        with_route("  group_wait: ''\n"),
        with_route("  routes:\n    - matchers: [foo]\n"),
        with_route("  routes:\n    - matchers: ['a=\"b']\n"),
        with_route("  routes:\n    - matchers: ['a=~(']\n"),
        with_route("  routes:\n    - matchers: ['a=b,,c=d']\n"),
        with_route("  routes:\n    - match: {'1a': b}\n"),
        with_route("  routes:\n    - match_re: {a: ~}\n"),
        with_route("  routes:\n    - mute_time_intervals: [missing]\n"),
        "time_intervals: [{name: a}, {name: a}]\n".to_owned() + R,
        "mute_time_intervals: [{name: a}]\ntime_intervals: [{name: a}]\n".to_owned() + R,
        "time_intervals: [{time_intervals: []}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{times: [{start_time: '10:00', end_time: '09:00'}]}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{times: [{start_time: '9:00', end_time: '10:00'}]}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{weekdays: [funday]}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{days_of_month: ['29:-1']}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{months: ['march:january']}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{years: ['2025:2024']}]}]\n".to_owned() + R,
        "time_intervals: [{name: a, time_intervals: [{location: Mars/Olympus}]}]\n".to_owned() + R,
        "inhibit_rules: [{equal: ['']}]\n".to_owned() + R,
        "inhibit_rules: [{source_match: {'a-b': c}}]\n".to_owned() + R,
        "inhibit_rules: [{target_matchers: ['bad matcher']}]\n".to_owned() + R,
        with_receiver("    webhook_configs: [{}]\n"),
        with_receiver("    webhook_configs: [{url: http://a, url_file: /b}]\n"),
        with_receiver("    webhook_configs: [{url: 'ftp://a'}]\n"),
        with_receiver("    webhook_configs: [{url: 'http://x/{{ .Foo '}]\n"),
        with_receiver("    webhook_configs: [{url: 'http://x/{{ .GroupLabels.team | toLower }}'}]\n"),
        with_route("  routes:\n    - match: {version: 1.10}\n      receiver: s\n"),
        with_receiver("    webhook_configs: [{url: http://a, http_config: {bearer_token: a, bearer_token_file: b}}]\n"),
        with_receiver("    webhook_configs: [{url: http://a, http_config: {http_headers: {user-agent: {values: [x]}}}}]\n"),
        with_receiver("    webhook_configs: [{url: http://a, http_config: {authorization: {type: basic}}}]\n"),
        with_receiver("    webhook_configs: [{url: http://a, http_config: {oauth2: {client_id: a}}}]\n"),
        with_receiver("    webhook_configs: [{url: http://a, http_config: {tls_config: {min_version: TLS9}}}]\n"),
        with_receiver("    sns_configs: [{}]\n"),
        with_receiver("    sns_configs: [{topic_arn: a, phone_number: b}]\n"),
        with_receiver("    sns_configs: [{topic_arn: a, sigv4: {access_key: a}}]\n"),
        with_receiver("    sns_configs: [{topic_arn: a, sigv4: {external_id: e}}]\n"),
        with_receiver("    sns_configs: [~]\n"),
        with_receiver("    slack_configs: [{channel: c}]\n"),
        with_receiver("    slack_configs: [{api_url: http://a, app_token: t}]\n"),
        with_receiver("    slack_configs: [{api_url: http://a, fields: [{title: t}]}]\n"),
        with_receiver("    slack_configs: [{api_url: http://a, actions: [{type: button, text: t}]}]\n"),
        with_receiver("    slack_configs: [{api_url: 'not a url'}]\n"),
        with_receiver("    slack_configs: [{api_url: http://a, update_message: true}]\n"),
        with_receiver("    pagerduty_configs: [{}]\n"),
        with_receiver("    pagerduty_configs: [{routing_key: a, routing_key_file: b}]\n"),
        with_receiver("    pagerduty_configs: [{routing_key: a, url: 'ftp://x'}]\n"),
        with_receiver("    email_configs: [{from: a@b, smarthost: 'h:25'}]\n"),
        with_receiver("    email_configs: [{to: a@b, smarthost: 'h:25'}]\n"),
        with_receiver("    email_configs: [{to: a@b, from: c@d}]\n"),
        with_receiver("    email_configs: [{to: a@b, from: c@d, smarthost: localhost}]\n"),
        with_receiver("    email_configs: [{to: a@b, from: c@d, smarthost: 'h:25', headers: {x-a: 1, X-A: 2}}]\n"),
        "global: {smtp_smarthost: 'a:b:25'}\n".to_owned() + R,
        "global: {slack_api_url: http://a, slack_api_url_file: /b}\n".to_owned() + R,
        "global: {pagerduty_url: ~}\nroute: {receiver: r}\nreceivers: [{name: r, pagerduty_configs: [{routing_key: k}]}]\n".into(),
        "tracing: {endpoint: x, client_type: udp}\n".to_owned() + R,
        "tracing: {client_type: http}\n".to_owned() + R,
        // Refused by the YAML decoder.
        "route: {receiver: r, colour: red}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: r}\nreceivers: [{name: r}]\nextra: 1\n".into(),
        "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: http://a, send_resolved: maybe}]}]\n".into(),
        "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: http://a, timeout: 1d}]}]\n".into(),
        "route: {receiver: r, group_by: a}\nreceivers: [{name: r}]\n".into(),
        "route: {receiver: r}\nreceivers: [{name: r, sns_configs: [{topic_arn: a, sigv4: {service: s}}]}]\n".into(),
        "route: [\n".into(),
        "route:\n\treceiver: r\n".into(),
    ];
    c.push(String::new());
    c
}

#[test]
fn verdicts_and_messages_match_amtool_check_config() {
    let dir = std::env::temp_dir().join(format!("promlake-amconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let mut differences = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for (i, yaml) in cases().iter().enumerate() {
        let want = check_config(&dir, i, yaml);
        let got = parse_config(yaml);
        match (&want, &got) {
            (Ok(()), Ok(_)) => valid += 1,
            (Err(w), Err(ConfigError::Invalid(g))) => {
                invalid += 1;
                // Alertmanager's own checks: the same words.
                if !w.starts_with("yaml:") && w.as_str() != g.trim_end() {
                    differences.push(format!("case {i}: messages differ\n  amtool:   {w}\n  PromLake: {g}\n{yaml}"));
                }
            }
            _ => differences.push(format!(
                "case {i}: verdicts differ\n  amtool:   {want:?}\n  PromLake: {:?}\n{yaml}",
                got.map(|_| ())
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
    assert!(valid >= 15 && invalid >= 70, "{valid} valid and {invalid} invalid cases compared");
}

#[test]
fn receiver_types_promlake_does_not_deliver_to_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("promlake-amconfig-unsupported-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let yaml = "route: {receiver: r}\nreceivers:\n  - name: r\n    opsgenie_configs: [{api_key: k}]\n    webhook_configs: [{url: http://a}]\n";
    assert_eq!(check_config(&dir, 0, yaml), Ok(()), "amtool accepts OpsGenie");
    let e = parse_config(yaml).unwrap_err();
    assert!(matches!(e, ConfigError::UnsupportedReceiver { kind: "opsgenie", .. }), "{e:?}");
    assert!(e.to_string().contains("opsgenie_configs"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
