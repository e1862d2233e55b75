//! Execution on gotmpl: lowers the parsed template into gotmpl's AST and
//! runs it with gotmpl's executor.
//!
//! Lowering makes gotmpl behave as Go's executor does where they differ:
//!
//! * every call of a function we implement (Prometheus's, and the Go
//!   builtins whose formatting or typing gotmpl gets wrong) goes through a
//!   per-call-site alias (`__pl_N`) that knows the call's source position and
//!   text, so errors read as Go's do: `template: NAME:LINE:COL: executing
//!   "NAME" at <humanize "x">: error calling humanize: ...`;
//! * every field access (`.a.b`, `$x.a`, `(pipe).a`, method calls such as
//!   `(toTime 1).Format "2006"`) becomes a call of such an alias that applies
//!   Go's rules: a missing label is `""`, a struct has no other fields, a
//!   `*time.Time` has methods;
//! * every printing action ends with a `__pl_print` stage that formats the
//!   value with Go's `fmt.Sprint` (floats as `1e+21`, `+Inf`, maps, structs).
//!
//! The first error a function reports is kept in the [`Ctx`] with its Go
//! text; gotmpl only sees an opaque error that stops execution.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use gotmpl::parse::{self as g, SmolStr};
use gotmpl::{FuncMap, MissingKey, TemplateError, Value, ValueFunc};

use crate::gofmt::{self, go_quote};
use crate::parser::{Arg, Command, List, Node, Num, Pipe, TreeSet};
use crate::types::{Kind, Registry, Types, type_name};

/// A template function as Go's executor calls it: the call site (for error
/// positions and argument counts) and the evaluated arguments, the piped
/// value last.
pub(crate) type GoFunc = Arc<dyn Fn(&Call<'_>, &[Value]) -> Result<Value, FnError> + Send + Sync>;

/// How a function failed; decides the error's wording and context.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FnError {
    /// The Go function returned an error: `error calling NAME: MSG`, at the command.
    Call(String),
    /// The executor rejected the call (argument count): `MSG`, at the function name.
    Exec(String),
    /// The executor rejected argument `i` (its type): `MSG`, at that argument.
    Arg(usize, String),
}

/// What an explicit argument was in the source.
#[derive(Debug, Clone)]
pub(crate) struct ArgInfo {
    pub(crate) pos: usize,
    pub(crate) text: String,
    /// A literal constant (number, bool, string, nil): Go type-checks those
    /// with different messages.
    pub(crate) literal: bool,
}

/// One call site.
pub(crate) struct Site {
    /// The source text the site is in (an index into [`Ctx`]'s sources).
    src: usize,
    /// The template (top-level or `define`) the site is in.
    pub(crate) tmpl: String,
    /// Function or field name.
    pub(crate) name: String,
    pub(crate) cmd_pos: usize,
    pub(crate) cmd_text: String,
    pub(crate) ident_pos: usize,
    pub(crate) ident_text: String,
    pub(crate) args: Vec<ArgInfo>,
    kind: SiteKind,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").field("tmpl", &self.tmpl).field("name", &self.name).field("cmd", &self.cmd_text).finish()
    }
}

enum SiteKind {
    Func(GoFunc),
    /// A field chain; the receiver is the first argument.
    Field(Vec<String>),
    /// The value a `range` iterates over, with the number of variables the
    /// range declares: passed through if Go can range over it.
    RangeCheck(usize),
    /// Always fails with this message (a `template` call of an undefined template).
    Fail(String),
}

/// One expansion's shared state.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) name: String,
    /// Each source text with its parse name (what Go's errors call it).
    sources: Vec<(String, String)>,
    pub(crate) reg: Registry,
    sites: Vec<Site>,
    error: Mutex<Option<String>>,
}

/// A call in progress.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) site: &'a Site,
}

impl Call<'_> {
    pub(crate) fn reg(&self) -> &Registry {
        &self.ctx.reg
    }

    /// Go's argument-count check: `want N got M` (`want at least N` for
    /// variadic functions, which count only the explicit arguments).
    pub(crate) fn arity(&self, args: &[Value], fixed: usize, variadic: bool) -> Result<(), FnError> {
        let name = &self.site.name;
        if variadic {
            if args.len() < fixed {
                return Err(FnError::Exec(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    self.site.args.len()
                )));
            }
        } else if args.len() != fixed {
            return Err(FnError::Exec(format!("wrong number of args for {name}: want {fixed} got {}", args.len())));
        }
        Ok(())
    }

    /// Go's conversion of argument `i` to a parameter of Go type `want`,
    /// failing with the executor's message.
    pub(crate) fn type_error(&self, args: &[Value], i: usize, want: &str) -> FnError {
        let v = &args[i];
        match self.site.args.get(i) {
            Some(a) if a.literal => {
                if matches!(v, Value::Nil) {
                    FnError::Arg(i, format!("cannot assign nil to {want}"))
                } else if want == "string" {
                    FnError::Arg(i, format!("expected string; found {}", a.text))
                } else {
                    FnError::Arg(i, format!("can't handle {} for arg of type {want}", a.text))
                }
            }
            _ if matches!(v, Value::Nil) => FnError::Arg(i, format!("invalid value; expected {want}")),
            _ => FnError::Arg(i, format!("wrong type for value; expected {want}; got {}", type_name(self.reg(), v))),
        }
    }

    /// A `string` parameter.
    pub(crate) fn str_arg<'v>(&self, args: &'v [Value], i: usize) -> Result<&'v str, FnError> {
        match &args[i] {
            Value::String(s) => Ok(s),
            _ => Err(self.type_error(args, i, "string")),
        }
    }
}

impl Ctx {
    fn line_col(&self, src: usize, pos: usize) -> (usize, usize) {
        let text = &self.sources[src].1;
        let before = &text[..pos.min(text.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        (line, col)
    }

    /// Go's `state.errorf` text for an error at `pos` of `site`'s source
    /// with context `at`.
    fn exec_error(&self, site: &Site, pos: usize, at: &str, msg: &str) -> String {
        let (line, col) = self.line_col(site.src, pos);
        let parse_name = &self.sources[site.src].0;
        format!("template: {parse_name}:{line}:{col}: executing {} at <{at}>: {msg}", go_quote(&site.tmpl))
    }

    fn fail(&self, site: &Site, e: FnError) {
        let text = match e {
            FnError::Call(msg) => {
                self.exec_error(site, site.cmd_pos, &site.cmd_text, &format!("error calling {}: {msg}", site.name))
            }
            FnError::Exec(msg) => self.exec_error(site, site.ident_pos, &site.ident_text, &msg),
            FnError::Arg(i, msg) => match site.args.get(i) {
                Some(a) => self.exec_error(site, a.pos, &a.text, &msg),
                None => self.exec_error(site, site.ident_pos, &site.ident_text, &msg),
            },
        };
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(text);
        }
    }
}

const ABORT: &str = "__promlake_template_error";

/// The functions a template may call: name → implementation.
pub(crate) type FuncTable = BTreeMap<&'static str, GoFunc>;

struct Lowerer<'a> {
    funcs: &'a FuncTable,
    text: &'a str,
    src: usize,
    sites: Vec<Site>,
    tmpl: String,
    defined: Vec<String>,
}

fn gpos(text: &str, offset: usize) -> g::Pos {
    g::Pos::new(offset, 1 + text[..offset.min(text.len())].matches('\n').count())
}

fn ident(pos: g::Pos, name: &str) -> g::Expr {
    g::Expr::Identifier(pos, SmolStr::from(name))
}

fn arg_info(a: &Arg) -> ArgInfo {
    // Go checks a parenthesized argument's type after evaluating it, when
    // its executor is positioned on the last node evaluated inside.
    let (pos, text) = match a {
        Arg::Pipe(p) => last_node(p),
        a => (a.pos(), a.to_string()),
    };
    ArgInfo {
        pos,
        text,
        literal: matches!(a, Arg::Number { .. } | Arg::Bool { .. } | Arg::String { .. } | Arg::Nil { .. }),
    }
}

impl Lowerer<'_> {
    fn site(&mut self, site: Site) -> String {
        self.sites.push(site);
        format!("__pl_{}", self.sites.len() - 1)
    }

    fn list(&mut self, list: &List) -> g::ListNode {
        let pos = gpos(self.text, 0);
        g::ListNode { pos, nodes: list.nodes.iter().map(|n| self.node(n)).collect() }
    }

    fn node(&mut self, n: &Node) -> g::Node {
        match n {
            Node::Text { pos, text } => {
                g::Node::Text(g::TextNode { pos: gpos(self.text, *pos), text: Arc::from(text.as_str()) })
            }
            Node::Action { pos, pipe } => {
                let print = pipe.decl.is_empty();
                g::Node::Action(g::ActionNode { pos: gpos(self.text, *pos), pipe: self.pipe(pipe, print) })
            }
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                let mut pipe = self.pipe(&b.pipe, false);
                if let Node::Range(_) = n {
                    // Go rejects ranging over a number, string or struct.
                    let (pos, text) = last_node(&b.pipe);
                    let alias = self.site(Site {
                        src: self.src,
                        tmpl: self.tmpl.clone(),
                        name: "range".into(),
                        cmd_pos: pos,
                        cmd_text: text.clone(),
                        ident_pos: pos,
                        ident_text: text,
                        args: Vec::new(),
                        kind: SiteKind::RangeCheck(b.pipe.decl.len()),
                    });
                    pipe.commands.push(g::CommandNode { pos: pipe.pos, args: vec![ident(pipe.pos, &alias)] });
                }
                let branch = g::BranchNode {
                    pos: gpos(self.text, b.pos),
                    pipe,
                    body: self.list(&b.list),
                    else_body: b.else_list.as_ref().map(|l| self.list(l)),
                };
                match n {
                    Node::If(_) => g::Node::If(branch),
                    Node::Range(_) => g::Node::Range(branch),
                    _ => g::Node::With(branch),
                }
            }
            Node::Template { pos, name, pipe } if !self.defined.contains(name) => {
                let text = match pipe {
                    Some(p) => format!("{{{{template {} {p}}}}}", go_quote(name)),
                    None => format!("{{{{template {}}}}}", go_quote(name)),
                };
                let alias = self.site(Site {
                    src: self.src,
                    tmpl: self.tmpl.clone(),
                    name: "template".into(),
                    cmd_pos: *pos,
                    cmd_text: text.clone(),
                    ident_pos: *pos,
                    ident_text: text,
                    args: Vec::new(),
                    kind: SiteKind::Fail(format!("template {} not defined", go_quote(name))),
                });
                let gp = gpos(self.text, *pos);
                g::Node::Action(g::ActionNode {
                    pos: gp,
                    pipe: g::PipeNode {
                        pos: gp,
                        decl: Vec::new(),
                        commands: vec![g::CommandNode { pos: gp, args: vec![ident(gp, &alias)] }],
                        is_assign: false,
                    },
                })
            }
            Node::Template { pos, name, pipe } => g::Node::Template(g::TemplateNode {
                pos: gpos(self.text, *pos),
                name: SmolStr::from(name.as_str()),
                pipe: pipe.as_ref().map(|p| self.pipe(p, false)),
            }),
            Node::Break { pos } => g::Node::Break(gpos(self.text, *pos)),
            Node::Continue { pos } => g::Node::Continue(gpos(self.text, *pos)),
        }
    }

    fn pipe(&mut self, p: &Pipe, print: bool) -> g::PipeNode {
        let pos = gpos(self.text, p.pos);
        let mut commands: Vec<g::CommandNode> = p.cmds.iter().map(|c| self.command(c)).collect();
        if print {
            commands.push(g::CommandNode { pos, args: vec![ident(pos, PRINT)] });
        }
        g::PipeNode {
            pos,
            decl: p.decl.iter().map(|d| SmolStr::from(d.as_str())).collect(),
            commands,
            is_assign: p.is_assign,
        }
    }

    fn command(&mut self, c: &Command) -> g::CommandNode {
        let pos = gpos(self.text, c.pos);
        let first = &c.args[0];
        let rest = &c.args[1..];
        match first {
            Arg::Identifier { name, pos: ipos } if self.funcs.contains_key(name.as_str()) => {
                let f = self.funcs.get(name.as_str()).cloned();
                let alias = self.site(Site {
                    src: self.src,
                    tmpl: self.tmpl.clone(),
                    name: name.clone(),
                    cmd_pos: c.pos,
                    cmd_text: c.to_string(),
                    ident_pos: *ipos,
                    ident_text: name.clone(),
                    args: rest.iter().map(arg_info).collect(),
                    kind: SiteKind::Func(f.unwrap_or_else(|| Arc::new(|_: &Call<'_>, _: &[Value]| Ok(Value::Nil)))),
                });
                let mut args = vec![ident(gpos(self.text, *ipos), &alias)];
                args.extend(rest.iter().map(|a| self.arg(a)));
                g::CommandNode { pos, args }
            }
            Arg::Field { .. } | Arg::Chain { .. } | Arg::Variable { .. } if field_parts(first).is_some() => {
                let (base, fields) = field_parts(first).unwrap_or((first.clone(), Vec::new()));
                let alias = self.field_site(first, fields, rest);
                let mut args = vec![ident(gpos(self.text, first.pos()), &alias), self.arg(&base)];
                args.extend(rest.iter().map(|a| self.arg(a)));
                g::CommandNode { pos, args }
            }
            _ => g::CommandNode { pos, args: c.args.iter().map(|a| self.arg(a)).collect() },
        }
    }

    fn field_site(&mut self, node: &Arg, fields: Vec<String>, rest: &[Arg]) -> String {
        // Go positions field errors on the field or variable node, or for
        // `(pipe).Field` on the last node evaluated inside the pipe.
        let (pos, text) = match node {
            Arg::Chain { node: inner, .. } => last_of_arg(inner),
            _ => (node.pos(), node.to_string()),
        };
        self.site(Site {
            src: self.src,
            tmpl: self.tmpl.clone(),
            name: fields.last().cloned().unwrap_or_default(),
            cmd_pos: pos,
            cmd_text: text.clone(),
            ident_pos: pos,
            ident_text: text,
            args: rest.iter().map(arg_info).collect(),
            kind: SiteKind::Field(fields),
        })
    }

    /// An operand in argument position.
    fn arg(&mut self, a: &Arg) -> g::Expr {
        let pos = gpos(self.text, a.pos());
        match a {
            Arg::Identifier { name, pos: ipos } => {
                let Some(f) = self.funcs.get(name.as_str()).cloned() else {
                    return ident(pos, name);
                };
                // Go reports an argument-position call at the identifier itself.
                let alias = self.site(Site {
                    src: self.src,
                    tmpl: self.tmpl.clone(),
                    name: name.clone(),
                    cmd_pos: *ipos,
                    cmd_text: name.clone(),
                    ident_pos: *ipos,
                    ident_text: name.clone(),
                    args: Vec::new(),
                    kind: SiteKind::Func(f),
                });
                ident(pos, &alias)
            }
            Arg::Field { .. } | Arg::Variable { .. } | Arg::Chain { .. } if field_parts(a).is_some() => {
                let (base, fields) = field_parts(a).unwrap_or((a.clone(), Vec::new()));
                let alias = self.field_site(a, fields, &[]);
                let base = self.arg(&base);
                g::Expr::Pipe(
                    pos,
                    g::PipeNode {
                        pos,
                        decl: Vec::new(),
                        commands: vec![g::CommandNode { pos, args: vec![ident(pos, &alias), base] }],
                        is_assign: false,
                    },
                )
            }
            Arg::Variable { idents, .. } => g::Expr::Variable(pos, SmolStr::from(idents[0].as_str()), Vec::new()),
            Arg::Dot { .. } | Arg::Field { .. } | Arg::Chain { .. } => g::Expr::Dot(pos),
            Arg::Nil { .. } => g::Expr::Nil(pos),
            Arg::Bool { val, .. } => g::Expr::Bool(pos, *val),
            Arg::Number { num, .. } => match *num {
                Num::Int(i) => g::Expr::Number(pos, g::Number::Int(i)),
                Num::Uint(_) => {
                    // Go's untyped constants become `int`: a uint64-only literal overflows.
                    let text = a.to_string();
                    let alias = self.site(Site {
                        src: self.src,
                        tmpl: self.tmpl.clone(),
                        name: text.clone(),
                        cmd_pos: a.pos(),
                        cmd_text: text.clone(),
                        ident_pos: a.pos(),
                        ident_text: text.clone(),
                        args: Vec::new(),
                        kind: SiteKind::Fail(format!("{text} overflows int")),
                    });
                    ident(pos, &alias)
                }
                Num::Float(f) => g::Expr::Number(pos, g::Number::Float(f)),
                Num::Complex(re, im) => g::Expr::String(
                    pos,
                    Arc::from(format!("({}{}i)", gofmt::float_v(re), {
                        let s = gofmt::float_v(im);
                        if s.starts_with(['-', '+']) { s } else { format!("+{s}") }
                    })),
                ),
            },
            Arg::String { text, .. } => g::Expr::String(pos, Arc::from(text.as_str())),
            Arg::Pipe(p) => g::Expr::Pipe(pos, self.pipe(p, false)),
        }
    }
}

/// The node Go's executor last positioned on while evaluating `pipe`: the
/// context it quotes for errors raised after the evaluation.
fn last_node(pipe: &Pipe) -> (usize, String) {
    let Some(cmd) = pipe.cmds.last() else {
        return (pipe.pos, pipe.to_string());
    };
    let first = &cmd.args[0];
    match first {
        Arg::Identifier { .. } => match cmd.args.last() {
            Some(last) if cmd.args.len() > 1 => last_of_arg(last),
            _ => (first.pos(), first.to_string()),
        },
        _ => last_of_arg(first),
    }
}

fn last_of_arg(a: &Arg) -> (usize, String) {
    match a {
        Arg::Pipe(p) => last_node(p),
        Arg::Chain { node, .. } => last_of_arg(node),
        a => (a.pos(), a.to_string()),
    }
}

/// Whether Go's `range` accepts the value (nil ranges zero times).
fn range_check(call: &Call<'_>, args: &[Value], vars: usize) -> Result<Value, FnError> {
    let v = args.last().cloned().unwrap_or(Value::Nil);
    if vars > 1 && matches!(v, Value::Int(_) | Value::Uint(_)) {
        return Err(FnError::Exec(format!(
            "can't use {} to iterate over more than one variable",
            gofmt::sprint1(call.reg(), &v)
        )));
    }
    let ok = match &v {
        Value::Nil | Value::List(_) | Value::Int(_) | Value::Uint(_) => true,
        Value::Map(_) => matches!(call.reg().kind(&v), None | Some(Kind::StringMap | Kind::ArgsMap | Kind::Kv)),
        _ => false,
    };
    if ok {
        return Ok(v);
    }
    Err(FnError::Exec(format!("range can't iterate over {}", gofmt::sprint1(call.reg(), &v))))
}

/// Splits a field-access operand into its receiver and field names.
fn field_parts(a: &Arg) -> Option<(Arg, Vec<String>)> {
    match a {
        Arg::Field { pos, idents } => Some((Arg::Dot { pos: *pos }, idents.clone())),
        Arg::Variable { pos, idents } if idents.len() > 1 => {
            Some((Arg::Variable { pos: *pos, idents: vec![idents[0].clone()] }, idents[1..].to_vec()))
        }
        Arg::Chain { node, fields, .. } => Some(((**node).clone(), fields.clone())),
        _ => None,
    }
}

const PRINT: &str = "__pl_print";

/// Go's evaluation of one field (or method) on a receiver.
fn eval_field(call: &Call<'_>, receiver: &Value, field: &str, args: &[Value], last: bool) -> Result<Value, FnError> {
    let reg = call.reg();
    let has_args = !args.is_empty();
    let kind = reg.kind(receiver);
    let cant = || FnError::Exec(format!("can't evaluate field {field} in type {}", type_name(reg, receiver)));
    if let Some(t) = kind.and_then(Kind::time) {
        let mut sargs = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            match a {
                Value::String(s) => sargs.push(s.to_string()),
                _ if last => return Err(call.type_error(args, i, "string")),
                _ => return Err(cant()),
            }
        }
        let tname = type_name(reg, receiver);
        return match crate::gotime::call_method(t, field, &sargs, &tname) {
            Ok(crate::gotime::MethodResult::Int(i)) => Ok(Value::Int(i)),
            Ok(crate::gotime::MethodResult::Bool(b)) => Ok(Value::Bool(b)),
            Ok(crate::gotime::MethodResult::Str(s)) => Ok(Value::String(s.into())),
            Ok(crate::gotime::MethodResult::Time(t)) => Ok(time_val(reg, t)),
            Err(msg) => Err(FnError::Exec(msg)),
        };
    }
    if let Some(k) = kind
        && let Some(r) = crate::alertmanager::call_method(call, k, receiver, field, args)
    {
        return r;
    }
    match receiver {
        Value::Nil => Ok(Value::Nil),
        Value::Map(m) => {
            if let Some(fields) = kind.and_then(Kind::struct_fields) {
                if !fields.contains(&field) {
                    return Err(cant());
                }
                if has_args {
                    return Err(FnError::Exec(format!("{field} has arguments but cannot be invoked as function")));
                }
                return Ok(m.get(field).cloned().unwrap_or(Value::Nil));
            }
            if matches!(kind, Some(Kind::Duration(_))) {
                return Err(cant());
            }
            if has_args {
                return Err(FnError::Exec(format!("{field} is not a method but has arguments")));
            }
            Ok(match m.get(field) {
                Some(v) => v.clone(),
                // missingkey=zero: the zero value of the map's element type.
                None if kind.is_some_and(Kind::is_string_map) => Value::String(Arc::from("")),
                None => Value::Nil,
            })
        }
        _ => Err(cant()),
    }
}

/// A `*time.Time` value in UTC.
pub(crate) fn time_value(reg: &Registry, unix_nanos: i64) -> Value {
    time_of_kind(reg, Kind::Time(crate::gotime::GoTime::utc_nanos(unix_nanos)))
}

/// A `time.Time` value.
pub(crate) fn time_val(reg: &Registry, t: crate::gotime::GoTime) -> Value {
    time_of_kind(reg, Kind::TimeValue(t))
}

/// A tagged time of `kind` (`Time` or `TimeValue`).
fn time_of_kind(reg: &Registry, kind: Kind) -> Value {
    let ns = kind.time().map_or(0, crate::gotime::GoTime::unix_nanos);
    let mut m = BTreeMap::new();
    m.insert(Arc::from("UnixNano"), Value::Int(ns));
    reg.tag(Value::Map(Arc::new(m)), kind)
}

fn field_chain(call: &Call<'_>, fields: &[String], args: &[Value]) -> Result<Value, FnError> {
    let Some((receiver, extra)) = args.split_first() else {
        return Ok(Value::Nil);
    };
    let mut v = receiver.clone();
    for (i, f) in fields.iter().enumerate() {
        let last = i + 1 == fields.len();
        v = eval_field(call, &v, f, if last { extra } else { &[] }, last)?;
    }
    Ok(v)
}

/// A lowered, runnable template set.
pub(crate) struct Program {
    ctx: Arc<Ctx>,
    trees: Vec<(String, g::ListNode)>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("name", &self.ctx.name).field("templates", &self.trees.len()).finish()
    }
}

/// One parsed source text of a template set.
pub(crate) struct Unit<'a> {
    /// The name Go's errors give the text (the name it was parsed under).
    pub(crate) parse_name: &'a str,
    pub(crate) text: &'a str,
    pub(crate) set: &'a TreeSet,
}

impl Program {
    /// Lowers a parsed template set named `name` (parsed from `text`).
    pub(crate) fn new(name: &str, text: &str, set: &TreeSet, funcs: &FuncTable) -> Program {
        Program::from_units(name, &[Unit { parse_name: name, text, set }], funcs)
    }

    /// Lowers the templates of several texts parsed in turn into one set,
    /// as Go's successive `Parse` calls build it (a later definition
    /// replaces an earlier one unless it is empty), to execute `name`.
    pub(crate) fn from_units(name: &str, units: &[Unit<'_>], funcs: &FuncTable) -> Program {
        let mut chosen: Vec<(String, usize, &List)> = Vec::new();
        for (u, unit) in units.iter().enumerate() {
            // The template executed is the last text's own tree, even an
            // empty one (Go executes the template it just parsed).
            let executed = u + 1 == units.len();
            for (tname, list) in &unit.set.trees {
                match chosen.iter_mut().find(|(n, _, _)| n == tname) {
                    Some(_) if crate::parser::is_empty_tree(list) && !(executed && tname == name) => {}
                    Some(slot) => *slot = (tname.clone(), u, list),
                    None => chosen.push((tname.clone(), u, list)),
                }
            }
        }
        let defined = chosen.iter().map(|(n, _, _)| n.clone()).collect();
        let mut l = Lowerer { funcs, text: "", src: 0, sites: Vec::new(), tmpl: String::new(), defined };
        let mut trees = Vec::new();
        for (tname, u, list) in chosen {
            l.tmpl = tname.clone();
            l.text = units[u].text;
            l.src = u;
            trees.push((tname, l.list(list)));
        }
        let ctx = Arc::new(Ctx {
            name: name.to_string(),
            sources: units.iter().map(|u| (u.parse_name.to_string(), u.text.to_string())).collect(),
            reg: Registry::default(),
            sites: l.sites,
            error: Mutex::new(None),
        });
        Program { ctx, trees }
    }

    /// The registry that tags this program's values.
    pub(crate) fn registry(&self) -> &Registry {
        &self.ctx.reg
    }

    /// Executes the template named like the program with `data` as dot;
    /// `Err` is Go's execution error text (without Prometheus's prefix).
    pub(crate) fn execute(self, data: &Value) -> Result<String, String> {
        let mut fm = FuncMap::new();
        for i in 0..self.ctx.sites.len() {
            let ctx = Arc::clone(&self.ctx);
            let f: ValueFunc = Arc::new(move |args: &[Value]| {
                let site = &ctx.sites[i];
                let call = Call { ctx: &ctx, site };
                let r = match &site.kind {
                    SiteKind::Func(f) => f(&call, args),
                    SiteKind::Field(fields) => field_chain(&call, fields, args),
                    SiteKind::RangeCheck(vars) => range_check(&call, args, *vars),
                    SiteKind::Fail(msg) => Err(FnError::Exec(msg.clone())),
                };
                r.map_err(|e| {
                    ctx.fail(site, e);
                    TemplateError::Exec(ABORT.into())
                })
            });
            fm.insert(format!("__pl_{i}"), f);
        }
        let ctx = Arc::clone(&self.ctx);
        fm.insert(
            PRINT.to_string(),
            Arc::new(move |args: &[Value]| {
                Ok(match args.last() {
                    None | Some(Value::Nil) => Value::String(Arc::from("<no value>")),
                    Some(v) => Value::String(Arc::from(gofmt::sprint1(&ctx.reg, v))),
                })
            }),
        );
        let root = format!("{{{{template {} .}}}}", go_quote(&self.ctx.name));
        let result = gotmpl::Template::new("__promlake_root")
            .missing_key(MissingKey::ZeroValue)
            .funcs(fm)
            .parse(&root)
            .map(|t| self.trees.into_iter().fold(t, |t, (name, tree)| t.add_parse_tree(&name, tree)))
            .and_then(|t| t.execute_to_string(data));
        match result {
            Ok(s) => Ok(s),
            Err(e) => {
                if let Some(msg) = self.ctx.error.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    return Err(msg);
                }
                let msg = match e {
                    TemplateError::Exec(m) => m,
                    TemplateError::UndefinedTemplate(n) => format!("template {} not defined", go_quote(&n)),
                    other => other.to_string(),
                };
                Err(format!("template: {}: {msg}", self.ctx.name))
            }
        }
    }
}
