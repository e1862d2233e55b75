//! `info(v, {matchers})` (experimental in Prometheus): enriches each series
//! of `v` with the data labels of the info series (`target_info` unless the
//! second argument names others by `__name__`) that share its identifying
//! labels, `instance` and `job`.
//!
//! The planner gives [`NodeKind::Info`](super::nodes::NodeKind) `v`'s rows
//! (floats and histograms). The node then reads the info series of `v`'s
//! targets ([`info_matchers`]) and takes each one's newest sample within
//! the lookback at each step, at the time `v`'s first selector reads (its
//! `@` and `offset` and those of the subqueries around it), its value that
//! sample's time. [`combine`] then does what Prometheus's `evalInfo` does
//! (`promql/info.go`, at the commit of `testdata-next/`):
//!
//! - a series of `v` whose name the info-name matchers accept passes
//!   through unchanged (an info metric is not enriched);
//! - an info series counts only if it has each identifying label that some
//!   other series of `v` has, with one of those series' values;
//! - at each step, per info metric name and identifying labels, the newest
//!   info sample wins; two with the same time are an error;
//! - a series gets the labels of its matching info series that it lacks
//!   (only those named by the data matchers, if any); two info metrics
//!   giving one label different values are an error;
//! - a series no info series matched is dropped at that step when some data
//!   matcher rejects the empty string, else kept unchanged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::seams::LabelMatcher;

use super::labels;
use super::nodes::{MatchOpSpec, MatcherSpec};

/// The labels that identify the target an info series describes.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The info metric when the second argument names none.
const TARGET_INFO: &str = "target_info";

/// The second argument of `info`, split as Prometheus uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct InfoSpec {
    /// The `__name__` matchers that select info metrics: the argument's,
    /// with `__name__=~".+_info"` before them when all are negative, or
    /// `__name__="target_info"` when it has none.
    pub name_matchers: Vec<MatcherSpec>,
    /// The other matchers: they select info series, and the labels they
    /// name are the only ones added (all are, when there are none).
    pub data_matchers: Vec<MatcherSpec>,
}

impl InfoSpec {
    /// The spec of a second argument's matchers (none: no second argument).
    pub fn new(matchers: Vec<MatcherSpec>) -> Self {
        let (names, data): (Vec<_>, Vec<_>) = matchers.into_iter().partition(|m| m.name == labels::METRIC_NAME);
        let positive = names.iter().any(|m| matches!(m.op, MatchOpSpec::Equal | MatchOpSpec::Regex));
        let name_matchers = if positive {
            names
        } else if names.is_empty() {
            vec![MatcherSpec { name: labels::METRIC_NAME.into(), op: MatchOpSpec::Equal, value: TARGET_INFO.into() }]
        } else {
            let any_info =
                MatcherSpec { name: labels::METRIC_NAME.into(), op: MatchOpSpec::Regex, value: ".+_info".into() };
            std::iter::once(any_info).chain(names).collect()
        };
        Self { name_matchers, data_matchers: data }
    }

    /// The matchers of the info series' selector (the identifying labels
    /// are matched by [`combine`]).
    pub fn selector(&self) -> Vec<MatcherSpec> {
        self.data_matchers.iter().chain(&self.name_matchers).cloned().collect()
    }
}

/// The matchers that select the info series `base` can be enriched from:
/// the spec's, and for each identifying label that a series of `base` not
/// itself an info series has, one of those values (as Prometheus's
/// `fetchInfoSeries` selects them); `None` when no such series has one
/// (nothing can match).
pub fn info_matchers(spec: &InfoSpec, base: &[Row]) -> Option<Vec<MatcherSpec>> {
    let Targets { id_values, .. } = targets(spec, base).ok()?;
    if id_values.is_empty() {
        return None;
    }
    let mut matchers = spec.selector();
    for (id, values) in id_values {
        let alternatives: Vec<String> = values.into_iter().map(regex::escape).collect();
        matchers.push(MatcherSpec { name: id.into(), op: MatchOpSpec::Regex, value: alternatives.join("|") });
    }
    Some(matchers)
}

/// What `base` asks of the info series: the label sets that are info
/// series themselves (their name matches every info-name matcher; they are
/// not enriched), and the identifying values of the others.
struct Targets<'a> {
    ignored: HashSet<&'a [u8]>,
    id_values: BTreeMap<&'static str, BTreeSet<&'a str>>,
}

fn targets<'a>(spec: &InfoSpec, base: &'a [Row]) -> Result<Targets<'a>, String> {
    let name_matchers = compile(&spec.name_matchers)?;
    let mut t = Targets { ignored: HashSet::new(), id_values: BTreeMap::new() };
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for (l, ..) in base {
        if !seen.insert(l) {
            continue;
        }
        let name = labels::get(l, labels::METRIC_NAME).unwrap_or("");
        if name_matchers.iter().all(|m| m.matches(name)) {
            t.ignored.insert(l);
            continue;
        }
        for id in IDENTIFYING {
            if let Some(v) = labels::get(l, id).filter(|v| !v.is_empty()) {
                t.id_values.entry(id).or_default().insert(v);
            }
        }
    }
    Ok(t)
}

/// A row of a vector: labels (the [`labels`] encoding), step, value, and a
/// native histogram's encoding.
pub type Row = (Vec<u8>, i64, f64, Option<bytes::Bytes>);

fn compile(specs: &[MatcherSpec]) -> Result<Vec<LabelMatcher>, String> {
    specs.iter().map(|m| m.to_matcher().map_err(|e| e.to_string())).collect()
}

/// A label set as Prometheus's `Labels.String()` prints it in these
/// errors: `{__name__="x", a="b"}`, values quoted as Go does.
fn show(l: &[u8]) -> String {
    let pairs: Vec<String> =
        labels::iter(l).map(|(n, v)| format!("{n}={}", common::goquote::go_quote_bytes(v.as_bytes()))).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// An info series' key: its metric name and identifying labels (absent
/// ones `None`).
type Signature<'a> = (&'a str, [Option<&'a str>; 2]);

fn signature<'a>(name: &'a str, l: &'a [u8]) -> Signature<'a> {
    (name, IDENTIFYING.map(|id| labels::get(l, id).filter(|v| !v.is_empty())))
}

/// `info`'s result: `base` (the first argument's rows) enriched from `info`
/// (the info selector's rows, each value its sample's time).
///
/// # Errors
/// Prometheus's evaluation errors: a histogram info sample, two info
/// samples of one signature with the same time, conflicting data labels,
/// two result rows with one label set at one step.
pub fn combine(spec: &InfoSpec, mut base: Vec<Row>, info: &[Row]) -> Result<Vec<Row>, String> {
    // Step by step, each step's rows in their order.
    base.sort_by_key(|r| r.1);
    let data_matchers = compile(&spec.data_matchers)?;
    let data_names: BTreeSet<&str> = spec.data_matchers.iter().map(|m| m.name.as_str()).collect();
    let drop_unmatched = data_matchers.iter().any(|m| !m.matches(""));

    // Info metrics themselves are not enriched; the others' identifying
    // values select the info series.
    let Targets { ignored, id_values } = targets(spec, &base)?;
    let info: Vec<&Row> = if id_values.is_empty() {
        Vec::new()
    } else {
        info.iter()
            .filter(|(l, ..)| id_values.iter().all(|(id, vs)| labels::get(l, id).is_some_and(|v| vs.contains(v))))
            .collect()
    };
    if let Some((l, ..)) = info.iter().find(|r| r.3.is_some()) {
        return Err(format!("this should be an info metric, with float samples: {}", show(l)));
    }
    let info_names: BTreeSet<&str> =
        info.iter().map(|(l, ..)| labels::get(l, labels::METRIC_NAME).unwrap_or("")).collect();
    let mut info_by_step: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for r in info {
        info_by_step.entry(r.1).or_default().push(r);
    }

    let mut out = Vec::with_capacity(base.len());
    let mut emitted: HashSet<(Vec<u8>, i64)> = HashSet::new();
    let mut newest: HashMap<Signature<'_>, &Row> = HashMap::new();
    let mut step = None;
    for (l, t, v, h) in &base {
        if step != Some(*t) {
            step = Some(*t);
            newest.clear();
            for r in info_by_step.get(t).into_iter().flatten() {
                let sig = signature(labels::get(&r.0, labels::METRIC_NAME).unwrap_or(""), &r.0);
                match newest.get(&sig) {
                    Some(existing) if existing.2 > r.2 => {}
                    Some(existing) if existing.2 == r.2 => {
                        let ms = |secs: f64| (secs * 1000.0).round() as i64;
                        return Err(format!(
                            "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                            show(&existing.0),
                            ms(existing.2),
                            show(&r.0),
                            ms(r.2)
                        ));
                    }
                    _ => {
                        newest.insert(sig, r);
                    }
                }
            }
        }
        let result = if ignored.contains(&l.as_slice()) {
            l.clone()
        } else {
            let mut added: BTreeMap<&str, &str> = BTreeMap::new();
            let mut matched = false;
            for name in &info_names {
                let Some(is) = newest.get(&signature(name, l)) else { continue };
                matched = true;
                for (n, value) in labels::iter(&is.0) {
                    if n == labels::METRIC_NAME || (!data_names.is_empty() && !data_names.contains(n)) {
                        continue;
                    }
                    if added.get(n).is_some_and(|a| !a.is_empty() && *a != value) {
                        return Err(format!("conflicting label: {n}"));
                    }
                    if labels::get(l, n).is_none() {
                        added.insert(n, value);
                    }
                }
            }
            if !matched && drop_unmatched {
                continue;
            }
            if added.is_empty() {
                l.clone()
            } else {
                let mut pairs = labels::decode(l);
                pairs.extend(added.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())));
                pairs.sort();
                labels::mark_as(l, labels::encode(&pairs))
            }
        };
        if !emitted.insert((result.clone(), *t)) {
            return Err("vector cannot contain metrics with the same labelset".into());
        }
        out.push((result, *t, *v, h.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(matchers: &[(&str, MatchOpSpec, &str)]) -> InfoSpec {
        InfoSpec::new(
            matchers.iter().map(|(n, op, v)| MatcherSpec { name: (*n).into(), op: *op, value: (*v).into() }).collect(),
        )
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut p: Vec<(String, String)> = pairs.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
        p.sort();
        labels::encode(&p)
    }

    fn row(pairs: &[(&str, &str)], t: i64, v: f64) -> Row {
        (l(pairs), t, v, None)
    }

    #[test]
    fn the_name_matchers_default_to_target_info_and_negative_ones_to_any_info_metric() {
        let s = spec(&[]);
        assert_eq!(s.name_matchers.len(), 1);
        assert_eq!((s.name_matchers[0].op, s.name_matchers[0].value.as_str()), (MatchOpSpec::Equal, "target_info"));
        let s = spec(&[("__name__", MatchOpSpec::NotRegex, ".*build.*"), ("data", MatchOpSpec::Regex, ".+")]);
        let names: Vec<&str> = s.name_matchers.iter().map(|m| m.value.as_str()).collect();
        assert_eq!(names, [".+_info", ".*build.*"]);
        assert_eq!(s.data_matchers.len(), 1);
        let s = spec(&[("__name__", MatchOpSpec::Equal, "build_info")]);
        assert_eq!(s.name_matchers.len(), 1);
        assert!(s.data_matchers.is_empty());
    }

    #[test]
    fn the_newest_info_sample_wins_and_data_labels_the_series_has_are_kept() {
        let base = vec![row(&[("__name__", "m"), ("instance", "a"), ("job", "1"), ("data", "base")], 0, 7.0)];
        let info = [
            row(&[("__name__", "target_info"), ("instance", "a"), ("job", "1"), ("data", "old"), ("x", "old")], 0, 1.0),
            row(&[("__name__", "target_info"), ("instance", "a"), ("job", "1"), ("data", "new"), ("x", "new")], 0, 2.0),
        ];
        let out = combine(&spec(&[]), base, &info).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            labels::decode(&out[0].0),
            labels::decode(&l(&[("__name__", "m"), ("instance", "a"), ("job", "1"), ("data", "base"), ("x", "new")]))
        );
        assert_eq!(out[0].2, 7.0);
    }

    #[test]
    fn info_errors_as_prometheus_does() {
        let base = || vec![row(&[("__name__", "m"), ("instance", "a")], 0, 1.0)];
        let twins = [
            row(&[("__name__", "target_info"), ("instance", "a"), ("v", "1")], 0, 5.0),
            row(&[("__name__", "target_info"), ("instance", "a"), ("v", "2")], 0, 5.0),
        ];
        let e = combine(&spec(&[]), base(), &twins).unwrap_err();
        assert!(e.starts_with(r#"found duplicate series for info metric: existing {__name__="target_info", "#), "{e}");
        let conflicting = [
            row(&[("__name__", "a_info"), ("instance", "a"), ("x", "1")], 0, 5.0),
            row(&[("__name__", "b_info"), ("instance", "a"), ("x", "2")], 0, 5.0),
        ];
        let any_info = spec(&[("__name__", MatchOpSpec::Regex, ".+_info")]);
        assert_eq!(combine(&any_info, base(), &conflicting).unwrap_err(), "conflicting label: x");
        let mut hist = row(&[("__name__", "target_info"), ("instance", "a")], 0, 5.0);
        hist.3 = Some(bytes::Bytes::from_static(b"h"));
        let e = combine(&spec(&[]), base(), &[hist]).unwrap_err();
        assert!(e.starts_with("this should be an info metric, with float samples"), "{e}");
    }

    #[test]
    fn only_the_info_series_of_the_arguments_targets_are_selected() {
        let base = [
            row(&[("__name__", "m"), ("instance", "a.b:1"), ("job", "x")], 0, 1.0),
            row(&[("__name__", "m"), ("instance", "c")], 60_000, 1.0),
            // An info series itself names no target.
            row(&[("__name__", "target_info"), ("instance", "zz")], 0, 1.0),
        ];
        let m = info_matchers(&spec(&[("v", MatchOpSpec::Regex, ".+")]), &base).unwrap();
        let re = |n: &str, v: &str| MatcherSpec { name: n.into(), op: MatchOpSpec::Regex, value: v.into() };
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m.contains(&re("instance", r"a\.b:1|c")), "{m:?}");
        assert!(m.contains(&re("job", "x")), "{m:?}");
        assert!(m.contains(&re("v", ".+")), "{m:?}");
        assert!(m.iter().any(|m| m.name == "__name__" && m.value == "target_info"), "{m:?}");
        assert_eq!(info_matchers(&spec(&[]), &[row(&[("__name__", "m")], 0, 1.0)]), None);
    }

    #[test]
    fn unmatched_series_are_dropped_only_when_a_data_matcher_rejects_empty() {
        let base = || vec![row(&[("__name__", "m"), ("instance", "z")], 0, 1.0)];
        let info = [row(&[("__name__", "target_info"), ("instance", "a"), ("data", "d")], 0, 5.0)];
        assert!(combine(&spec(&[("data", MatchOpSpec::Regex, ".+")]), base(), &info).unwrap().is_empty());
        let kept = combine(&spec(&[("data", MatchOpSpec::Regex, ".*")]), base(), &info).unwrap();
        assert_eq!(kept, base());
        // An info series itself passes through.
        let own = vec![row(&[("__name__", "target_info"), ("instance", "z")], 0, 1.0)];
        assert_eq!(combine(&spec(&[("data", MatchOpSpec::Regex, ".+")]), own.clone(), &info).unwrap(), own);
    }
}
