//! Remote write through the gateway's router into a real embedded log: every
//! bad input gets its status and text and leaves the log unchanged; the
//! valid part of a partly invalid request is written.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::arn::ArnScheme;
use common::clock::{Clock, SystemClock};
use common::control::{ControlPlaneStore, MemoryControlStore};
use common::limits::{Limits, Overrides, WorkspaceOverride};
use common::log::{CleanupPolicy, Log, TopicSpec};
use common::workspace::{WorkspaceRecord, WorkspaceStatusCode};
use http_body_util::BodyExt;
use ingest_gateway::Gateway;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prost::Message;
use schemas::stream::WriteBatch;
use schemas::{prompb, writev2};
use tower::ServiceExt;

const WS: &str = "ws-00000000-0000-4000-8000-000000000001";
const LIMITED_WS: &str = "ws-00000000-0000-4000-8000-000000000002";
const PARTITIONS: u32 = 3;

struct Harness {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    router: axum::Router,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedLogConfig::default()).unwrap();
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "000000000000".into() };
        let control = Arc::new(MemoryControlStore::default());
        for ws in [WS, LIMITED_WS] {
            let record = WorkspaceRecord {
                workspace_id: ws.into(),
                arn: arns.workspace(ws),
                alias: None,
                status: WorkspaceStatusCode::Active,
                created_at: 0.0,
                tags: Default::default(),
                client_token: None,
                samples_topic: schemas::topics::samples_topic(ws),
                delete_client_token: None,
                configuration: Default::default(),
            };
            log.ensure_topic(
                &record.samples_topic,
                TopicSpec { partitions: PARTITIONS, cleanup: CleanupPolicy::Compact },
            )
            .await
            .unwrap();
            control.put(&record.arn, serde_json::to_value(&record).unwrap()).await.unwrap();
        }
        let mut limits = Limits::default();
        limits.ingest.max_request_body_bytes = 64 * 1024;
        limits.ingest.max_decompressed_bytes = 256 * 1024;
        let mut o = WorkspaceOverride::default();
        o.ingest.ingestion_rate = Some(1.0);
        o.ingest.ingestion_burst_size = Some(3);
        limits.overrides.insert(LIMITED_WS.into(), o);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let gateway = Gateway::new(
            log.clone(),
            control,
            Arc::new(Overrides::new(&limits)),
            arns,
            clock,
            &mut prometheus_client::registry::Registry::default(),
        );
        Self { _dir: dir, log, router: ingest_gateway::router(Arc::new(gateway)) }
    }

    /// Every record of the workspace's topic, all partitions.
    async fn records(&self, ws: &str) -> Vec<WriteBatch> {
        let topic = schemas::topics::samples_topic(ws);
        let mut out = Vec::new();
        for p in 0..PARTITIONS {
            let f = self.log.fetch(&topic, p, 0, usize::MAX, Duration::ZERO).await.unwrap();
            for r in f.records {
                out.push(WriteBatch::decode(r.value.unwrap().as_ref()).unwrap());
            }
        }
        out
    }

    async fn send(
        &self,
        ws: &str,
        content_type: Option<&str>,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::post(format!("/workspaces/{ws}/api/v1/remote_write"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let resp = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (status, headers, text)
    }

    /// Sends, and asserts the status, the text, and that the log did not change.
    async fn rejects(
        &self,
        ws: &str,
        ct: Option<&str>,
        enc: Option<&str>,
        body: Vec<u8>,
        status: StatusCode,
        text: &str,
    ) {
        let before = self.records(WS).await.len() + self.records(LIMITED_WS).await.len();
        let (got, _, body_text) = self.send(ws, ct, enc, body).await;
        assert_eq!(got, status, "{text}: {body_text}");
        assert!(body_text.contains(text), "expected {text:?} in {body_text:?}");
        let after = self.records(WS).await.len() + self.records(LIMITED_WS).await.len();
        assert_eq!(before, after, "the log changed on a rejected request ({text})");
    }
}

const V1: &str = "application/x-protobuf";
const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn v1_series(labels: &[(&str, &str)], ts: i64) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: labels.iter().map(|(n, v)| prompb::Label { name: (*n).into(), value: (*v).into() }).collect(),
        samples: vec![prompb::Sample { value: 1.5, timestamp: ts }],
        ..Default::default()
    }
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn v1_body(series: Vec<prompb::TimeSeries>) -> Vec<u8> {
    snappy(&prompb::WriteRequest { timeseries: series, metadata: vec![] }.encode_to_vec())
}

#[tokio::test]
async fn valid_v1_and_v2_writes_are_stored_and_acknowledged() {
    let h = Harness::new().await;
    let t = now_ms();
    let (status, headers, _) =
        h.send(WS, Some(V1), Some("snappy"), v1_body(vec![v1_series(&[("__name__", "up"), ("job", "a")], t)])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers.get("X-Prometheus-Remote-Write-Samples-Written").is_none());

    let v2 = writev2::Request {
        symbols: vec!["".into(), "__name__".into(), "down".into(), "job".into(), "b".into()],
        timeseries: vec![writev2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                writev2::Sample { value: 2.0, timestamp: t, start_timestamp: 0 },
                writev2::Sample { value: 3.0, timestamp: t + 1, start_timestamp: 0 },
            ],
            histograms: vec![writev2::Histogram {
                count: Some(writev2::histogram::Count::CountInt(3)),
                sum: 4.5,
                schema: 0,
                positive_spans: vec![writev2::BucketSpan { offset: 0, length: 2 }],
                positive_deltas: vec![1, 1],
                timestamp: t + 2,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, headers, _) = h.send(WS, Some(V2), Some("snappy"), snappy(&v2.encode_to_vec())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["X-Prometheus-Remote-Write-Samples-Written"], "2");
    assert_eq!(headers["X-Prometheus-Remote-Write-Histograms-Written"], "1");
    assert_eq!(headers["X-Prometheus-Remote-Write-Exemplars-Written"], "0");

    let records = h.records(WS).await;
    let series: Vec<_> = records.iter().flat_map(|r| r.series.iter()).collect();
    assert_eq!(series.len(), 2);
    let down = series.iter().find(|s| s.labels[0].value == "down").unwrap();
    assert_eq!(down.samples.len(), 2);
    assert_eq!(down.histograms[0].positive_deltas, vec![1, 1]);
    assert_eq!(down.series_id, schemas::labels::series_id([("__name__", "down"), ("job", "b")]));
    assert!(records.iter().all(|r| r.workspace_id == WS));
}

#[tokio::test]
async fn bad_inputs_get_their_status_and_change_nothing() {
    let h = Harness::new().await;
    let t = now_ms();
    let good = || v1_body(vec![v1_series(&[("__name__", "up")], t)]);
    h.rejects("ws-00000000-0000-4000-8000-00000000ffff", Some(V1), None, good(), StatusCode::NOT_FOUND, "not found")
        .await;
    h.rejects("ws-not-a-workspace", Some(V1), None, good(), StatusCode::NOT_FOUND, "not found").await;
    h.rejects(WS, Some("application/json"), None, good(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type").await;
    h.rejects(
        WS,
        Some("application/x-protobuf;proto=foo.Bar"),
        None,
        good(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "foo.Bar",
    )
    .await;
    h.rejects(WS, Some(V1), Some("gzip"), good(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Encoding").await;
    h.rejects(WS, Some(V1), None, vec![0u8; 64 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE, "max_request_body_bytes")
        .await;
    h.rejects(
        WS,
        Some(V1),
        None,
        snappy(&vec![0u8; 256 * 1024 + 1]),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_decompressed_bytes",
    )
    .await;
    h.rejects(WS, Some(V1), None, b"definitely not snappy".to_vec(), StatusCode::BAD_REQUEST, "snappy").await;
    h.rejects(
        WS,
        Some(V1),
        None,
        snappy(b"\xff\xff\xff\xff not protobuf"),
        StatusCode::BAD_REQUEST,
        "remote write 1.0",
    )
    .await;
    let bad_ref = writev2::Request {
        symbols: vec!["".into(), "__name__".into()],
        timeseries: vec![writev2::TimeSeries { labels_refs: vec![1, 7], ..Default::default() }],
    };
    h.rejects(WS, Some(V2), None, snappy(&bad_ref.encode_to_vec()), StatusCode::BAD_REQUEST, "symbol reference 7")
        .await;
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&[("job", "x")], t)]),
        StatusCode::BAD_REQUEST,
        "without metric name",
    )
    .await;
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&[("__name__", "up"), ("b", "1"), ("a", "1")], t)]),
        StatusCode::BAD_REQUEST,
        "not sorted",
    )
    .await;
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&[("__name__", "up"), ("a", "1"), ("a", "2")], t)]),
        StatusCode::BAD_REQUEST,
        "duplicate label name",
    )
    .await;
    let long = "x".repeat(2049);
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&[("__name__", "up"), ("a", &long)], t)]),
        StatusCode::BAD_REQUEST,
        "label value length exceeds",
    )
    .await;
    let many: Vec<(String, String)> = (0..70).map(|i| (format!("l{i:02}"), "v".to_string())).collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "up")];
    labels.extend(many.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&labels, t)]),
        StatusCode::BAD_REQUEST,
        "(actual: 71, limit: 70)",
    )
    .await;
    h.rejects(
        WS,
        Some(V1),
        None,
        v1_body(vec![v1_series(&[("__name__", "up")], t + 3_600_000)]),
        StatusCode::BAD_REQUEST,
        "too far in the future",
    )
    .await;
    // Nothing at all reached the log.
    assert!(h.records(WS).await.is_empty());
}

#[tokio::test]
async fn the_valid_part_of_a_partly_invalid_request_is_written() {
    let h = Harness::new().await;
    let t = now_ms();
    let body = v1_body(vec![v1_series(&[("job", "nameless")], t), v1_series(&[("__name__", "kept")], t)]);
    let (status, _, text) = h.send(WS, Some(V1), None, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("without metric name"), "{text}");
    let records = h.records(WS).await;
    let names: Vec<_> = records.iter().flat_map(|r| &r.series).map(|s| s.labels[0].value.clone()).collect();
    assert_eq!(names, vec!["kept".to_string()]);

    // RW 2.0 tells the sender how much was kept.
    let v2 = writev2::Request {
        symbols: vec!["".into(), "__name__".into(), "ok".into(), "job".into()],
        timeseries: vec![
            writev2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![writev2::Sample { value: 1.0, timestamp: t, start_timestamp: 0 }],
                ..Default::default()
            },
            writev2::TimeSeries {
                labels_refs: vec![3, 2],
                samples: vec![writev2::Sample { value: 1.0, timestamp: t, start_timestamp: 0 }],
                ..Default::default()
            },
        ],
    };
    let (status, headers, _) = h.send(WS, Some(V2), None, snappy(&v2.encode_to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["X-Prometheus-Remote-Write-Samples-Written"], "1");
}

#[tokio::test]
async fn the_ingestion_rate_limit_answers_429_with_retry_after() {
    let h = Harness::new().await;
    let t = now_ms();
    let three = v1_body((0..3).map(|i| v1_series(&[("__name__", "m"), ("i", &i.to_string())], t)).collect());
    let (status, _, _) = h.send(LIMITED_WS, Some(V1), None, three.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = h.records(LIMITED_WS).await.len();
    let (status, headers, text) = h.send(LIMITED_WS, Some(V1), None, three).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(text.contains("ingestion rate limit") && text.contains("limits.ingest.ingestion_rate"), "{text}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    assert_eq!(h.records(LIMITED_WS).await.len(), before);
    // Another workspace is not affected.
    let (status, _, _) = h.send(WS, Some(V1), None, v1_body(vec![v1_series(&[("__name__", "up")], t)])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
