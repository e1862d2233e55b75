//! Prometheus's JSON envelope, value formatting and error types, and their
//! one mapping to HTTP statuses.

use std::fmt::Write as _;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::engine::histogram::FloatHistogram;
use crate::engine::{QueryError, QueryValue, Series};

/// Prometheus's `errorType`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `bad_data`: the request is invalid (400).
    BadData,
    /// `execution`: evaluation failed or hit a limit (422).
    Execution,
    /// `timeout`: the query ran out of time (503).
    Timeout,
    /// `canceled` (499).
    Canceled,
    /// `internal`: our fault (500).
    Internal,
    /// `unavailable`: storage cannot answer now (503).
    Unavailable,
    /// `not_found`: no such workspace (404).
    NotFound,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
        }
    }

    /// The HTTP status of an error type: the one mapping of the query API.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// A failed API call: Prometheus's error JSON.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The error type.
    pub kind: ErrorType,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self { kind: ErrorType::BadData, message: message.into() }
    }

    /// Prometheus's `invalid parameter "name": …`.
    pub fn invalid_param(name: &str, error: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {error}"))
    }

    /// A storage failure behind the seam.
    pub fn storage(e: &common::seams::SeamError) -> Self {
        use common::ErrorKind;
        let kind = match e.kind {
            ErrorKind::BadData => ErrorType::BadData,
            ErrorKind::NotFound => ErrorType::NotFound,
            ErrorKind::LimitExceeded => ErrorType::Execution,
            ErrorKind::Timeout => ErrorType::Timeout,
            ErrorKind::Canceled => ErrorType::Canceled,
            ErrorKind::Unavailable | ErrorKind::RateLimited => ErrorType::Unavailable,
            _ => ErrorType::Internal,
        };
        Self { kind, message: e.message.clone() }
    }

    /// An engine error of a query: planning errors are about the `query`
    /// parameter (`bad_data`); evaluation errors keep their type.
    pub fn query(e: QueryError) -> Self {
        match e {
            QueryError::Parse(m) | QueryError::BadData(m) => Self::invalid_param("query", m),
            QueryError::Execution(m) | QueryError::Limit(m) => Self { kind: ErrorType::Execution, message: m },
            e @ QueryError::Unsupported(_) => Self { kind: ErrorType::Execution, message: e.to_string() },
            QueryError::Timeout(m) => Self { kind: ErrorType::Timeout, message: m },
            QueryError::Internal(m) => Self { kind: ErrorType::Internal, message: m },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status.is_server_error() && self.kind != ErrorType::Timeout {
            tracing::error!(error = %self.message, "Query API call failed.");
        }
        let body = serde_json::json!({ "status": "error", "errorType": self.kind.name(), "error": self.message });
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

/// A successful answer: `data` is JSON text already; warnings and infos
/// are left out when empty, as Prometheus does.
pub fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut body = String::with_capacity(data.len() + 64);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(data);
    for (name, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            let _ = write!(body, r#","{name}":{}"#, serde_json::Value::from(list.to_vec()));
        }
    }
    body.push('}');
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A query's answer with its annotations as `warnings` and `infos`.
pub fn annotated(data: &str, notes: &crate::engine::Annotations) -> Response {
    let warnings: Vec<String> = notes.warnings.iter().cloned().collect();
    let infos: Vec<String> = notes.infos.iter().cloned().collect();
    success(data, &warnings, &infos)
}

/// A timestamp as Prometheus writes it: Unix seconds with the milliseconds
/// as a three-digit fraction when not zero (`1435781451.781`, `1.500`).
pub fn format_timestamp(ms: i64, out: &mut String) {
    let (sign, abs) = if ms < 0 { ("-", ms.unsigned_abs()) } else { ("", ms.unsigned_abs()) };
    let _ = write!(out, "{sign}{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A float as Prometheus writes it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    crate::engine::vector_fns::go_format(v)
}

fn labels_object(labels: &[(String, String)], out: &mut String) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(name, out);
        out.push(':');
        push_json_string(value, out);
    }
    out.push('}');
}

/// Appends `s` as a JSON string.
pub fn push_json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn point(t: i64, v: f64, out: &mut String) {
    out.push('[');
    format_timestamp(t, out);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

/// A native histogram as Prometheus writes it: `{"count","sum","buckets"}`,
/// each bucket `[boundaries, lower, upper, count]` (empty ones left out).
fn histogram_object(h: &FloatHistogram, out: &mut String) {
    out.push_str(r#"{"count":""#);
    out.push_str(&format_value(h.count));
    out.push_str(r#"","sum":""#);
    out.push_str(&format_value(h.sum));
    out.push('"');
    let buckets = h.buckets();
    if !buckets.is_empty() {
        out.push_str(r#","buckets":["#);
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"[{},"{}","{}","{}"]"#,
                b.boundaries,
                format_value(b.lower),
                format_value(b.upper),
                format_value(b.count)
            ));
        }
        out.push(']');
    }
    out.push('}');
}

fn histogram_point(t: i64, h: &FloatHistogram, out: &mut String) {
    out.push('[');
    format_timestamp(t, out);
    out.push(',');
    histogram_object(h, out);
    out.push(']');
}

fn series_list(series: &[Series], instant: bool, out: &mut String) {
    out.push('[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        labels_object(&s.labels, out);
        if instant {
            if let Some((t, h)) = s.histograms.first().filter(|_| s.points.is_empty()) {
                out.push_str(r#","histogram":"#);
                histogram_point(*t, h, out);
            } else {
                out.push_str(r#","value":"#);
                let (t, v) = s.points.first().copied().unwrap_or((0, f64::NAN));
                point(t, v, out);
            }
        } else {
            if !s.points.is_empty() || s.histograms.is_empty() {
                out.push_str(r#","values":["#);
                for (j, (t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(*t, *v, out);
                }
                out.push(']');
            }
            if !s.histograms.is_empty() {
                out.push_str(r#","histograms":["#);
                for (j, (t, h)) in s.histograms.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    histogram_point(*t, h, out);
                }
                out.push(']');
            }
        }
        out.push('}');
    }
    out.push(']');
}

/// The `data` of a query: `resultType` and `result`.
pub fn query_data(value: &QueryValue) -> String {
    let mut out = String::new();
    match value {
        QueryValue::Scalar(t, v) => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            point(*t, *v, &mut out);
        }
        QueryValue::String(t, s) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            format_timestamp(*t, &mut out);
            out.push(',');
            push_json_string(s, &mut out);
            out.push(']');
        }
        QueryValue::Vector(series) => {
            out.push_str(r#"{"resultType":"vector","result":"#);
            series_list(series, true, &mut out);
        }
        QueryValue::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":"#);
            series_list(series, false, &mut out);
        }
    }
    out.push('}');
    out
}

/// A list of label sets (the series API).
pub fn label_sets(sets: &[Vec<(String, String)>]) -> String {
    let mut out = String::from("[");
    for (i, s) in sets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        labels_object(s, &mut out);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn timestamps_and_values_are_written_as_prometheus_writes_them() {
        let ts = |ms| {
            let mut s = String::new();
            format_timestamp(ms, &mut s);
            s
        };
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_500), "1.500");
        assert_eq!(ts(1_005), "1.005");
        assert_eq!(ts(60_000), "60");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(-0.0), "-0");
    }

    #[test]
    fn results_have_prometheus_shapes() {
        let s = Series {
            labels: vec![("__name__".into(), "up".into()), ("job".into(), "a\"b".into())],
            points: vec![(1000, 1.0), (2500, 0.5)],
            histograms: vec![],
            order: 0,
        };
        let v: serde_json::Value = serde_json::from_str(&query_data(&QueryValue::Matrix(vec![s.clone()]))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[1,"1"],[2.5,"0.5"]]}]})
        );
        let v: serde_json::Value = serde_json::from_str(&query_data(&QueryValue::Vector(vec![s]))).unwrap();
        assert_eq!(v["result"][0]["value"], serde_json::json!([1, "1"]));
        assert_eq!(query_data(&QueryValue::Scalar(1500, 2.0)), r#"{"resultType":"scalar","result":[1.500,"2"]}"#);
        // A native histogram: "histogram" / "histograms", buckets as
        // [boundaries, lower, upper, count] without the empty ones.
        let h = FloatHistogram::decode(
            &schemas::stream::Histogram {
                count: Some(schemas::stream::histogram::Count::CountFloat(3.0)),
                sum: 4.5,
                schema: 0,
                zero_threshold: 0.001,
                zero_count: Some(schemas::stream::histogram::ZeroCount::ZeroCountFloat(1.0)),
                positive_spans: vec![schemas::stream::BucketSpan { offset: 1, length: 2 }],
                positive_counts: vec![2.0, 0.0],
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .unwrap();
        let hs = Series { labels: vec![], points: vec![], histograms: vec![(1000, h)], order: 0 };
        let v: serde_json::Value = serde_json::from_str(&query_data(&QueryValue::Vector(vec![hs.clone()]))).unwrap();
        assert_eq!(
            v["result"][0]["histogram"],
            serde_json::json!([1, {"count":"3","sum":"4.5","buckets":[[3,"-0.001","0.001","1"],[0,"1","2","2"]]}])
        );
        let v: serde_json::Value = serde_json::from_str(&query_data(&QueryValue::Matrix(vec![hs]))).unwrap();
        assert_eq!(v["result"][0]["histograms"][0][1]["count"], "3");
        assert!(v["result"][0].get("values").is_none());
        assert_eq!(query_data(&QueryValue::String(1000, "x".into())), r#"{"resultType":"string","result":[1,"x"]}"#);
    }

    #[test]
    fn each_error_type_has_its_status() {
        assert_eq!(ErrorType::BadData.status(), 400);
        assert_eq!(ErrorType::Execution.status(), 422);
        assert_eq!(ErrorType::Timeout.status(), 503);
        assert_eq!(ErrorType::Internal.status(), 500);
        assert_eq!(ErrorType::NotFound.status(), 404);
        let e = ApiError::query(QueryError::Parse("1:1: parse error: x".into()));
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorType::BadData, "invalid parameter \"query\": 1:1: parse error: x")
        );
        assert_eq!(ApiError::query(QueryError::Limit("l".into())).kind, ErrorType::Execution);
        assert_eq!(ApiError::query(QueryError::Timeout("t".into())).kind, ErrorType::Timeout);
    }
}
