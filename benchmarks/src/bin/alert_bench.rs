//! `alert_bench`: notification latency and alert throughput of PromLake's
//! Alertmanagers (--workspaces workspaces in one `promlake serve`) against
//! Alertmanager 0.33.1 (one process per workspace configuration, as many
//! as --am-processes), the same configuration and the same alert stream,
//! one after the other in one run.
//!
//! ```text
//! each workspace (PromLake) / process (Alertmanager): route group_by [alertname],
//!   group_wait --group-wait-ms, group_interval --group-interval-ms, one webhook receiver → local sink
//! stream per workspace: --alerts firing alerts over --alertnames names (one group each),
//!   POST /api/v2/alerts in batches of --batch, --concurrency requests in flight
//!   ──► throughput: alerts accepted / s (all workspaces' posts, wall time)
//!   ──► latency of each group's first notification: its arrival − (the group's first alert accepted + group_wait)
//!       p50 / p95 / max; notified alerts counted until every alert of every group was notified
//!   ──► resident memory and CPU seconds: the PromLake process vs the sum over the Alertmanager processes
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use benchmarks::cli::{Machine, load_average, repo_root};
use benchmarks::targets::{Binaries, Kind, PROMLAKE_CONFIG, Target, post_json, proc_memory, proc_usage};
use clap::Parser;
use common::testing::WebhookSink;
use futures::StreamExt as _;
use serde_json::{Value, json};

/// Notification latency and throughput: PromLake's Alertmanagers against Alertmanager processes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Workspaces in PromLake.
    #[arg(long, default_value_t = 100)]
    workspaces: usize,
    /// Alertmanager processes (one per workspace configuration; fewer when the machine cannot run as many).
    #[arg(long, default_value_t = 100)]
    am_processes: usize,
    /// Firing alerts per workspace.
    #[arg(long, default_value_t = 1_000)]
    alerts: usize,
    /// Alert names (aggregation groups) per workspace.
    #[arg(long, default_value_t = 10)]
    alertnames: usize,
    /// Alerts per POST.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// POSTs in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// group_wait, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    group_wait_ms: u64,
    /// group_interval, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    group_interval_ms: u64,
    /// The release promlake binary (default: $CARGO_TARGET_DIR/release/promlake).
    #[arg(long)]
    promlake_bin: Option<PathBuf>,
    /// Folder with `prometheus-alertmanager`.
    #[arg(long)]
    reference_bin_dir: Option<PathBuf>,
}

/// A notification as the sink received it: (path, arrival, the group's
/// alertname, alert fingerprints).
type Notified = (String, Instant, String, Vec<String>);

/// What `sink` received on `paths`.
fn notified(sink: &WebhookSink, paths: &std::collections::HashSet<&String>) -> Vec<Notified> {
    sink.received()
        .into_iter()
        .filter(|(p, _, _)| paths.contains(p))
        .map(|(path, at, v)| {
            let fps = v["alerts"]
                .as_array()
                .map(|a| a.iter().filter_map(|a| a["fingerprint"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let group = v["groupLabels"]["alertname"].as_str().unwrap_or_default().to_owned();
            (path, at, group, fps)
        })
        .collect()
}

fn config(args: &Args, sink_port: u16, path: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: {}ms\n  group_interval: {}ms\n  repeat_interval: 4h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{sink_port}/{path}'}}]\n",
        args.group_wait_ms, args.group_interval_ms
    )
}

/// One side's figures.
struct Figures {
    alerts_per_s: f64,
    post_seconds: f64,
    latency_ms: Vec<f64>,
    complete_s: f64,
    notifications: usize,
    notified_alerts: usize,
    rss_mib: f64,
    cpu_s: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Posts every target's stream and waits for every alert to be notified.
async fn run(
    args: &Args,
    http: &reqwest::Client,
    targets: &[(String, String)],
    sink: &WebhookSink,
    pids: &[u32],
) -> anyhow::Result<Figures> {
    let cpu_before: f64 = pids.iter().map(|p| proc_usage(*p).0).sum();
    // (target index, alertname) → when its first alert was accepted.
    let first: Arc<Mutex<HashMap<(usize, usize), Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let per_name = args.alerts.div_ceil(args.alertnames.max(1));
    let mut posts = Vec::new();
    for (ti, (_, url)) in targets.iter().enumerate() {
        let alerts: Vec<(usize, Value)> = (0..args.alerts)
            .map(|i| {
                let name = i / per_name;
                (name, json!({"labels": {"alertname": format!("Bench{name}"), "instance": format!("host-{i}"), "job": "bench"}, "annotations": {"summary": "load"}}))
            })
            .collect();
        for chunk in alerts.chunks(args.batch.max(1)) {
            posts.push((ti, url.clone(), chunk.to_vec()));
        }
    }
    // Interleave the targets so that every workspace is loaded at once.
    posts.sort_by_key(|(ti, _, c)| (c.first().map_or(0, |a| a.0), *ti));
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(posts)
        .map(|(ti, url, chunk)| {
            let http = http.clone();
            let first = first.clone();
            async move {
                let body: Vec<Value> = chunk.iter().map(|(_, a)| a.clone()).collect();
                let r = http
                    .post(format!("{url}/api/v2/alerts"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body)?)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("POST {url}: {} {}", r.status(), r.text().await.unwrap_or_default());
                }
                let now = Instant::now();
                let mut f = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (name, _) in &chunk {
                    f.entry((ti, *name)).or_insert(now);
                }
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        r?;
    }
    let post_seconds = started.elapsed().as_secs_f64();
    // Every alert notified at least once.
    let total = targets.len() * args.alerts;
    let deadline = Instant::now() + Duration::from_secs(300);
    let paths: std::collections::HashSet<&String> = targets.iter().map(|(p, _)| p).collect();
    loop {
        let seen = {
            let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
            for (path, _, _, fps) in notified(sink, &paths) {
                for fp in fps {
                    seen.insert((path.clone(), fp));
                }
            }
            seen.len()
        };
        if seen >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {seen} of {total} alerts notified within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let complete_s = started.elapsed().as_secs_f64();
    let got = notified(sink, &paths);
    let first = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let wait = Duration::from_millis(args.group_wait_ms);
    let mut latency_ms = Vec::new();
    for ((ti, name), accepted) in &first {
        // The group's first notification: the earliest arrival on its
        // target's path for its alertname.
        let (path, group) = (&targets[*ti].0, format!("Bench{name}"));
        let due = *accepted + wait;
        let arrival = got.iter().filter(|(p, _, g, _)| p == path && *g == group).map(|(_, at, _, _)| *at).min();
        if let Some(at) = arrival {
            let ms = if at >= due {
                at.duration_since(due).as_secs_f64() * 1000.0
            } else {
                -(due.duration_since(at).as_secs_f64() * 1000.0)
            };
            latency_ms.push(ms);
        }
    }
    latency_ms.sort_by(f64::total_cmp);
    let rss: u64 = pids.iter().map(|p| proc_memory(*p).rss).sum();
    let cpu_after: f64 = pids.iter().map(|p| proc_usage(*p).0).sum();
    Ok(Figures {
        alerts_per_s: total as f64 / post_seconds,
        post_seconds,
        latency_ms,
        complete_s,
        notifications: got.len(),
        notified_alerts: got.iter().map(|(_, _, _, f)| f.len()).sum(),
        rss_mib: rss as f64 / (1024.0 * 1024.0),
        cpu_s: cpu_after - cpu_before,
    })
}

/// Waits until `url` answers 200 (an Alertmanager has started).
async fn wait_ok(http: &reqwest::Client, url: &str, patience: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    while http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        if Instant::now() > deadline {
            bail!("{url} did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = Machine::describe(&repo_root());
    let bins = Binaries::locate(args.promlake_bin.as_deref(), args.reference_bin_dir.as_deref())?;
    let reference = bins.reference.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(64).build()?;
    println!("# alert_bench\n\n{machine}");
    println!(
        "{} workspaces in PromLake, {} Alertmanager processes; {} alerts each over {} groups; batches of {}, {} in flight; group_wait {} ms, group_interval {} ms; load average {}",
        args.workspaces,
        args.am_processes,
        args.alerts,
        args.alertnames,
        args.batch,
        args.concurrency,
        args.group_wait_ms,
        args.group_interval_ms,
        load_average()
    );
    let sink = WebhookSink::start();
    let sink_port = sink.port;

    // PromLake: the workspaces and their definitions.
    let promlake = Target::start_with_config(Kind::PromLake, &bins, None, PROMLAKE_CONFIG).await?;
    let base = promlake.base_url.clone();
    let mut pl_targets = Vec::new();
    for i in 0..args.workspaces {
        let v = post_json(&http, &format!("{base}/workspaces"), &json!({"alias": format!("alerts-{i}")})).await?;
        let ws = v["workspaceId"].as_str().context("no workspaceId")?.to_owned();
        let data = format!(
            "alertmanager_config: |\n{}",
            config(&args, sink_port, &format!("pl-{i}")).lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        let body = json!({"data": base64::engine::general_purpose::STANDARD.encode(data)});
        post_json(&http, &format!("{base}/workspaces/{ws}/alertmanager/definition"), &body).await?;
        pl_targets.push((format!("/pl-{i}"), format!("{base}/workspaces/{ws}/alertmanager")));
    }
    for (_, url) in &pl_targets {
        wait_ok(&http, &format!("{url}/api/v2/status"), Duration::from_secs(60)).await?;
    }
    let pl_pid = promlake.pid().context("PromLake's pid")?;
    let pl = run(&args, &http, &pl_targets, &sink, &[pl_pid]).await?;
    drop(promlake);

    // Alertmanager: one process per workspace configuration.
    let dir = tempfile::tempdir()?;
    let mut ams = Vec::new();
    let mut am_targets = Vec::new();
    for i in 0..args.am_processes {
        let d = dir.path().join(format!("am-{i}"));
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("am.yml"), config(&args, sink_port, &format!("am-{i}")))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(reference.join("prometheus-alertmanager"))
            .arg(format!("--config.file={}", d.join("am.yml").display()))
            .arg(format!("--storage.path={}", d.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting Alertmanager")?;
        ams.push(child);
        am_targets.push((format!("/am-{i}"), format!("http://127.0.0.1:{port}")));
    }
    for (_, url) in &am_targets {
        wait_ok(&http, &format!("{url}/-/ready"), Duration::from_secs(120)).await?;
    }
    let am_pids: Vec<u32> = ams.iter().filter_map(tokio::process::Child::id).collect();
    let am = run(&args, &http, &am_targets, &sink, &am_pids).await?;

    println!();
    println!(
        "| target | workspaces | alerts posted | post s | alerts/s | first-notification latency p50 / p95 / max ms | all notified after s | notifications | alerts notified | resident MiB | CPU s |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for (name, n, f) in [
        ("PromLake (one process)", args.workspaces, &pl),
        ("Alertmanager 0.33.1 (one process each)", args.am_processes, &am),
    ] {
        println!(
            "| {name} | {n} | {} | {:.1} | {:.0} | {:.0} / {:.0} / {:.0} | {:.1} | {} | {} | {:.0} | {:.1} |",
            n * args.alerts,
            f.post_seconds,
            f.alerts_per_s,
            pct(&f.latency_ms, 0.5),
            pct(&f.latency_ms, 0.95),
            f.latency_ms.last().copied().unwrap_or(f64::NAN),
            f.complete_s,
            f.notifications,
            f.notified_alerts,
            f.rss_mib,
            f.cpu_s
        );
    }
    let per_ws = |f: &Figures, n: usize| f.rss_mib / n.max(1) as f64;
    println!();
    println!(
        "ratios PromLake / Alertmanager: throughput {:.2}, p95 latency {:.2}, resident memory per workspace {:.2}, CPU per alert {:.2}",
        pl.alerts_per_s / am.alerts_per_s,
        pct(&pl.latency_ms, 0.95) / pct(&am.latency_ms, 0.95),
        per_ws(&pl, args.workspaces) / per_ws(&am, args.am_processes),
        (pl.cpu_s / (args.workspaces * args.alerts) as f64) / (am.cpu_s / (args.am_processes * args.alerts) as f64)
    );
    Ok(())
}
