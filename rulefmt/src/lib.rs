//! Prometheus rules files (the `groups:` YAML format of Prometheus 3.5),
//! parsed and validated as `promtool check rules` and Prometheus's rule
//! manager do it (`model/rulefmt`).
//!
//! ```text
//!  bytes ──► YAML (serde_norway; unknown fields, duplicate keys and wrong
//!            │     shapes refused, as yaml.v3's strict decoder does)
//!            ▼
//!        raw groups ──► validation ──► RuleGroups (durations in ms)
//!                        │  group names present and unique, group labels,
//!                        │  exactly one of record/alert, expr parses (promql-parser),
//!                        │  recording rules without for/keep_firing_for/annotations,
//!                        │  record names, label and annotation names,
//!                        │  alerting templates parse (templates crate)
//!                        └──► every problem found, in Prometheus's wording
//! ```
//!
//! Guarantees: [`parse`] accepts the files Prometheus 3.5 would load
//! (checked against the real `promtool check rules` in
//! `tests/promtool.rs`), with these differences: PromQL's experimental
//! functions and duration expressions are accepted (PromLake's engine has
//! them on; Prometheus needs feature flags), YAML merge keys (`<<:`) are
//! refused, and an expression nesting more than [`MAX_EXPR_NESTING`]
//! brackets deep is refused. It never overflows the caller's stack (it
//! parses on a thread of its own), and returns every problem it finds, not only the
//! first, each naming its group, rule index and rule name as Prometheus's
//! messages do (without Prometheus's line:column prefixes, except for
//! YAML errors, which carry serde_norway's position). Label names follow
//! Prometheus 3's UTF-8 scheme: any non-empty string but `__name__`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A rules file: groups of rules evaluated in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleGroups {
    /// The groups, in file order.
    pub groups: Vec<RuleGroup>,
}

impl RuleGroups {
    /// Rules in every group.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

/// A group: rules evaluated in order at one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleGroup {
    /// Unique in its file.
    pub name: String,
    /// Evaluation interval, ms; `None`: the evaluator's default.
    pub interval_ms: Option<i64>,
    /// How far in the past the group's queries evaluate, ms; `None`: the
    /// workspace's (or the evaluator's) default.
    pub query_offset_ms: Option<i64>,
    /// Most series (recording) or alerts (alerting) one rule may produce;
    /// 0 means no limit.
    pub limit: i64,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
    /// Labels added to every rule's output (rule labels win).
    pub labels: BTreeMap<String, String>,
}

/// A recording or alerting rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    /// The metric name a recording rule writes.
    pub record: Option<String>,
    /// The name of an alerting rule's alerts.
    pub alert: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// How long an alert stays pending before firing, ms.
    pub for_ms: i64,
    /// How long an alert keeps firing once its condition clears, ms.
    pub keep_firing_for_ms: i64,
    /// Labels added to (or replacing those of) the output; templates in
    /// alerting rules.
    pub labels: BTreeMap<String, String>,
    /// An alerting rule's annotations (templates).
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The rule's name: its alert or record.
    pub fn name(&self) -> &str {
        self.alert.as_deref().or(self.record.as_deref()).unwrap_or_default()
    }

    /// Whether this is an alerting rule.
    pub fn is_alerting(&self) -> bool {
        self.alert.is_some()
    }
}

/// Stack of the thread that parses a file: expressions and templates nest,
/// and their parsers and syntax trees recurse once per level.
const PARSE_STACK_BYTES: usize = 512 << 20;

/// Deepest bracket nesting of an expression: a cap against trees so deep
/// that freeing them would exhaust any stack (Prometheus has none; no
/// real expression comes near it).
pub const MAX_EXPR_NESTING: usize = 10_000;

/// Parses and validates a rules file. An empty file has no groups. Runs
/// on a thread of its own with a large stack, so no input can overflow
/// the caller's.
///
/// # Errors
/// Every problem found, each as one message (a YAML error stops at once).
pub fn parse(content: &[u8]) -> Result<RuleGroups, Vec<String>> {
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("rulefmt".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || parse_here(content))
            .map_err(|e| vec![format!("cannot start the rules parser: {e}")])?;
        parser.join().unwrap_or_else(|_| Err(vec!["the rules parser failed".to_owned()]))
    })
}

/// The deepest nesting of `(`, `[` and `{` in an expression, outside its
/// string literals.
fn expr_nesting(expr: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                // Skip the literal (backslash escapes outside raw strings).
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn parse_here(content: &[u8]) -> Result<RuleGroups, Vec<String>> {
    let text = std::str::from_utf8(content).map_err(|e| vec![format!("the file is not UTF-8: {e}")])?;
    if text.trim().is_empty() {
        return Ok(RuleGroups::default());
    }
    let raw: RawFile = serde_norway::from_str(text).map_err(|e| vec![format!("yaml: {e}")])?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = std::collections::HashSet::new();
    for g in raw.groups.unwrap_or_default() {
        let name = g.name.unwrap_or_default();
        if name.is_empty() {
            errors.push("Groupname must not be empty".to_owned());
        }
        if !names.insert(name.clone()) {
            errors.push(format!("groupname: \"{name}\" is repeated in the same file"));
        }
        let labels = strings(g.labels);
        for k in labels.keys() {
            if !valid_label_name(k) {
                errors.push(format!("invalid label name: {k}"));
            }
        }
        let mut duration = |field: &str, v: Option<String>| -> Option<i64> {
            let v = v?;
            let parsed = common::duration::parse(&v);
            if parsed.is_none() {
                errors.push(format!("group {name:?}: {field}: not a valid duration string: \"{v}\""));
            }
            parsed
        };
        let interval_ms = duration("interval", g.interval);
        let query_offset_ms = duration("query_offset", g.query_offset);
        let mut rules = Vec::new();
        for (i, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rule_name = r.alert.clone().filter(|a| !a.is_empty()).or_else(|| r.record.clone()).unwrap_or_default();
            let mut problems = Vec::new();
            let rule = validate_rule(r, &mut problems);
            errors.extend(problems.into_iter().map(|p| format!("group {name:?}, rule {}, {rule_name:?}: {p}", i + 1)));
            rules.push(rule);
        }
        groups.push(RuleGroup {
            name,
            interval_ms,
            query_offset_ms,
            limit: g.limit.unwrap_or_default(),
            rules,
            labels,
        });
    }
    if errors.is_empty() { Ok(RuleGroups { groups }) } else { Err(errors) }
}

/// Checks one rule as Prometheus's `Rule.Validate` does, pushing each
/// problem to `problems`; returns the rule as parsed.
fn validate_rule(r: RawRule, problems: &mut Vec<String>) -> Rule {
    let record = r.record.filter(|s| !s.is_empty());
    let alert = r.alert.filter(|s| !s.is_empty());
    let expr = r.expr.unwrap_or_default();
    match (&record, &alert) {
        (Some(_), Some(_)) => problems.push("only one of 'record' and 'alert' must be set".into()),
        (None, None) => problems.push("one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    if expr.is_empty() {
        problems.push("field 'expr' must be set in rule".into());
    } else if expr_nesting(&expr) > MAX_EXPR_NESTING {
        problems.push(format!("could not parse expression: it nests more than {MAX_EXPR_NESTING} levels deep"));
    } else if let Err(e) = promql_parser::parser::parse(&expr) {
        problems.push(format!("could not parse expression: {e}"));
    }
    let mut duration = |field: &str, v: Option<String>| -> i64 {
        let Some(v) = v else { return 0 };
        common::duration::parse(&v).unwrap_or_else(|| {
            problems.push(format!("{field}: not a valid duration string: \"{v}\""));
            0
        })
    };
    let for_ms = duration("for", r.r#for);
    let keep_firing_for_ms = duration("keep_firing_for", r.keep_firing_for);
    let labels = strings(r.labels);
    let annotations = strings(r.annotations);
    if let Some(record) = &record {
        if !annotations.is_empty() {
            problems.push("invalid field 'annotations' in recording rule".into());
        }
        if for_ms != 0 {
            problems.push("invalid field 'for' in recording rule".into());
        }
        if keep_firing_for_ms != 0 {
            problems.push("invalid field 'keep_firing_for' in recording rule".into());
        }
        if record.contains(['{', '}']) {
            problems.push(format!("braces present in the recording rule name; should it be in expr?: {record}"));
        }
    }
    for k in labels.keys() {
        if !valid_label_name(k) {
            problems.push(format!("invalid label name: {k}"));
        }
    }
    for k in annotations.keys() {
        if k.is_empty() {
            problems.push(format!("invalid annotation name: {k}"));
        }
    }
    if let Some(alert) = &alert {
        for (what, map) in [("label", &labels), ("annotation", &annotations)] {
            for (k, text) in map {
                if let Err(e) = templates::check_alert_template(alert, text) {
                    problems.push(format!("{what} {k:?}: {e}"));
                }
            }
        }
    }
    Rule { record, alert, expr, for_ms, keep_firing_for_ms, labels, annotations }
}

/// Prometheus 3's UTF-8 label names: anything but empty and `__name__`
/// (which rules may not set).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty() && name != "__name__"
}

/// A map of YAML scalars as strings (a null value is the empty string, as
/// yaml.v3 decodes it).
fn strings(map: Option<StringMap>) -> BTreeMap<String, String> {
    map.map(|m| m.0).unwrap_or_default()
}

/// A YAML mapping of scalars, refusing a key given twice (as yaml.v3 does;
/// serde's maps would keep the last).
struct StringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StringMap;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of strings")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<StringMap, A::Error> {
                let mut map = BTreeMap::new();
                while let Some((k, v)) = access.next_entry::<String, Option<String>>()? {
                    if map.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("mapping key \"{k}\" already defined")));
                    }
                    map.insert(k, v.unwrap_or_default());
                }
                Ok(StringMap(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Option<String>,
    interval: Option<String>,
    query_offset: Option<String>,
    limit: Option<i64>,
    rules: Option<Vec<RawRule>>,
    labels: Option<StringMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<String>,
    r#for: Option<String>,
    keep_firing_for: Option<String>,
    labels: Option<StringMap>,
    annotations: Option<StringMap>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        parse(yaml.as_bytes()).expect_err("accepted")
    }

    #[test]
    fn parses_groups_and_rules() {
        let g = parse(
            br#"
groups:
  - name: node
    interval: 30s
    query_offset: 1m
    limit: 10
    labels: {team: infra}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {level: "1"}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.instance }} is down ({{ $value | humanize }})"
"#,
        )
        .unwrap();
        assert_eq!(g.rule_count(), 2);
        let group = &g.groups[0];
        assert_eq!((group.interval_ms, group.query_offset_ms, group.limit), (Some(30_000), Some(60_000), 10));
        assert_eq!(group.labels["team"], "infra");
        assert_eq!(group.rules[0].name(), "job:up:sum");
        assert!(!group.rules[0].is_alerting());
        let alert = &group.rules[1];
        assert_eq!((alert.name(), alert.for_ms, alert.keep_firing_for_ms), ("Down", 300_000, 60_000));
        assert_eq!(alert.annotations["summary"], "{{ $labels.instance }} is down ({{ $value | humanize }})");
        assert_eq!(parse(b"").unwrap(), RuleGroups::default());
        assert_eq!(parse(b"groups: []\n").unwrap(), RuleGroups::default());
    }

    #[test]
    fn reports_every_problem_in_prometheus_words() {
        let e = errors(
            r#"
groups:
  - name: g
    rules:
      - record: a
        alert: b
        expr: up
      - expr: up
      - record: r
        expr: sum(
      - record: 'x{y="z"}'
        expr: up
        for: 1m
        annotations: {a: b}
      - alert: A
        expr: up
        labels: {__name__: x}
        annotations: {s: "{{ nosuchfunction }}"}
  - name: g
    rules: []
  - rules: []
"#,
        );
        let want = [
            "group \"g\", rule 1, \"b\": only one of 'record' and 'alert' must be set",
            "group \"g\", rule 2, \"\": one of 'record' or 'alert' must be set",
            "group \"g\", rule 3, \"r\": could not parse expression",
            "group \"g\", rule 4, \"x{y=\\\"z\\\"}\": invalid field 'annotations' in recording rule",
            "group \"g\", rule 4, \"x{y=\\\"z\\\"}\": invalid field 'for' in recording rule",
            "group \"g\", rule 4, \"x{y=\\\"z\\\"}\": braces present in the recording rule name",
            "group \"g\", rule 5, \"A\": invalid label name: __name__",
            "group \"g\", rule 5, \"A\": annotation \"s\": ",
            "groupname: \"g\" is repeated in the same file",
            "Groupname must not be empty",
        ];
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "no error starting {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("nosuchfunction")), "{e:#?}");
    }

    #[test]
    fn refuses_what_yaml_v3_strict_decoding_refuses() {
        for (yaml, needle) in [
            ("groups:\n  - name: g\n    rulez: []\n", "unknown field"),
            (
                "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n        exp: x\n",
                "unknown field",
            ),
            ("groups: {}\n", "invalid type"),
            ("groups:\n  - name: g\n    interval: soon\n", "not a valid duration string"),
            ("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n        for: 5\n", "duration"),
            ("nogroups: []\n", "unknown field"),
            ("groups:\n  - name: g\n    labels: {a: 1, a: 2}\n", "already defined"),
        ] {
            let e = errors(yaml);
            assert!(e.iter().any(|m| m.contains(needle)), "{yaml:?}: {e:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_or_parsed_without_overflowing_the_stack() {
        assert_eq!(expr_nesting("sum(rate(x{a=\"(((\"}[5m]))"), 3);
        assert_eq!(expr_nesting("up"), 0);
        let deep = format!("{}up{}", "(".repeat(200_000), ")".repeat(200_000));
        let file = format!("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: '{deep}'\n");
        let e = errors(&file);
        assert!(e[0].contains("nests more than 10000 levels"), "{e:?}");
        // Just under the cap: parsed (and freed) on the parser's stack.
        let ok = format!("{}up{}", "(".repeat(MAX_EXPR_NESTING), ")".repeat(MAX_EXPR_NESTING));
        let file = format!("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: '{ok}'\n");
        assert!(parse(file.as_bytes()).is_ok());
        // Templates nested as deep as a file allows.
        let t = format!("{}x{}", "{{if 1}}".repeat(50_000), "{{end}}".repeat(50_000));
        let file = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {{s: '{t}'}}\n"
        );
        let _ = parse(file.as_bytes());
    }

    #[test]
    fn scalars_decode_as_strings() {
        let g = parse(b"groups:\n  - name: 1\n    rules:\n      - record: r\n        expr: 1\n        labels: {a: 1.50, b: true, c: ~}\n")
            .unwrap();
        let r = &g.groups[0].rules[0];
        assert_eq!(g.groups[0].name, "1");
        assert_eq!(r.expr, "1");
        assert_eq!(r.labels["a"], "1.50");
        assert_eq!(r.labels["b"], "true");
        assert_eq!(r.labels["c"], "");
    }
}
