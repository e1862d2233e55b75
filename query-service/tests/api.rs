//! The Prometheus HTTP API over an in-memory reader: JSON shapes, parameter
//! handling, limits, timeouts, cancellation and error types.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::arn::ArnScheme;
use common::clock::ManualClock;
use common::control::{ControlPlaneStore, MemoryControlStore};
use common::limits::{Limits, Overrides, WorkspaceOverride};
use common::rules::{ActiveAlert, AlertingRuleState, RuleGroupState, RuleState};
use common::seams::{
    LogPosition, MetricMetadata, RuleStates, Sample, SampleReader, SampleValue, SeamError, Selected, SelectedSeries,
    Selection,
};
use query_service::api::{QueryApi, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const WS: &str = "ws-test";
/// Slow reader: `select` waits forever once armed.
#[derive(Debug, Default)]
struct Reader {
    series: Vec<SelectedSeries>,
    slow: bool,
    started: tokio::sync::Notify,
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl SampleReader for Reader {
    async fn select(&self, _ws: &str, selection: &Selection) -> Result<Selected, SeamError> {
        if self.slow {
            let _flag = DropFlag(self.dropped.clone());
            self.started.notify_one();
            std::future::pending::<()>().await;
        }
        let series = self
            .series
            .iter()
            .filter(|s| selection.matches(&s.labels))
            .map(|s| SelectedSeries {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .filter(|x| (selection.start_ms..=selection.end_ms).contains(&x.timestamp_ms))
                    .cloned()
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        Ok(Selected { series, stats: Default::default() })
    }

    async fn metadata(&self, _ws: &str) -> Result<Vec<MetricMetadata>, SeamError> {
        Ok(vec![
            MetricMetadata {
                metric: "http_requests_total".into(),
                metric_type: "counter".into(),
                help: "Requests.".into(),
                unit: "".into(),
            },
            MetricMetadata { metric: "up".into(), metric_type: "gauge".into(), help: "Up.".into(), unit: "".into() },
        ])
    }

    async fn wait_for_position(&self, _ws: &str, _p: &LogPosition, _t: Duration) -> Result<(), SeamError> {
        Ok(())
    }
}

fn series(labels: &[(&str, &str)], every_ms: i64, values: impl Fn(i64) -> f64) -> SelectedSeries {
    let mut l: Vec<(String, String)> = labels.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
    l.sort();
    SelectedSeries {
        labels: l.into(),
        samples: (0..=120)
            .map(|i| Sample { timestamp_ms: i * every_ms, value: SampleValue::Float(values(i)) })
            .collect(),
    }
}

fn data() -> Vec<SelectedSeries> {
    vec![
        series(&[("__name__", "up"), ("job", "api"), ("instance", "a:1")], 15_000, |_| 1.0),
        series(&[("__name__", "up"), ("job", "api"), ("instance", "b:1")], 15_000, |_| 0.0),
        series(&[("__name__", "up"), ("job", "node"), ("instance", "c:1")], 15_000, |_| 1.0),
        series(&[("__name__", "http_requests_total"), ("job", "api"), ("code", "200")], 15_000, |i| (i * 30) as f64),
        series(&[("__name__", "http_requests_total"), ("job", "api"), ("code", "500")], 15_000, |i| (i * 3) as f64),
    ]
}

struct Api {
    router: axum::Router,
    reader: Arc<Reader>,
}

async fn api_with(reader: Reader, limits: Limits) -> Api {
    api_full(reader, limits, None).await
}

async fn api_full(reader: Reader, limits: Limits, rules: Option<Arc<dyn RuleStates>>) -> Api {
    let store = Arc::new(MemoryControlStore::default());
    let arns = ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() };
    store
        .put(
            &arns.workspace(WS),
            json!({"workspaceId": WS, "arn": arns.workspace(WS), "status": "ACTIVE", "createdAt": 0.0, "tags": {}, "samplesTopic": "t"}),
        )
        .await
        .unwrap();
    let reader = Arc::new(reader);
    let mut api =
        QueryApi::new(reader.clone(), store, arns, Arc::new(Overrides::new(&limits)), ManualClock::new(1_800_000));
    if let Some(rules) = rules {
        api = api.with_rules(rules);
    }
    Api { router: router(Arc::new(api)), reader }
}

async fn api() -> Api {
    api_with(Reader { series: data(), ..Default::default() }, Limits::default()).await
}

impl Api {
    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body))))
    }

    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let uri = format!("/workspaces/{WS}/api/v1/{path_and_query}");
        self.call(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, form: &str) -> (StatusCode, Value) {
        let req = Request::post(format!("/workspaces/{WS}/api/v1/{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        self.call(req).await
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn instant_and_range_queries_answer_in_prometheus_json() {
    let api = api().await;
    let (status, body) = api.get(&format!("query?query={}&time=1800", enc("up{job=\"api\"}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","instance":"a:1","job":"api"},"value":[1800,"1"]},
            {"metric":{"__name__":"up","instance":"b:1","job":"api"},"value":[1800,"0"]}]}})
    );
    // The clock's now (1800 s) when `time` is absent; RFC 3339 too.
    assert_eq!(api.get("query?query=up").await.1["data"]["result"][0]["value"][0], 1800);
    assert_eq!(api.get("query?query=up&time=1970-01-01T00:10:00.5Z").await.1["data"]["result"][0]["value"][0], 600.5);
    // Scalars and strings.
    assert_eq!(api.get("query?query=1.5&time=10").await.1["data"], json!({"resultType":"scalar","result":[10,"1.5"]}));
    assert_eq!(
        api.get("query?query=%22hi%22&time=10").await.1["data"],
        json!({"resultType":"string","result":[10,"hi"]})
    );

    // Annotations: `infos` and `warnings` beside `data`, as Prometheus adds them.
    let (_, body) = api.get(&format!("query?query={}&time=1800", enc("rate(up[5m])"))).await;
    assert_eq!(
        body["infos"],
        json!(["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\""])
    );
    assert!(body.get("warnings").is_none(), "{body}");
    let (_, body) = api.get(&format!("query?query={}&time=1800", enc("quantile(2, up)"))).await;
    assert_eq!(body["warnings"], json!(["PromQL warning: quantile value should be between 0 and 1, got 2"]));
    assert_eq!(body["data"]["result"][0]["value"][1], "+Inf");

    // A POSTed range query, as Grafana sends it.
    let q = enc("sum by (job) (http_requests_total)");
    let (status, body) = api.post("query_range", &format!("query={q}&start=600&end=720&step=60")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"resultType":"matrix","result":[{"metric":{"job":"api"},"values":[[600,"1320"],[660,"1452"],[720,"1584"]]}]})
    );
    // `limit` cuts the series with a warning.
    let (_, body) = api.get("query?query=up&time=1800&limit=2").await;
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["warnings"], json!(["results truncated due to limit"]));
    // A step as a duration, fractional times.
    let (_, body) = api.get("query_range?query=up{instance=%22a:1%22}&start=600.5&end=780.5&step=1m30s").await;
    let values = &body["data"]["result"][0]["values"];
    assert_eq!(values, &json!([[600.5, "1"], [690.5, "1"], [780.5, "1"]]));
}

#[tokio::test]
async fn series_labels_values_and_metadata() {
    let api = api().await;
    let (status, body) = api.get(&format!("series?match[]={}&start=0&end=1800", enc("up{job=\"api\"}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([{"__name__":"up","instance":"a:1","job":"api"},{"__name__":"up","instance":"b:1","job":"api"}])
    );
    // Two selectors are a union; `limit` truncates with a warning.
    let (_, body) = api
        .post("series", &format!("match[]={}&match[]={}&limit=2", enc("up{job=\"node\"}"), enc("http_requests_total")))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["warnings"], json!(["results truncated due to limit"]));
    // Series outside the time range are not listed.
    let (_, body) = api.get("series?match[]=up&start=100000&end=200000").await;
    assert_eq!(body["data"], json!([]));

    assert_eq!(api.get("labels").await.1["data"], json!(["__name__", "code", "instance", "job"]));
    assert_eq!(api.get("labels?match[]=up").await.1["data"], json!(["__name__", "instance", "job"]));
    assert_eq!(api.get("label/__name__/values").await.1["data"], json!(["http_requests_total", "up"]));
    assert_eq!(api.get("label/job/values?match[]=up").await.1["data"], json!(["api", "node"]));
    assert_eq!(
        api.get("label/code/values?limit=1").await.1,
        json!({"status":"success","data":["200"],"warnings":["results truncated due to limit"]})
    );
    // U__ escaping of a label name in the path.
    assert_eq!(api.get("label/U__jo_62_/values").await.1["data"], json!(["api", "node"]));

    let (_, body) = api.get("metadata").await;
    assert_eq!(
        body["data"],
        json!({"http_requests_total":[{"type":"counter","help":"Requests.","unit":""}],"up":[{"type":"gauge","help":"Up.","unit":""}]})
    );
    assert_eq!(api.get("metadata?metric=up").await.1["data"], json!({"up":[{"type":"gauge","help":"Up.","unit":""}]}));
    assert_eq!(api.get("metadata?limit=1").await.1["data"].as_object().unwrap().len(), 1);

    assert_eq!(api.get("query_exemplars?query=up&start=0&end=100").await.1, json!({"status":"success","data":[]}));
    assert_eq!(api.get("status/buildinfo").await.1["data"]["version"], "3.5.3");
    let (_, body) = api.get(&format!("format_query?query={}", enc("sum(rate(x[5m]))by(job)"))).await;
    assert_eq!(body["data"], "sum by (job) (rate(x[5m]))");
    let (_, body) = api.get("parse_query?query=up").await;
    assert_eq!(body["data"]["type"], "vectorSelector");
    let (status, body) = api.get(&format!("explain?query={}&time=60&analyze=true", enc("sum(up)"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plan = body["data"]["plan"].as_str().unwrap();
    assert!(plan.contains("AggregateExec") && plan.contains("PromSeriesScan") && plan.contains("series=3"), "{plan}");
}

#[tokio::test]
async fn bad_requests_get_prometheus_errors_never_a_500() {
    let api = api().await;
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        (format!("query?query={}", enc("sum(")), StatusCode::BAD_REQUEST, "bad_data", "invalid parameter \"query\""),
        ("query?query=".into(), StatusCode::BAD_REQUEST, "bad_data", "invalid parameter \"query\""),
        (
            "query?query=up&time=yesterday".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
        ),
        ("query?query=up&timeout=soon".into(), StatusCode::BAD_REQUEST, "bad_data", "invalid parameter \"timeout\""),
        (
            "query?query=up&lookback_delta=x".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "error parsing lookback delta duration",
        ),
        (
            "query_range?query=up&start=10&end=20".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\": cannot parse \"\" to a valid duration",
        ),
        (
            "query_range?query=up&end=20&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "query_range?query=up&start=20&end=10&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "query_range?query=up&start=0&end=10&step=-1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted",
        ),
        // A subquery too large to evaluate, and explain with the checks of query_range.
        (
            format!("query?query={}", enc("max_over_time(vector(1)[1y:1ms])")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "query processing would load too many samples into memory",
        ),
        (
            format!("explain?query={}&start=0&end=9e15&step=0.001&analyze=true", enc("vector(1)")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution",
        ),
        (
            "query_range?query=up&start=0&end=100000&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        // The extreme times of an open range: no overflow, a clear error.
        (
            "query_range?query=up&start=-292273086-05-16T16:47:06Z&end=292277025-08-18T07:12:54.999999999Z&step=100y"
                .into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "query_range?query=up&start=0&end=3000000&step=3600".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "the query time range exceeds the limit (query length: 833h20m0s, limit: 768h0m0s)",
        ),
        (
            format!("query_range?query={}&start=0&end=10&step=1", enc("up[5m]")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid expression type \"range vector\" for range query",
        ),
        ("series".into(), StatusCode::BAD_REQUEST, "bad_data", "no match[] parameter provided"),
        (
            format!("series?match[]={}", enc("up + 1")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"match[]\"",
        ),
        (format!("series?match[]={}", enc("{job=~\".*\"}")), StatusCode::BAD_REQUEST, "bad_data", ""),
        (
            "series?match[]=up&limit=-1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"limit\": limit must be non-negative",
        ),
        ("labels?start=x".into(), StatusCode::BAD_REQUEST, "bad_data", "invalid parameter \"start\""),
        (
            "labels?start=10&end=5".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        ("metadata?limit=x".into(), StatusCode::BAD_REQUEST, "bad_data", "limit must be a number"),
        (format!("query_exemplars?query={}", enc("sum(")), StatusCode::BAD_REQUEST, "bad_data", ""),
        (
            format!("format_query?query={}", enc("1 +")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            format!("query?query={}&time=10", enc("label_replace(up, \"x\", \"$1\", \"job\", \"(\")")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "",
        ),
    ];
    // Extreme offsets, ranges and times within Prometheus's bounds evaluate
    // (to nothing) rather than overflow.
    for q in ["up offset 290y", "max_over_time(up[290y])", "up @ 9e15", "rate(up[1m:1s] offset -290y)"] {
        let (status, body) = api.get(&format!("query?query={}&time=-9e15", enc(q))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    // Beyond 2^63 ns a duration is out of range, as in Prometheus.
    for q in ["up offset 100000y", "max_over_time(up[100000y])", "rate(up[1m:1s] offset -100000y)"] {
        let (status, body) = api.get(&format!("query?query={}&time=10", enc(q))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{q}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("duration is out of range")), "{q}: {body}");
    }
    for (path, status, error_type, message) in cases {
        let (got, body) = api.get(&path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["status"], "error", "{path}");
        assert_eq!(body["errorType"], error_type, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(message), "{path}: {body}");
    }
    // A POST body that is not a form.
    let req = Request::post(format!("/workspaces/{WS}/api/v1/query"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(api.call(req).await.0, StatusCode::BAD_REQUEST);
    // An unknown workspace.
    let req = Request::get("/workspaces/ws-nope/api/v1/query?query=up").body(Body::empty()).unwrap();
    let (status, body) = api.call(req).await;
    assert_eq!((status, &body["errorType"]), (StatusCode::NOT_FOUND, &json!("not_found")));
}

#[tokio::test]
async fn query_limits_answer_422_with_cortex_texts() {
    let mut limits = Limits::default();
    let mut o = WorkspaceOverride::default();
    o.query.max_samples = Some(200);
    o.query.max_fetched_series = Some(4);
    limits.overrides.insert(WS.into(), o);
    let api = api_with(Reader { series: data(), ..Default::default() }, limits).await;
    // 3 series × 21 samples in [0, 300 s]: within the limits.
    let (status, body) = api.get("query?query=up&time=300").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 3 series × 121 samples: over 200.
    let (status, body) = api.get(&format!("query?query={}&time=1800", enc("max_over_time(up[1h])"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"})
    );
    // The series API counts against the series limit (not samples).
    let (status, body) = api.get("series?match[]=up").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.get("series?match[]=up&match[]=http_requests_total").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "the query hit the max number of series limit (limit: 4 series)");
    // Five series over two selectors: over 4.
    let (status, body) =
        api.get(&format!("query?query={}&time=60", enc("count(up) + count(http_requests_total)"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "the query hit the max number of series limit (limit: 4 series)");
}

#[tokio::test]
async fn a_query_times_out_with_503_and_its_plan_is_dropped() {
    let api = api_with(Reader { series: data(), slow: true, ..Default::default() }, Limits::default()).await;
    let (status, body) = api.get("query?query=up&time=60&timeout=200ms").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})
    );
    assert!(api.reader.dropped.load(Ordering::SeqCst), "the scan still runs after the timeout");
}

#[tokio::test]
async fn a_request_dropped_by_its_client_stops_its_plan() {
    let api = api_with(Reader { series: data(), slow: true, ..Default::default() }, Limits::default()).await;
    let req = Request::get(format!("/workspaces/{WS}/api/v1/query?query=up&time=60")).body(Body::empty()).unwrap();
    let router = api.router.clone();
    let task = tokio::spawn(async move { router.oneshot(req).await });
    tokio::time::timeout(Duration::from_secs(10), api.reader.started.notified()).await.expect("the scan started");
    assert!(!api.reader.dropped.load(Ordering::SeqCst));
    // What hyper does when the connection closes: the handler's future is dropped.
    task.abort();
    let _ = task.await;
    assert!(api.reader.dropped.load(Ordering::SeqCst), "the scan outlived its request");
}

/// A float series `m{k="f"}` (5) and a native histogram series `m{k="h"}`
/// (count 4, sum 8: 1 in (0.5, 1], 3 in (1, 2]), a sample every 15 s.
fn mixed_data() -> Vec<SelectedSeries> {
    use prost::Message as _;
    use schemas::stream::histogram::{Count, ZeroCount};
    let h = schemas::stream::Histogram {
        count: Some(Count::CountFloat(4.0)),
        sum: 8.0,
        schema: 0,
        zero_count: Some(ZeroCount::ZeroCountFloat(0.0)),
        positive_spans: vec![schemas::stream::BucketSpan { offset: 0, length: 2 }],
        positive_counts: vec![1.0, 3.0],
        ..Default::default()
    };
    let encoded = bytes::Bytes::from(h.encode_to_vec());
    let hist = SelectedSeries {
        labels: vec![("__name__".to_owned(), "m".to_owned()), ("k".to_owned(), "h".to_owned())].into(),
        samples: (0..=120)
            .map(|i| Sample { timestamp_ms: i * 15_000, value: SampleValue::Histogram(encoded.clone()) })
            .collect(),
    };
    vec![series(&[("__name__", "m"), ("k", "f")], 15_000, |_| 5.0), hist]
}

#[tokio::test]
async fn aggregations_over_native_histograms_answer_as_prometheus() {
    let api = api_with(Reader { series: mixed_data(), ..Default::default() }, Limits::default()).await;
    let query = |q: &str| format!("query?query={}&time=1800", enc(q));
    let values = |body: &Value| -> Vec<Value> {
        body["data"]["result"].as_array().unwrap().iter().map(|r| r["value"][1].clone()).collect()
    };
    // count and group take histograms, at the top and under other operators.
    for q in ["count(m)", "count(m) > 0", "sort(count(m))", "count(m) * 1"] {
        let (status, body) = api.get(&query(q)).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(values(&body), vec![json!("2")], "{q}: {body}");
    }
    // sum of floats and histograms: no result, Prometheus's warning.
    for q in ["sum(m)", "sum(m) + 0"] {
        let (_, body) = api.get(&query(q)).await;
        assert_eq!(values(&body), Vec::<Value>::new(), "{q}: {body}");
        assert_eq!(
            body["warnings"],
            json!(["PromQL warning: encountered a mix of histograms and floats for aggregation"]),
            "{q}: {body}"
        );
    }
    // max ignores the histogram with an info.
    let (_, body) = api.get(&query("max(m)")).await;
    assert_eq!(values(&body), vec![json!("5")], "{body}");
    assert_eq!(body["infos"], json!(["PromQL info: ignored histogram in max aggregation"]), "{body}");
    // sum of histograms is a histogram.
    let (_, body) = api.get(&query(r#"sum(m{k="h"}) "#)).await;
    let h = &body["data"]["result"][0]["histogram"][1];
    assert_eq!((h["count"].clone(), h["sum"].clone()), (json!("4"), json!("8")), "{body}");
    // histogram_stddev: buckets at their geometric means (√0.5, √2) around
    // the mean 2: (1·(√0.5 − 2)² + 3·(√2 − 2)²) / 4.
    let (_, body) = api.get(&query(r#"histogram_stdvar(m{k="h"})"#)).await;
    let expected = ((0.5f64.sqrt() - 2.0).powi(2) + 3.0 * (2f64.sqrt() - 2.0).powi(2)) / 4.0;
    let got: f64 = values(&body)[0].as_str().unwrap().parse().unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}: {body}");
    // Set operators keep histograms whole, beside floats; `topk` (floats
    // only) on a side still plans.
    let (_, body) = api.get(&query(r#"m{k="h"} or m{k="f"}"#)).await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{body}");
    assert!(result.iter().any(|r| r["histogram"][1]["count"] == json!("4")), "{body}");
    for (q, n) in
        [("topk(1, m) or vector(0)", 2), ("quantile(0.5, m) and on() m", 1), ("count(m unless m{k=\"f\"})", 1)]
    {
        let (status, body) = api.get(&query(q)).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(n), "{q}: {body}");
    }
}

#[tokio::test]
async fn label_functions_pass_native_histograms_through_with_their_new_labels() {
    let api = &api_with(Reader { series: mixed_data(), ..Default::default() }, Limits::default()).await;
    for (q, label, value) in [
        (r#"label_replace(m{k="h"}, "dst", "x-$1", "k", "(.*)")"#, "dst", "x-h"),
        (r#"label_join(m, "dst", "+", "k", "k")"#, "dst", "h+h"),
        (r#"sort_by_label_desc(m, "k")"#, "k", "h"),
        (r#"histogram_count(label_replace(m, "k", "new", "k", "h"))"#, "k", "new"),
    ] {
        let (status, body) = api.get(&format!("query?query={}&time=1800", enc(q))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let result = body["data"]["result"].as_array().unwrap();
        let hist = result.iter().find(|r| r["metric"][label] == value).unwrap_or_else(|| panic!("{q}: {body}"));
        if q.starts_with("histogram_count") {
            assert_eq!(hist["value"][1], "4", "{q}: {body}");
        } else {
            assert_eq!(hist["histogram"][1]["count"], "4", "{q}: {body}");
            assert_eq!(hist["metric"]["__name__"], "m", "{q}: {body}");
        }
    }
    // A float and a histogram given one label set are an error, also
    // under an aggregation.
    for q in [r#"label_replace(m, "k", "same", "k", ".*")"#, r#"count(label_replace(m, "k", "same", "k", ".*"))"#] {
        let (status, body) = api.get(&format!("query?query={}&time=1800", enc(q))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert_eq!(body["error"], "vector cannot contain metrics with the same labelset", "{body}");
    }
}

#[tokio::test]
async fn binary_operators_over_native_histograms_answer_as_prometheus() {
    let api = &api_with(Reader { series: mixed_data(), ..Default::default() }, Limits::default()).await;
    let get = |q: &str| {
        let url = format!("query?query={}&time=1800", enc(q));
        async move { api.get(&url).await.1 }
    };
    let hist = |body: &Value| {
        (
            body["data"]["result"][0]["histogram"][1]["count"].clone(),
            body["data"]["result"][0]["histogram"][1]["sum"].clone(),
        )
    };
    // Scaled by a float, on either side, added, negated: histograms.
    for (q, count, sum) in [
        (r#"m{k="h"} * 2"#, "8", "16"),
        (r#"0.5 * m{k="h"}"#, "2", "4"),
        (r#"m{k="h"} / on() group_left m{k="f"}"#, "0.8", "1.6"),
        (r#"m{k="h"} + m{k="h"}"#, "8", "16"),
        (r#"-m{k="h"}"#, "-4", "-8"),
        (r#"sum(m{k="h"} * 3)"#, "12", "24"),
    ] {
        let body = get(q).await;
        assert_eq!(hist(&body), (json!(count), json!(sum)), "{q}: {body}");
        assert_eq!(body["data"]["result"][0]["metric"].get("__name__"), None, "{q}: {body}");
    }
    // Histograms compare whole with == and !=; `bool` gives floats.
    let body = get("m == bool m").await;
    let values: Vec<Value> = body["data"]["result"].as_array().unwrap().iter().map(|r| r["value"][1].clone()).collect();
    assert_eq!(values, vec![json!("1"), json!("1")], "{body}");
    let body = get(r#"m{k="h"} == m{k="h"}"#).await;
    assert_eq!(hist(&body), (json!("4"), json!("8")), "{body}");
    assert_eq!(body["data"]["result"][0]["metric"]["__name__"], json!("m"), "a filter keeps the name: {body}");
    // Other mixes give nothing, with Prometheus's info; floats still work.
    for (q, info) in [
        (r#"m{k="h"} + ignoring(k) m{k="f"}"#, r#""+": histogram + float"#),
        (r#"m > 1"#, r#"">": histogram > float"#),
        (r#"1 / m{k="h"}"#, r#""/": float / histogram"#),
    ] {
        let body = get(q).await;
        let result = body["data"]["result"].as_array().unwrap();
        assert!(result.iter().all(|r| r.get("histogram").is_none()), "{q}: {body}");
        assert_eq!(
            body["infos"],
            json!([format!("PromQL info: incompatible sample types encountered for binary operator {info}")]),
            "{q}: {body}"
        );
    }
    assert_eq!(get("m > 1").await["data"]["result"][0]["value"][1], json!("5"));
}

#[tokio::test]
async fn a_function_over_a_union_reads_every_side() {
    // A union has a partition per side; PromQL's nodes read them all.
    let api = api().await;
    for q in [
        r#"sort(up{job="node"} or up{job="api"})"#,
        r#"up{job="node"} * 1 + ignoring(job) group_left() (up{job="api"} or up{job="node"})"#,
    ] {
        let (status, body) = api.get(&format!("query?query={}&time=60", enc(q))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(
            body["data"]["result"].as_array().map(Vec::len),
            Some(if q.starts_with("sort") { 3 } else { 1 }),
            "{q}: {body}"
        );
    }
}

#[tokio::test]
async fn info_adds_the_labels_of_the_targets_info_series_and_fails_as_prometheus_does() {
    let target = |instance: &'static str, version: &'static str| {
        series(
            &[("__name__", "target_info"), ("job", "node"), ("instance", instance), ("version", version)],
            15_000,
            |_| 1.0,
        )
    };
    let reader = Reader {
        series: vec![
            series(&[("__name__", "up"), ("job", "node"), ("instance", "a")], 15_000, |_| 1.0),
            series(&[("__name__", "up"), ("job", "node"), ("instance", "b")], 15_000, |_| 0.0),
            series(&[("__name__", "up"), ("job", "node"), ("instance", "c")], 15_000, |_| 1.0),
            target("a", "1.0"),
            target("b", "2.0"),
            series(&[("__name__", "a_info"), ("job", "node"), ("instance", "a"), ("x", "1")], 15_000, |_| 1.0),
            series(&[("__name__", "b_info"), ("job", "node"), ("instance", "a"), ("x", "2")], 15_000, |_| 1.0),
        ],
        ..Default::default()
    };
    let api = api_with(reader, Limits::default()).await;
    let versions = |body: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let m = &s["metric"];
                (m["instance"].as_str().unwrap().to_owned(), m["version"].as_str().unwrap_or("-").to_owned())
            })
            .collect();
        v.sort();
        v
    };
    // Every target_info data label; the series without one kept as it is.
    let (status, body) = api.get(&format!("query?query={}&time=600", enc("info(up)"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    };
    assert_eq!(versions(&body), pairs(&[("a", "1.0"), ("b", "2.0"), ("c", "-")]), "{body}");
    assert_eq!(body["data"]["result"][0]["metric"]["__name__"], "up", "{body}");
    // A data matcher that rejects "" drops the series without a match; one
    // that accepts it keeps them; label filters apply to the info series.
    for (q, expected) in [
        (r#"info(up, {version=~".+"})"#, pairs(&[("a", "1.0"), ("b", "2.0")])),
        (r#"info(up, {version=~"2.*"})"#, pairs(&[("b", "2.0")])),
        (r#"info(up, {version=~"2.*|"})"#, pairs(&[("a", "-"), ("b", "2.0"), ("c", "-")])),
        (r#"info(up == 0, {version!=""})"#, pairs(&[("b", "2.0")])),
    ] {
        let (status, body) = api.get(&format!("query?query={}&time=600", enc(q))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(versions(&body), expected, "{q}: {body}");
    }
    let (_, body) =
        api.get(&format!("query?query={}&time=600", enc(r#"info(up{instance="a"}, {__name__="a_info"})"#))).await;
    assert_eq!(body["data"]["result"][0]["metric"]["x"], "1", "{body}");
    assert_eq!(body["data"]["result"][0]["metric"]["version"], Value::Null, "{body}");
    // Two info metrics giving a label different values; a metric name
    // where label matchers belong.
    for (q, status, error_type, error) in [
        (r#"info(up, {__name__=~".+_info"})"#, StatusCode::UNPROCESSABLE_ENTITY, "execution", "conflicting label: x"),
        (
            "info(up, target_info)",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "expected label selectors only, got vector selector instead",
        ),
    ] {
        let (got, body) = api.get(&format!("query?query={}&time=600", enc(q))).await;
        assert_eq!((got, &body["errorType"]), (status, &json!(error_type)), "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains(error), "{q}: {body}");
    }
}

#[tokio::test]
async fn a_string_literal_that_is_not_utf8_fails_where_a_label_name_is_needed() {
    let api = api().await;
    // Go keeps the bytes: count_values fails on them as a label name, a
    // string result prints them as JSON does (U+FFFD).
    let (status, body) = api.get(&format!("query?query={}&time=60", enc(r#"count_values("a\xc5z", up)"#))).await;
    assert_eq!((status, &body["errorType"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("execution")), "{body}");
    assert_eq!(body["error"], r#"invalid label name "a\xc5z""#, "{body}");
    let (status, body) = api.get(&format!("query?query={}&time=60", enc(r#""a\xc5z""#))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["result"][1], "a\u{fffd}z", "{body}");
    let (status, body) =
        api.get(&format!("query?query={}&time=60", enc(r#"label_replace(up, "\xff", "", "job", "(.*)")"#))).await;
    assert_eq!((status, &body["errorType"]), (StatusCode::BAD_REQUEST, &json!("bad_data")), "{body}");
}

#[tokio::test]
async fn min_and_max_skip_every_nan_whatever_its_bits() {
    // Go's math.NaN() (as remote write carries it) and a negative NaN
    // (x86's 0/0) beside 1 and 2; an all-NaN group gives NaN.
    let go_nan = f64::from_bits(0x7ff8_0000_0000_0001);
    let neg_nan = f64::from_bits(0xfff8_0000_0000_0000);
    let reader = Reader {
        series: vec![
            series(&[("__name__", "v"), ("k", "a")], 15_000, move |_| go_nan),
            series(&[("__name__", "v"), ("k", "b")], 15_000, |_| 1.0),
            series(&[("__name__", "v"), ("k", "c")], 15_000, |_| 2.0),
            series(&[("__name__", "v"), ("k", "d")], 15_000, move |_| neg_nan),
            series(&[("__name__", "w")], 15_000, move |_| neg_nan),
        ],
        ..Default::default()
    };
    let api = api_with(reader, Limits::default()).await;
    for (q, expected) in [("max(v)", "2"), ("min(v)", "1"), ("max(v) + 0", "2"), ("min(w)", "NaN"), ("max(w)", "NaN")] {
        let (status, body) = api.get(&format!("query?query={}&time=1800", enc(q))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["data"]["result"][0]["value"][1], json!(expected), "{q}: {body}");
    }
}

/// Two namespaces' groups: a recording and an alerting rule (one firing
/// alert, one kept firing), and a group with one recording rule.
#[derive(Debug)]
struct Rules;

impl RuleStates for Rules {
    fn rule_groups(&self, workspace_id: &str) -> Vec<RuleGroupState> {
        assert_eq!(workspace_id, WS);
        let map = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let recording = |name: &str, labels| RuleState {
            name: name.into(),
            query: "sum(up)".into(),
            labels,
            health: "ok",
            last_error: None,
            evaluation_seconds: 0.25,
            last_evaluation_ms: Some(1_000_500),
            alerting: None,
        };
        let alert = |instance: &str, keep: Option<i64>| ActiveAlert {
            labels: map(&[("alertname", "Down"), ("instance", instance)]),
            annotations: map(&[("summary", "down")]),
            state: "firing",
            active_at_ms: 1_000_000,
            keep_firing_since_ms: keep,
            value: 0.5,
        };
        let alerting = RuleState {
            name: "Down".into(),
            query: "up == 0".into(),
            labels: map(&[("severity", "page")]),
            health: "err",
            last_error: Some("boom".into()),
            evaluation_seconds: 0.5,
            last_evaluation_ms: None,
            alerting: Some(AlertingRuleState {
                state: "firing",
                for_seconds: 300.0,
                keep_firing_for_seconds: 0.0,
                annotations: map(&[("summary", "{{ $labels.instance }} down")]),
                alerts: vec![alert("a", None), alert("b", Some(1_002_000))],
            }),
        };
        let group = |file: &str, name: &str, rules| RuleGroupState {
            name: name.into(),
            file: file.into(),
            interval_seconds: 60.0,
            limit: 0,
            evaluation_seconds: 1.5,
            last_evaluation_ms: Some(1_000_000),
            rules,
        };
        vec![
            group("ns1", "g1", vec![recording("r:sum", map(&[])), alerting]),
            group("ns2", "g2", vec![recording("r:other", map(&[("team", "x")]))]),
        ]
    }
}

#[tokio::test]
async fn rules_and_alerts_answer_in_prometheus_json_with_its_filters() {
    let api = api_full(Reader::default(), Limits::default(), Some(Arc::new(Rules))).await;
    let (status, body) = api.get("rules").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let groups = &body["data"]["groups"];
    assert_eq!(
        groups[0],
        json!({
            "name": "g1", "file": "ns1", "interval": 60, "limit": 0, "evaluationTime": 1.5,
            "lastEvaluation": "1970-01-01T00:16:40Z",
            "rules": [
                {"name": "r:sum", "query": "sum(up)", "health": "ok", "evaluationTime": 0.25,
                 "lastEvaluation": "1970-01-01T00:16:40.5Z", "type": "recording"},
                {"state": "firing", "name": "Down", "query": "up == 0", "duration": 300, "keepFiringFor": 0,
                 "labels": {"severity": "page"}, "annotations": {"summary": "{{ $labels.instance }} down"},
                 "alerts": [
                    {"labels": {"alertname": "Down", "instance": "a"}, "annotations": {"summary": "down"},
                     "state": "firing", "activeAt": "1970-01-01T00:16:40Z", "value": "5e-01"},
                    {"labels": {"alertname": "Down", "instance": "b"}, "annotations": {"summary": "down"},
                     "state": "firing", "activeAt": "1970-01-01T00:16:40Z",
                     "keepFiringSince": "1970-01-01T00:16:42Z", "value": "5e-01"}
                 ],
                 "health": "err", "lastError": "boom", "evaluationTime": 0.5,
                 "lastEvaluation": "0001-01-01T00:00:00Z", "type": "alerting"}
            ]
        })
    );
    assert_eq!(groups[1]["rules"][0]["labels"], json!({"team": "x"}));

    let names = |body: &Value| -> Vec<String> {
        body["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()))
            .collect()
    };
    for (query, want) in [
        ("type=alert", vec!["Down"]),
        ("type=RECORD", vec!["r:sum", "r:other"]),
        ("rule_name[]=r:other&rule_name[]=Down", vec!["Down", "r:other"]),
        ("rule_group[]=g2", vec!["r:other"]),
        ("file[]=ns1&type=record", vec!["r:sum"]),
        ("match[]=%7Bseverity%3D%22page%22%7D", vec!["Down"]),
        ("match[]=%7Bteam%3D~%22x%7Cy%22%7D&match[]=%7Bseverity%3D%22page%22%7D", vec!["Down", "r:other"]),
        ("rule_name[]=nothing", vec![]),
    ] {
        let (status, body) = api.get(&format!("rules?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(names(&body), want, "{query}");
    }
    let (_, body) = api.get("rules?exclude_alerts=true&type=alert").await;
    assert_eq!(body["data"]["groups"][0]["rules"][0]["alerts"], Value::Null);

    // Pages of one group, the token leading to the next.
    let (_, page1) = api.get("rules?group_limit=1").await;
    assert_eq!(page1["data"]["groups"].as_array().unwrap().len(), 1);
    let token = page1["data"]["groupNextToken"].as_str().unwrap().to_owned();
    let (_, page2) = api.get(&format!("rules?group_limit=1&group_next_token={token}")).await;
    assert_eq!(page2["data"]["groups"][0]["name"], "g2");
    assert!(page2["data"].get("groupNextToken").is_none(), "{page2}");

    for (query, error) in [
        ("type=both", r#"invalid parameter "type": not supported value "both""#),
        ("exclude_alerts=maybe", r#"invalid parameter "exclude_alerts": error converting exclude_alerts"#),
        ("group_next_token=abc", r#"invalid parameter "group_next_token": group_limit needs to be present"#),
        ("group_limit=0", "group_limit needs to be greater than 0"),
        ("group_limit=1&group_next_token=abc", "invalid group_next_token 'abc'. were rule groups changed?"),
        ("match[]=%7B%7D", "must contain at least one non-empty matcher"),
    ] {
        let (status, body) = api.get(&format!("rules?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{query}");
        assert!(body["error"].as_str().unwrap().contains(error), "{query}: {body}");
    }

    let (status, body) = api.get("alerts").await;
    assert_eq!(status, StatusCode::OK);
    let alerts = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1]["labels"]["instance"], "b");
    assert_eq!(alerts[1]["keepFiringSince"], "1970-01-01T00:16:42Z");

    // A process without a ruler answers empty lists, with a warning.
    let (status, body) = api_with(Reader::default(), Limits::default()).await.get("rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["groups"], json!([]));
    assert!(body["warnings"][0].as_str().unwrap().contains("does not evaluate rules"), "{body}");
}
