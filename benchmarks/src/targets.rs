//! The servers the harness compares: started fresh (empty temp data
//! directory, free local port), probed until ready, measured through their
//! own `/metrics` and `/proc`, killed at the end.
//!
//! | target | remote-write URL | acknowledges |
//! |---|---|---|
//! | PromLake | `/workspaces/{id}/api/v1/remote_write` | after fsync of the log |
//! | Prometheus 3.5 | `/api/v1/write` | after appending to the head (WAL written, not fsynced per request) |
//! | VictoriaMetrics | `/api/v1/write` | after buffering in memory (flushed to disk every second or so) |

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `promlake serve` on the embedded log.
    PromLake,
    /// Prometheus with its remote-write receiver.
    Prometheus,
    /// VictoriaMetrics single-node.
    VictoriaMetrics,
}

impl Kind {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PromLake => "promlake",
            Kind::Prometheus => "prometheus",
            Kind::VictoriaMetrics => "victoriametrics",
        }
    }

    /// Parses a name from `--targets`.
    ///
    /// # Errors
    /// For an unknown name.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "promlake" => Ok(Kind::PromLake),
            "prometheus" | "prom" => Ok(Kind::Prometheus),
            "victoriametrics" | "victoria-metrics" | "vm" => Ok(Kind::VictoriaMetrics),
            other => bail!("unknown target {other:?}: expected promlake, prometheus or victoriametrics"),
        }
    }

    /// The metric (and label filter) counting samples the server stored.
    fn stored_samples_metric(self) -> (&'static str, &'static str) {
        match self {
            Kind::PromLake => ("promlake_ingest_written_total", "kind=\"sample\""),
            Kind::Prometheus => ("prometheus_tsdb_head_samples_appended_total", ""),
            Kind::VictoriaMetrics => ("vm_rows_inserted_total", ""),
        }
    }
}

/// Where the binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The release `promlake` binary.
    pub promlake: PathBuf,
    /// The folder holding `prometheus` and `victoria-metrics`.
    pub reference: PathBuf,
}

impl Binaries {
    /// The release `promlake` (which must exist) and the reference folder,
    /// from the command line's options or their defaults.
    ///
    /// # Errors
    /// `promlake` is not built, or the reference folder is not found.
    pub fn locate(promlake: Option<&std::path::Path>, reference: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let bins =
            Self { promlake: crate::cli::promlake_bin(promlake), reference: crate::cli::reference_bin_dir(reference)? };
        if !bins.promlake.exists() {
            anyhow::bail!("{} not found: cargo build --release -p promlake -p benchmarks", bins.promlake.display());
        }
        Ok(bins)
    }

    /// The first line `kind`'s binary prints for its version flag; for
    /// Debian's VictoriaMetrics build, which prints an empty version, the
    /// first line of the package's changelog (`Debian package victoriametrics
    /// (1.145.0+ds1-2) …`).
    pub fn version(&self, kind: Kind) -> String {
        let (bin, arg) = match kind {
            Kind::PromLake => (self.promlake.clone(), "--version"),
            Kind::Prometheus => (self.reference.join("prometheus"), "--version"),
            Kind::VictoriaMetrics => (self.reference.join("victoria-metrics"), "-version"),
        };
        std::process::Command::new(bin)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned()
            })
            .filter(|s| !s.is_empty())
            .or_else(|| {
                let changelog = self.reference.join("../share/doc/victoria-metrics/changelog.Debian.gz");
                let o = std::process::Command::new("zcat").arg(changelog).output().ok()?;
                let first = String::from_utf8_lossy(&o.stdout).lines().next()?.to_owned();
                (kind == Kind::VictoriaMetrics && !first.is_empty()).then(|| format!("Debian package {first}"))
            })
            .unwrap_or_else(|| "version unknown".into())
    }
}

/// A running server.
#[derive(Debug)]
pub struct Target {
    /// Which server.
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Where to send remote write.
    pub write_url: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// A free local port (bound then released; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The PromLake config raising the ingestion rate limit out of the way.
pub const PROMLAKE_CONFIG: &str = "[limits.ingest]\ningestion_rate = 100000000.0\ningestion_burst_size = 100000000\n";

impl Target {
    /// Starts `kind` on a fresh temp directory (under `tmp_root` when given)
    /// and waits until it accepts remote writes. PromLake runs with
    /// [`PROMLAKE_CONFIG`].
    ///
    /// # Errors
    /// When the binary is missing, exits, or is not ready within 60 s.
    pub async fn start(kind: Kind, bins: &Binaries, tmp_root: Option<&Path>) -> anyhow::Result<Target> {
        Target::start_with_config(kind, bins, tmp_root, PROMLAKE_CONFIG).await
    }

    /// [`Target::start`] with `promlake_config` as PromLake's config file
    /// (TOML; ignored by the other targets).
    ///
    /// # Errors
    /// When the binary is missing, exits, or is not ready within 60 s.
    pub async fn start_with_config(
        kind: Kind,
        bins: &Binaries,
        tmp_root: Option<&Path>,
        promlake_config: &str,
    ) -> anyhow::Result<Target> {
        Target::start_with_args(kind, bins, tmp_root, promlake_config, &[]).await
    }

    /// [`Target::start_with_config`], with `extra_args` appended to the
    /// server's command line (e.g. `-retentionPeriod=100y` for
    /// VictoriaMetrics).
    ///
    /// # Errors
    /// When the binary is missing, exits, or is not ready within 60 s.
    pub async fn start_with_args(
        kind: Kind,
        bins: &Binaries,
        tmp_root: Option<&Path>,
        promlake_config: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Target> {
        Target::start_configured(kind, bins, tmp_root, promlake_config, None, extra_args).await
    }

    /// [`Target::start_with_args`], with `prometheus_config` (YAML) as
    /// Prometheus's config file instead of the default one (e.g. with
    /// `rule_files`).
    ///
    /// # Errors
    /// When the binary is missing, exits, or is not ready within 60 s.
    pub async fn start_configured(
        kind: Kind,
        bins: &Binaries,
        tmp_root: Option<&Path>,
        promlake_config: &str,
        prometheus_config: Option<&str>,
        extra_args: &[&str],
    ) -> anyhow::Result<Target> {
        let dir = match tmp_root {
            Some(root) => tempfile::Builder::new().prefix(kind.name()).tempdir_in(root),
            None => tempfile::Builder::new().prefix(kind.name()).tempdir(),
        }
        .context("creating a temp directory")?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        match kind {
            Kind::PromLake => {
                let config = dir.path().join("promlake.toml");
                std::fs::write(&config, promlake_config)?;
                let mut child = Command::new(&bins.promlake)
                    .args(["serve", "--auth", "none", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(dir.path().join("data"))
                    .arg("--config")
                    .arg(&config)
                    .args(extra_args)
                    .stdout(Stdio::piped())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("starting {}", bins.promlake.display()))?;
                let stdout = child.stdout.take().context("promlake stdout")?;
                let mut lines = BufReader::new(stdout).lines();
                let addr = tokio::time::timeout(Duration::from_secs(60), async {
                    while let Some(line) = lines.next_line().await? {
                        if let Some(addr) = line.strip_prefix("promlake listening on http://") {
                            return Ok(addr.trim().to_owned());
                        }
                    }
                    bail!("promlake exited before listening (see {})", dir.path().join("server.log").display())
                })
                .await
                .context("promlake did not print its address within 60 s")??;
                // Keep draining stdout so the server never blocks on it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                let base_url = format!("http://{addr}");
                let id = create_workspace(&http, &base_url).await?;
                let write_url = format!("{base_url}/workspaces/{id}/api/v1/remote_write");
                Ok(Target { kind, base_url, write_url, child, dir })
            }
            Kind::Prometheus => {
                let port = free_port()?;
                let config = dir.path().join("prometheus.yml");
                std::fs::write(&config, prometheus_config.unwrap_or("global:\n  scrape_interval: 15s\n"))?;
                let child = Command::new(bins.reference.join("prometheus"))
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest")
                    .arg("--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request")
                    .args(extra_args)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting prometheus")?;
                let base_url = format!("http://127.0.0.1:{port}");
                let mut t = Target { kind, write_url: format!("{base_url}/api/v1/write"), base_url, child, dir };
                t.wait_ready(&http, "/-/ready").await?;
                Ok(t)
            }
            Kind::VictoriaMetrics => {
                let port = free_port()?;
                let child = Command::new(bins.reference.join("victoria-metrics"))
                    .arg(format!("-storageDataPath={}", dir.path().join("data").display()))
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .args(extra_args)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting victoria-metrics")?;
                let base_url = format!("http://127.0.0.1:{port}");
                let mut t = Target { kind, write_url: format!("{base_url}/api/v1/write"), base_url, child, dir };
                t.wait_ready(&http, "/health").await?;
                Ok(t)
            }
        }
    }

    async fn wait_ready(&mut self, http: &reqwest::Client, path: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited during start-up with {status}", self.kind.name());
            }
            if let Ok(r) = http.get(format!("{}{path}", self.base_url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{} not ready within 60 s", self.kind.name());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The base URL of the Prometheus HTTP API (`…/api/v1`): PromLake's
    /// workspace API (`/workspaces/{id}/api/v1`), the others' `/api/v1`.
    pub fn api_url(&self) -> String {
        match self.kind {
            Kind::PromLake => {
                self.write_url.strip_suffix("/remote_write").unwrap_or(self.write_url.as_str()).to_owned()
            }
            Kind::Prometheus | Kind::VictoriaMetrics => format!("{}/api/v1", self.base_url),
        }
    }

    /// The server's temp directory (its data under `data/`, its log in
    /// `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A snapshot of the server's counters.
    pub async fn snapshot(&self) -> Snapshot {
        let (cpu_seconds, peak_rss_bytes) = self.pid().map(proc_usage).unwrap_or_default();
        let metrics = match reqwest::get(format!("{}/metrics", self.base_url)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let (name, filter) = self.kind.stored_samples_metric();
        Snapshot {
            at: Instant::now(),
            cpu_seconds,
            client_cpu_seconds: proc_usage(std::process::id()).0,
            machine: machine_cpu(),
            peak_rss_bytes,
            stored_samples: sum_metric(&metrics, name, filter),
            fsyncs: sum_metric(&metrics, "promlake_log_fsyncs_total", ""),
        }
    }

    /// Kills the server and removes its data.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Counters of a server at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// User + system CPU of the server process so far, seconds.
    pub cpu_seconds: f64,
    /// User + system CPU of this process (the load generator), seconds.
    pub client_cpu_seconds: f64,
    /// The whole machine's CPU counters.
    pub machine: MachineCpu,
    /// Peak resident memory so far, bytes.
    pub peak_rss_bytes: u64,
    /// Samples the server says it stored (its own `/metrics`).
    pub stored_samples: f64,
    /// PromLake only: fsyncs of the embedded log.
    pub fsyncs: f64,
}

/// The machine's CPU time so far, from `/proc/stat` (seconds, all cores).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq + steal.
    pub busy: f64,
    /// Waiting for I/O with nothing else to run.
    pub iowait: f64,
    /// Idle.
    pub idle: f64,
}

impl MachineCpu {
    /// `self - earlier`, each field.
    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: self.busy - earlier.busy,
            iowait: self.iowait - earlier.iowait,
            idle: self.idle - earlier.idle,
        }
    }
}

/// Reads the `cpu` line of `/proc/stat`.
pub fn machine_cpu() -> MachineCpu {
    let ticks = clock_ticks();
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return MachineCpu::default() };
    let f: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0) / ticks;
    // user nice system idle iowait irq softirq steal
    MachineCpu { busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7), iowait: at(4), idle: at(3) }
}

/// POSTs `body` as JSON to `url`; the answer's JSON (`null` when empty).
///
/// # Errors
/// The request fails, the answer is not a success, or not JSON.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let r = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    let answer = r.bytes().await?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    if answer.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&answer).with_context(|| format!("POST {url}: the answer is not JSON"))
}

/// Creates a workspace and waits until it is `ACTIVE`; returns its id.
async fn create_workspace(http: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let doc = post_json(http, &format!("{base_url}/workspaces"), &serde_json::json!({"alias": "bench"})).await?;
    let id = doc["workspaceId"].as_str().context("no workspaceId in the answer")?.to_owned();
    let started = Instant::now();
    loop {
        let r = http.get(format!("{base_url}/workspaces/{id}")).send().await?;
        let doc: serde_json::Value = serde_json::from_slice(&r.bytes().await?).unwrap_or_default();
        // DescribeWorkspace wraps the document in "workspace".
        if doc["workspace"]["status"]["statusCode"] == "ACTIVE" || doc["status"]["statusCode"] == "ACTIVE" {
            return Ok(id);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("workspace {id} not ACTIVE within 30 s: {doc}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sums the samples of `name` (Prometheus text format) whose labels contain
/// `filter`.
pub fn sum_metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) || !rest.contains(filter) {
                return None;
            }
            let value = match rest.rfind('}') {
                Some(i) => &rest[i + 1..],
                None => rest,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// (CPU seconds, peak RSS bytes) of a process, from `/proc`.
pub fn proc_usage(pid: u32) -> (f64, u64) {
    let ticks = clock_ticks();
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let after = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0);
    (cpu, rss)
}

/// Resident memory of a process now, from `/proc/<pid>/status`, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks), no file pages.
    pub anon: u64,
    /// `VmHWM`: peak resident so far.
    pub peak: u64,
}

/// Reads [`Memory`] of `pid` (zeros when the process is gone).
pub fn proc_memory(pid: u32) -> Memory {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}

fn parse_status(status: &str) -> Memory {
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Memory { rss: kb("VmRSS:"), anon: kb("RssAnon:"), peak: kb("VmHWM:") }
}

/// `sysconf(_SC_CLK_TCK)` through `getconf`, 100 when unknown.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_by_name_and_filter() {
        let text = "# HELP x\nvm_rows_inserted_total{type=\"promremotewrite\"} 120\nvm_rows_inserted_total{type=\"influx\"} 3\nvm_rows_inserted_total_other 9\n\
                    promlake_ingest_written_total{workspace=\"ws-1\",kind=\"sample\"} 2000\npromlake_ingest_written_total{workspace=\"ws-1\",kind=\"exemplar\"} 5\n\
                    prometheus_tsdb_head_samples_appended_total{type=\"float\"} 1e+06\n";
        assert_eq!(sum_metric(text, "vm_rows_inserted_total", ""), 123.0);
        assert_eq!(sum_metric(text, "promlake_ingest_written_total", "kind=\"sample\""), 2000.0);
        assert_eq!(sum_metric(text, "prometheus_tsdb_head_samples_appended_total", ""), 1e6);
    }

    #[test]
    fn status_memory_lines_are_parsed() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t   512 kB\nRssFile:\t 512 kB\n";
        assert_eq!(parse_status(status), Memory { rss: 1 << 20, anon: 1 << 19, peak: 2 << 20 });
        assert!(proc_memory(std::process::id()).rss > 0);
    }

    #[test]
    fn own_process_usage_is_read() {
        let (cpu, rss) = proc_usage(std::process::id());
        assert!(cpu >= 0.0);
        assert!(rss > 0);
    }
}
