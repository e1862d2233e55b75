//! Names of the lake tables and their columns, defined once.
//!
//! Each workspace has one set of Delta Lake tables at
//! `<lake>/<workspaceId>/<table>`; `schemas/README.md` ("Lake tables")
//! documents every column, its type and meaning. The stream workers write
//! them; the query path and any lakehouse tool read them.

/// The samples table: one row per accepted sample.
pub const SAMPLES_TABLE: &str = "samples";
/// The series table: the label set of every series, with the time range it
/// was seen in.
pub const SERIES_TABLE: &str = "series";
/// The metadata table: type, help and unit per metric name, append-only.
pub const METADATA_TABLE: &str = "metadata";

/// Metric name (`__name__`), string. In `samples`, `series` and `metadata`.
pub const COL_METRIC_NAME: &str = "metric_name";
/// Series id, int64: [`crate::labels::series_id`] (a `u64`) bit-cast to
/// `i64` (so ids above `i64::MAX` read as negative numbers). In `samples` and
/// `series`.
pub const COL_SERIES_ID: &str = "series_id";
/// Sample timestamp, int64 Unix milliseconds (`samples`); when metadata was
/// received, int64 Unix milliseconds (`metadata`).
pub const COL_TIMESTAMP: &str = "timestamp";
/// Float value, double; null for histogram samples.
pub const COL_VALUE: &str = "value";
/// Native histogram, binary: the protobuf-encoded
/// `promlake.stream.v1.Histogram`; null for float samples.
pub const COL_HISTOGRAM: &str = "histogram";
/// Whether the sample is Prometheus's staleness marker, boolean (the value is
/// then NaN).
pub const COL_STALE: &str = "stale";
/// The UTC day of the sample's timestamp, Delta `date`: the partition column
/// of `samples`.
pub const COL_DAY: &str = "day";
/// The full label set, Delta `map<string,string>` (`__name__` included).
pub const COL_LABELS: &str = "labels";
/// Oldest sample timestamp the row covers, int64 Unix milliseconds.
pub const COL_FIRST_TIMESTAMP: &str = "first_timestamp";
/// Newest sample timestamp the row covers, int64 Unix milliseconds.
pub const COL_LAST_TIMESTAMP: &str = "last_timestamp";
/// Metric type (`counter`, `gauge`, `histogram`, `gaugehistogram`,
/// `summary`, `info`, `stateset`, `unknown`), string.
pub const COL_TYPE: &str = "type";
/// Help text, string.
pub const COL_HELP: &str = "help";
/// Unit, string (empty when not sent).
pub const COL_UNIT: &str = "unit";
