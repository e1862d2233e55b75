//! The crash test: writers that retry until acknowledged keep writing while
//! `promlake serve` is killed with SIGKILL several times. Afterwards every
//! sample whose request got a 2xx is in the log.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rand::Rng;
use schemas::prompb;

use crate::harness::{TestServer, client, read_log};

const WRITERS: usize = 4;
const KILLS: usize = 4;

fn request(writer: usize, seq: i64) -> Vec<u8> {
    let series = (0..10)
        .map(|s| prompb::TimeSeries {
            labels: vec![
                prompb::Label { name: "__name__".into(), value: "crash_test".into() },
                prompb::Label { name: "series".into(), value: s.to_string() },
                prompb::Label { name: "writer".into(), value: writer.to_string() },
            ],
            samples: vec![prompb::Sample { value: seq as f64, timestamp: 1_700_000_000_000 + seq }],
            ..Default::default()
        })
        .collect();
    let body = prompb::WriteRequest { timeseries: series, metadata: vec![] }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_sample_survives_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::spawn(dir.path());
    let ws = server.create_workspace("crash").await;
    let url = Arc::new(Mutex::new(server.url.clone()));
    let acked: Arc<Mutex<HashSet<(usize, i64)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (url, acked, stop, ws) = (url.clone(), acked.clone(), stop.clone(), ws.clone());
        writers.push(tokio::spawn(async move {
            let http = client();
            let mut seq = 0i64;
            let mut attempts = 0u64;
            while !stop.is_cancelled() {
                let body = request(w, seq);
                // Retry this request until it is acknowledged, like Prometheus.
                loop {
                    attempts += 1;
                    let target = format!("{}/workspaces/{ws}/api/v1/remote_write", url.lock().unwrap());
                    let sent = http
                        .post(target)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().unwrap().insert((w, seq));
                            break;
                        }
                        Ok(r) => assert!(
                            r.status().is_server_error() || r.status() == 429,
                            "unexpected status {}",
                            r.status()
                        ),
                        Err(_) => {}
                    }
                    if stop.is_cancelled() {
                        return attempts;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seq += 1;
            }
            attempts
        }));
    }

    for _ in 0..KILLS {
        let pause = rand::rng().random_range(300..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill();
        let restarted = tokio::task::spawn_blocking({
            let dir = dir.path().to_owned();
            move || TestServer::spawn(&dir)
        })
        .await
        .unwrap();
        server = restarted;
        *url.lock().unwrap() = server.url.clone();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for w in writers {
        w.await.unwrap();
    }
    // The workspace survived every kill.
    let resp = client().get(format!("{}/workspaces/{ws}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(server.terminate().success());

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "too few acknowledged requests to mean anything: {}", acked.len());
    let mut found: HashSet<(usize, i64)> = HashSet::new();
    let mut per_request_series: std::collections::HashMap<(usize, i64), HashSet<String>> = Default::default();
    for batch in read_log(dir.path(), &ws).await {
        for s in batch.series {
            let writer: usize = s.labels.iter().find(|l| l.name == "writer").unwrap().value.parse().unwrap();
            let series = s.labels.iter().find(|l| l.name == "series").unwrap().value.clone();
            for sample in s.samples {
                let seq = sample.timestamp_ms - 1_700_000_000_000;
                assert_eq!(sample.value, seq as f64, "sample value corrupted");
                found.insert((writer, seq));
                per_request_series.entry((writer, seq)).or_default().insert(series.clone());
            }
        }
    }
    let lost: Vec<_> = acked.iter().filter(|k| !found.contains(k)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    // An acknowledged request is whole: all of its 10 series are there
    // (some possibly twice, when a retry repeated part of it).
    for k in &acked {
        let n = per_request_series[k].len();
        assert_eq!(n, 10, "acknowledged request {k:?} is partly stored: {n} of 10 series");
    }
}
