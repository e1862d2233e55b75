//! Go's YAML scalars as Alertmanager decodes them (yaml.v2): any scalar
//! into a string field as its text, YAML 1.1 booleans (`yes`, `on`, `y`…),
//! Prometheus durations and Go `time.Duration`s.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A string field: any scalar is taken as its text (`5`, `1.5`, `true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct GoStr(pub String);

impl GoStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for GoStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct ScalarText;

impl<'de> Visitor<'de> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("cannot unmarshal !!seq into string"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("cannot unmarshal !!map into string"))
    }
}

impl<'de> Deserialize<'de> for GoStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As a string, a scalar keeps its source text (`1.10`, `0x1F`,
        // `True`), as yaml.v2 gives it to a string field.
        d.deserialize_string(ScalarText).map(GoStr)
    }
}

/// Whether an optional string member is given and not empty.
pub(crate) fn set(v: &Option<GoStr>) -> bool {
    v.as_ref().is_some_and(|s| !s.is_empty())
}

/// A boolean field: YAML 1.1's words (`yes`, `no`, `on`, `off`, `y`, `n`)
/// as well as `true`/`false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GoBool(pub bool);

struct BoolVisitor;

impl<'de> Visitor<'de> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v {
            "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => Ok(true),
            "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => Ok(false),
            _ => Err(E::custom(format!("cannot unmarshal !!str `{}` into bool", go_short(v)))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        Err(E::custom(format!("cannot unmarshal !!int `{v}` into bool")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        Err(E::custom(format!("cannot unmarshal !!int `{v}` into bool")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        Err(E::custom(format!("cannot unmarshal !!float `{v}` into bool")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

impl<'de> Deserialize<'de> for GoBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoolVisitor).map(GoBool)
    }
}

/// yaml.v2's shortening of a value in a type error: the first 7 bytes and
/// `...` when it is longer than 10.
fn go_short(v: &str) -> String {
    if v.len() > 10 {
        let mut end = 7;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &v[..end])
    } else {
        v.to_owned()
    }
}

/// `model.ParseDuration` with Go's messages, in milliseconds.
pub(crate) fn parse_model_duration(text: &str) -> Result<i64, String> {
    use common::duration::DurationError;
    common::duration::parse_checked(text).map_err(|e| match e {
        DurationError::Empty => "empty duration string".to_owned(),
        DurationError::Invalid => format!("not a valid duration string: {text:?}"),
        DurationError::UnknownUnit(u) => format!("unknown unit {u:?} in duration {text:?}"),
        DurationError::OutOfRange => "duration out of range".to_owned(),
    })
}

/// A Go `time.Duration` field (receivers' `timeout`), in nanoseconds: an
/// integer is nanoseconds, a string Go's `time.ParseDuration` syntax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GoDuration(pub i64);

struct GoDurationVisitor;

impl<'de> Visitor<'de> for GoDurationVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("cannot unmarshal !!int `{v}` into time.Duration")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        Ok(v as i64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_go_duration(v)
            .ok_or_else(|| E::custom(format!("cannot unmarshal !!str `{}` into time.Duration", go_short(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GoDurationVisitor).map(GoDuration)
    }
}

/// Go's `time.ParseDuration`, in nanoseconds: an optional sign, then
/// decimal numbers with fractions and units `ns`, `us`, `µs`, `μs`, `ms`,
/// `s`, `m`, `h` in any order; `0` alone.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let v: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len =
            rest.char_indices().find(|(_, c)| c.is_ascii_digit() || *c == '.').map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += v * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_decode_as_go_does() {
        let s: Vec<GoStr> = serde_norway::from_str("[5, 1.10, yes, text, True, 0x1F]").unwrap();
        assert_eq!(s.iter().map(GoStr::as_str).collect::<Vec<_>>(), ["5", "1.10", "yes", "text", "True", "0x1F"]);
        let b: Vec<GoBool> = serde_norway::from_str("[yes, off, true, N]").unwrap();
        assert_eq!(b, [GoBool(true), GoBool(false), GoBool(true), GoBool(false)]);
        assert!(serde_norway::from_str::<GoBool>("1").is_err());
        assert!(serde_norway::from_str::<GoBool>("maybe").is_err());
        assert_eq!(parse_model_duration("1h30m"), Ok(5_400_000));
        assert_eq!(
            parse_model_duration("5 minutes").unwrap_err(),
            "unknown unit \" minutes\" in duration \"5 minutes\""
        );
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
        let t: GoDuration = serde_norway::from_str("10s").unwrap();
        assert_eq!(t, GoDuration(10_000_000_000));
    }
}
