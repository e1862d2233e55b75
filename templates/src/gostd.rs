//! Go standard-library behaviour Prometheus's template functions rely on:
//! `strings.ToUpper`/`ToLower` (simple case mapping), `cases.Title` with
//! `cases.NoLower`, RE2 regular expressions (`regexp`), `net.SplitHostPort`,
//! `net.JoinHostPort`, `net.ParseIP`, and `url.URL`'s `Path`.

/// Go's `unicode.ToUpper`/`ToLower` use the simple (1:1) mappings; Rust's
/// `char::to_uppercase` is the full mapping, which may expand (`ß` → `SS`).
/// Where the full mapping expands, Go keeps the character, except for the
/// few characters whose simple mapping differs from their full one.
fn simple_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => match c {
            // Greek with ypogegrammeni: simple uppercase is the titlecase form.
            '\u{1F80}'..='\u{1FAF}' | '\u{1FB3}' | '\u{1FC3}' | '\u{1FF3}' => title_of_expanding(c),
            _ => c,
        },
    }
}

fn title_of_expanding(c: char) -> char {
    let u = c as u32;
    let mapped = match u {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => u + 8,
        0x1F88..=0x1F8F | 0x1F98..=0x1F9F | 0x1FA8..=0x1FAF => u,
        0x1FB3 | 0x1FC3 | 0x1FF3 => u + 9,
        _ => u,
    };
    char::from_u32(mapped).unwrap_or(c)
}

fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// `strings.ToUpper`.
pub(crate) fn to_upper(s: &str) -> String {
    s.chars().map(simple_upper).collect()
}

/// `strings.ToLower`.
pub(crate) fn to_lower(s: &str) -> String {
    s.chars().map(simple_lower).collect()
}

/// Titlecase of a character (differs from uppercase for the Latin digraphs).
fn title_case(c: char, out: &mut String) {
    match c {
        'Ǆ' | 'ǅ' | 'ǆ' => out.push('ǅ'),
        'Ǉ' | 'ǈ' | 'ǉ' => out.push('ǈ'),
        'Ǌ' | 'ǋ' | 'ǌ' => out.push('ǋ'),
        'Ǳ' | 'ǲ' | 'ǳ' => out.push('ǲ'),
        'ß' => out.push_str("Ss"),
        'ﬀ' => out.push_str("Ff"),
        'ﬁ' => out.push_str("Fi"),
        'ﬂ' => out.push_str("Fl"),
        c => out.extend(c.to_uppercase()),
    }
}

/// Word-break classes of `golang.org/x/text/cases`' title caser.
fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase() || matches!(c, 'ǅ' | 'ǈ' | 'ǋ' | 'ǲ')
}

/// Characters that may occur inside a word (Unicode word-break MidLetter,
/// MidNumLet, Single_Quote): they neither start nor end words.
fn is_mid(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ':'
            | '·'
            | '\u{387}'
            | '\u{5F4}'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{2024}'
            | '\u{2027}'
            | '\u{FE13}'
            | '\u{FE52}'
            | '\u{FE55}'
            | '\u{FF07}'
            | '\u{FF0E}'
            | '\u{FF1A}'
    )
}

/// Characters that do not end a word: letters, marks, digits, connectors,
/// and the case-ignorable mid-word characters.
fn is_word_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_mid(c) || is_mark(c)
}

fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower).String`: the first
/// cased letter of each word is title-cased; nothing is lower-cased.
pub(crate) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mid_word = false;
    let mut prev_mid = false;
    for c in s.chars() {
        if prev_mid && is_mid(c) {
            mid_word = false;
        }
        if is_cased(c) {
            if mid_word {
                out.push(c);
            } else {
                title_case(c, &mut out);
                mid_word = true;
            }
        } else {
            out.push(c);
            if !is_word_part(c) {
                mid_word = false;
            }
        }
        prev_mid = is_mid(c);
    }
    out
}

// ---------------------------------------------------------------------------
// regexp

/// Translates an RE2 (Go `regexp`) pattern to the `regex` crate's syntax:
/// Go's Perl classes and word boundaries are ASCII-only, the crate's are
/// Unicode-aware.
fn translate_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(e) = chars.next() else {
                out.push('\\');
                break;
            };
            let rep = match (e, in_class) {
                ('d', false) => Some("[0-9]"),
                ('D', false) => Some("[^0-9]"),
                ('w', false) => Some("[0-9A-Za-z_]"),
                ('W', false) => Some("[^0-9A-Za-z_]"),
                ('s', false) => Some("[\\t\\n\\f\\r ]"),
                ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                ('b', false) => Some("(?-u:\\b)"),
                ('B', false) => Some("(?-u:\\B)"),
                ('d', true) => Some("0-9"),
                ('w', true) => Some("0-9A-Za-z_"),
                ('s', true) => Some("\\t\\n\\f\\r "),
                ('D', true) => Some("[^0-9]"),
                ('W', true) => Some("[^0-9A-Za-z_]"),
                ('S', true) => Some("[^\\t\\n\\f\\r ]"),
                _ => None,
            };
            match rep {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(e);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == '[' && chars.peek() == Some(&':') {
                // POSIX class `[:alpha:]`: copy through to its closing `:]`.
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
                class_start = false;
                continue;
            }
            if c == ']' && !class_start {
                in_class = false;
            }
            if !(c == '^' && class_start) {
                class_start = false;
            }
            out.push(c);
            continue;
        }
        if c == '[' {
            in_class = true;
            class_start = true;
        }
        out.push(c);
    }
    out
}

/// Go's `syntax.ErrorCode` wording for a `regex` crate error.
fn go_regex_error(pattern: &str, err: &regex::Error) -> String {
    let text = err.to_string();
    let (code, expr) = if text.contains("unclosed group") {
        ("missing closing )", pattern.to_string())
    } else if text.contains("unopened group") {
        ("unexpected )", pattern.to_string())
    } else if text.contains("unclosed character class") {
        ("missing closing ]", pattern.to_string())
    } else if text.contains("repetition operator missing expression") {
        ("missing argument to repetition operator", pattern.to_string())
    } else if text.contains("unrecognized escape") || text.contains("incomplete escape") {
        ("invalid escape sequence", pattern.to_string())
    } else if text.contains("invalid character class range") {
        ("invalid character class range", pattern.to_string())
    } else if text.contains("repetition") {
        ("invalid repeat count", pattern.to_string())
    } else if text.contains("look-around") {
        ("invalid or unsupported Perl syntax", pattern.to_string())
    } else {
        let summary = text
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or(text.as_str(), |l| l.trim_start_matches("error: "));
        return format!("error parsing regexp: {summary}: `{pattern}`");
    };
    format!("error parsing regexp: {code}: `{expr}`")
}

/// `regexp.Compile`.
pub(crate) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&translate_regex(pattern)).map_err(|e| go_regex_error(pattern, &e))
}

/// `regexp.MustCompile`'s panic text for a bad pattern.
pub(crate) fn must_compile_panic(pattern: &str, err: &str) -> String {
    let quoted = if pattern.contains('`') || pattern.chars().any(|c| c < ' ' && c != '\t' || c == '\u{7f}') {
        crate::gofmt::go_quote(pattern)
    } else {
        format!("`{pattern}`")
    };
    format!("regexp: Compile({quoted}): {err}")
}

/// Go's `Regexp.ReplaceAllString` template expansion (`$1`, `${name}`, `$$`).
pub(crate) fn replace_all(re: &regex::Regex, text: &str, repl: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut last_match_end: Option<usize> = None;
    for caps in re.captures_iter(text) {
        let Some(m) = caps.get(0) else { continue };
        // Go skips an empty match right after a previous match.
        if m.start() == m.end() && last_match_end == Some(m.start()) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        expand(&caps, re, repl, &mut out);
        last = m.end();
        last_match_end = Some(m.end());
    }
    out.push_str(&text[last..]);
    out
}

fn expand(caps: &regex::Captures<'_>, re: &regex::Regex, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, tail) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(end) if end > 0 && r[..end].chars().all(|c| c == '_' || c.is_alphanumeric()) => {
                    (&r[..end], &r[end + 1..])
                }
                _ => {
                    out.push('$');
                    continue;
                }
            }
        } else {
            let end = rest.find(|c: char| !(c == '_' || c.is_alphanumeric())).unwrap_or(rest.len());
            if end == 0 {
                out.push('$');
                continue;
            }
            (&rest[..end], &rest[end..])
        };
        rest = tail;
        let group = match name.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => re.capture_names().position(|n| n == Some(name)).and_then(|i| caps.get(i)),
        };
        if let Some(g) = group {
            out.push_str(g.as_str());
        }
    }
    out.push_str(rest);
}

// ---------------------------------------------------------------------------
// net

/// `net.SplitHostPort`; `None` on any error.
pub(crate) fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k);
    if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 == hostport.len() || end + 1 != i {
            return None;
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

/// `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `net.ParseIP(s) != nil`.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `url.Parse(s).Path`: the percent-decoded path of a URL.
pub(crate) fn url_path(s: &str) -> String {
    let s = s.split(['#', '?']).next().unwrap_or("");
    let path = match s.find("://") {
        Some(i) => {
            let after = &s[i + 3..];
            after.find('/').map_or("", |p| &after[p..])
        }
        None => match s.strip_prefix("//") {
            Some(after) => after.find('/').map_or("", |p| &after[p..]),
            None => s.find(':').filter(|&c| !s[..c].contains('/')).map_or(s, |c| &s[c + 1..]),
        },
    };
    percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_mapping_is_simple_like_go() {
        assert_eq!(to_upper("aA bB ß é"), "AA BB ß É");
        assert_eq!(to_lower("AA İ É"), "aa i é");
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(title("foo-bar baz_qux x.y o'neil"), "Foo-Bar Baz_qux X.y O'neil");
        assert_eq!(title("hello, wORLD"), "Hello, WORLD");
    }

    #[test]
    fn regex_in_re2_terms() {
        assert_eq!(translate_regex(r"\d+\w[\d\s]\b"), r"[0-9]+[0-9A-Za-z_][0-9\t\n\f\r ](?-u:\b)");
        assert_eq!(translate_regex("[]a]"), "[]a]");
        let re = compile("(a)b").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(replace_all(&re, "abab", "x$1"), "xaxa");
        assert_eq!(replace_all(&re, "ab", "$1x"), "");
        assert_eq!(replace_all(&re, "ab", "${1}x$$"), "ax$");
        let star = compile("a*").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(replace_all(&star, "baaac", "X"), "XbXcX");
        assert!(compile("\\d").is_ok_and(|r| !r.is_match("٣")));
        assert_eq!(compile("(").err().as_deref(), Some("error parsing regexp: missing closing ): `(`"));
        assert_eq!(must_compile_panic("(", "x"), "regexp: Compile(`(`): x");
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("foo.example.com:12345"), Some(("foo.example.com", "12345")));
        assert_eq!(split_host_port("[2001:0DB8::1]:12345"), Some(("2001:0DB8::1", "12345")));
        assert_eq!(split_host_port("2001:0DB8::1"), None);
        assert_eq!(split_host_port("[2001:0DB8::1]::12345"), None);
        assert_eq!(split_host_port("foo"), None);
        assert_eq!(split_host_port(":80"), Some(("", "80")));
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
        assert!(is_ip("192.0.2.1") && is_ip("2001:db8::1") && !is_ip("foo") && !is_ip("01.2.3.4"));
    }

    #[test]
    fn url_paths() {
        assert_eq!(url_path("http://testhost:9090/path/prefix"), "/path/prefix");
        assert_eq!(url_path("http://host"), "");
        assert_eq!(url_path("https://h/a%20b?x=1#f"), "/a b");
        assert_eq!(url_path("/relative/p"), "/relative/p");
    }
}
