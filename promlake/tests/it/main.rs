//! Integration tests of the `promlake` binary: real processes, real files,
//! real Prometheus. One test binary (modules below), run serially by nextest.

#![allow(unreachable_pub)]

mod alerting_rules;
mod alertmanager_api;
mod alertmanager_cli;
mod amp_cli;
mod crash;
mod harness;
mod lake_crash;
mod policies;
mod prometheus;
mod query_api;
mod recording_rules;
mod rule_groups_cli;
mod rules_test_cli;
mod s3_lake;
mod scaled_out;
mod serve;
mod sigv4;
