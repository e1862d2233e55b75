//! Go's `time.Time`: UTC as `toTime`/`humanizeTimestamp` produce it, or in
//! a zone (a fixed offset from a parsed RFC 3339 time, a named zone from
//! Alertmanager's `tz`): `String()` (`2006-01-02 15:04:05.999999999 -0700
//! MST`), `Format` with Go layouts, RFC 3339 parsing as Go's JSON decoding
//! does it, and the accessor methods templates call on it.

use std::fmt::Write as _;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A Go `time.Time`: an instant (Unix seconds and nanoseconds, wide enough
/// for Go's zero time, year 1) and the zone it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoTime {
    pub(crate) secs: i64,
    pub(crate) nanos: u32,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
    /// The zone's abbreviation; empty for a fixed offset without a name.
    pub(crate) zone: &'static str,
}

/// Unix seconds of Go's zero time, 0001-01-01T00:00:00Z.
const ZERO_TIME_SECS: i64 = -62_135_596_800;

impl GoTime {
    /// A UTC time from Unix nanoseconds.
    pub(crate) fn utc_nanos(unix_nanos: i64) -> GoTime {
        GoTime {
            secs: unix_nanos.div_euclid(NANOS_PER_SEC),
            nanos: unix_nanos.rem_euclid(NANOS_PER_SEC) as u32,
            offset: 0,
            zone: "UTC",
        }
    }

    /// A time decoded from RFC 3339 as Go decodes it: a zero offset is UTC,
    /// any other a fixed zone without a name.
    pub(crate) fn from_fixed(t: &chrono::DateTime<chrono::FixedOffset>) -> GoTime {
        let offset = t.offset().local_minus_utc();
        let zone = if offset == 0 { "UTC" } else { "" };
        GoTime { secs: t.timestamp(), nanos: t.timestamp_subsec_nanos(), offset, zone }
    }

    /// Go's zero `time.Time` (what a missing JSON time decodes to).
    #[cfg(test)]
    pub(crate) const ZERO: GoTime = GoTime { secs: ZERO_TIME_SECS, nanos: 0, offset: 0, zone: "UTC" };

    /// Go's `UnixNano` (wrapping outside int64's range, as Go's is undefined there).
    pub(crate) fn unix_nanos(self) -> i64 {
        self.secs.wrapping_mul(NANOS_PER_SEC).wrapping_add(i64::from(self.nanos))
    }

    /// The same instant in UTC.
    pub(crate) fn utc(self) -> GoTime {
        GoTime { offset: 0, zone: "UTC", ..self }
    }

    /// Go's `IsZero`.
    pub(crate) fn is_zero(self) -> bool {
        self.secs == ZERO_TIME_SECS && self.nanos == 0
    }

    /// The same instant in the IANA zone `name` (Go's `time.LoadLocation`
    /// and `In`: `""` and `"UTC"` are UTC, `"Local"` is this process's
    /// zone, taken as UTC).
    pub(crate) fn in_zone(self, name: &str) -> Result<GoTime, String> {
        use chrono::{Offset as _, TimeZone as _};
        use chrono_tz::OffsetName as _;
        let Some(tz) = load_location(name)? else { return Ok(self.utc()) };
        let utc = chrono::DateTime::from_timestamp(self.secs, self.nanos)
            .ok_or_else(|| format!("unknown time zone {name}"))?
            .naive_utc();
        let off = tz.offset_from_utc_datetime(&utc);
        let offset = off.fix().local_minus_utc();
        let zone = match off.abbreviation() {
            Some(a) => intern(a),
            None => intern(&numeric_zone(offset)),
        };
        Ok(GoTime { offset, zone, ..self })
    }

    /// `self - other` in nanoseconds, saturating as Go's `Sub` does.
    pub(crate) fn sub(self, other: GoTime) -> i64 {
        let d = (i128::from(self.secs) - i128::from(other.secs)) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos)
            - i128::from(other.nanos);
        d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// Go's `time.LoadLocation` over the IANA database: `""`, `"UTC"` and
/// `"Local"` (this process's zone, taken as UTC) are `None`; a name with
/// `..` or starting with `/` or `\` is `time: invalid location name`; an
/// unknown one `unknown time zone NAME`.
///
/// # Errors
/// Go's messages.
pub fn load_location(name: &str) -> Result<Option<chrono_tz::Tz>, String> {
    if matches!(name, "" | "UTC" | "Local") {
        return Ok(None);
    }
    if name.contains("..") || name.starts_with(['/', '\\']) {
        return Err("time: invalid location name".into());
    }
    name.parse::<chrono_tz::Tz>().map(Some).map_err(|_| format!("unknown time zone {name}"))
}

/// `+0300`-style text of an offset (Go's name for a zone without an abbreviation).
fn numeric_zone(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let m = offset.unsigned_abs() / 60;
    if m.is_multiple_of(60) { format!("{sign}{:02}", m / 60) } else { format!("{sign}{:02}{:02}", m / 60, m % 60) }
}

/// Zone abbreviations live as long as the process: there are a few hundred.
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(s) {
        return n;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Parses an RFC 3339 time as Go's `time.Time.UnmarshalJSON` does: `Z` is
/// UTC, a zero offset is this process's zone (UTC), any other offset a
/// fixed zone without a name.
#[cfg(test)]
pub(crate) fn parse_rfc3339(s: &str) -> Result<GoTime, String> {
    let bad = || format!("parsing time {}: not an RFC 3339 time", crate::gofmt::go_quote(s));
    chrono::DateTime::parse_from_rfc3339(s).map(|dt| GoTime::from_fixed(&dt)).map_err(|_| bad())
}

/// Go's RFC 3339 text with nanoseconds (`time.RFC3339Nano`), as
/// `MarshalJSON` writes it.
pub(crate) fn rfc3339_nano(t: GoTime) -> String {
    format(t, "2006-01-02T15:04:05.999999999Z07:00")
}

/// A UTC instant broken into civil fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) nanos: u32,
    /// 0 = Sunday.
    pub(crate) weekday: u32,
    /// 1-based day of the year.
    pub(crate) yday: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Breaks a time into civil fields in its zone.
pub(crate) fn civil(t: GoTime) -> Civil {
    let secs = t.secs + i64::from(t.offset);
    let nanos = t.nanos;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + u32::from(month > 2 && is_leap(year));
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        nanos,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

/// Go's `time.Time.String()` (without a monotonic clock reading).
pub(crate) fn time_string(t: GoTime) -> String {
    format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

fn push_year(out: &mut String, y: i64) {
    if y < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:04}", y.unsigned_abs());
}

/// Go's `time.Time.Format`.
pub(crate) fn format(t: GoTime, layout: &str) -> String {
    let c = civil(t);
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    while !rest.is_empty() {
        let (chunk, len) = std_chunk(rest);
        match chunk {
            None => {
                let ch = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..ch]);
                rest = &rest[ch..];
                continue;
            }
            Some(std) => {
                write_std(&mut out, std, &c, t);
                rest = &rest[len..];
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm(bool),
    Tz,
    /// Numeric offsets: `Z07…` ("Z" for a zero offset) or `-07…`.
    NumTz(NumTz),
    /// Fractional seconds: separator, digits, trailing zeros kept?
    Frac(char, usize, bool),
}

fn starts_with_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// The layout element at the start of `s`, with its length.
fn std_chunk(s: &str) -> (Option<Std>, usize) {
    let b = s.as_bytes();
    let p = |pre: &str| s.starts_with(pre);
    let r = match b[0] {
        b'J' if p("January") => (Std::LongMonth, 7),
        b'J' if p("Jan") => (Std::Month, 3),
        b'M' if p("Monday") => (Std::LongWeekDay, 6),
        b'M' if p("Mon") => (Std::WeekDay, 3),
        b'M' if p("MST") => (Std::Tz, 3),
        b'0' if b.len() >= 2 && (b'1'..=b'6').contains(&b[1]) => (
            match b[1] {
                b'1' => Std::ZeroMonth,
                b'2' => Std::ZeroDay,
                b'3' => Std::ZeroHour12,
                b'4' => Std::ZeroMinute,
                b'5' => Std::ZeroSecond,
                _ => Std::Year,
            },
            2,
        ),
        b'0' if p("002") => (Std::ZeroYearDay, 3),
        b'1' if p("15") => (Std::Hour, 2),
        b'1' => (Std::NumMonth, 1),
        b'2' if p("2006") => (Std::LongYear, 4),
        b'2' => (Std::Day, 1),
        b'_' if p("_2006") => return (None, 1),
        b'_' if p("__2") => (Std::UnderYearDay, 3),
        b'_' if p("_2") => (Std::UnderDay, 2),
        b'3' => (Std::Hour12, 1),
        b'4' => (Std::Minute, 1),
        b'5' => (Std::Second, 1),
        b'P' if p("PM") => (Std::Pm(true), 2),
        b'p' if p("pm") => (Std::Pm(false), 2),
        b'-' | b'Z' => {
            let iso = b[0] == b'Z';
            let rest = &s[1..];
            let (colon, minutes, seconds, len) = if rest.starts_with("070000") {
                (false, true, true, 7)
            } else if rest.starts_with("07:00:00") {
                (true, true, true, 9)
            } else if rest.starts_with("0700") {
                (false, true, false, 5)
            } else if rest.starts_with("07:00") {
                (true, true, false, 6)
            } else if rest.starts_with("07") {
                (false, false, false, 3)
            } else {
                return (None, 1);
            };
            (Std::NumTz(NumTz { iso, colon, minutes, seconds }), len)
        }
        sep @ (b'.' | b',') if b.len() >= 2 && (b[1] == b'0' || b[1] == b'9') => {
            let ch = b[1];
            let mut j = 1;
            while j < b.len() && b[j] == ch {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                return (None, 1);
            }
            (Std::Frac(sep as char, j - 1, ch == b'0'), j)
        }
        _ => return (None, 1),
    };
    // "Jan"/"Mon" followed by a lower-case letter are words, not elements.
    if matches!(r.0, Std::Month | Std::WeekDay) && starts_with_lower(&s[r.1..]) {
        return (None, 1);
    }
    (Some(r.0), r.1)
}

fn hour12(hour: u32) -> u32 {
    match hour % 12 {
        0 => 12,
        h => h,
    }
}

/// The shape of a numeric zone element.
#[derive(Debug, Clone, Copy)]
struct NumTz {
    iso: bool,
    colon: bool,
    minutes: bool,
    seconds: bool,
}

fn write_std(out: &mut String, std: Std, c: &Civil, t: GoTime) {
    let _ = match std {
        Std::LongMonth => write!(out, "{}", MONTHS[(c.month - 1) as usize]),
        Std::Month => write!(out, "{}", &MONTHS[(c.month - 1) as usize][..3]),
        Std::NumMonth => write!(out, "{}", c.month),
        Std::ZeroMonth => write!(out, "{:02}", c.month),
        Std::LongWeekDay => write!(out, "{}", DAYS[c.weekday as usize]),
        Std::WeekDay => write!(out, "{}", &DAYS[c.weekday as usize][..3]),
        Std::Day => write!(out, "{}", c.day),
        Std::UnderDay => write!(out, "{:>2}", c.day),
        Std::ZeroDay => write!(out, "{:02}", c.day),
        Std::UnderYearDay => write!(out, "{:>3}", c.yday),
        Std::ZeroYearDay => write!(out, "{:03}", c.yday),
        Std::Hour => write!(out, "{:02}", c.hour),
        Std::Hour12 => write!(out, "{}", hour12(c.hour)),
        Std::ZeroHour12 => write!(out, "{:02}", hour12(c.hour)),
        Std::Minute => write!(out, "{}", c.minute),
        Std::ZeroMinute => write!(out, "{:02}", c.minute),
        Std::Second => write!(out, "{}", c.second),
        Std::ZeroSecond => write!(out, "{:02}", c.second),
        Std::LongYear => {
            push_year(out, c.year);
            Ok(())
        }
        Std::Year => write!(out, "{:02}", c.year.rem_euclid(100)),
        Std::Pm(upper) => write!(
            out,
            "{}",
            match (c.hour >= 12, upper) {
                (true, true) => "PM",
                (false, true) => "AM",
                (true, false) => "pm",
                (false, false) => "am",
            }
        ),
        Std::Tz if !t.zone.is_empty() => write!(out, "{}", t.zone),
        Std::Tz => {
            let m = t.offset / 60;
            let sign = if m < 0 { '-' } else { '+' };
            write!(out, "{sign}{:02}{:02}", m.unsigned_abs() / 60, m.unsigned_abs() % 60)
        }
        Std::NumTz(NumTz { iso: true, .. }) if t.offset == 0 => write!(out, "Z"),
        Std::NumTz(z) => {
            let abs = t.offset.unsigned_abs();
            out.push(if t.offset < 0 { '-' } else { '+' });
            let _ = write!(out, "{:02}", abs / 3600);
            if z.colon {
                out.push(':');
            }
            if z.minutes {
                let _ = write!(out, "{:02}", abs / 60 % 60);
            }
            if z.seconds {
                if z.colon {
                    out.push(':');
                }
                let _ = write!(out, "{:02}", abs % 60);
            }
            Ok(())
        }
        Std::Frac(sep, n, keep_zeros) => {
            let digits = format!("{:09}", c.nanos);
            let mut frac = &digits[..n.min(9)];
            if !keep_zeros {
                frac = frac.trim_end_matches('0');
            }
            if !frac.is_empty() {
                out.push(sep);
                out.push_str(frac);
                for _ in 9..n {
                    if keep_zeros {
                        out.push('0');
                    }
                }
            }
            Ok(())
        }
    };
}

/// A `time.Duration` in a unit, as Go's `Seconds`/`Minutes`/`Hours` do it
/// (whole units and the remainder apart, for precision).
pub(crate) fn duration_in(d: i64, unit: i64) -> f64 {
    (d / unit) as f64 + (d % unit) as f64 / unit as f64
}

/// Go's `time.Duration.String()` (`1h2m3.5s`, `1.5ms`, `0s`).
pub(crate) fn duration_string(d: i64) -> String {
    fn frac(v: u64, prec: usize) -> String {
        let digits = format!("{v:0prec$}");
        let digits = digits.trim_end_matches('0');
        if digits.is_empty() { String::new() } else { format!(".{digits}") }
    }
    let u = d.unsigned_abs();
    let sign = if d < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, scale, prec) = if u < 1_000 {
            ("ns", 1, 0)
        } else if u < 1_000_000 {
            ("\u{b5}s", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        return format!("{sign}{}{}{unit}", u / scale, frac(u % scale, prec));
    }
    let f = frac(u % 1_000_000_000, 9);
    let secs = u / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}{f}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}{f}s")
    } else {
        format!("{sign}{s}{f}s")
    }
}

/// A `time.Time` method's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MethodResult {
    Int(i64),
    Bool(bool),
    Str(String),
    /// The same instant (`UTC`, `Local`…).
    Time(GoTime),
}

/// Calls a `time.Time` method; `Err` is Go's message for a missing method
/// or wrong arguments.
pub(crate) fn call_method(t: GoTime, name: &str, args: &[String], type_name: &str) -> Result<MethodResult, String> {
    let c = civil(t);
    let unix_nanos = t.unix_nanos();
    let want = |n: usize| -> Result<(), String> {
        if args.len() != n {
            return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
        }
        Ok(())
    };
    let r = match name {
        "Format" => {
            want(1)?;
            MethodResult::Str(format(t, &args[0]))
        }
        "String" => MethodResult::Str(time_string(t)),
        "Unix" => MethodResult::Int(t.secs),
        "UnixMilli" => MethodResult::Int(t.secs.wrapping_mul(1_000).wrapping_add(i64::from(t.nanos / 1_000_000))),
        "UnixMicro" => MethodResult::Int(t.secs.wrapping_mul(1_000_000).wrapping_add(i64::from(t.nanos / 1_000))),
        "UnixNano" => MethodResult::Int(unix_nanos),
        "Year" => MethodResult::Int(c.year),
        "Month" => MethodResult::Str(MONTHS[(c.month - 1) as usize].to_string()),
        "Day" => MethodResult::Int(i64::from(c.day)),
        "Hour" => MethodResult::Int(i64::from(c.hour)),
        "Minute" => MethodResult::Int(i64::from(c.minute)),
        "Second" => MethodResult::Int(i64::from(c.second)),
        "Nanosecond" => MethodResult::Int(i64::from(c.nanos)),
        "YearDay" => MethodResult::Int(i64::from(c.yday)),
        "Weekday" => MethodResult::Str(DAYS[c.weekday as usize].to_string()),
        "UTC" | "Local" => MethodResult::Time(t.utc()),
        "IsZero" => MethodResult::Bool(t.is_zero()),
        _ => return Err(format!("can't evaluate field {name} in type {type_name}")),
    };
    if !matches!(name, "Format") {
        want(0)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_strings() {
        let ts = |ns| time_string(GoTime::utc_nanos(ns));
        assert_eq!(ts(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(ts(-1_000_000_000), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(ts(1_435_065_584_128_000_000), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(ts(9_223_372_036_000_000_000), "2262-04-11 23:47:16 +0000 UTC");
        assert_eq!(ts(-1_000_000), "1969-12-31 23:59:59.999 +0000 UTC");
        assert_eq!(time_string(GoTime::ZERO), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn durations() {
        let d: Vec<String> =
            [0, 1, 1_500, 1_500_000, 1_000_000_000, 61_500_000_000, 3_600_000_000_000, -90_000_000_000]
                .map(duration_string)
                .to_vec();
        assert_eq!(d, ["0s", "1ns", "1.5\u{b5}s", "1.5ms", "1s", "1m1.5s", "1h0m0s", "-1m30s"]);
    }

    #[test]
    fn zones() {
        let t = parse_rfc3339("2015-06-23T13:19:44.128+02:30").unwrap();
        assert_eq!(time_string(t), "2015-06-23 13:19:44.128 +0230 +0230");
        assert_eq!(rfc3339_nano(t), "2015-06-23T13:19:44.128+02:30");
        assert_eq!(format(t, "-07 Z07:00:00 -070000"), "+02 +02:30:00 +023000");
        let z = parse_rfc3339("2015-06-23T13:19:44Z").unwrap();
        assert_eq!(rfc3339_nano(z), "2015-06-23T13:19:44Z");
        assert_eq!(time_string(parse_rfc3339("0001-01-01T00:00:00Z").unwrap()), "0001-01-01 00:00:00 +0000 UTC");
        let ny = z.in_zone("America/New_York").unwrap();
        assert_eq!(time_string(ny), "2015-06-23 09:19:44 -0400 EDT");
        assert_eq!(time_string(z.in_zone("Asia/Kolkata").unwrap()), "2015-06-23 18:49:44 +0530 IST");
        assert_eq!(z.in_zone("Mars/Olympus").err().as_deref(), Some("unknown time zone Mars/Olympus"));
        assert!(parse_rfc3339("2015-06-23").is_err());
    }

    #[test]
    fn go_layouts() {
        let t = GoTime::utc_nanos(1_435_065_584_128_000_000); // Tue 2015-06-23 13:19:44.128 UTC
        assert_eq!(format(t, "2006"), "2015");
        assert_eq!(format(t, "Mon Jan _2 15:04:05 MST 2006"), "Tue Jun 23 13:19:44 UTC 2015");
        assert_eq!(format(t, "2006-01-02T15:04:05.000Z07:00"), "2015-06-23T13:19:44.128Z");
        assert_eq!(format(t, "3:04PM Monday January 2 -0700 .999999 002"), "1:19PM Tuesday June 23 +0000 .128 174");
        assert_eq!(format(t, "Janus"), "Janus");
        let m = |name| call_method(t, name, &[], "*time.Time");
        assert_eq!(m("Unix"), Ok(MethodResult::Int(1_435_065_584)));
        assert_eq!(m("Month"), Ok(MethodResult::Str("June".into())));
        assert_eq!(m("IsZero"), Ok(MethodResult::Bool(false)));
        assert!(m("Nope").is_err());
    }
}
