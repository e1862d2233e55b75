//! Alertmanager configurations and AMP's alert manager definitions, parsed
//! and validated as `amtool check-config` 0.33 does — for the control
//! plane (which refuses what Alertmanager would) and the alerting engine
//! (which runs what it parsed).
//!
//! # Data flow
//!
//! ```text
//! AMP definition (YAML) ──► parse_definition ──► alertmanager_config ──► parse_config ──► Config
//!                                  │                                      (route tree, receivers,
//!                                  └─► template_files ─► templates ─────► inhibit rules, intervals)
//!                                      (the config's `templates` globs
//!                                       select them; parsed by `templates`)
//! ```
//!
//! # Guarantees
//!
//! * A configuration Alertmanager refuses is refused, with Alertmanager's
//!   message for its checks (receiver names, the root route, undefined
//!   receivers and time intervals, `group_by`, matchers in both of
//!   Alertmanager's matcher syntaxes, durations, URLs, `http_config`,
//!   time intervals, the five receiver types PromLake delivers to); YAML
//!   decoding errors (unknown keys, wrong types) are refused with the YAML
//!   library's message. Checked against the real `amtool check-config` in
//!   `tests/amtool.rs`.
//! * A receiver type PromLake does not deliver to (OpsGenie, WeChat,
//!   Telegram, …) is refused by name, after Alertmanager's checks.
//! * Template files are parsed with Alertmanager's function map; a file
//!   that does not parse refuses the definition with Go's message.
//!
//! Known differences: when a configuration has several errors, the one
//! reported may differ from Alertmanager's (which decodes in document
//! order); YAML messages are the `serde_norway` crate's, not yaml.v2's;
//! regular expressions are checked by the `regex` crate (RE2 syntax).

mod config;
mod http;
mod matchers;
mod receivers;
mod timeinterval;
mod yaml;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use config::{Config, ConfigError, Global, InhibitRule, Route, parse_config};
pub use http::{HttpClientConfig, TlsConfig};
pub use matchers::{MatchType, Matcher, check_regexp, matches_all, parse_matchers};
pub use receivers::{
    EmailConfig, PagerdutyConfig, Receiver, SUPPORTED_RECEIVER_TYPES, SlackConfig, SnsConfig,
    UNSUPPORTED_RECEIVER_TYPES, WebhookConfig,
};
pub use timeinterval::{TimeInterval, TimeIntervalSet};
pub use yaml::{GoBool, GoDuration, GoStr};

/// An AMP alert manager definition: Alertmanager's configuration and the
/// template files it selects, parsed.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The configuration (`alertmanager_config`).
    pub config: Config,
    /// Every file of `template_files`, by name.
    pub template_files: BTreeMap<String, String>,
    /// Alertmanager's default templates and the files the configuration's
    /// `templates` globs select, in the order Alertmanager parses them.
    pub templates: templates::NotificationTemplates,
}

/// What the quotas count of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Inhibition rules.
    pub inhibit_rules: usize,
    /// Nodes of the routing tree, the root included.
    pub route_nodes: usize,
    /// Template files.
    pub template_files: usize,
    /// The longest `repeat_interval` set in the tree, milliseconds.
    pub max_repeat_interval_ms: i64,
}

impl Definition {
    /// The counts AMP's quotas limit.
    pub fn shape(&self) -> Shape {
        Shape {
            inhibit_rules: self.config.inhibit_rules.len(),
            route_nodes: self.config.route.node_count(),
            template_files: self.template_files.len(),
            max_repeat_interval_ms: self.config.route.max_repeat_interval_ms(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    #[serde(default)]
    alertmanager_config: Option<String>,
    #[serde(default)]
    template_files: Option<BTreeMap<String, String>>,
}

/// Parses an AMP alert manager definition: a YAML document with
/// `alertmanager_config` (Alertmanager's configuration, as a string) and
/// `template_files` (name → template text).
///
/// # Errors
/// Why the definition is refused, one line.
pub fn parse_definition(data: &str) -> Result<Definition, String> {
    let raw: RawDefinition =
        serde_norway::from_str(data).map_err(|e| format!("the alert manager definition is not valid: {e}"))?;
    let config_text = raw
        .alertmanager_config
        .filter(|c| !c.trim().is_empty())
        .ok_or("the alert manager definition has no alertmanager_config")?;
    let config = parse_config(&config_text).map_err(|e| match e {
        ConfigError::Invalid(m) => format!("alertmanager_config: {m}"),
        other => other.to_string(),
    })?;
    let template_files = raw.template_files.unwrap_or_default();
    let mut selected = Vec::new();
    for pattern in &config.templates {
        let glob = Glob::new(pattern).map_err(|e| format!("templates: {e}"))?;
        // filepath.Glob's matches, in name order, each once.
        for (name, text) in &template_files {
            if glob.matches(name) && !selected.iter().any(|(n, _): &(&str, &str)| n == name) {
                selected.push((name.as_str(), text.as_str()));
            }
        }
    }
    let templates = templates::NotificationTemplates::new(selected).map_err(|e| format!("template_files: {e}"))?;
    Ok(Definition { config, template_files, templates })
}

/// A `filepath.Match` pattern: `*`, `?`, `[...]` classes (with `^`
/// negation and ranges), `\` escapes; `*` and `?` do not match `/`.
struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    fn new(pattern: &str) -> Result<Self, String> {
        let g = Glob { pattern: pattern.chars().collect() };
        // Go reports a malformed pattern whatever the name: matching the
        // empty name walks the whole pattern.
        g.match_from(0, &[]).map_err(|_| "syntax error in pattern".to_owned())?;
        Ok(g)
    }

    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        self.match_from(0, &name).unwrap_or(false)
    }

    /// Whether `name` matches the pattern from `p`; `Err(true)` for a
    /// malformed pattern.
    fn match_from(&self, p: usize, name: &[char]) -> Result<bool, bool> {
        let pat = &self.pattern;
        if p == pat.len() {
            return Ok(name.is_empty());
        }
        match pat[p] {
            '*' => {
                for i in 0..=name.len() {
                    if i > 0 && name[i - 1] == '/' {
                        break;
                    }
                    if self.match_from(p + 1, &name[i..])? {
                        return Ok(true);
                    }
                }
                // Check the rest of the pattern is well formed.
                self.match_from(p + 1, &[]).map(|_| false)
            }
            '?' => match name.first() {
                Some(c) if *c != '/' => self.match_from(p + 1, &name[1..]),
                _ => self.match_from(p + 1, &[]).map(|_| false),
            },
            '[' => {
                let (end, matched) = self.class(p, name.first().copied())?;
                if matched && !name.is_empty() {
                    self.match_from(end, &name[1..])
                } else {
                    self.match_from(end, &[]).map(|_| false)
                }
            }
            '\\' => {
                let c = *pat.get(p + 1).ok_or(true)?;
                match name.first() {
                    Some(n) if *n == c => self.match_from(p + 2, &name[1..]),
                    _ => self.match_from(p + 2, &[]).map(|_| false),
                }
            }
            c => match name.first() {
                Some(n) if *n == c => self.match_from(p + 1, &name[1..]),
                _ => self.match_from(p + 1, &[]).map(|_| false),
            },
        }
    }

    /// A `[...]` class at `p`: its end and whether `c` is in it.
    fn class(&self, p: usize, c: Option<char>) -> Result<(usize, bool), bool> {
        let pat = &self.pattern;
        let mut i = p + 1;
        let negated = pat.get(i) == Some(&'^');
        if negated {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let lo = match pat.get(i) {
                None => return Err(true),
                Some(']') if !first => break,
                Some('\\') => {
                    i += 1;
                    *pat.get(i).ok_or(true)?
                }
                Some('-') if first => return Err(true),
                Some(&ch) => ch,
            };
            i += 1;
            first = false;
            let mut hi = lo;
            if pat.get(i) == Some(&'-') {
                i += 1;
                hi = match pat.get(i) {
                    None | Some(']') => return Err(true),
                    Some('\\') => {
                        i += 1;
                        *pat.get(i).ok_or(true)?
                    }
                    Some(&ch) => ch,
                };
                i += 1;
            }
            if c.is_some_and(|c| lo <= c && c <= hi) {
                matched = true;
            }
        }
        Ok((i + 1, matched != negated && c.is_some_and(|c| c != '/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_filepath_match() {
        let m = |p: &str, n: &str| Glob::new(p).unwrap().matches(n);
        assert!(m("*", "default_template"));
        assert!(m("team_*", "team_a") && !m("team_*", "other"));
        assert!(m("t?", "t1") && !m("t?", "t12"));
        assert!(m("[a-c]x", "bx") && !m("[^a-c]x", "bx"));
        assert!(m("exact", "exact"));
        assert!(Glob::new("[").is_err());
        assert!(Glob::new("a[").is_err());
    }

    #[test]
    fn definitions_select_their_templates() {
        let d = parse_definition(
            "alertmanager_config: |\n  templates: ['team_*']\n  route: {receiver: r}\n  receivers: [{name: r}]\ntemplate_files:\n  team_a: '{{ define \"x\" }}A{{ end }}'\n  other: '{{ nope }}'\n",
        )
        .unwrap();
        assert!(d.templates.is_defined("x"));
        assert_eq!(d.shape(), Shape { inhibit_rules: 0, route_nodes: 1, template_files: 2, max_repeat_interval_ms: 0 });
        let e = parse_definition(
            "alertmanager_config: |\n  templates: ['*']\n  route: {receiver: r}\n  receivers: [{name: r}]\ntemplate_files:\n  bad: '{{ nope }}'\n",
        )
        .unwrap_err();
        assert_eq!(e, "template_files: template: bad:1: function \"nope\" not defined");
        assert!(parse_definition("template_files: {}\n").unwrap_err().contains("no alertmanager_config"));
        assert!(parse_definition("alertmanager_config: x\nother: 1\n").is_err());
    }
}
