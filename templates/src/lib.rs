//! PromLake's Go `text/template` engine, for the ruler's alerting-rule
//! labels and annotations (rendered exactly as Prometheus 3.5 renders them)
//! and for the alerting engine's notification templates (rendered exactly
//! as Alertmanager 0.33 renders them).
//!
//! # What it does
//!
//! * [`NotificationTemplates`] is Alertmanager's `template.FromGlobs`: its
//!   default templates ([`DEFAULT_TMPL`], [`EMAIL_TMPL`]) and the user's
//!   template files; `execute_text` is `ExecuteTextString` over
//!   [`NotificationData`] (Alertmanager's `template.Data`, whose `KV`,
//!   `Pairs` and `Alerts` methods and `time.Time` fields templates call)
//!   with Alertmanager's function map (`tz`, `date`, `toJson`, `dict`…).
//!   Checked against the real `amtool template render` in
//!   `tests/amtool_oracle.rs`.
//! * [`check_alert_template`] is Prometheus's `ParseTest` (what `promtool
//!   check rules` and rule loading run): it accepts exactly the templates
//!   Go's `template.Parse` accepts with Prometheus's function map, and
//!   otherwise returns Go's message (`template: __alert_A:1: function "foo"
//!   not defined`).
//! * [`expand_alert_template`] is `AlertingRule.Eval`'s expansion: the
//!   `$labels`, `$externalLabels`, `$externalURL` and `$value` definitions
//!   prepended, [`AlertData`] as dot, the rule's evaluation time for `query`
//!   (through a [`Querier`]); [`expand_or_error_text`] gives the
//!   `<error expanding template: ...>` value Prometheus uses on failure.
//!
//! # Data flow
//!
//! 1. A Go-faithful lexer and parser (`lexer`, `parser`) tokenize and parse
//!    the text with Go's grammar, checking as Go does that functions are
//!    defined and variables declared (`check` holds the function names and
//!    an AST walker over the result).
//! 2. `exec` lowers that tree into [gotmpl]'s AST (the Rust port of Go's
//!    `text/template` whose executor, values and remaining builtins run the
//!    template), rewriting each call and field access into a call of a
//!    per-site function so that errors carry Go's position and context and
//!    field accesses follow Go's typing, and ending each printing action
//!    with a Go `fmt.Sprint` stage.
//! 3. gotmpl executes it with Prometheus's functions (`prometheus`) and Go
//!    builtins re-implemented for Go's formatting (`builtins`, `gofmt`),
//!    over values tagged with their Go types (`types`): label maps,
//!    the alert struct, query samples, `args` maps, `*time.Time`.
//!
//! # Guarantees
//!
//! * Output is Go's byte for byte for the values alert templates handle:
//!   floats print with Go's `%v` (`1e+21`, `1.23456789e+08`, `+Inf`), `%g`
//!   precision rules (`%.4g` of humanize), Go's `printf` verbs and error
//!   markers (`%!d(float64=1.5)`), `time.Time.String()`, and a missing
//!   label is `""` (Prometheus's `missingkey=zero`). This is checked against
//!   the real `promtool` in `tests/promtool_oracle.rs`.
//! * Parse errors have Go's text. Execution errors of function calls,
//!   field accesses, `range` and `template` have Go's text including line,
//!   column and context; the few raised inside gotmpl itself (its `call`
//!   and `slice` builtins, its recursion and `range` iteration limits) keep
//!   gotmpl's wording under Go's `template: NAME:` prefix.
//! * `query` runs synchronously at the evaluation time; the borrowed
//!   [`Querier`] is served from a scoped thread only when the template
//!   calls `query`.
//!
//! Known differences from Go: `html/template`'s contextual escaping (what
//! Alertmanager applies to HTML fields such as e-mail bodies) is not
//! reproduced; a nil label map in notification data is an empty one;
//! `now` carries no monotonic clock reading; `title` approximates
//! `x/text/cases` word breaking; regular expressions run on the `regex`
//! crate (RE2 syntax, Perl classes kept ASCII as in Go); case mapping and
//! `%q`'s printability use approximations of Go's Unicode tables; times,
//! durations and Alertmanager's data types have methods, other values
//! none; a `query` result keeps the [`Querier`]'s order (Prometheus: the
//! storage's).

mod alertmanager;
mod builtins;
mod check;
mod exec;
mod goconv;
mod gofmt;
mod gostd;
mod gotime;
mod lexer;
mod parser;
mod prometheus;
mod types;

pub use alertmanager::{
    ALERTMANAGER_FUNCTIONS, DEFAULT_TMPL, EMAIL_TMPL, NotificationAlert, NotificationData, NotificationTemplates,
    NotificationTime, zero_time,
};
pub use check::{PROMETHEUS_FUNCTIONS, check_alert_template};

/// Go's formatting of values, for other outputs that must match Go
/// programs' (`promlake rules test` prints as promtool).
pub mod go {
    pub use crate::gofmt::{format_float, go_quote};
    pub use crate::gotime::load_location;
}
pub use prometheus::{
    AlertData, ExpandOptions, HistogramValue, Querier, QuerySample, error_text, expand_alert_template,
    expand_alert_template_with, expand_or_error_text,
};
