//! Integration tests of the stream workers: the real embedded log, real Delta
//! tables in a temporary directory, read back with delta-rs and parquet.

mod compaction;
mod dedup;
mod exactly_once;
mod harness;
mod maintenance;
mod round_trip;
mod s3;
