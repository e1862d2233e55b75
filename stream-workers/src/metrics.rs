//! The stream workers' self-metrics, registered in the registry the binary
//! passes, under the prefix `promlake_stream`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-workspace counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WorkspaceLabels {
    pub(crate) workspace: String,
}

/// Labels of the discard counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DiscardLabels {
    pub(crate) workspace: String,
    /// `duplicate_sample` or `out_of_order`.
    pub(crate) reason: &'static str,
}

/// Labels of per-table counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TableLabels {
    pub(crate) workspace: String,
    /// `samples`, `series` or `metadata`.
    pub(crate) table: &'static str,
}

/// Labels of the commit-duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CommitLabels {
    pub(crate) table: &'static str,
}

/// Labels of the vacuum counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VacuumLabels {
    pub(crate) workspace: String,
    /// `expired` (removed by retention), `removed` (other removed files) or
    /// `orphan` (referenced by no commit).
    pub(crate) reason: &'static str,
}

/// Discard reason: same timestamp, another value.
pub(crate) const DUPLICATE_SAMPLE: &str = "duplicate_sample";
/// Discard reason: older than the newest sample by more than the window.
pub(crate) const OUT_OF_ORDER: &str = "out_of_order";

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) committed: Family<WorkspaceLabels, Counter>,
    pub(crate) discarded: Family<DiscardLabels, Counter>,
    pub(crate) commits: Family<TableLabels, Counter>,
    pub(crate) rows: Family<TableLabels, Counter>,
    pub(crate) commit_seconds: Family<CommitLabels, Histogram>,
    pub(crate) commit_failures: Family<TableLabels, Counter>,
    pub(crate) retention_removed: Family<WorkspaceLabels, Counter>,
    pub(crate) vacuumed: Family<VacuumLabels, Counter>,
    pub(crate) maintenance_failures: Family<WorkspaceLabels, Counter>,
    pub(crate) compacted_files: Family<WorkspaceLabels, Counter>,
    pub(crate) compacted_rows: Family<WorkspaceLabels, Counter>,
    /// Bytes held by the heads of every partition (see `crate::head`).
    pub(crate) head_bytes: Gauge,
    /// Partitions this process runs a worker for (assigned by the membership).
    pub(crate) owned_partitions: Family<WorkspaceLabels, Gauge>,
    /// Workers fenced by another owner while their partition was owned here.
    pub(crate) fenced: Family<WorkspaceLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self {
            committed: Family::default(),
            discarded: Family::default(),
            commits: Family::default(),
            rows: Family::default(),
            commit_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
            commit_failures: Family::default(),
            retention_removed: Family::default(),
            vacuumed: Family::default(),
            maintenance_failures: Family::default(),
            compacted_files: Family::default(),
            compacted_rows: Family::default(),
            head_bytes: Gauge::default(),
            owned_partitions: Family::default(),
            fenced: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("promlake_stream");
        r.register("samples_committed", "Samples committed to the samples table, per workspace", m.committed.clone());
        r.register(
            "samples_discarded",
            "Samples dropped by deduplication, per workspace and reason (duplicate_sample, out_of_order)",
            m.discarded.clone(),
        );
        r.register(
            "owned_partitions",
            "Partitions of the workspace's topic this process runs a worker for (its share of the consumer group)",
            m.owned_partitions.clone(),
        );
        r.register(
            "fenced_restarts",
            "Workers fenced by another owner's commit while their partition was owned here, then restarted from the tables",
            m.fenced.clone(),
        );
        r.register("commits", "Delta commits, per workspace and table", m.commits.clone());
        r.register("rows_committed", "Rows committed, per workspace and table", m.rows.clone());
        r.register("commit_seconds", "Time to write and commit one table's part of a flush", m.commit_seconds.clone());
        r.register(
            "commit_failures",
            "Failed table appends (retried), per workspace and table",
            m.commit_failures.clone(),
        );
        r.register(
            "retention_removed_files",
            "Files of expired days removed from the samples table by retention, per workspace",
            m.retention_removed.clone(),
        );
        r.register(
            "vacuum_deleted_files",
            "Files deleted from disk by vacuum, per workspace and reason (expired, removed, orphan)",
            m.vacuumed.clone(),
        );
        r.register(
            "maintenance_failures",
            "Failed lake maintenance passes (retried at the next pass), per workspace",
            m.maintenance_failures.clone(),
        );
        r.register(
            "compacted_files",
            "Small files of the samples table replaced by compaction, per workspace",
            m.compacted_files.clone(),
        );
        r.register(
            "compacted_rows",
            "Rows rewritten by compaction of the samples table, per workspace",
            m.compacted_rows.clone(),
        );
        r.register(
            "head_bytes",
            "Memory held by the head: samples applied and not yet committed, and their series' labels",
            m.head_bytes.clone(),
        );
        m
    }
}
