//! Oracle tests against the real Prometheus: `promtool` 3.5.3.
//!
//! * `promtool test rules`: one alerting rule per template case, each
//!   annotation expected to be exactly our rendering (same labels, value,
//!   evaluation time, external labels/URL and query data as promtool uses).
//!   promtool exits 0 only if every annotation equals Prometheus's own
//!   rendering. A second run with a deliberately wrong expectation proves
//!   the oracle detects differences.
//! * `promtool check rules`: valid and invalid templates; promtool must
//!   reject exactly the texts [`check_alert_template`] rejects, with our
//!   message.
//!
//! promtool is found in `$PROMLAKE_REF_BIN` (a directory), else fetched by
//! `../shared/tools/fetch-reference-binaries`; the tests fail if it is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use templates::{
    AlertData, ExpandOptions, Querier, QuerySample, check_alert_template, error_text, expand_alert_template_with,
};

use common::testing::reference_bin;

fn promtool() -> PathBuf {
    let path = reference_bin().join("promtool");
    assert!(
        path.is_file(),
        "promtool not found at {} (set PROMLAKE_REF_BIN to the directory containing the reference promtool 3.5.3)",
        path.display()
    );
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("promlake-templates-oracle-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A YAML scalar: JSON strings are valid YAML double-quoted scalars.
fn y(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|e| panic!("json: {e}"))
}

/// A value in promtool's series notation.
fn series_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v:e}")
    }
}

const EXTERNAL_URL: &str = "http://prom.example.com:9090/prefix";
const EVAL_MS: i64 = 60_000;
const INSTANCE: &str = "host.example.com:9100";

/// An extra series for `query`: metric name, labels, value.
type Series = (&'static str, Vec<(&'static str, &'static str)>, f64);

fn query_series() -> Vec<Series> {
    vec![
        ("up", vec![("instance", "y"), ("job", "b")], 0.0),
        ("up", vec![("instance", "x"), ("job", "a")], 1.0),
        ("up", vec![("instance", "z"), ("job", "a")], 1.0),
        ("node_load1", vec![("instance", "x"), ("__value__", "high")], 2.5),
    ]
}

/// Instant selectors with `=` matchers over the query series.
struct SeriesQuerier;

impl Querier for SeriesQuerier {
    fn query(&self, expr: &str, _at_ms: i64) -> Result<Vec<QuerySample>, String> {
        let (name, matchers) = match expr.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').ok_or("bad selector")?),
            None => (expr, ""),
        };
        let matchers: Vec<(String, String)> = matchers
            .split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                let (k, v) = m.split_once('=').ok_or("bad matcher")?;
                Ok((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect::<Result<_, &str>>()?;
        let mut out: Vec<QuerySample> = query_series()
            .into_iter()
            .filter(|(n, labels, _)| {
                *n == name && matchers.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(n, labels, value)| {
                let mut l: BTreeMap<String, String> =
                    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                l.insert("__name__".into(), n.into());
                QuerySample { labels: l, value }
            })
            .collect();
        out.sort_by(|a, b| a.labels.iter().cmp(b.labels.iter()));
        Ok(out)
    }
}

/// (template, $value)
fn render_cases() -> Vec<(&'static str, f64)> {
    let mut cases: Vec<(&'static str, f64)> = Vec::new();
    for v in [
        1.0,
        0.5,
        1e21,
        123456789.0,
        1e-5,
        -0.25,
        100000.0,
        1e6,
        1e-7,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
    ] {
        cases.push(("{{ $value }}", v));
    }
    for v in [5e-324, f64::MAX, 0.1 + 0.2, 1e100, 9007199254740993.0, 2.0 / 3.0, 1e20, 123456.7] {
        cases.push(("{{ $value }}", v));
    }
    for v in [0.0, 1234567.0, 0.000123, -1e30, f64::NAN, f64::INFINITY, 999.95, 1e-30] {
        cases.push(("{{ humanize $value }}", v));
    }
    for v in [1048576.0, 0.5, 1234567.0, -2048.0] {
        cases.push(("{{ humanize1024 $value }}", v));
    }
    for v in [0.0, 0.5, 59.0, 3600.0 * 25.0 + 61.0, -1.0, 0.000_012_34, 90.5] {
        cases.push(("{{ humanizeDuration $value }}", v));
    }
    cases.extend([
        ("{{ humanizePercentage $value }} {{ humanizePercentage 2 }}", 0.12345),
        ("{{ humanizeTimestamp $value }} | {{ humanizeTimestamp \"1435065584.128\" }} | {{ humanizeDuration \"3661\" }}", 1435065584.128),
        ("{{ humanize \"1234.5\" }} {{ humanize 1000 }} {{ humanize \"1_000\" }} {{ humanize \"0x1p-2\" }}", 0.0),
        ("{{ printf \"%.2f|%d|%s|%v|%5.1e|%g|%x\" $value $value $value $value $value $value $value }}", 3.17259),
        ("{{ printf \"%d items, %s, %q, %5s|%-4d|%+d|%05.1f\" 3 $labels.job $labels.job \"ab\" 7 7 2.5 }}", 1.0),
        ("{{ printf \"%v %v %d\" 1 }} {{ printf \"%d\" 1 2 }} {{ printf \"%!\" }} {{ printf \"%[2]s %[1]s\" \"a\" \"b\" }}", 1.0),
        ("{{ $value | printf \"%.3g\" }} {{ print 1 2 \"a\" $value }} {{ printf \"%T %T %T\" $labels $value . }}", 2.0 / 3.0),
        ("{{ $labels.instance }} {{ $labels.job }} [{{ $labels.missing }}] {{ .Labels.case }}", 1.0),
        ("{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalURL }}", 1.0),
        ("{{ $labels }}", 7.0),
        ("{{ . }}", 7.5),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}", 1.0),
        ("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ reReplaceAll \"a*\" \"X\" \"baaac\" }} {{ reReplaceAll \"(?P<h>[a-z]+)\\\\.\" \"${h}_\" \"a.b.c\" }}", 1.0),
        ("{{ reReplaceAll \"\\\\d+\" \"#\" \"a1b22\" }} {{ match \"^host\" $labels.instance }} {{ match \"x\" \"y\" }} {{ match \"\\\\w+\" \"é\" }}", 1.0),
        ("{{ title \"aa bb CC foo-bar foo_bar o'neil x.y a:b élan hello, wORLD\" }}", 1.0),
        ("{{ title \"1st 2nd-3rd a1b\" }}", 1.0),
        ("{{ toUpper \"abc ßé\" }} {{ toLower \"ABC É\" }}", 1.0),
        ("{{ stripPort $labels.instance }} {{ stripPort \"[::1]:80\" }} {{ stripPort \"foo\" }} {{ stripPort \"[2001:0DB8::1]::12345\" }}", 1.0),
        ("{{ stripDomain $labels.instance }} {{ stripDomain \"10.0.0.1:80\" }} {{ stripDomain \"a.b\" }} {{ stripDomain \"[2001:db8::1]:80\" }}", 1.0),
        ("{{ parseDuration \"1h2m10ms\" }} {{ parseDuration \"1d\" }} {{ printf \"%0.2f\" (parseDuration \"90s\") }}", 1.0),
        ("{{ define \"t\" }}{{ .arg0 }}-{{ .arg1 }}-{{ .arg2 }}{{ end }}{{ template \"t\" args 1 \"two\" $value }}", 3.5),
        ("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.job }}={{ .Value }};{{ end }}", 1.0),
        ("{{ query \"up{instance=\\\"x\\\"}\" | first | value }} {{ query \"up{job=\\\"b\\\"}\" | first | label \"instance\" }} {{ query \"node_load1\" | first | strvalue }}", 1.0),
        ("{{ with query \"nonexistent_metric\" }}{{ . }}{{ else }}none{{ end }}", 1.0),
        // The order of a query's samples is the storage's: sort before relying on it.
        ("{{ range $i, $s := query \"up\" | sortByLabel \"instance\" }}{{ $i }}:{{ $s.Labels.instance }}:{{ $s.Value }} {{ end }}", 1.0),
        ("{{ (query \"up\" | sortByLabel \"instance\" | first).Labels.job }} {{ len (query \"up\") }} {{ index (query \"up\" | sortByLabel \"job\") 2 | value }}", 1.0),
        ("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.3),
        ("{{ with $labels.job }}{{ . | toUpper }}{{ end }}{{ with $labels.nope }}x{{ else }}-none{{ end }}", 1.0),
        ("{{ graphLink \"rate(x[5m]) > 0\" }} {{ tableLink \"up\" }}", 1.0),
        ("{{ safeHtml \"<b>\" }} {{ html \"<b>&'\" }} {{ js \"it's <x>\" }} {{ urlquery \"a b&c/é\" }} {{ html $value }}", 1e21),
        ("{{ toTime $value }} {{ (toTime $value).Format \"2006-01-02T15:04:05.000Z07:00 Mon Jan _2\" }} {{ (toTime $value).Unix }}", 1435065584.128),
        ("{{ len $labels }} {{ index $labels \"job\" }} [{{ index $externalLabels \"nope\" }}] {{ index \"ab\" 1 }}", 1.0),
        ("{{ 1e21 }} {{ 1.5 }} {{ 'a' }} {{ 0x1F }} {{ -0.0 }} {{ 1.0 }} {{ 07 }} {{ 1_000 }}", 1.0),
        ("{{ eq $value 2.5 }} {{ lt 1 2 }} {{ ne \"a\" \"b\" }} {{ ge $value 2.5 }} {{ eq 1 2 1 }} {{ not 0 }} {{ and 1 0 }} {{ or 0 \"\" }}", 2.5),
        ("{{ gt $value 1.0 }} {{ lt $value 1.0 }}", f64::NAN),
        ("{{- $x := 1 }} a {{ $x = 2 -}} {{ $x }}\n{{/* comment */}}b", 1.0),
        ("{{ printf \"%5.2f%%|% d|%x|%X|%c|%U|%o|%b|%q|%08.3f|%e\" $value 5 \"hi\" 255 65 0x1F600 8 5 65 -3.17259 $value }}", 0.000123),
        ("{{ printf \"%v\" (args 1 \"a\") }} [{{ (args 1).arg5 }}] {{ printf \"%s\" (args 1).arg5 }} {{ print nil }}", 1.0),
        ("{{ printf \"%s\" $labels }} {{ printf \"%d\" $externalLabels }}", 1.0),
        ("{{ printf \"%+v\" . }}", 1.0),
        ("{{ printf \"%#v\" $externalLabels }} {{ printf \"%#v %#v %#v\" 1 \"a\" 1.5 }}", 1.0),
        ("{{ printf \"%v|%s\" (toTime 0) (toTime -1.5) }} {{ (toTime 0).Year }} {{ (toTime 0).Month }}", 1.0),
        ("{{ html 1.5 }} {{ urlquery \"a\" \"b\" }} {{ print \"a\" 1 2 \"b\" }} {{ js \"<\\u2028>\" }}", 1.0),
        ("{{ 1+2i }} {{ 1i }} {{ humanize 9223372036854775807 }}", 1.0),
        ("{{ slice \"abcdef\" 1 3 }} {{ slice $labels.job 1 }} {{ len \"h\\u00e9llo\" }} {{ index \"h\\u00e9llo\" 1 }}", 1.0),
        ("{{ with $x := $labels.job }}{{ $x }}{{ end }} {{ range 3 }}{{ . }}{{ end }} {{ range $i := query \"up{job=\\\"b\\\"}\" }}{{ $i.Value }}{{ end }}", 1.0),
        ("{{ range $i, $v := query \"up\" | sortByLabel \"instance\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $v.Labels.instance }}{{ end }}", 1.0),
        ("{{ not $labels }} {{ and $labels.job $labels.instance }} {{ or $labels.nope \"default\" }} {{ if and (gt $value 0.5) (eq $labels.job \"node\") }}ok{{ end }}", 1.0),
        ("{{ title \"don't stop\" }} {{ toUpper $labels.missing }}[x] {{ .Labels.job | printf \"%s-%s\" \"a\" }} {{ $labels.job | html | printf \"%q\" }}", 1.0),
        ("{{ reReplaceAll \"^(.)\" \"$1$1\" \"ab\" }} {{ reReplaceAll \"x\" \"$\" \"axb\" }} {{ reReplaceAll \"(a)\" \"${1\" \"a\" }} {{ reReplaceAll \"(?i)A\" \"z\" \"aA\" }} {{ reReplaceAll \"(a)(b)?\" \"[$2]\" \"a\" }}", 1.0),
        ("{{ match \"\\\\s\" \" \" }} {{ match \"\\\\s\" \"\\u00a0\" }} {{ match \"\\\\bb\" \"éb\" }} {{ stripPort \"a:b:c\" }} {{ stripDomain \"foo:80\" }}", 1.0),
        ("{{ parseDuration \"1y2w3d4h5m6s7ms\" }} {{ humanizeDuration 1e-10 }} {{ humanizeDuration 86400000 }} {{ humanize1024 1.5 }} {{ humanize1024 1025 }}", 1.0),
        ("{{ humanizePercentage $value }} {{ humanizePercentage \"-Inf\" }} {{ humanizeTimestamp 0 }} {{ humanizeTimestamp -1.5 }}", f64::NAN),
        // Errors: Prometheus renders <error expanding template: ...>.
        ("{{ humanize 18446744073709551615 }}", 1.0),
        ("{{ humanize (args) }}", 1.0),
        ("{{ first $labels }}", 1.0),
        ("{{ sortByLabel \"x\" 5 }}", 1.0),
        ("{{ label \"x\" nil }}", 1.0),
        ("{{ title nil }}", 1.0),
        ("{{ humanize nil }}", 1.0),
        ("{{ range $i, $v := 3 }}{{ end }}", 1.0),
        ("{{ range $labels.job }}{{ end }}", 1.0),
        ("{{ (query \"up\").banana }}", 1.0),
        ("{{ $labels.job 1 }}", 1.0),
        ("{{ printf 1 }}", 1.0),
        ("{{ eq }}", 1.0),
        ("{{ eq 1 }}", 1.0),
        ("{{ lt 1 }}", 1.0),
        ("{{ index nil 1 }}", 1.0),
        ("{{ humanize \"one\" }}", 1.0),
        ("line1\n{{ humanizeDuration \"x\" }}", 1.0),
        ("{{ query \"nonexistent_metric\" | first }}", 1.0),
        ("{{ gt $value 1 }}", 1.0),
        ("{{ eq $value \"a\" }}", 1.0),
        ("{{ lt $labels 1 }}", 1.0),
        ("{{ lt true false }}", 1.0),
        ("{{ eq $labels $labels }}", 1.0),
        ("{{ len 3 }}", 1.0),
        ("{{ index (query \"up\") 3 }}", 1.0),
        ("{{ label \"x\" $value }}", 1.0),
        ("{{ range $value }}x{{ end }}", 1.0),
        ("{{ template \"nope\" }}", 1.0),
        ("{{ .Foo }}", 1.0),
        ("{{ $labels.job.x }}", 1.0),
        ("{{ externalURL }}", 1.0),
        ("{{ pathPrefix }}", 1.0),
        ("{{ humanize }}", 1.0),
        ("{{ title 5 }}", 1.0),
        ("{{ toTime $value }}", f64::NAN),
        ("{{ define \"d\" }}{{ parseDuration \"5x\" }}{{ end }}{{ template \"d\" }}", 1.0),
        ("{{ reReplaceAll \"(\" \"\" \"a\" }}", 1.0),
        ("{{ index $labels 1 }}", 1.0),
        ("{{ humanizeTimestamp 1e300 }}", 1.0),
    ]);
    cases
}

/// Our rendering of case `i`, with the data promtool gives the rule.
fn render(i: usize, text: &str, value: f64) -> String {
    let mut labels = BTreeMap::new();
    labels.insert("__name__".to_string(), "test_metric".to_string());
    labels.insert("case".to_string(), i.to_string());
    labels.insert("instance".to_string(), INSTANCE.to_string());
    labels.insert("job".to_string(), "node".to_string());
    let data = AlertData {
        labels,
        external_labels: [("cluster".to_string(), "eu1".to_string())].into_iter().collect(),
        external_url: EXTERNAL_URL.into(),
        value,
        histogram: None,
    };
    // promtool's rule manager has no external URL for the functions.
    let opts = ExpandOptions { ts_ms: EVAL_MS, querier: Some(&SeriesQuerier), external_url: None };
    expand_alert_template_with(&format!("Case{i}"), text, &data, &opts).unwrap_or_else(|e| error_text(&e))
}

/// Writes the rules and unit-test files; returns the test file's path.
fn write_unit_test(dir: &Path, cases: &[(&str, f64)], expected: &[String]) -> PathBuf {
    let mut rules = String::from("groups:\n- name: oracle\n  rules:\n");
    let mut series = String::new();
    let mut tests = String::new();
    for (i, (text, value)) in cases.iter().enumerate() {
        rules += &format!(
            "  - alert: Case{i}\n    expr: test_metric{{case=\"{i}\"}}\n    labels:\n      severity: test\n    annotations:\n      out: {}\n",
            y(text)
        );
        series += &format!(
            "  - series: 'test_metric{{case=\"{i}\",instance=\"{INSTANCE}\",job=\"node\"}}'\n    values: '{v} {v}'\n",
            v = series_value(*value)
        );
        tests += &format!(
            "  - eval_time: 1m\n    alertname: Case{i}\n    exp_alerts:\n    - exp_labels:\n        case: \"{i}\"\n        instance: {}\n        job: node\n        severity: test\n      exp_annotations:\n        out: {}\n",
            y(INSTANCE),
            y(&expected[i])
        );
    }
    for (name, labels, value) in query_series() {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        series += &format!("  - series: '{name}{{{}}}'\n    values: '{v} {v}'\n", l.join(","), v = series_value(value));
    }
    std::fs::write(dir.join("rules.yml"), rules).unwrap_or_else(|e| panic!("write rules: {e}"));
    let test = format!(
        "rule_files:\n- rules.yml\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  external_labels:\n    cluster: eu1\n  external_url: {}\n  input_series:\n{series}  alert_rule_test:\n{tests}",
        y(EXTERNAL_URL)
    );
    let path = dir.join("test.yml");
    std::fs::write(&path, test).unwrap_or_else(|e| panic!("write test: {e}"));
    path
}

fn run(promtool: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn renderings_match_promtool_test_rules() {
    let promtool = promtool();
    let cases = render_cases();
    let expected: Vec<String> = cases.iter().enumerate().map(|(i, (t, v))| render(i, t, *v)).collect();
    let dir = temp_dir("render");
    let test = write_unit_test(&dir, &cases, &expected);
    let (ok, out) = run(&promtool, &["test", "rules", test.to_str().unwrap_or("test.yml")], &dir);
    let listing: String = cases
        .iter()
        .zip(&expected)
        .enumerate()
        .map(|(i, ((t, v), e))| format!("Case{i}: {t:?} value={v} => {e:?}\n"))
        .collect();
    assert!(
        ok,
        "promtool test rules found differences from our renderings ({} cases):\n{out}\nour renderings:\n{listing}",
        cases.len()
    );
    println!("promtool test rules agrees with all {} renderings", cases.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn promtool_detects_a_wrong_rendering() {
    let promtool = promtool();
    let cases = vec![("{{ $value | humanize }}", 1234567.0)];
    let mut expected: Vec<String> = cases.iter().enumerate().map(|(i, (t, v))| render(i, t, *v)).collect();
    assert_eq!(expected[0], "1.235M");
    expected[0] = "1.234M".into(); // deliberately wrong
    let dir = temp_dir("wrong");
    let test = write_unit_test(&dir, &cases, &expected);
    let (ok, out) = run(&promtool, &["test", "rules", test.to_str().unwrap_or("test.yml")], &dir);
    assert!(!ok, "promtool accepted a wrong expectation:\n{out}");
    assert!(out.contains("1.235M"), "promtool's report should show its rendering:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

const VALID: &[&str] = &[
    "{{ $labels.instance }} is down",
    "{{ humanize $value }}",
    "{{ range query \"up\" }}{{ .Labels.job }}{{ end }}",
    "{{ if gt $value 1.0 }}a{{ else if lt $value 0.5 }}b{{ else }}c{{ end }}",
    "{{ define \"x\" }}y{{ end }}{{ template \"x\" . }}",
    "{{- /* comment */ -}} {{ $value | printf \"%.2f\" }}",
    "{{ with $x := 1 }}{{ $x }}{{ end }}",
    "{{ range $i, $e := query \"up\" }}{{ if $i }}{{ break }}{{ end }}{{ continue }}{{ end }}",
    "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -1 }} {{ 1_000 }}",
    "multi\n{{ $labels.job\n}}",
    "{{ with $labels.a }}x{{ else with $labels.b }}y{{ end }}",
    "{{ printf \"%d\" 1 | }}",
    "{{ (query \"up\" | first).Labels.job }}",
];

const INVALID: &[&str] = &[
    "{{ foo }}",
    "{{ if }}x{{ end }}",
    "{{ range .x }}",
    "{{ .Labels.x }",
    "{{ urlUnescape \"a%20b\" }}",
    "{{ toDuration 1 }}",
    "{{ now }}",
    "{{ $undefined }}",
    "{{ end }}",
    "{{ break }}",
    "{{ 1 | 2 }}",
    "{{ \"unterminated }}",
    "{{ (1 }}",
    "x\ny\n{{ if 1 }}",
    "{{ 3x }}",
    "{{ \"a\".b }}",
    "{{ define \"a\" }}1{{ end }}{{ define \"a\" }}2{{ end }}",
    "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
];

#[test]
fn check_rules_agrees_with_promtool() {
    let promtool = promtool();
    let dir = temp_dir("check");
    let mut failures = Vec::new();
    for (i, text) in VALID.iter().chain(INVALID).enumerate() {
        let ours = check_alert_template("Check", text);
        let expect_valid = i < VALID.len();
        if ours.is_ok() != expect_valid {
            failures.push(format!("{text:?}: our check gave {ours:?}, expected valid={expect_valid}"));
        }
        let file = format!("check{i}.yml");
        let rules = format!(
            "groups:\n- name: check\n  rules:\n  - alert: Check\n    expr: up\n    annotations:\n      out: {}\n",
            y(text)
        );
        std::fs::write(dir.join(&file), rules).unwrap_or_else(|e| panic!("write: {e}"));
        let (ok, out) = run(&promtool, &["check", "rules", &file], &dir);
        match &ours {
            Ok(()) if !ok => failures.push(format!("{text:?}: we accept, promtool rejects:\n{out}")),
            Err(e) if ok => failures.push(format!("{text:?}: we reject ({e}), promtool accepts")),
            Err(e) if !out.contains(&format!("annotation \"out\": {e}")) => {
                failures.push(format!("{text:?}: our message {e:?} differs from promtool's:\n{out}"))
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with promtool check rules:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
