//! Go's `text/template` builtins whose gotmpl versions differ from Go for
//! Prometheus's values: the `fmt` family (float formatting, Go types),
//! comparisons (Go's kinds and messages, NaN ordering), `index` and `len`
//! (label maps, structs), `not`, and the escapers (their `fmt.Sprint` of
//! non-string arguments). `and`, `or`, `call` and `slice` are gotmpl's own.

use std::sync::Arc;

use gotmpl::Value;

use crate::exec::{Call, FnError, FuncTable, GoFunc};
use crate::gofmt;
use crate::types::{Kind, Types, type_name};

fn s(v: String) -> Value {
    Value::String(Arc::from(v))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BasicKind {
    Bool,
    Int,
    Uint,
    Float,
    String,
}

fn basic_kind(v: &Value) -> Option<BasicKind> {
    match v {
        Value::Bool(_) => Some(BasicKind::Bool),
        Value::Int(_) => Some(BasicKind::Int),
        Value::Uint(_) => Some(BasicKind::Uint),
        Value::Float(_) => Some(BasicKind::Float),
        Value::String(_) => Some(BasicKind::String),
        _ => None,
    }
}

const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

/// Go's error for comparing values of different basic kinds.
fn bad_comparison(types: &dyn Types, a: &Value, b: &Value) -> String {
    format!("incompatible types for comparison: {} and {}", type_name(types, a), type_name(types, b))
}

fn int_uint_eq(i: i64, u: u64) -> bool {
    i >= 0 && i as u64 == u
}

/// Go's `eq arg1 arg2...`.
fn eq(types: &dyn Types, a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            match (a, b) {
                (Value::Int(i), Value::Uint(u)) | (Value::Uint(u), Value::Int(i)) => int_uint_eq(*i, *u),
                _ => {
                    if !matches!(a, Value::Nil) && !matches!(b, Value::Nil) {
                        return Err(bad_comparison(types, a, b));
                    }
                    false
                }
            }
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Uint(x), Value::Uint(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                (Value::Nil, _) | (_, Value::Nil) => matches!(a, Value::Nil) == matches!(b, Value::Nil),
                _ => {
                    let pointers = |v: &Value| matches!(types.kind(v), Some(Kind::Sample | Kind::Time(_)));
                    if pointers(a) && pointers(b) {
                        crate::types::identity(a) == crate::types::identity(b)
                    } else {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            gofmt::sprint1(types, b),
                            type_name(types, b)
                        ));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt a b`.
fn lt(types: &dyn Types, a: &Value, b: &Value) -> Result<bool, String> {
    let k1 = basic_kind(a).ok_or(BAD_COMPARISON_TYPE)?;
    let k2 = basic_kind(b).ok_or(BAD_COMPARISON_TYPE)?;
    if k1 != k2 {
        return match (a, b) {
            (Value::Int(i), Value::Uint(u)) => Ok(*i < 0 || (*i as u64) < *u),
            (Value::Uint(u), Value::Int(i)) => Ok(*i >= 0 && *u < *i as u64),
            _ => Err(bad_comparison(types, a, b)),
        };
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Uint(x), Value::Uint(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.into()),
    })
}

fn le(types: &dyn Types, a: &Value, b: &Value) -> Result<bool, String> {
    if lt(types, a, b)? {
        return Ok(true);
    }
    eq(types, a, std::slice::from_ref(b))
}

/// `reflect.Value.Type()` of what `indirect` reaches (pointers dereferenced).
fn elem_type(types: &dyn Types, v: &Value) -> String {
    match types.kind(v) {
        Some(Kind::Sample) => "template.sample".into(),
        Some(Kind::Time(_)) => "time.Time".into(),
        _ => type_name(types, v),
    }
}

/// Go's `index item indexes...`.
fn index(types: &dyn Types, item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    let mut item = item.clone();
    for idx in indexes {
        let kind = types.kind(&item);
        item = match (&item, kind) {
            (Value::Nil, _) => return Err("index of nil pointer".into()),
            (Value::List(_) | Value::String(_), _) => {
                let len = item.len().unwrap_or(0);
                let x: i64 = match idx {
                    Value::Int(i) => *i,
                    Value::Uint(u) => *u as i64,
                    Value::Nil => return Err("cannot index slice/array with nil".into()),
                    other => return Err(format!("cannot index slice/array with type {}", type_name(types, other))),
                };
                if x < 0 || x as u64 > len as u64 {
                    return Err(format!("index out of range: {x}"));
                }
                if x as usize == len {
                    let what = if matches!(item, Value::String(_)) { "string" } else { "slice" };
                    return Err(format!("reflect: {what} index out of range"));
                }
                item.index(&Value::Int(x)).map_err(|e| e.to_string())?
            }
            (Value::Map(m), None | Some(Kind::StringMap | Kind::ArgsMap | Kind::Kv)) => {
                let key = match idx {
                    Value::String(k) => k,
                    Value::Nil => return Err("value is nil; should be of type string".into()),
                    other => return Err(format!("value has type {}; should be string", type_name(types, other))),
                };
                match m.get(key.as_ref()) {
                    Some(v) => v.clone(),
                    None if kind.is_some_and(Kind::is_string_map) => Value::String(Arc::from("")),
                    None => Value::Nil,
                }
            }
            _ => return Err(format!("can't index item of type {}", elem_type(types, &item))),
        };
    }
    Ok(item)
}

/// Go's `evalArgs` for the escapers: a lone string as is, otherwise
/// `fmt.Sprint` with missing values printed as `<no value>`.
fn eval_args(types: &dyn Types, args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let args: Vec<Value> = args
        .iter()
        .map(|a| if matches!(a, Value::Nil) { Value::String(Arc::from("<no value>")) } else { a.clone() })
        .collect();
    gofmt::sprint(types, &args)
}

fn func(f: impl Fn(&Call<'_>, &[Value]) -> Result<Value, FnError> + Send + Sync + 'static) -> GoFunc {
    Arc::new(f)
}

/// Adds the overridden Go builtins to `t`.
pub(crate) fn register(t: &mut FuncTable) {
    t.insert("print", func(|c, a| Ok(s(gofmt::sprint(c.reg(), a)))));
    t.insert("println", func(|c, a| Ok(s(gofmt::sprintln(c.reg(), a)))));
    t.insert(
        "printf",
        func(|c, a| {
            c.arity(a, 1, true)?;
            let format = c.str_arg(a, 0)?;
            Ok(s(gofmt::sprintf(c.reg(), format, &a[1..])))
        }),
    );
    t.insert(
        "eq",
        func(|c, a| {
            c.arity(a, 1, true)?;
            eq(c.reg(), &a[0], &a[1..]).map(Value::Bool).map_err(FnError::Call)
        }),
    );
    t.insert(
        "ne",
        func(|c, a| {
            c.arity(a, 2, false)?;
            eq(c.reg(), &a[0], &a[1..]).map(|b| Value::Bool(!b)).map_err(FnError::Call)
        }),
    );
    t.insert(
        "lt",
        func(|c, a| {
            c.arity(a, 2, false)?;
            lt(c.reg(), &a[0], &a[1]).map(Value::Bool).map_err(FnError::Call)
        }),
    );
    t.insert(
        "le",
        func(|c, a| {
            c.arity(a, 2, false)?;
            le(c.reg(), &a[0], &a[1]).map(Value::Bool).map_err(FnError::Call)
        }),
    );
    t.insert(
        "gt",
        func(|c, a| {
            c.arity(a, 2, false)?;
            le(c.reg(), &a[0], &a[1]).map(|b| Value::Bool(!b)).map_err(FnError::Call)
        }),
    );
    t.insert(
        "ge",
        func(|c, a| {
            c.arity(a, 2, false)?;
            lt(c.reg(), &a[0], &a[1]).map(|b| Value::Bool(!b)).map_err(FnError::Call)
        }),
    );
    t.insert(
        "index",
        func(|c, a| {
            c.arity(a, 1, true)?;
            index(c.reg(), &a[0], &a[1..]).map_err(FnError::Call)
        }),
    );
    t.insert(
        "len",
        func(|c, a| {
            c.arity(a, 1, false)?;
            let v = &a[0];
            match v {
                Value::Nil => Err(FnError::Arg(0, "invalid value; expected reflect.Value".into())),
                Value::Map(_)
                    if c.reg().kind(v).and_then(Kind::struct_fields).is_some()
                        || matches!(c.reg().kind(v), Some(Kind::Time(_) | Kind::TimeValue(_) | Kind::Duration(_))) =>
                {
                    Err(FnError::Call(format!("len of type {}", elem_type(c.reg(), v))))
                }
                Value::Map(_) | Value::List(_) | Value::String(_) => Ok(Value::Int(v.len().unwrap_or(0) as i64)),
                other => Err(FnError::Call(format!("len of type {}", type_name(c.reg(), other)))),
            }
        }),
    );
    t.insert(
        "not",
        func(|c, a| {
            c.arity(a, 1, false)?;
            Ok(Value::Bool(!a[0].is_truthy()))
        }),
    );
    t.insert("html", func(|c, a| Ok(s(gotmpl::html_escape(&eval_args(c.reg(), a))))));
    t.insert("js", func(|c, a| Ok(s(gotmpl::js_escape(&eval_args(c.reg(), a))))));
    t.insert("urlquery", func(|c, a| Ok(s(gotmpl::url_encode(&eval_args(c.reg(), a))))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Registry, Untyped};

    #[test]
    fn comparisons_follow_go() {
        let t = &Untyped;
        assert_eq!(eq(t, &Value::Int(1), &[Value::Int(2), Value::Int(1)]), Ok(true));
        assert_eq!(
            eq(t, &Value::Float(1.0), &[Value::Int(1)]),
            Err("incompatible types for comparison: float64 and int".into())
        );
        assert_eq!(eq(t, &Value::Nil, &["a".into()]), Ok(false));
        assert_eq!(eq(t, &Value::Int(1), &[Value::Uint(1)]), Ok(true));
        assert_eq!(lt(t, &Value::Float(1.0), &Value::Float(2.0)), Ok(true));
        assert_eq!(lt(t, &Value::Nil, &Value::Float(2.0)), Err(BAD_COMPARISON_TYPE.into()));
        assert_eq!(lt(t, &Value::Bool(true), &Value::Bool(false)), Err(BAD_COMPARISON_TYPE.into()));
        assert_eq!(lt(t, &"a".into(), &"b".into()), Ok(true));
        // gt is !le: NaN compares false with everything, so NaN > 1 is true.
        assert_eq!(le(t, &Value::Float(f64::NAN), &Value::Float(1.0)).map(|b| !b), Ok(true));
    }

    #[test]
    fn index_follows_go() {
        let reg = Registry::default();
        let labels = crate::types::string_map(&reg, [(&"a".to_string(), &"b".to_string())]);
        assert_eq!(index(&reg, &labels, &["a".into()]), Ok("b".into()));
        assert_eq!(index(&reg, &labels, &["zz".into()]), Ok("".into()));
        assert_eq!(index(&reg, &labels, &[Value::Int(1)]), Err("value has type int; should be string".into()));
        let list = Value::List(vec![Value::Int(7)].into());
        assert_eq!(index(&reg, &list, &[Value::Int(0)]), Ok(Value::Int(7)));
        assert_eq!(index(&reg, &list, &[Value::Int(1)]), Err("reflect: slice index out of range".into()));
        assert_eq!(index(&reg, &list, &[Value::Int(2)]), Err("index out of range: 2".into()));
        assert_eq!(index(&reg, &Value::Nil, &[Value::Int(2)]), Err("index of untyped nil".into()));
        assert_eq!(index(&reg, &"ab".into(), &[Value::Int(1)]), Ok(Value::Int(98)));
    }

    #[test]
    fn escapers_print_go_values() {
        assert_eq!(eval_args(&Untyped, &[Value::Float(1e21)]), "1e+21");
        assert_eq!(eval_args(&Untyped, &[Value::Nil]), "<no value>");
        assert_eq!(eval_args(&Untyped, &["a".into(), "b".into()]), "ab");
        assert_eq!(gotmpl::url_encode("a b/é"), "a+b%2F%C3%A9");
        assert_eq!(gotmpl::html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
