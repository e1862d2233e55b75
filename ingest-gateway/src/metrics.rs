//! The gateway's self-metrics, registered in the registry the binary passes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::validate::Counts;

/// Labels of per-workspace item counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ItemLabels {
    pub(crate) workspace: String,
    /// `sample`, `histogram` or `exemplar`.
    pub(crate) kind: &'static str,
}

/// Labels of the discard counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DiscardLabels {
    pub(crate) workspace: String,
    pub(crate) kind: &'static str,
    pub(crate) reason: &'static str,
}

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) protocol: &'static str,
    pub(crate) code: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) received: Family<ItemLabels, Counter>,
    pub(crate) written: Family<ItemLabels, Counter>,
    pub(crate) discarded: Family<DiscardLabels, Counter>,
    pub(crate) append_seconds: Histogram,
}

impl Metrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            received: Family::default(),
            written: Family::default(),
            discarded: Family::default(),
            append_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        };
        let r = registry.sub_registry_with_prefix("promlake_ingest");
        r.register("requests", "Remote-write requests by protocol and status code", m.requests.clone());
        r.register("received", "Items (samples, histograms, exemplars) received, per workspace", m.received.clone());
        r.register("written", "Items durably written to the log and acknowledged, per workspace", m.written.clone());
        r.register("discarded", "Items rejected, per workspace and reason", m.discarded.clone());
        r.register(
            "log_append_seconds",
            "Time to append a request's records durably to the log",
            m.append_seconds.clone(),
        );
        m
    }

    pub(crate) fn count(family: &Family<ItemLabels, Counter>, workspace: &str, counts: Counts) {
        for (kind, n) in kinds(counts) {
            if n > 0 {
                family.get_or_create(&ItemLabels { workspace: workspace.to_owned(), kind }).inc_by(n);
            }
        }
    }

    pub(crate) fn discard(&self, workspace: &str, reason: &'static str, counts: Counts) {
        for (kind, n) in kinds(counts) {
            if n > 0 {
                self.discarded
                    .get_or_create(&DiscardLabels { workspace: workspace.to_owned(), kind, reason })
                    .inc_by(n);
            }
        }
    }
}

fn kinds(c: Counts) -> [(&'static str, u64); 3] {
    [("sample", c.samples), ("histogram", c.histograms), ("exemplar", c.exemplars)]
}
