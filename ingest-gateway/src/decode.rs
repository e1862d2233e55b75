//! Decoding a remote-write body: content-type negotiation, capped snappy
//! decompression, protobuf decoding of remote write 1.0 and 2.0 into the
//! stream record's [`Series`] and [`MetricMetadata`].

use prost::Message;
use schemas::stream::{self, MetricMetadata, Series};
use schemas::{prompb, writev2};

use crate::error::{Error, Result};

/// The remote-write protocol of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `prometheus.WriteRequest` (remote write 1.0).
    V1,
    /// `io.prometheus.write.v2.Request` (remote write 2.0).
    V2,
}

impl Protocol {
    /// The number carried in the stream record.
    pub fn version(self) -> u32 {
        match self {
            Protocol::V1 => 1,
            Protocol::V2 => 2,
        }
    }

    /// Picks the protocol from `Content-Type`, as Prometheus's receiver does:
    /// a missing header or bare `application/x-protobuf` is 1.0.
    ///
    /// # Errors
    /// [`Error::UnsupportedMediaType`] for any other type or `proto=` value.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self> {
        let Some(ct) = content_type.map(str::trim).filter(|ct| !ct.is_empty()) else {
            return Ok(Protocol::V1);
        };
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(Error::UnsupportedMediaType(format!(
                "unsupported Content-Type {ct:?}: expected application/x-protobuf"
            )));
        }
        let mut protocol = Protocol::V1;
        for param in parts {
            let Some((key, value)) = param.split_once('=') else { continue };
            if key.trim().eq_ignore_ascii_case("proto") {
                protocol = match value.trim().trim_matches('"') {
                    "prometheus.WriteRequest" => Protocol::V1,
                    "io.prometheus.write.v2.Request" => Protocol::V2,
                    other => {
                        return Err(Error::UnsupportedMediaType(format!(
                            "unsupported remote write protobuf message {other:?}: expected prometheus.WriteRequest or io.prometheus.write.v2.Request"
                        )));
                    }
                };
            }
        }
        Ok(protocol)
    }
}

/// Checks `Content-Encoding`: only snappy (or none, meaning snappy, as
/// Prometheus's receiver assumes) is accepted.
///
/// # Errors
/// [`Error::UnsupportedMediaType`] for any other encoding.
pub(crate) fn check_content_encoding(encoding: Option<&str>) -> Result<()> {
    match encoding.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(()),
        Some(e) => {
            Err(Error::UnsupportedMediaType(format!("unsupported Content-Encoding {e:?}: only snappy is accepted")))
        }
    }
}

/// Decompresses a snappy block, refusing before allocating when the
/// declared length exceeds `max_decompressed_bytes`.
///
/// # Errors
/// [`Error::TooLarge`] over the cap, [`Error::Decode`] for bad snappy.
pub fn decompress(body: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(body).map_err(|e| Error::Decode(format!("snappy: {e}")))?;
    if len > max_decompressed_bytes {
        return Err(Error::TooLarge(format!(
            "decompressed message size {len} exceeds the limit of {max_decompressed_bytes} bytes (limits.ingest.max_decompressed_bytes)"
        )));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| Error::Decode(format!("snappy: {e}")))
}

/// A decoded request, not yet validated.
#[derive(Debug, Default)]
pub struct DecodedRequest {
    /// The series, labels as sent (validation sorts nothing: it checks).
    pub series: Vec<Series>,
    /// Metric metadata.
    pub metadata: Vec<MetricMetadata>,
}

/// Decodes a decompressed protobuf message.
///
/// # Errors
/// [`Error::Decode`] when the message is not valid protobuf of its type
/// (including invalid UTF-8 in strings and out-of-range symbol references).
pub fn decode(protocol: Protocol, bytes: &[u8]) -> Result<DecodedRequest> {
    match protocol {
        Protocol::V1 => {
            let req =
                prompb::WriteRequest::decode(bytes).map_err(|e| Error::Decode(format!("remote write 1.0: {e}")))?;
            Ok(from_v1(req))
        }
        Protocol::V2 => {
            let req = writev2::Request::decode(bytes).map_err(|e| Error::Decode(format!("remote write 2.0: {e}")))?;
            from_v2(req)
        }
    }
}

fn label(name: String, value: String) -> stream::Label {
    stream::Label { name, value }
}

/// Converts a native histogram of either protocol: the messages have the
/// same fields, in different generated modules.
macro_rules! convert_histogram {
    ($h:expr, $module:ident, $ts:expr, $start:expr) => {{
        let h = $h;
        stream::Histogram {
            count: h.count.map(|c| match c {
                $module::histogram::Count::CountInt(v) => stream::histogram::Count::CountInt(v),
                $module::histogram::Count::CountFloat(v) => stream::histogram::Count::CountFloat(v),
            }),
            sum: h.sum,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: h.zero_count.map(|c| match c {
                $module::histogram::ZeroCount::ZeroCountInt(v) => stream::histogram::ZeroCount::ZeroCountInt(v),
                $module::histogram::ZeroCount::ZeroCountFloat(v) => stream::histogram::ZeroCount::ZeroCountFloat(v),
            }),
            negative_spans: h
                .negative_spans
                .into_iter()
                .map(|s| stream::BucketSpan { offset: s.offset, length: s.length })
                .collect(),
            negative_deltas: h.negative_deltas,
            negative_counts: h.negative_counts,
            positive_spans: h
                .positive_spans
                .into_iter()
                .map(|s| stream::BucketSpan { offset: s.offset, length: s.length })
                .collect(),
            positive_deltas: h.positive_deltas,
            positive_counts: h.positive_counts,
            reset_hint: h.reset_hint,
            timestamp_ms: $ts,
            custom_values: h.custom_values,
            start_timestamp_ms: $start,
        }
    }};
}

fn from_v1(req: prompb::WriteRequest) -> DecodedRequest {
    let series = req
        .timeseries
        .into_iter()
        .map(|ts| Series {
            labels: ts.labels.into_iter().map(|l| label(l.name, l.value)).collect(),
            series_id: 0,
            samples: ts
                .samples
                .into_iter()
                .map(|s| stream::Sample { timestamp_ms: s.timestamp, value: s.value, start_timestamp_ms: 0 })
                .collect(),
            histograms: ts
                .histograms
                .into_iter()
                .map(|h| {
                    let ts = h.timestamp;
                    convert_histogram!(h, prompb, ts, 0)
                })
                .collect(),
            exemplars: ts
                .exemplars
                .into_iter()
                .map(|e| stream::Exemplar {
                    labels: e.labels.into_iter().map(|l| label(l.name, l.value)).collect(),
                    value: e.value,
                    timestamp_ms: e.timestamp,
                })
                .collect(),
        })
        .collect();
    let metadata = req
        .metadata
        .into_iter()
        .map(|m| MetricMetadata {
            metric_family_name: m.metric_family_name,
            r#type: m.r#type,
            help: m.help,
            unit: m.unit,
        })
        .collect();
    DecodedRequest { series, metadata }
}

fn from_v2(req: writev2::Request) -> Result<DecodedRequest> {
    let symbols = req.symbols;
    let symbol = |r: u32| -> Result<String> {
        symbols.get(r as usize).cloned().ok_or_else(|| {
            Error::Decode(format!("remote write 2.0: symbol reference {r} out of range (symbols: {})", symbols.len()))
        })
    };
    let labels_of = |refs: &[u32]| -> Result<Vec<stream::Label>> {
        if !refs.len().is_multiple_of(2) {
            return Err(Error::Decode("remote write 2.0: odd number of label references".into()));
        }
        refs.chunks_exact(2).map(|p| Ok(label(symbol(p[0])?, symbol(p[1])?))).collect()
    };
    let mut series = Vec::with_capacity(req.timeseries.len());
    let mut metadata = Vec::new();
    for ts in req.timeseries {
        let labels = labels_of(&ts.labels_refs)?;
        if let Some(m) = ts.metadata {
            let help = symbol(m.help_ref)?;
            let unit = symbol(m.unit_ref)?;
            if (m.r#type != 0 || !help.is_empty() || !unit.is_empty())
                && let Some(name) = labels.iter().find(|l| l.name == schemas::labels::METRIC_NAME)
            {
                metadata.push(MetricMetadata { metric_family_name: name.value.clone(), r#type: m.r#type, help, unit });
            }
        }
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for e in ts.exemplars {
            exemplars.push(stream::Exemplar {
                labels: labels_of(&e.labels_refs)?,
                value: e.value,
                timestamp_ms: e.timestamp,
            });
        }
        series.push(Series {
            labels,
            series_id: 0,
            samples: ts
                .samples
                .into_iter()
                .map(|s| stream::Sample {
                    timestamp_ms: s.timestamp,
                    value: s.value,
                    start_timestamp_ms: s.start_timestamp,
                })
                .collect(),
            histograms: ts
                .histograms
                .into_iter()
                .map(|h| {
                    let (ts, start) = (h.timestamp, h.start_timestamp);
                    convert_histogram!(h, writev2, ts, start)
                })
                .collect(),
            exemplars,
        });
    }
    Ok(DecodedRequest { series, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_protocol() {
        assert_eq!(Protocol::from_content_type(None).unwrap(), Protocol::V1);
        assert_eq!(Protocol::from_content_type(Some("application/x-protobuf")).unwrap(), Protocol::V1);
        assert_eq!(
            Protocol::from_content_type(Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")).unwrap(),
            Protocol::V2
        );
        assert_eq!(
            Protocol::from_content_type(Some("application/x-protobuf; proto=prometheus.WriteRequest")).unwrap(),
            Protocol::V1
        );
        assert!(matches!(Protocol::from_content_type(Some("application/json")), Err(Error::UnsupportedMediaType(_))));
        assert!(matches!(
            Protocol::from_content_type(Some("application/x-protobuf;proto=foo.Bar")),
            Err(Error::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn decompression_is_capped_before_allocating() {
        let raw = vec![7u8; 10_000];
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert_eq!(decompress(&compressed, 10_000).unwrap(), raw);
        assert!(matches!(decompress(&compressed, 9_999), Err(Error::TooLarge(_))));
        assert!(matches!(decompress(b"\x0a\xff\xff", 1 << 30), Err(Error::Decode(_))));
    }

    #[test]
    fn v2_symbols_are_resolved_and_checked() {
        let req = writev2::Request {
            symbols: vec!["".into(), "__name__".into(), "up".into(), "help text".into()],
            timeseries: vec![writev2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![writev2::Sample { value: 1.0, timestamp: 5, start_timestamp: 0 }],
                metadata: Some(writev2::Metadata { r#type: 2, help_ref: 3, unit_ref: 0 }),
                ..Default::default()
            }],
        };
        let d = decode(Protocol::V2, &req.encode_to_vec()).unwrap();
        assert_eq!(d.series[0].labels, vec![label("__name__".into(), "up".into())]);
        assert_eq!(d.metadata[0].help, "help text");
        assert_eq!(d.metadata[0].metric_family_name, "up");

        let mut bad = req;
        bad.timeseries[0].labels_refs = vec![1, 9];
        assert!(matches!(decode(Protocol::V2, &bad.encode_to_vec()), Err(Error::Decode(_))));
    }
}
