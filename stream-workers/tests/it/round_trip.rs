//! Records in the log come out in the three tables, each sample once.

use std::time::Duration;

use prometheus_client::registry::Registry;
use prost::Message;
use schemas::labels::STALE_NAN_BITS;
use schemas::stream::{Histogram, MetricMetadata, metric_metadata::MetricType};

use crate::harness::*;

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn every_sample_lands_once_sorted_and_partitioned_by_day() {
    let env = Env::new(2).await;
    // Two days: the last minute of one and the first of the next.
    let t0 = 1_714_003_200_000 - 30_000; // 2024-04-24T23:59:30Z
    let cpu = series(
        &[("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("mode", "idle"), ("job", "node")],
        &[(t0, 10.5), (t0 + 15_000, 11.0), (t0 + 30_000, 11.5), (t0 + 45_000, f64::from_bits(STALE_NAN_BITS))],
    );
    let mem = series(&[("__name__", "node_memory_MemFree_bytes"), ("job", "node")], &[(t0, 1e9), (t0 + 15_000, 2e9)]);
    let mut hist = series(&[("__name__", "http_request_duration_seconds"), ("job", "api")], &[]);
    hist.histograms = vec![histogram(t0 + 1, 10, 2.5), histogram(t0 + 15_001, 12, 3.0)];
    let meta = MetricMetadata {
        metric_family_name: "node_cpu_seconds_total".into(),
        r#type: MetricType::Counter as i32,
        help: "Seconds the CPUs spent in each mode.".into(),
        unit: "seconds".into(),
    };
    let o0 = env.append(0, &batch(vec![cpu.clone(), hist.clone()], vec![meta])).await;
    let o0b = env
        .append(0, &batch(vec![series(&[("__name__", "up"), ("job", "node")], &[(t0 + 60_000, 1.0)])], vec![]))
        .await;
    let o1 = env.append(1, &batch(vec![mem.clone()], vec![])).await;

    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, o0b, Duration::from_secs(10)).await.unwrap();
    workers.wait_for_offset(WS, 1, o1, Duration::from_secs(10)).await.unwrap();
    assert!(o0 < o0b);
    // Not appended yet: times out.
    let early = workers.wait_for_offset(WS, 1, o1 + 1, Duration::from_millis(100)).await;
    assert!(matches!(early, Err(stream_workers::Error::Timeout { .. })), "{early:?}");
    workers.shutdown().await;

    let samples = read_samples(&env.lake).await;
    assert_eq!(samples.len(), 4 + 2 + 2 + 1, "{samples:#?}");
    let map = sample_map(&env.lake).await;
    assert_eq!(map.len(), 9);
    // Values preserved bit for bit, staleness flagged.
    // (Files come in no particular order; rows within a file are sorted.)
    let mut cpu_rows: Vec<_> = samples.iter().filter(|s| s.series_id == cpu.series_id).collect();
    cpu_rows.sort_by_key(|s| s.timestamp_ms);
    assert_eq!(
        cpu_rows.iter().map(|s| (s.timestamp_ms, s.value_bits, s.stale)).collect::<Vec<_>>(),
        vec![
            (t0, Some(10.5f64.to_bits()), false),
            (t0 + 15_000, Some(11.0f64.to_bits()), false),
            (t0 + 30_000, Some(11.5f64.to_bits()), false),
            (t0 + 45_000, Some(STALE_NAN_BITS), true),
        ]
    );
    assert_eq!(cpu_rows[0].day, "2024-04-24");
    assert_eq!(cpu_rows[2].day, "2024-04-25");
    assert_eq!(cpu_rows[0].metric, "node_cpu_seconds_total");
    assert!(t0 / DAY != (t0 + 30_000) / DAY);
    // Histograms: no value, the encoded histogram intact.
    let mut hist_rows: Vec<_> = samples.iter().filter(|s| s.series_id == hist.series_id).collect();
    hist_rows.sort_by_key(|s| s.timestamp_ms);
    assert_eq!(hist_rows.len(), 2);
    assert!(hist_rows.iter().all(|s| s.value_bits.is_none()));
    let decoded = Histogram::decode(hist_rows[1].histogram.as_deref().unwrap()).unwrap();
    assert_eq!(decoded, hist.histograms[1]);

    // Series: one row per series with its labels and time range.
    let series_rows = read_series(&env.lake).await;
    assert_eq!(series_rows.len(), 4, "{series_rows:#?}");
    let cpu_row = series_rows.iter().find(|r| r.0 == cpu.series_id).unwrap();
    assert_eq!(cpu_row.1, "node_cpu_seconds_total");
    assert_eq!(cpu_row.2.get("mode").map(String::as_str), Some("idle"));
    assert_eq!(cpu_row.2.get("__name__").map(String::as_str), Some("node_cpu_seconds_total"));
    assert_eq!((cpu_row.3, cpu_row.4), (t0, t0 + 45_000));
    // Metadata.
    let meta = read_metadata(&env.lake).await;
    assert_eq!(
        meta,
        vec![(
            "node_cpu_seconds_total".to_owned(),
            "counter".to_owned(),
            "Seconds the CPUs spent in each mode.".to_owned(),
            "seconds".to_owned()
        )]
    );
    // Metrics.
    let committed = metric_value(&registry, &format!("promlake_stream_samples_committed_total{{workspace=\"{WS}\"}}"));
    assert_eq!(committed, 9.0);
}
