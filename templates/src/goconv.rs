//! Go's `strconv` number and string-literal parsing rules (`ParseInt`/
//! `ParseUint` with base 0, `ParseFloat`, `Unquote`, `UnquoteChar`), as the
//! template parser and Prometheus's `convertToFloat` apply them.

/// Why Go's `ParseFloat` failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FloatError {
    /// `invalid syntax`
    Syntax,
    /// `value out of range` (the value is then ±Inf).
    Range,
}

impl FloatError {
    /// The text Go prints: `strconv.ParseFloat: parsing "x": invalid syntax`.
    pub(crate) fn message(self, input: &str) -> String {
        let what = match self {
            FloatError::Syntax => "invalid syntax",
            FloatError::Range => "value out of range",
        };
        format!("strconv.ParseFloat: parsing {}: {what}", crate::gofmt::go_quote(input))
    }
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
pub(crate) fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2 && b[i] == b'0' && matches!(b[i + 1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        hex = b[i + 1].eq_ignore_ascii_case(&b'x');
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Digits and base of an unsigned integer literal in Go's base-0 syntax.
fn base0_digits(s: &str) -> Option<(u32, String)> {
    if s.is_empty() {
        return None;
    }
    let (base, body) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (2, r)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let digits: String = body.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(base)) {
        return None;
    }
    Some((base, digits))
}

/// `strconv.ParseUint(s, 0, 64)`.
pub(crate) fn parse_uint0(s: &str) -> Option<u64> {
    let (base, digits) = base0_digits(s)?;
    u64::from_str_radix(&digits, base).ok()
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint0(body)?;
    if neg {
        if u <= i64::MAX as u64 + 1 { Some((u as i64).wrapping_neg()) } else { None }
    } else {
        i64::try_from(u).ok()
    }
}

/// `strconv.ParseFloat(s, 64)`: decimal and hexadecimal floats, `inf`,
/// `infinity` (optionally signed) and `nan` in any case, underscores between
/// digits.
pub(crate) fn parse_float(s: &str) -> Result<f64, FloatError> {
    let lower = s.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes().first() {
        Some(b'-') => (true, &lower[1..]),
        Some(b'+') => (false, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    if body == "inf" || body == "infinity" {
        return Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        return Ok(f64::NAN);
    }
    if s.contains('_') && !underscore_ok(s) {
        return Err(FloatError::Syntax);
    }
    let body: String = body.chars().filter(|&c| c != '_').collect();
    let magnitude = if let Some(hex) = body.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        // Go's decimal grammar: digits [. digits] [e [+-] digits], at least one digit.
        let b = body.as_bytes();
        let mut i = 0;
        let mut mant_digits = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mant_digits += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
                mant_digits += 1;
            }
        }
        if mant_digits == 0 {
            return Err(FloatError::Syntax);
        }
        if i < b.len() && b[i] == b'e' {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(FloatError::Syntax);
            }
        }
        if i != b.len() {
            return Err(FloatError::Syntax);
        }
        body.parse::<f64>().map_err(|_| FloatError::Syntax)?
    };
    let v = if neg { -magnitude } else { magnitude };
    if v.is_infinite() { Err(FloatError::Range) } else { Ok(v) }
}

/// Hexadecimal mantissa with a mandatory binary exponent: `1.8p3`.
fn parse_hex_float(s: &str) -> Result<f64, FloatError> {
    let (mant, exp) = s.split_once('p').ok_or(FloatError::Syntax)?;
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(FloatError::Syntax);
    }
    let mut value = 0f64;
    for c in int_part.chars().chain(frac_part.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16).ok_or(FloatError::Syntax)?);
    }
    let exp: i32 = exp.parse().map_err(|_| FloatError::Syntax)?;
    let scale = exp - 4 * i32::try_from(frac_part.len()).map_err(|_| FloatError::Syntax)?;
    Ok(value * 2f64.powi(scale))
}

/// `strconv.UnquoteChar`: decodes the first (possibly escaped) character of
/// `s` inside a literal quoted by `quote`; returns it and the rest.
pub(crate) fn unquote_char(s: &str, quote: char) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c, chars.as_str()));
    }
    let e = chars.next()?;
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return None;
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c, chars.as_str()));
    }
    let rest = chars.as_str();
    let hex = |n: usize| -> Option<(u32, &str)> {
        let digits = rest.get(..n)?;
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some((u32::from_str_radix(digits, 16).ok()?, &rest[n..]))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            // A byte value; as a Rust char only ASCII round-trips exactly.
            Some((char::from_u32(v)?, tail))
        }
        'u' => {
            let (v, tail) = hex(4)?;
            Some((char::from_u32(v)?, tail))
        }
        'U' => {
            let (v, tail) = hex(8)?;
            Some((char::from_u32(v)?, tail))
        }
        '0'..='7' => {
            let digits = s.get(1..4)?;
            if !digits.chars().all(|c| ('0'..='7').contains(&c)) {
                return None;
            }
            let v = u32::from_str_radix(digits, 8).ok()?;
            if v > 255 {
                return None;
            }
            Some((char::from_u32(v)?, &s[4..]))
        }
        _ => None,
    }
}

/// `strconv.Unquote` for a double-quoted or back-quoted literal.
pub(crate) fn unquote(lit: &str) -> Option<String> {
    if let Some(body) = lit.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if body.contains('`') {
            return None;
        }
        return Some(body.replace('\r', ""));
    }
    let mut body = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(body.len());
    while !body.is_empty() {
        if body.starts_with('\n') {
            return None;
        }
        let (c, rest) = unquote_char(body, '"')?;
        out.push(c);
        body = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_in_go_syntax() {
        assert_eq!(parse_int0("0x10"), Some(16));
        assert_eq!(parse_int0("010"), Some(8));
        assert_eq!(parse_int0("0b101"), Some(5));
        assert_eq!(parse_int0("1_000"), Some(1000));
        assert_eq!(parse_int0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int0("08"), None);
        assert_eq!(parse_int0("1__0"), None);
        assert_eq!(parse_uint0("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_uint0("-1"), None);
    }

    #[test]
    fn floats_in_go_syntax() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float("-infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert_eq!(parse_float("1_000.5"), Ok(1000.5));
        assert_eq!(parse_float("one"), Err(FloatError::Syntax));
        assert_eq!(parse_float("-nan"), Err(FloatError::Syntax));
        assert_eq!(parse_float("1e"), Err(FloatError::Syntax));
        assert_eq!(parse_float(""), Err(FloatError::Syntax));
        assert_eq!(parse_float("1e400"), Err(FloatError::Range));
        assert_eq!(FloatError::Syntax.message("one"), "strconv.ParseFloat: parsing \"one\": invalid syntax");
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(r#""a\tb\u00e9\x41\101""#).as_deref(), Some("a\tbéAA"));
        assert_eq!(unquote("`a\\n\r`").as_deref(), Some("a\\n"));
        assert_eq!(unquote(r#""\'""#), None);
        assert_eq!(unquote_char("\\n'", '\''), Some(('\n', "'")));
    }
}
