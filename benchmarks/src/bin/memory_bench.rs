//! `memory_bench`: resident memory per active series, PromLake against
//! Prometheus 3.5, each receiving N node_exporter-like series at a steady
//! scrape rate over remote write.
//!
//! ```text
//! for N in --series, for each target:
//!   prepare the pool (timestamps = send times) → start target (fresh dir) → idle 10 s → baseline RSS
//!   every interval: one round (one sample of every series), C requests in flight
//!   RSS sampled every second; steady state = mean over the last third of the run
//!   per series = (steady − baseline) / N
//! ```
//!
//! See `benchmarks/README.md` ("Memory per active series").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::cli::{Machine, load_average, now_ms, promlake_bin, reference_bin_dir, repo_root, version_line};
use benchmarks::loadgen::{Pool, Workload, content_type};
use benchmarks::targets::{Binaries, Kind, Memory, Target, proc_memory, proc_usage, sum_metric};
use clap::Parser;
use futures::StreamExt;
use ingest_gateway::Protocol;

/// Resident memory per active series: PromLake against Prometheus.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Active series counts to measure, comma-separated.
    #[arg(long, default_value = "100000,200000", value_delimiter = ',')]
    series: Vec<usize>,
    /// Scrape interval: one sample of every series this often, seconds.
    #[arg(long, default_value_t = 15)]
    interval_secs: u64,
    /// How long each target receives samples, seconds.
    #[arg(long, default_value_t = 240)]
    duration_secs: u64,
    /// Samples per request.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Targets, comma-separated, in order.
    #[arg(long, default_value = "promlake,prometheus", value_delimiter = ',')]
    targets: Vec<String>,
    /// The release promlake binary (default: $CARGO_TARGET_DIR/release/promlake).
    #[arg(long)]
    promlake_bin: Option<PathBuf>,
    /// Folder with `prometheus` (default: run ../shared/tools/fetch-reference-binaries).
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the targets' temp directories go (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
}

/// One target's outcome at one series count.
struct Row {
    kind: Kind,
    series: usize,
    baseline: Memory,
    steady_rss: f64,
    steady_anon: f64,
    end: Memory,
    cpu_seconds: f64,
    other_cores: f64,
    rejected: u64,
    /// PromLake: `promlake_stream_head_bytes`; Prometheus: `go_memstats_heap_inuse_bytes`.
    gauge: f64,
}

impl Row {
    fn per_series(&self) -> f64 {
        (self.steady_rss - self.baseline.rss as f64) / self.series as f64
    }

    fn anon_per_series(&self) -> f64 {
        (self.steady_anon - self.baseline.anon as f64) / self.series as f64
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let kinds: Vec<Kind> = args.targets.iter().map(|t| Kind::parse(t)).collect::<anyhow::Result<_>>()?;
    let bins = Binaries {
        promlake: promlake_bin(args.promlake_bin.as_deref()),
        reference: if kinds.contains(&Kind::Prometheus) {
            reference_bin_dir(args.reference_bin_dir.as_deref())?
        } else {
            PathBuf::new()
        },
    };
    let machine = Machine::describe(&repo_root());
    println!("# memory_bench: resident memory per active series");
    println!("{machine}");
    println!("promlake: {}", version_line(&bins.promlake, "--version"));
    if kinds.contains(&Kind::Prometheus) {
        println!("{}", version_line(&bins.reference.join("prometheus"), "--version"));
    }
    println!(
        "scrape interval {} s, {} s per target, {} samples per request, {} in flight; steady state = mean RSS over the last third",
        args.interval_secs, args.duration_secs, args.batch, args.concurrency
    );
    let mut rows = Vec::new();
    for &n in &args.series {
        for &kind in &kinds {
            let row = measure(&args, &bins, kind, n).await?;
            println!(
                "{} {n} series: baseline {:.1} MiB, steady {:.1} MiB → {:.0} bytes/series (anon {:.0}); load {}",
                kind.name(),
                mib(row.baseline.rss as f64),
                mib(row.steady_rss),
                row.per_series(),
                row.anon_per_series(),
                load_average()
            );
            rows.push(row);
        }
    }
    println!();
    println!(
        "| target | series | baseline RSS MiB | steady RSS MiB | end RSS MiB | peak RSS MiB | RSS bytes/series | RssAnon bytes/series | head or heap gauge MiB | server CPU-s | other processes cores | rejected requests |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2} | {} |",
            r.kind.name(),
            r.series,
            mib(r.baseline.rss as f64),
            mib(r.steady_rss),
            mib(r.end.rss as f64),
            mib(r.end.peak as f64),
            r.per_series(),
            r.anon_per_series(),
            mib(r.gauge),
            r.cpu_seconds,
            r.other_cores,
            r.rejected
        );
    }
    println!();
    for &n in &args.series {
        let of = |k: Kind| rows.iter().find(|r| r.kind == k && r.series == n);
        if let (Some(p), Some(q)) = (of(Kind::PromLake), of(Kind::Prometheus)) {
            println!(
                "ratio PromLake / Prometheus RSS per active series at {n} series: {:.2} (aim ≤ 0.5); RssAnon: {:.2}",
                p.per_series() / q.per_series(),
                p.anon_per_series() / q.anon_per_series()
            );
        }
    }
    Ok(())
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

async fn measure(args: &Args, bins: &Binaries, kind: Kind, n: usize) -> anyhow::Result<Row> {
    let interval_ms = (args.interval_secs.max(1) * 1000) as i64;
    let rounds = (args.duration_secs / args.interval_secs.max(1)).max(3) as usize;
    // Timestamps are the send times: round r goes at start + r × interval.
    let lead_ms = 20_000 + n as i64 / 20;
    let start_ms = now_ms() + lead_ms;
    let workload = Workload {
        series: n,
        samples_per_request: args.batch,
        samples_per_series: 1,
        churn: 0.0,
        rounds,
        interval_ms,
        end_ms: start_ms + (rounds as i64 - 1) * interval_ms,
        protocol: Protocol::V1,
        v2_metadata: false,
        seed: args.seed,
    };
    let pool = Arc::new(tokio::task::spawn_blocking(move || Pool::generate(&workload, 2)).await?);
    let target = Target::start(kind, bins, args.tmp_dir.as_deref()).await?;
    let pid = target.pid().unwrap_or(0);
    let wait_ms = (start_ms - now_ms()).max(10_000);
    tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
    let baseline = proc_memory(pid);
    let (cpu0, machine0) = (proc_usage(pid).0, benchmarks::targets::machine_cpu());
    let client0 = proc_usage(std::process::id()).0;

    let sampling = {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = tokio::spawn(async move {
            let mut out = Vec::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                out.push(proc_memory(pid));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            out
        });
        (stop, handle)
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).tcp_nodelay(true).build()?;
    let started = Instant::now();
    let mut rejected = 0u64;
    for round in 0..rounds {
        let at = Duration::from_millis(round as u64 * interval_ms as u64);
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let results: Vec<bool> = futures::stream::iter(pool.chunks.iter().map(|c| c[round].body.clone()))
            .map(|body| {
                let http = http.clone();
                let url = target.write_url.clone();
                async move {
                    http.post(url)
                        .header("Content-Type", content_type(Protocol::V1))
                        .header("Content-Encoding", "snappy")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        rejected += results.iter().filter(|ok| !**ok).count() as u64;
    }
    // One more interval without samples would let PromLake flush its head;
    // a steady scrape never pauses, so measure right after the last round.
    tokio::time::sleep(Duration::from_millis(interval_ms as u64).saturating_sub(Duration::from_secs(1))).await;
    let elapsed = started.elapsed().as_secs_f64();
    sampling.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampling.1.await?;
    let end = proc_memory(pid);
    let cpu_seconds = proc_usage(pid).0 - cpu0;
    let machine = benchmarks::targets::machine_cpu().since(&machine0);
    let client = proc_usage(std::process::id()).0 - client0;
    let metrics = match reqwest::get(format!("{}/metrics", target.base_url)).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let gauge = match kind {
        Kind::PromLake => sum_metric(&metrics, "promlake_stream_head_bytes", ""),
        _ => sum_metric(&metrics, "go_memstats_heap_inuse_bytes", ""),
    };
    target.stop().await;
    if samples.is_empty() {
        bail!("no memory samples of {}", kind.name());
    }
    let last = &samples[samples.len() * 2 / 3..];
    let mean = |f: fn(&Memory) -> u64| last.iter().map(|m| f(m) as f64).sum::<f64>() / last.len() as f64;
    Ok(Row {
        kind,
        series: n,
        baseline,
        steady_rss: mean(|m| m.rss),
        steady_anon: mean(|m| m.anon),
        end,
        cpu_seconds,
        other_cores: ((machine.busy - cpu_seconds - client) / elapsed).max(0.0),
        rejected,
        gauge,
    })
}
