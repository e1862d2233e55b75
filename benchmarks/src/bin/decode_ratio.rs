//! `decode_ratio`: PromLake's decode path against the snappy + protobuf
//! limit for one realistic 2,000-sample request, as a ratio (criterion
//! measures the same in `benches/decode.rs` but prints no ratios).
//!
//! Each variant runs in alternating blocks; the median block is kept.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benchmarks::cli::{Machine, parse_protocol, protocol_name};
use benchmarks::decode_path;
use benchmarks::loadgen::sample_request;
use clap::Parser;
use common::limits::IngestLimits;

/// Time the decode path against its physical limit.
#[derive(Debug, Parser)]
struct Args {
    /// Samples in the request.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
    /// Iterations per block.
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// Blocks per variant (alternating).
    #[arg(long, default_value_t = 15)]
    blocks: usize,
    /// Protocols to measure.
    #[arg(long, default_values = ["1", "2"], value_parser = parse_protocol)]
    protocol: Vec<ingest_gateway::Protocol>,
}

const NOW_MS: i64 = 1_760_000_000_000;

fn time<R>(iterations: u32, mut f: impl FnMut() -> R) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(f());
    }
    started.elapsed() / iterations
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    let limits = IngestLimits::default();
    println!("{}", Machine::describe(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))));
    println!(
        "one node_exporter-like request of {} samples (one per series), median of {} blocks × {} iterations\n",
        args.samples, args.blocks, args.iterations
    );
    println!(
        "| protocol | compressed bytes | (a) snappy+prost limit µs | (b) PromLake decompress+decode+validate µs | (c) encode stream record µs | (b)/(a) | (b+c)/(a) | (b) samples/s per core |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for protocol in &args.protocol {
        let protocol = *protocol;
        let body = sample_request(protocol, args.samples, NOW_MS);
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        // warm-up
        time(args.iterations, || decode_path::limit(protocol, &body));
        time(args.iterations, || decode_path::promlake(protocol, &body, &limits, NOW_MS));
        for _ in 0..args.blocks {
            a.push(time(args.iterations, || decode_path::limit(protocol, black_box(&body))));
            b.push(time(args.iterations, || decode_path::promlake(protocol, black_box(&body), &limits, NOW_MS)));
            // (c) alone: prepare inputs outside the timed loop
            let inputs: Vec<_> =
                (0..args.iterations).map(|_| decode_path::promlake(protocol, &body, &limits, NOW_MS)).collect();
            let started = Instant::now();
            for v in inputs {
                black_box(decode_path::record(protocol, v, NOW_MS));
            }
            c.push(started.elapsed() / args.iterations);
        }
        let (a, b, c) = (median(a), median(b), median(c));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} |",
            protocol_name(protocol),
            body.len(),
            us(a),
            us(b),
            us(c),
            b.as_secs_f64() / a.as_secs_f64(),
            (b + c).as_secs_f64() / a.as_secs_f64(),
            args.samples as f64 / b.as_secs_f64()
        );
    }
    println!("\naim: (b)/(a) ≤ 2.0");
}
