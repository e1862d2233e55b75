//! Rule unit tests as `promtool test rules` runs them, on PromLake's ruler
//! and PromQL engine: the same test files (`rule_files`,
//! `evaluation_interval`, `group_eval_order`, `tests` with `input_series`,
//! `alert_rule_test`, `promql_expr_test`, `external_labels`,
//! `external_url`, `fuzzy_compare`), the same verdicts and the same report
//! of differences on the same streams (`promlake rules test FILE...`).
//!
//! ```text
//!  test file ─► input series (expanding notation) ─► MemoryStore (SampleReader + SampleAppender)
//!  rule files ─► rulefmt ─► ruler::ManualGroup per group (in group_eval_order)
//!  for t = 0, interval, … ≤ the last eval_time:
//!      every group evaluates at t (recording results and ALERTS into the store)
//!      alert_rule_test at eval_time ∈ [t, t + interval): firing alerts vs exp_alerts
//!  promql_expr_test: the engine's instant query at eval_time vs exp_samples
//! ```
//!
//! Output, as promtool 3.5.3 prints it: per file `  SUCCESS` on stdout, or
//! `  FAILED:` and each difference on stderr (one empty stdout line per
//! difference), then an empty line; the exit code is 1 when a file failed.
//!
//! Known differences: error texts of the engine and of the rule-file and
//! YAML parsers are PromLake's own; `--debug` and `--diff` are not
//! implemented. `histogram` expectations in `exp_samples` are compared as
//! promtool compares them, by their `TestExpression()` text.

mod file;
mod store;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use common::seams::{AlertSink, InstantValue, Labels, PromqlEngine, Sample, SampleValue, SeamError};
use query_service::engine::histogram::FloatHistogram;
use ruler::{AlertState, ManualGroup, RulerConfig, RulerSeams};
use templates::go::{format_float, go_quote};

use crate::file::{TestGroup, UnitTestFile};
use crate::store::MemoryStore;

/// The workspace the tests evaluate in (any name: the storage is theirs).
const WORKSPACE: &str = "rules-test";

/// Runs the test files (only the test groups whose name matches one of
/// `run`, when given), printing as promtool does; returns whether every
/// file passed.
pub async fn run(files: &[PathBuf], run: &[String], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let run = if run.is_empty() {
        None
    } else {
        match regex::Regex::new(&run.join("|")) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = writeln!(err, "bad --run pattern: {e}");
                return false;
            }
        }
    };
    let mut passed = true;
    for f in files {
        match test_file(f, run.as_ref(), err).await {
            Ok(()) => {
                let _ = writeln!(out, "  SUCCESS");
            }
            Err(errors) => {
                let _ = writeln!(err, "  FAILED:");
                for e in errors {
                    let _ = writeln!(err, "{e}");
                    let _ = writeln!(out);
                }
                passed = false;
            }
        }
        let _ = writeln!(out);
    }
    passed
}

/// One test file: every test group, the differences found.
async fn test_file(path: &Path, run: Option<&regex::Regex>, warn: &mut dyn Write) -> Result<(), Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| vec![format!("open {}: {}", path.display(), io_message(&e))])?;
    let unit: UnitTestFile = serde_norway::from_slice(&bytes).map_err(|e| vec![e.to_string()])?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for pattern in &unit.rule_files {
        let full = if pattern.is_empty() || Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            dir.join(pattern)
        };
        let full = full.to_string_lossy().into_owned();
        let matched: Vec<PathBuf> =
            glob::glob(&full).map_err(|e| vec![e.to_string()])?.filter_map(Result::ok).collect();
        if matched.is_empty() {
            let _ = writeln!(warn, "  WARNING: no file match pattern {full}");
        }
        rule_files.extend(matched);
    }
    let eval_interval = if unit.evaluation_interval == 0 { 60_000 } else { unit.evaluation_interval };
    let mut order = HashMap::new();
    for (i, name) in unit.group_eval_order.iter().enumerate() {
        if order.insert(name.clone(), i).is_some() {
            return Err(vec![format!("group name repeated in evaluation order: {name}")]);
        }
    }
    let mut errors = Vec::new();
    for t in &unit.tests {
        if run.is_some_and(|r| !r.is_match(&t.name)) {
            continue;
        }
        let interval = if t.interval == 0 { eval_interval } else { t.interval };
        let spec = GroupRun { eval_interval, interval, order: &order, fuzzy: unit.fuzzy_compare };
        errors.extend(spec.test(t, &rule_files).await);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Go's text of common I/O errors (`no such file or directory`).
fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// How one test group runs.
struct GroupRun<'a> {
    eval_interval: i64,
    /// The input series' interval.
    interval: i64,
    order: &'a HashMap<String, usize>,
    fuzzy: bool,
}

/// Alerts are not sent anywhere in tests.
#[derive(Debug)]
struct NoAlertmanager;

#[async_trait]
impl AlertSink for NoAlertmanager {
    async fn send(&self, _workspace_id: &str, _alerts: serde_json::Value) -> Result<(), SeamError> {
        Ok(())
    }
}

/// An alert's labels and annotations, as compared.
type LabelsAndAnnotations = (Vec<(String, String)>, Vec<(String, String)>);

/// A sample as compared, as promtool's `parsedSample`: labels, the float
/// value (0 for a histogram), and a native histogram's `TestExpression()`
/// (empty for a float).
type ParsedSample = (Vec<(String, String)>, f64, String);

impl GroupRun<'_> {
    async fn test(&self, tg: &TestGroup, rule_files: &[PathBuf]) -> Vec<String> {
        let store = Arc::new(MemoryStore::default());
        if let Err(e) = self.load(tg, &store) {
            return vec![e];
        }
        let mut groups = Vec::new();
        for path in rule_files {
            let text = match std::fs::read(path) {
                Ok(t) => t,
                Err(e) => return vec![format!("open {}: {}", path.display(), io_message(&e))],
            };
            match rulefmt::parse(&text) {
                Ok(file) => groups.extend(file.groups.into_iter().map(|g| (path.display().to_string(), g))),
                Err(errors) => return errors.into_iter().map(|e| format!("{}: {e}", path.display())).collect(),
            }
        }
        groups.sort_by_key(|(_, g)| self.order.get(&g.name).copied().unwrap_or(0));

        let overrides = Arc::new(common::limits::Overrides::new(&common::limits::Limits::default()));
        // As promtool: subqueries without a step use the evaluation interval.
        let engine: Arc<dyn PromqlEngine> = Arc::new(
            query_service::seam::RuleEngine::new(query_service::engine::Engine::new(store.clone()), overrides.clone())
                .with_subquery_step(self.eval_interval),
        );
        let seams = RulerSeams {
            store: Arc::new(common::control::MemoryControlStore::default()),
            arns: common::arn::ArnScheme { region: "local".into(), account_id: "000000000000".into() },
            engine: engine.clone(),
            appender: store.clone(),
            reader: store.clone(),
            overrides,
            clock: Arc::new(common::clock::SystemClock),
            owner: Arc::new(ruler::AllGroups),
            alerts: Arc::new(NoAlertmanager),
            events: Arc::new(common::events::NoEvents),
        };
        let config = RulerConfig {
            external_labels: tg.external_labels.clone(),
            external_url: tg.external_url.clone(),
            ..RulerConfig::default()
        };
        let groups: Vec<ManualGroup> = groups
            .into_iter()
            .map(|(file, g)| {
                let interval = g.interval_ms.filter(|i| *i > 0).unwrap_or(self.interval);
                ManualGroup::new(WORKSPACE, &file, g, interval, seams.clone(), config.clone())
            })
            .collect();

        let mut errors = Vec::new();
        let test_name = if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
        let mut alert_times: Vec<i64> = Vec::new();
        for a in &tg.alert_rule_test {
            if a.alertname.is_empty() {
                let in_group = if tg.name.is_empty() { String::new() } else { format!(" (in TestGroup {})", tg.name) };
                return vec![format!(
                    "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                    common::duration::format(a.eval_time)
                )];
            }
            alert_times.push(a.eval_time);
        }
        alert_times.sort_unstable();
        alert_times.dedup();
        let max_t = tg
            .alert_rule_test
            .iter()
            .map(|a| a.eval_time)
            .chain(tg.promql_expr_test.iter().map(|p| p.eval_time))
            .max()
            .unwrap_or(0);

        let mut next_alert_time = 0;
        let mut ts = 0;
        while ts <= max_t {
            let mut eval_errors = Vec::new();
            for g in &groups {
                g.evaluate(ts).await;
                for r in g.status().rules {
                    if let Some(e) = r.last_error {
                        eval_errors.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            r.rule.name(),
                            query_service::api::params::go_duration(ts)
                        ));
                    }
                }
            }
            if !eval_errors.is_empty() {
                errors.extend(eval_errors);
                return errors;
            }
            // Alert tests whose eval_time falls in [ts, ts + interval) are
            // checked against this evaluation.
            while next_alert_time < alert_times.len()
                && ts <= alert_times[next_alert_time]
                && alert_times[next_alert_time] < ts + self.eval_interval
            {
                let t = alert_times[next_alert_time];
                let mut got: HashMap<String, Vec<LabelsAndAnnotations>> = HashMap::new();
                for g in &groups {
                    for r in g.status().rules.iter().filter(|r| r.rule.is_alerting()) {
                        let firing =
                            r.alerts.iter().filter(|a| a.state == AlertState::Firing && a.resolved_at_ms.is_none());
                        got.entry(r.rule.name().to_owned())
                            .or_default()
                            .extend(firing.map(|a| (a.labels.to_vec(), a.annotations.to_vec())));
                    }
                }
                for case in tg.alert_rule_test.iter().filter(|a| a.eval_time == t) {
                    let mut got = got.get(&case.alertname).cloned().unwrap_or_default();
                    let mut exp: Vec<LabelsAndAnnotations> = case
                        .exp_alerts
                        .iter()
                        .map(|a| {
                            let mut labels = a.exp_labels.clone();
                            labels.insert("alertname".into(), case.alertname.clone());
                            (labels.into_iter().collect(), a.exp_annotations.clone().into_iter().collect())
                        })
                        .collect();
                    got.sort();
                    exp.sort();
                    if got != exp {
                        errors.push(format!(
                            "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                            case.alertname,
                            common::duration::format(case.eval_time),
                            indent_lines(&alerts_string(&exp), "            "),
                            indent_lines(&alerts_string(&got), "            "),
                        ));
                    }
                }
                next_alert_time += 1;
            }
            ts += self.eval_interval;
        }

        'cases: for case in &tg.promql_expr_test {
            let where_ =
                format!("    expr: {}, time: {}", go_quote(&case.expr), common::duration::format(case.eval_time));
            let got = match engine.instant_query(WORKSPACE, &case.expr, case.eval_time).await {
                Ok(InstantValue::Vector(v)) => v,
                Ok(InstantValue::Scalar(f)) => vec![(Labels::from(Vec::new()), SampleValue::Float(f))],
                Ok(InstantValue::String(_)) => {
                    errors.push(format!("{where_}, err: rule result is not a vector or scalar"));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{where_}, err: {}", e.message));
                    continue;
                }
            };
            let mut got: Vec<ParsedSample> = got
                .into_iter()
                .map(|(l, v)| match v {
                    SampleValue::Float(f) => (l.to_vec(), f, String::new()),
                    SampleValue::Histogram(bytes) => {
                        let text = FloatHistogram::decode(&bytes).map(|h| test_expression(&h)).unwrap_or_default();
                        (l.to_vec(), 0.0, text)
                    }
                })
                .collect();
            let mut exp = Vec::new();
            for s in &case.exp_samples {
                let Some(labels) = query_service::promqltest::script::parse_series(&s.labels) else {
                    errors.push(format!("{where_}, err: labels {}: not a series description", go_quote(&s.labels)));
                    continue 'cases;
                };
                let histogram = if s.histogram.is_empty() {
                    String::new()
                } else {
                    match expected_histogram(&s.histogram) {
                        Ok(h) => h,
                        Err(e) => {
                            errors.push(format!("{where_}, err: labels {}: {e}", go_quote(&s.labels)));
                            continue 'cases;
                        }
                    }
                };
                exp.push((labels, s.value, histogram));
            }
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let same = exp.len() == got.len()
                && exp.iter().zip(&got).all(|(e, g)| {
                    e.0 == g.0
                        && e.2 == g.2
                        && (e.1 == g.1 || (self.fuzzy && (e.1.next_up() == g.1 || e.1.next_down() == g.1)))
                });
            if !same {
                errors.push(format!(
                    "{where_},\n        exp: {}\n        got: {}",
                    samples_string(&exp),
                    samples_string(&got)
                ));
            }
        }
        errors
    }

    /// The input series, one sample per `interval` from time 0.
    fn load(&self, tg: &TestGroup, store: &MemoryStore) -> Result<(), String> {
        use prost::Message as _;
        use query_service::promqltest::script::{Value, parse_series_line};
        for s in &tg.input_series {
            let line = parse_series_line(&format!("{} {}", s.series, s.values), 1)
                .map_err(|e| format!("error in input series {}: {}", go_quote(&s.series), e.message))?;
            let labels: Labels = line.labels.into();
            let mut chunk = HistogramChunk::default();
            for (i, v) in line.values.into_iter().enumerate() {
                let t = i as i64 * self.interval;
                let value = match v {
                    None => continue,
                    Some(Value::Float(f)) => {
                        chunk = HistogramChunk::default();
                        SampleValue::Float(f)
                    }
                    Some(Value::Stale) => {
                        chunk = HistogramChunk::default();
                        SampleValue::Float(f64::from_bits(schemas::labels::STALE_NAN_BITS))
                    }
                    Some(Value::Histogram(h)) => {
                        let mut proto = query_service::promqltest::stream_histogram(&h, t);
                        chunk.append(&mut proto);
                        SampleValue::Histogram(bytes::Bytes::from(proto.encode_to_vec()))
                    }
                };
                store.add(labels.clone(), Sample { timestamp_ms: t, value });
            }
        }
        Ok(())
    }
}

/// The counter-reset hints Prometheus's TSDB gives the histograms it
/// appends to a series (what promtool's test storage holds, and its
/// `TestExpression()` prints): a sample continuing its chunk reads back
/// `not_reset`; one that starts a chunk — the first of a series, one after
/// a float or a stale marker, a counter reset, a layout that cannot follow
/// (schema, zero width, custom bounds), the 121st of a chunk — keeps the
/// hint it was written with; gauge histograms keep `gauge`.
#[derive(Default)]
struct HistogramChunk {
    previous: Option<FloatHistogram>,
    samples: usize,
}

impl HistogramChunk {
    /// Samples per chunk before TSDB cuts a new one.
    const MAX_SAMPLES: usize = 120;

    fn append(&mut self, proto: &mut schemas::stream::Histogram) {
        use schemas::stream::histogram::ResetHint;
        let Ok(h) = FloatHistogram::from_proto(proto) else { return };
        let continues = h.reset_hint != ResetHint::Gauge
            && self.samples < Self::MAX_SAMPLES
            && self.previous.as_ref().is_some_and(|p| {
                let mut probe = h.clone();
                probe.reset_hint = ResetHint::Unknown;
                same_layout(p, &h) && !probe.is_reset_after(p)
            });
        if continues {
            proto.reset_hint = ResetHint::No as i32;
            self.samples += 1;
        } else {
            self.samples = 1;
        }
        self.previous = Some(h);
    }
}

/// Whether `next` can be appended to the chunk `previous` is in without
/// recoding it into a new one.
fn same_layout(previous: &FloatHistogram, next: &FloatHistogram) -> bool {
    previous.schema == next.schema
        && previous.zero_threshold == next.zero_threshold
        && previous.custom_values == next.custom_values
}

/// Prometheus's `labels.Labels.String()`: `{a="b", c="d"}`, names quoted
/// when they are not legacy names.
fn labels_string(labels: &[(String, String)]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let name = if is_legacy_name(k) { k.clone() } else { go_quote(k) };
            format!("{name}={}", go_quote(v))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_legacy_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// promtool's `labelsAndAnnotations.String()`.
fn alerts_string(alerts: &[LabelsAndAnnotations]) -> String {
    let one = |(l, a): &LabelsAndAnnotations| format!("Labels:{}\nAnnotations:{}", labels_string(l), labels_string(a));
    let Some(first) = alerts.first() else { return "[]".into() };
    let mut s = format!("[\n0:{}", indent_lines(&format!("\n{}", one(first)), "  "));
    for (i, a) in alerts.iter().enumerate().skip(1) {
        s.push_str(&format!(",\n{i}:{}", indent_lines(&format!("\n{}", one(a)), "  ")));
    }
    s.push_str("\n]");
    s
}

/// promtool's `parsedSamplesString`: `nil`, or `labels value` joined by
/// `, ` with the value in Go's `%E` shortest form.
fn samples_string(samples: &[ParsedSample]) -> String {
    if samples.is_empty() {
        return "nil".into();
    }
    let one = |(l, v, h): &ParsedSample| {
        if h.is_empty() {
            format!("{} {}", labels_string(l), format_float(*v, 'E', -1))
        } else {
            format!("{} {h}", labels_string(l))
        }
    };
    samples.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// An `exp_samples` `histogram:` as promtool reads it (`ParseSeriesDesc`
/// of `{} <histogram>`), as its `TestExpression()`.
fn expected_histogram(text: &str) -> Result<String, String> {
    use query_service::promqltest::script::{Value, parse_series_line};
    let line = parse_series_line(&format!("{{}} {text}"), 1).map_err(|e| e.message)?;
    match line.values.as_slice() {
        [Some(Value::Histogram(h))] => {
            FloatHistogram::from_proto(&query_service::promqltest::stream_histogram(h, 0)).map(|h| test_expression(&h))
        }
        [v] => Err(format!("expected histogram, got {}", sequence_value(v.as_ref()))),
        values => Err(format!("expected 1 value, got {}", values.len())),
    }
}

/// Go's `parser.SequenceValue.String()` of a non-histogram value: `_`, or
/// the float with `%f`.
fn sequence_value(v: Option<&query_service::promqltest::script::Value>) -> String {
    use query_service::promqltest::script::Value;
    let f = match v {
        None => return "_".into(),
        Some(Value::Float(f)) => *f,
        Some(Value::Stale) | Some(Value::Histogram(_)) => f64::NAN,
    };
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{f:.6}")
    }
}

/// Prometheus's `FloatHistogram.TestExpression()`: the histogram compacted
/// to one positive and one negative span, in the series notation
/// (`{{schema:1 count:4 sum:5 buckets:[1 2 1]}}`).
fn test_expression(h: &FloatHistogram) -> String {
    use schemas::stream::histogram::ResetHint;
    let g = |v: f64| format_float(v, 'g', -1);
    let mut res = Vec::new();
    if h.schema != 0 {
        res.push(format!("schema:{}", h.schema));
    }
    if h.count != 0.0 {
        res.push(format!("count:{}", g(h.count)));
    }
    if h.sum != 0.0 {
        res.push(format!("sum:{}", g(h.sum)));
    }
    if h.zero_count != 0.0 {
        res.push(format!("z_bucket:{}", g(h.zero_count)));
    }
    if h.zero_threshold != 0.0 {
        res.push(format!("z_bucket_w:{}", g(h.zero_threshold)));
    }
    if h.schema == query_service::engine::histogram::CUSTOM_BUCKETS_SCHEMA {
        let values: Vec<String> = h.custom_values.iter().map(|v| g(*v)).collect();
        res.push(format!("custom_values:[{}]", values.join(" ")));
    }
    match h.reset_hint {
        ResetHint::Unknown => {}
        ResetHint::Yes => res.push("counter_reset_hint:reset".into()),
        ResetHint::No => res.push("counter_reset_hint:not_reset".into()),
        ResetHint::Gauge => res.push("counter_reset_hint:gauge".into()),
    }
    for (buckets, offset_key, buckets_key) in
        [(&h.positive, "offset", "buckets"), (&h.negative, "n_offset", "n_buckets")]
    {
        // Compacted: empty buckets at both ends dropped, the rest one span.
        let kept: Vec<&(i32, f64)> = buckets.iter().filter(|(_, c)| *c != 0.0).collect();
        let (Some(first), Some(last)) = (kept.first(), kept.last()) else { continue };
        if first.0 != 0 {
            res.push(format!("{offset_key}:{}", first.0));
        }
        let counts: Vec<String> =
            (first.0..=last.0).map(|i| buckets.iter().find(|(j, _)| *j == i).map_or(0.0, |(_, c)| *c)).map(g).collect();
        res.push(format!("{buckets_key}:[{}]", counts.join(" ")));
    }
    format!("{{{{{}}}}}", res.join(" "))
}

/// promtool's `indentLines`: every line but the first prefixed.
fn indent_lines(lines: &str, indent: &str) -> String {
    lines
        .split('\n')
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_owned() } else { format!("{indent}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}
