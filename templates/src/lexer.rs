//! A lexer for Go's `text/template` language that tokenizes exactly as Go's
//! `text/template/parse` lexer does (same token boundaries, trim markers,
//! comments, line numbers and error texts), so that the parser built on it
//! accepts and rejects the same texts as Go and reports the same messages.
//!
//! Written from the language's specification and observed behaviour of Go
//! 1.2x; the delimiters are fixed to `{{`/`}}` (the only ones Prometheus uses).

use crate::gofmt::unicode_quote_u;

/// Kinds of tokens ("items"); the order matters only for the keyword check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

/// One token: its type, byte offset, text and the line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) typ: ItemType,
    pub(crate) pos: usize,
    pub(crate) val: String,
    pub(crate) line: usize,
}

impl Item {
    /// Go's `item.String()`, used in "unexpected X in Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self.typ {
            ItemType::Eof => "EOF".to_string(),
            ItemType::Error => self.val.clone(),
            t if t.is_keyword() => format!("<{}>", self.val),
            _ if self.val.len() > 10 => {
                // `%.10q`: quote the first ten runes, then "...".
                let head: String = self.val.chars().take(10).collect();
                format!("{}...", crate::gofmt::go_quote(&head))
            }
            _ => crate::gofmt::go_quote(&self.val),
        }
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const SPACE_CHARS: &[char] = &[' ', '\t', '\r', '\n'];
const TRIM_MARKER_LEN: usize = 2;

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
}

/// The lexer; call [`Lexer::next_item`] repeatedly until `Eof` or `Error`.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: i32,
    line: usize,
    start_line: usize,
    inside_action: bool,
    done: bool,
    /// `break`/`continue` are keywords unless defined as functions.
    pub(crate) break_ok: bool,
    pub(crate) continue_ok: bool,
}

fn is_space(r: char) -> bool {
    matches!(r, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(r: char) -> bool {
    r == '_' || r.is_alphabetic() || is_unicode_digit(r)
}

/// Go's `unicode.IsDigit` (category Nd); Rust's `is_numeric` also covers
/// Nl/No, so restrict to characters whose decimal value exists.
fn is_unicode_digit(r: char) -> bool {
    r.is_ascii_digit() || (!r.is_ascii() && is_nd(r))
}

/// Decimal-digit (Nd) ranges outside ASCII: every Nd block is a run of ten
/// consecutive code points starting at a code point ending in 0 or 6; this
/// covers the common scripts without a full Unicode table.
fn is_nd(r: char) -> bool {
    const STARTS: &[u32] = &[
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6, 0x0E50,
        0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50,
        0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    ];
    let c = r as u32;
    STARTS.iter().any(|&s| (s..s + 10).contains(&c))
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            at_eof: false,
            paren_depth: 0,
            line: 1,
            start_line: 1,
            inside_action: false,
            done: false,
            break_ok: true,
            continue_ok: true,
        }
    }

    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            None => {
                self.at_eof = true;
                None
            }
            Some(r) => {
                self.pos += r.len_utf8();
                if r == '\n' {
                    self.line += 1;
                }
                Some(r)
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn backup(&mut self) {
        if !self.at_eof
            && self.pos > 0
            && let Some(r) = self.input[..self.pos].chars().next_back()
        {
            self.pos -= r.len_utf8();
            if r == '\n' {
                self.line -= 1;
            }
        }
    }

    fn this_item(&mut self, typ: ItemType) -> Item {
        let item =
            Item { typ, pos: self.start, val: self.input[self.start..self.pos].to_string(), line: self.start_line };
        self.start = self.pos;
        self.start_line = self.line;
        item
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(r) if valid.contains(r) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while let Some(r) = self.next() {
            if !valid.contains(r) {
                self.backup();
                return;
            }
        }
        self.backup();
    }

    fn error(&mut self, msg: String) -> Item {
        self.done = true;
        Item { typ: ItemType::Error, pos: self.start, val: msg, line: self.start_line }
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(r) if is_space(r) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.input[self.pos..].starts_with(RIGHT_DELIM),
        }
    }

    /// Returns the next token; after an `Eof` or `Error` it keeps returning `Eof`.
    pub(crate) fn next_item(&mut self) -> Item {
        if self.done {
            return Item { typ: ItemType::Eof, pos: self.pos, val: "EOF".into(), line: self.start_line };
        }
        let mut state = if self.inside_action { State::InsideAction } else { State::Text };
        loop {
            let (next, item) = self.step(state);
            if let Some(item) = item {
                if item.typ == ItemType::Eof {
                    self.done = true;
                }
                return item;
            }
            match next {
                Some(s) => state = s,
                None => unreachable_state(),
            }
        }
    }

    /// Runs one state; returns the next state or an item to emit.
    fn step(&mut self, state: State) -> (Option<State>, Option<Item>) {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => (None, Some(self.lex_right_delim())),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Identifier => (None, Some(self.lex_identifier())),
            State::Field => (None, Some(self.lex_field_or_variable(ItemType::Field))),
            State::Variable => {
                if self.at_terminator() {
                    (None, Some(self.this_item(ItemType::Variable)))
                } else {
                    (None, Some(self.lex_field_or_variable(ItemType::Variable)))
                }
            }
            State::Char => {
                (None, Some(self.lex_quote('\'', ItemType::CharConstant, "unterminated character constant")))
            }
            State::Number => (None, Some(self.lex_number())),
            State::Quote => (None, Some(self.lex_quote('"', ItemType::String, "unterminated quoted string"))),
            State::RawQuote => (None, Some(self.lex_raw_quote())),
        }
    }

    fn lex_text(&mut self) -> (Option<State>, Option<Item>) {
        if let Some(x) = self.input[self.pos..].find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let mut trim = 0;
                if has_left_trim_marker(&self.input[delim_end..]) {
                    let text = &self.input[self.start..self.pos];
                    trim = text.len() - text.trim_end_matches(SPACE_CHARS).len();
                }
                self.pos -= trim;
                self.line += self.input[self.start..self.pos].matches('\n').count();
                let item = self.this_item(ItemType::Text);
                self.pos += trim;
                self.ignore();
                if !item.val.is_empty() {
                    return (None, Some(item));
                }
            }
            return (Some(State::LeftDelim), None);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].matches('\n').count();
            return (None, Some(self.this_item(ItemType::Text)));
        }
        (None, Some(self.this_item(ItemType::Eof)))
    }

    fn lex_left_delim(&mut self) -> (Option<State>, Option<Item>) {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(&self.input[self.pos..]);
        let after = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after..].starts_with(LEFT_COMMENT) {
            self.pos += after;
            self.ignore();
            return (Some(State::Comment), None);
        }
        let item = self.this_item(ItemType::LeftDelim);
        self.inside_action = true;
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        (None, Some(item))
    }

    fn lex_comment(&mut self) -> (Option<State>, Option<Item>) {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.input[self.pos..].find(RIGHT_COMMENT) else {
            return (None, Some(self.error("unclosed comment".into())));
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return (None, Some(self.error("comment ends before closing delimiter".into())));
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            let rest = &self.input[self.pos..];
            self.pos += rest.len() - rest.trim_start_matches(SPACE_CHARS).len();
        }
        self.ignore();
        (Some(State::Text), None)
    }

    fn lex_right_delim(&mut self) -> Item {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        let item = self.this_item(ItemType::RightDelim);
        if trim {
            let rest = &self.input[self.pos..];
            self.pos += rest.len() - rest.trim_start_matches(SPACE_CHARS).len();
            self.ignore();
        }
        self.inside_action = false;
        item
    }

    fn lex_inside_action(&mut self) -> (Option<State>, Option<Item>) {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return (Some(State::RightDelim), None);
            }
            return (None, Some(self.error("unclosed left paren".into())));
        }
        let Some(r) = self.next() else {
            return (None, Some(self.error("unclosed action".into())));
        };
        let emit = |l: &mut Self, t| (None, Some(l.this_item(t)));
        match r {
            r if is_space(r) => {
                self.backup();
                (Some(State::Space), None)
            }
            '=' => emit(self, ItemType::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return (None, Some(self.error("expected :=".into())));
                }
                emit(self, ItemType::Declare)
            }
            '|' => emit(self, ItemType::Pipe),
            '"' => (Some(State::Quote), None),
            '`' => (Some(State::RawQuote), None),
            '$' => (Some(State::Variable), None),
            '\'' => (Some(State::Char), None),
            '.' if !matches!(self.input.as_bytes().get(self.pos), Some(b'0'..=b'9')) => (Some(State::Field), None),
            '.' | '+' | '-' | '0'..='9' => {
                self.backup();
                (Some(State::Number), None)
            }
            r if is_alphanumeric(r) => {
                self.backup();
                (Some(State::Identifier), None)
            }
            '(' => {
                self.paren_depth += 1;
                emit(self, ItemType::LeftParen)
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return (None, Some(self.error("unexpected right paren".into())));
                }
                emit(self, ItemType::RightParen)
            }
            r if r.is_ascii() && !r.is_ascii_control() => emit(self, ItemType::Char),
            r => (None, Some(self.error(format!("unrecognized character in action: {}", unicode_quote_u(r))))),
        }
    }

    fn lex_space(&mut self) -> (Option<State>, Option<Item>) {
        let mut num = 0;
        while let Some(r) = self.peek() {
            if !is_space(r) {
                break;
            }
            self.next();
            num += 1;
        }
        // A space followed by "-}}" belongs to a trim-marked right delimiter.
        let before = &self.input[self.pos - 1..];
        if has_right_trim_marker(before) && before[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            self.backup();
            if num == 1 {
                return (Some(State::RightDelim), None);
            }
        }
        (None, Some(self.this_item(ItemType::Space)))
    }

    fn lex_identifier(&mut self) -> Item {
        loop {
            match self.next() {
                Some(r) if is_alphanumeric(r) => {}
                r => {
                    self.backup();
                    let word = &self.input[self.start..self.pos];
                    if !self.at_terminator() {
                        return self.error(format!("bad character {}", unicode_quote_u(r.unwrap_or('\u{FFFD}'))));
                    }
                    let typ = match keyword(word) {
                        Some(ItemType::Break) if !self.break_ok => ItemType::Identifier,
                        Some(ItemType::Continue) if !self.continue_ok => ItemType::Identifier,
                        Some(k) => k,
                        None if word.starts_with('.') => ItemType::Field,
                        None if word == "true" || word == "false" => ItemType::Bool,
                        None => ItemType::Identifier,
                    };
                    return self.this_item(typ);
                }
            }
        }
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Item {
        if self.at_terminator() {
            return self.this_item(if typ == ItemType::Variable { ItemType::Variable } else { ItemType::Dot });
        }
        let last = loop {
            let r = self.next();
            match r {
                Some(c) if is_alphanumeric(c) => {}
                _ => {
                    self.backup();
                    break r;
                }
            }
        };
        if !self.at_terminator() {
            return self.error(format!("bad character {}", unicode_quote_u(last.unwrap_or('\u{FFFD}'))));
        }
        self.this_item(typ)
    }

    fn lex_quote(&mut self, quote: char, typ: ItemType, unterminated: &str) -> Item {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(r) if r != '\n' => {}
                    _ => return self.error(unterminated.into()),
                },
                None | Some('\n') => return self.error(unterminated.into()),
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.this_item(typ)
    }

    fn lex_raw_quote(&mut self) -> Item {
        loop {
            match self.next() {
                None => return self.error("unterminated raw quoted string".into()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.this_item(ItemType::RawString)
    }

    fn lex_number(&mut self) -> Item {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.error(format!("bad number syntax: {}", crate::gofmt::go_quote(&text)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.error(format!("bad number syntax: {}", crate::gofmt::go_quote(&text)));
            }
            return self.this_item(ItemType::Complex);
        }
        self.this_item(ItemType::Number)
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }
}

#[allow(clippy::panic)]
fn unreachable_state() -> ! {
    // Every state either emits an item or names the next state.
    panic!("template lexer: state returned neither an item nor a next state")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str) -> Vec<(ItemType, String)> {
        let mut l = Lexer::new(s);
        let mut out = Vec::new();
        loop {
            let i = l.next_item();
            let stop = matches!(i.typ, ItemType::Eof | ItemType::Error);
            out.push((i.typ, i.val));
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn tokens_and_trim_markers() {
        use ItemType::*;
        assert_eq!(
            lex("a  {{- .X | f 1 -}}  b"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Field, ".X".into()),
                (Space, " ".into()),
                (Pipe, "|".into()),
                (Space, " ".into()),
                (Identifier, "f".into()),
                (Space, " ".into()),
                (Number, "1".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, "".into()),
            ]
        );
        assert_eq!(lex("x{{/* c */}}y"), vec![(Text, "x".into()), (Text, "y".into()), (Eof, "".into())]);
        assert_eq!(lex("{{-3}}")[1], (Number, "-3".into()));
    }

    #[test]
    fn lexer_errors() {
        assert_eq!(lex("{{").last().map(|i| i.1.clone()), Some("unclosed action".into()));
        assert_eq!(lex("{{ \"a }}").last().map(|i| i.1.clone()), Some("unterminated quoted string".into()));
        assert_eq!(lex("{{ 3x }}").last().map(|i| i.1.clone()), Some("bad number syntax: \"3x\"".into()));
        assert_eq!(lex("{{ ) }}").last().map(|i| i.1.clone()), Some("unexpected right paren".into()));
        assert_eq!(lex("{{/* x }}").last().map(|i| i.1.clone()), Some("unclosed comment".into()));
        assert_eq!(
            lex("{{ \u{a0} }}").last().map(|i| i.1.clone()),
            Some("unrecognized character in action: U+00A0".into())
        );
    }
}
