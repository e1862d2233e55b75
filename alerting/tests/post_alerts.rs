//! `alerting::ingest::accept` against the real Alertmanager 0.33.1's
//! `POST /api/v2/alerts`: the same status and the same answer for valid,
//! partly valid and invalid bodies (schema errors, undecodable bodies,
//! validation errors joined).
//!
//! Debian's Alertmanager reads its default templates from
//! `/usr/share/prometheus/alertmanager/`; `scripts/test` puts them there.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alerting::ingest::accept;
use common::testing::reference_bin;

struct Alertmanager {
    child: Child,
    url: String,
    _dir: std::path::PathBuf,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(19093)
}

fn start() -> Alertmanager {
    let dir = std::env::temp_dir().join(format!("promlake-am-post-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let config = dir.join("am.yml");
    std::fs::write(&config, "route: {receiver: r}\nreceivers: [{name: r}]\n").unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let bin = reference_bin().join("prometheus-alertmanager");
    assert!(bin.is_file(), "Alertmanager not found at {}", bin.display());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start Alertmanager: {e}"));
    let am = Alertmanager { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ureq_get(&format!("{}/-/ready", am.url)).is_some_and(|(s, _)| s == 200) {
            return am;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager did not become ready (its default templates in /usr/share/prometheus/alertmanager?)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(method: &str, url: &str, body: &[u8]) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Some((status, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

fn ureq_get(url: &str) -> Option<(u16, String)> {
    http("GET", url, b"")
}

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
    let am = start();
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
