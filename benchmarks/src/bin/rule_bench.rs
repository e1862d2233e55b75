//! `rule_bench`: recording-rule evaluation throughput and lag, PromLake
//! against Prometheus 3.5 and VictoriaMetrics + vmalert, the same rules
//! over the same samples, side by side in one run.
//!
//! ```text
//! --series counters bench_requests_total{shard, job, instance}, --series/--rules per shard,
//!   --minutes of history at 15 s ending now, the same RW 1.0 requests to every target
//! --rules recording rules  bench:rate5m:shard<k> = sum by (job) (rate(bench_requests_total{shard="k"}[5m]))
//!   in --groups groups at --interval-secs
//!   ├─► promlake serve: a rule groups namespace (ruler → engine → log)
//!   ├─► prometheus --web.enable-remote-write-receiver, rule_files at start
//!   └─► victoria-metrics + vmalert (-datasource.url and -remoteWrite.url = victoria-metrics)
//! once every target counts every input series: each target's /api/v1/rules polled for
//!   --measure-secs; every group evaluation started after the load is one observation:
//!   its busy time = the sum of its rules' evaluationTime
//!   ──► per target: rules/s and series/s = rules (series) per group ÷ mean group busy time
//!       (one group's rules run one after the other; groups run side by side),
//!       the slowest evaluation against the interval (lag = the overrun), missed iterations,
//!       output series written; ratios PromLake / Prometheus and PromLake / VictoriaMetrics
//! ```
//!
//! See `benchmarks/README.md` ("Rule evaluation").

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use benchmarks::cli::{Machine, load_average, now_ms, repo_root, version_line};
use benchmarks::loadgen::compress;
use benchmarks::targets::{Binaries, Kind, PROMLAKE_CONFIG, Target, post_json, sum_metric};
use clap::Parser;
use futures::StreamExt as _;
use prost::Message;
use schemas::prompb;
use serde_json::Value;

/// Rule evaluation throughput and lag: PromLake against Prometheus and VictoriaMetrics + vmalert.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Input series.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Recording rules (each over series/rules input series).
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Rule groups the rules are split into.
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// The groups' evaluation interval, seconds.
    #[arg(long, default_value_t = 15)]
    interval_secs: u64,
    /// Minutes of history at 15 s, ending now.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// How long the rules API is observed after the load, seconds.
    #[arg(long, default_value_t = 75)]
    measure_secs: u64,
    /// Samples per remote-write request while loading.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// The release promlake binary (default: $CARGO_TARGET_DIR/release/promlake).
    #[arg(long)]
    promlake_bin: Option<PathBuf>,
    /// Folder with `prometheus`, `victoria-metrics` and `vmalert`.
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
}

/// One target's rule evaluator, observed through its rules API.
struct Evaluator {
    name: &'static str,
    /// `…/api/v1` serving `rules`.
    rules_api: String,
    /// `…/api/v1` serving `query`.
    query_api: String,
    /// `/metrics` of the process that evaluates.
    metrics_url: String,
    /// The missed-iterations counter in those metrics.
    missed_metric: &'static str,
}

/// What one target did.
#[derive(Debug, Default)]
struct Observed {
    /// Busy seconds of each group evaluation (sum of its rules' evaluationTime).
    busy: Vec<f64>,
    missed: f64,
    output_series: f64,
}

fn rules_yaml(args: &Args) -> String {
    let per_group = args.rules.div_ceil(args.groups);
    let mut out = String::from("groups:\n");
    for g in 0..args.groups {
        out.push_str(&format!("  - name: bench{g}\n    interval: {}s\n    rules:\n", args.interval_secs));
        for k in (g * per_group)..((g + 1) * per_group).min(args.rules) {
            out.push_str(&format!(
                "      - record: bench:rate5m:shard{k}\n        expr: sum by (job) (rate(bench_requests_total{{shard=\"{k}\"}}[5m]))\n"
            ));
        }
    }
    out
}

/// The load: one request per `batch` series per 15 s step, oldest first.
fn requests(args: &Args, end_ms: i64) -> Vec<Vec<Vec<u8>>> {
    let steps = (args.minutes * 60 / 15) as i64;
    let per_shard = (args.series / args.rules).max(1);
    let start = end_ms - steps * 15_000;
    (0..=steps)
        .map(|step| {
            let ts = start + step * 15_000;
            (0..args.series)
                .collect::<Vec<_>>()
                .chunks(args.batch)
                .map(|chunk| {
                    let timeseries = chunk
                        .iter()
                        .map(|&i| {
                            let shard = i / per_shard;
                            let j = i % per_shard;
                            let labels = [
                                ("__name__", "bench_requests_total".to_owned()),
                                ("instance", format!("i{}", j % 10)),
                                ("job", format!("j{}", j / 10)),
                                ("shard", shard.to_string()),
                            ];
                            prompb::TimeSeries {
                                labels: labels
                                    .into_iter()
                                    .map(|(n, v)| prompb::Label { name: n.to_owned(), value: v })
                                    .collect(),
                                samples: vec![prompb::Sample {
                                    value: (step as f64) * (1 + i % 7) as f64 * 15.0,
                                    timestamp: ts,
                                }],
                                ..Default::default()
                            }
                        })
                        .collect();
                    compress(&prompb::WriteRequest { timeseries, metadata: Vec::new() }.encode_to_vec())
                })
                .collect()
        })
        .collect()
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = http.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let text = r.text().await?;
    serde_json::from_str(&text).with_context(|| format!("GET {url}: {text}"))
}

async fn instant(http: &reqwest::Client, api: &str, query: &str) -> f64 {
    let url =
        format!("{api}/query?query={}", url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>());
    get_json(http, &url)
        .await
        .ok()
        .and_then(|v| v["data"]["result"][0]["value"][1].as_str()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = Machine::describe(&repo_root());
    let bins = Binaries::locate(args.promlake_bin.as_deref(), args.reference_bin_dir.as_deref())?;
    let reference = bins.reference.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let dir = tempfile::tempdir()?;
    let rules = rules_yaml(&args);
    let rules_file = dir.path().join("rules.yml");
    std::fs::write(&rules_file, &rules)?;
    println!("# rule_bench\n\n{machine}");
    println!(
        "{} series, {} recording rules in {} groups at {} s, {} min of history; load average {}",
        args.series,
        args.rules,
        args.groups,
        args.interval_secs,
        args.minutes,
        load_average()
    );
    println!(
        "versions: {} · {} · {} · {}",
        bins.version(Kind::PromLake),
        bins.version(Kind::Prometheus),
        bins.version(Kind::VictoriaMetrics),
        version_line(&reference.join("vmalert"), "-version")
    );

    // The servers.
    let promlake = Target::start_with_config(
        Kind::PromLake,
        &bins,
        None,
        &format!("{PROMLAKE_CONFIG}\n[ruler]\nevaluation_interval_seconds = {}\n", args.interval_secs),
    )
    .await?;
    let prometheus_config =
        format!("global:\n  evaluation_interval: {}s\nrule_files: ['{}']\n", args.interval_secs, rules_file.display());
    let prometheus = Target::start_configured(Kind::Prometheus, &bins, None, "", Some(&prometheus_config), &[]).await?;
    let vm = Target::start_with_args(
        Kind::VictoriaMetrics,
        &bins,
        None,
        "",
        &["-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache"],
    )
    .await?;
    let vmalert_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut vmalert = tokio::process::Command::new(reference.join("vmalert"))
        .arg(format!("-rule={}", rules_file.display()))
        .arg(format!("-datasource.url={}", vm.base_url))
        .arg(format!("-remoteWrite.url={}", vm.base_url))
        .arg(format!("-evaluationInterval={}s", args.interval_secs))
        .arg(format!("-httpListenAddr=127.0.0.1:{vmalert_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("vmalert.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting vmalert")?;
    let vmalert_url = format!("http://127.0.0.1:{vmalert_port}");

    // PromLake's rules: one namespace.
    let promlake_api = promlake.api_url();
    let ws_base = promlake_api.trim_end_matches("/api/v1").to_owned();
    let body = serde_json::json!({"name": "bench", "data": base64::engine::general_purpose::STANDARD.encode(&rules)});
    post_json(&http, &format!("{ws_base}/rulegroupsnamespaces"), &body).await?;

    // The load, the same requests to every target, step by step.
    let end_ms = now_ms() / 15_000 * 15_000;
    let load = requests(&args, end_ms);
    let targets = [&promlake, &prometheus, &vm];
    let load_started = Instant::now();
    for step in &load {
        for t in targets {
            let sends = step.iter().map(|body| {
                let http = http.clone();
                let url = t.write_url.clone();
                let body = body.clone();
                async move {
                    let r = http
                        .post(url)
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "snappy")
                        .header("x-prometheus-remote-write-version", "0.1.0")
                        .body(body)
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().is_success(), "remote write: {}", r.status());
                    Ok::<_, anyhow::Error>(())
                }
            });
            let results: Vec<anyhow::Result<()>> = futures::stream::iter(sends).buffer_unordered(8).collect().await;
            for r in results {
                r?;
            }
        }
    }
    // Every input series queryable at the end on every target.
    let count = format!("count(bench_requests_total @ {})", end_ms / 1000);
    for (name, api) in
        [("PromLake", &promlake_api), ("Prometheus", &prometheus.api_url()), ("VictoriaMetrics", &vm.api_url())]
    {
        let deadline = Instant::now() + Duration::from_secs(300);
        if name == "VictoriaMetrics" {
            let _ = http.get(format!("{}/internal/force_flush", vm.base_url)).send().await;
        }
        while instant(&http, api, &count).await < args.series as f64 {
            if Instant::now() > deadline {
                bail!("{name} does not count {} series within 300 s", args.series);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let loaded_at_ms = now_ms();
    println!("loaded {} samples per target in {:.1} s", args.series * load.len(), load_started.elapsed().as_secs_f64());

    // Observe the rules APIs.
    let evaluators = [
        Evaluator {
            name: "PromLake",
            rules_api: promlake_api.clone(),
            query_api: promlake_api.clone(),
            metrics_url: format!("{}/metrics", promlake.base_url),
            missed_metric: "promlake_rule_group_iterations_missed_total",
        },
        Evaluator {
            name: "Prometheus",
            rules_api: prometheus.api_url(),
            query_api: prometheus.api_url(),
            metrics_url: format!("{}/metrics", prometheus.base_url),
            missed_metric: "prometheus_rule_group_iterations_missed_total",
        },
        Evaluator {
            name: "VictoriaMetrics",
            rules_api: format!("{vmalert_url}/api/v1"),
            query_api: vm.api_url(),
            metrics_url: format!("{vmalert_url}/metrics"),
            missed_metric: "vmalert_iteration_missed_total",
        },
    ];
    let mut seen: HashMap<(&str, String), BTreeMap<String, f64>> = HashMap::new();
    let missed_before: Vec<f64> = futures::future::join_all(evaluators.iter().map(|e| missed(&http, e))).await;
    let measure = Instant::now();
    while measure.elapsed() < Duration::from_secs(args.measure_secs) {
        for e in &evaluators {
            let Ok(v) = get_json(&http, &format!("{}/rules", e.rules_api)).await else { continue };
            for g in v["data"]["groups"].as_array().into_iter().flatten() {
                let name = g["name"].as_str().unwrap_or_default().to_owned();
                let rules = g["rules"].as_array().cloned().unwrap_or_default();
                let last =
                    rules.iter().filter_map(|r| r["lastEvaluation"].as_str()).min().unwrap_or_default().to_owned();
                let started = parse_time(&last);
                if started <= loaded_at_ms {
                    continue;
                }
                // Only complete evaluations: every rule evaluated after the load.
                if rules.iter().any(|r| parse_time(r["lastEvaluation"].as_str().unwrap_or_default()) <= loaded_at_ms) {
                    continue;
                }
                let busy: f64 = rules.iter().filter_map(|r| r["evaluationTime"].as_f64()).sum();
                seen.entry((e.name, name)).or_default().insert(last, busy);
            }
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let mut observed: Vec<Observed> = Vec::new();
    for (i, e) in evaluators.iter().enumerate() {
        let busy: Vec<f64> =
            seen.iter().filter(|((n, _), _)| *n == e.name).flat_map(|(_, evals)| evals.values().copied()).collect();
        let missed_now = missed(&http, e).await;
        let output = instant(&http, &e.query_api, "count({__name__=~\"bench:rate5m:.*\"})").await;
        observed.push(Observed { busy, missed: missed_now - missed_before[i], output_series: output });
    }

    let per_group_rules = args.rules as f64 / args.groups as f64;
    let per_group_series = args.series as f64 / args.groups as f64;
    let interval = args.interval_secs as f64;
    println!(
        "\n| target | group evaluations | mean group busy s | slowest s | rules/s | input series/s | slowest / interval | lag s | missed iterations | output series |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rates = Vec::new();
    for (e, o) in evaluators.iter().zip(&observed) {
        let n = o.busy.len();
        let mean = if n == 0 { f64::NAN } else { o.busy.iter().sum::<f64>() / n as f64 };
        let slowest = o.busy.iter().copied().fold(0.0_f64, f64::max);
        let rules_per_s = per_group_rules / mean;
        rates.push(rules_per_s);
        println!(
            "| {} | {n} | {mean:.3} | {slowest:.3} | {rules_per_s:.0} | {:.0} | {:.2} | {:.1} | {} | {} |",
            e.name,
            per_group_series / mean,
            slowest / interval,
            (slowest - interval).max(0.0),
            o.missed,
            o.output_series
        );
    }
    println!(
        "\nthroughput ratios (rules/s, > 1: PromLake faster): PromLake / Prometheus {:.2}, PromLake / VictoriaMetrics {:.2}",
        rates[0] / rates[1],
        rates[0] / rates[2]
    );
    let _ = vmalert.start_kill();
    for t in [promlake, prometheus, vm] {
        t.stop().await;
    }
    Ok(())
}

async fn missed(http: &reqwest::Client, e: &Evaluator) -> f64 {
    let text = match http.get(&e.metrics_url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    sum_metric(&text, e.missed_metric, "")
}

/// An RFC 3339 time in Unix ms (0 when it does not parse: Go's zero time).
fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).unwrap_or(0)
}
