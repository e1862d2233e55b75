//! `rules` and `alerts`: the state of the workspace's rules as the ruler
//! reports it through the [`RuleStates`] seam, in Prometheus 3.5's JSON
//! (`web/api/v1/api.go`) with its filters (`type`, `rule_name[]`,
//! `rule_group[]`, `file[]`, `match[]` on rule labels, `exclude_alerts`)
//! and pagination (`group_limit`, `group_next_token`).

use std::collections::BTreeMap;
use std::collections::HashSet;

use axum::response::Response;
use common::rules::{ActiveAlert, RuleGroupState, RuleState};
use common::seams::LabelMatcher;
use serde_json::{Value, json};

use super::respond::{ApiError, success};
use super::{Call, match_params};

/// What a process that evaluates no rules answers with its empty lists.
const NO_RULER: &str = "this PromLake process does not evaluate rules (the ruler runs with the stream workers)";

pub(super) async fn rules(call: Call) -> Result<Response, ApiError> {
    let p = &call.params;
    let matcher_sets = match_params(&p.all("match[]"))?;
    let typ = p.get("type").to_lowercase();
    if !matches!(typ.as_str(), "" | "alert" | "record") {
        return Err(ApiError::invalid_param("type", format!("not supported value {typ:?}")));
    }
    let exclude_alerts = match p.get("exclude_alerts").to_lowercase().as_str() {
        "" => false,
        v => go_parse_bool(v).ok_or_else(|| {
            ApiError::invalid_param(
                "exclude_alerts",
                format!("error converting exclude_alerts: strconv.ParseBool: parsing {v:?}: invalid syntax"),
            )
        })?,
    };
    let (group_limit, next_token) = pagination(p.get("group_limit"), p.get("group_next_token"))?;
    let set = |name: &str| -> HashSet<String> { p.all(name).into_iter().map(str::to_owned).collect() };
    let (names, groups, files) = (set("rule_name[]"), set("rule_group[]"), set("file[]"));

    let all = call.api.rules.as_ref().map(|r| r.rule_groups(&call.workspace_id));
    let mut out = Vec::new();
    let mut next = None;
    let mut found_token = false;
    for g in all.iter().flatten() {
        if let Some(token) = &next_token
            && !found_token
        {
            if *token != group_token(&g.file, &g.name) {
                continue;
            }
            found_token = true;
        }
        if (!groups.is_empty() && !groups.contains(&g.name)) || (!files.is_empty() && !files.contains(&g.file)) {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| matches_any(&matcher_sets, &r.labels))
            .filter(|r| names.is_empty() || names.contains(&r.name))
            .filter(|r| if r.alerting.is_some() { typ != "record" } else { typ != "alert" })
            .map(|r| rule_json(r, exclude_alerts))
            .collect();
        if rules.is_empty() {
            continue;
        }
        if group_limit.is_some_and(|limit| out.len() == limit) {
            next = Some(group_token(&g.file, &g.name));
            break;
        }
        out.push(group_json(g, rules));
    }
    if let Some(token) = &next_token
        && !found_token
    {
        return Err(ApiError::invalid_param(
            "group_next_token",
            format!("invalid group_next_token '{token}'. were rule groups changed?"),
        ));
    }
    let mut data = json!({ "groups": out });
    if let Some(token) = next {
        data["groupNextToken"] = token.into();
    }
    let warnings = if all.is_none() { vec![NO_RULER.to_owned()] } else { Vec::new() };
    Ok(success(&data.to_string(), &warnings, &[]))
}

pub(super) async fn alerts(call: Call) -> Result<Response, ApiError> {
    let all = call.api.rules.as_ref().map(|r| r.rule_groups(&call.workspace_id));
    let alerts: Vec<Value> = all
        .iter()
        .flatten()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.alerting.as_ref())
        .flat_map(|a| a.alerts.iter().map(alert_json))
        .collect();
    let warnings = if all.is_none() { vec![NO_RULER.to_owned()] } else { Vec::new() };
    Ok(success(&json!({ "alerts": alerts }).to_string(), &warnings, &[]))
}

/// `group_limit` and `group_next_token`, checked as Prometheus does.
fn pagination(limit: &str, token: &str) -> Result<(Option<usize>, Option<String>), ApiError> {
    if !token.is_empty() && limit.is_empty() {
        return Err(ApiError::invalid_param(
            "group_next_token",
            "group_limit needs to be present in order to paginate over the groups",
        ));
    }
    if limit.is_empty() {
        return Ok((None, None));
    }
    let n: i32 = limit.parse().map_err(|_| {
        ApiError::invalid_param(
            "group_limit",
            format!("group_limit needs to be a valid number: strconv.ParseInt: parsing {limit:?}: invalid syntax"),
        )
    })?;
    if n <= 0 {
        return Err(ApiError::invalid_param("group_limit", "group_limit needs to be greater than 0"));
    }
    Ok((Some(n as usize), (!token.is_empty()).then(|| token.to_owned())))
}

/// The opaque token of a group (Prometheus hashes `file;group` too).
fn group_token(file: &str, group: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(format!("{file};{group}").as_bytes()))
}

/// Whether rule labels match one of the `match[]` sets (any, when none).
fn matches_any(sets: &[Vec<LabelMatcher>], labels: &BTreeMap<String, String>) -> bool {
    sets.is_empty()
        || sets.iter().any(|set| set.iter().all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str))))
}

/// Go's `strconv.ParseBool` (lower-cased input).
fn go_parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

fn group_json(g: &RuleGroupState, rules: Vec<Value>) -> Value {
    json!({
        "name": g.name,
        "file": g.file,
        "rules": rules,
        "interval": go_number(g.interval_seconds),
        "limit": g.limit,
        "evaluationTime": g.evaluation_seconds,
        "lastEvaluation": go_time(g.last_evaluation_ms),
    })
}

fn rule_json(r: &RuleState, exclude_alerts: bool) -> Value {
    let mut v = match &r.alerting {
        Some(a) => json!({
            "state": a.state,
            "name": r.name,
            "query": r.query,
            "duration": go_number(a.for_seconds),
            "keepFiringFor": go_number(a.keep_firing_for_seconds),
            "labels": r.labels,
            "annotations": a.annotations,
            "alerts": if exclude_alerts { Value::Null } else { a.alerts.iter().map(alert_json).collect() },
            "health": r.health,
            "evaluationTime": r.evaluation_seconds,
            "lastEvaluation": go_time(r.last_evaluation_ms),
            "type": "alerting",
        }),
        None => {
            let mut v = json!({
                "name": r.name,
                "query": r.query,
                "health": r.health,
                "evaluationTime": r.evaluation_seconds,
                "lastEvaluation": go_time(r.last_evaluation_ms),
                "type": "recording",
            });
            // `omitempty` in Prometheus's `RecordingRule`.
            if !r.labels.is_empty() {
                v["labels"] = json!(r.labels);
            }
            v
        }
    };
    if let Some(e) = &r.last_error {
        v["lastError"] = e.as_str().into();
    }
    v
}

fn alert_json(a: &ActiveAlert) -> Value {
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state,
        "activeAt": go_time(Some(a.active_at_ms)),
        "value": crate::engine::vector_fns::go_format_e(a.value),
    });
    if let Some(t) = a.keep_firing_since_ms {
        v["keepFiringSince"] = go_time(Some(t)).into();
    }
    v
}

/// A whole number as an integer (Go prints `1`, not `1.0`), else a float.
fn go_number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 { Value::from(v as i64) } else { Value::from(v) }
}

/// A time as Go's `time.Time` marshals to JSON (RFC 3339 with the
/// fraction's trailing zeros dropped, UTC); `None` is Go's zero time.
fn go_time(ms: Option<i64>) -> String {
    let Some(t) = ms.and_then(chrono::DateTime::from_timestamp_millis) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = format!("{:03}", t.timestamp_subsec_millis());
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(crate::engine::vector_fns::go_format_e(10.0), "1e+01");
        assert_eq!(crate::engine::vector_fns::go_format_e(0.0), "0e+00");
        assert_eq!(crate::engine::vector_fns::go_format_e(-1.5e-7), "-1.5e-07");
        assert_eq!(crate::engine::vector_fns::go_format_e(123456.789), "1.23456789e+05");
        assert_eq!(crate::engine::vector_fns::go_format_e(1e100), "1e+100");
        assert_eq!(crate::engine::vector_fns::go_format_e(f64::INFINITY), "+Inf");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(Some(2_000)), "1970-01-01T00:00:02Z");
        assert_eq!(go_time(Some(2_012)), "1970-01-01T00:00:02.012Z");
        assert_eq!(go_number(60.0), json!(60));
        assert_eq!(go_number(0.5), json!(0.5));
    }

    #[test]
    fn pagination_is_checked_as_prometheus_does() {
        assert_eq!(pagination("", "").unwrap(), (None, None));
        assert_eq!(pagination("2", "").unwrap(), (Some(2), None));
        assert_eq!(pagination("2", "x").unwrap(), (Some(2), Some("x".into())));
        assert!(pagination("", "x").unwrap_err().message.contains("group_limit needs to be present"));
        assert!(pagination("0", "").unwrap_err().message.contains("greater than 0"));
        assert!(pagination("a", "").unwrap_err().message.contains("valid number"));
    }
}
