//! Alerts posted to `POST /api/v2/alerts`, checked and completed as
//! Alertmanager 0.33's handler does: the body must be a JSON array of
//! alerts with `labels` (a body that does not decode is a 400 with
//! go-swagger's `{"code","message"}`, a schema violation a 422); each
//! alert gets `startsAt` (now, or its end) and `endsAt` (now +
//! `resolve_timeout`, marked as a timeout) when missing, loses its
//! empty-valued labels, and is validated; the valid ones are kept even
//! when others are refused, and the refusals are answered together (400,
//! a JSON string of the messages joined by newlines).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::dispatch::Alert;

/// A posted alert (`PostableAlert`), as decoded.
#[derive(Debug, Deserialize)]
struct Postable {
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

/// An accepted alert: the alert and whether its end is the resolve
/// timeout's (no end was posted).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub alert: Alert,
    pub timeout: bool,
}

/// A request refused before any alert is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// HTTP status: 400 (not decodable) or 422 (schema).
    pub status: u16,
    /// go-swagger's code: 400, 601 (format) or 602 (required).
    pub code: u16,
    pub message: String,
}

/// What a post stores and answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The valid alerts, stored whatever the others.
    pub accepted: Vec<Accepted>,
    /// The refused alerts' messages joined by newlines (answered 400), if any.
    pub invalid: Option<String>,
}

/// Go's zero time (`0001-01-01T00:00:00Z`) in Unix milliseconds.
const ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// Decodes, completes and validates a posted body at `now`.
///
/// # Errors
/// [`BodyError`] for a body that is not an array of alerts with labels.
pub fn accept(body: &[u8], now_ms: i64, resolve_timeout_ms: i64) -> Result<Outcome, BodyError> {
    let parse_failure = |why: String| BodyError {
        status: 400,
        code: 400,
        message: format!("parsing alerts body from \"\" failed, because {why}"),
    };
    let posted: Vec<Postable> = serde_json::from_slice(body).map_err(|e| parse_failure(e.to_string()))?;
    let mut times = Vec::with_capacity(posted.len());
    for (i, p) in posted.iter().enumerate() {
        if p.labels.is_none() {
            return Err(BodyError { status: 422, code: 602, message: format!("{i}.labels in body is required") });
        }
        if let Some(u) = &p.generator_url
            && !is_uri(u)
        {
            return Err(BodyError {
                status: 422,
                code: 601,
                message: format!("{i}.generatorURL in body must be of type uri: {u:?}"),
            });
        }
        let parse = |t: &Option<String>| -> Result<Option<i64>, BodyError> {
            match t {
                None => Ok(None),
                Some(t) => parse_date_time(t)
                    .map(|ms| (ms != ZERO_TIME_MS).then_some(ms))
                    .ok_or_else(|| parse_failure(format!("parsing time {t:?}: not a date-time"))),
            }
        };
        times.push((parse(&p.starts_at)?, parse(&p.ends_at)?));
    }
    let mut outcome = Outcome { accepted: Vec::new(), invalid: None };
    let mut errors = Vec::new();
    for (p, (starts, ends)) in posted.into_iter().zip(times) {
        let starts_at_ms = starts.unwrap_or(ends.unwrap_or(now_ms));
        let timeout = ends.is_none();
        let ends_at_ms = ends.unwrap_or(now_ms + resolve_timeout_ms);
        let mut labels = p.labels.unwrap_or_default();
        labels.retain(|_, v| !v.is_empty());
        let annotations = p.annotations.unwrap_or_default();
        let check = || -> Result<(), String> {
            if ends_at_ms < starts_at_ms {
                return Err("start time must be before end time".into());
            }
            if labels.is_empty() {
                return Err("at least one label pair required".into());
            }
            if let Some(k) = labels.keys().find(|k| k.is_empty()) {
                return Err(format!("invalid label set: invalid name {k:?}"));
            }
            if let Some(k) = annotations.keys().find(|k| k.is_empty()) {
                return Err(format!("invalid annotations: invalid name {k:?}"));
            }
            Ok(())
        };
        match check() {
            Ok(()) => outcome.accepted.push(Accepted {
                alert: Alert {
                    labels,
                    annotations,
                    starts_at_ms,
                    ends_at_ms: Some(ends_at_ms),
                    generator_url: p.generator_url.unwrap_or_default(),
                    updated_at_ms: now_ms,
                },
                timeout,
            }),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        outcome.invalid = Some(errors.join("\n"));
    }
    Ok(outcome)
}

/// go-openapi's `uri` format: Go's `url.ParseRequestURI` (an absolute
/// URL, or an absolute path).
fn is_uri(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    match s.split_once(':') {
        Some((scheme, rest)) => {
            scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// go-openapi's `date-time`: RFC 3339 (with or without fractions), or
/// without a zone (UTC).
fn parse_date_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_times_are_completed_as_alertmanager_does() {
        let o = accept(
            br#"[{"labels":{"a":"b","empty":""}},{"labels":{"c":"d"},"endsAt":"1970-01-01T00:00:10Z"}]"#,
            20_000,
            300_000,
        )
        .unwrap();
        assert_eq!(o.invalid, None);
        let (a, b) = (&o.accepted[0], &o.accepted[1]);
        assert_eq!((a.alert.starts_at_ms, a.alert.ends_at_ms, a.timeout), (20_000, Some(320_000), true));
        assert_eq!(a.alert.labels.len(), 1, "empty-valued labels dropped");
        assert_eq!((b.alert.starts_at_ms, b.alert.ends_at_ms, b.timeout), (10_000, Some(10_000), false));
    }
}
