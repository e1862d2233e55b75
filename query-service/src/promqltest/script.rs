//! The PromQL test-script language of Prometheus's `promqltest`
//! (`../shared/conformance/promql/FORMAT.md`): `load`, `load_with_nhcb`,
//! `clear` and `eval` blocks with their expectations.

use std::fmt;

/// A parse error with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The line the error is on.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError { line, message: message.into() })
}

/// A native histogram literal (`{{…}}`), kept as its fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramLit {
    /// Bucket schema.
    pub schema: i32,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
    /// Zero-bucket count.
    pub z_bucket: f64,
    /// Zero threshold.
    pub z_bucket_w: f64,
    /// Positive bucket counts (absolute) from `offset`.
    pub buckets: Vec<f64>,
    /// Index of the first positive bucket.
    pub offset: i32,
    /// Negative bucket counts (absolute) from `n_offset`.
    pub n_buckets: Vec<f64>,
    /// Index of the first negative bucket.
    pub n_offset: i32,
    /// Custom bucket bounds (schema -53).
    pub custom_values: Vec<f64>,
    /// `counter_reset_hint`, if spelled out.
    pub counter_reset_hint: Option<String>,
}

/// One value slot of a series line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A float (NaN included, but not the staleness marker).
    Float(f64),
    /// A staleness marker.
    Stale,
    /// A native histogram.
    Histogram(HistogramLit),
}

/// A series line: labels (including `__name__`) and one entry per grid slot
/// (`None`: no sample there).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    /// One per slot.
    pub values: Vec<Option<Value>>,
}

/// How an eval is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalKind {
    /// At one time, milliseconds.
    Instant {
        /// Evaluation time.
        at_ms: i64,
    },
    /// A range query.
    Range {
        /// First step, milliseconds.
        start_ms: i64,
        /// Last step (inclusive when on the grid), milliseconds.
        end_ms: i64,
        /// Step, milliseconds.
        step_ms: i64,
    },
}

/// A message expectation: exact text or a regular expression (unanchored).
#[derive(Debug, Clone)]
pub enum MessageMatch {
    /// Any message.
    Any,
    /// This exact text.
    Exact(String),
    /// A search with this pattern.
    Regex(regex::Regex),
}

impl MessageMatch {
    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            MessageMatch::Any => true,
            MessageMatch::Exact(t) => t == text,
            MessageMatch::Regex(r) => r.is_match(text),
        }
    }
}

/// What an eval expects.
#[derive(Debug, Clone)]
pub enum Expected {
    /// Series lines (possibly none: an empty result).
    Series(Vec<SeriesLine>),
    /// A scalar.
    Scalar(f64),
    /// A string.
    String(String),
    /// An instant query returning a range vector, on this grid.
    RangeVector {
        /// Grid start, ms.
        start_ms: i64,
        /// Grid end, ms.
        end_ms: i64,
        /// Grid step, ms.
        step_ms: i64,
        /// The series.
        series: Vec<SeriesLine>,
    },
}

/// One `eval` block.
#[derive(Debug, Clone)]
pub struct Eval {
    /// The line of the `eval` command.
    pub line: usize,
    /// The PromQL expression.
    pub expr: String,
    /// Instant or range.
    pub kind: EvalKind,
    /// `expect fail` (with its message match).
    pub fail: Option<MessageMatch>,
    /// `expect ordered`.
    pub ordered: bool,
    /// `expect warn` lines (`Some(vec![])`: `no_warn`; `None`: unchecked).
    pub warn: Option<Vec<MessageMatch>>,
    /// `expect info` lines, as for `warn`.
    pub info: Option<Vec<MessageMatch>>,
    /// The expected result.
    pub expected: Expected,
}

/// One command of a script.
#[derive(Debug, Clone)]
pub enum Command {
    /// `load` / `load_with_nhcb`.
    Load {
        /// The line of the command.
        line: usize,
        /// Grid spacing, milliseconds.
        interval_ms: i64,
        /// Whether classic histograms are also loaded as NHCB.
        nhcb: bool,
        /// The series.
        series: Vec<SeriesLine>,
    },
    /// `clear`.
    Clear,
    /// `eval`.
    Eval(Box<Eval>),
}

/// Parses a Prometheus duration (`1h30m`, `10s53ms`, `0`, `-5m`), in
/// milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(if neg { -total } else { total })
}

/// Parses a number as a series value: decimal, `Inf`, `NaN` (any case),
/// with a sign; no hexadecimal.
fn parse_number(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    match body {
        "inf" => Some(sign * f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ if body.starts_with("0x") => None,
        _ => body.parse::<f64>().ok().map(|v| sign * v),
    }
}

/// Parses a scalar expectation: like Go's ParseFloat (hex integers too).
fn parse_scalar(s: &str) -> Option<f64> {
    if let Some(v) = parse_number(s) {
        return Some(v);
    }
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    let hex = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))?;
    i64::from_str_radix(hex, 16).ok().map(|v| sign * v as f64)
}

/// Splits a series line into its series part and its values part.
fn split_series(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'{' {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'{' {
        let mut quote: Option<u8> = None;
        let mut escaped = false;
        i += 1;
        while i < bytes.len() {
            let c = bytes[i];
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None if c == b'"' || c == b'\'' || c == b'`' => quote = Some(c),
                None if c == b'}' => {
                    i += 1;
                    break;
                }
                None => {}
            }
            i += 1;
        }
    }
    let (series, values) = line.split_at(i);
    (!series.is_empty()).then_some((series, values.trim()))
}

/// Unquotes a PromQL string literal (double, single or back quotes).
fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if s.len() < 2 || !s.ends_with(q) || !matches!(q, '"' | '\'' | '`') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Some(inner.to_owned());
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&h, 16).ok()?;
                // Invalid UTF-8 bytes are kept as U+FFFD, as Go would print them.
                out.push(char::from(b));
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            c if c.is_ascii_digit() => {
                let mut o = String::from(c);
                o.extend(chars.by_ref().take(2));
                out.push(char::from(u8::from_str_radix(&o, 8).ok()?));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses a series description: `name`, `name{l="v",…}`, `{__name__="n",…}`.
pub fn parse_series(s: &str) -> Option<Vec<(String, String)>> {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let mut labels = Vec::new();
    if !name.is_empty() {
        labels.push(("__name__".to_owned(), name.to_owned()));
    }
    if let Some(body) = rest {
        let body = body.strip_prefix('{')?.strip_suffix('}')?;
        let mut rest = body.trim();
        while !rest.is_empty() {
            // A name (possibly quoted), '=', a quoted value, then ',' or end.
            let (lname, after) = if rest.starts_with('"') || rest.starts_with('\'') {
                let end = quoted_end(rest)?;
                (unquote(&rest[..end])?, &rest[end..])
            } else {
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '.'))?;
                (rest[..end].to_owned(), &rest[end..])
            };
            let after = after.trim_start().strip_prefix('=')?.trim_start();
            let end = quoted_end(after)?;
            let value = unquote(&after[..end])?;
            labels.retain(|(n, _)| *n != lname);
            labels.push((lname, value));
            rest = after[end..].trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
    }
    labels.sort();
    Some(labels)
}

/// The length of the quoted string at the start of `s`, quotes included.
fn quoted_end(s: &str) -> Option<usize> {
    let q = s.chars().next()?;
    if !matches!(q, '"' | '\'' | '`') {
        return None;
    }
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && q != '`' {
            escaped = true;
        } else if c == q {
            return Some(i + 1);
        }
    }
    None
}

/// Splits a values part into tokens, keeping `{{…}}` (and what is glued to
/// it, such as `{{…}}x3` or `{{…}}+{{…}}x2`) together.
fn value_tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_f64_list(s: &str) -> Option<Vec<f64>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.split_whitespace().map(parse_number).collect()
}

/// Parses `{{key:value …}}`.
fn parse_histogram(s: &str) -> Option<HistogramLit> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let mut h = HistogramLit::default();
    // Fields are `key:value` with list values in brackets (which contain spaces).
    let mut rest = inner;
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let key = rest[..colon].trim();
        let after = rest[colon + 1..].trim_start();
        let (value, next) = if after.starts_with('[') {
            let end = after.find(']')? + 1;
            (&after[..end], &after[end..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key {
            "schema" => h.schema = value.parse().ok()?,
            "sum" => h.sum = parse_number(value)?,
            "count" => h.count = parse_number(value)?,
            "z_bucket" => h.z_bucket = parse_number(value)?,
            "z_bucket_w" => h.z_bucket_w = parse_number(value)?,
            "buckets" => h.buckets = parse_f64_list(value)?,
            "offset" => h.offset = value.parse().ok()?,
            "n_buckets" => h.n_buckets = parse_f64_list(value)?,
            "n_offset" => h.n_offset = value.parse().ok()?,
            "custom_values" => h.custom_values = parse_f64_list(value)?,
            "counter_reset_hint" => h.counter_reset_hint = Some(value.to_owned()),
            _ => return None,
        }
        rest = next.trim_start();
    }
    Some(h)
}

impl HistogramLit {
    /// This histogram in the coarser exponential schema `schema` (buckets
    /// merged), as Prometheus adds histograms of two schemas.
    fn at_schema(&self, schema: i32) -> HistogramLit {
        use crate::engine::histogram::{CUSTOM_BUCKETS_SCHEMA, FloatHistogram};
        if schema >= self.schema || self.schema == CUSTOM_BUCKETS_SCHEMA || schema == CUSTOM_BUCKETS_SCHEMA {
            return self.clone();
        }
        let sparse = |b: &[f64], o: i32| -> Vec<(i32, f64)> {
            b.iter().enumerate().map(|(i, c)| (o + i32::try_from(i).unwrap_or(i32::MAX), *c)).collect()
        };
        let h = FloatHistogram {
            schema: self.schema,
            reset_hint: schemas::stream::histogram::ResetHint::Unknown,
            count: self.count,
            sum: self.sum,
            zero_threshold: self.z_bucket_w,
            zero_count: self.z_bucket,
            positive: sparse(&self.buckets, self.offset),
            negative: sparse(&self.n_buckets, self.n_offset),
            custom_values: Vec::new(),
        }
        .to_schema(schema);
        let dense = |b: &[(i32, f64)]| -> (Vec<f64>, i32) {
            let (Some(first), Some(last)) = (b.first(), b.last()) else { return (Vec::new(), 0) };
            let mut out = vec![0.0; usize::try_from(last.0 - first.0 + 1).unwrap_or(0)];
            for (i, c) in b {
                out[usize::try_from(i - first.0).unwrap_or(0)] += c;
            }
            (out, first.0)
        };
        let ((buckets, offset), (n_buckets, n_offset)) = (dense(&h.positive), dense(&h.negative));
        HistogramLit { schema, buckets, offset, n_buckets, n_offset, ..self.clone() }
    }

    fn combine(&self, d: &HistogramLit, k: f64) -> HistogramLit {
        // Bucket-wise `self + k·d` on the coarser schema of the two (the
        // finer one's buckets merged); a different layout is aligned by
        // bucket index.
        let schema = self.schema.min(d.schema);
        let (this, d) = (self.at_schema(schema), d.at_schema(schema));
        let this = &this;
        let add = |a: &[f64], ao: i32, b: &[f64], bo: i32| -> (Vec<f64>, i32) {
            if b.is_empty() {
                return (a.to_vec(), ao);
            }
            if a.is_empty() {
                return (b.iter().map(|x| k * x).collect(), bo);
            }
            let lo = ao.min(bo);
            let hi = (ao + a.len() as i32).max(bo + b.len() as i32);
            let mut out = vec![0.0; (hi - lo) as usize];
            for (i, x) in a.iter().enumerate() {
                out[(ao - lo) as usize + i] += x;
            }
            for (i, x) in b.iter().enumerate() {
                out[(bo - lo) as usize + i] += k * x;
            }
            (out, lo)
        };
        let (buckets, offset) = add(&this.buckets, this.offset, &d.buckets, d.offset);
        let (n_buckets, n_offset) = add(&this.n_buckets, this.n_offset, &d.n_buckets, d.n_offset);
        HistogramLit {
            schema,
            sum: this.sum + k * d.sum,
            count: this.count + k * d.count,
            z_bucket: this.z_bucket + k * d.z_bucket,
            z_bucket_w: this.z_bucket_w,
            buckets,
            offset,
            n_buckets,
            n_offset,
            custom_values: this.custom_values.clone(),
            counter_reset_hint: this.counter_reset_hint.clone(),
        }
    }
}

/// Expands one value token into slots.
fn expand_token(tok: &str, line: usize) -> Result<Vec<Option<Value>>, ScriptError> {
    let bad = || ScriptError { line, message: format!("bad value {tok:?}") };
    if tok == "_" {
        return Ok(vec![None]);
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| bad())?;
        return Ok(vec![None; n]);
    }
    if tok == "stale" {
        return Ok(vec![Some(Value::Stale)]);
    }
    if tok.starts_with("{{") {
        // {{H}}, {{H}}xN, {{H}}+{{D}}xN, {{H}}-{{D}}xN
        let first_end = tok.find("}}").ok_or_else(bad)? + 2;
        let h = parse_histogram(&tok[..first_end]).ok_or_else(bad)?;
        let rest = &tok[first_end..];
        if rest.is_empty() {
            return Ok(vec![Some(Value::Histogram(h))]);
        }
        if let Some(n) = rest.strip_prefix('x') {
            let n: usize = n.parse().map_err(|_| bad())?;
            return Ok(vec![Some(Value::Histogram(h)); n + 1]);
        }
        let sign = match rest.chars().next() {
            Some('+') => 1.0,
            Some('-') => -1.0,
            _ => return Err(bad()),
        };
        let rest = &rest[1..];
        let d_end = rest.find("}}").ok_or_else(bad)? + 2;
        let d = parse_histogram(&rest[..d_end]).ok_or_else(bad)?;
        let n: usize = rest[d_end..].strip_prefix('x').and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        return Ok((0..=n).map(|i| Some(Value::Histogram(h.combine(&d, sign * i as f64)))).collect());
    }
    if let Some(v) = parse_number(tok) {
        return Ok(vec![Some(Value::Float(v))]);
    }
    // AxN, A+BxN, A-BxN
    let (base, n) = tok.rsplit_once('x').ok_or_else(bad)?;
    let n: usize = n.parse().map_err(|_| bad())?;
    // The operator is a '+' or '-' that is not the leading sign nor an exponent's sign.
    let b = base.as_bytes();
    let op = (1..b.len()).rev().find(|&i| (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E'));
    match op {
        None => {
            let a = parse_number(base).ok_or_else(bad)?;
            Ok(vec![Some(Value::Float(a)); n + 1])
        }
        Some(i) => {
            let a = parse_number(&base[..i]).ok_or_else(bad)?;
            let d = parse_number(&base[i + 1..]).ok_or_else(bad)?;
            let d = if b[i] == b'-' { -d } else { d };
            let mut out = Vec::with_capacity(n + 1);
            let mut v = a;
            for _ in 0..=n {
                out.push(Some(Value::Float(v)));
                v += d;
            }
            Ok(out)
        }
    }
}

/// Parses a `<series> <values>` line.
pub fn parse_series_line(text: &str, line: usize) -> Result<SeriesLine, ScriptError> {
    let Some((series, values)) = split_series(text) else { return err(line, format!("bad series line {text:?}")) };
    let Some(labels) = parse_series(series) else { return err(line, format!("bad series {series:?}")) };
    let mut out = Vec::new();
    for tok in value_tokens(values) {
        out.extend(expand_token(&tok, line)?);
    }
    Ok(SeriesLine { labels, values: out })
}

fn parse_message(rest: &str, line: usize) -> Result<MessageMatch, ScriptError> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(MessageMatch::Any);
    }
    if let Some(m) = rest.strip_prefix("msg:") {
        return Ok(MessageMatch::Exact(m.trim().to_owned()));
    }
    if let Some(r) = rest.strip_prefix("regex:") {
        return regex::Regex::new(r.trim())
            .map(MessageMatch::Regex)
            .map_err(|e| ScriptError { line, message: format!("bad regex: {e}") });
    }
    err(line, format!("bad expectation {rest:?}"))
}

/// Parses a script.
///
/// # Errors
/// The first malformed line.
pub fn parse_script(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let t = l.trim();
            (i + 1, if t.starts_with('#') { String::new() } else { t.to_owned() })
        })
        .collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].1.is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        // `clear` is a one-line command: a command may follow it directly.
        if lines[i].1 == "clear" {
            commands.push(Command::Clear);
            i += 1;
            continue;
        }
        while i < lines.len() && !lines[i].1.is_empty() {
            i += 1;
        }
        let block = &lines[start..i];
        commands.push(parse_block(block)?);
    }
    Ok(commands)
}

fn parse_block(block: &[(usize, String)]) -> Result<Command, ScriptError> {
    let (line, head) = (&block[0].0, block[0].1.as_str());
    let line = *line;
    let (word, rest) = head.split_once(char::is_whitespace).unwrap_or((head, ""));
    match word {
        "clear" => Ok(Command::Clear),
        "load" | "load_with_nhcb" => {
            let Some(interval_ms) = parse_duration(rest.trim()) else {
                return err(line, format!("bad load interval {rest:?}"));
            };
            // `<series>@st …` lines give start timestamps of the next line's
            // samples (testdata-next); PromLake does not store them yet, so
            // they are read past.
            let lines: Vec<SeriesLine> = block[1..]
                .iter()
                .filter(|(_, t)| !t.split_whitespace().next().is_some_and(|s| s.ends_with("@st")))
                .map(|(l, t)| parse_series_line(t, *l))
                .collect::<Result<_, _>>()?;
            // A later line with the same labels replaces an earlier one's
            // samples, as Prometheus's loader keys its series by labels.
            let mut series: Vec<SeriesLine> = Vec::with_capacity(lines.len());
            for s in lines {
                match series.iter_mut().find(|e| e.labels == s.labels) {
                    Some(earlier) => *earlier = s,
                    None => series.push(s),
                }
            }
            Ok(Command::Load { line, interval_ms, nhcb: word == "load_with_nhcb", series })
        }
        "eval" | "eval_fail" | "eval_warn" | "eval_info" | "eval_ordered" => {
            parse_eval(word, rest, line, &block[1..]).map(|e| Command::Eval(Box::new(e)))
        }
        _ => err(line, format!("unknown command {word:?}")),
    }
}

fn parse_eval(word: &str, rest: &str, line: usize, body: &[(usize, String)]) -> Result<Eval, ScriptError> {
    let rest = rest.trim();
    let (kind, expr) = if let Some(r) = rest.strip_prefix("instant") {
        let r =
            r.trim_start().strip_prefix("at").ok_or_else(|| ScriptError { line, message: "expected 'at'".into() })?;
        let r = r.trim_start();
        let (t, expr) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
        let at_ms = parse_duration(t).ok_or_else(|| ScriptError { line, message: format!("bad time {t:?}") })?;
        (EvalKind::Instant { at_ms }, expr.trim())
    } else if let Some(r) = rest.strip_prefix("range") {
        let words: Vec<&str> = r.split_whitespace().collect();
        if words.len() < 7 || words[0] != "from" || words[2] != "to" || words[4] != "step" {
            return err(line, "expected 'range from <start> to <end> step <step> <expr>'");
        }
        let d = |s: &str| parse_duration(s).ok_or_else(|| ScriptError { line, message: format!("bad duration {s:?}") });
        let (start_ms, end_ms, step_ms) = (d(words[1])?, d(words[3])?, d(words[5])?);
        // The expression is everything after the sixth word.
        let mut rest = r.trim_start();
        for _ in 0..6 {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest = rest[end..].trim_start();
        }
        let expr = rest;
        (EvalKind::Range { start_ms, end_ms, step_ms }, expr)
    } else {
        return err(line, format!("bad eval {rest:?}"));
    };
    let mut eval = Eval {
        line,
        expr: expr.to_owned(),
        kind,
        fail: (word == "eval_fail").then_some(MessageMatch::Any),
        ordered: word == "eval_ordered",
        warn: (word == "eval_warn").then(|| vec![MessageMatch::Any]),
        info: (word == "eval_info").then(|| vec![MessageMatch::Any]),
        expected: Expected::Series(Vec::new()),
    };
    let mut series = Vec::new();
    let mut scalar = None;
    let mut string = None;
    let mut range_vector = None;
    for (l, text) in body {
        let l = *l;
        if let Some(e) = text.strip_prefix("expect ") {
            let e = e.trim();
            let (what, rest) = e.split_once(char::is_whitespace).unwrap_or((e, ""));
            match what {
                "fail" => eval.fail = Some(parse_message(rest, l)?),
                "ordered" => eval.ordered = true,
                "warn" => eval.warn.get_or_insert_with(Vec::new).push(parse_message(rest, l)?),
                "info" => eval.info.get_or_insert_with(Vec::new).push(parse_message(rest, l)?),
                "no_warn" => eval.warn = Some(Vec::new()),
                "no_info" => eval.info = Some(Vec::new()),
                "string" => {
                    string = Some(
                        unquote(rest.trim()).ok_or_else(|| ScriptError { line: l, message: "bad string".into() })?,
                    )
                }
                "range" => {
                    let w: Vec<&str> = rest.split_whitespace().collect();
                    if w.len() != 7 || w[0] != "vector" || w[1] != "from" || w[3] != "to" || w[5] != "step" {
                        return err(l, format!("bad 'expect range vector' {rest:?}"));
                    }
                    let d = |s: &str| {
                        parse_duration(s).ok_or_else(|| ScriptError { line: l, message: format!("bad duration {s:?}") })
                    };
                    range_vector = Some((d(w[2])?, d(w[4])?, d(w[6])?));
                }
                _ => return err(l, format!("unknown expectation {what:?}")),
            }
            continue;
        }
        if let Some(m) = text.strip_prefix("expected_fail_message ") {
            eval.fail = Some(MessageMatch::Exact(m.trim().to_owned()));
            continue;
        }
        if let Some(r) = text.strip_prefix("expected_fail_regexp ") {
            eval.fail = Some(parse_message(&format!("regex: {r}"), l)?);
            continue;
        }
        if let Some(v) = parse_scalar(text) {
            scalar = Some(v);
            continue;
        }
        series.push(parse_series_line(text, l)?);
    }
    eval.expected = if let Some(s) = string {
        Expected::String(s)
    } else if let Some(v) = scalar {
        Expected::Scalar(v)
    } else if let Some((start_ms, end_ms, step_ms)) = range_vector {
        Expected::RangeVector { start_ms, end_ms, step_ms, series }
    } else {
        Expected::Series(series)
    };
    Ok(eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(values: &[Option<Value>]) -> Vec<Option<f64>> {
        values
            .iter()
            .map(|v| match v {
                Some(Value::Float(f)) => Some(*f),
                Some(Value::Stale) => Some(-999.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("10s53ms"), Some(10_053));
        assert_eq!(parse_duration("-5m"), Some(-300_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn value_expansions() {
        let l = parse_series_line(r#"m{a="b c", d="}"} 1 _ 3 stale 0+10x2 99-1x1 5x2 _x2 -2+3x2 1e3 NaN"#, 1).unwrap();
        assert_eq!(
            l.labels,
            vec![("__name__".into(), "m".into()), ("a".into(), "b c".into()), ("d".into(), "}".into())]
        );
        let f = floats(&l.values);
        assert_eq!(&f[..4], &[Some(1.0), None, Some(3.0), Some(-999.0)]);
        assert_eq!(&f[4..7], &[Some(0.0), Some(10.0), Some(20.0)]);
        assert_eq!(&f[7..9], &[Some(99.0), Some(98.0)]);
        assert_eq!(&f[9..12], &[Some(5.0); 3]);
        assert_eq!(&f[12..14], &[None, None]);
        assert_eq!(&f[14..17], &[Some(-2.0), Some(1.0), Some(4.0)]);
        assert_eq!(f[17], Some(1000.0));
        assert!(f[18].unwrap().is_nan());
        // `0x59` in a series line: 0 repeated 59 more times.
        assert_eq!(parse_series_line("{} 0x59", 1).unwrap().values.len(), 60);
    }

    #[test]
    fn histograms() {
        let l = parse_series_line("h {{schema:0 sum:5 count:4 buckets:[1 2 1]}}+{{sum:1 count:1 buckets:[1]}}x2", 1)
            .unwrap();
        assert_eq!(l.values.len(), 3);
        let Some(Value::Histogram(h)) = &l.values[2] else { panic!() };
        assert_eq!((h.sum, h.count, h.buckets.clone()), (7.0, 6.0, vec![3.0, 2.0, 1.0]));
        // A finer increment is merged into the base's coarser schema:
        // schema 0's (1,2] and (2,4] are schema -1's (1,4].
        let l = parse_series_line(
            "h {{schema:-1 sum:4 count:1 buckets:[1] offset:1}}+{{schema:0 sum:4 count:4 buckets:[2 2] offset:1}}x1",
            1,
        )
        .unwrap();
        let Some(Value::Histogram(h)) = &l.values[1] else { panic!() };
        assert_eq!((h.schema, h.count, h.buckets.clone(), h.offset), (-1, 5.0, vec![5.0], 1));
    }

    #[test]
    fn blocks_commands_and_expectations() {
        let script = r#"
load 5m
  http_requests{job="api", instance="0"} 0+10x10
  # a comment ends a block

eval instant at 50m sum(http_requests)
  expect ordered
  {} 100

eval range from 0 to 61s step 1s timestamp(metric)

eval range from 0 to 10m step 5m http_requests
  expect warn msg: PromQL warning: x (1:1)
  http_requests{job="api", instance="0"} 0 10 20

eval instant at 0 1
  1

eval_fail instant at 0m ceil(x)
  expected_fail_message boom

eval instant at 1m m[1m]
  expect range vector from 10s to 1m step 10s
  m 1 2

clear
load 1m
  m 1
"#;
        let cmds = parse_script(script).unwrap();
        assert_eq!(cmds.len(), 9, "a command right after clear is its own");
        assert!(matches!(cmds[8], Command::Load { .. }));
        let Command::Load { interval_ms, series, .. } = &cmds[0] else { panic!() };
        assert_eq!((*interval_ms, series.len(), series[0].values.len()), (300_000, 1, 11));
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(
            (e.expr.as_str(), e.ordered, e.kind),
            ("sum(http_requests)", true, EvalKind::Instant { at_ms: 3_000_000 })
        );
        let Command::Eval(e) = &cmds[2] else { panic!() };
        assert_eq!(e.expr, "timestamp(metric)", "the step's text also starts the range's end");
        let Command::Eval(e) = &cmds[3] else { panic!() };
        assert_eq!(e.kind, EvalKind::Range { start_ms: 0, end_ms: 600_000, step_ms: 300_000 });
        assert!(matches!(&e.warn, Some(w) if w.len() == 1 && w[0].matches("PromQL warning: x (1:1)")));
        let Command::Eval(e) = &cmds[4] else { panic!() };
        assert!(matches!(e.expected, Expected::Scalar(v) if v == 1.0));
        let Command::Eval(e) = &cmds[5] else { panic!() };
        assert!(matches!(&e.fail, Some(m) if m.matches("boom")));
        let Command::Eval(e) = &cmds[6] else { panic!() };
        assert!(matches!(e.expected, Expected::RangeVector { start_ms: 10_000, step_ms: 10_000, .. }));
        assert!(matches!(cmds[7], Command::Clear));
    }

    #[test]
    fn every_conformance_script_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/promql");
        for dir in ["testdata", "testdata-next"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = parse_script(&text) {
                    panic!("{}: {e}", path.display());
                }
            }
        }
    }

    #[test]
    fn a_later_series_line_with_the_same_labels_replaces_the_earlier() {
        let cmds = parse_script("load 1m\n  m{a=\"1\"} 1 2\n  m{a=\"2\"} 5\n  m{a=\"1\"} 3\n").unwrap();
        let Command::Load { series, .. } = &cmds[0] else { panic!() };
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].values.len(), 1, "m{{a=\"1\"}} is the last line's");
    }
}
