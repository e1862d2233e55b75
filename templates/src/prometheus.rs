//! Prometheus's template functions (`template/template.go` of Prometheus
//! 3.5) and the expansion of alerting-rule templates as
//! `AlertingRule.Eval` does it.

use std::collections::BTreeMap;
use std::sync::{Arc, mpsc};

use gotmpl::Value;

use crate::check::{ALERT_DEFS, alert_template_name, called_functions, is_defined};
use crate::exec::{Call, FnError, FuncTable, GoFunc, Program, time_value};
use crate::goconv;
use crate::gofmt::{self, float_v};
use crate::gostd;
use crate::types::{Kind, Registry, Types, Untyped, string_map, type_name};

/// The data of an alerting rule's templates: `.Labels`/`$labels`,
/// `.ExternalLabels`/`$externalLabels`, `.ExternalURL`/`$externalURL` and
/// `.Value`/`$value`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertData {
    /// The alert's labels (the sample's labels, `__name__` included).
    pub labels: BTreeMap<String, String>,
    /// The configured external labels.
    pub external_labels: BTreeMap<String, String>,
    /// The external URL (`--web.external-url`).
    pub external_url: String,
    /// The sample value that fired the alert.
    pub value: f64,
    /// When the alert's sample is a native histogram: `$value` is the
    /// histogram (Go's `*histogram.FloatHistogram`) and `value` is unused.
    pub histogram: Option<HistogramValue>,
}

/// A native histogram as alert templates see it: printed as Go's
/// `FloatHistogram.String()`, with its scalar fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramValue {
    /// `FloatHistogram.String()`: `{count:4, sum:5, (0.5,1]:1, (1,2]:2}`.
    pub text: String,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
}

/// One sample of a `query` template function's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySample {
    /// The series' labels (with `__name__` when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
}

/// The `query` function's seam: evaluates a PromQL expression as an instant
/// query at `at_ms` (the expander's time). Synchronous; async callers bridge.
pub trait Querier: Send + Sync {
    /// Evaluates `expr`; a scalar result is one sample without labels. The
    /// samples keep the order given (Prometheus returns the storage's order
    /// and templates that care sort with `sortByLabel`).
    ///
    /// # Errors
    ///
    /// The query's error text, which the template reports as
    /// `error calling query: <text>`.
    fn query(&self, expr: &str, at_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// How an alert template is expanded.
#[derive(Clone, Copy)]
pub struct ExpandOptions<'a> {
    /// The evaluation time in Unix milliseconds (`query` runs at this time).
    pub ts_ms: i64,
    /// Evaluates `query`; `None` behaves as Prometheus without a query
    /// function (calling `query` fails with a nil-pointer error).
    pub querier: Option<&'a dyn Querier>,
    /// The URL behind the `externalURL` and `pathPrefix` functions; `None`
    /// behaves as Prometheus without one (as in `promtool test rules`:
    /// calling them fails with a nil-pointer error).
    pub external_url: Option<&'a str>,
}

impl std::fmt::Debug for ExpandOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandOptions")
            .field("ts_ms", &self.ts_ms)
            .field("querier", &self.querier.map(|_| "..."))
            .field("external_url", &self.external_url)
            .finish()
    }
}

/// Expands an alerting rule's label or annotation template as
/// `AlertingRule.Eval` does: the `$labels`/`$externalLabels`/
/// `$externalURL`/`$value` definitions prepended, template name
/// `__alert_<alert_name>`, `data` as dot, `ts_ms` as the time of `query`,
/// `querier` for `query` and `data.external_url` for `externalURL` and
/// `pathPrefix`.
///
/// # Errors
///
/// The error Prometheus logs (and embeds in the value, see
/// [`expand_or_error_text`]), e.g. `error executing template __alert_A:
/// template: __alert_A:1:115: executing "__alert_A" at <humanize "x">: error
/// calling humanize: strconv.ParseFloat: parsing "x": invalid syntax`.
pub fn expand_alert_template(
    alert_name: &str,
    text: &str,
    data: &AlertData,
    ts_ms: i64,
    querier: Option<&dyn Querier>,
) -> Result<String, String> {
    let opts = ExpandOptions { ts_ms, querier, external_url: Some(&data.external_url) };
    expand_alert_template_with(alert_name, text, data, &opts)
}

/// [`expand_alert_template`]'s value, or on error the text Prometheus uses
/// instead: `<error expanding template: ERR>`.
pub fn expand_or_error_text(
    alert_name: &str,
    text: &str,
    data: &AlertData,
    ts_ms: i64,
    querier: Option<&dyn Querier>,
) -> String {
    expand_alert_template(alert_name, text, data, ts_ms, querier).unwrap_or_else(|e| error_text(&e))
}

/// The value Prometheus gives a label or annotation whose template failed.
pub fn error_text(err: &str) -> String {
    format!("<error expanding template: {err}>")
}

/// [`expand_alert_template`] with explicit options.
///
/// # Errors
///
/// As [`expand_alert_template`].
pub fn expand_alert_template_with(
    alert_name: &str,
    text: &str,
    data: &AlertData,
    opts: &ExpandOptions<'_>,
) -> Result<String, String> {
    let name = alert_template_name(alert_name);
    let full = format!("{ALERT_DEFS}{text}");
    let set =
        crate::parser::parse(&name, &full, &is_defined).map_err(|e| format!("error parsing template {name}: {e}"))?;
    let run = |query: Option<mpsc::Sender<QueryRequest>>| {
        let env = Arc::new(Env { ts_ms: opts.ts_ms, external_url: opts.external_url.map(str::to_string), query });
        let program = Program::new(&name, &full, &set, &function_table(env));
        let dot = alert_data_value(program.registry(), data);
        program.execute(&dot).map_err(|e| format!("error executing template {name}: {e}"))
    };
    match opts.querier {
        Some(querier) if called_functions(&set).contains("query") => std::thread::scope(|s| {
            // The template functions must be 'static; they reach the borrowed
            // querier through a channel served by a scoped thread.
            let (tx, rx) = mpsc::channel::<QueryRequest>();
            s.spawn(move || {
                for req in rx {
                    let _ = req.reply.send(querier.query(&req.expr, req.at_ms));
                }
            });
            run(Some(tx))
        }),
        _ => run(None),
    }
}

/// The alert data as Go's anonymous struct.
fn alert_data_value(reg: &Registry, data: &AlertData) -> Value {
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Labels"), string_map(reg, &data.labels));
    m.insert(Arc::from("ExternalLabels"), string_map(reg, &data.external_labels));
    m.insert(Arc::from("ExternalURL"), Value::String(Arc::from(data.external_url.as_str())));
    let value = match &data.histogram {
        None => Value::Float(data.value),
        Some(h) => {
            let mut fields = BTreeMap::new();
            fields.insert(Arc::from("Schema"), Value::Int(i64::from(h.schema)));
            fields.insert(Arc::from("ZeroThreshold"), Value::Float(h.zero_threshold));
            fields.insert(Arc::from("ZeroCount"), Value::Float(h.zero_count));
            fields.insert(Arc::from("Count"), Value::Float(h.count));
            fields.insert(Arc::from("Sum"), Value::Float(h.sum));
            // The String method, called as a field (`$value.String`) or by printing.
            fields.insert(Arc::from("String"), s(h.text.as_str()));
            reg.tag(Value::Map(Arc::new(fields)), Kind::Histogram)
        }
    };
    m.insert(Arc::from("Value"), value);
    reg.tag(Value::Map(Arc::new(m)), Kind::AlertData)
}

struct QueryRequest {
    expr: String,
    at_ms: i64,
    reply: mpsc::Sender<Result<Vec<QuerySample>, String>>,
}

/// What the functions see of the expander.
struct Env {
    ts_ms: i64,
    external_url: Option<String>,
    query: Option<mpsc::Sender<QueryRequest>>,
}

/// What a Go nil-pointer dereference panic reads as once recovered.
const NIL_DEREFERENCE: &str = "runtime error: invalid memory address or nil pointer dereference";

pub(crate) fn s(v: impl Into<Arc<str>>) -> Value {
    Value::String(v.into())
}

/// Prometheus's `convertToFloat` (`common/helpers/templates.ConvertToFloat`).
pub(crate) fn convert_to_float(reg: &Registry, v: &Value) -> Result<f64, String> {
    if let Some(Kind::Duration(d)) = reg.kind(v) {
        return Ok(crate::gotime::duration_in(d, 1_000_000_000));
    }
    match v {
        Value::Float(f) => Ok(*f),
        Value::String(s) => goconv::parse_float(s).map_err(|e| e.message(s)),
        Value::Int(i) => Ok(*i as f64),
        Value::Uint(u) => Ok(*u as f64),
        other => Err(format!("can't convert {} to float", type_name(reg, other))),
    }
}

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    gofmt::sprintf(&Untyped, "%.4g", &[Value::Float(v)])
}

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// `floatToTime`: seconds → Unix nanoseconds of a millisecond-precision time.
fn float_to_time(v: f64) -> Result<i64, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let timestamp = v * 1e9;
    if timestamp > i64::MAX as f64 || timestamp < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            float_v(v)
        ));
    }
    let millis = (timestamp as i64) / 1_000_000;
    Ok(millis * 1_000_000)
}

fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    float_to_time(v).map(|ns| crate::gotime::time_string(crate::gotime::GoTime::utc_nanos(ns)))
}

/// `model.ParseDuration` (Prometheus durations: `1h30m`, `5d`, `1y`), in
/// nanoseconds.
fn parse_model_duration(d: &str) -> Result<u64, String> {
    use common::duration::DurationError;
    let ms = common::duration::parse_checked(d).map_err(|e| match e {
        DurationError::Empty => "empty duration string".to_owned(),
        DurationError::Invalid => format!("not a valid duration string: {}", gofmt::go_quote(d)),
        DurationError::UnknownUnit(u) => {
            format!("unknown unit {} in duration {}", gofmt::go_quote(&u), gofmt::go_quote(d))
        }
        DurationError::OutOfRange => "duration out of range".to_owned(),
    })?;
    Ok(ms.unsigned_abs() * 1_000_000)
}

fn strip_domain(host_port: &str) -> String {
    let (host, port) = gostd::split_host_port(host_port).unwrap_or((host_port, ""));
    if gostd::is_ip(host) {
        return host_port.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() { host.to_string() } else { gostd::join_host_port(host, port) }
}

pub(crate) fn func(f: impl Fn(&Call<'_>, &[Value]) -> Result<Value, FnError> + Send + Sync + 'static) -> GoFunc {
    Arc::new(f)
}

/// A `*template.sample` parameter; `Ok(None)` is a nil pointer.
fn sample_arg<'v>(c: &Call<'_>, args: &'v [Value], i: usize) -> Result<Option<&'v BTreeMap<Arc<str>, Value>>, FnError> {
    match &args[i] {
        Value::Nil => Ok(None),
        Value::Map(m) if c.reg().kind(&args[i]) == Some(Kind::Sample) => Ok(Some(m)),
        _ => Err(c.type_error(args, i, "*template.sample")),
    }
}

/// A `template.queryResult` parameter (nil is an empty result).
fn query_result_arg<'v>(c: &Call<'_>, args: &'v [Value], i: usize) -> Result<&'v [Value], FnError> {
    match &args[i] {
        Value::Nil => Ok(&[]),
        Value::List(l) if matches!(c.reg().kind(&args[i]), Some(Kind::QueryResult) | None) => Ok(l),
        _ => Err(c.type_error(args, i, "template.queryResult")),
    }
}

fn label_of(sample: &BTreeMap<Arc<str>, Value>, label: &str) -> Value {
    match sample.get("Labels") {
        Some(Value::Map(labels)) => labels.get(label).cloned().unwrap_or_else(|| s("")),
        _ => s(""),
    }
}

fn float_fn(name: &'static str, t: &mut FuncTable, f: fn(f64) -> Result<String, String>) {
    t.insert(
        name,
        func(move |c, a| {
            c.arity(a, 1, false)?;
            let v = convert_to_float(c.reg(), &a[0]).map_err(FnError::Call)?;
            f(v).map(s).map_err(FnError::Call)
        }),
    );
}

pub(crate) fn string_fn(name: &'static str, t: &mut FuncTable, f: fn(&str) -> String) {
    t.insert(
        name,
        func(move |c, a| {
            c.arity(a, 1, false)?;
            Ok(s(f(c.str_arg(a, 0)?)))
        }),
    );
}

/// The functions Prometheus's and Alertmanager's templates both have,
/// with the same Go implementation.
pub(crate) fn shared_functions(t: &mut FuncTable) {
    t.insert(
        "reReplaceAll",
        func(|c, a| {
            c.arity(a, 3, false)?;
            let (pattern, repl, text) = (c.str_arg(a, 0)?, c.str_arg(a, 1)?, c.str_arg(a, 2)?);
            let re = gostd::compile(pattern).map_err(|e| FnError::Call(gostd::must_compile_panic(pattern, &e)))?;
            Ok(s(gostd::replace_all(&re, text, repl)))
        }),
    );
    t.insert(
        "safeHtml",
        func(|c, a| {
            c.arity(a, 1, false)?;
            Ok(s(c.str_arg(a, 0)?))
        }),
    );
    t.insert(
        "match",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let (pattern, text) = (c.str_arg(a, 0)?, c.str_arg(a, 1)?);
            let re = gostd::compile(pattern).map_err(FnError::Call)?;
            Ok(Value::Bool(re.is_match(text)))
        }),
    );
    string_fn("toUpper", t, gostd::to_upper);
    string_fn("toLower", t, gostd::to_lower);
    float_fn("humanizeDuration", t, |v| Ok(humanize_duration(v)));
}

/// The functions of an alerting-rule template: Prometheus's, plus the Go
/// builtins that need Go's formatting.
fn function_table(env: Arc<Env>) -> FuncTable {
    let mut t = FuncTable::new();
    crate::builtins::register(&mut t);
    shared_functions(&mut t);
    // cases.Title(language.AmericanEnglish, cases.NoLower)
    string_fn("title", &mut t, gostd::title);

    let e = Arc::clone(&env);
    t.insert(
        "query",
        func(move |c, a| {
            c.arity(a, 1, false)?;
            let expr = c.str_arg(a, 0)?;
            let Some(tx) = &e.query else {
                return Err(FnError::Call(NIL_DEREFERENCE.into()));
            };
            let (reply, rx) = mpsc::channel();
            let sent = tx.send(QueryRequest { expr: expr.to_string(), at_ms: e.ts_ms, reply });
            let result = match sent {
                Ok(()) => rx.recv().map_err(|_| "query evaluation stopped".to_string()),
                Err(_) => Err("query evaluation stopped".to_string()),
            };
            let samples = result.and_then(|r| r).map_err(FnError::Call)?;
            let reg = c.reg();
            let items: Vec<Value> = samples
                .iter()
                .map(|smpl| {
                    let mut m = BTreeMap::new();
                    m.insert(Arc::from("Labels"), string_map(reg, &smpl.labels));
                    m.insert(Arc::from("Value"), Value::Float(smpl.value));
                    reg.tag(Value::Map(Arc::new(m)), Kind::Sample)
                })
                .collect();
            Ok(reg.tag(Value::List(items.into()), Kind::QueryResult))
        }),
    );
    t.insert(
        "first",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let v = query_result_arg(c, a, 0)?;
            v.first().cloned().ok_or_else(|| FnError::Call("first() called on vector with no elements".into()))
        }),
    );
    t.insert(
        "label",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let label = c.str_arg(a, 0)?;
            let sample = sample_arg(c, a, 1)?.ok_or_else(|| FnError::Call(NIL_DEREFERENCE.into()))?;
            Ok(label_of(sample, label))
        }),
    );
    t.insert(
        "value",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let sample = sample_arg(c, a, 0)?.ok_or_else(|| FnError::Call(NIL_DEREFERENCE.into()))?;
            Ok(sample.get("Value").cloned().unwrap_or(Value::Nil))
        }),
    );
    t.insert(
        "strvalue",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let sample = sample_arg(c, a, 0)?.ok_or_else(|| FnError::Call(NIL_DEREFERENCE.into()))?;
            Ok(label_of(sample, "__value__"))
        }),
    );
    t.insert(
        "args",
        func(|c, a| {
            let m: BTreeMap<Arc<str>, Value> =
                a.iter().enumerate().map(|(i, v)| (Arc::from(format!("arg{i}")), v.clone())).collect();
            Ok(c.reg().tag(Value::Map(Arc::new(m)), Kind::ArgsMap))
        }),
    );
    string_fn("graphLink", &mut t, |e| format!("/graph?g0.expr={}&g0.tab=0", gotmpl::url_encode(e)));
    string_fn("tableLink", &mut t, |e| format!("/graph?g0.expr={}&g0.tab=1", gotmpl::url_encode(e)));
    string_fn("stripPort", &mut t, |hp| gostd::split_host_port(hp).map_or(hp, |(h, _)| h).to_string());
    string_fn("stripDomain", &mut t, strip_domain);
    t.insert(
        "sortByLabel",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let label = c.str_arg(a, 0)?;
            let mut items = query_result_arg(c, a, 1)?.to_vec();
            let key = |v: &Value| match v {
                Value::Map(m) => label_of(m, label),
                _ => s(""),
            };
            items.sort_by(|x, y| key(x).as_str().cmp(&key(y).as_str()));
            Ok(c.reg().tag(Value::List(items.into()), Kind::QueryResult))
        }),
    );
    float_fn("humanize", &mut t, |v| Ok(humanize(v)));
    float_fn("humanize1024", &mut t, |v| Ok(humanize1024(v)));
    float_fn("humanizePercentage", &mut t, |v| Ok(format!("{}%", g4(v * 100.0))));
    float_fn("humanizeTimestamp", &mut t, humanize_timestamp);
    t.insert(
        "toTime",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let v = convert_to_float(c.reg(), &a[0]).map_err(FnError::Call)?;
            let ns = float_to_time(v).map_err(FnError::Call)?;
            Ok(time_value(c.reg(), ns))
        }),
    );
    let e = Arc::clone(&env);
    t.insert(
        "pathPrefix",
        func(move |c, a| {
            c.arity(a, 0, false)?;
            let url = e.external_url.as_deref().ok_or_else(|| FnError::Call(NIL_DEREFERENCE.into()))?;
            Ok(s(gostd::url_path(url)))
        }),
    );
    let e = env;
    t.insert(
        "externalURL",
        func(move |c, a| {
            c.arity(a, 0, false)?;
            let url = e.external_url.as_deref().ok_or_else(|| FnError::Call(NIL_DEREFERENCE.into()))?;
            Ok(s(url))
        }),
    );
    t.insert(
        "parseDuration",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let d = c.str_arg(a, 0)?;
            let ns = parse_model_duration(d).map_err(FnError::Call)?;
            Ok(Value::Float(ns as f64 / 1e9))
        }),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizers() {
        let h: Vec<String> = [0.0, 1.0, 1234567.0, 0.12, -1.0, i64::MAX as f64, 0.000123, -1e30].map(humanize).to_vec();
        assert_eq!(h, ["0", "1", "1.235M", "120m", "-1", "9.223E", "123u", "-1e+06Y"]);
        assert_eq!([f64::INFINITY, f64::NEG_INFINITY, f64::NAN].map(humanize), ["+Inf", "-Inf", "NaN"]);
        assert_eq!(
            [0.0, 1.0, 1048576.0, 0.12, 1234567.0, i64::MAX as f64].map(humanize1024),
            ["0", "1", "1Mi", "0.12", "1.177Mi", "8Ei"]
        );
        assert_eq!(
            [0.0, 1.0, 60.0, 3600.0, 86400.0, 90000.0, -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0), 899.99]
                .map(humanize_duration),
            ["0s", "1s", "1m 0s", "1h 0m 0s", "1d 0h 0m 0s", "1d 1h 0m 0s", "-2d 3h 4m 5s", "14m 59s"]
        );
        assert_eq!(
            [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345, 0.5, -1.0, 1234567.0].map(humanize_duration),
            ["100ms", "100us", "123.5ms", "1m 0s", "1m 0s", "1.234s", "12.35s", "500ms", "-1s", "14d 6h 56m 7s"]
        );
        assert_eq!(humanize_timestamp(1435065584.128), Ok("2015-06-23 13:19:44.128 +0000 UTC".into()));
        assert_eq!(humanize_timestamp(-1.0), Ok("1969-12-31 23:59:59 +0000 UTC".into()));
        assert_eq!(humanize_timestamp(f64::NAN), Ok("NaN".into()));
        assert_eq!(
            humanize_timestamp(1.8446744073709552e19),
            Err("1.8446744073709552e+19 cannot be represented as a nanoseconds timestamp since it overflows int64"
                .into())
        );
        assert_eq!(format!("{}%", g4(-0.22222 * 100.0)), "-22.22%");
        assert_eq!(format!("{}%", g4(1234567.0 * 100.0)), "1.235e+08%");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_model_duration("1h2m10ms"), Ok(3_720_010_000_000));
        assert_eq!(parse_model_duration("0"), Ok(0));
        assert_eq!(parse_model_duration("1d1w").err().as_deref(), Some("not a valid duration string: \"1d1w\""));
        assert_eq!(parse_model_duration("5x").err().as_deref(), Some("unknown unit \"x\" in duration \"5x\""));
        assert_eq!(parse_model_duration("").err().as_deref(), Some("empty duration string"));
        assert_eq!(parse_model_duration("1.5h").err().as_deref(), Some("unknown unit \".\" in duration \"1.5h\""));
        assert_eq!(parse_model_duration("h").err().as_deref(), Some("not a valid duration string: \"h\""));
    }

    #[test]
    fn host_helpers() {
        assert_eq!(strip_domain("foo.example.com:12345"), "foo:12345");
        assert_eq!(strip_domain("foo.example.com"), "foo");
        assert_eq!(strip_domain("192.0.2.1:12345"), "192.0.2.1:12345");
        assert_eq!(strip_domain("[2001:0DB8::1]:12345"), "[2001:0DB8::1]:12345");
        assert_eq!(strip_domain("2001:0DB8::1"), "2001:0DB8::1");
        assert_eq!(strip_domain("[2001:0DB8::1]::12345"), "[2001:0DB8::1]::12345");
    }

    #[test]
    fn conversions() {
        let reg = Registry::default();
        assert_eq!(convert_to_float(&reg, &"1.5".into()), Ok(1.5));
        assert_eq!(convert_to_float(&reg, &Value::Int(-3)), Ok(-3.0));
        assert_eq!(
            convert_to_float(&reg, &"one".into()),
            Err("strconv.ParseFloat: parsing \"one\": invalid syntax".into())
        );
        assert_eq!(convert_to_float(&reg, &Value::Bool(true)), Err("can't convert bool to float".into()));
        assert_eq!(convert_to_float(&reg, &Value::Nil), Err("can't convert <nil> to float".into()));
    }
}
