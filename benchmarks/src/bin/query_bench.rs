//! `query_bench`: PromQL query latency (p50, p95), PromLake against
//! Prometheus 3.5 and VictoriaMetrics (single node), on the same samples,
//! side by side in one run.
//!
//! ```text
//! workload (node_exporter-like, --series × --hours at 15 s, ending now)
//!   + classic histograms made here (http_request_duration_seconds_{bucket,sum,count}, 20 label sets)
//!   ──► one RW 1.0 pool, encoded before anything is timed, sent round by round (time order)
//!         ├─► promlake serve --auth none (HTTP): remote write → log → stream workers → Delta tables
//!         │     wait: every sample committed to the `samples` table, count_over_time complete
//!         ├─► prometheus --web.enable-remote-write-receiver: head → 2 h blocks → its compactions
//!         │     wait: count_over_time complete, compactions settled
//!         └─► victoria-metrics -retentionPeriod=100y -search.disableCache -search.latencyOffset=0s
//!               wait: /internal/force_flush, every row in its parts, merges settled, count_over_time complete
//! queries: 5 expressions × (instant at the end, range 1 h at 15 s, range --hours at --hours/240)
//!   warm-up, then --repeat rounds over the targets (the first target rotates every round),
//!   one HTTP client (GET, keep-alive) for all
//!   ──► p50, p95 per target; ratios PromLake / Prometheus and PromLake / VictoriaMetrics (< 1: PromLake faster)
//! ```
//!
//! The servers get the very same remote-write requests, so they hold the
//! same samples bit for bit; the harness checks each counts every sample of
//! sampled series before it measures, and compares every answer's series,
//! points and value sum with Prometheus's.
//!
//! See `benchmarks/README.md` ("Query latency").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use benchmarks::cli::{Machine, load_average, now_ms, promlake_bin, reference_bin_dir, repo_root};
use benchmarks::loadgen::{
    GeneratedSeries, Kind as SeriesKind, Pool, PreparedRequest, Workload, compress, content_type, encode_v1,
};
use benchmarks::targets::{Binaries, Kind, PROMLAKE_CONFIG, Target, machine_cpu, proc_usage, sum_metric};
use bytes::Bytes;
use clap::Parser;
use ingest_gateway::Protocol;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schemas::prompb::Label;

/// PromQL query latency: PromLake against Prometheus and VictoriaMetrics, same samples.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Active node_exporter-like series (161 per host); 280 histogram series come on top.
    #[arg(long, default_value_t = 2_000)]
    series: usize,
    /// Hours of synthetic time at a 15 s interval, ending now; also the long range query.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Measured repetitions of each query on each target (after the warm-up);
    /// 0 with `--warmup 0` loads and checks only (no measurement).
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Warm-up repetitions of each query on each target (not measured).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Stop repeating a query on a target once it has taken this long (at least 5 repetitions run).
    #[arg(long, default_value_t = 60)]
    budget_secs: u64,
    /// Samples per remote-write request while loading (one per series).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seed of the generators.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The release promlake binary (default: $CARGO_TARGET_DIR/release/promlake).
    #[arg(long)]
    promlake_bin: Option<PathBuf>,
    /// Folder with `prometheus` and `victoria-metrics` (default: run ../shared/tools/fetch-reference-binaries).
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
    /// Where the servers' temp directories go (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Leave VictoriaMetrics out (PromLake against Prometheus only).
    #[arg(long)]
    skip_victoriametrics: bool,
    /// After the run, keep the servers (and their data) running and print
    /// their query URLs, process ids and data directories, until Ctrl-C or
    /// SIGTERM (for profiling a server on the loaded data).
    #[arg(long)]
    keep_running: bool,
}

const INTERVAL_MS: i64 = 15_000;

/// PromLake's config: the ingestion rate limit out of the way (as
/// `ingest_bench`), and the first lake maintenance pass (compaction,
/// retention, vacuum: an hour apart, the first a minute after start by
/// default) moved out of the run, so it neither lands inside a measurement
/// nor changes the files being read half-way.
fn promlake_config() -> String {
    format!("{PROMLAKE_CONFIG}\n[stream_workers]\nmaintenance_start_delay_ms = 86400000\n")
}

/// VictoriaMetrics's flags besides its data path and address: no retention
/// limit (so `--hours` may exceed its default month); no response cache
/// (its rollup result cache would answer the repeated range queries, and the
/// instant ones with windows over 3 h, from memory, and with the cache on it
/// also shifts a range query's start and end to multiples of the step, so
/// its points would not be Prometheus's); and no latency offset (by default
/// it hides the last 30 s before now, and points of ranges with steps up to a
/// minute within them).
const VICTORIAMETRICS_ARGS: &[&str] = &["-retentionPeriod=100y", "-search.disableCache", "-search.latencyOffset=0s"];

/// The expressions measured, each as an instant query and two range queries.
const QUERIES: &[(&str, &str)] = &[
    ("selector", "node_load1"),
    ("rate", "rate(node_network_receive_bytes_total[5m])"),
    ("sum by rate", "sum by (instance) (rate(node_cpu_seconds_total[5m]))"),
    ("histogram_quantile", "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("join", "node_filesystem_avail_bytes / node_filesystem_size_bytes"),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bins = Binaries {
        promlake: promlake_bin(args.promlake_bin.as_deref()),
        reference: reference_bin_dir(args.reference_bin_dir.as_deref())?,
    };
    let machine = Machine::describe(&repo_root());
    let rounds = ((args.hours * 3_600_000.0) / INTERVAL_MS as f64).round().max(1.0) as usize;
    // Whole 15-second steps ending a minute ago.
    let end_ms = (now_ms() / INTERVAL_MS - 4) * INTERVAL_MS;
    let workload = Workload {
        series: args.series.max(1),
        samples_per_request: args.batch.max(1),
        samples_per_series: 1,
        churn: 0.0,
        rounds,
        interval_ms: INTERVAL_MS,
        end_ms,
        protocol: Protocol::V1,
        v2_metadata: false,
        seed: args.seed,
    };
    let mut kinds = vec![Kind::PromLake, Kind::Prometheus];
    if !args.skip_victoriametrics {
        kinds.push(Kind::VictoriaMetrics);
    }
    println!(
        "# query_bench: PromQL query latency, PromLake against {} on the same samples",
        kinds[1..].iter().map(|k| side_name(*k)).collect::<Vec<_>>().join(" and ")
    );
    println!("{machine}");
    for kind in &kinds {
        println!("{}: {}", kind.name(), bins.version(*kind));
    }
    if !args.skip_victoriametrics {
        println!("victoriametrics flags: {}", VICTORIAMETRICS_ARGS.join(" "));
    }
    println!("load average at start: {}", load_average());

    let t = Instant::now();
    let pool = {
        let w = workload.clone();
        let seed = args.seed;
        tokio::task::spawn_blocking(move || {
            let mut pool = Pool::generate(&w, 2);
            pool.chunks.push(histogram_requests(&w, seed));
            pool
        })
        .await?
    };
    println!(
        "data: {} node_exporter-like series + {} histogram series × {rounds} scrapes at 15 s ({:.1} h ending {end_ms}), \
         {} samples in {} RW 1.0 requests ({:.0} MiB), prepared in {:.1} s",
        workload.series,
        HISTOGRAM_SERIES,
        args.hours,
        pool.samples(),
        pool.requests(),
        pool.bytes() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(180))
        .build()
        .context("building the HTTP client")?;
    // Loaded one after the other, each round by round, in `kinds` order.
    let mut targets = Vec::new();
    for kind in &kinds {
        let target = match kind {
            Kind::PromLake => {
                Target::start_with_config(Kind::PromLake, &bins, args.tmp_dir.as_deref(), &promlake_config()).await?
            }
            Kind::Prometheus => Target::start(Kind::Prometheus, &bins, args.tmp_dir.as_deref()).await?,
            Kind::VictoriaMetrics => {
                Target::start_with_args(Kind::VictoriaMetrics, &bins, args.tmp_dir.as_deref(), "", VICTORIAMETRICS_ARGS)
                    .await?
            }
        };
        load(&http, &target, &pool).await?;
        targets.push(target);
    }
    let samples = pool.samples();
    drop(pool);
    for target in &targets {
        let timeout = Duration::from_secs(600);
        match target.kind {
            Kind::PromLake => wait_promlake_committed(&http, target, samples, timeout).await?,
            Kind::Prometheus => wait_prometheus_settled(&http, target, timeout).await?,
            Kind::VictoriaMetrics => wait_victoriametrics_flushed(&http, target, samples, timeout).await?,
        }
    }
    let sides: Vec<Side> = targets.iter().map(Side::new).collect();
    check_complete(&http, &sides, end_ms, rounds).await?;
    println!("load average before measuring: {}", load_average());

    let mut results = Vec::new();
    if args.repeat + args.warmup > 0 {
        println!();
        for case in &cases(end_ms, args.hours) {
            let r = measure_case(&http, &sides, case, &args).await;
            let summaries: Vec<String> =
                sides.iter().zip(&r.sides).map(|(side, s)| format!("{} {}", side.name, s.summary())).collect();
            println!(
                "{:<20} {:<13} {} · others {:.2} cores · load {}",
                case.name,
                case.shape,
                summaries.join(" · "),
                r.other_cores,
                load_average()
            );
            results.push(r);
        }
        report(&results, &kinds, &machine);
    }
    if args.keep_running {
        keep_running(&sides, &targets).await?;
    }
    for target in targets {
        target.stop().await;
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// `Kind`'s name in tables.
fn side_name(kind: Kind) -> &'static str {
    match kind {
        Kind::PromLake => "PromLake",
        Kind::Prometheus => "Prometheus",
        Kind::VictoriaMetrics => "VictoriaMetrics",
    }
}

/// Prints where the servers are and waits for Ctrl-C or SIGTERM.
async fn keep_running(sides: &[Side], targets: &[Target]) -> anyhow::Result<()> {
    println!();
    println!("--keep-running: the servers stay up with their data until Ctrl-C or SIGTERM (to this process):");
    for (side, target) in sides.iter().zip(targets) {
        println!(
            "  {}: pid {} · query API {} · data {}",
            side.name,
            side.pid.map_or("?".to_owned(), |p| p.to_string()),
            side.api,
            target.dir().join("data").display()
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    println!("stopping the servers");
    Ok(())
}

// ---------------------------------------------------------------------------
// Data: the classic histograms

/// Upper bounds of the buckets (Prometheus client libraries' defaults), then `+Inf`.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// (handler, method, typical latency in seconds).
const HANDLERS: &[(&str, &str, f64)] = &[
    ("/api/v1/query", "GET", 0.02),
    ("/api/v1/query_range", "GET", 0.08),
    ("/api/v1/series", "GET", 0.01),
    ("/api/v1/write", "POST", 0.005),
];
const API_INSTANCES: usize = 5;
/// Label sets × (buckets + `+Inf` + `_sum` + `_count`).
const HISTOGRAM_SERIES: usize = API_INSTANCES * 4 * (BUCKETS.len() + 3);
const HISTOGRAM_HELP: &str = "A histogram of the request duration.";

/// One label set's cumulative state.
struct HistogramState {
    labels: Vec<(&'static str, String)>,
    typical: f64,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Sorted labels: `name` plus `extra`.
fn labels(name: &str, extra: impl IntoIterator<Item = (&'static str, String)>) -> Vec<Label> {
    let mut out: Vec<Label> = std::iter::once(("__name__", name.to_owned()))
        .chain(extra)
        .map(|(name, value)| Label { name: name.to_owned(), value })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One request per scrape of the workload: every histogram series' sample at
/// that scrape's timestamp (RW 1.0, compressed). Each scrape adds 20–200
/// observations per label set, spread log-uniformly around its handler's
/// typical latency, to cumulative bucket counters, `_sum` and `_count`.
fn histogram_requests(workload: &Workload, seed: u64) -> Vec<PreparedRequest> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6869_7374_6f67_7261);
    let mut states: Vec<HistogramState> = (0..API_INSTANCES)
        .flat_map(|i| {
            HANDLERS.iter().map(move |(handler, method, typical)| HistogramState {
                labels: vec![
                    ("handler", (*handler).to_owned()),
                    ("instance", format!("10.1.0.{}:8080", i + 1)),
                    ("job", "api-server".to_owned()),
                    ("method", (*method).to_owned()),
                ],
                typical: *typical,
                buckets: vec![0; BUCKETS.len()],
                sum: 0.0,
                count: 0,
            })
        })
        .collect();
    let series = |name: &str, extra: Vec<(&'static str, String)>, ts: i64, value: f64| GeneratedSeries {
        labels: labels(name, extra),
        samples: vec![(ts, value)],
        kind: SeriesKind::Counter,
        help: HISTOGRAM_HELP,
    };
    (0..workload.rounds)
        .map(|round| {
            let ts = workload.scrape_ms(round);
            let mut out = Vec::with_capacity(HISTOGRAM_SERIES);
            for s in &mut states {
                for _ in 0..rng.random_range(20..=200) {
                    let latency = s.typical * rng.random_range(-2.0f64..3.0).exp();
                    for (b, le) in s.buckets.iter_mut().zip(BUCKETS) {
                        if latency <= *le {
                            *b += 1;
                        }
                    }
                    s.sum += latency;
                    s.count += 1;
                }
                for (b, le) in s.buckets.iter().zip(BUCKETS) {
                    let mut extra = s.labels.clone();
                    extra.push(("le", le.to_string()));
                    out.push(series("http_request_duration_seconds_bucket", extra, ts, *b as f64));
                }
                let mut extra = s.labels.clone();
                extra.push(("le", "+Inf".to_owned()));
                out.push(series("http_request_duration_seconds_bucket", extra, ts, s.count as f64));
                out.push(series("http_request_duration_seconds_sum", s.labels.clone(), ts, s.sum));
                out.push(series("http_request_duration_seconds_count", s.labels.clone(), ts, s.count as f64));
            }
            let samples = out.len() as u32;
            PreparedRequest { body: Bytes::from(compress(&encode_v1(out))), samples }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Loading

/// Sends the whole pool to `target` round by round: every chunk's request
/// of a round at once (one connection each), the next round once all of them
/// are acknowledged. So the samples arrive in time order across all series,
/// never more than one scrape apart, as Prometheus's head needs (it refuses
/// samples over an hour older than the newest it holds as "out of bounds").
async fn load(http: &reqwest::Client, target: &Target, pool: &Pool) -> anyhow::Result<()> {
    let rounds = pool.chunks.iter().map(Vec::len).max().unwrap_or(0);
    let started = Instant::now();
    let mut acked = 0u64;
    for round in 0..rounds {
        let sends = pool.chunks.iter().filter_map(|c| c.get(round)).map(|request| async move {
            let answer = http
                .post(&target.write_url)
                .header("Content-Type", content_type(Protocol::V1))
                .header("Content-Encoding", "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(request.body.clone())
                .send()
                .await
                .with_context(|| format!("{}: remote write", target.kind.name()))?;
            let status = answer.status();
            let body = answer.bytes().await.unwrap_or_default();
            if !status.is_success() {
                bail!(
                    "{}: remote write of round {round} answered {status}: {}",
                    target.kind.name(),
                    String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
                );
            }
            anyhow::Ok(u64::from(request.samples))
        });
        for written in futures::future::join_all(sends).await {
            acked += written?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}: loaded {acked} samples in {elapsed:.1} s ({:.0} samples/s)",
        target.kind.name(),
        acked as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

async fn metrics(http: &reqwest::Client, target: &Target) -> String {
    match http.get(format!("{}/metrics", target.base_url)).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until PromLake's stream workers have committed every sample to the
/// `samples` table (none is left only in the head).
async fn wait_promlake_committed(
    http: &reqwest::Client,
    target: &Target,
    samples: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let text = metrics(http, target).await;
        let committed = sum_metric(&text, "promlake_stream_samples_committed_total", "");
        let discarded = sum_metric(&text, "promlake_stream_samples_discarded_total", "");
        if discarded > 0.0 {
            bail!("promlake discarded {discarded} samples (duplicates or out of order)");
        }
        if committed >= samples as f64 {
            let files = parquet_files(&target.dir().join("data/lake"));
            println!(
                "promlake: every sample committed to the lake {:.1} s after loading ({files} Parquet files, \
                 no maintenance pass ran)",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("promlake committed {committed} of {samples} samples within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Parquet files under `dir` (every table of the lake).
fn parquet_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                parquet_files(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

/// Waits until Prometheus's compactions (head → 2 h blocks → larger blocks,
/// triggered while loading) have stopped for 30 s.
async fn wait_prometheus_settled(http: &reqwest::Client, target: &Target, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = |text: &str| sum_metric(text, "prometheus_tsdb_compactions_total", "");
    let Ok(text) = wait_settled(http, target, timeout, progress, |_| None).await else {
        bail!("prometheus's compactions did not settle within {timeout:?}");
    };
    println!(
        "prometheus: {} compactions, {} blocks loaded, {} series in the head; settled after {:.0} s",
        progress(&text),
        sum_metric(&text, "prometheus_tsdb_blocks_loaded", ""),
        sum_metric(&text, "prometheus_tsdb_head_series", ""),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Makes VictoriaMetrics write what it buffers (`/internal/force_flush`:
/// pending rows and in-memory parts to searchable file parts), then waits
/// until its storage holds every row sent, nothing is pending, and its
/// background merges have stopped for 30 s (as Prometheus's compactions).
async fn wait_victoriametrics_flushed(
    http: &reqwest::Client,
    target: &Target,
    samples: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let flush = http
        .get(format!("{}/internal/force_flush", target.base_url))
        .send()
        .await
        .context("victoriametrics: /internal/force_flush")?;
    if !flush.status().is_success() {
        bail!("victoriametrics: /internal/force_flush answered {}", flush.status());
    }
    let rows = |text: &str| -> f64 {
        ["storage/inmemory", "storage/small", "storage/big"]
            .iter()
            .map(|t| sum_metric(text, "vm_rows", &format!("type=\"{t}\"")))
            .sum()
    };
    let merges = |text: &str| sum_metric(text, "vm_merges_total", "");
    // What keeps it busy: rows not stored yet, pending rows, running merges.
    let busy = |text: &str| {
        let (rows, pending) = (rows(text), sum_metric(text, "vm_pending_rows", "type=\"storage\""));
        let active = sum_metric(text, "vm_active_merges", "");
        (active > 0.0 || pending > 0.0 || rows < samples as f64)
            .then(|| format!("{rows} of {samples} rows stored, {pending} pending, {active} merges running"))
    };
    let text = match wait_settled(http, target, timeout, merges, busy).await {
        Ok(text) => text,
        Err(last) => bail!("victoriametrics did not settle within {timeout:?} ({})", busy(&last).unwrap_or_default()),
    };
    println!(
        "victoriametrics: {} rows in {} parts ({} in memory), {} merges; settled after {:.0} s",
        rows(&text),
        sum_metric(&text, "vm_parts", "type=\"storage/"),
        sum_metric(&text, "vm_parts", "type=\"storage/inmemory\""),
        merges(&text),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Polls `target`'s metrics every 5 s until `progress` (a counter of
/// background work) has not moved and `busy` (why it is not done yet) has
/// been `None` for 30 s; returns the last metrics text, as an error after
/// `timeout`.
async fn wait_settled(
    http: &reqwest::Client,
    target: &Target,
    timeout: Duration,
    progress: impl Fn(&str) -> f64,
    busy: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let started = Instant::now();
    let mut last = f64::NAN;
    let mut stable_since = Instant::now();
    loop {
        let text = metrics(http, target).await;
        let now = progress(&text);
        if now != last || busy(&text).is_some() {
            last = now;
            stable_since = Instant::now();
        }
        if stable_since.elapsed() >= Duration::from_secs(30) {
            return Ok(text);
        }
        if started.elapsed() > timeout {
            return Err(text);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Checks that every target counts every scrape of every sampled series
/// (`count_over_time` over the whole span) and sees the same series.
async fn check_complete(http: &reqwest::Client, sides: &[Side], end_ms: i64, rounds: usize) -> anyhow::Result<()> {
    let span_s = rounds as i64 * INTERVAL_MS / 1000;
    for metric in ["node_load1", "http_request_duration_seconds_count"] {
        let expr = format!("count_over_time({metric}[{span_s}s])");
        let params = vec![("query".to_owned(), expr.clone()), ("time".to_owned(), seconds(end_ms))];
        let mut counts = Vec::new();
        for side in sides {
            let url = side.url("query", &params)?;
            let (_, body) = get(http, url).await;
            let doc = body.map_err(|e| anyhow::anyhow!("{}: {expr}: {e}", side.name))?;
            let values: Vec<f64> = doc["data"]["result"]
                .as_array()
                .context("no result")?
                .iter()
                .filter_map(|r| r["value"][1].as_str()?.parse().ok())
                .collect();
            if values.is_empty() || values.iter().any(|v| *v != rounds as f64) {
                bail!("{}: {expr} answered {values:?}, expected {rounds} for every series", side.name);
            }
            counts.push(values.len());
        }
        if counts.iter().any(|c| *c != counts[0]) {
            let each: Vec<String> = sides.iter().zip(&counts).map(|(s, c)| format!("{} {c}", s.name)).collect();
            bail!("{expr}: the targets see different series: {}", each.join(", "));
        }
        println!("check: {expr} = {rounds} for each of {} series on all {} targets", counts[0], sides.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Measuring

/// One server's query API.
struct Side {
    name: &'static str,
    api: String,
    pid: Option<u32>,
}

impl Side {
    fn new(target: &Target) -> Side {
        Side { name: side_name(target.kind), api: target.api_url(), pid: target.pid() }
    }

    fn url(&self, endpoint: &str, params: &[(String, String)]) -> anyhow::Result<url::Url> {
        url::Url::parse_with_params(&format!("{}/{endpoint}", self.api), params).context("building a query URL")
    }
}

/// One query as sent: an expression and its instant or range parameters.
struct Case {
    name: &'static str,
    expr: &'static str,
    shape: String,
    endpoint: &'static str,
    params: Vec<(String, String)>,
}

/// `ms` as Prometheus's Unix seconds with milliseconds.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Every expression as an instant query at `end_ms`, a 1 h range at 15 s
/// and a `hours` range at `hours / 240` (241 points each).
fn cases(end_ms: i64, hours: f64) -> Vec<Case> {
    let long_ms = (hours * 3_600_000.0).round() as i64;
    let long_step_ms = (long_ms / 240).max(1);
    let mut out = Vec::new();
    for (name, expr) in QUERIES {
        let query = ("query".to_owned(), (*expr).to_owned());
        out.push(Case {
            name,
            expr,
            shape: "instant".into(),
            endpoint: "query",
            params: vec![query.clone(), ("time".into(), seconds(end_ms))],
        });
        for (range_ms, step_ms, shape) in
            [(3_600_000, 15_000, "range 1 h".to_owned()), (long_ms, long_step_ms, format!("range {hours} h"))]
        {
            out.push(Case {
                name,
                expr,
                shape,
                endpoint: "query_range",
                params: vec![
                    query.clone(),
                    ("start".into(), seconds(end_ms - range_ms)),
                    ("end".into(), seconds(end_ms)),
                    ("step".into(), seconds(step_ms)),
                ],
            });
        }
    }
    out
}

/// Sends one GET and reads the whole answer: (wall latency, the JSON of a
/// `success` answer or what went wrong).
async fn get(http: &reqwest::Client, url: url::Url) -> (Duration, Result<serde_json::Value, String>) {
    let started = Instant::now();
    let answer = match http.get(url).send().await {
        Ok(r) => {
            let status = r.status();
            r.bytes().await.map(|b| (status, b)).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let elapsed = started.elapsed();
    let doc = answer.and_then(|(status, body)| {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]).trim()))?;
        if doc["status"] == "success" {
            Ok(doc)
        } else {
            Err(format!(
                "HTTP {status}, {}: {}",
                doc["errorType"].as_str().unwrap_or("?"),
                doc["error"].as_str().unwrap_or("(no error text)")
            ))
        }
    });
    (elapsed, doc)
}

/// What a `success` answer held: its series, its points, and the sum of
/// its finite values (a checksum to compare the targets' answers by).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Answer {
    series: usize,
    points: usize,
    sum: f64,
}

impl Answer {
    fn of(doc: &serde_json::Value) -> Answer {
        let data = &doc["data"];
        let value = |v: &serde_json::Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok()).filter(|v| v.is_finite());
        let result = data["result"].as_array().map_or(&[][..], Vec::as_slice);
        match data["resultType"].as_str() {
            Some("matrix") => {
                let points = result.iter().flat_map(|s| s["values"].as_array().map_or(&[][..], Vec::as_slice));
                Answer { series: result.len(), points: points.clone().count(), sum: points.filter_map(value).sum() }
            }
            Some("vector") => Answer {
                series: result.len(),
                points: result.len(),
                sum: result.iter().filter_map(|s| value(&s["value"])).sum(),
            },
            _ => Answer { series: 1, points: 1, sum: value(&data["result"]).unwrap_or(0.0) },
        }
    }

    /// Same series and points, and values summing to the same within 1e-6 (relative).
    fn matches(&self, other: &Answer) -> bool {
        self.series == other.series
            && self.points == other.points
            && (self.sum - other.sum).abs() <= 1e-6 * self.sum.abs().max(other.sum.abs()).max(1e-300)
    }
}

/// One target's measurements of one case.
#[derive(Default)]
struct SideResult {
    latencies: Vec<Duration>,
    /// The first answer.
    first: Option<Answer>,
    /// Answers that differed from the first one.
    unstable: usize,
    error: Option<String>,
    /// Stopped early by --budget-secs.
    cut: bool,
}

impl SideResult {
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1;
        Some(l[i].as_secs_f64() * 1e3)
    }

    fn summary(&self) -> String {
        match (&self.error, self.quantile_ms(0.5), self.quantile_ms(0.95)) {
            (Some(e), _, _) => format!("error ({e})"),
            (None, Some(p50), Some(p95)) => format!("p50 {p50:.1} ms p95 {p95:.1} ms n {}", self.latencies.len()),
            _ => "no answers".into(),
        }
    }

    /// Records one answer; returns whether the target answered.
    fn record(&mut self, latency: Duration, answer: Result<serde_json::Value, String>, measured: bool) -> bool {
        match answer {
            Ok(doc) => {
                let answer = Answer::of(&doc);
                match &self.first {
                    None => self.first = Some(answer),
                    Some(first) if !first.matches(&answer) => self.unstable += 1,
                    Some(_) => {}
                }
                if measured {
                    self.latencies.push(latency);
                }
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

/// Every target's measurements of one case (in the order of the sides:
/// PromLake, Prometheus, then VictoriaMetrics unless skipped).
struct CaseResult {
    name: &'static str,
    expr: &'static str,
    shape: String,
    sides: Vec<SideResult>,
    /// Cores other processes (not the servers, not this harness) took meanwhile.
    other_cores: f64,
}

impl CaseResult {
    /// PromLake's (side 0) quantile `q` over side `other`'s.
    fn ratio(&self, q: f64, other: usize) -> Option<f64> {
        Some(self.sides[0].quantile_ms(q)? / self.sides.get(other)?.quantile_ms(q)?)
    }
}

/// Warms `case` up on every target, then runs it `repeat` times on each,
/// round by round, the first target of a round rotating (with two targets:
/// PromLake first in even rounds, Prometheus first in odd ones; with three:
/// PromLake, Prometheus, VictoriaMetrics first in turn).
async fn measure_case(http: &reqwest::Client, sides: &[Side], case: &Case, args: &Args) -> CaseResult {
    let cpu = || -> f64 { sides.iter().filter_map(|s| s.pid).map(|p| proc_usage(p).0).sum::<f64>() };
    let (m0, cpu0, own0, t0) = (machine_cpu(), cpu(), proc_usage(std::process::id()).0, Instant::now());
    let n = sides.len();
    let mut results: Vec<SideResult> = (0..n).map(|_| SideResult::default()).collect();
    let mut spent = vec![Duration::ZERO; n];
    let urls: Vec<Result<url::Url, String>> =
        sides.iter().map(|s| s.url(case.endpoint, &case.params).map_err(|e| e.to_string())).collect();
    for round in 0..args.warmup + args.repeat {
        let measured = round >= args.warmup;
        for i in (0..n).map(|k| (round + k) % n) {
            let r = &mut results[i];
            if r.error.is_some() || r.cut {
                continue;
            }
            let url = match &urls[i] {
                Ok(u) => u.clone(),
                Err(e) => {
                    r.error = Some(e.clone());
                    continue;
                }
            };
            let (latency, answer) = get(http, url).await;
            r.record(latency, answer, measured);
            spent[i] += latency;
            if measured && r.latencies.len() >= 5 && spent[i] > Duration::from_secs(args.budget_secs) {
                r.cut = true;
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64().max(1e-9);
    let busy = machine_cpu().since(&m0).busy;
    let ours = cpu() - cpu0 + proc_usage(std::process::id()).0 - own0;
    CaseResult {
        name: case.name,
        expr: case.expr,
        shape: case.shape.clone(),
        sides: results,
        other_cores: ((busy - ours) / elapsed).max(0.0),
    }
}

// ---------------------------------------------------------------------------
// Report

fn report(results: &[CaseResult], kinds: &[Kind], machine: &Machine) {
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
    let ratio = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let names: Vec<&str> = kinds.iter().map(|k| side_name(*k)).collect();
    // The reference of the answers and the aim: Prometheus (side 1).
    let reference = 1;
    println!();
    println!(
        "## Query latency, {} (< 1: PromLake faster)",
        names[1..].iter().map(|n| format!("PromLake / {n}")).collect::<Vec<_>>().join(" and ")
    );
    println!();
    println!("{machine}");
    println!();
    let mut header = vec!["query".to_owned(), "kind".to_owned()];
    for n in &names {
        header.push(format!("{n} p50 ms"));
        header.push(format!("{n} p95 ms"));
    }
    for n in &names[1..] {
        header.push(format!("PromLake / {n} p50"));
        header.push(format!("PromLake / {n} p95"));
    }
    header.push(format!("series {}", names.join(" / ")));
    header.push("n".to_owned());
    header.push("others cores".to_owned());
    println!("| {} |", header.join(" | "));
    println!("|---|---|{}", "---:|".repeat(header.len() - 2));
    for r in results {
        let series = |s: &SideResult| {
            if s.error.is_some() {
                "error".to_owned()
            } else {
                s.first.map_or("–".to_owned(), |a| a.series.to_string())
            }
        };
        let mut row = vec![format!("`{}`", r.expr), r.shape.clone()];
        for s in &r.sides {
            row.push(ms(s.quantile_ms(0.5)));
            row.push(ms(s.quantile_ms(0.95)));
        }
        for other in 1..r.sides.len() {
            row.push(ratio(r.ratio(0.5, other)));
            row.push(ratio(r.ratio(0.95, other)));
        }
        row.push(r.sides.iter().map(series).collect::<Vec<_>>().join(" / "));
        row.push(r.sides.iter().map(|s| s.latencies.len().to_string()).collect::<Vec<_>>().join(" / "));
        row.push(format!("{:.2}", r.other_cores));
        println!("| {} |", row.join(" | "));
    }
    println!();
    let mut notes = Vec::new();
    for r in results {
        let what = format!("`{}` ({}, {})", r.expr, r.name, r.shape);
        for (side, s) in names.iter().zip(&r.sides) {
            if let Some(e) = &s.error {
                if e.contains("not supported by PromLake") {
                    notes.push(format!("NOT SUPPORTED: {what}: {side} answered {e}"));
                } else {
                    notes.push(format!("ERROR: {what}: {side} answered {e}"));
                }
            }
            if s.unstable > 0 {
                notes.push(format!(
                    "WARNING: {what}: {side} answered {} times differently from its first answer",
                    s.unstable
                ));
            }
            if s.cut {
                notes.push(format!(
                    "note: {what}: {side} stopped after {} repetitions (--budget-secs)",
                    s.latencies.len()
                ));
            }
        }
        // Every answer against Prometheus's.
        let (ref_name, ref_side) = (names[reference], &r.sides[reference]);
        for (i, (side, s)) in names.iter().zip(&r.sides).enumerate() {
            let (Some(a), Some(b)) = (s.first, ref_side.first) else { continue };
            if i == reference {
                continue;
            }
            if a.series != b.series {
                notes.push(format!("WARNING: {what}: {side} answered {} series, {ref_name} {}", a.series, b.series));
            } else if !a.matches(&b) {
                notes.push(format!(
                    "WARNING: {what}: same series count, but {side} answered {} points summing to {}, {ref_name} {} summing to {}",
                    a.points, a.sum, b.points, b.sum
                ));
            }
        }
        if let Some(x) = r.ratio(0.5, reference).filter(|x| *x > 1.0) {
            let others: String =
                (2..r.sides.len()).filter_map(|i| Some(format!(", {:.2}× {}'s", r.ratio(0.5, i)?, names[i]))).collect();
            notes.push(format!(
                "SHORTFALL (no query slower than Prometheus): {what}: PromLake p50 {x:.2}× Prometheus's{others}"
            ));
        }
    }
    for n in &notes {
        println!("{n}");
    }
    if notes.iter().any(|n| n.starts_with("WARNING") && n.contains("but VictoriaMetrics answered")) {
        println!(
            "note: VictoriaMetrics runs MetricsQL, whose rate() and increase() do not extrapolate to the window's \
             edges as Prometheus's do (they start from the last sample before the window), so its values may \
             differ from Prometheus's (and PromLake's) where they appear"
        );
    }
    println!();
    for (other, name) in names.iter().enumerate().skip(1) {
        let measured = results.iter().filter(|r| r.ratio(0.5, other).is_some()).count();
        let slower = results.iter().filter(|r| r.ratio(0.5, other).is_some_and(|x| x > 1.0)).count();
        if other == reference {
            println!("aim \"no query slower than Prometheus\": {slower} of {measured} compared queries slower at p50");
        } else {
            println!("against {name}: {slower} of {measured} compared queries slower at p50");
        }
    }
    let failed = results.iter().filter(|r| r.sides[0].error.is_some()).count();
    println!("{failed} of {} queries not answered by PromLake", results.len());
}
