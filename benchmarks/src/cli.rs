//! Command-line options shared by the `loadgen` and `ingest_bench` binaries,
//! and the machine description printed with every result.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ingest_gateway::Protocol;

use crate::loadgen::Workload;

/// The workload options.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Active series (node_exporter-like, 161 per host).
    #[arg(long, default_value_t = 20_000)]
    pub series: usize,
    /// Samples per request (Prometheus's max_samples_per_send).
    #[arg(long, default_value_t = 2_000)]
    pub batch: usize,
    /// Samples of each series per request (consecutive scrapes).
    #[arg(long, default_value_t = 1)]
    pub samples_per_series: usize,
    /// Fraction of series replaced by new ones (new `pod` label) per round.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Remote write protocol: 1 (prometheus.WriteRequest) or 2 (io.prometheus.write.v2.Request).
    #[arg(long, default_value = "1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// RW 2.0: leave out per-series metadata (type, help), which Prometheus sends.
    #[arg(long)]
    pub no_v2_metadata: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl WorkloadArgs {
    /// The workload for `rounds` rounds ending at `end_ms`, `interval_ms` apart.
    pub fn workload(&self, rounds: usize, interval_ms: i64, end_ms: i64) -> Workload {
        Workload {
            series: self.series.max(1),
            samples_per_request: self.batch.max(1),
            samples_per_series: self.samples_per_series.max(1),
            churn: self.churn,
            rounds,
            interval_ms,
            end_ms,
            protocol: self.protocol,
            v2_metadata: !self.no_v2_metadata,
            seed: self.seed,
        }
    }
}

/// Parses `1`/`2` (or `1.0`/`2.0`, `v1`/`v2`).
///
/// # Errors
/// For anything else.
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s.trim().trim_start_matches(['v', 'V']) {
        "1" | "1.0" => Ok(Protocol::V1),
        "2" | "2.0" => Ok(Protocol::V2),
        other => Err(format!("unknown protocol {other:?}: expected 1 or 2")),
    }
}

/// `1.0` or `2.0`.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::V1 => "RW 1.0",
        Protocol::V2 => "RW 2.0",
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The machine and code a result was measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `git rev-parse --short HEAD` (plus `-dirty`), or why not.
    pub commit: String,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// `uname -r`.
    pub kernel: String,
}

impl Machine {
    /// Reads the description of this machine and the repository at `repo`.
    pub fn describe(repo: &std::path::Path) -> Machine {
        let run = |cmd: &str, args: &[&str]| -> Option<String> {
            let o = std::process::Command::new(cmd).args(args).current_dir(repo).output().ok()?;
            o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let commit = match run("git", &["rev-parse", "--short", "HEAD"]) {
            Some(c) => {
                let dirty =
                    run("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
                if dirty { format!("{c}-dirty") } else { c }
            }
            None => "none (no commit yet)".to_owned(),
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map(|kb| kb / 1024.0 / 1024.0)
            .unwrap_or(0.0);
        Machine {
            commit,
            cpu_model,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib,
            kernel: run("uname", &["-r"]).unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {} · CPU {} · {} cores · {:.1} GiB RAM · Linux {}",
            self.commit, self.cpu_model, self.cores, self.memory_gib, self.kernel
        )
    }
}

/// The repository root (the parent of `benchmarks/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// The release `promlake` binary: `explicit`, else
/// `$CARGO_TARGET_DIR/release/promlake`, else `target/release/promlake`.
pub fn promlake_bin(explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
        target.join("release").join("promlake")
    })
}

/// The folder holding `prometheus`, `promtool` and `victoria-metrics`:
/// `explicit`, else what `../shared/tools/fetch-reference-binaries` prints.
///
/// # Errors
/// When the script fails.
pub fn reference_bin_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    let script = repo_root().join("../shared/tools/fetch-reference-binaries");
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} failed", script.display());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(PathBuf::from(stdout.lines().last().context("fetch-reference-binaries printed nothing")?.trim()))
}

/// `/proc/loadavg`'s three load averages, for the record of each figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The first line a binary prints for `arg` (its version), or "version unknown".
pub fn version_line(bin: &Path, arg: &str) -> String {
    std::process::Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            text.lines().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown".into())
}
