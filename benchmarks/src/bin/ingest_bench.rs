//! `ingest_bench`: PromLake, Prometheus and VictoriaMetrics, one after the
//! other on this machine, receiving the same prepared remote-write requests.
//!
//! ```text
//! prepare pool (timed separately, never during a measurement)
//! for each target: start (fresh temp dir) → warm up → snapshot → measure → snapshot → kill
//! print: settings, machine, table (acked samples/s, p50/p99, server CPU), ratios, caveats
//! ```
//!
//! See `benchmarks/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::cli::{Machine, WorkloadArgs, now_ms, promlake_bin, protocol_name, reference_bin_dir, repo_root};
use benchmarks::driver::{Driver, Limit, Report};
use benchmarks::loadgen::{Pool, series_per_host};
use benchmarks::targets::{Binaries, Kind, Snapshot, Target};
use clap::Parser;

/// Compare remote-write ingestion of PromLake, Prometheus and VictoriaMetrics.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Concurrent requests (connections) per target.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured seconds per target.
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// Warm-up seconds per target (sent, not measured).
    #[arg(long, default_value_t = 5.0)]
    warmup_secs: f64,
    /// Targets, comma-separated, in order.
    #[arg(long, default_value = "promlake,prometheus,victoriametrics", value_delimiter = ',')]
    targets: Vec<String>,
    /// The release promlake binary (default: $CARGO_TARGET_DIR/release/promlake, or target/release/promlake).
    #[arg(long)]
    promlake_bin: Option<PathBuf>,
    /// Folder with `prometheus` and `victoria-metrics` (default: run ../shared/tools/fetch-reference-binaries).
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
    /// Highest rate any target is expected to reach, samples/s: sizes the
    /// pool so it lasts warm-up + measurement (a run that uses the pool up
    /// stops early and says so).
    #[arg(long, default_value_t = 2_500_000.0)]
    max_rate: f64,
    /// Cap on the prepared pool's compressed size, MiB.
    #[arg(long, default_value_t = 4_000)]
    pool_mib: usize,
    /// Longest time span the pool's timestamps may cover, seconds; the
    /// sample interval shrinks below 15 s to fit (keeps Prometheus's head
    /// within one block range, so no compaction runs during a measurement).
    #[arg(long, default_value_t = 3_600)]
    max_span_secs: i64,
    /// Tokio worker threads of the load generator (1: it uses at most one core).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Run the whole list of targets this many times, alternating (A B C A B C …),
    /// so noise from other processes spreads over all targets; ratios use
    /// each target's median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Where the targets' temp directories go (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
}

/// One target's measured outcome.
struct Row {
    kind: Kind,
    report: Report,
    before: Snapshot,
    after: Snapshot,
}

impl Row {
    fn stored(&self) -> f64 {
        self.after.stored_samples - self.before.stored_samples
    }
    fn cpu(&self) -> f64 {
        self.after.cpu_seconds - self.before.cpu_seconds
    }
    fn client_cpu(&self) -> f64 {
        self.after.client_cpu_seconds - self.before.client_cpu_seconds
    }
}

fn binaries(args: &Args, kinds: &[Kind]) -> anyhow::Result<Binaries> {
    let promlake = promlake_bin(args.promlake_bin.as_deref());
    if kinds.contains(&Kind::PromLake) && !promlake.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p promlake` or pass --promlake-bin",
            promlake.display()
        );
    }
    let reference = if args.reference_bin_dir.is_some() || kinds.iter().any(|k| *k != Kind::PromLake) {
        reference_bin_dir(args.reference_bin_dir.as_deref())?
    } else {
        PathBuf::new()
    };
    Ok(Binaries { promlake, reference })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kinds: Vec<Kind> = args.targets.iter().map(|t| Kind::parse(t)).collect::<anyhow::Result<_>>()?;
    let bins = binaries(&args, &kinds)?;
    let machine = Machine::describe(&repo_root());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Size the pool: enough rounds for the fastest expected target, within
    // the memory cap; estimate a round's size from one generated round.
    let probe = Pool::generate(&args.workload.workload(1, 15_000, now_ms()), threads);
    let round_bytes = probe.bytes().max(1);
    let round_samples = probe.samples().max(1);
    let wanted = ((args.max_rate * (args.warmup_secs + args.duration_secs)) / round_samples as f64).ceil() as usize + 1;
    let cap = (args.pool_mib << 20) / round_bytes;
    let rounds = wanted.min(cap).max(2);
    let scrapes = (rounds * args.workload.samples_per_series.max(1)) as i64;
    let interval_ms = (args.max_span_secs * 1000 / scrapes.max(1)).clamp(1, 15_000);
    let workload = args.workload.workload(rounds, interval_ms, now_ms());
    let started = Instant::now();
    let pool = Arc::new(Pool::generate(&workload, threads));
    let prepare_secs = started.elapsed().as_secs_f64();

    println!("# PromLake ingestion benchmark\n");
    println!("- {machine}");
    println!(
        "- workload: {} series ({} hosts × {} node_exporter series), {} samples/request ({} per series), churn {}/round, {}{}",
        workload.series,
        workload.series.div_ceil(series_per_host()),
        series_per_host(),
        workload.samples_per_request,
        workload.samples_per_series,
        workload.churn,
        protocol_name(workload.protocol),
        if workload.protocol == ingest_gateway::Protocol::V2 && workload.v2_metadata {
            " with per-series metadata"
        } else {
            ""
        }
    );
    println!(
        "- pool: {} requests, {} samples, {:.0} MiB compressed ({:.1} bytes/sample), {} rounds {} ms apart ending now; prepared in {:.1} s before any measurement{}",
        pool.requests(),
        pool.samples(),
        pool.bytes() as f64 / 1048576.0,
        pool.bytes() as f64 / pool.samples().max(1) as f64,
        rounds,
        interval_ms,
        prepare_secs,
        if rounds < wanted { format!(" (capped by --pool-mib; {wanted} rounds wanted)") } else { String::new() }
    );
    if workload.chunks() < args.concurrency {
        println!(
            "- WARNING: only {} requests per round (series / samples per request) for {} connections: at most {} requests can be in flight without reordering a series' samples",
            workload.chunks(),
            args.concurrency,
            workload.chunks()
        );
    }
    println!(
        "- driver: {} concurrent connections, {} s warm-up + {} s measured per target, load generator on {} tokio thread(s) of the same machine",
        args.concurrency, args.warmup_secs, args.duration_secs, args.client_threads
    );
    for k in &kinds {
        println!("- {}: {}", k.name(), bins.version(*k));
    }
    println!();

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads.max(1)).enable_all().build()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for kind in (0..args.repeat.max(1)).flat_map(|_| kinds.iter()) {
        eprintln!("== {}: starting", kind.name());
        let row = runtime.block_on(measure(*kind, &bins, &args, pool.clone()));
        match row {
            Ok(row) => {
                eprintln!(
                    "== {}: {:.0} samples/s acknowledged, p50 {:.1} ms, p99 {:.1} ms",
                    kind.name(),
                    row.report.samples_per_sec(),
                    ms(row.report.latency(0.5)),
                    ms(row.report.latency(0.99))
                );
                rows.push(row);
            }
            Err(e) => {
                eprintln!("== {}: failed: {e:#}", kind.name());
                failures.push((*kind, format!("{e:#}")));
            }
        }
        // Let the machine settle (page cache writeback of the previous target).
        std::thread::sleep(Duration::from_secs(2));
    }
    print_table(&rows, &args);
    for (kind, e) in &failures {
        println!("- {}: not measured: {e}", kind.name());
    }
    Ok(())
}

async fn measure(kind: Kind, bins: &Binaries, args: &Args, pool: Arc<Pool>) -> anyhow::Result<Row> {
    let target = Target::start(kind, bins, args.tmp_dir.as_deref()).await?;
    let result = async {
        let driver = Driver::new(pool, &target.write_url, args.concurrency)?;
        let warm = driver.run(args.concurrency, Limit::Duration(Duration::from_secs_f64(args.warmup_secs))).await;
        if warm.ok == 0 {
            bail!("no request succeeded during warm-up: {}", warm.first_failure.unwrap_or_default());
        }
        let before = target.snapshot().await;
        if before.stored_samples < warm.samples_acked as f64 * 0.01 {
            bail!(
                "acknowledged {} samples during warm-up but its own metric counted {:.0} stored: it does not understand this request format{}",
                warm.samples_acked,
                before.stored_samples,
                if kind == Kind::VictoriaMetrics && args.workload.protocol == ingest_gateway::Protocol::V2 {
                    " (VictoriaMetrics reads remote write 2.0 bodies as 1.0)"
                } else {
                    ""
                }
            );
        }
        if driver.remaining() == 0 {
            bail!("the warm-up used the whole pool: raise --max-rate or --pool-mib");
        }
        let report = driver.run(args.concurrency, Limit::Duration(Duration::from_secs_f64(args.duration_secs))).await;
        let after = target.snapshot().await;
        Ok(Row { kind, report, before, after })
    }
    .await;
    target.stop().await;
    result
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_table(rows: &[Row], args: &Args) {
    println!(
        "| target | acked samples/s | p50 ms | p99 ms | requests ok / non-2xx / errors | stored by server (own metric) | server cores busy | load generator cores | other processes cores | machine iowait / idle cores | samples per server CPU-s | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|");
    for r in rows {
        let cpu = r.cpu();
        let secs = r.report.elapsed.as_secs_f64();
        let m = r.after.machine.since(&r.before.machine);
        let wall = r.after.at.duration_since(r.before.at).as_secs_f64().max(0.1);
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} / {} / {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} | {:.0} | {:.0} |",
            r.kind.name(),
            r.report.samples_per_sec(),
            ms(r.report.latency(0.5)),
            ms(r.report.latency(0.99)),
            r.report.ok,
            r.report.rejected,
            r.report.errors,
            r.stored(),
            cpu / secs.max(1e-9),
            r.client_cpu() / secs.max(1e-9),
            (m.busy - cpu - r.client_cpu()).max(0.0) / wall,
            m.iowait / wall,
            m.idle / wall,
            r.report.samples_acked as f64 / cpu.max(1e-9),
            r.after.peak_rss_bytes as f64 / 1048576.0,
        );
    }
    println!();
    // The median run of each target (the only run without --repeat).
    let rate = |k: Kind| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r.kind == k).map(|r| r.report.samples_per_sec()).collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    if args.repeat > 1 {
        for k in [Kind::PromLake, Kind::Prometheus, Kind::VictoriaMetrics] {
            if let Some(m) = rate(k) {
                println!(
                    "- {}: median {m:.0} acknowledged samples/s over {} runs",
                    k.name(),
                    rows.iter().filter(|r| r.kind == k).count()
                );
            }
        }
    }
    if let Some(p) = rate(Kind::PromLake) {
        for other in [Kind::Prometheus, Kind::VictoriaMetrics] {
            if let Some(o) = rate(other).filter(|o| *o > 0.0) {
                println!("- PromLake / {}: {:.2}× acknowledged samples/s", other.name(), p / o.max(1e-9));
            }
        }
        for r in rows.iter().filter(|r| r.kind == Kind::PromLake) {
            let fsyncs = r.after.fsyncs - r.before.fsyncs;
            if fsyncs > 0.0 {
                println!(
                    "- PromLake: {:.0} fsyncs during the measurement ({:.0}/s, {:.0} samples per fsync)",
                    fsyncs,
                    fsyncs / r.report.elapsed.as_secs_f64(),
                    r.report.samples_acked as f64 / fsyncs
                );
            }
        }
    }
    for r in rows {
        if r.report.exhausted {
            println!(
                "- {}: the prepared pool ran out after {:.1} s; the rate is over that time (raise --max-rate or --pool-mib)",
                r.kind.name(),
                r.report.elapsed.as_secs_f64()
            );
        }
        if let Some(f) = &r.report.first_failure {
            println!("- {}: first failure: {f}", r.kind.name());
        }
        let stored = r.stored();
        if (stored - r.report.samples_acked as f64).abs() > r.report.samples_acked as f64 * 0.01 + 1.0 {
            println!(
                "- {}: WARNING: acknowledged {} samples but its own metric counted {stored:.0} stored: acknowledgement does not mean stored here{}",
                r.kind.name(),
                r.report.samples_acked,
                if r.kind == Kind::VictoriaMetrics && args.workload.protocol == ingest_gateway::Protocol::V2 {
                    " (VictoriaMetrics does not decode RW 2.0: it reads the body as RW 1.0)"
                } else {
                    ""
                }
            );
        }
    }
    println!("\nCaveats:");
    println!(
        "- PromLake acknowledges a request only after its embedded log has fsynced it (group commit). Prometheus acknowledges after appending to its in-memory head and writing its WAL without fsync per request; VictoriaMetrics after buffering in memory (flushed about every second). Neither of them fsyncs before answering, so the comparison favours them on durability."
    );
    println!(
        "- The load generator runs on the same cores as the server ('load generator cores'); the cores columns are CPU seconds per wall second, so the machine's limit is its core count. 'other processes' is everything else on the machine: well above 0, and the run was disturbed."
    );
    println!(
        "- Samples are sent in time order per series (Prometheus rejects out-of-order samples), so each request's series wait for their previous request: like Prometheus's own remote-write shards."
    );
}
