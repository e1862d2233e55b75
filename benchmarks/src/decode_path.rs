//! The decode path measured by `benches/decode.rs` and `decode_ratio`: the
//! physical limit (snappy + prost into the wire types) against PromLake's
//! path (capped decompression, decode into the stream record's types,
//! validation with series ids) and the stream-record encoding after it.
//!
//! ```text
//! limit:     snap decompress_vec → prost decode (prompb::WriteRequest | writev2::Request)
//! promlake:  ingest_gateway::decompress → decode(Protocol, …) → validate(…, IngestLimits::default(), now)
//! record:    WriteBatch { series: validated } .encode_to_vec()   (what the producer appends)
//! ```

use common::limits::IngestLimits;
use ingest_gateway::{Protocol, Validated};
use prost::Message;
use schemas::stream::WriteBatch;
use schemas::{prompb, writev2};

/// The limit: decompress and decode into the generated wire types; returns
/// the number of series (so the work cannot be optimised away).
pub fn limit(protocol: Protocol, body: &[u8]) -> usize {
    let raw = snap::raw::Decoder::new().decompress_vec(body).expect("the fixture is valid snappy");
    match protocol {
        Protocol::V1 => {
            prompb::WriteRequest::decode(raw.as_slice()).expect("the fixture is valid RW 1.0").timeseries.len()
        }
        Protocol::V2 => writev2::Request::decode(raw.as_slice()).expect("the fixture is valid RW 2.0").timeseries.len(),
    }
}

/// PromLake's path up to validated series.
pub fn promlake(protocol: Protocol, body: &[u8], limits: &IngestLimits, now_ms: i64) -> Validated {
    let raw = ingest_gateway::decompress(body, limits.max_decompressed_bytes).expect("the fixture is within limits");
    let decoded = ingest_gateway::decode(protocol, &raw).expect("the fixture decodes");
    ingest_gateway::validate(decoded.series, limits, now_ms)
}

/// Encodes validated series as one stream record (one partition's worth).
pub fn record(protocol: Protocol, validated: Validated, now_ms: i64) -> Vec<u8> {
    WriteBatch {
        workspace_id: "ws-0123456789abcdef".into(),
        received_at_ms: now_ms,
        protocol_version: protocol.version(),
        series: validated.series,
        metadata: Vec::new(),
    }
    .encode_to_vec()
}
