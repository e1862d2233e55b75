//! Alertmanager's label matchers (`matchers:` lists, `match`/`match_re`),
//! parsed as Alertmanager 0.33 does by default: a matcher list is accepted
//! when its UTF-8 parser or its classic parser accepts it, the classic
//! parser's reading winning, and the classic parser's error given when
//! both refuse.

use regex::Regex;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regexp,
    /// `!~`
    NotRegexp,
}

impl MatchType {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchType,
    /// Value (a regular expression for `=~`/`!~`).
    pub value: String,
    /// The compiled, fully anchored expression of `=~`/`!~`.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (self.name.as_str(), self.op, self.value.as_str()) == (other.name.as_str(), other.op, other.value.as_str())
    }
}

impl Matcher {
    /// A matcher; regular expressions are compiled fully anchored as Go's
    /// `^(?:v)$`.
    ///
    /// # Errors
    /// The expression's compile error (`error parsing regexp: …`).
    pub fn new(name: &str, op: MatchType, value: &str) -> Result<Self, String> {
        let re = match op {
            MatchType::Regexp | MatchType::NotRegexp => Some(compile_anchored(value)?),
            _ => None,
        };
        Ok(Self { name: name.to_owned(), op, value: value.to_owned(), re })
    }

    /// Whether the label value `v` (empty when the label is missing) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// Whether every matcher matches `labels` (a missing label is empty).
pub fn matches_all(matchers: &[Matcher], labels: &std::collections::BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
}

/// Compiles `^(?:pattern)$` as Go's RE2 would (the `regex` crate's syntax
/// is RE2's, with Perl classes kept ASCII as Go has them).
///
/// # Errors
/// `error parsing regexp: …`.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    let anchored = format!("^(?:{pattern})$");
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(&anchored) {
        return Err(format!("error parsing regexp: {}", go_regexp_error(&anchored, &e)));
    }
    regex::RegexBuilder::new(&anchored)
        .build()
        .map_err(|e| format!("error parsing regexp: {}", last_line(&e.to_string())))
}

/// `regexp.Compile`'s verdict on an unanchored pattern, with Go's message
/// (`error parsing regexp: …`).
///
/// # Errors
/// Go's message for a pattern it refuses.
pub fn check_regexp(pattern: &str) -> Result<(), String> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        return Err(format!("error parsing regexp: {}", go_regexp_error(pattern, &e)));
    }
    regex::RegexBuilder::new(pattern)
        .build()
        .map(|_| ())
        .map_err(|e| format!("error parsing regexp: {}", last_line(&e.to_string())))
}

/// Go's `regexp/syntax` wording (`missing closing ): `…``) of a parse error.
fn go_regexp_error(anchored: &str, e: &regex_syntax::ast::Error) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let span = e.span();
    let text = anchored.get(span.start.offset..span.end.offset).unwrap_or_default();
    let from = anchored.get(span.start.offset..).unwrap_or_default();
    match e.kind() {
        K::GroupUnclosed => format!("missing closing ): `{anchored}`"),
        K::GroupUnopened => format!("unexpected ): `{anchored}`"),
        K::ClassUnclosed => format!("missing closing ]: `{from}`"),
        K::RepetitionMissing => {
            let op = if text.is_empty() {
                match from.find('}') {
                    Some(end) if from.starts_with('{') => &from[..=end],
                    _ => from.get(..from.chars().next().map_or(0, char::len_utf8)).unwrap_or_default(),
                }
            } else {
                text
            };
            format!("missing argument to repetition operator: `{op}`")
        }
        K::RepetitionCountInvalid | K::RepetitionCountUnclosed | K::RepetitionCountDecimalEmpty => {
            format!("invalid repeat count: `{text}`")
        }
        K::ClassRangeInvalid => format!("invalid character class range: `{text}`"),
        K::EscapeUnrecognized | K::EscapeHexInvalid | K::EscapeHexInvalidDigit | K::EscapeHexEmpty => {
            format!("invalid escape sequence: `{text}`")
        }
        K::EscapeUnexpectedEof => "trailing backslash at end of expression: ``".to_owned(),
        K::UnsupportedLookAround | K::UnsupportedBackreference => {
            format!("invalid or unsupported Perl syntax: `{}`", from.chars().take(3).collect::<String>())
        }
        other => other.to_string(),
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or_else(|| s.to_owned(), |l| l.trim_start_matches("error: ").to_owned())
}

/// Parses one entry of a `matchers:` list (which may hold several
/// comma-separated matchers).
///
/// # Errors
/// The classic parser's error when neither parser accepts the text.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, String> {
    match classic(input) {
        Ok(m) => Ok(m),
        Err(e) => utf8(input).map_err(|_| e),
    }
}

/// Whether `name` is a label name by Prometheus's legacy rule (the rule
/// `match`, `match_re` and `source_match` keys must follow).
pub(crate) fn is_legacy_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `pkg/labels.ParseMatchers`: optional braces, comma-separated
/// `name op value` with an optionally quoted value.
fn classic(input: &str) -> Result<Vec<Matcher>, String> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !quoted => {
                tokens.push(std::mem::take(&mut current));
                escaped = false;
                continue;
            }
            '"' => {
                if !escaped {
                    quoted = !quoted;
                }
                escaped = false;
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        tokens.push(current);
    }
    let mut out = Vec::new();
    for token in tokens {
        out.push(classic_one(&token)?);
    }
    Ok(out)
}

fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

fn classic_one(token: &str) -> Result<Matcher, String> {
    let bad = || format!("bad matcher format: {token}");
    let s = token.trim_start_matches(is_go_space);
    let name_len = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())))
        .map_or(s.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let name = &s[..name_len];
    let rest = s[name_len..].trim_start_matches(is_go_space);
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(bad());
    };
    let raw = rest.trim_matches(is_go_space);
    let value = classic_value(raw)?;
    Matcher::new(name, op, &value)
}

fn classic_value(raw: &str) -> Result<String, String> {
    let unescaped = || format!("matcher value contains unescaped double quote: {raw}");
    let (body, quoted) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let mut out = String::with_capacity(body.len());
    let mut escaped = false;
    let mut closed = false;
    let chars: Vec<char> = body.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if closed {
            return Err(unescaped());
        }
        if escaped {
            match c {
                'n' => out.push('\n'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            if quoted && i + 1 == chars.len() {
                closed = true;
            } else {
                return Err(unescaped());
            }
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    if quoted && !closed {
        return Err(unescaped());
    }
    Ok(out)
}

/// The UTF-8 matchers parser (`matcher/parse`): `{` and `}` both or
/// neither, matchers separated by commas (one trailing comma allowed),
/// names and values quoted Go strings or runs of characters other than
/// white space and ``{}!=~,\"'` ``.
fn utf8(input: &str) -> Result<Vec<Matcher>, String> {
    let mut p = Utf8 { s: input.chars().collect(), i: 0 };
    p.skip_space();
    let braced = p.eat('{');
    let mut out = Vec::new();
    loop {
        p.skip_space();
        if p.done() || p.peek() == Some('}') {
            break;
        }
        let name = p.term()?;
        p.skip_space();
        let op = if p.eat_str("=~") {
            MatchType::Regexp
        } else if p.eat_str("!=") {
            MatchType::NotEqual
        } else if p.eat_str("!~") {
            MatchType::NotRegexp
        } else if p.eat('=') {
            MatchType::Equal
        } else {
            return Err("expected an operator".into());
        };
        p.skip_space();
        let value = p.term()?;
        out.push(Matcher::new(&name, op, &value)?);
        p.skip_space();
        if !p.eat(',') {
            break;
        }
    }
    p.skip_space();
    if braced != p.eat('}') {
        return Err("unbalanced braces".into());
    }
    p.skip_space();
    if !p.done() {
        return Err("unexpected input".into());
    }
    Ok(out)
}

struct Utf8 {
    s: Vec<char>,
    i: usize,
}

impl Utf8 {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, t: &str) -> bool {
        let t: Vec<char> = t.chars().collect();
        if self.s[self.i..].starts_with(&t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// A quoted Go string or an unquoted run.
    fn term(&mut self) -> Result<String, String> {
        if self.peek() == Some('"') {
            let start = self.i;
            self.i += 1;
            let mut escaped = false;
            while let Some(c) = self.peek() {
                self.i += 1;
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    let lit: String = self.s[start..self.i].iter().collect();
                    return go_unquote(&lit).ok_or_else(|| format!("invalid quoted string {lit}"));
                }
            }
            return Err("missing end \"".into());
        }
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "{}!=~,\\\"'`".contains(c) {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err("expected a name or value".into());
        }
        Ok(self.s[start..self.i].iter().collect())
    }
}

/// Go's `strconv.Unquote` of a double-quoted literal.
fn go_unquote(lit: &str) -> Option<String> {
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '"' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' => {
                let h: String = (0..2).filter_map(|_| chars.next()).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' | 'U' => {
                let n = if body.contains("\\u") { 4 } else { 8 };
                let h: String = (0..n).filter_map(|_| chars.next()).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            d @ '0'..='7' => {
                let rest: String = (0..2).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&format!("{d}{rest}"), 8).ok()?;
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<(String, &'static str, String)> {
        parse_matchers(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .into_iter()
            .map(|m| (m.name, m.op.as_str(), m.value))
            .collect()
    }

    #[test]
    fn both_parsers_accept_as_alertmanager_does() {
        assert_eq!(ok(r#"severity="page""#), [("severity".into(), "=", "page".into())]);
        assert_eq!(ok("{a=b, c!~\"x|y\"}"), [("a".into(), "=", "b".into()), ("c".into(), "!~", "x|y".into())]);
        assert_eq!(ok("a=b c"), [("a".into(), "=", "b c".into())]);
        assert_eq!(ok(r#"a=~\d+"#), [("a".into(), "=~", r"\d+".into())]);
        assert_eq!(ok(r#""foo bar"=baz"#), [("foo bar".into(), "=", "baz".into())]);
        assert_eq!(ok("ü=b"), [("ü".into(), "=", "b".into())]);
        assert_eq!(ok("a=b,"), [("a".into(), "=", "b".into())]);
        assert_eq!(ok(""), []);
        assert_eq!(ok(r#"a="x\"y\n""#), [("a".into(), "=", "x\"y\n".into())]);
    }

    #[test]
    fn refusals_carry_the_classic_parsers_error() {
        let err = |s: &str| parse_matchers(s).unwrap_err();
        assert_eq!(err("foo"), "bad matcher format: foo");
        assert_eq!(err("a=b,,c=d"), "bad matcher format: ");
        assert_eq!(err(r#"a="b"#), r#"matcher value contains unescaped double quote: "b"#);
        assert_eq!(err(r#"a=b"c"#), r#"matcher value contains unescaped double quote: b"c"#);
        assert_eq!(err("a=~("), "error parsing regexp: missing closing ): `^(?:()$`");
        assert_eq!(err("a=~[x"), "error parsing regexp: missing closing ]: `[x)$`");
        assert_eq!(err("a=~*"), "error parsing regexp: missing argument to repetition operator: `*`");
    }

    #[test]
    fn matching_is_anchored() {
        let m = &parse_matchers("a=~b|c").unwrap()[0];
        assert!(m.matches("b") && m.matches("c") && !m.matches("bc"));
        let n = &parse_matchers("a!=").unwrap()[0];
        assert!(n.matches("x") && !n.matches(""));
    }
}
