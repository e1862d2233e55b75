//! Go's `time.Time` in UTC, as `toTime`/`humanizeTimestamp` produce it:
//! `String()` (`2006-01-02 15:04:05.999999999 +0000 UTC`), `Format` with Go
//! layouts, and the accessor methods templates call on it.

use std::fmt::Write as _;

const NANOS_PER_SEC: i64 = 1_000_000_000;

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

/// Breaks Unix nanoseconds into UTC civil fields.
pub(crate) fn civil(unix_nanos: i64) -> Civil {
    let secs = unix_nanos.div_euclid(NANOS_PER_SEC);
    let nanos = unix_nanos.rem_euclid(NANOS_PER_SEC) as u32;
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

/// Go's `time.Time.String()` for a UTC time.
pub(crate) fn time_string(unix_nanos: i64) -> String {
    format(unix_nanos, "2006-01-02 15:04:05.999999999 -0700 MST")
}

fn push_year(out: &mut String, y: i64) {
    if y < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:04}", y.unsigned_abs());
}

/// Go's `time.Time.Format` for a UTC time.
pub(crate) fn format(unix_nanos: i64, layout: &str) -> String {
    let c = civil(unix_nanos);
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
                write_std(&mut out, std, &c);
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
    /// `Z07…`: "Z" for UTC.
    IsoTz,
    /// `-07…` offsets; the text to print for a zero offset.
    NumTz(&'static str),
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
        b'-' if p("-070000") => (Std::NumTz("+000000"), 7),
        b'-' if p("-07:00:00") => (Std::NumTz("+00:00:00"), 9),
        b'-' if p("-0700") => (Std::NumTz("+0000"), 5),
        b'-' if p("-07:00") => (Std::NumTz("+00:00"), 6),
        b'-' if p("-07") => (Std::NumTz("+00"), 3),
        b'Z' if p("Z070000") => (Std::IsoTz, 7),
        b'Z' if p("Z07:00:00") => (Std::IsoTz, 9),
        b'Z' if p("Z0700") => (Std::IsoTz, 5),
        b'Z' if p("Z07:00") => (Std::IsoTz, 6),
        b'Z' if p("Z07") => (Std::IsoTz, 3),
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

fn write_std(out: &mut String, std: Std, c: &Civil) {
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
        Std::Tz => write!(out, "UTC"),
        Std::IsoTz => write!(out, "Z"),
        Std::NumTz(zero) => write!(out, "{zero}"),
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

/// A `time.Time` method's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MethodResult {
    Int(i64),
    Str(String),
    /// The same instant (`UTC`, `Local`, `Round`…).
    Time(i64),
}

/// Calls a `time.Time` method; `Err` is Go's message for a missing method
/// or wrong arguments.
pub(crate) fn call_method(unix_nanos: i64, name: &str, args: &[String]) -> Result<MethodResult, String> {
    let c = civil(unix_nanos);
    let want = |n: usize| -> Result<(), String> {
        if args.len() != n {
            return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
        }
        Ok(())
    };
    let r = match name {
        "Format" => {
            want(1)?;
            MethodResult::Str(format(unix_nanos, &args[0]))
        }
        "String" => MethodResult::Str(time_string(unix_nanos)),
        "Unix" => MethodResult::Int(unix_nanos.div_euclid(NANOS_PER_SEC)),
        "UnixMilli" => MethodResult::Int(unix_nanos.div_euclid(1_000_000)),
        "UnixMicro" => MethodResult::Int(unix_nanos.div_euclid(1_000)),
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
        "UTC" | "Local" => MethodResult::Time(unix_nanos),
        "IsZero" => MethodResult::Str("false".into()),
        _ => return Err(format!("can't evaluate field {name} in type *time.Time")),
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
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(time_string(-1_000_000_000), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(time_string(1_435_065_584_128_000_000), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(time_string(9_223_372_036_000_000_000), "2262-04-11 23:47:16 +0000 UTC");
        assert_eq!(time_string(-1_000_000), "1969-12-31 23:59:59.999 +0000 UTC");
    }

    #[test]
    fn go_layouts() {
        let t = 1_435_065_584_128_000_000; // Tue 2015-06-23 13:19:44.128 UTC
        assert_eq!(format(t, "2006"), "2015");
        assert_eq!(format(t, "Mon Jan _2 15:04:05 MST 2006"), "Tue Jun 23 13:19:44 UTC 2015");
        assert_eq!(format(t, "2006-01-02T15:04:05.000Z07:00"), "2015-06-23T13:19:44.128Z");
        assert_eq!(format(t, "3:04PM Monday January 2 -0700 .999999 002"), "1:19PM Tuesday June 23 +0000 .128 174");
        assert_eq!(format(t, "Janus"), "Janus");
        assert_eq!(call_method(t, "Unix", &[]), Ok(MethodResult::Int(1_435_065_584)));
        assert_eq!(call_method(t, "Month", &[]), Ok(MethodResult::Str("June".into())));
        assert!(call_method(t, "Nope", &[]).is_err());
    }
}
