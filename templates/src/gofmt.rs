//! Go's `fmt` and `strconv` formatting for template values.
//!
//! gotmpl formats numbers with Rust's `Display` (`1e21` prints as
//! `1000000000000000000000`, `+Inf` as `inf`, `%d` of a float truncates) and
//! knows nothing of Go types; these functions reproduce what Go's
//! `fmt.Sprint`/`Sprintf`/`Sprintln` and `strconv.FormatFloat` print, byte
//! for byte, for the values Prometheus's templates handle.

use std::fmt::Write as _;

use gotmpl::Value;

use crate::gotime;
use crate::types::{Kind, Types, type_name};

// ---------------------------------------------------------------------------
// strconv

pub use common::goquote::go_quote;
pub(crate) use common::goquote::{is_print, quote_with};

/// `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7f}')))
}

/// `fmt`'s `%#U`: `U+00A0`, or `U+20AC '€'` for printable characters.
pub(crate) fn unicode_quote_u(c: char) -> String {
    if is_print(c) { format!("U+{:04X} '{c}'", c as u32) } else { format!("U+{:04X}", c as u32) }
}

/// Decimal digits of a finite non-negative float: `digits` (no leading or
/// trailing zeros, empty for zero) and the decimal point position `dp`
/// (value = 0.digits × 10^dp).
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

impl Digits {
    /// From Rust's `{:e}`/`{:.Ne}` rendering (`d.ddde±x`).
    fn from_exp(s: &str) -> Digits {
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    fn shortest(v: f64) -> Digits {
        Digits::from_exp(&format!("{:e}", v.abs()))
    }

    fn significant(v: f64, n: usize) -> Digits {
        Digits::from_exp(&format!("{:.*e}", n.saturating_sub(1), v.abs()))
    }

    fn nd(&self) -> i32 {
        i32::try_from(self.d.len()).unwrap_or(i32::MAX)
    }

    fn fmt_e(&self, out: &mut String, prec: i32, e: char) {
        out.push(self.d.first().map_or('0', |&c| c as char));
        if prec > 0 {
            out.push('.');
            let mut i = 1;
            let m = self.nd().min(prec + 1);
            while i < m {
                out.push(self.d[i as usize] as char);
                i += 1;
            }
            while i <= prec {
                out.push('0');
                i += 1;
            }
        }
        out.push(e);
        let mut exp = if self.d.is_empty() { 0 } else { self.dp - 1 };
        out.push(if exp < 0 { '-' } else { '+' });
        exp = exp.abs();
        if exp < 10 {
            out.push('0');
        }
        let _ = write!(out, "{exp}");
    }

    fn fmt_f(&self, out: &mut String, prec: i32) {
        if self.dp > 0 {
            let m = self.nd().min(self.dp);
            for &c in &self.d[..m as usize] {
                out.push(c as char);
            }
            for _ in m..self.dp {
                out.push('0');
            }
        } else {
            out.push('0');
        }
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                let j = self.dp + i - 1;
                out.push(if 0 <= j && j < self.nd() { self.d[j as usize] as char } else { '0' });
            }
        }
    }

    /// `%g`: exponent form when the exponent is < -4 or >= the precision.
    fn fmt_g(&self, out: &mut String, mut prec: i32, shortest: bool, upper: bool) {
        let mut eprec = prec;
        if eprec > self.nd() && self.nd() >= self.dp {
            eprec = self.nd();
        }
        if shortest {
            eprec = 6;
        }
        let exp = self.dp - 1;
        if exp < -4 || exp >= eprec {
            if prec > self.nd() {
                prec = self.nd();
            }
            self.fmt_e(out, prec - 1, if upper { 'E' } else { 'e' });
            return;
        }
        if prec > self.dp {
            prec = self.nd();
        }
        self.fmt_f(out, (prec - self.dp).max(0));
    }
}

/// `strconv.FormatFloat(v, fmt, prec, 64)` for `fmt` in `e E f g G`
/// (`prec < 0` = shortest representation that round-trips).
pub fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let shortest = prec < 0;
    match fmt {
        'b' | 'x' | 'X' => binary_float(&mut out, v.abs(), fmt, prec),
        'e' | 'E' => {
            let digits = if shortest { Digits::shortest(v) } else { Digits::significant(v, prec as usize + 1) };
            let prec = if shortest { (digits.nd() - 1).max(0) } else { prec };
            digits.fmt_e(&mut out, prec, fmt);
        }
        'f' => {
            if shortest {
                let digits = Digits::shortest(v);
                digits.fmt_f(&mut out, (digits.nd() - digits.dp).max(0));
            } else {
                let _ = write!(out, "{:.*}", prec as usize, v.abs());
            }
        }
        _ => {
            let upper = fmt == 'G';
            if shortest {
                let digits = Digits::shortest(v);
                digits.fmt_g(&mut out, digits.nd(), true, upper);
            } else {
                let p = prec.max(1);
                let digits = Digits::significant(v, p as usize);
                digits.fmt_g(&mut out, p, false, upper);
            }
        }
    }
    out
}

/// `strconv.FormatFloat`'s `b` (`4503599627370496p-52`) and `x`/`X`
/// (`0x1.8p+01`) formats of a finite non-negative value.
fn binary_float(out: &mut String, v: f64, fmt: char, prec: i32) {
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7FF) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    exp -= 1023;
    if fmt == 'b' {
        let e = exp - 52;
        let _ = write!(out, "{mant}p{}{e}", if e >= 0 { "+" } else { "" });
        return;
    }
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = u32::try_from(prec * 4).unwrap_or(0);
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if fmt == 'X' { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    out.push('0');
    out.push(fmt);
    out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    out.push(if fmt == 'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.abs());
}

/// Go's `%v` of a float64.
pub(crate) fn float_v(v: f64) -> String {
    format_float(v, 'g', -1)
}

// ---------------------------------------------------------------------------
// fmt

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer<'t> {
    buf: String,
    f: Flags,
    types: &'t dyn Types,
    erroring: bool,
}

const MAX_NUM: usize = 1_000_000;

impl<'t> Printer<'t> {
    fn new(types: &'t dyn Types) -> Self {
        Printer { buf: String::new(), f: Flags::default(), types, erroring: false }
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero && !self.f.minus { '0' } else { ' ' };
        for _ in 0..n {
            self.buf.push(c);
        }
    }

    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid.filter(|&w| w > 0) else {
            self.buf.push_str(s);
            return;
        };
        let n = wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(n);
        } else {
            self.write_padding(n);
            self.buf.push_str(s);
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        match self.f.prec {
            Some(p) => s.char_indices().nth(p).map_or(s, |(i, _)| &s[..i]),
            None => s,
        }
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        let q = if self.f.sharp && can_backquote(s) { format!("`{s}`") } else { quote_with(s, '"', self.f.plus) };
        self.pad(&q);
    }

    fn fmt_sx(&mut self, s: &str, upper: bool) {
        let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        let bytes = s.as_bytes();
        let length = self.f.prec.map_or(bytes.len(), |p| p.min(bytes.len()));
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = self.f.wid {
                self.write_padding(w);
            }
            return;
        }
        let wid = self.f.wid.unwrap_or(0);
        if wid > width && !self.f.minus {
            self.write_padding(wid - width);
        }
        let x = if upper { 'X' } else { 'x' };
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(x);
        }
        for (i, &c) in bytes[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(x);
                }
            }
            self.buf.push(digits[usize::from(c >> 4)] as char);
            self.buf.push(digits[usize::from(c & 0xF)] as char);
        }
        if wid > width && self.f.minus {
            self.write_padding(wid - width);
        }
    }

    fn fmt_integer(&mut self, u: u64, base: u32, signed: bool, verb: char, upper: bool) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative { (u as i64).unsigned_abs() } else { u };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid.unwrap_or(0));
                self.f.zero = old;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid.is_some() {
            prec = self.f.wid.unwrap_or(0);
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let digits: &[u8] = if upper { b"0123456789ABCDEFX" } else { b"0123456789abcdefx" };
        let mut rev: Vec<u8> = Vec::new();
        loop {
            rev.push(digits[(u % u64::from(base)) as usize]);
            u /= u64::from(base);
            if u == 0 {
                break;
            }
        }
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let s = String::from_utf8_lossy(&rev).into_owned();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn fmt_float(&mut self, v: f64, verb: char, default_prec: i32) {
        let prec = self.f.prec.map_or(default_prec, |p| i32::try_from(p).unwrap_or(i32::MAX));
        let verb = if verb == 'F' { 'f' } else { verb };
        let mut num = format_float(v, verb, prec);
        if !num.starts_with(['-', '+']) {
            num.insert(0, '+');
        }
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        let second = num[1..].chars().next();
        if matches!(second, Some('I' | 'N')) {
            let old = self.f.zero;
            self.f.zero = false;
            if second == Some('N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = old;
            return;
        }
        if self.f.plus || !num.starts_with('+') {
            let len = num.chars().count();
            if self.f.zero && !self.f.minus && self.f.wid.is_some_and(|w| w > len) {
                let w = self.f.wid.unwrap_or(0);
                self.buf.push_str(&num[..1]);
                self.write_padding(w - len);
                self.buf.push_str(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.erroring = true;
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        self.typed_arg(arg);
        self.buf.push(')');
        self.erroring = false;
    }

    /// An argument as Go's error verbs show it: `<nil>`, else `TYPE=VALUE`.
    fn typed_arg(&mut self, arg: &Value) {
        if matches!(arg, Value::Nil) {
            self.buf.push_str("<nil>");
        } else {
            let t = type_name(self.types, arg);
            self.buf.push_str(&t);
            self.buf.push('=');
            self.print_arg(arg, 'v');
        }
    }

    fn fmt_bool(&mut self, b: bool, verb: char, arg: &Value) {
        match verb {
            't' | 'v' => self.pad(if b { "true" } else { "false" }),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_int_verb(&mut self, u: u64, signed: bool, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v && !signed => {
                let old = self.f.sharp;
                self.f.sharp = true;
                self.fmt_integer(u, 16, false, verb, false);
                self.f.sharp = old;
            }
            'v' | 'd' => self.fmt_integer(u, 10, signed, verb, false),
            'b' => self.fmt_integer(u, 2, signed, verb, false),
            'o' | 'O' => self.fmt_integer(u, 8, signed, verb, false),
            'x' => self.fmt_integer(u, 16, signed, verb, false),
            'X' => self.fmt_integer(u, 16, signed, verb, true),
            'c' => {
                let c = u32::try_from(u).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                self.pad(&c.to_string());
            }
            'q' => {
                let c = u32::try_from(u).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                let q = quote_with(&c.to_string(), '\'', self.f.plus);
                self.pad(&q);
            }
            'U' => {
                let mut s = format!("U+{u:04X}");
                if let Some(p) = self.f.prec {
                    let hex = format!("{u:X}");
                    if hex.len() < p {
                        s = format!("U+{}{hex}", "0".repeat(p - hex.len()));
                    }
                }
                if self.f.sharp
                    && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32).filter(|&c| is_print(c))
                {
                    let _ = write!(s, " '{c}'");
                }
                let old = self.f.zero;
                self.f.zero = false;
                self.pad(&s);
                self.f.zero = old;
            }
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, arg: &Value) {
        match verb {
            'v' => self.fmt_float(v, 'g', -1),
            'g' | 'G' | 'b' | 'x' | 'X' => self.fmt_float(v, verb, -1),
            'f' | 'F' | 'e' | 'E' => self.fmt_float(v, verb, 6),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, false),
            'X' => self.fmt_sx(s, true),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_pointer(&mut self, v: &Value, verb: char) {
        let addr = crate::types::identity(v).unwrap_or(0) as u64;
        match verb {
            'v' | 'p' => {
                if addr == 0 && verb == 'v' {
                    self.pad("<nil>");
                } else {
                    let old = self.f.sharp;
                    self.f.sharp = !old;
                    self.fmt_integer(addr, 16, false, 'v', false);
                    self.f.sharp = old;
                }
            }
            'b' | 'o' | 'd' | 'x' | 'X' => {
                let (base, upper) = match verb {
                    'b' => (2, false),
                    'o' => (8, false),
                    'd' => (10, false),
                    'x' => (16, false),
                    _ => (16, true),
                };
                self.fmt_integer(addr, base, false, verb, upper);
            }
            _ => self.bad_verb(verb, v),
        }
    }

    /// Go's `handleMethods`: values with a `String()` method (times,
    /// durations, Alertmanager's `KV` and `Pairs`) print it.
    fn handle_methods(&mut self, v: &Value, verb: char) -> bool {
        if self.erroring || self.f.sharp_v || !matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            return false;
        }
        let s = match self.types.kind(v) {
            Some(Kind::Time(t) | Kind::TimeValue(t)) => gotime::time_string(t),
            Some(Kind::Duration(d)) => gotime::duration_string(d),
            Some(k @ (Kind::Kv | Kind::Pairs)) => crate::alertmanager::stringer(k, v),
            Some(Kind::Histogram) => match v {
                Value::Map(m) => match m.get("String") {
                    Some(Value::String(s)) => s.to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            },
            _ => return false,
        };
        self.fmt_string(&s, verb, v);
        true
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        if matches!(arg, Value::Nil) {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        match verb {
            'T' => {
                let t = type_name(self.types, arg);
                self.fmt_s(&t);
                return;
            }
            'p' => {
                if matches!(arg, Value::Map(_) | Value::List(_) | Value::Function(_)) {
                    self.fmt_pointer(arg, 'p');
                } else {
                    self.bad_verb(verb, arg);
                }
                return;
            }
            _ => {}
        }
        match arg {
            Value::Bool(b) => self.fmt_bool(*b, verb, arg),
            Value::Int(i) => self.fmt_int_verb(*i as u64, true, verb, arg),
            Value::Uint(u) => self.fmt_int_verb(*u, false, verb, arg),
            Value::Float(f) => self.fmt_float_verb(*f, verb, arg),
            Value::String(s) => self.fmt_string(s, verb, arg),
            _ => {
                if !self.handle_methods(arg, verb) {
                    self.print_value(arg, verb, 0);
                }
            }
        }
    }

    fn print_value(&mut self, v: &Value, verb: char, depth: usize) {
        if depth > 0 && self.handle_methods(v, verb) {
            return;
        }
        let kind = self.types.kind(v);
        match v {
            // A nil inside an interface-typed slot.
            Value::Nil => self.buf.push_str("<nil>"),
            Value::Bool(b) => self.fmt_bool(*b, verb, v),
            Value::Int(i) => self.fmt_int_verb(*i as u64, true, verb, v),
            Value::Uint(u) => self.fmt_int_verb(*u, false, verb, v),
            Value::Float(f) => self.fmt_float_verb(*f, verb, v),
            Value::String(s) => self.fmt_string(s, verb, v),
            Value::Function(_) => self.fmt_pointer(v, verb),
            Value::Map(m) => match kind {
                Some(Kind::Sample) if depth > 0 => self.fmt_pointer(v, verb),
                Some(k @ (Kind::Time(t) | Kind::TimeValue(t))) => {
                    // Only String() is reproduced; other verbs print like a bad verb.
                    let _ = write!(self.buf, "%!{verb}({}={})", k.go_type(), gotime::time_string(t));
                }
                Some(Kind::Duration(d)) => self.fmt_int_verb(d as u64, true, verb, v),
                Some(k) if k.struct_fields().is_some() => {
                    if k == Kind::Sample {
                        self.buf.push('&');
                    }
                    if self.f.sharp_v {
                        self.buf.push_str(k.go_type().trim_start_matches('*'));
                    }
                    self.buf.push('{');
                    let fields = k.struct_fields().unwrap_or(&[]);
                    for (i, name) in fields.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                        }
                        if self.f.plus_v || self.f.sharp_v {
                            self.buf.push_str(name);
                            self.buf.push(':');
                        }
                        let field = m.get(*name).cloned().unwrap_or(Value::Nil);
                        self.print_value(&field, verb, depth + 1);
                    }
                    self.buf.push('}');
                }
                _ => {
                    if self.f.sharp_v {
                        let t = type_name(self.types, v);
                        self.buf.push_str(&t);
                        self.buf.push('{');
                    } else {
                        self.buf.push_str("map[");
                    }
                    for (i, (k, val)) in m.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                        }
                        self.print_value(&Value::String(k.clone()), verb, depth + 1);
                        self.buf.push(':');
                        self.print_value(val, verb, depth + 1);
                    }
                    self.buf.push(if self.f.sharp_v { '}' } else { ']' });
                }
            },
            Value::List(items) => {
                if self.f.sharp_v {
                    let t = type_name(self.types, v);
                    self.buf.push_str(&t);
                    self.buf.push('{');
                } else {
                    self.buf.push('[');
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.print_value(item, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
        }
    }

    fn do_printf(&mut self, format: &str, a: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0;
        'format: while i < end {
            let mut good_arg_num = true;
            let last = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            // Flags, with the fast path for a simple verb.
            while i < end {
                let c = fb[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < a.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&a[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }
            // Argument index, width, precision.
            (arg_num, i, after_index) = self.arg_number(arg_num, format, i, a.len(), &mut good_arg_num, &mut reordered);
            if i < end && fb[i] == b'*' {
                i += 1;
                let (n, ok, next) = int_from_arg(a, arg_num);
                arg_num = next;
                if !ok {
                    self.buf.push_str("%!(BADWIDTH)");
                    self.f.wid = None;
                } else if n < 0 {
                    self.f.wid = Some(n.unsigned_abs() as usize);
                    self.f.minus = true;
                    self.f.zero = false;
                } else {
                    self.f.wid = Some(n as usize);
                }
                after_index = false;
            } else {
                let (n, ok, next) = parse_num(fb, i, end);
                i = next;
                if ok {
                    self.f.wid = Some(n);
                    if after_index {
                        good_arg_num = false;
                    }
                }
            }
            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, format, i, a.len(), &mut good_arg_num, &mut reordered);
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (n, ok, next) = int_from_arg(a, arg_num);
                    arg_num = next;
                    if !ok || n < 0 {
                        self.f.prec = None;
                        if !ok {
                            self.buf.push_str("%!(BADPREC)");
                        }
                    } else {
                        self.f.prec = Some(n as usize);
                    }
                    after_index = false;
                } else {
                    let (n, ok, next) = parse_num(fb, i, end);
                    i = next;
                    self.f.prec = Some(if ok { n } else { 0 });
                }
            }
            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, format, i, a.len(), &mut good_arg_num, &mut reordered);
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let Some(verb) = format[i..].chars().next() else { break };
            i += verb.len_utf8();
            match verb {
                '%' => self.buf.push('%'),
                _ if !good_arg_num => {
                    let _ = write!(self.buf, "%!{verb}(BADINDEX)");
                }
                _ if arg_num >= a.len() => {
                    let _ = write!(self.buf, "%!{verb}(MISSING)");
                }
                _ => {
                    if verb == 'v' {
                        self.f.sharp_v = self.f.sharp;
                        self.f.sharp = false;
                        self.f.plus_v = self.f.plus;
                        self.f.plus = false;
                    }
                    self.print_arg(&a[arg_num], verb);
                    arg_num += 1;
                }
            }
        }
        if !reordered && arg_num < a.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, arg) in a[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                self.typed_arg(arg);
            }
            self.buf.push(')');
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &str,
        i: usize,
        num_args: usize,
        good: &mut bool,
        reordered: &mut bool,
    ) -> (usize, usize, bool) {
        let fb = format.as_bytes();
        if i >= fb.len() || fb[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let (index, wid, ok) = parse_arg_number(&fb[i..]);
        if ok && index < num_args {
            return (index, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }
}

fn parse_num(s: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0usize;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if num > MAX_NUM {
            return (0, false, end);
        }
        num = num * 10 + usize::from(s[i] - b'0');
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

fn parse_arg_number(s: &[u8]) -> (usize, usize, bool) {
    if s.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..s.len() {
        if s[i] == b']' {
            let (width, ok, newi) = parse_num(s, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            // `[0]` is a well-formed but invalid index.
            return (width.wrapping_sub(1), i + 1, true);
        }
    }
    (0, 1, false)
}

fn int_from_arg(a: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let Some(v) = a.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (n, ok) = match v {
        Value::Int(i) => (*i, true),
        Value::Uint(u) => match i64::try_from(*u) {
            Ok(i) => (i, true),
            Err(_) => (0, false),
        },
        _ => (0, false),
    };
    if n.unsigned_abs() > MAX_NUM as u64 {
        return (0, false, arg_num + 1);
    }
    (n, ok, arg_num + 1)
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(types: &dyn Types, format: &str, args: &[Value]) -> String {
    let mut p = Printer::new(types);
    p.do_printf(format, args);
    p.buf
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(types: &dyn Types, args: &[Value]) -> String {
    let mut p = Printer::new(types);
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.f = Flags::default();
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln`: operands separated by spaces, then a newline.
pub(crate) fn sprintln(types: &dyn Types, args: &[Value]) -> String {
    let mut p = Printer::new(types);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.f = Flags::default();
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// `fmt.Sprint(v)` of one value (what an action prints).
pub(crate) fn sprint1(types: &dyn Types, v: &Value) -> String {
    sprint(types, std::slice::from_ref(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Untyped;

    fn f(v: f64, fmt: char, prec: i32) -> String {
        format_float(v, fmt, prec)
    }

    #[test]
    fn shortest_g_matches_go_v() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e20, "1e+20"),
            (123456789.0, "1.23456789e+08"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(float_v(v), want, "{v:e}");
        }
    }

    #[test]
    fn precision_g_e_f() {
        assert_eq!(f(1234567.0, 'g', 4), "1.235e+06");
        assert_eq!(f(0.12, 'g', 4), "0.12");
        assert_eq!(f(120.0, 'g', 4), "120");
        assert_eq!(f(9999.5, 'g', 4), "1e+04");
        assert_eq!(f(999.95, 'g', 4), "1000");
        assert_eq!(f(999.949, 'g', 4), "999.9");
        assert_eq!(f(0.0, 'g', 4), "0");
        assert_eq!(f(1e-5, 'g', 4), "1e-05");
        assert_eq!(f(100.0, 'g', 2), "1e+02");
        assert_eq!(f(1.5, 'e', 6), "1.500000e+00");
        assert_eq!(f(0.0, 'e', 2), "0.00e+00");
        assert_eq!(f(1e100, 'e', 1), "1.0e+100");
        assert_eq!(f(2.5, 'f', 0), "2");
        assert_eq!(f(3720.01, 'f', 2), "3720.01");
        assert_eq!(f(1.0, 'e', -1), "1e+00");
        assert_eq!(f(1.0, 'x', -1), "0x1p+00");
        assert_eq!(f(3.0, 'x', -1), "0x1.8p+01");
        assert_eq!(f(0.1, 'x', -1), "0x1.999999999999ap-04");
        assert_eq!(f(-3.0, 'X', -1), "-0X1.8P+01");
        assert_eq!(f(1.0, 'b', -1), "4503599627370496p-52");
        assert_eq!(f(0.0, 'x', -1), "0x0p+00");
    }

    fn pf(format: &str, args: &[Value]) -> String {
        sprintf(&Untyped, format, args)
    }

    #[test]
    fn printf_verbs() {
        let x = Value::Float(1.5);
        assert_eq!(pf("%d", std::slice::from_ref(&x)), "%!d(float64=1.5)");
        assert_eq!(pf("%s", std::slice::from_ref(&x)), "%!s(float64=1.5)");
        assert_eq!(
            pf("%v|%.2f|%8.3f|%-8.1e|%+g", &[x.clone(), x.clone(), x.clone(), x.clone(), x.clone()]),
            "1.5|1.50|   1.500|1.5e+00 |+1.5"
        );
        assert_eq!(pf("%f %v", &[Value::Float(f64::INFINITY), Value::Float(f64::NAN)]), "+Inf NaN");
        assert_eq!(
            pf(
                "%05d|%x|%X|%o|%b|%#x|%c|%q|%U",
                &[
                    Value::Int(-42),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(255),
                    Value::Int(65),
                    Value::Int(65),
                    Value::Int(0x1F600),
                ]
            ),
            "-0042|ff|FF|10|101|0xff|A|'A'|U+1F600"
        );
        assert_eq!(
            pf("%5s|%-5s|%.2s|%q|%x", &["ab".into(), "ab".into(), "abc".into(), "a\"b\n".into(), "hi".into(),]),
            "   ab|ab   |ab|\"a\\\"b\\n\"|6869"
        );
        assert_eq!(pf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(pf("%d", &[Value::Int(1), "x".into()]), "1%!(EXTRA string=x)");
        assert_eq!(pf("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(pf("%[3]d", &[Value::Int(1)]), "%!d(BADINDEX)");
        assert_eq!(pf("%*d|%.*f", &[Value::Int(4), Value::Int(7), Value::Int(1), x.clone()]), "   7|1.5");
        assert_eq!(pf("%!", &[]), "%!!(MISSING)");
        assert_eq!(pf("x%", &[]), "x%!(NOVERB)");
        assert_eq!(pf("100%%", &[]), "100%");
        assert_eq!(pf("%s %v %d", &[Value::Nil, Value::Nil, Value::Nil]), "%!s(<nil>) <nil> %!d(<nil>)");
        assert_eq!(pf("%t %v", &[Value::Bool(true), Value::Bool(false)]), "true false");
        assert_eq!(pf("%T %T %T", &[x.clone(), Value::Int(1), "s".into()]), "float64 int string");
        assert_eq!(pf("%z", &[Value::Int(1)]), "%!z(int=1)");
        assert_eq!(pf("%6.2f%%", &[Value::Float(12.345)]), " 12.35%");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(sprint(&Untyped, &[Value::Int(1), Value::Int(2), "a".into(), Value::Int(3)]), "1 2a3");
        assert_eq!(sprintln(&Untyped, &["a".into(), Value::Float(1e21)]), "a 1e+21\n");
        assert_eq!(sprint1(&Untyped, &Value::Float(-1e-7)), "-1e-07");
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\u{a0}b\u{7f}\t\"é"), "\"a\\u00a0b\\x7f\\t\\\"é\"");
        assert_eq!(unicode_quote_u('\u{a0}'), "U+00A0");
        assert_eq!(unicode_quote_u('€'), "U+20AC '€'");
    }
}
