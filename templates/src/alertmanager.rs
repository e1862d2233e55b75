//! Alertmanager's notification templates (`template/template.go` of
//! Alertmanager 0.33): its function map, its data (`template.Data` with
//! `Alerts`, `KV` and `Pairs` and their methods) and its default templates
//! (`default.tmpl`, `email.tmpl`, shipped in `templates/alertmanager/`),
//! executed as `Template.ExecuteTextString` does.
//!
//! A [`NotificationTemplates`] is what `template.FromGlobs` builds: the
//! default templates parsed first, then each user template file in turn
//! (a later definition of a name replaces an earlier one, as Go's
//! successive `Parse` calls do). [`NotificationTemplates::execute_text`]
//! parses the text as a template named `""` over that set and runs it with
//! [`NotificationData`] as dot.
//!
//! Only `text/template` is reproduced: `html/template`'s contextual escaping
//! (what Alertmanager uses for `email.default.html` and other `html`
//! fields) is not.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::Value;
use serde::{Deserialize, Deserializer, Serialize};

use crate::exec::{Call, FnError, FuncTable, Program, Unit, time_val};
use crate::gofmt::{self, go_quote};
use crate::gotime::{self, GoTime};
use crate::parser::{self, TreeSet};
use crate::prometheus::{func, s, shared_functions, string_fn};
use crate::types::{Kind, Registry, Types, type_name};

/// Alertmanager's built-in `default.tmpl`.
pub const DEFAULT_TMPL: &str = include_str!("../alertmanager/default.tmpl");
/// Alertmanager's built-in `email.tmpl`.
pub const EMAIL_TMPL: &str = include_str!("../alertmanager/email.tmpl");

/// The functions Alertmanager adds to Go's builtins (`DefaultFuncs`).
pub const ALERTMANAGER_FUNCTIONS: &[&str] = &[
    "toUpper",
    "toLower",
    "title",
    "trimSpace",
    "join",
    "match",
    "safeHtml",
    "safeUrl",
    "urlUnescape",
    "reReplaceAll",
    "stringSlice",
    "date",
    "tz",
    "now",
    "since",
    "humanizeDuration",
    "toJson",
    "list",
    "append",
    "dict",
];

fn is_defined(name: &str) -> bool {
    ALERTMANAGER_FUNCTIONS.contains(&name) || crate::check::GO_BUILTINS.contains(&name)
}

/// A time in notification data: an instant and its UTC offset, as Go's
/// `time.Time` decoded from RFC 3339 holds it.
pub type NotificationTime = chrono::DateTime<chrono::FixedOffset>;

/// Go's zero `time.Time`, 0001-01-01T00:00:00Z.
#[must_use]
pub fn zero_time() -> NotificationTime {
    chrono::DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or_default().fixed_offset()
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<NotificationTime, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(zero_time()),
        Some(s) => chrono::DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom),
    }
}

fn de_kv<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

fn de_str<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Alertmanager's `template.Data`: what a notification's templates see as
/// dot. Its JSON form (serde) is Alertmanager's, as `amtool template
/// render --template.data` reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct NotificationData {
    #[serde(default, deserialize_with = "de_str")]
    pub receiver: String,
    #[serde(default, deserialize_with = "de_str")]
    pub status: String,
    #[serde(default, deserialize_with = "de_alerts")]
    pub alerts: Vec<NotificationAlert>,
    #[serde(default, rename = "notification_reason", deserialize_with = "de_str")]
    pub notification_reason: String,
    #[serde(default, rename = "groupLabels", deserialize_with = "de_kv")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonLabels", deserialize_with = "de_kv")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonAnnotations", deserialize_with = "de_kv")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL", deserialize_with = "de_str")]
    pub external_url: String,
}

fn de_alerts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NotificationAlert>, D::Error> {
    Ok(Option::<Vec<NotificationAlert>>::deserialize(d)?.unwrap_or_default())
}

/// Alertmanager's `template.Alert`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NotificationAlert {
    #[serde(default, deserialize_with = "de_str")]
    pub status: String,
    #[serde(default, deserialize_with = "de_kv")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "de_kv")]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default = "zero_time", deserialize_with = "de_time", serialize_with = "ser_time")]
    pub starts_at: NotificationTime,
    #[serde(rename = "endsAt", default = "zero_time", deserialize_with = "de_time", serialize_with = "ser_time")]
    pub ends_at: NotificationTime,
    #[serde(rename = "generatorURL", default, deserialize_with = "de_str")]
    pub generator_url: String,
    #[serde(default, deserialize_with = "de_str")]
    pub fingerprint: String,
}

fn ser_time<S: serde::Serializer>(t: &NotificationTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&gotime::rfc3339_nano(GoTime::from_fixed(t)))
}

/// Parsed notification templates: Alertmanager's defaults and the user's
/// template files, ready to execute texts over.
#[derive(Debug, Clone)]
pub struct NotificationTemplates {
    units: Vec<ParsedUnit>,
}

#[derive(Debug, Clone)]
struct ParsedUnit {
    parse_name: String,
    text: String,
    set: TreeSet,
}

impl NotificationTemplates {
    /// Alertmanager's default templates only.
    #[must_use]
    pub fn defaults() -> NotificationTemplates {
        // The shipped files parse (a unit test checks it); an error here
        // would leave the set without them rather than fail.
        let units = [DEFAULT_TMPL, EMAIL_TMPL]
            .into_iter()
            .filter_map(|text| {
                // template.FromGlobs parses the defaults into the root template, named "".
                let set = parser::parse("", text, &is_defined).ok()?;
                Some(ParsedUnit { parse_name: String::new(), text: text.to_string(), set })
            })
            .collect();
        NotificationTemplates { units }
    }

    /// The defaults, then each `(file name, text)` in turn, as
    /// `template.FromGlobs` parses them (a file is named by its base name).
    ///
    /// # Errors
    ///
    /// Go's parse error of the first file that fails, e.g. `template:
    /// my.tmpl:3: function "foo" not defined`.
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<NotificationTemplates, String> {
        let mut t = NotificationTemplates::defaults();
        for (name, text) in files {
            let base = name.rsplit('/').next().unwrap_or(name);
            let set = parser::parse(base, text, &is_defined)?;
            t.units.push(ParsedUnit { parse_name: base.to_string(), text: text.to_string(), set });
        }
        Ok(t)
    }

    /// Parses `text` as a bare Go template named `""` (Go's builtin
    /// functions only): what Alertmanager's configuration check does with a
    /// templated webhook URL.
    ///
    /// # Errors
    /// Go's parse error, e.g. `template: :1: unclosed action`.
    pub fn check_bare_text(text: &str) -> Result<(), String> {
        parser::parse("", text, &|f| crate::check::GO_BUILTINS.contains(&f)).map(|_| ())
    }

    /// Whether a template of this name is defined.
    #[must_use]
    pub fn is_defined(&self, name: &str) -> bool {
        self.units.iter().any(|u| u.set.trees.iter().any(|(n, _)| n == name))
    }

    /// `Template.ExecuteTextString`: `text` parsed as a template named `""`
    /// over this set, executed with `data` as dot. A text without actions
    /// (no `{{`) renders as itself without being parsed, as Go's would.
    ///
    /// # Errors
    ///
    /// Go's parse or execution error text, e.g. `template: :1:3: executing
    /// "" at <.Foo>: can't evaluate field Foo in type template.Data`.
    pub fn execute_text(&self, text: &str, data: &NotificationData) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        let set = parser::parse("", text, &is_defined)?;
        let mut units: Vec<Unit<'_>> =
            self.units.iter().map(|u| Unit { parse_name: &u.parse_name, text: &u.text, set: &u.set }).collect();
        units.push(Unit { parse_name: "", text, set: &set });
        let program = Program::from_units("", &units, &function_table());
        let dot = data_value(program.registry(), data);
        program.execute(&dot)
    }
}

fn kv_value(reg: &Registry, kv: &BTreeMap<String, String>) -> Value {
    let m: BTreeMap<Arc<str>, Value> =
        kv.iter().map(|(k, v)| (Arc::from(k.as_str()), Value::String(Arc::from(v.as_str())))).collect();
    reg.tag(Value::Map(Arc::new(m)), Kind::Kv)
}

fn data_value(reg: &Registry, d: &NotificationData) -> Value {
    let alerts: Vec<Value> = d.alerts.iter().map(|a| alert_value(reg, a)).collect();
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Receiver"), s(d.receiver.as_str()));
    m.insert(Arc::from("Status"), s(d.status.as_str()));
    m.insert(Arc::from("Alerts"), reg.tag(Value::List(alerts.into()), Kind::Alerts));
    m.insert(Arc::from("NotificationReason"), s(d.notification_reason.as_str()));
    m.insert(Arc::from("GroupLabels"), kv_value(reg, &d.group_labels));
    m.insert(Arc::from("CommonLabels"), kv_value(reg, &d.common_labels));
    m.insert(Arc::from("CommonAnnotations"), kv_value(reg, &d.common_annotations));
    m.insert(Arc::from("ExternalURL"), s(d.external_url.as_str()));
    reg.tag(Value::Map(Arc::new(m)), Kind::NotificationData)
}

fn alert_value(reg: &Registry, a: &NotificationAlert) -> Value {
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Status"), s(a.status.as_str()));
    m.insert(Arc::from("Labels"), kv_value(reg, &a.labels));
    m.insert(Arc::from("Annotations"), kv_value(reg, &a.annotations));
    m.insert(Arc::from("StartsAt"), time_val(reg, GoTime::from_fixed(&a.starts_at)));
    m.insert(Arc::from("EndsAt"), time_val(reg, GoTime::from_fixed(&a.ends_at)));
    m.insert(Arc::from("GeneratorURL"), s(a.generator_url.as_str()));
    m.insert(Arc::from("Fingerprint"), s(a.fingerprint.as_str()));
    reg.tag(Value::Map(Arc::new(m)), Kind::NotificationAlert)
}

/// `KV.SortedPairs`: `alertname` first, then the other names sorted.
fn sorted_pairs(m: &BTreeMap<Arc<str>, Value>) -> Vec<(Arc<str>, Value)> {
    let mut pairs: Vec<(Arc<str>, Value)> = Vec::with_capacity(m.len());
    if let Some(v) = m.get("alertname") {
        pairs.push((Arc::from("alertname"), v.clone()));
    }
    pairs.extend(m.iter().filter(|(k, _)| k.as_ref() != "alertname").map(|(k, v)| (k.clone(), v.clone())));
    pairs
}

fn value_str(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        _ => "",
    }
}

fn pairs_string(pairs: impl Iterator<Item = (String, String)>) -> String {
    pairs.map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// The `String()` of a `KV` or `Pairs` value.
pub(crate) fn stringer(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Kv, Value::Map(m)) => {
            pairs_string(sorted_pairs(m).into_iter().map(|(k, v)| (k.to_string(), value_str(&v).to_string())))
        }
        (Kind::Pairs, Value::List(items)) => pairs_string(items.iter().map(|p| match p {
            Value::Map(m) => (
                m.get("Name").map(value_str).unwrap_or_default().to_string(),
                m.get("Value").map(value_str).unwrap_or_default().to_string(),
            ),
            _ => (String::new(), String::new()),
        })),
        _ => String::new(),
    }
}

fn string_slice(reg: &Registry, items: impl IntoIterator<Item = Value>) -> Value {
    reg.tag(Value::List(items.into_iter().collect::<Vec<_>>().into()), Kind::StringSlice)
}

fn pairs_value(reg: &Registry, m: &BTreeMap<Arc<str>, Value>) -> Value {
    let items: Vec<Value> = sorted_pairs(m)
        .into_iter()
        .map(|(k, v)| {
            let mut p = BTreeMap::new();
            p.insert(Arc::from("Name"), Value::String(k));
            p.insert(Arc::from("Value"), v);
            reg.tag(Value::Map(Arc::new(p)), Kind::Pair)
        })
        .collect();
    reg.tag(Value::List(items.into()), Kind::Pairs)
}

fn pair_field(p: &Value, field: &str) -> Value {
    match p {
        Value::Map(m) => m.get(field).cloned().unwrap_or(Value::Nil),
        _ => Value::Nil,
    }
}

/// A `[]string` argument (nil is an empty slice).
fn string_slice_arg<'v>(c: &Call<'_>, args: &'v [Value], i: usize) -> Result<Vec<&'v str>, FnError> {
    match &args[i] {
        Value::Nil => Ok(Vec::new()),
        Value::List(items) if c.reg().kind(&args[i]) == Some(Kind::StringSlice) => {
            Ok(items.iter().map(value_str).collect())
        }
        _ => Err(c.type_error(args, i, "[]string")),
    }
}

/// Methods of Alertmanager's data types (`KV`, `Pairs`, `Alerts`); `None`
/// when `kind` has no method `name` (a field or map key is looked up).
pub(crate) fn call_method(
    c: &Call<'_>,
    kind: Kind,
    receiver: &Value,
    name: &str,
    args: &[Value],
) -> Option<Result<Value, FnError>> {
    let want = |n: usize| -> Result<(), FnError> {
        if args.len() != n {
            return Err(FnError::Exec(format!("wrong number of args for {name}: want {n} got {}", args.len())));
        }
        Ok(())
    };
    let reg = c.reg();
    let empty = BTreeMap::new();
    let r = match (kind, name) {
        (Kind::Kv, "SortedPairs" | "Names" | "Values" | "String" | "Remove") => {
            let m = match receiver {
                Value::Map(m) => m.as_ref(),
                _ => &empty,
            };
            match name {
                "SortedPairs" => want(0).map(|()| pairs_value(reg, m)),
                "Names" => {
                    want(0).map(|()| string_slice(reg, sorted_pairs(m).into_iter().map(|(k, _)| Value::String(k))))
                }
                "Values" => want(0).map(|()| string_slice(reg, sorted_pairs(m).into_iter().map(|(_, v)| v))),
                "String" => want(0).map(|()| s(stringer(Kind::Kv, receiver))),
                _ => want(1).and_then(|()| {
                    let drop = string_slice_arg(c, args, 0)?;
                    let kept: BTreeMap<Arc<str>, Value> = m
                        .iter()
                        .filter(|(k, _)| !drop.contains(&k.as_ref()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Ok(reg.tag(Value::Map(Arc::new(kept)), Kind::Kv))
                }),
            }
        }
        (Kind::Pairs, "Names" | "Values" | "String") => {
            let items: &[Value] = match receiver {
                Value::List(l) => l,
                _ => &[],
            };
            match name {
                "Names" => want(0).map(|()| string_slice(reg, items.iter().map(|p| pair_field(p, "Name")))),
                "Values" => want(0).map(|()| string_slice(reg, items.iter().map(|p| pair_field(p, "Value")))),
                _ => want(0).map(|()| s(stringer(Kind::Pairs, receiver))),
            }
        }
        (Kind::Alerts, "Firing" | "Resolved") => want(0).map(|()| {
            let status = if name == "Firing" { "firing" } else { "resolved" };
            let items: Vec<Value> = match receiver {
                Value::List(l) => l
                    .iter()
                    .filter(|a| matches!(a, Value::Map(m) if m.get("Status").map(value_str) == Some(status)))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            reg.tag(Value::List(items.into()), Kind::AlertSlice)
        }),
        (Kind::Duration(d), _) => match name {
            "String" => want(0).map(|()| s(gotime::duration_string(d))),
            "Seconds" => want(0).map(|()| Value::Float(gotime::duration_in(d, 1_000_000_000))),
            "Minutes" => want(0).map(|()| Value::Float(gotime::duration_in(d, 60_000_000_000))),
            "Hours" => want(0).map(|()| Value::Float(gotime::duration_in(d, 3_600_000_000_000))),
            "Milliseconds" => want(0).map(|()| Value::Int(d / 1_000_000)),
            "Microseconds" => want(0).map(|()| Value::Int(d / 1_000)),
            "Nanoseconds" => want(0).map(|()| Value::Int(d)),
            _ => return None,
        },
        _ => return None,
    };
    Some(r)
}

/// A `time.Time` parameter.
fn time_arg(c: &Call<'_>, args: &[Value], i: usize) -> Result<GoTime, FnError> {
    match c.reg().kind(&args[i]) {
        Some(Kind::TimeValue(t)) => Ok(t),
        _ => Err(c.type_error(args, i, "time.Time")),
    }
}

fn now() -> GoTime {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    GoTime { secs: d.as_secs() as i64, nanos: d.subsec_nanos(), offset: 0, zone: "UTC" }
}

fn duration_value(reg: &Registry, d: i64) -> Value {
    reg.tag(Value::Map(Arc::new(BTreeMap::new())), Kind::Duration(d))
}

/// Alertmanager's `DefaultFuncs` with Go's builtins.
fn function_table() -> FuncTable {
    let mut t = FuncTable::new();
    crate::builtins::register(&mut t);
    shared_functions(&mut t);
    // cases.Title(language.AmericanEnglish): the rest of each word lowered.
    string_fn("title", &mut t, |x| crate::gostd::title(&crate::gostd::to_lower(x)));
    string_fn("trimSpace", &mut t, |x| x.trim_matches(char::is_whitespace).to_string());
    t.insert(
        "join",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let sep = c.str_arg(a, 0)?;
            Ok(s(string_slice_arg(c, a, 1)?.join(sep)))
        }),
    );
    t.insert(
        "safeUrl",
        func(|c, a| {
            c.arity(a, 1, false)?;
            Ok(s(c.str_arg(a, 0)?))
        }),
    );
    t.insert(
        "urlUnescape",
        func(|c, a| {
            c.arity(a, 1, false)?;
            query_unescape(c.str_arg(a, 0)?).map(s).map_err(FnError::Call)
        }),
    );
    t.insert(
        "stringSlice",
        func(|c, a| {
            for i in 0..a.len() {
                c.str_arg(a, i)?;
            }
            Ok(string_slice(c.reg(), a.iter().cloned()))
        }),
    );
    t.insert(
        "date",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let layout = c.str_arg(a, 0)?;
            Ok(s(gotime::format(time_arg(c, a, 1)?, layout)))
        }),
    );
    t.insert(
        "tz",
        func(|c, a| {
            c.arity(a, 2, false)?;
            let name = c.str_arg(a, 0)?;
            let t = time_arg(c, a, 1)?;
            let z = t.in_zone(name).map_err(FnError::Call)?;
            Ok(time_val(c.reg(), z))
        }),
    );
    t.insert(
        "now",
        func(|c, a| {
            c.arity(a, 0, false)?;
            Ok(time_val(c.reg(), now()))
        }),
    );
    t.insert(
        "since",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let t = time_arg(c, a, 0)?;
            Ok(duration_value(c.reg(), now().sub(t)))
        }),
    );
    t.insert(
        "toJson",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let mut out = String::new();
            to_json(c.reg(), &a[0], &mut out).map_err(FnError::Call)?;
            Ok(s(out))
        }),
    );
    t.insert("list", func(|_, a| Ok(Value::List(a.to_vec().into()))));
    t.insert(
        "append",
        func(|c, a| {
            c.arity(a, 1, true)?;
            let mut items = match &a[0] {
                Value::Nil => Vec::new(),
                Value::List(l) if c.reg().kind(&a[0]).is_none() => l.to_vec(),
                _ => return Err(c.type_error(a, 0, "[]interface {}")),
            };
            items.extend(a[1..].iter().cloned());
            Ok(Value::List(items.into()))
        }),
    );
    t.insert(
        "dict",
        func(|_, a| {
            if a.len() % 2 != 0 {
                return Err(FnError::Call("dict requires an even number of arguments".into()));
            }
            let mut m = BTreeMap::new();
            for kv in a.chunks(2) {
                let Value::String(k) = &kv[0] else {
                    return Err(FnError::Call("dict keys must be strings".into()));
                };
                m.insert(k.clone(), kv[1].clone());
            }
            Ok(Value::Map(Arc::new(m)))
        }),
    );
    t
}

/// Go's `url.QueryUnescape`.
fn query_unescape(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => {
                        let end = (i + 3).min(b.len());
                        let bad = String::from_utf8_lossy(&b[i..end]);
                        return Err(format!("invalid URL escape {}", go_quote(&bad)));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `encoding/json` string encoding (HTML-safe, as `json.Marshal`).
fn json_string(v: &str, out: &mut String) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `encoding/json` float encoding.
fn json_float(f: f64, out: &mut String) -> Result<(), String> {
    if f.is_nan() || f.is_infinite() {
        return Err(format!("json: unsupported value: {}", gofmt::float_v(f)));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = gofmt::format_float(f, 'e', -1);
        // Go's clean-up: e-07 → e-7.
        let cleaned = match e.find("e-0").or_else(|| e.find("e+0")) {
            Some(i) if e.len() == i + 4 => format!("{}{}", &e[..i + 2], &e[i + 3..]),
            _ => e,
        };
        out.push_str(&cleaned);
    } else {
        out.push_str(&gofmt::format_float(f, 'f', -1));
    }
    Ok(())
}

/// `json.Marshal` of a template value, with Alertmanager's JSON field
/// names for its data types.
fn to_json(reg: &Registry, v: &Value, out: &mut String) -> Result<(), String> {
    let kind = reg.kind(v);
    match (v, kind) {
        (Value::Nil, _) => out.push_str("null"),
        (Value::Bool(b), _) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Int(i), _) => out.push_str(&i.to_string()),
        (Value::Uint(u), _) => out.push_str(&u.to_string()),
        (Value::Float(f), _) => json_float(*f, out)?,
        (Value::String(x), _) => json_string(x, out),
        (Value::Function(_), _) => return Err(format!("json: unsupported type: {}", type_name(reg, v))),
        (Value::Map(_), Some(Kind::Time(t) | Kind::TimeValue(t))) => {
            if !(-62_135_596_800..253_402_300_800).contains(&t.secs) {
                return Err("json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: year outside of range [0,9999]".into());
            }
            json_string(&gotime::rfc3339_nano(t), out);
        }
        (Value::Map(_), Some(Kind::Duration(d))) => out.push_str(&d.to_string()),
        (Value::Map(m), Some(k)) if k.struct_fields().is_some() => {
            let names: &[(&str, &str)] = match k {
                Kind::NotificationData => &[
                    ("Receiver", "receiver"),
                    ("Status", "status"),
                    ("Alerts", "alerts"),
                    ("NotificationReason", "notification_reason"),
                    ("GroupLabels", "groupLabels"),
                    ("CommonLabels", "commonLabels"),
                    ("CommonAnnotations", "commonAnnotations"),
                    ("ExternalURL", "externalURL"),
                ],
                Kind::NotificationAlert => &[
                    ("Status", "status"),
                    ("Labels", "labels"),
                    ("Annotations", "annotations"),
                    ("StartsAt", "startsAt"),
                    ("EndsAt", "endsAt"),
                    ("GeneratorURL", "generatorURL"),
                    ("Fingerprint", "fingerprint"),
                ],
                _ => &[],
            };
            out.push('{');
            let fields = k.struct_fields().unwrap_or(&[]);
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = names.iter().find(|(n, _)| n == f).map_or(*f, |(_, j)| j);
                json_string(key, out);
                out.push(':');
                to_json(reg, m.get(*f).unwrap_or(&Value::Nil), out)?;
            }
            out.push('}');
        }
        (Value::Map(m), _) => {
            out.push('{');
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                to_json(reg, val, out)?;
            }
            out.push('}');
        }
        (Value::List(items), _) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(reg, item, out)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> NotificationData {
        serde_json::from_str(
            r#"{"receiver":"team-x","status":"firing","alerts":[
                {"status":"firing","labels":{"alertname":"High","zone":"a","instance":"h1"},"annotations":{"summary":"s1"},
                 "startsAt":"2024-05-01T10:00:00.5Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://g/1","fingerprint":"f1"},
                {"status":"resolved","labels":{"alertname":"High","zone":"b"},"annotations":{},
                 "startsAt":"2024-05-01T09:00:00+02:00","endsAt":"2024-05-01T10:00:00Z","fingerprint":"f2"}],
              "groupLabels":{"alertname":"High"},"commonLabels":{"alertname":"High"},"commonAnnotations":{},
              "externalURL":"http://am:9093"}"#,
        )
        .unwrap()
    }

    fn render(text: &str) -> Result<String, String> {
        NotificationTemplates::defaults().execute_text(text, &data())
    }

    #[test]
    fn defaults_parse() {
        for text in [DEFAULT_TMPL, EMAIL_TMPL] {
            parser::parse("", text, &is_defined).unwrap();
        }
        let t = NotificationTemplates::defaults();
        assert!(t.is_defined("slack.default.title") && t.is_defined("email.default.html"));
    }

    #[test]
    fn data_methods() {
        assert_eq!(render("{{ .CommonLabels.SortedPairs }}").unwrap(), "alertname=High");
        assert_eq!(render("{{ range .CommonLabels.SortedPairs }}{{ . }}{{ end }}").unwrap(), "{alertname High}");
        assert_eq!(render("{{ (index .Alerts 0).Labels }}").unwrap(), "alertname=High, instance=h1, zone=a");
        assert_eq!(render("{{ (index .Alerts 0).Labels.Names | join \",\" }}").unwrap(), "alertname,instance,zone");
        assert_eq!(render("{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}").unwrap(), "1/1");
        assert_eq!(
            render("{{ ((index .Alerts 0).Labels.Remove (stringSlice \"zone\")).String }}").unwrap(),
            "alertname=High, instance=h1"
        );
        assert_eq!(render("{{ (index .Alerts 0).Labels.nope }}|").unwrap(), "|");
        assert_eq!(render("{{ template \"slack.default.title\" . }}").unwrap(), "[FIRING:1] High ");
        assert!(render("{{ .Alerts.Firing.Firing }}").unwrap_err().contains("in type []template.Alert"));
    }

    #[test]
    fn times_and_functions() {
        assert_eq!(render("{{ (index .Alerts 1).StartsAt }}").unwrap(), "2024-05-01 09:00:00 +0200 +0200");
        assert_eq!(render("{{ (index .Alerts 0).EndsAt.IsZero }}").unwrap(), "true");
        assert_eq!(
            render("{{ (index .Alerts 0).StartsAt | tz \"Europe/Paris\" | date \"15:04:05.000 MST\" }}").unwrap(),
            "12:00:00.500 CEST"
        );
        assert_eq!(
            render("{{ toJson (index .Alerts 0).Labels }}").unwrap(),
            r#"{"alertname":"High","instance":"h1","zone":"a"}"#
        );
        assert_eq!(
            render("{{ toJson (dict \"a\" 1.5e-7 \"b\" (list 1 \"<x>\")) }}").unwrap(),
            r#"{"a":1.5e-7,"b":[1,"\u003cx\u003e"]}"#
        );
        assert_eq!(render("{{ urlUnescape \"a%20b+c\" }}").unwrap(), "a b c");
        assert_eq!(render("{{ trimSpace \"  x \" }}").unwrap(), "x");
        assert!(render("{{ join \",\" (list 1) }}").unwrap_err().contains("expected []string; got []interface {}"));
        assert_eq!(render("{{ humanizeDuration 90 }}").unwrap(), "1m 30s");
        assert_eq!(render("{{ title \"CRITICAL disk\" }}").unwrap(), "Critical Disk");
    }
}
