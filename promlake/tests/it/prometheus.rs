//! A real Prometheus 3.5 in agent mode scrapes a real node_exporter and
//! itself and remote-writes to PromLake (1.0 in one test, 2.0 in the other).
//! Prometheus must report no failed samples, and the samples it reports as
//! sent must equal the samples in PromLake's log.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashSet;

use crate::harness::{
    Process, TestServer, client, free_port, metric_value, prometheus_agent, read_lake_with_python, read_log,
    reference_bin, wait_http,
};

async fn scrape(url: &str) -> String {
    client().get(url).send().await.unwrap().text().await.unwrap()
}

async fn agent_writes_everything(protobuf_message: &str) {
    let bin = reference_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut promlake = TestServer::spawn(&dir.path().join("promlake"));
    let ws = promlake.create_workspace("agent").await;

    let node_port = free_port();
    let _node = Process(
        Command::new(bin.join("prometheus-node-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    wait_http(&format!("http://127.0.0.1:{node_port}/metrics")).await;

    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs: [{{ targets: ["127.0.0.1:{node_port}"] }}]
  - job_name: prometheus
    static_configs: [{{ targets: ["127.0.0.1:{prom_port}"] }}]
remote_write:
  - url: {url}/workspaces/{ws}/api/v1/remote_write
    protobuf_message: {protobuf_message}
    queue_config:
      batch_send_deadline: 200ms
    metadata_config:
      send_interval: 1s
"#,
        url = promlake.url
    );
    let prom = prometheus_agent(dir.path(), &config, prom_port).await;
    let prom_metrics = format!("http://127.0.0.1:{prom_port}/metrics");

    let written = format!("promlake_ingest_written_total{{workspace=\"{ws}\",kind=\"sample\"}}");
    let sent_metric = "prometheus_remote_storage_samples_total{";
    // Let several scrapes of both targets flow, then find a quiet moment in
    // which Prometheus's sent count is stable and equals PromLake's.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut matched = None;
    let mut last = (0.0, 0.0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let before = metric_value(&scrape(&prom_metrics).await, sent_metric);
        let ours = promlake.metric(&written).await;
        let after = metric_value(&scrape(&prom_metrics).await, sent_metric);
        last = (after, ours);
        if before > 2000.0 && before == after && ours == after {
            matched = Some(after);
            break;
        }
    }
    let sent = matched.unwrap_or_else(|| panic!("Prometheus's sent count and PromLake's never matched: last {last:?}"));

    let text = scrape(&prom_metrics).await;
    assert_eq!(
        metric_value(&text, "prometheus_remote_storage_samples_failed_total{"),
        0.0,
        "Prometheus saw failed samples"
    );
    assert_eq!(
        metric_value(&text, "prometheus_remote_storage_samples_dropped_total{"),
        0.0,
        "Prometheus dropped samples"
    );
    drop(prom);

    // What PromLake acknowledged is exactly what its log holds.
    let acknowledged = promlake.metric(&written).await;
    assert!(acknowledged >= sent);
    assert!(promlake.terminate().success());
    let records = read_log(&dir.path().join("promlake"), &ws).await;
    let in_log: usize = records.iter().flat_map(|r| &r.series).map(|s| s.samples.len()).sum();
    assert_eq!(in_log as f64, acknowledged, "samples in the log vs samples acknowledged");
    let version = if protobuf_message.contains("v2") { 2 } else { 1 };
    assert!(records.iter().all(|r| r.protocol_version == version));
    // Real node_exporter series arrived with their labels.
    let has = |name: &str| {
        records.iter().flat_map(|r| &r.series).any(|s| s.labels.iter().any(|l| l.name == "__name__" && l.value == name))
    };
    assert!(has("node_cpu_seconds_total"), "no node_exporter series in the log");
    assert!(has("prometheus_build_info"), "no Prometheus self-scrape series in the log");
    // The lake, read by an independent reader, holds exactly the samples of
    // the log (the clean shutdown drained the log into it), each once.
    let mut expected = HashSet::new();
    for s in records.iter().flat_map(|r| &r.series) {
        for x in &s.samples {
            let stale = schemas::labels::is_stale_marker(x.value);
            expected.insert((s.series_id as i64, x.timestamp_ms, Some(hex_le(x.value)), stale));
        }
    }
    let (rows, metrics) = read_lake_with_python(&dir.path().join("promlake/lake"), &ws);
    let distinct: HashSet<_> = rows.iter().map(|(id, ts, _, _)| (*id, *ts)).collect();
    assert_eq!(distinct.len(), rows.len(), "the lake holds a (series, timestamp) twice");
    let got: HashSet<_> = rows.into_iter().collect();
    assert_eq!(got.len(), expected.len(), "samples in the lake vs in the log");
    assert!(got == expected, "the lake's samples differ from the log's");
    assert!(metrics.iter().any(|m| m == "node_cpu_seconds_total"));
    if version == 1 {
        // RW 1.0 sends metadata in requests of its own. (An agent's RW 2.0
        // carries none: the agent's WAL does not record metadata.)
        assert!(records.iter().any(|r| !r.metadata.is_empty()), "no metric metadata in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_agent_remote_write_1_0() {
    agent_writes_everything("prometheus.WriteRequest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_agent_remote_write_2_0() {
    agent_writes_everything("io.prometheus.write.v2.Request").await;
}

/// The value's bits as little-endian hex, as `read_lake.py` prints them.
fn hex_le(v: f64) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
