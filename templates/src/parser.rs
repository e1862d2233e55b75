//! A parser for Go's `text/template` language with Go's grammar, scoping and
//! error reporting: it accepts exactly the texts Go's `template.Parse`
//! accepts (given the same function names), rejects the others with Go's
//! message (`template: NAME:LINE: MSG`), and checks at parse time, as Go
//! does, that every function is defined and every variable declared.
//!
//! Its syntax tree keeps what Go's node `String()` methods print (the
//! literal texts), which execution errors quote as their context.

use crate::goconv;
use crate::lexer::{Item, ItemType, Lexer};

/// A parsed template body.
#[derive(Debug, Clone)]
pub(crate) struct List {
    pub(crate) nodes: Vec<Node>,
}

/// A statement-level node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text { pos: usize, text: String },
    Action { pos: usize, pipe: Pipe },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template { pos: usize, name: String, pipe: Option<Pipe> },
    Break { pos: usize },
    Continue { pos: usize },
}

/// `if`/`range`/`with`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pos: usize,
    pub(crate) pipe: Pipe,
    pub(crate) list: List,
    pub(crate) else_list: Option<List>,
}

/// A pipeline with optional variable declarations.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Command>,
}

/// One command (`f a b`, or a single operand).
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

/// The value of a number literal, as Go's execution treats an untyped constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    /// Fits `uint64` only: execution fails with "overflows int".
    Uint(u64),
    Float(f64),
    /// A complex constant (Go prints it as `(re+imi)`).
    Complex(f64, f64),
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    /// `$x.a.b`: `idents[0]` is the variable.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    /// `.a.b`
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        text: String,
        num: Num,
    },
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Variable { pos, .. }
            | Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// Go's node String() methods (the "context" of execution errors).

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The templates a text defines: the top-level one and each `define`/`block`,
/// after Go's rules for redefinitions.
#[derive(Debug, Clone)]
pub(crate) struct TreeSet {
    pub(crate) trees: Vec<(String, List)>,
}

impl TreeSet {
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&List> {
        self.trees.iter().find(|(n, _)| n == name).map(|(_, l)| l)
    }
}

pub(crate) fn is_empty_tree(list: &List) -> bool {
    list.nodes.iter().all(|n| matches!(n, Node::Text { text, .. } if text.trim_matches(is_go_space).is_empty()))
}

/// `bytes.TrimSpace`'s notion of white space (Unicode White_Space).
fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

const MAX_STACK_DEPTH: usize = 10_000;

/// Per-template parsing state (Go keeps one `Tree` per define).
#[derive(Debug)]
struct TreeState {
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    action_line: usize,
    range_depth: usize,
    stack_depth: usize,
}

impl TreeState {
    fn new() -> Self {
        let blank = Item { typ: ItemType::Eof, pos: 0, val: String::new(), line: 0 };
        TreeState {
            token: [blank.clone(), blank.clone(), blank],
            peek_count: 0,
            vars: vec!["$".to_string()],
            action_line: 0,
            range_depth: 0,
            stack_depth: 0,
        }
    }
}

/// Parses `text` as Go's `template.New(name).Funcs(...).Parse(text)` would,
/// `has_func` deciding which identifiers are functions.
pub(crate) fn parse(name: &str, text: &str, has_func: &dyn Fn(&str) -> bool) -> Result<TreeSet, String> {
    let mut lex = Lexer::new(text);
    lex.break_ok = !has_func("break");
    lex.continue_ok = !has_func("continue");
    let mut p = Parser { parse_name: name.to_string(), lex, st: TreeState::new(), has_func, set: Vec::new() };
    let root = p.parse_top()?;
    p.add(name, root)?;
    Ok(TreeSet { trees: p.set })
}

struct Parser<'a, 'f> {
    parse_name: String,
    lex: Lexer<'a>,
    st: TreeState,
    has_func: &'f dyn Fn(&str) -> bool,
    set: Vec<(String, List)>,
}

type PResult<T> = Result<T, String>;

impl Parser<'_, '_> {
    // Token plumbing, with Go's three-token lookahead.

    fn next(&mut self) -> Item {
        if self.st.peek_count > 0 {
            self.st.peek_count -= 1;
        } else {
            self.st.token[0] = self.lex.next_item();
        }
        self.st.token[self.st.peek_count].clone()
    }

    fn backup(&mut self) {
        self.st.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.st.token[1] = t1;
        self.st.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.st.token[1] = t1;
        self.st.token[2] = t2;
        self.st.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.st.peek_count > 0 {
            return self.st.token[self.st.peek_count - 1].clone();
        }
        self.st.peek_count = 1;
        self.st.token[0] = self.lex.next_item();
        self.st.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl std::fmt::Display) -> String {
        format!("template: {}:{}: {msg}", self.parse_name, self.st.token[0].line)
    }

    fn unexpected(&self, token: &Item, context: &str) -> String {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.st.action_line != 0 && self.st.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.parse_name, self.st.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{}{extra}", token.describe()));
        }
        self.errorf(format!("unexpected {} in {context}", token.describe()))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    /// Go's `Tree.add`: a name may be defined once with a non-empty body.
    fn add(&mut self, name: &str, list: List) -> PResult<()> {
        match self.set.iter_mut().find(|(n, _)| n == name) {
            None => self.set.push((name.to_string(), list)),
            Some(slot) if is_empty_tree(&slot.1) => slot.1 = list,
            Some(_) if !is_empty_tree(&list) => {
                return Err(
                    self.errorf(format!("template: multiple definition of template {}", crate::gofmt::go_quote(name)))
                );
            }
            Some(_) => {}
        }
        Ok(())
    }

    // Grammar.

    fn parse_top(&mut self) -> PResult<List> {
        let mut list = List { nodes: Vec::new() };
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
                Parsed::Node(n) => list.nodes.push(n),
            }
        }
        Ok(list)
    }

    /// Runs `f` with a fresh per-template state (for `define` and `block`).
    fn in_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let saved = std::mem::replace(&mut self.st, TreeState::new());
        let r = f(self);
        self.st = saved;
        r
    }

    fn parse_definition(&mut self) -> PResult<()> {
        self.in_new_tree(|p| {
            let context = "define clause";
            let t = p.next_non_space();
            if t.typ != ItemType::String && t.typ != ItemType::RawString {
                return Err(p.unexpected(&t, context));
            }
            let name = goconv::unquote(&t.val).ok_or_else(|| p.errorf("invalid syntax"))?;
            p.expect(ItemType::RightDelim, context)?;
            let (list, end) = p.item_list()?;
            if let Ended::Else = end {
                return Err(p.errorf(format!("unexpected {{{{else}}}} in {context}")));
            }
            p.add(&name, list)
        })
    }

    fn item_list(&mut self) -> PResult<(List, Ended)> {
        let mut list = List { nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::End => return Ok((list, Ended::End)),
                Parsed::Else => return Ok((list, Ended::Else)),
                Parsed::Node(n) => list.nodes.push(n),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text { pos: t.pos, text: t.val })),
            ItemType::LeftDelim => {
                self.st.action_line = t.line;
                let r = self.action();
                self.st.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break | ItemType::Continue => {
                let what = if t.typ == ItemType::Break { "{{break}}" } else { "{{continue}}" };
                let n = self.next_non_space();
                if n.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&n, what));
                }
                if self.st.range_depth == 0 {
                    return Err(self.errorf(format!("{what} outside {{{{range}}}}")));
                }
                return Ok(Parsed::Node(if t.typ == ItemType::Break {
                    Node::Break { pos: t.pos }
                } else {
                    Node::Continue { pos: t.pos }
                }));
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.branch("if").map(|b| Parsed::Node(Node::If(b))),
            ItemType::Range => return self.branch("range").map(|b| Parsed::Node(Node::Range(b))),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::With => return self.branch("with").map(|b| Parsed::Node(Node::With(b))),
            _ => {}
        }
        self.backup();
        let t = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action { pos: t.pos, pipe }))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe { pos: token.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break 'decls;
            }
            self.next();
            let after = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.st.vars.push(v.val);
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.st.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    let p = self.peek_non_space();
                    if matches!(p.typ, ItemType::Variable | ItemType::RightDelim | ItemType::RightParen) {
                        continue 'decls;
                    }
                    return Err(self.errorf("range can only initialize variables"));
                }
                return Err(self.errorf(format!("too many declarations in {context}")));
            } else if after.typ == ItemType::Space {
                self.backup3(v, after);
            } else {
                self.backup2(v);
            }
            break 'decls;
        }
        loop {
            let t = self.next_non_space();
            match t.typ {
                x if x == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool { .. } | Arg::Dot { .. } | Arg::Nil { .. } | Arg::Number { .. } | Arg::String { .. })
            ) {
                return Err(self.errorf(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    fn branch(&mut self, context: &str) -> PResult<Branch> {
        let nvars = self.st.vars.len();
        let r = self.branch_inner(context);
        self.st.vars.truncate(nvars);
        r
    }

    fn branch_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.st.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.st.range_depth -= 1;
        }
        let (list, end) = r?;
        let mut else_list = None;
        if let Ended::Else = end {
            let peek = self.peek().typ;
            if context == "if" && peek == ItemType::If {
                self.next();
                let inner = self.branch("if")?;
                else_list = Some(List { nodes: vec![Node::If(inner)] });
            } else if context == "with" && peek == ItemType::With {
                self.next();
                let inner = self.branch("with")?;
                else_list = Some(List { nodes: vec![Node::With(inner)] });
            } else {
                let (l, e) = self.item_list()?;
                if let Ended::Else = e {
                    return Err(self.errorf("expected end; found {{else}}"));
                }
                else_list = Some(l);
            }
        }
        Ok(Branch { pos: pipe.pos, pipe, list, else_list })
    }

    fn template_name(&mut self, t: &Item, context: &str) -> PResult<String> {
        match t.typ {
            ItemType::String | ItemType::RawString => {
                goconv::unquote(&t.val).ok_or_else(|| self.errorf("invalid syntax"))
            }
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, ItemType::RightDelim)?);
        }
        Ok(Node::Template { pos: t.pos, name, pipe })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        let (list, end) = self.in_new_tree(|p| p.item_list())?;
        if let Ended::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add(&name, list)?;
        Ok(Node::Template { pos: t.pos, name, pipe: Some(pipe) })
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(a) = self.operand()? {
                cmd.args.push(a);
            }
            let t = self.next();
            match t.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos: chain_pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos: chain_pos, idents }
            }
            n @ (Arg::Bool { .. } | Arg::String { .. } | Arg::Number { .. } | Arg::Nil { .. } | Arg::Dot { .. }) => {
                return Err(self.errorf(format!("unexpected . after term {}", crate::gofmt::go_quote(&n.to_string()))));
            }
            n => Arg::Chain { pos: chain_pos, node: Box::new(n), fields },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        Ok(Some(match t.typ {
            ItemType::Identifier => {
                if !(self.has_func)(&t.val) {
                    return Err(self.errorf(format!("function {} not defined", crate::gofmt::go_quote(&t.val))));
                }
                Arg::Identifier { pos: t.pos, name: t.val }
            }
            ItemType::Dot => Arg::Dot { pos: t.pos },
            ItemType::Nil => Arg::Nil { pos: t.pos },
            ItemType::Variable => {
                let idents: Vec<String> = t.val.split('.').map(str::to_string).collect();
                if !self.st.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!("undefined variable {}", crate::gofmt::go_quote(&idents[0]))));
                }
                Arg::Variable { pos: t.pos, idents }
            }
            ItemType::Field => Arg::Field { pos: t.pos, idents: t.val[1..].split('.').map(str::to_string).collect() },
            ItemType::Bool => Arg::Bool { pos: t.pos, val: t.val == "true" },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let num = new_number(&t.val, t.typ).map_err(|e| self.errorf(e))?;
                Arg::Number { pos: t.pos, text: t.val, num }
            }
            ItemType::LeftParen => {
                if self.st.stack_depth >= MAX_STACK_DEPTH {
                    return Err(self.errorf("max expression depth exceeded"));
                }
                self.st.stack_depth += 1;
                let r = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.st.stack_depth -= 1;
                Arg::Pipe(Box::new(r?))
            }
            ItemType::String | ItemType::RawString => {
                let text = goconv::unquote(&t.val).ok_or_else(|| self.errorf("invalid syntax"))?;
                Arg::String { pos: t.pos, quoted: t.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End,
    Else,
}

enum Ended {
    End,
    Else,
}

/// Go's `newNumber` followed by its execution-time `idealConstant` choice.
fn new_number(text: &str, typ: ItemType) -> Result<Num, String> {
    if typ == ItemType::CharConstant {
        let (c, tail) = goconv::unquote_char(&text[1..], '\'').ok_or("invalid syntax")?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        return Ok(Num::Int(i64::from(u32::from(c))));
    }
    if typ == ItemType::Complex {
        return parse_complex(text).ok_or_else(|| format!("illegal number syntax: {}", crate::gofmt::go_quote(text)));
    }
    if let Some(im) = text.strip_suffix('i')
        && let Ok(f) = goconv::parse_float(im)
    {
        return Ok(Num::Complex(0.0, f));
    }
    let u = goconv::parse_uint0(text);
    let i = goconv::parse_int0(text);
    let (is_int, is_uint) = (i.is_some(), u.is_some());
    let float = if is_int || is_uint {
        None
    } else {
        match goconv::parse_float(text) {
            Ok(f) => {
                if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                    return Err(format!("integer overflow: {}", crate::gofmt::go_quote(text)));
                }
                Some(f)
            }
            Err(_) => return Err(format!("illegal number syntax: {}", crate::gofmt::go_quote(text))),
        }
    };
    let is_hex_int = text.len() > 2
        && text.starts_with('0')
        && matches!(text.as_bytes()[1], b'x' | b'X')
        && !text.contains(['p', 'P']);
    if !is_hex_int && text.contains(['.', 'e', 'E', 'p', 'P']) {
        let f = match (float, i, u) {
            (Some(f), _, _) => f,
            (None, Some(i), _) => i as f64,
            (None, None, Some(u)) => u as f64,
            (None, None, None) => 0.0,
        };
        return Ok(Num::Float(f));
    }
    if let Some(i) = i {
        return Ok(Num::Int(i));
    }
    if let Some(u) = u {
        return Ok(Num::Uint(u));
    }
    // A float literal without '.', 'e' or 'p' was rejected above.
    Ok(Num::Float(float.unwrap_or(0.0)))
}

fn parse_complex(text: &str) -> Option<Num> {
    let body = text.strip_suffix('i')?;
    let split = body
        .char_indices()
        .skip(1)
        .filter(|&(i, c)| (c == '+' || c == '-') && !matches!(body.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P'))
        .map(|(i, _)| i)
        .last()?;
    let re = goconv::parse_float(&body[..split]).ok()?;
    let im = goconv::parse_float(&body[split..]).ok()?;
    Some(Num::Complex(re, im))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(name: &str) -> bool {
        matches!(name, "printf" | "len" | "humanize" | "eq" | "index")
    }

    fn err(text: &str) -> String {
        match parse("t", text, &funcs) {
            Ok(_) => "ok".into(),
            Err(e) => e,
        }
    }

    #[test]
    fn go_parse_errors() {
        assert_eq!(err("{{"), "template: t:1: unclosed action");
        assert_eq!(err("{{ if }}x{{ end }}"), "template: t:1: missing value for if");
        assert_eq!(err("{{ }}"), "template: t:1: missing value for command");
        assert_eq!(err("{{ range .x }}"), "template: t:1: unexpected EOF");
        assert_eq!(err("a{{end}}b"), "template: t:1: unexpected {{end}}");
        assert_eq!(err("{{else}}"), "template: t:1: unexpected {{else}}");
        assert_eq!(err("{{ .Labels.x }"), "template: t:1: unexpected \"}\" in operand");
        assert_eq!(err("{{ foo }}"), "template: t:1: function \"foo\" not defined");
        assert_eq!(err("x\n{{ $x }}"), "template: t:2: undefined variable \"$x\"");
        assert_eq!(err("{{ 1 | 2 }}"), "template: t:1: non executable command in pipeline stage 2");
        assert_eq!(err("{{break}}"), "template: t:1: {{break}} outside {{range}}");
        assert_eq!(err("{{ \"a\".b }}"), "template: t:1: unexpected . after term \"\\\"a\\\"\"");
        assert_eq!(err("{{ (1 }}"), "template: t:1: unclosed left paren");
        assert_eq!(err("{{ 08 }}"), "template: t:1: integer overflow: \"08\"");
        assert_eq!(err("{{ if 1 }}{{ else }}{{ else }}{{ end }}"), "template: t:1: expected end; found {{else}}");
        assert_eq!(err("{{ foo }}{{ if }}"), "template: t:1: function \"foo\" not defined");
        assert_eq!(
            err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            "template: t:1: template: multiple definition of template \"a\""
        );
        assert_eq!(err("{{ printf \"%d\"\n 1 }}\n{{ if"), "template: t:3: unclosed action");
        assert_eq!(
            err("{{ $x := 1 }}{{ if 1 }}{{ $y := 2 }}{{ end }}{{ $y }}"),
            "template: t:1: undefined variable \"$y\""
        );
    }

    #[test]
    fn valid_texts() {
        for ok in [
            "plain",
            "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
            "{{ range $i, $e := . }}{{ $i }}{{ break }}{{ end }}",
            "{{ if 1 }}a{{ else if 2 }}b{{ else }}c{{ end }}",
            "{{ with 1 }}a{{ else with 2 }}b{{ end }}",
            "{{- /* c */ -}} {{ printf \"%d\" 1 | len }}",
            "{{ block \"b\" . }}x{{ end }}{{ template \"b\" . }}",
            "{{ (len \"x\").Foo }}",
            "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -1.5 }} {{ 1i }}",
            "{{ printf\n\"%d\"\n1 }}",
        ] {
            assert_eq!(err(ok), "ok", "{ok}");
        }
    }

    #[test]
    fn numbers_follow_ideal_constants() {
        assert_eq!(new_number("1", ItemType::Number), Ok(Num::Int(1)));
        assert_eq!(new_number("1.0", ItemType::Number), Ok(Num::Float(1.0)));
        assert_eq!(new_number("0x10", ItemType::Number), Ok(Num::Int(16)));
        assert_eq!(new_number("1e3", ItemType::Number), Ok(Num::Float(1000.0)));
        assert_eq!(new_number("'a'", ItemType::CharConstant), Ok(Num::Int(97)));
        assert_eq!(new_number("18446744073709551615", ItemType::Number), Ok(Num::Uint(u64::MAX)));
        assert_eq!(new_number("1+2i", ItemType::Complex), Ok(Num::Complex(1.0, 2.0)));
    }

    #[test]
    fn node_strings_match_go() {
        let set = parse("t", "{{ printf \"%d\" (len .a.b) | humanize }}{{ $x := index $.Labels \"a\" }}", &funcs)
            .unwrap_or_else(|e| panic!("{e}"));
        let Some(Node::Action { pipe, .. }) = set.get("t").and_then(|l| l.nodes.first()) else { panic!("no action") };
        assert_eq!(pipe.to_string(), "printf \"%d\" (len .a.b) | humanize");
        let Some(Node::Action { pipe, .. }) = set.get("t").and_then(|l| l.nodes.get(1)) else { panic!("no action") };
        assert_eq!(pipe.to_string(), "$x := index $.Labels \"a\"");
    }
}
