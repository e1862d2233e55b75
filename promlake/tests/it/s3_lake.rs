//! `promlake serve` with its lake on S3: the same binary, configured by
//! `lake = "s3://…"` in the config file and the standard AWS environment
//! variables (endpoint, region, credentials), against moto's S3 server.
//! Every acknowledged sample reaches the S3 tables once, as delta-rs'
//! Python reader sees them, and nothing is written to the local lake
//! directory.

use std::collections::HashSet;
use std::time::Duration;

use crate::harness::{S3Server, TestServer, client, read_lake_url_with_python};
use crate::lake_crash::{Samples, request, send};

const BUCKET: &str = "promlake-lake";

#[tokio::test]
async fn serve_writes_its_lake_to_s3() {
    let s3 = S3Server::start(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("promlake");
    let config = dir.path().join("promlake.toml");
    let lake = format!("s3://{BUCKET}/lake");
    std::fs::write(
        &config,
        format!("lake = \"{lake}\"\n[lake_s3]\nallow_http = true\n[stream_workers]\nflush_interval_ms = 200\n"),
    )
    .unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "promlake-test"),
        ("AWS_SECRET_ACCESS_KEY", "promlake-test"),
    ];
    let mut server = TestServer::spawn_with_env(&data, &["--config", config.to_str().unwrap()], &env);
    let ws = server.create_workspace("s3").await;
    let http = client();
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 60_000;
    let mut expected: Samples = Vec::new();
    for i in 0..5 {
        let (body, samples) = request(base, i);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !send(&http, &server.url, &ws, &body).await {
            assert!(std::time::Instant::now() < deadline, "request {i} not acknowledged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        expected.extend(samples);
    }
    // The workers commit every sample to the S3 tables.
    let committed = format!("promlake_stream_samples_committed_total{{workspace=\"{ws}\"}}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.metric(&committed).await < expected.len() as f64 {
        assert!(std::time::Instant::now() < deadline, "samples not committed to the S3 lake within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.metric(&committed).await, expected.len() as f64);
    assert!(server.terminate().success());

    let mut reader_env = env.to_vec();
    reader_env.push(("AWS_ALLOW_HTTP", "true"));
    let (rows, metrics) = read_lake_url_with_python(&lake, &ws, &reader_env);
    let found: Vec<(i64, i64)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let unique: HashSet<(i64, i64)> = found.iter().copied().collect();
    assert_eq!(unique.len(), found.len(), "a sample twice in the S3 lake");
    let wanted: HashSet<(i64, i64)> = expected.iter().map(|(k, _)| *k).collect();
    assert_eq!(unique, wanted, "every acknowledged sample in the S3 lake");
    assert!(metrics.contains(&"lake_crash".to_owned()), "{metrics:?}");
    assert!(!data.join("lake").exists(), "nothing written to the local lake directory");
}
