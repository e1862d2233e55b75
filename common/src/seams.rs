//! The seams between the query path, the stream workers, the ruler and the
//! alerting component. Each is implemented by the component named in its
//! doc and, for tests, by an in-memory double; the `promlake` binary wires
//! the real implementations.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ErrorKind;

/// A failure behind one of the seams, carrying its kind for the HTTP edge.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SeamError {
    /// What the caller should do about it.
    pub kind: ErrorKind,
    /// A human-readable description.
    pub message: String,
}

/// A position in a workspace's log: for each partition, the offset that the
/// reader must have applied (read-your-writes).
pub type LogPosition = Vec<(u32, u64)>;

/// A series' label set, sorted by label name (`__name__` included).
pub type Labels = Arc<[(String, String)]>;

/// How a [`LabelMatcher`] compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    NotRegex,
}

/// One label matcher of a PromQL selector, with Prometheus 3's semantics: a
/// missing label has the empty value, regular expressions are anchored at
/// both ends and `.` matches a newline too.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regular expression.
    pub value: String,
    regex: Option<regex::Regex>,
}

impl LabelMatcher {
    /// A matcher; regular expressions are compiled here.
    ///
    /// # Errors
    /// [`ErrorKind::BadData`] for a regular expression that does not compile.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self, SeamError> {
        let (name, value) = (name.into(), value.into());
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(regex::Regex::new(&format!("^(?s:{value})$")).map_err(|e| SeamError {
                    kind: ErrorKind::BadData,
                    message: format!("invalid regular expression {value:?} for label {name:?}: {e}"),
                })?)
            }
        };
        Ok(Self { name, op, value, regex })
    }

    /// Whether a label value (`""` when the label is missing) matches.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether this matcher accepts a label set.
    pub fn matches_labels(&self, labels: &[(String, String)]) -> bool {
        let value = labels.iter().find(|(n, _)| *n == self.name).map_or("", |(_, v)| v.as_str());
        self.matches(value)
    }
}

/// What a query reads: the series whose labels match every matcher, with
/// their samples in `[start_ms, end_ms]` (both inclusive).
#[derive(Debug, Clone)]
pub struct Selection {
    /// Every matcher must accept a series.
    pub matchers: Vec<LabelMatcher>,
    /// First timestamp, inclusive.
    pub start_ms: i64,
    /// Last timestamp, inclusive.
    pub end_ms: i64,
}

impl Selection {
    /// The metric name when the selection fixes it (`__name__="…"`): the
    /// scan then prunes files and row groups by name.
    pub fn metric_name(&self) -> Option<&str> {
        self.matchers.iter().find(|m| m.name == "__name__" && m.op == MatchOp::Equal).map(|m| m.value.as_str())
    }

    /// Whether a label set matches every matcher.
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        self.matchers.iter().all(|m| m.matches_labels(labels))
    }
}

/// A sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    /// A float; a staleness marker is the NaN `schemas::labels::STALE_NAN_BITS`.
    Float(f64),
    /// A native histogram, the encoded `schemas::stream::Histogram`.
    Histogram(bytes::Bytes),
}

/// One sample of a selected series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unix milliseconds.
    pub timestamp_ms: i64,
    /// The value.
    pub value: SampleValue,
}

/// One series of a [`Selected`] answer.
#[derive(Debug, Clone)]
pub struct SelectedSeries {
    /// Its labels.
    pub labels: Labels,
    /// Its samples in the selection's range, by timestamp, one per timestamp.
    pub samples: Vec<Sample>,
}

/// What a selection read, for the plan's metrics and tests of pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectStats {
    /// Data files in the table snapshot.
    pub files_total: usize,
    /// Data files opened (the rest were pruned by partition or statistics).
    pub files_read: usize,
    /// Row groups in the files opened.
    pub row_groups_total: usize,
    /// Row groups decoded (the rest were pruned by their statistics or
    /// their pages' page-index entries).
    pub row_groups_read: usize,
    /// Rows in the row groups decoded.
    pub rows_total: usize,
    /// Rows decoded: those on the pages of the decoded row groups that the
    /// page index could not rule out.
    pub rows_read: usize,
    /// Samples taken from the tables.
    pub table_samples: usize,
    /// Samples taken from the head (not yet in the tables).
    pub head_samples: usize,
}

/// The answer to a [`Selection`].
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// The matching series that have samples in the range, by labels.
    pub series: Vec<SelectedSeries>,
    /// What was read.
    pub stats: SelectStats,
}

/// A metric's metadata (from remote write), the newest written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The metric family name.
    pub metric: String,
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`,
    /// `stateset` or `unknown`.
    pub metric_type: String,
    /// The help text.
    pub help: String,
    /// The unit.
    pub unit: String,
}

/// Reads a workspace's samples from the lake tables and the workers' head.
/// Implemented by the stream workers (stream-workers issue).
#[async_trait]
pub trait SampleReader: Send + Sync + std::fmt::Debug + 'static {
    /// The series matching `selection` with their samples in its range, from
    /// the tables and the head together: every sample a worker has applied
    /// (an acknowledged sample, once the worker has fetched it from the log)
    /// is included, whether or not it was flushed to the tables yet.
    async fn select(&self, workspace_id: &str, selection: &Selection) -> Result<Selected, SeamError>;

    /// The metadata of every metric the workspace's tables hold, one entry
    /// per metric (the newest), by metric name.
    async fn metadata(&self, workspace_id: &str) -> Result<Vec<MetricMetadata>, SeamError>;

    /// Waits until every partition of the workspace's topic has committed
    /// the given offsets to the lake tables, or `timeout` passes.
    async fn wait_for_position(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError>;

    /// Waits until the records at `position` are readable through
    /// [`SampleReader::select`] (applied to a worker's head, or committed),
    /// or `timeout` passes: what a reader needs to see its own writes. The
    /// stream workers wait only on the partitions this process owns
    /// (others are read from the tables once their owner commits). By
    /// default, as [`SampleReader::wait_for_position`].
    async fn wait_until_readable(
        &self,
        workspace_id: &str,
        position: &LogPosition,
        timeout: Duration,
    ) -> Result<(), SeamError> {
        self.wait_for_position(workspace_id, position, timeout).await
    }
}

/// A workspace's stored data (its lake tables and the workers' state).
/// Implemented by the stream workers; the control plane calls it when a
/// workspace is deleted, before the workspace's topic and record go.
#[async_trait]
pub trait WorkspaceData: Send + Sync + std::fmt::Debug + 'static {
    /// Stops the workspace's workers and deletes its tables. Deleting data
    /// that is already gone is not an error.
    async fn delete_workspace_data(&self, workspace_id: &str) -> Result<(), SeamError>;
}

/// The value of an instant query, as the ruler uses it.
#[derive(Debug, Clone, PartialEq)]
pub enum InstantValue {
    /// One sample per series (their timestamps are the evaluation time).
    Vector(Vec<(Labels, SampleValue)>),
    /// A scalar.
    Scalar(f64),
    /// A string.
    String(String),
}

/// Evaluates PromQL for a workspace. Implemented by the query service, used
/// by the ruler.
#[async_trait]
pub trait PromqlEngine: Send + Sync + std::fmt::Debug + 'static {
    /// Evaluates `query` at `time_ms` under the workspace's query limits.
    async fn instant_query(&self, workspace_id: &str, query: &str, time_ms: i64) -> Result<InstantValue, SeamError>;
}

/// Appends samples to a workspace's log as ingested samples are appended,
/// so they reach the tables, the heads and the stream like any other (the
/// ruler's recording-rule results and staleness markers). Implemented by
/// the ingest gateway.
#[async_trait]
pub trait SampleAppender: Send + Sync + std::fmt::Debug + 'static {
    /// Appends one sample per series; returns once they are durable, with
    /// the log position that holds them (for `SampleReader::wait_for_position`).
    async fn append(&self, workspace_id: &str, samples: Vec<(Labels, Sample)>) -> Result<LogPosition, SeamError>;
}

/// The state of the rules a process evaluates, for the Prometheus rules
/// and alerts APIs. Implemented by the ruler.
pub trait RuleStates: Send + Sync + std::fmt::Debug + 'static {
    /// The workspace's rule groups, by namespace then name, each with its
    /// rules in order.
    fn rule_groups(&self, workspace_id: &str) -> Vec<crate::rules::RuleGroupState>;
}

/// Receives alerts from the ruler. Implemented by the in-process alerting
/// component and by an Alertmanager v2 HTTP client.
#[async_trait]
pub trait AlertSink: Send + Sync + std::fmt::Debug + 'static {
    /// Sends alerts in the Alertmanager v2 `postableAlerts` JSON shape.
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let l = labels(&[("__name__", "up"), ("job", "node"), ("path", "/a\n/b")]);
        let m = |name: &str, op, value: &str| LabelMatcher::new(name, op, value).unwrap().matches_labels(&l);
        assert!(m("job", MatchOp::Equal, "node"));
        assert!(!m("job", MatchOp::NotEqual, "node"));
        // Anchored at both ends.
        assert!(m("job", MatchOp::Regex, "no.*"));
        assert!(!m("job", MatchOp::Regex, "od"));
        assert!(m("job", MatchOp::NotRegex, "od"));
        // Alternation inside the anchors.
        assert!(m("job", MatchOp::Regex, "api|node"));
        // `.` matches a newline (Prometheus 3).
        assert!(m("path", MatchOp::Regex, "/a./b"));
        // A missing label has the empty value.
        assert!(m("instance", MatchOp::Equal, ""));
        assert!(m("instance", MatchOp::Regex, ".*"));
        assert!(!m("instance", MatchOp::Regex, ".+"));
        assert!(!m("instance", MatchOp::NotEqual, ""));
        let bad = LabelMatcher::new("job", MatchOp::Regex, "(").unwrap_err();
        assert_eq!(bad.kind, ErrorKind::BadData);
    }

    #[test]
    fn a_selection_names_its_metric_only_for_an_equality_matcher() {
        let eq = LabelMatcher::new("__name__", MatchOp::Equal, "up").unwrap();
        let re = LabelMatcher::new("__name__", MatchOp::Regex, "up").unwrap();
        let s = Selection { matchers: vec![re.clone()], start_ms: 0, end_ms: 1 };
        assert_eq!(s.metric_name(), None);
        let s = Selection { matchers: vec![re, eq], start_ms: 0, end_ms: 1 };
        assert_eq!(s.metric_name(), Some("up"));
    }
}
