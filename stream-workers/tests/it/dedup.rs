//! Deduplication as Prometheus's head does it, counted per reason.

use std::sync::Arc;
use std::time::Duration;

use common::clock::SystemClock;
use common::limits::{Limits, Overrides, WorkspaceOverride};
use prometheus_client::registry::Registry;

use crate::harness::*;

fn discarded(registry: &Registry, reason: &str) -> f64 {
    metric_value(
        registry,
        &format!("promlake_stream_samples_discarded_total{{workspace=\"{WS}\",reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn duplicates_and_out_of_order_samples_are_dropped_and_counted() {
    let env = Env::new(1).await;
    let labels = [("__name__", "node_load1"), ("job", "node")];
    let a = |samples: &[(i64, f64)]| batch(vec![series(&labels, samples)], vec![]);
    env.append(0, &a(&[(1000, 1.0), (2000, 2.0)])).await;
    // A retry: the newest sample again is dropped silently; the older one is
    // below the newest with no out-of-order window, so it is out of order
    // (as Prometheus's head and Mimir count it).
    env.append(0, &a(&[(1000, 1.0), (2000, 2.0)])).await;
    // Another value at an accepted timestamp; an older sample; a new one.
    let last = env.append(0, &a(&[(2000, 5.0), (1500, 3.0), (3000, 3.0)])).await;

    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, last, Duration::from_secs(10)).await.unwrap();
    workers.shutdown().await;

    let map = sample_map(&env.lake).await;
    let id = series(&labels, &[]).series_id;
    let expected: Vec<_> =
        [(1000, 1.0f64), (2000, 2.0), (3000, 3.0)].iter().map(|&(t, v)| ((id, t), Some(v.to_bits()))).collect();
    assert_eq!(map.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(discarded(&registry, "duplicate_sample"), 1.0);
    assert_eq!(discarded(&registry, "out_of_order"), 2.0);
}

#[tokio::test]
async fn the_out_of_order_window_accepts_older_samples_within_it() {
    let env = Env::new(1).await;
    let labels = [("__name__", "node_load1"), ("job", "node")];
    let a = |samples: &[(i64, f64)]| batch(vec![series(&labels, samples)], vec![]);
    // Out of order within one record and across records.
    env.append(0, &a(&[(5000, 5.0), (4500, 4.5)])).await;
    let last = env.append(0, &a(&[(4500, 4.5), (4200, 4.2), (3900, 3.9), (4200, 9.9)])).await;

    let mut registry = Registry::default();
    // The window comes from the workspace's limits (1 s); other workspaces keep 0.
    let mut limits = Limits::default();
    let mut ws = WorkspaceOverride::default();
    ws.storage.out_of_order_time_window_seconds = Some(1);
    limits.overrides.insert(WS.to_owned(), ws);
    let overrides = Arc::new(Overrides::new(&limits));
    assert_eq!(overrides.out_of_order_window_ms("ws-other"), 0);
    let workers =
        env.start_with(fast_config(), env.writer(), None, overrides, Arc::new(SystemClock), &mut registry).await;
    workers.wait_for_offset(WS, 0, last, Duration::from_secs(10)).await.unwrap();
    workers.shutdown().await;

    let map = sample_map(&env.lake).await;
    let timestamps: Vec<i64> = map.keys().map(|k| k.1).collect();
    assert_eq!(timestamps, vec![4200, 4500, 5000]);
    assert_eq!(discarded(&registry, "out_of_order"), 1.0);
    assert_eq!(discarded(&registry, "duplicate_sample"), 1.0);
}
