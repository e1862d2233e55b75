//! `loadgen`: prepares a node_exporter-like remote-write workload, then sends
//! it to one URL and prints acknowledged samples/s and latency.
//!
//! ```sh
//! loadgen --url http://127.0.0.1:9464/workspaces/ws-…/api/v1/remote_write --series 20000 --concurrency 8 --duration-secs 20
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use benchmarks::cli::{WorkloadArgs, now_ms, protocol_name};
use benchmarks::driver::{Driver, Limit};
use benchmarks::loadgen::Pool;
use clap::Parser;

/// Send prepared node_exporter-like remote-write traffic to one URL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Remote-write URL.
    #[arg(long)]
    url: String,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Rounds to prepare (each: every series once per --samples-per-series).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Milliseconds between two samples of a series (timestamps end now).
    #[arg(long, default_value_t = 15_000)]
    interval_ms: i64,
    /// Concurrent requests (connections).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds (default: when the pool is used up).
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Stop after this many requests.
    #[arg(long, conflicts_with = "duration_secs")]
    requests: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workload = args.workload.workload(args.rounds, args.interval_ms, now_ms());
    let started = Instant::now();
    let pool = Arc::new(Pool::generate(&workload, std::thread::available_parallelism().map_or(1, |n| n.get())));
    eprintln!(
        "prepared {} requests, {} samples, {:.1} MiB compressed ({}) in {:.1} s",
        pool.requests(),
        pool.samples(),
        pool.bytes() as f64 / 1048576.0,
        protocol_name(workload.protocol),
        started.elapsed().as_secs_f64()
    );
    let limit = match (args.duration_secs, args.requests) {
        (Some(s), _) => Limit::Duration(Duration::from_secs_f64(s)),
        (None, Some(n)) => Limit::Requests(n),
        (None, None) => Limit::Requests(u64::MAX),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let driver = Driver::new(pool.clone(), &args.url, args.concurrency)?;
        anyhow::Ok(driver.run(args.concurrency, limit).await)
    })?;
    println!(
        "{:.0} samples/s acknowledged ({} samples in {:.2} s) · requests: {} ok, {} rejected, {} errors · latency p50 {:.1} ms, p99 {:.1} ms{}",
        report.samples_per_sec(),
        report.samples_acked,
        report.elapsed.as_secs_f64(),
        report.ok,
        report.rejected,
        report.errors,
        report.latency(0.50).as_secs_f64() * 1e3,
        report.latency(0.99).as_secs_f64() * 1e3,
        if report.exhausted { " · pool used up" } else { "" }
    );
    if let Some(f) = &report.first_failure {
        println!("first failure: {f}");
    }
    Ok(())
}
