//! Benchmarks: load generator, ingestion harness and micro-benchmarks (being built).
