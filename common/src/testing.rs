//! For tests and benchmarks: where the tools they start are, and a
//! [`WebhookSink`] recording the notifications sent to it. Each tool comes
//! from its environment variable (set by `scripts/test`), else from the
//! last line printed by its idempotent set-up script, so tests also run
//! under plain `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The reference binaries' folder (Prometheus, promtool, Alertmanager, …):
/// `$PROMLAKE_REF_BIN`, else what `shared/tools/fetch-reference-binaries`
/// prints.
pub fn reference_bin() -> PathBuf {
    env_or_setup_script("PROMLAKE_REF_BIN", "../shared/tools/fetch-reference-binaries")
}

/// The path in the environment variable `var`, or the last line printed
/// by `script` (relative to the repository's root).
///
/// # Panics
///
/// When the script cannot run or fails: a test cannot go on without it.
pub fn env_or_setup_script(var: &str, script: &str) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join(script);
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim())
}

/// A webhook notification as a [`WebhookSink`] received it: the request
/// path, when it arrived, and its JSON body (`Null` when not JSON).
pub type Received = (String, std::time::Instant, serde_json::Value);

/// A local HTTP server recording the JSON bodies POSTed to it (alert
/// notifications in tests and benchmarks), answering each `200 ok` (the
/// body Slack's incoming webhooks answer, which the others ignore). It
/// serves from its own threads until the process ends.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl WebhookSink {
    /// Starts a sink on a free port.
    ///
    /// # Panics
    ///
    /// When no port can be bound.
    pub fn start() -> WebhookSink {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        let sink = WebhookSink { port, received: Default::default() };
        let record = sink.received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 65536];
                    loop {
                        let Ok(n) = s.read(&mut chunk) else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() < split + 4 + len {
                            continue;
                        }
                        let at = std::time::Instant::now();
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let body = serde_json::from_slice(&buf[split + 4..split + 4 + len]).unwrap_or_default();
                        record.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((path, at, body));
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                        return;
                    }
                });
            }
        });
        sink
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
