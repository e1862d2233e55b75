//! Stream workers: consume each workspace's log topic and append its samples
//! to the workspace's Delta Lake tables exactly once.
//!
//! ```text
//!                      ┌──────────────────── PartitionWorker (one task per partition) ─────────────────────┐
//!  log topic           │  fetch ─► decode WriteBatch ─► dedup per series ─► buffer ─► flush (size / age)   │
//!  promlake.ws.<id>.   │    ▲          (schemas::stream)   (Prometheus head        │    one commit per table│
//!  samples, partition p│    │                               rules)                 ▼                        │
//!  ────────────────────┼────┘                                         <lake>/<id>/samples  (day partitions)  │
//!                      │                                              <lake>/<id>/series                     │
//!                      │  commit_offset("stream-workers")  ◄───────── <lake>/<id>/metadata                   │
//!                      │  (after all three, lagging by the dedup horizon)  each commit: txn(app id, version) │
//!                      └───────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - [`tables`]: the three tables' schemas, rows and Parquet settings (and
//!   the measured bytes per sample).
//! - [`writer`]: the [`TableWriter`] seam over delta-rs.
//! - [`worker`]: [`PartitionWorker`], the exactly-once loop.
//! - [`StreamWorkers`]: one worker task per *owned* partition of each watched
//!   workspace. A [`common::membership::Membership`] decides what this
//!   process owns: [`AllPartitions`] (one process owns everything: the
//!   embedded log) or `log_kafka::KafkaMembership` (worker processes split
//!   the partitions in the consumer group [`MEMBERSHIP_GROUP`]). A revoked
//!   partition's worker commits what it buffered and stops before the
//!   revocation returns; an assigned one's worker recovers from the tables'
//!   transaction versions, like a restart.
//! - [`LakeLocation`]: where the tables live, a local directory or
//!   `s3://bucket/prefix` ([`S3Config`]); every access goes through the
//!   object store, and commits on S3 are conditional puts (see [`lake`]).
//!
//! # Exactly once
//!
//! Every Delta commit carries an application transaction: app id
//! `"<topic>/<partition>"` (the same whichever process owns the partition)
//! and version = the last log offset the commit covers. The transaction and
//! the data files it adds are one atomic log entry, so a table's version for
//! an app id says exactly which records it holds. A worker starting (first
//! start, restart, or new owner) reads each table's version `v_t`, reads the
//! log from at most `min(v_t) + 1`, and gives table `t` rows only from
//! records above `v_t`. Hence:
//!
//! - **Crash after writing Parquet files, before their commit**: the files
//!   are referenced by no commit, so no reader sees them (vacuum deletes
//!   them); `v_t` did not move, the records are read and written again.
//! - **Crash between the commits of two tables**: each table resumes from its
//!   own version; the committed one skips the records the other still needs.
//! - **Crash after the commits, before the log offset commit**: the offset is
//!   only an optimisation (it lets log retention delete below it); the
//!   worker resumes from the tables' versions and appends nothing twice.
//! - **A commit whose answer was lost**: the retry finds the table already at
//!   its version and does nothing ([`writer::AppendOutcome::AlreadyCommitted`]).
//! - **Two owners of one partition** (a rebalance whose previous owner has
//!   not stopped yet, a member that lost its group session): an append
//!   states the version it expects the table to hold, and delta-rs refuses
//!   concurrent commits with the same app id; the loser's commit fails
//!   ([`Error::Fenced`]). A loser whose partition was revoked stops; one
//!   that still owns the partition starts over from the tables' versions
//!   (its buffer and dedup state are discarded and rebuilt from the log).
//! - **A rebalance** (a worker joins, leaves or dies): the new owner starts
//!   like a restarted worker, from the tables' versions and the committed
//!   consumer offset, so nothing committed by the previous owner is written
//!   again and nothing it left uncommitted is lost. Tested with two group
//!   members on the Kafka mock (`tests/it/rebalance.rs`) and with worker
//!   processes, one SIGKILLed (`promlake/tests/it/scaled_out.rs`).
//! - **A retried remote-write request** (the gateway stored the first copy,
//!   its answer was lost, the sender sent it again): deduplication drops the
//!   second copy's samples (same series, timestamp, value). Across a restart
//!   the dedup state is rebuilt by re-reading the log from the committed
//!   consumer offset, which is kept `dedup_horizon_ms` of log time behind the
//!   lake (see [`StreamWorkersConfig::dedup_horizon_ms`]).
//!
//! Each crash case is tested at the process level
//! (`promlake/tests/it/lake_crash.rs`) through failpoints in the commit path
//! (`src/failpoint.rs`, armed by the `PROMLAKE_FAILPOINTS` environment
//! variable: a testing hook that aborts the process at a named point).
//!
//! # Maintenance
//!
//! [`maintenance`]: a background pass (every
//! [`StreamWorkersConfig::maintenance_interval_ms`], first soon after
//! start; also [`StreamWorkers::run_maintenance`]) removes the expired `day`
//! partitions of each workspace's `samples` table (retention from
//! `common::limits::Overrides::retention_period_days`, "now" from the
//! injected clock) in one commit, then compacts `samples` ([`compaction`]:
//! a day partition's small flush files rewritten into large files sorted by
//! metric name, series id and time, removes + adds with `dataChange=false`
//! in one commit per day; 15.0 → 2.6 bytes per sample on node_exporter-like
//! data), rewrites `series` and `metadata` into one row per key without the
//! keys last seen before the retention ([`rewrite`]), then vacuums every
//! table by listing it:
//! expired files after a short grace (a documented deviation from Delta's
//! 7 days), other removed files after 7 days, orphans of failed commits
//! after an hour. delta-rs writes a checkpoint every
//! [`StreamWorkersConfig::checkpoint_interval`] commits.
//! [`StreamWorkers::forget_workspace`] stops a deleted workspace's workers
//! and deletes its tables. No datafusion: all of it uses delta-rs' commit
//! builder, snapshots and the object store.
//!
//! # Reads
//!
//! [`StreamWorkers`] implements [`common::seams::SampleReader`]: `select`
//! reads a selection (label matchers, time range) from the tables
//! ([`scan`]: partition, file-statistics and row-group pruning, an
//! in-memory index of the `series` table) and from every partition's head
//! (samples applied but not committed yet), consistently: see `head.rs`
//! for why a sample is never missing nor doubled while flushes go on, and
//! for the heads' shared memory budget
//! ([`StreamWorkersConfig::head_max_bytes`]); `wait_for_position` waits
//! until given log offsets are committed, `wait_until_readable` until they
//! are in a head or committed (read-your-writes: the ruler's next rule).
//!
//! # Not built yet
//!
//! Reading heads of partitions owned by other processes, a Parquet
//! metadata cache for reads, a streaming k-way merge for
//! compaction (groups are sorted in memory, about 20 × their compressed
//! size), lakes on other object stores (GCS, Azure: `s3://` only),
//! exemplars and start timestamps in the tables. Lake maintenance still runs
//! in every worker process for every watched workspace (its commits are
//! conflict-checked, but the work is repeated per process rather than split
//! like the partitions).

pub mod compaction;
mod config;
mod dedup;
mod error;
mod failpoint;
mod head;
pub mod lake;
pub mod maintenance;

mod metrics;
pub mod read;
pub mod rewrite;
pub mod scan;
pub mod tables;
pub mod worker;
mod workers;
pub mod writer;

pub use common::membership::AllPartitions;
pub use compaction::{CompactionPolicy, CompactionReport};
pub use config::StreamWorkersConfig;
pub use error::{Error, Result};
pub use lake::{LakeLocation, S3Config};
pub use maintenance::{MaintenanceReport, VacuumPolicy, VacuumReport};
pub use rewrite::{RewritePolicy, RewriteReport};
pub use tables::TableKind;
pub use worker::{CONSUMER_GROUP, MEMBERSHIP_GROUP, PartitionWorker};
pub use workers::{StreamWorkers, start};
pub use writer::{AppTransaction, AppendOutcome, DeltaTableWriter, MemoryTableWriter, TableWriter};
