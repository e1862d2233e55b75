//! `alerting::ingest::accept` against the real Alertmanager 0.33.1's
//! `POST /api/v2/alerts`: the same status and the same answer for valid,
//! partly valid and invalid bodies (schema errors, undecodable bodies,
//! validation errors joined).
//!
//! Debian's Alertmanager reads its default templates from
//! `/usr/share/prometheus/alertmanager/`; `scripts/test` puts them there.

use alerting::ingest::accept;

mod support;

use support::{http, start_alertmanager};

const BODIES: &[&str] = &[
    r#"[{"labels":{"a":"b"}}]"#,
    r#"[]"#,
    r#"[{"labels":{}}]"#,
    r#"[{}]"#,
    r#"[{"labels":{"a":"b"}},{"annotations":{}}]"#,
    r#"[{"labels":{"a":""}}]"#,
    r#"[{"labels":{"a":"b"},"startsAt":"2024-01-01T00:00:00Z","endsAt":"2023-01-01T00:00:00Z"}]"#,
    r#"[{"labels":{"a":"b"},"startsAt":"2024-01-01T00:00:00.123+02:00","endsAt":"2024-01-02T00:00:00Z"}]"#,
    r#"[{"labels":{"a":"b"},"startsAt":"yesterday"}]"#,
    r#"[{"labels":{"":"b"}}]"#,
    r#"[{"labels":{"a":"b"}},{"labels":{}},{"labels":{"x":"y"},"startsAt":"2024-01-01T00:00:00Z","endsAt":"2023-01-01T00:00:00Z"}]"#,
    "not json",
    r#"{"labels":{"a":"b"}}"#,
    r#"[{"labels":{"a":"b"},"annotations":{"":"x"}}]"#,
    r#"[{"labels":{"a":"b"},"generatorURL":"not a url"}]"#,
    r#"[{"labels":{"a":"b"},"generatorURL":"http://prom:9090/graph?g0.expr=up"}]"#,
    r#"[{"labels":{"a":1}}]"#,
];

#[test]
fn posted_alerts_are_answered_as_alertmanager_answers() {
    let am = start_alertmanager("route: {receiver: r}\nreceivers: [{name: r}]\n", &[]);
    let mut differences = Vec::new();
    for body in BODIES {
        let Some((status, answer)) = http("POST", &format!("{}/api/v2/alerts", am.url), body.as_bytes()) else {
            panic!("no answer from Alertmanager to {body}");
        };
        let answer = answer.trim_end().to_owned();
        let ours = accept(body.as_bytes(), 1_700_000_000_000, 300_000);
        let same = match &ours {
            Ok(o) => match &o.invalid {
                None => status == 200 && answer.is_empty(),
                Some(m) => status == 400 && serde_json::from_str::<String>(&answer).ok().as_deref() == Some(m.as_str()),
            },
            Err(e) => {
                let theirs: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
                let message = theirs["message"].as_str().unwrap_or_default();
                let same_message = if e.status == 422 {
                    message == e.message
                } else {
                    message.starts_with("parsing alerts body from \"\" failed, because ")
                };
                status == e.status && theirs["code"] == e.code && same_message
            }
        };
        if !same {
            differences.push(format!("{body}\n  Alertmanager: {status} {answer}\n  PromLake:     {ours:?}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
