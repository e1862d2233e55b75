//! `TestServer`: a `promlake serve` process on a free port, plus clients.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::log::Log;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prost::Message;
use schemas::stream::WriteBatch;

/// A running `promlake serve` on 127.0.0.1:0 (`--auth none` unless started
/// with [`TestServer::spawn_sigv4`]).
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl TestServer {
    /// Starts PromLake on `data_dir` and waits until it serves.
    pub fn spawn(data_dir: &Path) -> Self {
        Self::spawn_with(data_dir, &[])
    }

    /// Starts PromLake with extra flags.
    pub fn spawn_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_with_env(data_dir, extra, &[])
    }

    /// Starts PromLake with extra flags and extra environment variables
    /// (e.g. `PROMLAKE_FAILPOINTS`).
    pub fn spawn_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_auth(data_dir, "none", extra, env)
    }

    /// Starts PromLake with SigV4 authentication (its default): the admin
    /// key pair is in `<data_dir>/credentials`.
    pub fn spawn_sigv4(data_dir: &Path) -> Self {
        Self::spawn_auth(data_dir, "sigv4", &[], &[])
    }

    /// Starts PromLake with SigV4 authentication and `extra` arguments.
    pub fn spawn_sigv4_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_auth(data_dir, "sigv4", extra, &[])
    }

    fn spawn_auth(data_dir: &Path, auth: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_promlake"))
            .args(["serve", "--listen", "127.0.0.1:0", "--auth", auth, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", std::env::var("PROMLAKE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().copied())
            // Next to the data directory: a core dump of a process aborted by
            // a failpoint lands there, not in the source tree.
            .current_dir(data_dir.parent().filter(|p| p.is_dir()).unwrap_or(data_dir))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start promlake");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(url) = line.strip_prefix("promlake listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("promlake did not start within 60 s");
        Self { child: Some(child), url }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status if the process has ended by itself (it is then
    /// reaped and this server counts as stopped); `None` while it runs.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("wait")?;
        self.child = None;
        Some(status)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server already stopped");
        signal(c.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "promlake did not stop within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates a workspace; returns its id.
    pub async fn create_workspace(&self, alias: &str) -> String {
        let resp = client()
            .post(format!("{}/workspaces", self.url))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "alias": alias }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        body["workspaceId"].as_str().unwrap().to_owned()
    }

    /// Creates a rule groups namespace holding `rules` (a rules YAML file)
    /// and waits until it is `ACTIVE` (evaluated from the ruler's next
    /// sync).
    pub async fn create_rule_groups_namespace(&self, ws: &str, name: &str, rules: &str) {
        use base64::Engine as _;
        let http = client();
        let body = serde_json::json!({"name": name, "data": base64::engine::general_purpose::STANDARD.encode(rules)});
        self.post_accepted(&format!("/workspaces/{ws}/rulegroupsnamespaces"), &body).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{}/workspaces/{ws}/rulegroupsnamespaces/{name}", self.url);
            let text = http.get(url).send().await.unwrap().text().await.unwrap();
            let body: serde_json::Value = serde_json::from_str(&text).unwrap();
            if body["ruleGroupsNamespace"]["status"]["statusCode"] == "ACTIVE" {
                return;
            }
            assert!(Instant::now() < deadline, "the namespace did not become ACTIVE: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the workspace's alert manager definition from `config` (an
    /// Alertmanager configuration file), expecting 202; it is in effect
    /// once a process owning the workspace has synced.
    pub async fn create_alert_manager_definition(&self, ws: &str, config: &str) {
        use base64::Engine as _;
        let indented: String = config.lines().map(|l| format!("  {l}\n")).collect();
        let data = format!("alertmanager_config: |\n{indented}");
        let body = serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(data)});
        self.post_accepted(&format!("/workspaces/{ws}/alertmanager/definition"), &body).await;
    }

    /// POSTs `body` (JSON) to `path`, expecting 202 Accepted.
    async fn post_accepted(&self, path: &str, body: &serde_json::Value) {
        let resp = client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }

    /// The value of a metric sample in `/metrics` (0 when absent).
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let text = client().get(format!("{}/metrics", self.url)).send().await.unwrap().text().await.unwrap();
        metric_value(&text, name_and_labels)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Posts one remote-write 1.0 request (snappy protobuf) to `url`: the
/// response, `None` when the request got no answer.
pub async fn post_remote_write(http: &reqwest::Client, url: &str, body: &[u8]) -> Option<reqwest::Response> {
    http.post(url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body.to_vec())
        .send()
        .await
        .ok()
}

/// A child process killed when dropped (reference binaries).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus in agent mode with `config` (YAML), its state under
/// `dir`, serving on `port`; returns once its `/metrics` answers.
pub async fn prometheus_agent(dir: &Path, config: &str, port: u16) -> Process {
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let prom = Process(
        Command::new(reference_bin().join("prometheus"))
            .arg("--agent")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.agent.path={}", dir.join("agent").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    wait_http(&format!("http://127.0.0.1:{port}/metrics")).await;
    prom
}

/// A real Prometheus server with `config` (YAML, written to
/// `<dir>/prometheus.yml`, so relative `rule_files` resolve in `dir`), its
/// TSDB under `dir`, the remote-write receiver on; returns once it is
/// ready, with its base URL.
pub async fn prometheus_server(dir: &Path, config: &str) -> (Process, String) {
    prometheus_server_with(dir, config, &[]).await
}

/// [`prometheus_server`] with extra flags.
pub async fn prometheus_server_with(dir: &Path, config: &str, flags: &[&str]) -> (Process, String) {
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let prom = Process(
        Command::new(reference_bin().join("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready")).await;
    (prom, base)
}

/// Waits until `url` answers 2xx (60 s at most).
pub async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client().get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up within 60 s");
}

/// Sends a signal by name with `kill(1)`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// An HTTP client with short timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// Sums the samples of a metric whose line starts with `name_and_labels`
/// (e.g. `promlake_ingest_written_total{workspace="ws-…",kind="sample"}`).
pub fn metric_value(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name_and_labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every stream record of a workspace, read from the embedded log of a
/// stopped server's data directory.
pub async fn read_log(data_dir: &Path, workspace_id: &str) -> Vec<WriteBatch> {
    let log: Arc<EmbeddedLog> =
        EmbeddedLog::open(&data_dir.join("log"), EmbeddedLogConfig::default()).expect("open log");
    let topic = schemas::topics::samples_topic(workspace_id);
    let partitions = log.partition_count(&topic).await.expect("topic");
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut offset = 0;
        loop {
            let f = log.fetch(&topic, p, offset, 16 << 20, Duration::ZERO).await.expect("fetch");
            let Some(last) = f.records.last() else { break };
            offset = last.offset + 1;
            for r in f.records {
                out.push(WriteBatch::decode(r.value.expect("value").as_ref()).expect("decode"));
            }
        }
    }
    log.close().await.expect("close");
    out
}

pub use common::testing::reference_bin;

/// A free TCP port on 127.0.0.1 (for programs that cannot take port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The Python of the tests' venv (deltalake, pyarrow): `PROMLAKE_PYTHON`,
/// or made by `scripts/python-env` when the tests run without `scripts/test`.
pub fn python() -> PathBuf {
    common::testing::env_or_setup_script("PROMLAKE_PYTHON", "scripts/python-env")
}

/// A sample as stored: (series id as i64, timestamp ms, value bits as
/// little-endian hex, stale).
pub type LakeSample = (i64, i64, Option<String>, bool);

/// Every row of a workspace's `samples` table, read by the independent
/// reader (`read_lake.py`, delta-rs's Python package), and the metric names.
pub fn read_lake_with_python(lake: &Path, workspace_id: &str) -> (Vec<LakeSample>, Vec<String>) {
    read_lake_url_with_python(lake.to_str().expect("a UTF-8 path"), workspace_id, &[])
}

/// [`read_lake_with_python`] for a lake URL (`s3://…`), with environment
/// variables for the reader (the standard AWS ones for an S3 lake).
pub fn read_lake_url_with_python(
    lake: &str,
    workspace_id: &str,
    env: &[(&str, &str)],
) -> (Vec<LakeSample>, Vec<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/read_lake.py");
    let out = Command::new(python())
        .arg(script)
        .arg(lake)
        .arg(workspace_id)
        .envs(env.iter().copied())
        .output()
        .expect("run read_lake.py");
    assert!(out.status.success(), "read_lake.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("read_lake.py output");
    let rows = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r[0].as_i64().unwrap(), r[1].as_i64().unwrap(), r[2].as_str().map(str::to_owned), r[3].as_bool().unwrap())
        })
        .collect();
    let metrics = v["metrics"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    (rows, metrics)
}

/// moto's S3 server (`scripts/s3-test-server.py`, from the tests' venv)
/// with one bucket, killed on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server with `bucket` created; returns once it answered.
    pub fn start(bucket: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-test-server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(bucket)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3-test-server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("s3-test-server.py did not start: {line:?}"));
        Self { child, endpoint: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
