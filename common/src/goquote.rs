//! Go's `strconv` quoting (`strconv.Quote`, `%q`), byte for byte, for the
//! texts PromLake prints as Prometheus does: template output, and label
//! names in PromQL errors (which may hold bytes that are not UTF-8, as
//! Go's strings may).

use std::fmt::Write as _;

/// `strconv.IsPrint`, approximated without Unicode tables: ASCII graphic
/// characters and space, and non-ASCII characters that are neither
/// control, space, format nor private-use characters.
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let u = c as u32;
    let format_or_space = matches!(u,
        0x80..=0xA0 | 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x1680 | 0x180E | 0x2000..=0x200F
        | 0x2028..=0x202F | 0x205F..=0x2064 | 0x2066..=0x206F | 0x3000 | 0xD800..=0xF8FF | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xF0000..);
    !format_or_space
}

/// Appends `c` as it stands between `quote`s in Go's quoted form
/// (`ascii_only`: `strconv.QuoteToASCII`'s, escaping all but ASCII).
pub fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if if ascii_only { c.is_ascii() && is_print(c) } else { is_print(c) } {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7F => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// `s` quoted between `quote`s (see [`push_escaped`]).
pub fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        push_escaped(&mut out, c, quote, ascii_only);
    }
    out.push(quote);
    out
}

/// `strconv.Quote` of a string's bytes: as [`go_quote`], with each byte
/// that is not part of valid UTF-8 as `\xNN`, as Go prints it.
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, '"', false);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go_does() {
        assert_eq!(go_quote_bytes(b"a\xc5z"), r#""a\xc5z""#);
        assert_eq!(go_quote_bytes("é \"q\" \\ \t\u{1}\u{200b}".as_bytes()), r#""é \"q\" \\ \t\x01\u200b""#);
        assert_eq!(go_quote_bytes(b""), "\"\"");
        assert_eq!(go_quote("\u{10ffff}"), r#""\U0010ffff""#);
    }
}
