//! Which functions exist, the parse-time check Prometheus runs on alerting
//! rules (`promtool check rules`, rulefmt's `testTemplateParsing`), and an
//! AST walker listing the functions a template calls.
//!
//! Go's parser rejects an undefined function while it parses, in source
//! order with the other syntax errors, so the check is done by the parser
//! ([`crate::parser`]) through [`is_defined`]; this module supplies the
//! names and the walker over the parsed tree.

use std::collections::BTreeSet;

use crate::parser::{Arg, List, Node, Pipe, TreeSet};

/// Go's `text/template` builtin functions.
pub(crate) const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println", "urlquery", "eq",
    "ge", "gt", "le", "lt", "ne",
];

/// The functions Prometheus 3.5 adds to alerting-rule templates.
pub const PROMETHEUS_FUNCTIONS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// Whether an alerting-rule template may call `name`.
pub(crate) fn is_defined(name: &str) -> bool {
    PROMETHEUS_FUNCTIONS.contains(&name) || GO_BUILTINS.contains(&name)
}

/// The variable definitions Prometheus prepends to every alert template.
pub(crate) const ALERT_DEFS: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The template name Prometheus gives an alerting rule's templates.
pub(crate) fn alert_template_name(alert_name: &str) -> String {
    format!("__alert_{alert_name}")
}

/// Prometheus's `ParseTest` of an alerting rule's label or annotation
/// template, as `promtool check rules` and rule loading run it: `text`
/// prefixed with the `$labels`, `$externalLabels`, `$externalURL` and
/// `$value` definitions, named `__alert_<alert_name>`, parsed with
/// Prometheus's function map.
///
/// # Errors
///
/// Go's parse error text, e.g. `template: __alert_A:1: function "foo" not
/// defined` or `template: __alert_A:1: unexpected EOF`.
pub fn check_alert_template(alert_name: &str, text: &str) -> Result<(), String> {
    let name = alert_template_name(alert_name);
    crate::parser::parse(&name, &format!("{ALERT_DEFS}{text}"), &is_defined).map(|_| ())
}

/// The names of all functions a parsed template set calls.
pub(crate) fn called_functions(set: &TreeSet) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, list) in &set.trees {
        walk_list(list, &mut out);
    }
    out
}

fn walk_list(list: &List, out: &mut BTreeSet<String>) {
    for n in &list.nodes {
        match n {
            Node::Action { pipe, .. } => walk_pipe(pipe, out),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                walk_pipe(&b.pipe, out);
                walk_list(&b.list, out);
                if let Some(e) = &b.else_list {
                    walk_list(e, out);
                }
            }
            Node::Template { pipe: Some(p), .. } => walk_pipe(p, out),
            Node::Template { pipe: None, .. } | Node::Text { .. } | Node::Break { .. } | Node::Continue { .. } => {}
        }
    }
}

fn walk_pipe(pipe: &Pipe, out: &mut BTreeSet<String>) {
    for c in &pipe.cmds {
        for a in &c.args {
            walk_arg(a, out);
        }
    }
}

fn walk_arg(a: &Arg, out: &mut BTreeSet<String>) {
    match a {
        Arg::Identifier { name, .. } => {
            out.insert(name.clone());
        }
        Arg::Chain { node, .. } => walk_arg(node, out),
        Arg::Pipe(p) => walk_pipe(p, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_templates_parse_like_promtool() {
        assert_eq!(check_alert_template("A", "{{ $labels.instance }} {{ $value | humanize }}"), Ok(()));
        assert_eq!(check_alert_template("A", "{{ with query \"up\" }}{{ . | first | value }}{{ end }}"), Ok(()));
        assert_eq!(
            check_alert_template("A", "{{ foo }}"),
            Err("template: __alert_A:1: function \"foo\" not defined".into())
        );
        assert_eq!(
            check_alert_template("A", "{{ toDuration 1 }}"),
            Err("template: __alert_A:1: function \"toDuration\" not defined".into())
        );
        assert_eq!(check_alert_template("A", "x\n{{ if }}"), Err("template: __alert_A:2: missing value for if".into()));
        assert_eq!(check_alert_template("A", "{{ range .x }}"), Err("template: __alert_A:1: unexpected EOF".into()));
        assert_eq!(
            check_alert_template("A", "{{ .Labels.x }"),
            Err("template: __alert_A:1: unexpected \"}\" in operand".into())
        );
        assert_eq!(
            check_alert_template("A", "{{ $undefined }}"),
            Err("template: __alert_A:1: undefined variable \"$undefined\"".into())
        );
    }

    #[test]
    fn walker_finds_nested_calls() {
        let set = crate::parser::parse(
            "t",
            "{{ if 1 }}{{ (query \"x\" | first).Labels }}{{ else }}{{ humanize 1 }}{{ end }}",
            &is_defined,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let called = called_functions(&set);
        assert!(called.contains("query") && called.contains("first") && called.contains("humanize"));
        assert!(!called.contains("label"));
    }
}
