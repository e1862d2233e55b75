//! `worker_bench`: how fast the stream workers turn what the log holds into
//! committed Delta tables, against how fast the gateway fills the log, on
//! the same cores in the same run.
//!
//! ```text
//! pool (N samples, prepared first) ─► Gateway ─► embedded log        phase 1: gateway + log alone
//!                                      log (N samples) ─► StreamWorkers ─► Delta tables
//!                                      until wait_for_offset(last offset, every partition)   phase 2: workers alone
//! ```
//!
//! See `benchmarks/README.md` ("Worker throughput").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::cli::{Machine, WorkloadArgs, load_average, now_ms, repo_root};
use benchmarks::disk::table_bytes;
use benchmarks::loadgen::Pool;
use benchmarks::pipeline::{Phase, Pipeline, WORKSPACE_ID, measure};
use clap::Parser;
use prometheus_client::registry::Registry;
use stream_workers::{StreamWorkersConfig, TableKind};

/// Stream workers' throughput (log → committed tables) against the
/// gateway's ingest rate (remote write → durable log).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Samples to send through the gateway, then through the workers.
    #[arg(long, default_value_t = 10_000_000)]
    samples: u64,
    /// Concurrent requests into the gateway.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The workers' `flush_interval_ms` (default: `promlake serve`'s).
    #[arg(long)]
    flush_interval_ms: Option<u64>,
    /// Runs (each on a fresh log and lake, same pool).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Where the temp directories go (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let machine = Machine::describe(&repo_root());
    let rounds = args.samples.div_ceil(args.workload.series.max(1) as u64).max(1) as usize;
    let workload = args.workload.workload(rounds, 15_000, (now_ms() / 15_000 - 1) * 15_000);
    let mut config = StreamWorkersConfig::default();
    if let Some(ms) = args.flush_interval_ms {
        config.flush_interval_ms = ms;
    }
    println!("# worker_bench: stream workers (log → committed tables) against the gateway (remote write → log)");
    println!("{machine}");
    let t = Instant::now();
    let pool = {
        let w = workload.clone();
        Arc::new(tokio::task::spawn_blocking(move || Pool::generate(&w, 2)).await?)
    };
    println!(
        "workload: {} series, {} samples per request, {} requests, {} samples (prepared in {:.1} s); {} partitions; \
         workers: flush_max_samples {}, flush_interval_ms {}, head_max_bytes {}",
        workload.series,
        workload.samples_per_request,
        pool.requests(),
        pool.samples(),
        t.elapsed().as_secs_f64(),
        benchmarks::pipeline::PARTITIONS,
        config.flush_max_samples,
        config.flush_interval_ms,
        config.head_max_bytes
    );
    println!();
    println!(
        "| run | phase | samples | seconds | samples/s | cores busy | other processes cores | samples per CPU-s | load average after |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    let mut gateway_rates = Vec::new();
    let mut worker_rates = Vec::new();
    let mut gateway_cpu = Vec::new();
    let mut worker_cpu = Vec::new();
    for run in 1..=args.repeat.max(1) {
        let pipeline = Pipeline::new(args.tmp_dir.as_deref()).await?;
        let (written, gateway) = measure(pipeline.ingest(&pool, args.concurrency)).await;
        let written = written?;
        print_row(run, "gateway + log", written, &gateway);
        let high_watermarks = pipeline.high_watermarks().await?;
        let workers = pipeline.start_workers(config.clone(), &mut Registry::default()).await?;
        let (committed, phase) =
            measure(pipeline.wait_committed(&workers, &high_watermarks, Duration::from_secs(3_600))).await;
        committed?;
        print_row(run, "stream workers", written, &phase);
        workers.shutdown().await;
        let rows = table_bytes(pipeline.lake(), WORKSPACE_ID, TableKind::Samples).await?.rows;
        pipeline.close().await;
        if rows != written {
            bail!("the samples table holds {rows} rows, the gateway wrote {written} samples");
        }
        let rate = |p: &Phase| written as f64 / p.elapsed.as_secs_f64();
        gateway_rates.push(rate(&gateway));
        worker_rates.push(rate(&phase));
        gateway_cpu.push(written as f64 / gateway.cpu_seconds.max(1e-9));
        worker_cpu.push(written as f64 / phase.cpu_seconds.max(1e-9));
    }
    println!();
    let (g, w) = (median(&gateway_rates), median(&worker_rates));
    let (gc, wc) = (median(&gateway_cpu), median(&worker_cpu));
    println!("median gateway + log: {g:.0} samples/s, {gc:.0} samples per CPU-s");
    println!("median stream workers: {w:.0} samples/s, {wc:.0} samples per CPU-s");
    println!("ratio workers / gateway (samples/s): {:.2} (aim ≥ 1)", w / g);
    println!("ratio workers / gateway (samples per CPU-s): {:.2} (aim ≥ 1)", wc / gc);
    Ok(())
}

fn print_row(run: usize, phase: &str, samples: u64, p: &Phase) {
    println!(
        "| {run} | {phase} | {samples} | {:.1} | {:.0} | {:.2} | {:.2} | {:.0} | {} |",
        p.elapsed.as_secs_f64(),
        samples as f64 / p.elapsed.as_secs_f64(),
        p.cores(),
        p.other_cores(),
        samples as f64 / p.cpu_seconds.max(1e-9),
        load_average()
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
