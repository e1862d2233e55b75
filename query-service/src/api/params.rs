//! Request parameters as Prometheus 3.5 reads them: the URL query and, for
//! a form-encoded POST, the body (whose values come first); times as Unix
//! seconds or RFC 3339; durations as seconds or Prometheus durations.

use axum::http::{HeaderMap, header};

use super::respond::ApiError;

/// Prometheus's `MinTime` (the `start` of an open range), Unix ms.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Prometheus's `MaxTime` (the `end` of an open range), Unix ms.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// The form values of a request, in order: body values first, then the
/// URL query's.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Reads the URL query and a form-encoded body.
    ///
    /// # Errors
    /// `bad_data` for a POST body that is not form-encoded text.
    pub fn read(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let mut values = Vec::new();
        if !body.is_empty() {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let mime = content_type.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(ApiError::bad_data(format!(
                    "error parsing form values: unsupported Content-Type {content_type:?} (use application/x-www-form-urlencoded)"
                )));
            }
            values.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            values.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Ok(Self(values))
    }

    /// The first value of `name`, `""` when absent (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A time parameter, `default` when absent or empty.
    ///
    /// # Errors
    /// Prometheus's `invalid parameter` error.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            "" => Ok(default),
            v => parse_time(v).map_err(|e| ApiError::invalid_param(name, e)),
        }
    }

    /// A required time parameter.
    ///
    /// # Errors
    /// Prometheus's `invalid parameter` error (also when missing).
    pub fn time(&self, name: &str) -> Result<i64, ApiError> {
        parse_time(self.get(name)).map_err(|e| ApiError::invalid_param(name, e))
    }

    /// The `limit` parameter of the series and label APIs: 0 (none) when
    /// absent.
    ///
    /// # Errors
    /// Prometheus's `invalid parameter "limit"` error.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            "" => Ok(0),
            v => match v.parse::<i64>() {
                Ok(n) if n < 0 => Err(ApiError::invalid_param("limit", "limit must be non-negative")),
                Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(_) => Err(ApiError::invalid_param("limit", format!("strconv.Atoi: parsing {v:?}: invalid syntax"))),
            },
        }
    }
}

/// Parses a time: Unix seconds (rounded to the millisecond) or RFC 3339.
///
/// # Errors
/// `cannot parse "…" to a valid timestamp`.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<f64>()
        && !s.eq_ignore_ascii_case("nan")
        && !s.to_ascii_lowercase().contains("inf")
    {
        // As Go's math.Modf: whole seconds, then the fraction rounded to ms.
        let (whole, frac) = (t.trunc(), t.fract());
        if whole.is_finite() && whole * 1000.0 >= MIN_TIME_MS as f64 && whole * 1000.0 <= MAX_TIME_MS as f64 {
            return Ok(whole as i64 * 1000 + (frac * 1000.0).round() as i64);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Parses a duration: seconds as a float, or a Prometheus duration such as
/// `1h30m`, `5m`, `1d`, `100ms` (units `y` = 365d, `w`, `d`, `h`, `m`, `s`,
/// `ms`, each at most once and in that order). Returns milliseconds.
///
/// # Errors
/// `cannot parse "…" to a valid duration`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>()
        && !s.to_ascii_lowercase().contains("nan")
    {
        let ns = secs * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok((ns / 1e6) as i64);
    }
    common::duration::parse(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// A duration in Go's `time.Duration` notation (`768h0m0s`, `1m30s`,
/// `500ms`), for messages that quote Cortex's.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 { format!("{s}s") } else { format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0')) };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus_parses_them() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("0.0005"), Ok(1));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51+02:00"), Ok(1_435_781_451_000));
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_FORMATTED), Ok(MAX_TIME_MS));
        assert_eq!(parse_time("yesterday"), Err("cannot parse \"yesterday\" to a valid timestamp".into()));
        assert!(parse_time("").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("Inf").is_err());
    }

    #[test]
    fn durations_parse_as_prometheus_parses_them() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1m500ms"), Ok(60_500));
        assert_eq!(parse_duration("1y2w3d"), Ok((365 + 14 + 3) * 86_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5m1h").is_err(), "units out of order");
        assert!(parse_duration("1h1h").is_err(), "a unit twice");
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e300").unwrap_err().contains("overflows int64"));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(32 * 86_400_000), "768h0m0s");
        assert_eq!(go_duration(90_000), "1m30s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(500), "500ms");
    }

    #[test]
    fn body_values_come_before_the_url_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let p = Params::read(Some("query=a&match[]=x"), &headers, b"query=b&match%5B%5D=y").unwrap();
        assert_eq!(p.get("query"), "b");
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
        assert_eq!(p.get("missing"), "");
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(Params::read(None, &headers, b"{}").is_err());
        let p = Params::read(Some("limit=-1"), &HeaderMap::new(), b"").unwrap();
        assert!(p.limit().is_err());
    }
}
