//! Prometheus's duration notation (`model.Duration`): `1h30m`, `5m`, `1d`,
//! `100ms`, `0` — units `y` (365 days), `w`, `d`, `h`, `m`, `s`, `ms`, each
//! at most once and in that order, integers only. Used by the query API's
//! parameters and by rules files (`interval`, `for`, `keep_firing_for`,
//! `query_offset`).

/// The units, longest span first.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// The longest duration Prometheus represents (`time.Duration`: int64
/// nanoseconds), in milliseconds.
pub const MAX_MS: i64 = i64::MAX / 1_000_000;

/// Why a text is not a Prometheus duration, as `model.ParseDuration`
/// tells it apart (callers that print Go's messages quote the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// `empty duration string`.
    Empty,
    /// `not a valid duration string: "…"` (no digits, no unit, a unit out
    /// of order or repeated, a number too long).
    Invalid,
    /// `unknown unit "…" in duration "…"`, with the unit.
    UnknownUnit(String),
    /// `duration out of range` (longer than [`MAX_MS`]).
    OutOfRange,
}

/// Parses a Prometheus duration, in milliseconds; `None` when `s` is not one
/// (see [`parse_checked`] for why).
pub fn parse(s: &str) -> Option<i64> {
    parse_checked(s).ok()
}

/// Parses a Prometheus duration, in milliseconds, step for step as
/// `model.ParseDuration`: digits, then the whole run of non-digits as the
/// unit, units in order and at most once each, the total within an int64
/// of nanoseconds.
///
/// # Errors
///
/// Which of Go's errors the text gets.
pub fn parse_checked(s: &str) -> Result<i64, DurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(DurationError::Empty),
        _ => {}
    }
    let mut rest = s;
    let mut last_unit = None;
    let mut ns: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Invalid);
        }
        let v: u64 = rest[..digits].parse().map_err(|_| DurationError::Invalid)?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(DurationError::Invalid);
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some((i, (_, ms))) = UNITS.iter().enumerate().find(|(_, (u, _))| *u == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        if last_unit.is_some_and(|last| i <= last) {
            return Err(DurationError::Invalid);
        }
        last_unit = Some(i);
        let mult = (*ms as u64) * 1_000_000;
        if v > (1u64 << 63) / mult {
            return Err(DurationError::OutOfRange);
        }
        ns += v * mult;
        if ns > i64::MAX as u64 {
            return Err(DurationError::OutOfRange);
        }
    }
    Ok((ns / 1_000_000) as i64)
}

/// A duration as Prometheus prints one (`model.Duration.String`): `0s`,
/// `1m`, `1h30m`, `1d`, `90d` (not `12w6d`: years and weeks only when
/// exact), `1s500ms`.
pub fn format(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, scale) in UNITS {
        let exact_only = matches!(unit, "y" | "w");
        if exact_only && rest % scale != 0 {
            continue;
        }
        let n = rest / scale;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            rest -= n * scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_prometheus_prints() {
        for (ms, want) in [
            (0, "0s"),
            (60_000, "1m"),
            (5_400_000, "1h30m"),
            (86_400_000, "1d"),
            (90 * 86_400_000, "90d"),
            (14 * 86_400_000, "2w"),
            (365 * 86_400_000, "1y"),
            (1_500, "1s500ms"),
        ] {
            assert_eq!(format(ms), want, "{ms}");
            assert_eq!(parse(want), Some(ms));
        }
    }

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse("1h30m"), Some(5_400_000));
        assert_eq!(parse("5m"), Some(300_000));
        assert_eq!(parse("100ms"), Some(100));
        assert_eq!(parse("1m500ms"), Some(60_500));
        assert_eq!(parse("1y2w3d"), Some((365 + 14 + 3) * 86_400_000));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("0s"), Some(0));
        assert_eq!(parse("292y"), Some(292 * 365 * 86_400_000));
        assert_eq!(parse_checked("1.5h"), Err(DurationError::UnknownUnit(".".into())));
        assert_eq!(parse_checked("1h1d"), Err(DurationError::Invalid));
        assert_eq!(parse_checked("293y"), Err(DurationError::OutOfRange));
        assert_eq!(parse_checked(""), Err(DurationError::Empty));
        for bad in ["", "5m1h", "1h1h", "1.5h", "5", "-5m", "1x", "m", "99999999999999999999y", "293y"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
