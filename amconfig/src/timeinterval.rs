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
    /// The intervals; the set is active when any of them is (none: always).
    pub intervals: Vec<TimeInterval>,
}

/// One interval: each list restricts it (an empty list does not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeInterval {
    /// Minutes of the day `[start, end)`.
    pub times: Vec<(u32, u32)>,
    /// Days of the week, 0 = Sunday, inclusive ranges.
    pub weekdays: Vec<(u32, u32)>,
    /// Days of the month, inclusive; negative counts from the month's end.
    pub days_of_month: Vec<(i64, i64)>,
    /// Months, 1–12, inclusive ranges.
    pub months: Vec<(i64, i64)>,
    /// Years, inclusive ranges.
    pub years: Vec<(i64, i64)>,
    /// The zone the interval is read in (`None`: UTC).
    pub location: Option<chrono_tz::Tz>,
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

/// Go's `time.LoadLocation` over the IANA database.
pub(crate) fn location(name: &str) -> Result<Option<chrono_tz::Tz>, String> {
    match name {
        "" | "UTC" | "Local" => return Ok(None),
        _ => {}
    }
    if name.starts_with(['/', '\\']) || name.split(['/', '\\']).any(|p| p == "..") {
        return Err("time: invalid location name".into());
    }
    name.parse::<chrono_tz::Tz>().map(Some).map_err(|_| format!("unknown time zone {name}"))
}

impl RawInterval {
    fn check(self) -> Result<TimeInterval, String> {
        let mut out = TimeInterval::default();
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
            out.times.push((start, end));
        }
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
            out.weekdays.push((b, e));
        }
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
            out.days_of_month.push((b, e));
        }
        for m in self.months.unwrap_or_default() {
            let (b, e) = range(m.as_str())?;
            let (b, e) = (month(&b)?, month(&e)?);
            if b > e {
                return Err(format!("end month {} is before start month {}", month_name(e), month_name(b)));
            }
            out.months.push((b, e));
        }
        for y in self.years.unwrap_or_default() {
            let (b, e) = range(y.as_str())?;
            let (b, e) = (atoi(&b)?, atoi(&e)?);
            if b > e {
                return Err(format!("end year {e} is before start year {b}"));
            }
            out.years.push((b, e));
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
        assert_eq!(i.times, [(540, 1050)]);
        assert_eq!(i.weekdays, [(1, 5)]);
        assert_eq!(i.days_of_month, [(1, 5), (-3, -1)]);
        assert_eq!(i.months, [(1, 3), (12, 12)]);
        assert_eq!(i.location, Some(chrono_tz::Europe::Berlin));
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
