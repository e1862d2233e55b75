//! Recording rules evaluated by `promlake serve`: the output, queried
//! through PromQL, equals the expression evaluated directly at each
//! evaluation time; a later rule sees an earlier rule's result of the same
//! evaluation; a series that goes away gets a staleness marker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use schemas::prompb;
use serde_json::Value;

use crate::harness::{TestServer, client, post_remote_write};

/// The group evaluates 3 s in the past, so every sample at or before an
/// evaluation time was applied before it ran (freshness is under 1 s).
const RULES: &str = "groups:
  - name: load
    interval: 1s
    query_offset: 3s
    labels: {source: rules}
    rules:
      - record: job:load:sum
        expr: sum by (job) (load)
      - record: job:load:sum_doubled
        expr: job:load:sum * 2
        labels: {doubled: 'yes'}
";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn write(series: &[(&str, &str, f64)], ts: i64) -> Vec<u8> {
    let request = prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(job, instance, value)| prompb::TimeSeries {
                labels: vec![
                    prompb::Label { name: "__name__".into(), value: "load".into() },
                    prompb::Label { name: "instance".into(), value: (*instance).into() },
                    prompb::Label { name: "job".into(), value: (*job).into() },
                ],
                samples: vec![prompb::Sample { value: *value, timestamp: ts }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
}

async fn query(server: &TestServer, ws: &str, q: &str, time_ms: i64) -> Vec<Value> {
    let url = format!("{}/workspaces/{ws}/api/v1/query", server.url);
    let time = format!("{:.3}", time_ms as f64 / 1000.0);
    let resp = client().get(url).query(&[("query", q), ("time", &time)]).send().await.unwrap();
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "success", "{q}: {body}");
    body["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// (labels, timestamp ms, value) of every raw sample of `selector` in the
/// last `range` before `time_ms`.
async fn raw_samples(server: &TestServer, ws: &str, selector: &str, time_ms: i64) -> Vec<(Value, i64, f64)> {
    let mut out = Vec::new();
    for series in query(server, ws, &format!("{selector}[60s]"), time_ms).await {
        for point in series["values"].as_array().unwrap() {
            let ts = (point[0].as_f64().unwrap() * 1000.0).round() as i64;
            let v: f64 = point[1].as_str().unwrap().parse().unwrap();
            out.push((series["metric"].clone(), ts, v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_write_what_the_expression_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let ws = server.create_workspace("rules").await;
    let http = client();
    let rw = format!("{}/workspaces/{ws}/api/v1/remote_write", server.url);

    server.create_rule_groups_namespace(&ws, "load", RULES).await;

    // Values that change every 250 ms, so that each evaluation sees other
    // inputs than the one before.
    let started = Instant::now();
    let mut i = 0.0;
    while started.elapsed() < Duration::from_secs(9) {
        i += 1.0;
        let series = [("a", "x", i), ("a", "y", 2.0 * i), ("b", "z", 100.0 + i)];
        let resp = post_remote_write(&http, &rw, &write(&series, now_ms())).await.unwrap();
        assert_eq!(resp.status(), 204);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Job b goes away: Prometheus's remote write sends a staleness marker.
    let gone_at = now_ms();
    let stale = f64::from_bits(schemas::labels::STALE_NAN_BITS);
    let resp = post_remote_write(&http, &rw, &write(&[("b", "z", stale)], gone_at)).await.unwrap();
    assert_eq!(resp.status(), 204);
    for _ in 0..20 {
        i += 1.0;
        let resp =
            post_remote_write(&http, &rw, &write(&[("a", "x", i), ("a", "y", 2.0 * i)], now_ms())).await.unwrap();
        assert_eq!(resp.status(), 204);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The ruler goes on evaluating: look at what it wrote up to a time
    // whose evaluations are all done (an evaluation at wall time T writes
    // at T − 3 s), so every query below sees the same evaluations.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let end = now_ms() - 4000;

    let recorded = raw_samples(&server, &ws, "job:load:sum", end).await;
    assert!(recorded.len() >= 8, "too few evaluations recorded: {recorded:?}");
    let mut evaluations = std::collections::BTreeSet::new();
    for (metric, ts, value) in &recorded {
        let job = metric["job"].as_str().unwrap();
        assert_eq!(metric["source"], "rules", "group labels are applied: {metric}");
        assert_eq!(metric.as_object().unwrap().len(), 3, "__name__, job, source: {metric}");
        evaluations.insert(*ts);
        // The expression evaluated directly at the evaluation time.
        let direct = query(&server, &ws, &format!("sum by (job) (load{{job=\"{job}\"}})"), *ts).await;
        assert_eq!(direct.len(), 1, "at {ts}: {direct:?}");
        let expected: f64 = direct[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(*value, expected, "job {job} at {ts}");
    }
    // Evaluations one interval apart, on one offset within the second.
    let ts: Vec<i64> = evaluations.iter().copied().collect();
    assert!(ts.windows(2).all(|w| (w[1] - w[0]) % 1000 == 0), "not on the group's slots: {ts:?}");

    // The second rule saw the first rule's result of the same evaluation.
    let doubled = raw_samples(&server, &ws, "job:load:sum_doubled", end).await;
    assert!(doubled.len() >= 8, "{doubled:?}");
    for (metric, ts, value) in &doubled {
        assert_eq!(metric["doubled"], "yes");
        let job = metric["job"].as_str().unwrap();
        let base = recorded.iter().find(|(m, t, _)| m["job"] == job && t == ts);
        let (_, _, base) = base.unwrap_or_else(|| {
            let times = |r: &[(Value, i64, f64)]| {
                r.iter().filter(|(m, _, _)| m["job"] == job).map(|(_, t, v)| (*t, *v)).collect::<Vec<_>>()
            };
            panic!("no job:load:sum for {job} at {ts}: recorded {:?}, doubled {:?}", times(&recorded), times(&doubled))
        });
        assert_eq!(*value, 2.0 * base, "job {job} at {ts}");
    }

    // Job b's recorded series ended with a staleness marker: queried after
    // its last evaluation it is gone at once (not after 5 minutes).
    let b: Vec<i64> = recorded.iter().filter(|(m, _, _)| m["job"] == "b").map(|(_, t, _)| *t).collect();
    let last_b = *b.iter().max().expect("job b was recorded");
    assert!(last_b <= gone_at, "job b recorded after it went away");
    let after = query(&server, &ws, "job:load:sum", end).await;
    let jobs: Vec<&str> = after.iter().map(|s| s["metric"]["job"].as_str().unwrap()).collect();
    assert_eq!(jobs, ["a"], "job b's recorded series is stale");
}
