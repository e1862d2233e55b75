//! Criterion: one realistic 2,000-sample node_exporter request, RW 1.0 and
//! RW 2.0, through (a) the snappy + protobuf limit, (b) PromLake's decode
//! path (decompress, decode, validate) and (c) the stream-record encoding.
//! The fixture is prepared once, outside every timed loop.
//!
//! `cargo bench -p benchmarks` (about a minute); `decode_ratio` prints (b)/(a).

use std::hint::black_box;
use std::time::Duration;

use benchmarks::decode_path;
use benchmarks::loadgen::sample_request;
use common::limits::IngestLimits;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ingest_gateway::Protocol;

const SAMPLES: usize = 2_000;
const NOW_MS: i64 = 1_760_000_000_000;

fn decode(c: &mut Criterion) {
    let limits = IngestLimits::default();
    for (name, protocol) in [("rw1", Protocol::V1), ("rw2", Protocol::V2)] {
        let body = sample_request(protocol, SAMPLES, NOW_MS);
        let mut g = c.benchmark_group(format!("decode_{name}_2000_samples"));
        g.throughput(Throughput::Elements(SAMPLES as u64));
        g.bench_function("a_limit_snappy_prost", |b| b.iter(|| decode_path::limit(protocol, black_box(&body))));
        g.bench_function("b_promlake_decompress_decode_validate", |b| {
            b.iter(|| decode_path::promlake(protocol, black_box(&body), &limits, NOW_MS))
        });
        g.bench_function("c_encode_stream_record", |b| {
            b.iter_batched(
                || decode_path::promlake(protocol, &body, &limits, NOW_MS),
                |v| decode_path::record(protocol, v, NOW_MS),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = decode
}
criterion_main!(benches);
