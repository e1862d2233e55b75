//! `storage_bench`: bytes per sample on disk after compaction, PromLake
//! against Prometheus 3.5, on the same node_exporter-like samples.
//!
//! ```text
//! workload (series × hours at 15 s, ending now) ─┬─► RW 1.0 pool ─► Gateway ─► embedded log ─► stream workers
//!                                                │        ─► Delta tables ─► maintenance pass (compaction) ─► bytes
//!                                                └─► OpenMetrics, one file per 2 h window ─► promtool create-blocks-from
//!                                                         ─► prometheus on those blocks (it compacts them) ─► bytes
//! ```
//!
//! See `benchmarks/README.md` ("Storage").

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use benchmarks::cli::{Machine, load_average, now_ms, reference_bin_dir, repo_root, version_line};
use benchmarks::disk::{TableBytes, TsdbBytes, table_bytes, tsdb_bytes};
use benchmarks::loadgen::{Pool, Workload};
use benchmarks::openmetrics::write_windows;
use benchmarks::pipeline::{Pipeline, WORKSPACE_ID, measure};
use benchmarks::targets::sum_metric;
use clap::Parser;
use ingest_gateway::Protocol;
use prometheus_client::registry::Registry;
use stream_workers::{StreamWorkersConfig, TableKind};

/// Bytes per sample on disk after compaction: PromLake's Delta tables
/// against Prometheus's TSDB blocks, same samples.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Active series (node_exporter-like, 161 per host).
    #[arg(long, default_value_t = 2_000)]
    series: usize,
    /// Hours of synthetic time at a 15 s interval, ending now.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Samples per remote-write request (one per series).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent requests into the gateway.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder with `prometheus` and `promtool` (default: run ../shared/tools/fetch-reference-binaries).
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
    /// Only measure PromLake.
    #[arg(long)]
    skip_prometheus: bool,
    /// Longest wait for Prometheus's compaction, seconds.
    #[arg(long, default_value_t = 600)]
    compaction_timeout_secs: u64,
    /// Where the temp directories go (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
}

const INTERVAL_MS: i64 = 15_000;
/// promtool's default (and Prometheus's smallest) block range.
const BLOCK_MS: i64 = 2 * 3_600_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let machine = Machine::describe(&repo_root());
    let rounds = ((args.hours * 3_600_000.0) / INTERVAL_MS as f64).round().max(1.0) as usize;
    // Whole 15-second steps ending a minute ago: promtool's seconds are exact.
    let end_ms = (now_ms() / INTERVAL_MS - 4) * INTERVAL_MS;
    let workload = Workload {
        series: args.series,
        samples_per_request: args.batch,
        samples_per_series: 1,
        churn: 0.0,
        rounds,
        interval_ms: INTERVAL_MS,
        end_ms,
        protocol: Protocol::V1,
        v2_metadata: false,
        seed: args.seed,
    };
    let samples = workload.samples_per_round() * rounds as u64;
    println!("# storage_bench: bytes per sample on disk after compaction");
    println!("{machine}");
    println!(
        "workload: {} series × {} scrapes at 15 s ({:.1} h ending {}), {} samples, seed {}",
        args.series, rounds, args.hours, end_ms, samples, args.seed
    );
    println!("load average at start: {}", load_average());

    let promlake = promlake_side(&args, &workload).await?;
    let prometheus = if args.skip_prometheus { None } else { Some(prometheus_side(&args, &workload).await?) };

    println!();
    println!("## Bytes per sample");
    println!();
    println!("| what | bytes | samples | bytes/sample |");
    println!("|---|---:|---:|---:|");
    let row = |what: &str, bytes: u64, n: u64| {
        println!("| {what} | {bytes} | {n} | {:.3} |", bytes as f64 / n.max(1) as f64);
    };
    let p = &promlake;
    row("PromLake `samples`, flush files before compaction (Parquet)", p.before.data_bytes, p.before.rows);
    row("PromLake `samples` after compaction: Parquet of the snapshot", p.samples.data_bytes, p.samples.rows);
    row(
        "PromLake `samples` after compaction: Parquet + `_delta_log`",
        p.samples.data_bytes + p.samples.log_bytes,
        p.samples.rows,
    );
    row("PromLake all tables (samples, series, metadata: Parquet + `_delta_log`)", p.all_bytes(), p.samples.rows);
    if let Some(t) = &prometheus {
        row("Prometheus blocks as promtool wrote them (2 h)", t.before.block_bytes(), t.before.samples());
        row("Prometheus blocks after compaction (chunks + index + meta)", t.after.block_bytes(), t.after.samples());
        let chunks: u64 = t.after.blocks.iter().map(|b| b.chunks_bytes).sum();
        row("Prometheus after compaction, chunks only", chunks, t.after.samples());
        println!("| Prometheus WAL + chunks_head (not counted) | {} | | |", t.after.wal_bytes);
    }
    if let Some(t) = &prometheus {
        let prom = t.after.block_bytes() as f64 / t.after.samples().max(1) as f64;
        let only = p.samples.data_bytes as f64 / p.samples.rows.max(1) as f64;
        let all = p.all_bytes() as f64 / p.samples.rows.max(1) as f64;
        if t.after.samples() != p.samples.rows {
            println!(
                "WARNING: the two hold different sample counts (PromLake {}, Prometheus {})",
                p.samples.rows,
                t.after.samples()
            );
        }
        println!();
        println!(
            "ratio PromLake samples table / Prometheus blocks (bytes per sample): {:.3} (aim ≤ 0.25)",
            only / prom
        );
        println!(
            "ratio PromLake all tables + Delta logs / Prometheus blocks (bytes per sample): {:.3} (aim ≤ 0.25)",
            all / prom
        );
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// What PromLake's lake held.
struct PromLakeBytes {
    before: TableBytes,
    samples: TableBytes,
    series: TableBytes,
    metadata: TableBytes,
}

impl PromLakeBytes {
    fn all_bytes(&self) -> u64 {
        [&self.samples, &self.series, &self.metadata].iter().map(|t| t.data_bytes + t.log_bytes).sum()
    }
}

async fn promlake_side(args: &Args, workload: &Workload) -> anyhow::Result<PromLakeBytes> {
    println!();
    println!("## PromLake: gateway → embedded log → stream workers → maintenance (compaction)");
    let t = Instant::now();
    let pool = {
        let w = workload.clone();
        Arc::new(tokio::task::spawn_blocking(move || Pool::generate(&w, 2)).await?)
    };
    println!(
        "pool: {} requests, {} samples, prepared in {:.1} s",
        pool.requests(),
        pool.samples(),
        t.elapsed().as_secs_f64()
    );
    let pipeline = Pipeline::new(args.tmp_dir.as_deref()).await?;
    let (written, gateway) = measure(pipeline.ingest(&pool, args.concurrency)).await;
    let written = written?;
    drop(pool);
    println!(
        "gateway: {written} samples in {:.1} s ({:.0} samples/s, {:.2} cores, others {:.2} cores)",
        gateway.elapsed.as_secs_f64(),
        written as f64 / gateway.elapsed.as_secs_f64(),
        gateway.cores(),
        gateway.other_cores()
    );
    let high_watermarks = pipeline.high_watermarks().await?;
    // Defaults as `promlake serve` runs, except: every day partition with
    // more than one small file is compacted now (the hourly pass would do
    // the same to a past day, and to today once it holds 256 files), and
    // the background pass stays out of the way of the explicit one.
    let config = StreamWorkersConfig {
        compaction_min_files: 1,
        compaction_today_min_files: 1,
        maintenance_start_delay_ms: 7 * 86_400_000,
        ..StreamWorkersConfig::default()
    };
    let workers = pipeline.start_workers(config, &mut Registry::default()).await?;
    let (committed, phase) =
        measure(pipeline.wait_committed(&workers, &high_watermarks, Duration::from_secs(3_600))).await;
    committed?;
    println!(
        "workers: every offset committed in {:.1} s ({:.0} samples/s, {:.2} cores)",
        phase.elapsed.as_secs_f64(),
        written as f64 / phase.elapsed.as_secs_f64(),
        phase.cores()
    );
    let before = table_bytes(pipeline.lake(), WORKSPACE_ID, TableKind::Samples).await?;
    let (report, phase) = measure(workers.run_maintenance()).await;
    let report = report?;
    println!(
        "maintenance pass: {:?} in {:.1} s ({:.2} cores)",
        report.compacted,
        phase.elapsed.as_secs_f64(),
        phase.cores()
    );
    let samples = table_bytes(pipeline.lake(), WORKSPACE_ID, TableKind::Samples).await?;
    let series = table_bytes(pipeline.lake(), WORKSPACE_ID, TableKind::Series).await?;
    let metadata = table_bytes(pipeline.lake(), WORKSPACE_ID, TableKind::Metadata).await?;
    workers.shutdown().await;
    pipeline.close().await;
    println!();
    println!(
        "| table | files | Parquet bytes | rows | `_delta_log` bytes | directory bytes (incl. removed, not yet vacuumed) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, t) in
        [("samples before compaction", &before), ("samples", &samples), ("series", &series), ("metadata", &metadata)]
    {
        println!("| {name} | {} | {} | {} | {} | {} |", t.files, t.data_bytes, t.rows, t.log_bytes, t.dir_bytes);
    }
    println!();
    println!("`samples` after compaction, by column (compressed column chunks):");
    println!();
    println!("| column | bytes | bytes/sample |");
    println!("|---|---:|---:|");
    for (column, bytes) in &samples.columns {
        println!("| {column} | {bytes} | {:.3} |", *bytes as f64 / samples.rows.max(1) as f64);
    }
    if samples.rows != written {
        bail!("the samples table holds {} rows, the gateway wrote {written} samples", samples.rows);
    }
    Ok(PromLakeBytes { before, samples, series, metadata })
}

/// What Prometheus's data directory held.
struct PrometheusBytes {
    before: TsdbBytes,
    after: TsdbBytes,
}

async fn prometheus_side(args: &Args, workload: &Workload) -> anyhow::Result<PrometheusBytes> {
    println!();
    println!("## Prometheus: OpenMetrics → promtool tsdb create-blocks-from openmetrics → prometheus compacts");
    let bin = reference_bin_dir(args.reference_bin_dir.as_deref())?;
    println!("{}", version_line(&bin.join("prometheus"), "--version"));
    let dir = match &args.tmp_dir {
        Some(root) => tempfile::Builder::new().prefix("prometheus-storage").tempdir_in(root),
        None => tempfile::Builder::new().prefix("prometheus-storage").tempdir(),
    }?;
    let data = dir.path().join("data");
    let text = dir.path().join("openmetrics");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&text)?;
    let t = Instant::now();
    let (files, written) = {
        let (w, text) = (workload.clone(), text.clone());
        tokio::task::spawn_blocking(move || write_windows(&w, &text, BLOCK_MS)).await??
    };
    println!("OpenMetrics: {written} samples in {} files, written in {:.1} s", files.len(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    for f in &files {
        let out = std::process::Command::new(bin.join("promtool"))
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(f)
            .arg(&data)
            .output()
            .context("running promtool")?;
        if !out.status.success() {
            bail!("promtool failed on {}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
        }
        std::fs::remove_file(f)?;
    }
    let before = tsdb_bytes(&data)?;
    println!("promtool: {} blocks in {:.1} s", before.blocks.len(), t.elapsed().as_secs_f64());
    compact_with_prometheus(&bin, dir.path(), &data, Duration::from_secs(args.compaction_timeout_secs)).await?;
    let after = tsdb_bytes(&data)?;
    println!();
    println!("| block | hours | level | samples | series | chunks bytes | index bytes | bytes/sample |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for b in &after.blocks {
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {:.3} |",
            b.ulid,
            (b.max_time - b.min_time) as f64 / 3_600_000.0,
            b.level,
            b.samples,
            b.series,
            b.chunks_bytes,
            b.index_bytes,
            b.bytes() as f64 / b.samples.max(1) as f64
        );
    }
    if after.samples() != written {
        bail!("Prometheus's blocks hold {} samples, {written} were written", after.samples());
    }
    Ok(PrometheusBytes { before, after })
}

/// Runs Prometheus on `data` (blocks only, empty head) until its compactor
/// has merged what its plan allows: it checks every minute, so this waits
/// for at least one compaction and then for the block list to settle.
async fn compact_with_prometheus(bin: &Path, dir: &Path, data: &Path, timeout: Duration) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
    let mut child = tokio::process::Command::new(bin.join("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting prometheus")?;
    let started = Instant::now();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let mut last: Option<(Vec<String>, f64)> = None;
    let mut stable_since = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("prometheus exited with {status} (see {})", dir.join("prometheus.log").display());
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let metrics = match http.get(format!("http://127.0.0.1:{port}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        let compactions = sum_metric(&metrics, "prometheus_tsdb_compactions_total", "");
        let mut blocks: Vec<String> = std::fs::read_dir(data)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        blocks.sort();
        let now = (blocks.clone(), compactions);
        if last.as_ref() != Some(&now) {
            stable_since = Instant::now();
            last = Some(now);
        }
        let settled = stable_since.elapsed() >= Duration::from_secs(20) && !blocks.iter().any(|b| b.contains(".tmp"));
        // The compactor first runs about a minute after start.
        if settled && (compactions >= 1.0 || started.elapsed() > Duration::from_secs(150)) {
            println!("prometheus: {compactions} compactions, settled after {:.0} s", started.elapsed().as_secs_f64());
            break;
        }
        if started.elapsed() > timeout {
            bail!("prometheus's compaction did not settle within {timeout:?}");
        }
    }
    // SIGTERM: a clean shutdown (the head is empty, nothing else is written).
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    Ok(())
}
