//! The crash matrix of the stream workers (issue 3, part 7), at the process
//! level: `promlake serve` (gateway and workers in one process) dies at a
//! failpoint of the workers' commit path (`PROMLAKE_FAILPOINTS`, see
//! `stream-workers/src/failpoint.rs`; the failpoint aborts the process, so
//! nothing is flushed, as with SIGKILL), restarts without it, takes more
//! writes and stops cleanly. The lake, read by the independent reader, then
//! holds exactly the acknowledged samples, each (series, timestamp) once.
//!
//! The writer behaves like Prometheus: it retries a request until it is
//! acknowledged (so the request in flight when the process died is sent
//! again after the restart), and it also sends some requests twice (an
//! answer lost after the gateway stored the request), including the last
//! acknowledged request before the crash, re-sent after the restart.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::log::Log;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prost::Message;
use schemas::prompb;

use crate::harness::{TestServer, client, post_remote_write, read_lake_with_python};

/// Long-lived series, one sample each per request.
const SERIES: usize = 6;
/// Requests after the restart.
const AFTER_RESTART: usize = 15;
/// Pause between requests.
const PACE: Duration = Duration::from_millis(40);
/// The failpoint must fire within this long of the start.
const FIRE_WITHIN: Duration = Duration::from_secs(8);

/// Commits every 200 ms so the failpoints are reached quickly; the log
/// consumer offset lags the lake by 1 s of log time, so within a case it is
/// committed (and behind the tables at the crash), while a request re-sent
/// right after the restart is still within the deduplication horizon.
const CONFIG: &str = "\
[stream_workers]
flush_interval_ms = 200
fetch_max_wait_ms = 50
dedup_horizon_ms = 1000
retry_backoff_ms = 100
";

/// The samples of one request: ((series id, timestamp), value).
pub(crate) type Samples = Vec<((i64, i64), f64)>;

/// Request `i`: one sample for each long-lived series at `base + i s`, and a
/// series and a metric metadata entry born with this request (so every flush
/// has rows for the `series` and `metadata` tables too).
pub(crate) fn request(base_ms: i64, i: usize) -> (Vec<u8>, Samples) {
    let ts = base_ms + i as i64 * 1000;
    let mut timeseries = Vec::new();
    let mut samples = Vec::new();
    let mut push = |labels: Vec<(String, String)>, value: f64| {
        let id = schemas::labels::series_id(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        samples.push(((id as i64, ts), value));
        timeseries.push(prompb::TimeSeries {
            labels: labels.into_iter().map(|(name, value)| prompb::Label { name, value }).collect(),
            samples: vec![prompb::Sample { value, timestamp: ts }],
            ..Default::default()
        });
    };
    for s in 0..SERIES {
        // Labels sorted by name, as the series id is defined on.
        push(vec![("__name__".into(), "lake_crash".into()), ("s".into(), s.to_string())], (i * 10 + s) as f64);
    }
    let born = format!("lake_crash_born_{i}");
    push(vec![("__name__".into(), born.clone())], i as f64 + 0.5);
    let metadata = vec![prompb::MetricMetadata {
        r#type: prompb::metric_metadata::MetricType::Gauge as i32,
        metric_family_name: born,
        help: format!("Born with request {i}."),
        unit: String::new(),
    }];
    let body = prompb::WriteRequest { timeseries, metadata }.encode_to_vec();
    (snap::raw::Encoder::new().compress_vec(&body).unwrap(), samples)
}

/// Posts one remote-write request; `true` when acknowledged (2xx).
pub(crate) async fn send(http: &reqwest::Client, url: &str, ws: &str, body: &[u8]) -> bool {
    match post_remote_write(http, &format!("{url}/workspaces/{ws}/api/v1/remote_write"), body).await {
        Some(r) if r.status().is_success() => true,
        Some(r) => {
            assert!(r.status().is_server_error() || r.status() == 429 || r.status() == 404, "status {}", r.status());
            false
        }
        None => false,
    }
}

/// The stream workers' committed consumer offset of each partition, read
/// from the embedded log of the dead process.
async fn committed_offsets(data: &std::path::Path, ws: &str) -> Vec<Option<u64>> {
    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogConfig::default()).expect("open log");
    let topic = schemas::topics::samples_topic(ws);
    let mut out = Vec::new();
    for p in 0..log.partition_count(&topic).await.expect("topic") {
        out.push(log.committed_offset(stream_workers::CONSUMER_GROUP, &topic, p).await.expect("committed offset"));
    }
    log.close().await.expect("close");
    out
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One cell of the matrix: arm `failpoint` to fire on its `hit`-th hit.
async fn crash_at(failpoint: &str, hit: u32) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("promlake.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let data = dir.path().join("data");
    let armed = format!("{failpoint}={hit}");
    let mut server = TestServer::spawn_with_env(&data, &["--config", &config], &[("PROMLAKE_FAILPOINTS", &armed)]);
    let ws = server.create_workspace("lake-crash").await;
    let http = client();
    // An hour ago, on a whole second: far from "now" and from retention.
    let base_ms = (now_ms() - 3_600_000) / 1000 * 1000;
    let mut acked: HashMap<(i64, i64), f64> = HashMap::new();
    let mut ack = |samples: &Samples| {
        for &(key, value) in samples {
            assert!(acked.insert(key, value).is_none_or(|v| v == value));
        }
    };

    // Before the crash: write until the failpoint kills the process.
    let mut i = 0;
    let mut acked_at = Vec::new();
    let died = loop {
        if let Some(status) = server.try_exit() {
            break status;
        }
        assert!(started.elapsed() < FIRE_WITHIN, "failpoint {armed} did not fire within {FIRE_WITHIN:?}");
        let (body, samples) = request(base_ms, i);
        if send(&http, &server.url, &ws, &body).await {
            ack(&samples);
            acked_at.push((i, Instant::now()));
            if i % 3 == 0 {
                // A retry of an acknowledged request (its answer was lost).
                send(&http, &server.url, &ws, &body).await;
            }
            i += 1;
        }
        tokio::time::sleep(PACE).await;
    };
    let crashed_at = started.elapsed();
    let crash = Instant::now();
    assert_eq!(
        died.signal(),
        Some(6),
        "promlake should have aborted (SIGABRT) at failpoint {armed}; it exited with {died}"
    );
    let &(last_acked, _) = acked_at.last().expect("nothing was acknowledged before the crash");
    assert!(i >= 5, "the failpoint fired before much was written ({i} requests)");
    // The consumer offset was stored before the crash (behind the tables, by
    // the horizon), so the restart resumes from it and the tables' versions.
    let offsets = committed_offsets(&data, &ws).await;
    assert!(offsets.iter().any(Option::is_some), "{armed}: no consumer offset stored before the crash: {offsets:?}");
    // Retried after the restart: the last request acknowledged, and one
    // acknowledged about 600 ms (three flushes, likely committed to the
    // lake) before the crash, within the deduplication horizon of 1 s.
    let earlier = acked_at.iter().find(|(_, t)| crash - *t <= Duration::from_millis(600)).map_or(0, |a| a.0);

    // After the restart, without the failpoint: re-send those two, retry the
    // request in flight at the crash until acknowledged, go on.
    let mut server = tokio::task::spawn_blocking({
        let (data, config) = (data.clone(), config.clone());
        move || TestServer::spawn_with(&data, &["--config", &config])
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for retried in [earlier, last_acked] {
        let (body, _) = request(base_ms, retried);
        while !send(&http, &server.url, &ws, &body).await {
            assert!(Instant::now() < deadline, "no request acknowledged after the restart");
            tokio::time::sleep(PACE).await;
        }
    }
    let end = i + AFTER_RESTART;
    while i < end {
        let (body, samples) = request(base_ms, i);
        if send(&http, &server.url, &ws, &body).await {
            ack(&samples);
            if i % 3 == 0 {
                send(&http, &server.url, &ws, &body).await;
            }
            i += 1;
        } else {
            assert!(Instant::now() < deadline, "writes after the restart are not acknowledged");
        }
        tokio::time::sleep(PACE).await;
    }
    // A clean stop drains the log into the lake.
    assert!(server.terminate().success(), "promlake did not stop cleanly");

    let (rows, _) = read_lake_with_python(&data.join("lake"), &ws);
    let mut seen = HashSet::new();
    let doubled: Vec<_> = rows.iter().filter(|r| !seen.insert((r.0, r.1))).collect();
    assert!(
        doubled.is_empty(),
        "{armed}: the lake holds {} (series, timestamp) more than once, e.g. {:?}",
        doubled.len(),
        doubled.iter().take(3).collect::<Vec<_>>()
    );
    let lost: Vec<_> = acked.keys().filter(|k| !seen.contains(k)).collect();
    assert!(
        lost.is_empty(),
        "{armed}: {} acknowledged samples are not in the lake, e.g. {:?}",
        lost.len(),
        lost.iter().take(3).collect::<Vec<_>>()
    );
    let extra: Vec<_> = seen.iter().filter(|k| !acked.contains_key(k)).collect();
    assert!(extra.is_empty(), "{armed}: samples in the lake that were never sent: {:?}", &extra[..extra.len().min(3)]);
    for (id, ts, bits, _) in &rows {
        let want = acked[&(*id, *ts)].to_le_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(bits.as_deref(), Some(want.as_str()), "{armed}: value of ({id}, {ts})");
    }
    eprintln!(
        "{armed}: died after {crashed_at:?} and {} requests (consumer offsets {offsets:?}, re-sent {earlier} and {last_acked}); \
         {} samples, exactly once; case took {:?}",
        last_acked + 1,
        acked.len(),
        started.elapsed()
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_parquet_write_before_commit() {
    crash_at("after_parquet_write", 85).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_samples_commit_before_series_and_metadata() {
    crash_at("after_samples_commit", 38).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_series_commit_before_metadata() {
    crash_at("after_series_commit", 28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_all_commits_before_offset_commit() {
    crash_at("before_offset_commit", 38).await;
}
