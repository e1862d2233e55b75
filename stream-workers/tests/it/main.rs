//! Integration tests of the stream workers: the real embedded log (and, for
//! the consumer-group rebalance, the Kafka log on librdkafka's mock cluster),
//! real Delta tables in a temporary directory, read back with delta-rs and
//! parquet.

mod compaction;
mod dedup;
mod exactly_once;
mod harness;
mod maintenance;
mod rebalance;
mod round_trip;
mod s3;
mod select;
