//! Go types of template values.
//!
//! gotmpl carries every value as a [`gotmpl::Value`]; Go's templates see
//! typed values, and the type decides what Go prints (`map[a:b]`,
//! `{map[] map[] url 1}`, `&{...}`, a `time.Time`'s `String()`), what a
//! missing map key yields (`""` from a `map[string]string` under
//! `missingkey=zero`, "no value" from a `map[string]interface{}`) and what
//! an error message names (`can't convert *template.sample to float`).
//!
//! The values Prometheus's templates build (the alert data, label maps,
//! query samples, `args` maps, `toTime` results) are tagged by the identity
//! of their shared allocation in a per-expansion [`Registry`], which keeps a
//! clone of each tagged value so that an address can never be reused by an
//! untagged value while the expansion runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use gotmpl::Value;

use crate::gotime::GoTime;

/// The Go type of a tagged composite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `map[string]string` (labels).
    StringMap,
    /// `map[string]interface {}` (the `args` function's result).
    ArgsMap,
    /// The anonymous struct of an alert's template data.
    AlertData,
    /// `*template.sample` (`{Labels, Value}`).
    Sample,
    /// `template.queryResult` (`[]*template.sample`).
    QueryResult,
    /// `*time.Time`.
    Time(GoTime),
    /// `time.Time` (a value, as Alertmanager's data and functions hold it).
    TimeValue(GoTime),
    /// `time.Duration`, in nanoseconds.
    Duration(i64),
    /// Alertmanager's `template.Data`.
    NotificationData,
    /// Alertmanager's `template.Alert`.
    NotificationAlert,
    /// Alertmanager's `template.Alerts` (with `Firing` and `Resolved`).
    Alerts,
    /// `[]template.Alert` (what `Firing` and `Resolved` return).
    AlertSlice,
    /// Alertmanager's `template.KV` (a `map[string]string` with methods).
    Kv,
    /// Alertmanager's `template.Pairs`.
    Pairs,
    /// Alertmanager's `template.Pair`.
    Pair,
    /// `[]string`.
    StringSlice,
    /// `*histogram.FloatHistogram` (an alert's native-histogram `$value`):
    /// its scalar fields, and `String` holding its `String()`.
    Histogram,
}

impl Kind {
    /// Go's `reflect.Type.String()` for the kind.
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            Kind::StringMap => "map[string]string",
            Kind::ArgsMap => "map[string]interface {}",
            Kind::AlertData => {
                "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"
            }
            Kind::Sample => "*template.sample",
            Kind::QueryResult => "template.queryResult",
            Kind::Time(_) => "*time.Time",
            Kind::TimeValue(_) => "time.Time",
            Kind::Duration(_) => "time.Duration",
            Kind::NotificationData => "template.Data",
            Kind::NotificationAlert => "template.Alert",
            Kind::Alerts => "template.Alerts",
            Kind::AlertSlice => "[]template.Alert",
            Kind::Kv => "template.KV",
            Kind::Pairs => "template.Pairs",
            Kind::Pair => "template.Pair",
            Kind::StringSlice => "[]string",
            Kind::Histogram => "*histogram.FloatHistogram",
        }
    }

    /// Field names of struct kinds, in declaration order.
    pub(crate) fn struct_fields(self) -> Option<&'static [&'static str]> {
        match self {
            Kind::AlertData => Some(&["Labels", "ExternalLabels", "ExternalURL", "Value"]),
            Kind::Sample => Some(&["Labels", "Value"]),
            Kind::NotificationData => Some(&[
                "Receiver",
                "Status",
                "Alerts",
                "NotificationReason",
                "GroupLabels",
                "CommonLabels",
                "CommonAnnotations",
                "ExternalURL",
            ]),
            Kind::NotificationAlert => {
                Some(&["Status", "Labels", "Annotations", "StartsAt", "EndsAt", "GeneratorURL", "Fingerprint"])
            }
            Kind::Pair => Some(&["Name", "Value"]),
            Kind::Histogram => Some(&["Schema", "ZeroThreshold", "ZeroCount", "Count", "Sum", "String"]),
            _ => None,
        }
    }

    /// The time of `*time.Time` and `time.Time` values.
    pub(crate) fn time(self) -> Option<GoTime> {
        match self {
            Kind::Time(t) | Kind::TimeValue(t) => Some(t),
            _ => None,
        }
    }

    /// Maps whose missing keys read as `""` (`map[string]string` types).
    pub(crate) fn is_string_map(self) -> bool {
        matches!(self, Kind::StringMap | Kind::Kv)
    }
}

/// Answers "what Go type is this value?".
pub(crate) trait Types {
    /// The kind of a tagged composite, `None` for scalars and untagged values.
    fn kind(&self, v: &Value) -> Option<Kind>;
}

/// No tagged values: maps are `map[string]interface {}`, lists `[]interface {}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Untyped;

impl Types for Untyped {
    fn kind(&self, _: &Value) -> Option<Kind> {
        None
    }
}

/// The identity of a value's shared allocation, if it has one.
pub(crate) fn identity(v: &Value) -> Option<usize> {
    match v {
        Value::Map(m) => Some(Arc::as_ptr(m) as *const () as usize),
        Value::List(l) => Some(Arc::as_ptr(l) as *const () as usize),
        _ => None,
    }
}

/// Per-expansion type tags.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    tags: Mutex<HashMap<usize, (Kind, Value)>>,
}

impl Registry {
    /// Tags `v` (a map or list) with `kind` and returns it.
    pub(crate) fn tag(&self, v: Value, kind: Kind) -> Value {
        if let Some(id) = identity(&v) {
            self.tags.lock().unwrap_or_else(PoisonError::into_inner).insert(id, (kind, v.clone()));
        }
        v
    }
}

impl Types for Registry {
    fn kind(&self, v: &Value) -> Option<Kind> {
        let id = identity(v)?;
        self.tags.lock().unwrap_or_else(PoisonError::into_inner).get(&id).map(|(k, _)| *k)
    }
}

/// Go's type name of any value.
pub(crate) fn type_name(types: &dyn Types, v: &Value) -> String {
    if let Some(k) = types.kind(v) {
        return k.go_type().to_string();
    }
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Function(_) => "func(...interface {}) (interface {}, error)",
    }
    .to_string()
}

/// Builds a `map[string]string` value.
pub(crate) fn string_map<'a>(reg: &Registry, entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    let map: std::collections::BTreeMap<Arc<str>, Value> =
        entries.into_iter().map(|(k, v)| (Arc::from(k.as_str()), Value::String(Arc::from(v.as_str())))).collect();
    reg.tag(Value::Map(Arc::new(map)), Kind::StringMap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_clones_not_equal_values() {
        let reg = Registry::default();
        let tagged = reg.tag(empty_map(), Kind::StringMap);
        assert_eq!(reg.kind(&tagged), Some(Kind::StringMap));
        assert_eq!(reg.kind(&tagged.clone()), Some(Kind::StringMap));
        let other = empty_map();
        assert_eq!(reg.kind(&other), None);
        assert_eq!(type_name(&reg, &other), "map[string]interface {}");
        assert_eq!(type_name(&reg, &tagged), "map[string]string");
        assert_eq!(type_name(&reg, &Value::Float(1.0)), "float64");
    }

    fn empty_map() -> Value {
        Value::Map(Arc::new(std::collections::BTreeMap::new()))
    }
}
