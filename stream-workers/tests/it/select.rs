//! Reading through `SampleReader::select`: head and tables together, label
//! matchers, time ranges, pruning, consistency while flushes go on, and the
//! head's memory budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::seams::{LabelMatcher, MatchOp, SampleReader, SampleValue, Selected, Selection};
use prometheus_client::registry::Registry;
use stream_workers::StreamWorkersConfig;

use crate::harness::*;

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, MatchOp::Equal, value).unwrap()
}

fn selection(matchers: Vec<LabelMatcher>, start_ms: i64, end_ms: i64) -> Selection {
    Selection { matchers, start_ms, end_ms }
}

/// (labels as text, [(timestamp, value)]) of every selected series.
fn flatten(selected: &Selected) -> BTreeMap<String, Vec<(i64, f64)>> {
    selected
        .series
        .iter()
        .map(|s| {
            let labels = s.labels.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(",");
            let samples = s
                .samples
                .iter()
                .map(|x| match x.value {
                    SampleValue::Float(v) => (x.timestamp_ms, v),
                    SampleValue::Histogram(_) => (x.timestamp_ms, f64::NAN),
                })
                .collect();
            (labels, samples)
        })
        .collect()
}

/// Polls `select` until `done` holds or 10 s pass.
async fn select_until(
    workers: &stream_workers::StreamWorkers,
    sel: &Selection,
    done: impl Fn(&Selected) -> bool,
) -> Selected {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = workers.select(WS, sel).await.unwrap();
        if done(&got) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn samples_are_read_from_the_head_before_the_flush_and_from_the_tables_after() {
    let env = Env::new(2).await;
    let t0 = 1_714_000_000_000;
    let a = series(&[("__name__", "up"), ("job", "node"), ("instance", "a")], &[(t0, 1.0), (t0 + 15_000, 0.0)]);
    let b = series(&[("__name__", "up"), ("job", "api"), ("instance", "b")], &[(t0, 1.0)]);
    let c = series(&[("__name__", "load1"), ("job", "node")], &[(t0 + 5_000, 0.25)]);
    let offset0 = env.append(0, &batch(vec![a.clone(), c.clone()], vec![])).await;
    let offset1 = env.append(1, &batch(vec![b.clone()], vec![])).await;

    // No flush by age or size: everything stays in the head.
    let slow =
        StreamWorkersConfig { flush_interval_ms: 3_600_000, fetch_max_wait_ms: 20, ..StreamWorkersConfig::default() };
    let mut registry = Registry::default();
    let workers = env.start(slow, env.writer(), None, &mut registry).await;
    let all = selection(vec![eq("__name__", "up")], t0 - 1, t0 + 60_000);
    let got = select_until(&workers, &all, |s| s.stats.head_samples == 3).await;
    assert_eq!(
        flatten(&got),
        BTreeMap::from([
            ("__name__=up,instance=a,job=node".to_owned(), vec![(t0, 1.0), (t0 + 15_000, 0.0)]),
            ("__name__=up,instance=b,job=api".to_owned(), vec![(t0, 1.0)]),
        ])
    );
    assert_eq!((got.stats.head_samples, got.stats.table_samples), (3, 0));
    assert!(read_samples(&env.lake).await.is_empty(), "nothing was flushed yet");
    // Read-your-writes: the records are readable (in the heads) at once,
    // while waiting for their commit times out.
    let position = vec![(0, offset0), (1, offset1)];
    let short = Duration::from_millis(300);
    workers.wait_until_readable(WS, &position, Duration::from_secs(5)).await.unwrap();
    assert!(workers.wait_for_position(WS, &position, short).await.is_err(), "committed without a flush");
    assert!(
        workers.wait_until_readable(WS, &vec![(0, offset0 + 1)], short).await.is_err(),
        "an offset not written yet"
    );
    assert!(metric_value(&registry, "promlake_stream_head_bytes") > 0.0);

    // Matchers and ranges on the head.
    let node = selection(vec![eq("job", "node")], t0, t0 + 10_000);
    let got = workers.select(WS, &node).await.unwrap();
    assert_eq!(
        flatten(&got),
        BTreeMap::from([
            ("__name__=load1,job=node".to_owned(), vec![(t0 + 5_000, 0.25)]),
            ("__name__=up,instance=a,job=node".to_owned(), vec![(t0, 1.0)]),
        ])
    );

    // A clean stop flushes; new workers read the same from the tables.
    workers.shutdown().await;
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    let got = workers.select(WS, &all).await.unwrap();
    assert_eq!((got.stats.head_samples, got.stats.table_samples), (0, 3));
    assert_eq!(flatten(&got).len(), 2);
    assert_eq!(metric_value(&registry, "promlake_stream_head_bytes"), 0.0);

    // Matchers on the tables: regex (anchored), negative regex, !=, and a
    // missing label matching the empty value.
    let cases: Vec<(Vec<LabelMatcher>, Vec<&str>)> = vec![
        (vec![LabelMatcher::new("job", MatchOp::Regex, "no.*").unwrap()], vec!["load1/node", "up/a"]),
        (vec![LabelMatcher::new("job", MatchOp::Regex, "od").unwrap()], vec![]),
        (vec![eq("__name__", "up"), LabelMatcher::new("instance", MatchOp::NotRegex, "a|c").unwrap()], vec!["up/b"]),
        (vec![LabelMatcher::new("job", MatchOp::NotEqual, "node").unwrap()], vec!["up/b"]),
        (vec![eq("job", "node"), eq("instance", "")], vec!["load1/node"]),
    ];
    for (matchers, expected) in cases {
        let what = format!("{matchers:?}");
        let got = workers.select(WS, &selection(matchers, t0 - 1, t0 + 60_000)).await.unwrap();
        let names: Vec<String> = got
            .series
            .iter()
            .map(|s| {
                let get = |n: &str| s.labels.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
                let second = if get("instance").is_empty() { get("job") } else { get("instance") };
                format!("{}/{second}", get("__name__"))
            })
            .collect();
        assert_eq!(names, expected, "{what}");
    }
    workers.shutdown().await;
}

#[tokio::test]
async fn a_selection_opens_only_the_files_that_can_hold_it() {
    let env = Env::new(1).await;
    let day1 = 1_714_003_200_000; // 2024-04-25T00:00:00Z
    let day2 = day1 + 86_400_000;
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    // Three flushes, each its own file: metric a on day 1, metric b on day
    // 1, metric a on day 2.
    let writes = [("a", day1), ("b", day1), ("a", day2)];
    for (metric, t) in writes {
        let s = series(&[("__name__", metric), ("job", "x")], &[(t + 1_000, 1.0), (t + 2_000, 2.0)]);
        let offset = env.append(0, &batch(vec![s], vec![])).await;
        workers.wait_for_offset(WS, 0, offset, Duration::from_secs(10)).await.unwrap();
    }
    let sel = selection(vec![eq("__name__", "a")], day1, day1 + 3_600_000);
    let got = workers.select(WS, &sel).await.unwrap();
    assert_eq!(flatten(&got).into_values().collect::<Vec<_>>(), vec![vec![(day1 + 1_000, 1.0), (day1 + 2_000, 2.0)]]);
    assert_eq!(got.stats.files_total, 3, "{:?}", got.stats);
    assert_eq!(got.stats.files_read, 1, "b's file is pruned by statistics, day 2's by partition: {:?}", got.stats);
    assert_eq!(got.stats.table_samples, 2);
    // A range inside day 1 but after the samples: no file at all.
    let late = selection(vec![eq("__name__", "a")], day1 + 3_600_000, day1 + 7_200_000);
    let got = workers.select(WS, &late).await.unwrap();
    assert!(got.series.is_empty());
    assert_eq!(got.stats.files_read, 0, "{:?}", got.stats);
    // No metric name: both metrics of day 1.
    let by_job = selection(vec![eq("job", "x")], day1, day1 + 3_600_000);
    let got = workers.select(WS, &by_job).await.unwrap();
    assert_eq!(got.series.len(), 2);
    assert_eq!(got.stats.files_read, 2, "{:?}", got.stats);
    workers.shutdown().await;
}

#[tokio::test]
async fn a_reader_racing_flushes_never_loses_nor_doubles_a_sample() {
    let env = Arc::new(Env::new(2).await);
    let t0 = 1_714_000_000_000;
    // Flush very often, so flushes race the reads.
    let config = StreamWorkersConfig { flush_interval_ms: 5, flush_max_samples: 50, ..fast_config() };
    let mut registry = Registry::default();
    let workers = Arc::new(env.start(config, env.writer(), None, &mut registry).await);
    let done = Arc::new(AtomicBool::new(false));
    let records = 60usize;
    let writer = {
        let (env, done) = (env.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = [0u64; 2];
            for i in 0..records {
                let samples: Vec<(i64, f64)> = (0..20).map(|j| (t0 + (i * 20 + j) as i64 * 1_000, j as f64)).collect();
                let s = series(&[("__name__", "m"), ("p", &format!("{}", i % 2))], &samples);
                last[i % 2] = env.append((i % 2) as u32, &batch(vec![s], vec![])).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            done.store(true, Ordering::SeqCst);
            last
        })
    };
    let sel = selection(vec![eq("__name__", "m")], i64::MIN, i64::MAX);
    let mut previous = 0usize;
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) {
        let got = workers.select(WS, &sel).await.unwrap();
        let count: usize = got.series.iter().map(|s| s.samples.len()).sum();
        for s in &got.series {
            assert!(s.samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms), "sorted, no doubles");
        }
        // Samples only ever appear: a read never sees fewer than the one
        // before it (a flush dropping rows from the head the snapshot did
        // not hold yet would make it shrink).
        assert!(count >= previous, "read {reads}: {count} samples after {previous}");
        previous = count;
        reads += 1;
    }
    let last = writer.await.unwrap();
    for (p, offset) in last.iter().enumerate() {
        workers.wait_for_offset(WS, p as u32, *offset, Duration::from_secs(10)).await.unwrap();
    }
    let got = workers.select(WS, &sel).await.unwrap();
    assert_eq!(got.series.iter().map(|s| s.samples.len()).sum::<usize>(), records * 20);
    assert!(reads > 3, "only {reads} reads raced the writes");
    Arc::into_inner(workers).unwrap().shutdown().await;
}

#[tokio::test]
async fn under_memory_pressure_the_head_flushes_early() {
    let env = Env::new(1).await;
    let t0 = 1_714_000_000_000;
    // Neither age nor size would flush within the test; the budget does.
    let config = StreamWorkersConfig {
        flush_interval_ms: 3_600_000,
        flush_max_samples: usize::MAX,
        head_max_bytes: 1_000,
        ..fast_config()
    };
    let mut registry = Registry::default();
    let workers = env.start(config, env.writer(), None, &mut registry).await;
    let samples: Vec<(i64, f64)> = (0..200).map(|i| (t0 + i * 1_000, i as f64)).collect();
    let offset = env.append(0, &batch(vec![series(&[("__name__", "m")], &samples)], vec![])).await;
    workers.wait_for_offset(WS, 0, offset, Duration::from_secs(10)).await.unwrap();
    assert_eq!(read_samples(&env.lake).await.len(), 200);
    assert_eq!(metric_value(&registry, "promlake_stream_head_bytes"), 0.0);
    workers.shutdown().await;
}
