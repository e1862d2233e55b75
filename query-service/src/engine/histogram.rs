//! Native histograms as the engine reads them: a stored sample's encoding
//! (`schemas::stream::Histogram`: spans with integer deltas or float
//! counts) decoded into absolute float buckets by index, with Prometheus's
//! equality and counter-reset detection.

use prost::Message;
use schemas::stream::Histogram;
use schemas::stream::histogram::{Count, ResetHint, ZeroCount};

/// The schema of custom-bucket histograms (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// The largest bucket index accepted (schema 8's finite buckets end at
/// 2¹⁸).
const MAX_INDEX: i64 = 1 << 24;

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatHistogram {
    /// Bucket schema (-4..=8, or [`CUSTOM_BUCKETS_SCHEMA`]).
    pub schema: i32,
    /// The counter-reset hint.
    pub reset_hint: ResetHint,
    /// Observations.
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Positive buckets (index, count), by index; a bucket inside a span
    /// is listed even when it is empty.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets (index, count), by index.
    pub negative: Vec<(i32, f64)>,
    /// Upper bounds of custom buckets.
    pub custom_values: Vec<f64>,
}

impl FloatHistogram {
    /// Decodes a stored sample.
    ///
    /// # Errors
    /// When the bytes are not a histogram.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let h = Histogram::decode(bytes).map_err(|e| format!("bad histogram sample: {e}"))?;
        Self::from_proto(&h)
    }

    /// The histogram of a stream sample.
    ///
    /// # Errors
    /// A histogram Prometheus's `Validate` refuses: a schema outside
    /// -4..=8 other than custom buckets, spans whose lengths are not the
    /// number of buckets given, a negative gap between spans, or bucket
    /// indexes beyond ±2²⁴ (past every finite bound).
    pub fn from_proto(h: &Histogram) -> Result<Self, String> {
        if !(-4..=8).contains(&h.schema) && h.schema != CUSTOM_BUCKETS_SCHEMA {
            return Err(format!("histogram with invalid schema {}", h.schema));
        }
        let check = |spans: &[schemas::stream::BucketSpan], deltas: &[i64], counts: &[f64]| {
            let given = if deltas.is_empty() { counts.len() } else { deltas.len() };
            let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
            if total != given as u64 {
                return Err(format!("histogram spans of {total} buckets for {given} bucket counts"));
            }
            let mut idx: i64 = 0;
            for (i, s) in spans.iter().enumerate() {
                if i > 0 && s.offset < 0 {
                    return Err("histogram span with a negative offset".to_string());
                }
                idx = if i == 0 { i64::from(s.offset) } else { idx + i64::from(s.offset) } + i64::from(s.length);
                if !(-MAX_INDEX..=MAX_INDEX).contains(&idx) || !(-MAX_INDEX..=MAX_INDEX).contains(&i64::from(s.offset))
                {
                    return Err("histogram bucket index out of range".to_string());
                }
            }
            Ok(())
        };
        check(&h.positive_spans, &h.positive_deltas, &h.positive_counts)?;
        check(&h.negative_spans, &h.negative_deltas, &h.negative_counts)?;
        Ok(Self::from_valid_proto(h))
    }

    fn from_valid_proto(h: &Histogram) -> Self {
        let count = match h.count {
            Some(Count::CountInt(c)) => c as f64,
            Some(Count::CountFloat(c)) => c,
            None => 0.0,
        };
        let zero_count = match h.zero_count {
            Some(ZeroCount::ZeroCountInt(c)) => c as f64,
            Some(ZeroCount::ZeroCountFloat(c)) => c,
            None => 0.0,
        };
        let buckets = |spans: &[schemas::stream::BucketSpan], deltas: &[i64], counts: &[f64]| {
            // Integer histograms carry deltas between buckets, float ones
            // absolute counts.
            let mut values = counts.iter().copied();
            let (mut acc, mut deltas) = (0i64, deltas.iter());
            let mut next = move || match deltas.next() {
                Some(d) => {
                    acc = acc.wrapping_add(*d);
                    Some(acc as f64)
                }
                None => values.next(),
            };
            let mut out = Vec::new();
            let mut idx = 0i32;
            for (i, span) in spans.iter().enumerate() {
                idx = if i == 0 { span.offset } else { idx.saturating_add(span.offset) };
                for _ in 0..span.length {
                    out.push((idx, next().unwrap_or(0.0)));
                    idx = idx.saturating_add(1);
                }
            }
            out
        };
        Self {
            schema: h.schema,
            reset_hint: ResetHint::try_from(h.reset_hint).unwrap_or(ResetHint::Unknown),
            count,
            sum: h.sum,
            zero_threshold: h.zero_threshold,
            zero_count,
            positive: buckets(&h.positive_spans, &h.positive_deltas, &h.positive_counts),
            negative: buckets(&h.negative_spans, &h.negative_deltas, &h.negative_counts),
            custom_values: h.custom_values.clone(),
        }
    }

    /// Whether it has custom buckets.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Prometheus's `Equals`: the same schema, zero threshold, custom
    /// bounds and bucket layout, and bit for bit the same count, sum, zero
    /// count and bucket counts (a NaN equals the same NaN, -0 is not 0;
    /// the hint is not compared).
    pub fn same_as(&self, other: &Self) -> bool {
        let bits = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let buckets = |a: &[(i32, f64)], b: &[(i32, f64)]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && bits(x.1, y.1))
        };
        self.schema == other.schema
            && self.zero_threshold == other.zero_threshold
            && bits(self.zero_count, other.zero_count)
            && bits(self.count, other.count)
            && bits(self.sum, other.sum)
            && (!self.uses_custom_buckets() || self.custom_values == other.custom_values)
            && buckets(&self.positive, &other.positive)
            && buckets(&self.negative, &other.negative)
    }

    /// Whether this histogram follows a counter reset after `previous`
    /// (Prometheus's `DetectReset`): the hint when it says so, else any
    /// count that went down — the total, the zero bucket, or a bucket (a
    /// finer previous schema merged into this one's buckets) — or a
    /// layout that cannot follow `previous` (a finer schema, a narrower
    /// zero bucket, other custom bounds).
    pub fn is_reset_after(&self, previous: &Self) -> bool {
        match self.reset_hint {
            ResetHint::Yes => return true,
            ResetHint::No => return false,
            ResetHint::Unknown | ResetHint::Gauge => {}
        }
        if self.count < previous.count
            || self.uses_custom_buckets() != previous.uses_custom_buckets()
            || (self.uses_custom_buckets() && self.custom_values != previous.custom_values)
            || self.schema > previous.schema
            || self.zero_threshold < previous.zero_threshold
            || self.zero_count < previous.zero_count
        {
            return true;
        }
        let decreased = |now: &[(i32, f64)], before: &[(i32, f64)]| {
            let merged = reduce(before, previous.schema, self.schema);
            merged.iter().any(|(i, c)| {
                let n = now.iter().find(|(j, _)| j == i).map_or(0.0, |(_, c)| *c);
                n < *c
            })
        };
        decreased(&self.positive, &previous.positive) || decreased(&self.negative, &previous.negative)
    }
}

/// One bucket as Prometheus's API shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// 0: `(lower, upper]`, 1: `[lower, upper)`, 2: `(lower, upper)`,
    /// 3: `[lower, upper]`.
    pub boundaries: u8,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Observations.
    pub count: f64,
}

impl FloatHistogram {
    /// The upper bound of bucket `idx`.
    fn bound(&self, idx: i32) -> f64 {
        if self.uses_custom_buckets() {
            return match usize::try_from(idx) {
                Ok(i) if i < self.custom_values.len() => self.custom_values[i],
                Ok(_) => f64::INFINITY,
                Err(_) => f64::NEG_INFINITY,
            };
        }
        exponential_bound(idx, self.schema)
    }

    /// The non-empty buckets from the lowest up — negative, zero, positive —
    /// as Prometheus's `AllBucketIterator` gives them to its API (buckets
    /// overlapping the zero bucket end at the zero threshold).
    pub fn buckets(&self) -> Vec<Bucket> {
        self.buckets_clipped(true)
    }

    /// The non-empty buckets from the lowest up as Prometheus's
    /// `FloatHistogram.String()` lists them: the negative and positive
    /// bucket iterators, whose bounds are not clipped to the zero bucket.
    pub fn string_buckets(&self) -> Vec<Bucket> {
        self.buckets_clipped(false)
    }

    fn buckets_clipped(&self, clip: bool) -> Vec<Bucket> {
        let zt = if clip { self.zero_threshold } else { 0.0 };
        let mut out = Vec::new();
        for &(i, count) in self.negative.iter().rev() {
            let (mut lower, mut upper) = (-self.bound(i), -self.bound(i - 1));
            if upper < 0.0 && upper > -zt {
                upper = -zt;
            }
            if lower > 0.0 && lower < zt {
                lower = zt;
            }
            out.push(Bucket { boundaries: 1, lower, upper, count });
        }
        if self.zero_count != 0.0 {
            let zt = self.zero_threshold;
            out.push(Bucket { boundaries: 3, lower: -zt, upper: zt, count: self.zero_count });
        }
        for &(i, count) in &self.positive {
            let (mut lower, upper) = (self.bound(i - 1), self.bound(i));
            if lower > 0.0 && lower < zt {
                lower = zt;
            }
            out.push(Bucket { boundaries: 0, lower, upper, count });
        }
        out.retain(|b| b.count != 0.0);
        out
    }
}

impl FloatHistogram {
    /// Prometheus's `FloatHistogram.String()`: `{count:N, sum:S, bucket:count…}`
    /// with Go's `%g` numbers, buckets from the lowest up (how `count_values`
    /// names a histogram's value, and how alert templates print one).
    pub fn go_string(&self) -> String {
        let mut out = format!("{{count:{}, sum:{}", go_g(self.count), go_g(self.sum));
        for b in self.string_buckets() {
            let (open, close) = match b.boundaries {
                0 => ('(', ']'),
                1 => ('[', ')'),
                2 => ('(', ')'),
                _ => ('[', ']'),
            };
            out.push_str(&format!(", {open}{},{}{close}:{}", go_g(b.lower), go_g(b.upper), go_g(b.count)));
        }
        out.push('}');
        out
    }
}

/// Go's `%g` (and `%v`) of a float64: the shortest digits that read back,
/// in exponent form (`1e+06`, `1.5e-05`) when the exponent is below -4 or
/// at least 6 (the width of `%e` Go uses for shortest forms).
fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // The decimal exponent of the shortest round-trip digits.
    let exp: i32 = format!("{v:e}").split_once('e').and_then(|(_, x)| x.parse().ok()).unwrap_or(0);
    if (-4..6).contains(&exp) { v.to_string() } else { super::vector_fns::go_format_e(v) }
}

/// What NaN observations did to a native histogram's quantile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanObservations {
    /// The quantile falls above every bucket: NaN.
    NanResult,
    /// The quantile is skewed higher.
    SkewedHigher,
}

impl FloatHistogram {
    /// `histogram_quantile(q, h)` of a native histogram (Prometheus's
    /// `HistogramQuantile`): linear interpolation in custom and zero
    /// buckets, exponential in exponential ones, with what NaN
    /// observations did to it (Prometheus's infos).
    pub fn quantile(&self, q: f64) -> (f64, Option<NanObservations>) {
        if q < 0.0 {
            return (f64::NEG_INFINITY, None);
        }
        if q > 1.0 {
            return (f64::INFINITY, None);
        }
        if self.count == 0.0 || q.is_nan() {
            return (f64::NAN, None);
        }
        let forward = self.sum.is_nan() || q < 0.5;
        let mut buckets = self.buckets();
        if !forward {
            buckets.reverse();
        }
        let mut rank = if forward { q * self.count } else { (1.0 - q) * self.count };
        let mut count = 0.0;
        // No bucket (NaN observations only): Prometheus's zero bucket value.
        let mut bucket = Bucket { boundaries: 0, lower: 0.0, upper: 0.0, count: 0.0 };
        let mut next = buckets.len();
        for (i, b) in buckets.iter().enumerate() {
            // (Prometheus's loop takes the bucket before skipping an empty one.)
            bucket = *b;
            if b.count == 0.0 {
                continue;
            }
            count += b.count;
            if count >= rank {
                next = i + 1;
                break;
            }
        }
        if !self.uses_custom_buckets() && bucket.lower < 0.0 && bucket.upper > 0.0 {
            if self.negative.is_empty() && !self.positive.is_empty() {
                bucket.lower = 0.0;
            } else if self.positive.is_empty() && !self.negative.is_empty() {
                bucket.upper = 0.0;
            }
        } else if self.uses_custom_buckets() {
            if bucket.lower == f64::NEG_INFINITY {
                if bucket.upper <= 0.0 {
                    return (bucket.upper, None);
                }
                bucket.lower = 0.0;
            } else if bucket.upper == f64::INFINITY {
                return (bucket.lower, None);
            }
        }
        count = count.min(self.count);
        if count < rank {
            if self.sum.is_nan() {
                return (f64::NAN, Some(NanObservations::NanResult));
            }
            return (bucket.upper, None);
        }
        if forward {
            rank -= count - bucket.count;
        } else {
            rank = count - rank;
        }
        // NaN observations (a NaN sum) count in `count` but in no bucket:
        // the buckets' total falls short of it.
        let mut note = None;
        if self.sum.is_nan() {
            // As Prometheus 3.5 counts them, its loop leaving the last
            // bucket as the one interpolated in.
            for b in &buckets[next..] {
                bucket = *b;
                count += b.count;
            }
            if count < self.count {
                note = Some(NanObservations::SkewedHigher);
            }
        }
        let fraction = rank / bucket.count;
        if self.uses_custom_buckets() || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
            return (bucket.lower + (bucket.upper - bucket.lower) * fraction, note);
        }
        let (log_lower, log_upper) = (bucket.lower.abs().log2(), bucket.upper.abs().log2());
        if bucket.lower > 0.0 {
            return ((log_lower + (log_upper - log_lower) * fraction).exp2(), note);
        }
        (-(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2(), note)
    }

    /// `histogram_fraction(lower, upper, h)` of a native histogram
    /// (Prometheus's `HistogramFraction`). The bool: NaN observations were
    /// left out (Prometheus's info).
    pub fn fraction(&self, lower: f64, upper: f64) -> (f64, bool) {
        if self.count == 0.0 || lower.is_nan() || upper.is_nan() {
            return (f64::NAN, false);
        }
        if lower >= upper {
            return (0.0, false);
        }
        let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
        let (mut lower_set, mut upper_set) = (false, false);
        let custom = self.uses_custom_buckets();
        for b in self.buckets() {
            let mut b = b;
            let mut zero_bucket = false;
            if b.lower <= 0.0 && b.upper >= 0.0 {
                zero_bucket = true;
                if self.negative.is_empty() && !self.positive.is_empty() {
                    b.lower = 0.0;
                } else if self.positive.is_empty() && !self.negative.is_empty() {
                    b.upper = 0.0;
                }
            }
            let linear = |v: f64| rank + b.count * (v - b.lower) / (b.upper - b.lower);
            let exponential = |v: f64| {
                let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
                let fraction = if v > 0.0 { (lv - ll) / (lu - ll) } else { 1.0 - ((lv - lu) / (ll - lu)) };
                rank + b.count * fraction
            };
            if !lower_set && b.lower >= lower {
                lower_rank = rank;
                lower_set = true;
            }
            if !upper_set && b.lower >= upper {
                upper_rank = rank;
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            if !lower_set && b.lower < lower && b.upper > lower {
                lower_rank = if custom || zero_bucket { linear(lower) } else { exponential(lower) };
                lower_set = true;
            }
            if !upper_set && b.lower < upper && b.upper > upper {
                upper_rank = if custom || zero_bucket { linear(upper) } else { exponential(upper) };
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            rank += b.count;
        }
        let (count, nan_left_out) = if self.sum.is_nan() {
            let in_buckets: f64 = self.buckets().iter().map(|b| b.count).sum();
            (in_buckets, in_buckets < self.count)
        } else {
            (self.count, false)
        };
        if !lower_set || lower_rank > count {
            lower_rank = count;
        }
        if !upper_set || upper_rank > count {
            upper_rank = count;
        }
        ((upper_rank - lower_rank) / self.count, nan_left_out)
    }
}

impl FloatHistogram {
    /// The estimated variance of the observations (Prometheus's
    /// `histogramVariance`): each bucket's observations at its arithmetic
    /// mean (custom buckets), zero (the zero bucket) or geometric mean
    /// (exponential buckets), around `sum / count`, Kahan-summed.
    pub fn variance(&self) -> f64 {
        let mean = self.sum / self.count;
        let (mut variance, mut c) = (0.0, 0.0);
        for b in self.buckets() {
            let val = if self.uses_custom_buckets() {
                (b.upper + b.lower) / 2.0
            } else if b.lower <= 0.0 && b.upper >= 0.0 {
                0.0
            } else if b.upper < 0.0 {
                -(b.upper * b.lower).sqrt()
            } else {
                (b.upper * b.lower).sqrt()
            };
            let delta = val - mean;
            (variance, c) = super::functions::kahan_inc(b.count * delta * delta, variance, c);
        }
        (variance + c) / self.count
    }
}

/// Why two histograms cannot be added or subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incompatible {
    /// One has exponential buckets, the other custom ones.
    Schema,
    /// Custom buckets with different bounds.
    Bounds,
}

impl FloatHistogram {
    /// An empty histogram of `like`'s layout (schema, custom bounds).
    pub fn empty_like(like: &Self) -> Self {
        Self {
            schema: like.schema,
            reset_hint: ResetHint::Unknown,
            count: 0.0,
            sum: 0.0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            positive: Vec::new(),
            negative: Vec::new(),
            custom_values: like.custom_values.clone(),
        }
    }

    /// This histogram in the coarser schema `schema` (buckets merged).
    pub fn to_schema(&self, schema: i32) -> Self {
        let mut out = self.clone();
        if schema < self.schema && schema >= -4 && !self.uses_custom_buckets() {
            out.positive = reduce(&self.positive, self.schema, schema);
            out.negative = reduce(&self.negative, self.schema, schema);
            out.schema = schema;
        }
        out
    }

    /// Moves the buckets inside a wider zero bucket into it.
    fn widen_zero_bucket(&mut self, threshold: f64) {
        if threshold <= self.zero_threshold {
            return;
        }
        let layout = Self::empty_like(self);
        let bound = |i: i32| layout.bound(i);
        let mut moved = 0.0;
        self.positive.retain(|(i, c)| {
            let inside = bound(*i) <= threshold;
            if inside {
                moved += c;
            }
            !inside
        });
        self.negative.retain(|(i, c)| {
            let inside = bound(*i) <= threshold;
            if inside {
                moved += c;
            }
            !inside
        });
        self.zero_count += moved;
        self.zero_threshold = threshold;
    }

    /// `self + sign · other` (Prometheus's `Add`/`Sub`): the coarser schema,
    /// the wider zero bucket, buckets added by index.
    fn combine(&mut self, other: &Self, sign: f64) -> Result<(), Incompatible> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(Incompatible::Schema);
        }
        if self.uses_custom_buckets() && self.custom_values != other.custom_values {
            return Err(Incompatible::Bounds);
        }
        if sign > 0.0 {
            // Prometheus's `Add`: a gauge with anything is a gauge; unknown
            // with a counter hint, or two conflicting hints, unknown.
            self.reset_hint = match (self.reset_hint, other.reset_hint) {
                (a, b) if a == b => a,
                (ResetHint::Gauge, _) | (_, ResetHint::Gauge) => ResetHint::Gauge,
                _ => ResetHint::Unknown,
            };
        }
        let schema = self.schema.min(other.schema);
        let mut other = other.to_schema(schema);
        *self = self.to_schema(schema);
        let threshold = self.zero_threshold.max(other.zero_threshold);
        self.widen_zero_bucket(threshold);
        other.widen_zero_bucket(threshold);
        let merge = |a: &[(i32, f64)], b: &[(i32, f64)]| {
            let mut out: Vec<(i32, f64)> = a.to_vec();
            for (i, c) in b {
                match out.binary_search_by_key(i, |x| x.0) {
                    Ok(p) => out[p].1 += sign * c,
                    Err(p) => out.insert(p, (*i, sign * c)),
                }
            }
            out
        };
        self.positive = merge(&self.positive, &other.positive);
        self.negative = merge(&self.negative, &other.negative);
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        self.zero_count += sign * other.zero_count;
        Ok(())
    }

    /// `self += other`.
    ///
    /// # Errors
    /// Exponential and custom buckets, or different custom bounds.
    pub fn add(&mut self, other: &Self) -> Result<(), Incompatible> {
        self.combine(other, 1.0)
    }

    /// `self -= other`.
    ///
    /// # Errors
    /// As [`FloatHistogram::add`].
    pub fn sub(&mut self, other: &Self) -> Result<(), Incompatible> {
        self.combine(other, -1.0)
    }

    /// Every count and the sum times `f`.
    pub fn mul(&mut self, f: f64) {
        self.count *= f;
        self.sum *= f;
        self.zero_count *= f;
        self.positive.iter_mut().chain(self.negative.iter_mut()).for_each(|(_, c)| *c *= f);
    }

    /// Every count and the sum divided by `f` (Prometheus's `Div`: by 0,
    /// the buckets are dropped).
    pub fn div(&mut self, f: f64) {
        self.count /= f;
        self.sum /= f;
        self.zero_count /= f;
        if f == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return;
        }
        self.positive.iter_mut().chain(self.negative.iter_mut()).for_each(|(_, c)| *c /= f);
    }

    /// Without empty buckets (Prometheus's `Compact(0)`).
    pub fn compact(&mut self) {
        self.positive.retain(|(_, c)| *c != 0.0);
        self.negative.retain(|(_, c)| *c != 0.0);
    }

    /// The stream encoding (float counts), as the plans carry histograms.
    pub fn encode(&self) -> Vec<u8> {
        use schemas::stream::BucketSpan;
        let spans = |buckets: &[(i32, f64)]| {
            let mut spans: Vec<BucketSpan> = Vec::new();
            let mut prev: Option<i32> = None;
            for (i, _) in buckets {
                match prev {
                    Some(p) if *i == p + 1 => spans.last_mut().expect("a span").length += 1,
                    Some(p) => spans.push(BucketSpan { offset: i - p - 1, length: 1 }),
                    None => spans.push(BucketSpan { offset: *i, length: 1 }),
                }
                prev = Some(*i);
            }
            spans
        };
        Histogram {
            count: Some(Count::CountFloat(self.count)),
            sum: self.sum,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: Some(ZeroCount::ZeroCountFloat(self.zero_count)),
            negative_spans: spans(&self.negative),
            negative_counts: self.negative.iter().map(|b| b.1).collect(),
            positive_spans: spans(&self.positive),
            positive_counts: self.positive.iter().map(|b| b.1).collect(),
            reset_hint: self.reset_hint as i32,
            custom_values: self.custom_values.clone(),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// The upper bound of bucket `idx` of an exponential schema:
/// `2^(idx / 2^schema)`, the last finite bucket ending at `f64::MAX`.
fn exponential_bound(idx: i32, schema: i32) -> f64 {
    // `from_proto` refuses schemas outside -4..=8; never panic on one.
    if !(-4..=8).contains(&schema) {
        return f64::NAN;
    }
    if schema < 0 {
        let exp = i64::from(idx) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = (f64::from(frac_idx) / f64::from(1 << schema) - 1.0).exp2();
    let exp = i64::from(idx >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac · 2^exp` without overflow in between.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut v = frac;
    let mut e = exp.clamp(-2200, 2200);
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

/// Buckets of schema `from` merged into the coarser schema `to`.
fn reduce(buckets: &[(i32, f64)], from: i32, to: i32) -> Vec<(i32, f64)> {
    // Only between exponential schemas (-4..=8).
    if from <= to || from < -4 || to < -4 || from - to >= 32 {
        return buckets.to_vec();
    }
    let shift = (from - to) as u32;
    let mut out: Vec<(i32, f64)> = Vec::new();
    for (i, c) in buckets {
        let target = ((i - 1) >> shift) + 1;
        match out.last_mut() {
            Some((j, acc)) if *j == target => *acc += c,
            _ => out.push((target, *c)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Go's `fmt.Sprintf("%g", v)` for these values.
    #[test]
    fn floats_print_as_go_percent_g() {
        let cases = [
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (0.001, "0.001"),
            (1e21, "1e+21"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(super::go_g(v), want, "{v}");
        }
    }

    use super::*;
    use schemas::stream::BucketSpan;

    fn proto(count: u64, deltas: Vec<i64>, hint: ResetHint) -> Histogram {
        Histogram {
            count: Some(Count::CountInt(count)),
            sum: 10.0,
            schema: 0,
            zero_threshold: 0.001,
            zero_count: Some(ZeroCount::ZeroCountInt(1)),
            positive_spans: vec![BucketSpan { offset: 1, length: 2 }, BucketSpan { offset: 2, length: 1 }],
            positive_deltas: deltas,
            reset_hint: hint as i32,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_integer_deltas_into_absolute_buckets() {
        let h = FloatHistogram::decode(&proto(9, vec![2, 1, -2], ResetHint::Unknown).encode_to_vec()).unwrap();
        assert_eq!(h.positive, vec![(1, 2.0), (2, 3.0), (5, 1.0)]);
        assert_eq!((h.count, h.zero_count, h.schema), (9.0, 1.0, 0));
    }

    #[test]
    fn equality_and_counter_resets() {
        let a = FloatHistogram::from_proto(&proto(9, vec![2, 1, -2], ResetHint::Unknown)).unwrap();
        let b = FloatHistogram::from_proto(&proto(9, vec![2, 1, -2], ResetHint::No)).unwrap();
        assert!(a.same_as(&b), "the hint is not compared");
        let grown = FloatHistogram::from_proto(&proto(10, vec![3, 0, -2], ResetHint::Unknown)).unwrap();
        assert!(!grown.is_reset_after(&a));
        // One bucket went down although the count went up.
        let shifted = FloatHistogram::from_proto(&proto(10, vec![1, 3, -3], ResetHint::Unknown)).unwrap();
        assert!(shifted.is_reset_after(&a));
        assert!(a.is_reset_after(&grown), "the count went down");
        let hinted = FloatHistogram::from_proto(&proto(10, vec![3, 0, -2], ResetHint::Yes)).unwrap();
        assert!(hinted.is_reset_after(&a));
    }

    #[test]
    fn buckets_with_prometheus_bounds() {
        // {{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 1] n_buckets:[1]}}
        let h = FloatHistogram {
            schema: 0,
            reset_hint: ResetHint::Unknown,
            count: 4.0,
            sum: 5.0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive: vec![(0, 1.0), (1, 1.0), (2, 0.0)],
            negative: vec![(0, 1.0)],
            custom_values: vec![],
        };
        let b = h.buckets();
        let rows: Vec<(u8, f64, f64, f64)> = b.iter().map(|b| (b.boundaries, b.lower, b.upper, b.count)).collect();
        assert_eq!(rows, vec![(1, -1.0, -0.5, 1.0), (3, -0.001, 0.001, 1.0), (0, 0.5, 1.0, 1.0), (0, 1.0, 2.0, 1.0)]);
        assert_eq!(exponential_bound(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(exponential_bound(3, -1), 64.0);
        let custom = FloatHistogram { schema: CUSTOM_BUCKETS_SCHEMA, custom_values: vec![1.0, 5.0], ..h };
        assert_eq!(custom.bound(-1), f64::NEG_INFINITY);
        assert_eq!(custom.bound(1), 5.0);
        assert_eq!(custom.bound(2), f64::INFINITY);
    }

    #[test]
    fn quantiles_and_fractions_as_prometheus() {
        // {{schema:0 sum:5 count:4 buckets:[1 2 1]}}: (0.5,1]:1 (1,2]:2 (2,4]:1.
        let h = FloatHistogram {
            schema: 0,
            reset_hint: ResetHint::Unknown,
            count: 4.0,
            sum: 5.0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            positive: vec![(0, 1.0), (1, 2.0), (2, 1.0)],
            negative: vec![],
            custom_values: vec![],
        };
        // Prometheus: histogram_quantile(0.5, …) = 1.414213562373095 (exponential interpolation).
        assert!((h.quantile(0.5).0 - std::f64::consts::SQRT_2).abs() < 1e-12);
        assert_eq!(h.quantile(1.0).0, 4.0);
        assert_eq!(h.quantile(-1.0).0, f64::NEG_INFINITY);
        assert_eq!(h.quantile(0.5).1, None);
        // NaN observations: 3 of 15 in no bucket ({{count:15 sum:NaN buckets:[12]}}).
        let nan = FloatHistogram { count: 15.0, sum: f64::NAN, positive: vec![(0, 12.0)], ..h.clone() };
        assert_eq!(nan.quantile(0.8), (1.0, Some(NanObservations::SkewedHigher)));
        let (v, note) = nan.quantile(0.81);
        assert!(v.is_nan() && note == Some(NanObservations::NanResult), "{v} {note:?}");
        // Two buckets: Prometheus 3.5 interpolates in the last one it
        // counted ({{count:15 sum:NaN buckets:[6 6]}} at 0.4 is 2, not 1).
        let two = FloatHistogram { count: 15.0, sum: f64::NAN, positive: vec![(0, 6.0), (1, 6.0)], ..h.clone() };
        assert_eq!(two.quantile(0.4), (2.0, Some(NanObservations::SkewedHigher)));
        let only_nan = FloatHistogram { count: 3.0, sum: f64::NAN, positive: vec![], ..h.clone() };
        let (v, note) = only_nan.quantile(0.4);
        assert!(v.is_nan() && note == Some(NanObservations::NanResult), "{v} {note:?}");
        assert_eq!(h.fraction(0.0, 8.0).0, 1.0);
        assert_eq!(h.fraction(1.0, 2.0).0, 0.5);
        assert!(h.fraction(f64::NAN, 1.0).0.is_nan());
    }

    #[test]
    fn arithmetic_keeps_the_coarser_schema_and_round_trips() {
        let a = FloatHistogram::from_proto(&proto(9, vec![2, 1, -2], ResetHint::Unknown)).unwrap();
        let mut d = a.clone();
        d.sub(&a).unwrap();
        d.compact();
        assert_eq!((d.count, d.sum, d.zero_count, d.positive.len()), (0.0, 0.0, 0.0, 0));
        // Schema 1 buckets 1..=2 added to schema 0 bucket 1.
        let mut fine = FloatHistogram::empty_like(&a);
        fine.schema = 1;
        fine.zero_threshold = 0.001;
        fine.positive = vec![(1, 1.0), (2, 2.0)];
        fine.count = 3.0;
        let mut sum = a.clone();
        sum.add(&fine).unwrap();
        assert_eq!(sum.schema, 0);
        assert_eq!(sum.positive, vec![(1, 5.0), (2, 3.0), (5, 1.0)]);
        sum.mul(0.5);
        assert_eq!(sum.count, 6.0);
        assert!(FloatHistogram::decode(&sum.encode()).unwrap().same_as(&sum));
        let mut custom = FloatHistogram::empty_like(&a);
        custom.schema = CUSTOM_BUCKETS_SCHEMA;
        assert_eq!(sum.add(&custom), Err(Incompatible::Schema));
    }

    #[test]
    fn invalid_histograms_are_refused() {
        let mut h = proto(9, vec![2, 1, -2], ResetHint::Unknown);
        h.positive_spans[0].length = u32::MAX;
        assert!(FloatHistogram::from_proto(&h).is_err(), "spans longer than the buckets");
        let mut h = proto(9, vec![2, 1, -2], ResetHint::Unknown);
        h.positive_spans[1].offset = -3;
        assert!(FloatHistogram::from_proto(&h).is_err(), "a negative gap");
        let mut h = proto(9, vec![2, 1, -2], ResetHint::Unknown);
        h.positive_spans[0].offset = i32::MAX;
        assert!(FloatHistogram::from_proto(&h).is_err(), "an index past every bound");
        let mut h = proto(9, vec![2, 1, -2], ResetHint::Unknown);
        h.schema = 40;
        assert!(FloatHistogram::from_proto(&h).is_err(), "schema 40");
    }

    #[test]
    fn schemas_out_of_range_never_panic() {
        let a = FloatHistogram::from_proto(&proto(9, vec![2, 1, -2], ResetHint::Unknown)).unwrap();
        assert_eq!(a.to_schema(CUSTOM_BUCKETS_SCHEMA).positive, a.positive);
        assert!(exponential_bound(3, 40).is_nan());
        assert_eq!(reduce(&a.positive, 8, CUSTOM_BUCKETS_SCHEMA), a.positive);
    }

    #[test]
    fn a_finer_previous_schema_is_merged_before_comparing() {
        // Schema 1 buckets 1..=4 are schema 0 buckets 1 and 2.
        assert_eq!(reduce(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)], 1, 0), vec![(1, 3.0), (2, 7.0)]);
    }
}
