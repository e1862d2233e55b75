//! The Prometheus HTTP API of `promlake serve` with real clients: the same
//! data remote-written to PromLake and to a real Prometheus 3.5.3 (server
//! mode, remote-write receiver on), then the real `promtool query …` run
//! against both must print the same (experimental functions on, for
//! `info()`); and the calls Grafana's Prometheus data source makes on
//! connect and on a dashboard refresh.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use schemas::prompb;
use serde_json::Value;

use crate::harness::{TestServer, client, post_remote_write, prometheus_server_with, reference_bin};

/// Scrape interval of the generated data, ms.
const STEP_MS: i64 = 15_000;
/// Samples per series (30 minutes).
const POINTS: i64 = 121;

/// The generated series: counters of requests by job, instance and code, a
/// gauge of temperatures by room, with metadata.
fn dataset(start_ms: i64) -> Vec<u8> {
    let mut timeseries = Vec::new();
    let mut add = |labels: &[(&str, &str)], value: &dyn Fn(i64) -> f64| {
        let mut labels: Vec<prompb::Label> =
            labels.iter().map(|(n, v)| prompb::Label { name: (*n).into(), value: (*v).into() }).collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let samples =
            (0..POINTS).map(|i| prompb::Sample { value: value(i), timestamp: start_ms + i * STEP_MS }).collect();
        timeseries.push(prompb::TimeSeries { labels, samples, ..Default::default() });
    };
    for (job, instance, code, per_step) in
        [("api", "a:80", "200", 30), ("api", "a:80", "500", 2), ("api", "b:80", "200", 45), ("web", "c:80", "200", 7)]
    {
        add(&[("__name__", "demo_requests_total"), ("job", job), ("instance", instance), ("code", code)], &|i| {
            (i * per_step + i * i % 5) as f64
        });
    }
    // Info series for `info()`: two of the api targets (not "web") in
    // `target_info`, the web target in `build_info`.
    for (job, instance, version, region) in [("api", "a:80", "1.2", "eu"), ("api", "b:80", "1.3", "us")] {
        add(
            &[
                ("__name__", "target_info"),
                ("job", job),
                ("instance", instance),
                ("version", version),
                ("region", region),
            ],
            &|_| 1.0,
        );
    }
    add(&[("__name__", "build_info"), ("job", "web"), ("instance", "c:80"), ("revision", "abc")], &|_| 1.0);
    for (room, base) in [("kitchen", 21.5), ("cellar", 12.25), ("attic", 30.0)] {
        add(&[("__name__", "demo_temperature_celsius"), ("room", room), ("job", "sensors")], &|i| {
            base + ((i * 7) % 11) as f64 * 0.25
        });
    }
    let metadata = vec![
        prompb::MetricMetadata {
            r#type: prompb::metric_metadata::MetricType::Counter as i32,
            metric_family_name: "demo_requests_total".into(),
            help: "Requests served.".into(),
            unit: String::new(),
        },
        prompb::MetricMetadata {
            r#type: prompb::metric_metadata::MetricType::Gauge as i32,
            metric_family_name: "demo_temperature_celsius".into(),
            help: "Room temperature.".into(),
            unit: "celsius".into(),
        },
    ];
    let body = prompb::WriteRequest { timeseries, metadata }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

async fn remote_write(url: &str, body: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match post_remote_write(&client(), url, body).await {
            Some(r) if r.status().is_success() => return,
            Some(r) if r.status().is_client_error() && r.status() != 404 => {
                panic!("{url}: {} {}", r.status(), r.text().await.unwrap_or_default())
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "{url} did not accept the write within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

/// PromLake with the data set written and applied; returns (server,
/// workspace API base URL, first sample time ms).
async fn promlake_with_data(dir: &std::path::Path) -> (TestServer, String, i64, Vec<u8>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    // Aligned to the minute, ending a minute ago.
    let start_ms = (now / 60_000 - 31) * 60_000;
    let body = dataset(start_ms);
    let server = TestServer::spawn(&dir.join("promlake"));
    let ws = server.create_workspace("query-api").await;
    let base = format!("{}/workspaces/{ws}", server.url);
    remote_write(&format!("{base}/api/v1/remote_write"), &body).await;
    // Acknowledged samples become visible once a worker has applied them.
    let end_s = (start_ms + (POINTS - 1) * STEP_MS) / 1000;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = format!("{base}/api/v1/query?query=count_over_time(demo_requests_total[1h])&time={end_s}");
        let (status, v) = get_json(&q).await;
        let counts: Vec<&str> = v["data"]["result"]
            .as_array()
            .map_or_else(Vec::new, |r| r.iter().filter_map(|s| s["value"][1].as_str()).collect());
        if status == 200 && counts.len() == 4 && counts.iter().all(|c| *c == POINTS.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "data not queryable within 60 s: {status} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (server, base, start_ms, body)
}

/// A form-encoded POST, as Grafana sends its API calls.
async fn post_form(url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    client().post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
}

fn promtool(args: &[String]) -> Vec<String> {
    let out =
        Command::new(reference_bin().join("promtool")).args(args).stdin(Stdio::null()).output().expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "promtool {args:?} failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    // Result order is not part of the API for aggregations: compare sorted.
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_prints_the_same_from_promlake_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_promlake, promlake_base, start_ms, body) = promlake_with_data(dir.path()).await;

    let (_prometheus, prometheus_base) = prometheus_server_with(
        dir.path(),
        "global:\n  scrape_interval: 1h\n",
        &["--enable-feature=promql-experimental-functions"],
    )
    .await;
    remote_write(&format!("{prometheus_base}/api/v1/write"), &body).await;

    let s = |ms: i64| (ms / 1000).to_string();
    let (start, end) = (s(start_ms), s(start_ms + (POINTS - 1) * STEP_MS));
    let mid = s(start_ms + 61 * STEP_MS + 7_000);
    let cases: Vec<Vec<&str>> = vec![
        vec!["query", "instant", "URL", "demo_temperature_celsius", "--time", &end],
        vec!["query", "instant", "URL", "demo_temperature_celsius{room=~\"k.*|a.*\"}", "--time", &mid],
        vec!["query", "instant", "URL", "sum by (job) (rate(demo_requests_total[5m]))", "--time", &end],
        vec!["query", "instant", "URL", "increase(demo_requests_total{code=\"200\"}[10m])", "--time", &mid],
        vec![
            "query",
            "instant",
            "URL",
            "max_over_time(demo_temperature_celsius[10m]) - min_over_time(demo_temperature_celsius[10m])",
            "--time",
            &mid,
        ],
        vec!["query", "instant", "URL", "demo_requests_total offset 5m", "--time", &end],
        vec![
            "query",
            "range",
            "URL",
            "rate(demo_requests_total[2m])",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "1m",
        ],
        vec![
            "query",
            "range",
            "URL",
            "avg by (job) (demo_temperature_celsius)",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "45s",
        ],
        vec![
            "query",
            "range",
            "URL",
            "sum without (instance) (demo_requests_total) / 2",
            "--start",
            &mid,
            "--end",
            &end,
            "--step",
            "30s",
        ],
        // info(): every target_info data label; only the named ones, the
        // series without a match dropped; another info metric.
        vec!["query", "instant", "URL", "info(rate(demo_requests_total[5m]))", "--time", &mid],
        vec![
            "query",
            "range",
            "URL",
            "info(demo_requests_total, {version=~\"1.+\"})",
            "--start",
            &mid,
            "--end",
            &end,
            "--step",
            "2m",
        ],
        vec!["query", "instant", "URL", "info(demo_requests_total, {__name__=\"build_info\"})", "--time", &end],
        vec!["query", "series", "URL", "--match", "demo_requests_total{job=\"api\"}", "--start", &start, "--end", &end],
        vec![
            "query",
            "series",
            "URL",
            "--match",
            "demo_temperature_celsius",
            "--match",
            "demo_requests_total{code=\"500\"}",
        ],
        vec!["query", "labels", "URL", "job", "--start", &start, "--end", &end],
        vec!["query", "labels", "URL", "__name__"],
        vec!["query", "labels", "URL", "room", "--match", "demo_temperature_celsius{room!=\"attic\"}"],
    ];
    for case in cases {
        let with = |base: &str| -> Vec<String> {
            case.iter().map(|a| if *a == "URL" { base.to_owned() } else { (*a).to_owned() }).collect()
        };
        let ours = promtool(&with(&promlake_base));
        let theirs = promtool(&with(&prometheus_base));
        assert!(!theirs.is_empty(), "{case:?}: Prometheus printed nothing");
        eprintln!("promtool {case:?}: {} lines, first {:?}", theirs.len(), theirs[0]);
        assert_eq!(ours, theirs, "promtool {case:?}: PromLake (left) and Prometheus (right) differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_grafana_makes_on_connect_and_refresh_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_promlake, base, start_ms, _) = promlake_with_data(dir.path()).await;
    let api = format!("{base}/api/v1");
    let (from, to) = (start_ms / 1000, (start_ms + (POINTS - 1) * STEP_MS) / 1000);

    // Connect ("Save & test"): build info, then a trivial query.
    let (status, v) = get_json(&format!("{api}/status/buildinfo")).await;
    assert_eq!(status, 200);
    assert!(v["data"]["version"].as_str().unwrap().starts_with("3."), "{v}");
    let (status, v) = get_json(&format!("{api}/query?query=1%2B1&time={to}")).await;
    assert_eq!((status, &v["data"]["result"][1]), (200, &Value::from("2")), "{v}");

    // The query editor: label names, metric names, metadata, series, values.
    let (_, v) = get_json(&format!("{api}/labels?start={from}&end={to}")).await;
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "code", "instance", "job", "region", "revision", "room", "version"])
    );
    let (_, v) = get_json(&format!("{api}/label/__name__/values?start={from}&end={to}")).await;
    assert_eq!(
        v["data"],
        serde_json::json!(["build_info", "demo_requests_total", "demo_temperature_celsius", "target_info"])
    );
    // Metadata is read from the `metadata` table: there after the next flush.
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let (status, v) = get_json(&format!("{api}/metadata")).await;
        assert_eq!(status, 200, "{v}");
        if v["data"].as_object().is_some_and(|m| m.len() == 2) || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(v["data"]["demo_temperature_celsius"][0]["unit"], "celsius", "{v}");
    assert_eq!(v["data"]["demo_requests_total"][0]["type"], "counter", "{v}");
    let r = post_form(
        &format!("{api}/series"),
        &[("match[]", "{__name__=\"demo_requests_total\"}"), ("start", &from.to_string()), ("end", &to.to_string())],
    )
    .await;
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(4), "{v}");
    let (_, v) = get_json(&format!(
        "{api}/label/instance/values?match[]=demo_requests_total%7Bjob%3D%22api%22%7D&start={from}&end={to}"
    ))
    .await;
    assert_eq!(v["data"], serde_json::json!(["a:80", "b:80"]));

    // A dashboard refresh: a range query with start and end aligned to the
    // step, POSTed as a form, and the exemplars of the same query.
    let step = 60;
    let (a, b) = (from / step * step + step, to / step * step);
    let q = "sum by (job) (rate(demo_requests_total[$__rate_interval]))".replace("$__rate_interval", "1m");
    let r = post_form(
        &format!("{api}/query_range"),
        &[("query", q.as_str()), ("start", &a.to_string()), ("end", &b.to_string()), ("step", &step.to_string())],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{v}");
    for s in result {
        let points = s["values"].as_array().unwrap();
        assert_eq!(points.len() as i64, (b - a) / step + 1, "{s}");
        for p in points {
            assert_eq!(p[0].as_i64().unwrap() % step, 0, "aligned steps");
            assert!(p[1].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
        }
    }
    let (status, v) =
        get_json(&format!("{api}/query_exemplars?query={}&start={a}&end={b}", "demo_requests_total")).await;
    assert_eq!((status, &v["data"]), (200, &serde_json::json!([])));
}
