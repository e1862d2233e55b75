//! Validation of decoded series, as Cortex and Mimir do it: the valid part of
//! a request is kept, the invalid series or samples are dropped and counted
//! by reason, and the first error is reported to the sender.
//!
//! Per series, in order: empty label values are dropped (an empty value means
//! "no such label"); a missing or empty `__name__`, an empty label name,
//! unsorted or duplicate label names, too many labels, and over-long names or
//! values reject the series. Per sample or histogram: a timestamp further in
//! the future than the grace period rejects that sample. Per exemplar: no
//! labels, labels over 128 runes, or a zero timestamp reject that exemplar.
//!
//! Label names may be any non-empty UTF-8 (Prometheus 3's UTF-8 names); the
//! protobuf decoder has already rejected invalid UTF-8.

use std::fmt::Write as _;

use common::limits::IngestLimits;
use schemas::labels::{METRIC_NAME, series_id};
use schemas::stream::{Label, Series};

/// Prometheus's limit on the combined length of an exemplar's labels, runes.
const EXEMPLAR_MAX_LABEL_SET_RUNES: usize = 128;
/// Longest part of a series or value quoted in an error message.
const QUOTE_MAX: usize = 200;

/// Why something was dropped; the `reason` label of the discard counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No `__name__` label (or an empty one).
    MissingMetricName,
    /// An empty label name.
    InvalidLabel,
    /// More labels than `max_label_names_per_series`.
    MaxLabelNamesPerSeries,
    /// A label name over `max_label_name_length`.
    LabelNameTooLong,
    /// A label value over `max_label_value_length`.
    LabelValueTooLong,
    /// Two labels with one name.
    DuplicateLabelNames,
    /// Label names not in ascending order.
    LabelsNotSorted,
    /// Timestamp beyond now + `creation_grace_period_seconds`.
    TooFarInFuture,
    /// An exemplar without labels.
    ExemplarLabelsMissing,
    /// An exemplar whose labels exceed 128 runes.
    ExemplarLabelsTooLong,
    /// An exemplar without a timestamp.
    ExemplarTimestampInvalid,
    /// The workspace's ingestion rate limit.
    RateLimited,
    /// A label set's active-series limit (`limitsPerLabelSet`).
    PerLabelSetSeriesLimit,
}

impl Reason {
    /// The stable id: the metric label and the `err-promlake-…` suffix.
    pub fn id(self) -> &'static str {
        match self {
            Reason::MissingMetricName => "missing-metric-name",
            Reason::InvalidLabel => "label-invalid",
            Reason::MaxLabelNamesPerSeries => "max-label-names-per-series",
            Reason::LabelNameTooLong => "label-name-too-long",
            Reason::LabelValueTooLong => "label-value-too-long",
            Reason::DuplicateLabelNames => "duplicate-label-names",
            Reason::LabelsNotSorted => "labels-not-sorted",
            Reason::TooFarInFuture => "too-far-in-future",
            Reason::ExemplarLabelsMissing => "exemplar-labels-missing",
            Reason::ExemplarLabelsTooLong => "exemplar-labels-too-long",
            Reason::ExemplarTimestampInvalid => "exemplar-timestamp-invalid",
            Reason::RateLimited => "ingestion-rate-limited",
            Reason::PerLabelSetSeriesLimit => "per-labelset-series-limit",
        }
    }
}

/// Counts of one kind of item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Float samples.
    pub samples: u64,
    /// Native histograms.
    pub histograms: u64,
    /// Exemplars.
    pub exemplars: u64,
}

impl Counts {
    /// What one series holds.
    pub(crate) fn of(series: &Series) -> Self {
        Counts {
            samples: series.samples.len() as u64,
            histograms: series.histograms.len() as u64,
            exemplars: series.exemplars.len() as u64,
        }
    }

    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: Counts) {
        self.samples += other.samples;
        self.histograms += other.histograms;
        self.exemplars += other.exemplars;
    }

    /// Items counted against the ingestion rate.
    pub fn total(&self) -> u64 {
        self.samples + self.histograms + self.exemplars
    }
}

/// What validation kept and dropped.
#[derive(Debug, Default)]
pub struct Validated {
    /// The valid series, with `series_id` set.
    pub series: Vec<Series>,
    /// What the valid series hold.
    pub accepted: Counts,
    /// Dropped items per reason.
    pub discarded: Vec<(Reason, Counts)>,
    /// The first error, as sent back to the client.
    pub first_error: Option<(Reason, String)>,
}

impl Validated {
    fn reject(&mut self, reason: Reason, counts: Counts, message: impl FnOnce() -> String) {
        match self.discarded.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, c)) => c.add(counts),
            None => self.discarded.push((reason, counts)),
        }
        if self.first_error.is_none() {
            self.first_error = Some((reason, format!("{} (err-promlake-{})", message(), reason.id())));
        }
    }
}

/// Validates `series` against the workspace's `limits` at time `now_ms`.
pub fn validate(series: Vec<Series>, limits: &IngestLimits, now_ms: i64) -> Validated {
    let mut out = Validated { series: Vec::with_capacity(series.len()), ..Default::default() };
    let max_ts = now_ms.saturating_add(
        i64::try_from(limits.creation_grace_period_seconds).unwrap_or(i64::MAX / 1000).saturating_mul(1000),
    );
    for mut s in series {
        s.labels.retain(|l| !l.value.is_empty());
        if let Err((reason, message)) = check_labels(&s.labels, limits) {
            out.reject(reason, Counts::of(&s), || message);
            continue;
        }
        let future = |ts: i64| ts > max_ts;
        let too_new = Counts {
            samples: s.samples.iter().filter(|x| future(x.timestamp_ms)).count() as u64,
            histograms: s.histograms.iter().filter(|x| future(x.timestamp_ms)).count() as u64,
            exemplars: 0,
        };
        if too_new.total() > 0 {
            let ts = s
                .samples
                .iter()
                .map(|x| x.timestamp_ms)
                .chain(s.histograms.iter().map(|x| x.timestamp_ms))
                .find(|t| future(*t));
            out.reject(Reason::TooFarInFuture, too_new, || {
                format!(
                    "received a sample whose timestamp is too far in the future, timestamp: {} series: '{}'. The limit is now + limits.ingest.creation_grace_period_seconds ({} s)",
                    ts.unwrap_or_default(),
                    series_string(&s.labels),
                    limits.creation_grace_period_seconds
                )
            });
            s.samples.retain(|x| !future(x.timestamp_ms));
            s.histograms.retain(|x| !future(x.timestamp_ms));
        }
        let exemplars = std::mem::take(&mut s.exemplars);
        for e in exemplars {
            match check_exemplar(&e) {
                Ok(()) => s.exemplars.push(e),
                Err((reason, message)) => {
                    out.reject(reason, Counts { exemplars: 1, ..Counts::default() }, || {
                        format!("{message} series: '{}'", series_string(&s.labels))
                    });
                }
            }
        }
        if s.samples.is_empty() && s.histograms.is_empty() && s.exemplars.is_empty() {
            continue;
        }
        s.series_id = series_id(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        out.accepted.add(Counts::of(&s));
        out.series.push(s);
    }
    out
}

fn check_labels(labels: &[Label], limits: &IngestLimits) -> Result<(), (Reason, String)> {
    match labels.iter().find(|l| l.name == METRIC_NAME) {
        Some(_) => {}
        None => return Err((Reason::MissingMetricName, "received a series without metric name".into())),
    }
    if labels.len() > limits.max_label_names_per_series {
        return Err((
            Reason::MaxLabelNamesPerSeries,
            format!(
                "received a series whose number of labels exceeds the limit (actual: {}, limit: {}) series: '{}'. You can adjust the per-workspace limit limits.ingest.max_label_names_per_series",
                labels.len(),
                limits.max_label_names_per_series,
                series_string(labels)
            ),
        ));
    }
    for (i, l) in labels.iter().enumerate() {
        if l.name.is_empty() {
            return Err((
                Reason::InvalidLabel,
                format!("received a series with an invalid label: '' series: '{}'", series_string(labels)),
            ));
        }
        if l.name.len() > limits.max_label_name_length {
            return Err((
                Reason::LabelNameTooLong,
                format!(
                    "received a series whose label name length exceeds the limit ({} bytes), label: '{}' series: '{}'. You can adjust the per-workspace limit limits.ingest.max_label_name_length",
                    limits.max_label_name_length,
                    truncate(&l.name),
                    series_string(labels)
                ),
            ));
        }
        if l.value.len() > limits.max_label_value_length {
            return Err((
                Reason::LabelValueTooLong,
                format!(
                    "received a series whose label value length exceeds the limit ({} bytes), value: '{}' (truncated) series: '{}'. You can adjust the per-workspace limit limits.ingest.max_label_value_length",
                    limits.max_label_value_length,
                    truncate(&l.value),
                    series_string(labels)
                ),
            ));
        }
        if i > 0 {
            let prev = &labels[i - 1].name;
            if *prev == l.name {
                return Err((
                    Reason::DuplicateLabelNames,
                    format!(
                        "received a series with duplicate label name, label: '{}' series: '{}'",
                        truncate(&l.name),
                        series_string(labels)
                    ),
                ));
            }
            if *prev > l.name {
                return Err((
                    Reason::LabelsNotSorted,
                    format!(
                        "received a series where the label names are not sorted, label: '{}' series: '{}'",
                        truncate(&l.name),
                        series_string(labels)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_exemplar(e: &schemas::stream::Exemplar) -> Result<(), (Reason, String)> {
    if e.labels.is_empty() {
        return Err((
            Reason::ExemplarLabelsMissing,
            "received an exemplar with no valid labels, timestamp: ".to_owned() + &e.timestamp_ms.to_string(),
        ));
    }
    let runes: usize = e.labels.iter().map(|l| l.name.chars().count() + l.value.chars().count()).sum();
    if runes > EXEMPLAR_MAX_LABEL_SET_RUNES {
        return Err((
            Reason::ExemplarLabelsTooLong,
            format!(
                "received an exemplar where the size of its combined labels exceeds the limit of {EXEMPLAR_MAX_LABEL_SET_RUNES} characters, timestamp: {}",
                e.timestamp_ms
            ),
        ));
    }
    if e.timestamp_ms == 0 {
        return Err((Reason::ExemplarTimestampInvalid, "received an exemplar with no timestamp".into()));
    }
    Ok(())
}

/// `name{a="b", …}`, truncated, for error messages.
fn series_string(labels: &[Label]) -> String {
    let mut out = String::new();
    let name = labels.iter().find(|l| l.name == METRIC_NAME).map(|l| l.value.as_str()).unwrap_or_default();
    out.push_str(name);
    out.push('{');
    let mut first = true;
    for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(out, "{}={:?}", l.name, l.value);
        if out.len() > QUOTE_MAX {
            break;
        }
    }
    out.push('}');
    truncate(&out).to_owned()
}

fn truncate(s: &str) -> &str {
    if s.len() <= QUOTE_MAX {
        return s;
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::stream::Sample;

    fn series(labels: &[(&str, &str)], ts: i64) -> Series {
        Series {
            labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![Sample { timestamp_ms: ts, value: 1.0, start_timestamp_ms: 0 }],
            ..Default::default()
        }
    }

    #[test]
    fn valid_series_pass_and_get_ids() {
        let v = validate(vec![series(&[("__name__", "up"), ("job", "a")], 1000)], &IngestLimits::default(), 1000);
        assert_eq!(v.series.len(), 1);
        assert_ne!(v.series[0].series_id, 0);
        assert_eq!(v.accepted.samples, 1);
        assert!(v.first_error.is_none());
    }

    #[test]
    fn empty_values_are_dropped_not_rejected() {
        let v =
            validate(vec![series(&[("__name__", "up"), ("empty", ""), ("job", "a")], 0)], &IngestLimits::default(), 0);
        assert_eq!(v.series[0].labels.len(), 2);
        assert_eq!(v.series[0].series_id, series_id([("__name__", "up"), ("job", "a")]));
    }

    #[test]
    fn each_rule_rejects_with_its_reason() {
        let limits = IngestLimits {
            max_label_names_per_series: 3,
            max_label_name_length: 8,
            max_label_value_length: 5,
            ..Default::default()
        };
        let cases: Vec<(Series, Reason, &str)> = vec![
            (series(&[("job", "a")], 0), Reason::MissingMetricName, "received a series without metric name"),
            (
                series(&[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")], 0),
                Reason::MaxLabelNamesPerSeries,
                "(actual: 4, limit: 3)",
            ),
            (series(&[("__name__", "up"), ("abcdefghi", "1")], 0), Reason::LabelNameTooLong, "label: 'abcdefghi'"),
            (series(&[("__name__", "up"), ("a", "123456")], 0), Reason::LabelValueTooLong, "value: '123456'"),
            (
                series(&[("__name__", "up"), ("a", "1"), ("a", "2")], 0),
                Reason::DuplicateLabelNames,
                "duplicate label name, label: 'a'",
            ),
            (
                series(&[("__name__", "up"), ("b", "1"), ("a", "2")], 0),
                Reason::LabelsNotSorted,
                "not sorted, label: 'a'",
            ),
            (series(&[("", "x"), ("__name__", "up")], 0), Reason::InvalidLabel, "invalid label"),
            (series(&[("__name__", "up")], 601_000), Reason::TooFarInFuture, "timestamp: 601000"),
        ];
        for (s, reason, text) in cases {
            let v = validate(vec![s, series(&[("__name__", "ok")], 0)], &limits, 0);
            assert_eq!(v.series.len(), 1, "{reason:?}");
            assert_eq!(v.discarded, vec![(reason, Counts { samples: 1, ..Default::default() })], "{reason:?}");
            let (r, msg) = v.first_error.unwrap();
            assert_eq!(r, reason);
            assert!(msg.contains(text), "{msg}");
            assert!(msg.ends_with(&format!("(err-promlake-{})", reason.id())), "{msg}");
        }
    }

    #[test]
    fn utf8_label_names_are_accepted() {
        let v = validate(vec![series(&[("__name__", "http.requests"), ("hôte", "a")], 0)], &IngestLimits::default(), 0);
        assert_eq!(v.series.len(), 1);
    }
}
