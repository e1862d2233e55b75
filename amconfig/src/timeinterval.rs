//! Alertmanager's time intervals (`time_intervals`, `mute_time_intervals`):
//! `times`, `weekdays`, `days_of_month`, `months`, `years`, `location`,
//! parsed with Alertmanager's rules and messages (`timeinterval` package).

use serde::Deserialize;

use crate::yaml::GoStr;

/// A named set of time intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeIntervalSet {
    /// Its name, referred to by routes.
    pub name: String,
    /// The intervals; the set is active when any of them is (none: never).
    pub intervals: Vec<TimeInterval>,
}

/// One interval: each list given restricts it (`None`: not given; a list
/// given empty, as in Alertmanager, matches no time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeInterval {
    /// Minutes of the day `[start, end)`.
    pub times: Option<Vec<(u32, u32)>>,
    /// Days of the week, 0 = Sunday, inclusive ranges.
    pub weekdays: Option<Vec<(u32, u32)>>,
    /// Days of the month, inclusive; negative counts from the month's end.
    pub days_of_month: Option<Vec<(i64, i64)>>,
    /// Months, 1–12, inclusive ranges.
    pub months: Option<Vec<(i64, i64)>>,
    /// Years, inclusive ranges.
    pub years: Option<Vec<(i64, i64)>>,
    /// The zone the interval is read in (`None`: UTC).
    pub location: Option<chrono_tz::Tz>,
}

impl TimeIntervalSet {
    /// Whether the set is active at `unix_ms` (any of its intervals is; a
    /// set without intervals never is, as Alertmanager's `Intervener`).
    pub fn contains(&self, unix_ms: i64) -> bool {
        self.intervals.iter().any(|i| i.contains(unix_ms))
    }
}

impl TimeInterval {
    /// Alertmanager's `ContainsTime`: the time, read in the interval's
    /// zone, is within every list given.
    pub fn contains(&self, unix_ms: i64) -> bool {
        use chrono::{Datelike as _, TimeZone as _, Timelike as _};
        let Some(utc) = chrono::DateTime::from_timestamp_millis(unix_ms) else { return false };
        let tz = self.location.unwrap_or(chrono_tz::UTC);
        let t = utc.with_timezone(&tz);
        let within = |list: &Option<Vec<(i64, i64)>>, v: i64| {
            list.as_ref().is_none_or(|l| l.iter().any(|(b, e)| *b <= v && v <= *e))
        };
        if let Some(times) = &self.times {
            let minute = t.hour() * 60 + t.minute();
            if !times.iter().any(|(s, e)| *s <= minute && minute < *e) {
                return false;
            }
        }
        if let Some(days) = &self.days_of_month {
            // Go's daysInMonth: whole days between this month's local
            // midnight and the next's (a month with a DST change counts one
            // day short, as there).
            let month_start = |y: i32, m: u32| tz.with_ymd_and_hms(y, m, 1, 0, 0, 0).earliest();
            let (ny, nm) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
            let days_in_month = match (month_start(t.year(), t.month()), month_start(ny, nm)) {
                (Some(a), Some(b)) => (b - a).num_hours() / 24,
                _ => 30,
            };
            let day = i64::from(t.day());
            let hit = days.iter().any(|(b, e)| {
                let begin = if *b < 0 { days_in_month + b + 1 } else { *b };
                let end = if *e < 0 { days_in_month + e + 1 } else { *e };
                if begin > days_in_month {
                    return false;
                }
                let clamp = |n: i64| n.clamp(-days_in_month, days_in_month);
                clamp(begin) <= day && day <= clamp(end)
            });
            if !hit {
                return false;
            }
        }
        if !within(&self.months, i64::from(t.month())) {
            return false;
        }
        if let Some(w) = &self.weekdays {
            let wd = t.weekday().num_days_from_sunday();
            if !w.iter().any(|(b, e)| *b <= wd && wd <= *e) {
                return false;
            }
        }
        within(&self.years, i64::from(t.year()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSet {
    #[serde(default)]
    name: Option<GoStr>,
    #[serde(default)]
    time_intervals: Option<Vec<Option<RawInterval>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterval {
    #[serde(default)]
    times: Option<Vec<Option<RawTimeRange>>>,
    #[serde(default)]
    weekdays: Option<Vec<GoStr>>,
    #[serde(default)]
    days_of_month: Option<Vec<GoStr>>,
    #[serde(default)]
    months: Option<Vec<GoStr>>,
    #[serde(default)]
    years: Option<Vec<GoStr>>,
    #[serde(default)]
    location: Option<GoStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    #[serde(default)]
    start_time: Option<GoStr>,
    #[serde(default)]
    end_time: Option<GoStr>,
}

impl RawSet {
    /// Validates an entry of `time_intervals` (`mute` false) or
    /// `mute_time_intervals` (`mute` true).
    pub(crate) fn check(self, mute: bool) -> Result<TimeIntervalSet, String> {
        let name = self.name.map(|n| n.0).unwrap_or_default();
        if name.is_empty() {
            return Err(
                if mute { "missing name in mute time interval" } else { "missing name in time interval" }.into()
            );
        }
        let intervals = self
            .time_intervals
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.unwrap_or_default().check())
            .collect::<Result<_, _>>()?;
        Ok(TimeIntervalSet { name, intervals })
    }
}

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Splits `begin:end` (lower-cased); a single value is both ends.
fn range(s: &str) -> Result<(String, String), String> {
    let lower = s.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {lower}, invalid format"));
        }
        return Ok((parts[0].to_owned(), parts[1].to_owned()));
    }
    Ok((lower.clone(), lower))
}

/// Go's `strconv.Atoi`, with its errors.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// `HH:MM` (00:00–23:59) or `24:00`, in minutes.
fn clock(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let h = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let m = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn month(s: &str) -> Result<i64, String> {
    if let Some(i) = MONTHS.iter().position(|m| *m == s) {
        return Ok(i as i64 + 1);
    }
    atoi(s).map_err(|_| format!("{s} is not a valid month"))
}

fn month_name(m: i64) -> &'static str {
    usize::try_from(m - 1).ok().and_then(|i| MONTHS.get(i)).copied().unwrap_or("")
}

/// Go's `time.LoadLocation` (one implementation, in `templates`).
pub(crate) fn location(name: &str) -> Result<Option<chrono_tz::Tz>, String> {
    templates::go::load_location(name)
}

impl RawInterval {
    fn check(self) -> Result<TimeInterval, String> {
        let mut out = TimeInterval::default();
        let given = self.times.is_some();
        for t in self.times.unwrap_or_default() {
            let t = t.unwrap_or_default();
            let (Some(start), Some(end)) =
                (t.start_time.filter(|s| !s.is_empty()), t.end_time.filter(|s| !s.is_empty()))
            else {
                return Err("both start and end times must be provided".into());
            };
            let (start, end) = (clock(start.as_str())?, clock(end.as_str())?);
            if start >= end {
                return Err("start time cannot be equal or greater than end time".into());
            }
            out.times.get_or_insert_with(Vec::new).push((start, end));
        }
        if given {
            out.times.get_or_insert_with(Vec::new);
        }
        let given = self.weekdays.is_some();
        for w in self.weekdays.unwrap_or_default() {
            let (b, e) = range(w.as_str())?;
            let day = |d: &str| {
                WEEKDAYS
                    .iter()
                    .position(|x| *x == d)
                    .map(|i| i as u32)
                    .ok_or_else(|| format!("{d} is not a valid weekday"))
            };
            let (b, e) = (day(&b)?, day(&e)?);
            if b > e {
                return Err("start day cannot be before end day".into());
            }
            out.weekdays.get_or_insert_with(Vec::new).push((b, e));
        }
        if given {
            out.weekdays.get_or_insert_with(Vec::new);
        }
        let given = self.days_of_month.is_some();
        for d in self.days_of_month.unwrap_or_default() {
            let (b, e) = range(d.as_str())?;
            let (b, e) = (atoi(&b)?, atoi(&e)?);
            for v in [b, e] {
                if v == 0 || !(-31..=31).contains(&v) {
                    return Err(format!("{v} is not a valid day of the month: out of range"));
                }
            }
            if b < 0 && e > 0 {
                return Err("end day must be negative if start day is negative".into());
            }
            let map = |v: i64| if v < 0 { 28 + v } else { v };
            if map(b) > map(e) {
                return Err(format!("end day {e} is always before start day {b}"));
            }
            out.days_of_month.get_or_insert_with(Vec::new).push((b, e));
        }
        if given {
            out.days_of_month.get_or_insert_with(Vec::new);
        }
        let given = self.months.is_some();
        for m in self.months.unwrap_or_default() {
            let (b, e) = range(m.as_str())?;
            let (b, e) = (month(&b)?, month(&e)?);
            if b > e {
                return Err(format!("end month {} is before start month {}", month_name(e), month_name(b)));
            }
            out.months.get_or_insert_with(Vec::new).push((b, e));
        }
        if given {
            out.months.get_or_insert_with(Vec::new);
        }
        let given = self.years.is_some();
        for y in self.years.unwrap_or_default() {
            let (b, e) = range(y.as_str())?;
            let (b, e) = (atoi(&b)?, atoi(&e)?);
            if b > e {
                return Err(format!("end year {e} is before start year {b}"));
            }
            out.years.get_or_insert_with(Vec::new).push((b, e));
        }
        if given {
            out.years.get_or_insert_with(Vec::new);
        }
        out.location = location(self.location.as_ref().map_or("", GoStr::as_str))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<TimeIntervalSet, String> {
        serde_norway::from_str::<RawSet>(yaml).map_err(|e| e.to_string())?.check(false)
    }

    #[test]
    fn intervals_parse_with_alertmanagers_rules() {
        let s = check(
            "name: office\ntime_intervals:\n  - times: [{start_time: '09:00', end_time: '17:30'}]\n    weekdays: ['monday:friday']\n    days_of_month: ['1:5', '-3:-1']\n    months: ['January:march', 12]\n    years: ['2024:2026']\n    location: Europe/Berlin\n",
        )
        .unwrap();
        let i = &s.intervals[0];
        assert_eq!(i.times, Some(vec![(540, 1050)]));
        assert_eq!(i.weekdays, Some(vec![(1, 5)]));
        assert_eq!(i.days_of_month, Some(vec![(1, 5), (-3, -1)]));
        assert_eq!(i.months, Some(vec![(1, 3), (12, 12)]));
        assert_eq!(i.location, Some(chrono_tz::Europe::Berlin));
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    #[test]
    fn containment_follows_alertmanagers_contains_time() {
        let office = check(
            "name: office\ntime_intervals:\n  - times: [{start_time: '09:00', end_time: '17:00'}]\n    weekdays: ['monday:friday']\n    location: Europe/Berlin\n",
        )
        .unwrap();
        // Monday 2024-05-06: 08:30 UTC is 10:30 in Berlin (CEST).
        assert!(office.contains(ms("2024-05-06T08:30:00Z")));
        assert!(!office.contains(ms("2024-05-06T15:00:00Z")), "17:00 Berlin: end excluded");
        assert!(!office.contains(ms("2024-05-05T08:30:00Z")), "Sunday");
        let last_days = check("name: x\ntime_intervals:\n  - days_of_month: ['-2:-1']\n").unwrap();
        assert!(last_days.contains(ms("2024-02-28T12:00:00Z")) && last_days.contains(ms("2024-02-29T12:00:00Z")));
        assert!(!last_days.contains(ms("2024-02-27T12:00:00Z")));
        let months =
            check("name: x\ntime_intervals:\n  - months: ['december:december']\n    years: ['2024']\n").unwrap();
        assert!(months.contains(ms("2024-12-31T23:59:00Z")) && !months.contains(ms("2025-12-01T00:00:00Z")));
        // An empty list given matches no time; no interval at all: never.
        assert!(!check("name: x\ntime_intervals:\n  - times: []\n").unwrap().contains(0));
        assert!(check("name: x\ntime_intervals:\n  - {}\n").unwrap().contains(0));
        assert!(!check("name: x\n").unwrap().contains(0));
        // Go counts March in Berlin (a DST change) as 30 days: -1 is the 30th.
        let last = check("name: x\ntime_intervals:\n  - days_of_month: ['-1']\n    location: Europe/Berlin\n").unwrap();
        assert!(last.contains(ms("2024-03-30T12:00:00Z")) && !last.contains(ms("2024-03-31T12:00:00Z")));
    }

    #[test]
    fn bad_intervals_get_alertmanagers_messages() {
        let err = |body: &str| check(&format!("name: x\ntime_intervals:\n  - {body}\n")).unwrap_err();
        assert_eq!(err("times: [{start_time: '09:00'}]"), "both start and end times must be provided");
        assert_eq!(
            err("times: [{start_time: '9:00', end_time: '10:00'}]"),
            "couldn't parse timestamp 9:00, invalid format"
        );
        assert_eq!(
            err("times: [{start_time: '10:00', end_time: '10:00'}]"),
            "start time cannot be equal or greater than end time"
        );
        assert_eq!(err("weekdays: [funday]"), "funday is not a valid weekday");
        assert_eq!(err("weekdays: ['friday:monday']"), "start day cannot be before end day");
        assert_eq!(err("days_of_month: ['0']"), "0 is not a valid day of the month: out of range");
        assert_eq!(err("days_of_month: ['-1:5']"), "end day must be negative if start day is negative");
        assert_eq!(err("days_of_month: ['29:-1']"), "end day -1 is always before start day 29");
        assert_eq!(err("days_of_month: [x]"), "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(err("months: [smarch]"), "smarch is not a valid month");
        assert_eq!(err("months: ['march:january']"), "end month january is before start month march");
        assert_eq!(err("years: ['2025:2024']"), "end year 2024 is before start year 2025");
        assert_eq!(err("location: Mars/Olympus"), "unknown time zone Mars/Olympus");
        assert_eq!(err("location: ../etc"), "time: invalid location name");
        assert_eq!(err("weekdays: ['a:b:c']"), "couldn't parse range a:b:c, invalid format");
        assert_eq!(check("time_intervals: []").unwrap_err(), "missing name in time interval");
    }
}
