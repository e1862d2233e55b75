//! Expansion of alert templates through the public API, one group of cases
//! per function; expected outputs follow Go's and Prometheus's semantics.

use std::collections::BTreeMap;
use std::sync::Mutex;

use templates::{AlertData, ExpandOptions, Querier, QuerySample, expand_alert_template, expand_alert_template_with};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn data(value: f64) -> AlertData {
    AlertData {
        labels: labels(&[("__name__", "test_metric"), ("instance", "host.example.com:9100"), ("job", "node")]),
        external_labels: labels(&[("cluster", "eu1")]),
        external_url: "http://prom.example.com:9090/prefix".into(),
        value,
        histogram: None,
    }
}

/// Answers `up` with two series and `none` with nothing; records calls.
#[derive(Default)]
struct TestQuerier {
    calls: Mutex<Vec<(String, i64)>>,
}

impl Querier for TestQuerier {
    fn query(&self, expr: &str, at_ms: i64) -> Result<Vec<QuerySample>, String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push((expr.to_string(), at_ms));
        match expr {
            "up" => Ok(vec![
                QuerySample { labels: labels(&[("__name__", "up"), ("instance", "y"), ("job", "b")]), value: 0.0 },
                QuerySample { labels: labels(&[("__name__", "up"), ("instance", "x"), ("job", "a")]), value: 1.0 },
            ]),
            "none" => Ok(vec![]),
            "scalar" => Ok(vec![QuerySample { labels: BTreeMap::new(), value: 1.5 }]),
            _ => Err(format!("parse error: unexpected {expr}")),
        }
    }
}

fn x(text: &str, value: f64) -> String {
    let q = TestQuerier::default();
    match expand_alert_template("A", text, &data(value), 60_000, Some(&q)) {
        Ok(s) => s,
        Err(e) => format!("ERR {e}"),
    }
}

#[test]
fn value_prints_as_go_float64() {
    for (v, want) in [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e21, "1e+21"),
        (123456789.0, "1.23456789e+08"),
        (123456.0, "123456"),
        (1e-5, "1e-05"),
        (-0.0, "-0"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(x("{{ $value }}", v), want);
        assert_eq!(x("{{ .Value }}", v), want);
    }
}

#[test]
fn data_and_variables() {
    assert_eq!(x("{{ $labels.instance }}/{{ .Labels.job }}", 1.0), "host.example.com:9100/node");
    assert_eq!(x("[{{ $labels.missing }}]", 1.0), "[]");
    assert_eq!(x("{{ $externalLabels.cluster }} {{ $externalURL }}", 1.0), "eu1 http://prom.example.com:9090/prefix");
    assert_eq!(x("{{ $labels }}", 1.0), "map[__name__:test_metric instance:host.example.com:9100 job:node]");
    assert_eq!(
        x("{{ . }}", 2.0),
        "{map[__name__:test_metric instance:host.example.com:9100 job:node] map[cluster:eu1] http://prom.example.com:9090/prefix 2}"
    );
    assert_eq!(x("{{ if eq $labels.missing \"\" }}empty{{ end }}", 1.0), "empty");
    assert_eq!(
        x("{{ .Nope }}", 1.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <.Nope>: can't evaluate field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"
    );
    assert_eq!(
        x("{{ $labels.job.x }}", 1.0),
        "ERR error executing template __alert_A: template: __alert_A:1:122: executing \"__alert_A\" at <$labels.job.x>: can't evaluate field x in type string"
    );
}

#[test]
fn control_structures() {
    assert_eq!(x("{{ if gt $value 0.5 }}big{{ else }}small{{ end }}", 0.7), "big");
    assert_eq!(x("{{ if gt $value 0.5 }}big{{ else if gt $value 0.1 }}mid{{ else }}small{{ end }}", 0.2), "mid");
    assert_eq!(x("{{ with $labels.job }}job={{ . }}{{ end }}", 1.0), "job=node");
    assert_eq!(x("{{ with $labels.nope }}x{{ else }}none{{ end }}", 1.0), "none");
    assert_eq!(
        x("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 1.0),
        "__name__=test_metric;instance=host.example.com:9100;job=node;"
    );
    assert_eq!(
        x("{{ range $i, $e := query \"up\" }}{{ if $i }},{{ end }}{{ $e.Labels.instance }}{{ end }}", 1.0),
        "y,x"
    );
    assert_eq!(x("{{ range query \"none\" }}x{{ else }}empty{{ end }}", 1.0), "empty");
    assert_eq!(
        x("{{ define \"t\" }}<{{ .arg0 }}|{{ .arg1 }}>{{ end }}{{ template \"t\" args $labels.job 2 }}", 1.0),
        "<node|2>"
    );
    assert_eq!(x("{{- $x := 1 }} a {{ $x = 2 -}} {{ $x }}", 1.0), " a 2");
    assert_eq!(
        x("{{ gt $value 1 }}", 1.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <gt $value 1>: error calling gt: incompatible types for comparison: float64 and int"
    );
}

#[test]
fn printf_and_print() {
    assert_eq!(x("{{ printf \"%.2f\" $value }}", 3.17259), "3.17");
    assert_eq!(x("{{ printf \"%d\" $value }}", 3.0), "%!d(float64=3)");
    assert_eq!(x("{{ printf \"%s\" $value }}", 3.0), "%!s(float64=3)");
    assert_eq!(x("{{ printf \"%v %g %e\" $value $value $value }}", 1e21), "1e+21 1e+21 1.000000e+21");
    assert_eq!(x("{{ printf \"%s:%d\" $labels.job 5 }}", 1.0), "node:5");
    assert_eq!(x("{{ printf \"%T %T\" $labels $value }}", 1.0), "map[string]string float64");
    assert_eq!(x("{{ print 1 2 \"a\" $value }}", 0.5), "1 2a0.5");
    assert_eq!(x("{{ println \"a\" $value }}", 0.5), "a 0.5\n");
    assert_eq!(x("{{ html \"<b>\" }} {{ js \"it's\" }} {{ urlquery \"a b&c\" }}", 1.0), "&lt;b&gt; it\\'s a+b%26c");
    assert_eq!(x("{{ len $labels }} {{ index $labels \"job\" }} [{{ index $labels \"nope\" }}]", 1.0), "3 node []");
    assert_eq!(x("{{ not false }} {{ and 1 0 }} {{ or 0 \"x\" }}", 1.0), "true 0 x");
    assert_eq!(x("{{ 1e21 }} {{ 1.0 }} {{ 0x10 }} {{ 'a' }} {{ \"s\" }} {{ true }}", 1.0), "1e+21 1 16 97 s true");
}

#[test]
fn humanize_family() {
    assert_eq!(x("{{ humanize $value }}", 0.0), "0");
    assert_eq!(x("{{ humanize $value }}", 1234567.0), "1.235M");
    assert_eq!(x("{{ humanize $value }}", 0.000123), "123u");
    assert_eq!(x("{{ humanize $value }}", -1e30), "-1e+06Y");
    assert_eq!(x("{{ $value | humanize }}", f64::NAN), "NaN");
    assert_eq!(x("{{ humanize \"1234.5\" }} {{ humanize 1000 }}", 0.0), "1.234k 1k");
    assert_eq!(x("{{ humanize1024 $value }}", 1048576.0), "1Mi");
    assert_eq!(x("{{ humanize1024 $value }}", 0.5), "0.5");
    assert_eq!(x("{{ humanizeDuration $value }}", 3600.0 * 25.0 + 61.0), "1d 1h 1m 1s");
    assert_eq!(x("{{ humanizeDuration $value }}", 0.5), "500ms");
    assert_eq!(x("{{ humanizeDuration $value }}", 59.0), "59s");
    assert_eq!(x("{{ humanizePercentage $value }}", 0.12345), "12.35%");
    assert_eq!(x("{{ humanizeTimestamp $value }}", 1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
    assert_eq!(
        x("{{ humanize \"one\" }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    assert_eq!(
        x("{{ \"one\" | humanizePercentage }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:123: executing \"__alert_A\" at <humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    assert_eq!(
        x("{{ humanize $labels }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize $labels>: error calling humanize: can't convert map[string]string to float"
    );
}

#[test]
fn time_functions() {
    assert_eq!(x("{{ toTime $value }}", 1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
    assert_eq!(x("{{ (toTime $value).Format \"2006-01-02\" }}", 1435065584.128), "2015-06-23");
    assert_eq!(x("{{ (toTime \"1435065584\").Unix }}", 0.0), "1435065584");
    assert_eq!(x("{{ parseDuration \"1h2m10ms\" }}", 0.0), "3720.01");
    assert_eq!(x("{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}", 0.0), "3720.01");
    assert!(
        x("{{ parseDuration \"1x\" }}", 0.0)
            .ends_with("error calling parseDuration: unknown unit \"x\" in duration \"1x\"")
    );
    assert!(x("{{ toTime $value }}", f64::NAN).ends_with("error calling toTime: value is NaN or Inf"));
}

#[test]
fn string_functions() {
    assert_eq!(x("{{ reReplaceAll \"(a)b\" \"x$1\" \"abab\" }}", 0.0), "xaxa");
    assert_eq!(x("{{ reReplaceAll \":.*\" \"\" $labels.instance }}", 0.0), "host.example.com");
    assert_eq!(x("{{ match \"a+\" \"aa\" }} {{ match \"^b\" \"ab\" }}", 0.0), "true false");
    assert!(
        x("{{ match \"(\" \"a\" }}", 0.0)
            .ends_with("error calling match: error parsing regexp: missing closing ): `(`")
    );
    assert!(
        x("{{ reReplaceAll \"(\" \"\" \"a\" }}", 0.0).ends_with(
            "error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`"
        )
    );
    assert_eq!(x("{{ title \"aa bb CC\" }} {{ toUpper \"aB\" }} {{ toLower \"aB\" }}", 0.0), "Aa Bb CC AB ab");
    assert_eq!(x("{{ $labels.instance | stripPort }} {{ stripPort \"[::1]:80\" }}", 0.0), "host.example.com ::1");
    assert_eq!(
        x("{{ $labels.instance | stripDomain }} {{ stripDomain \"10.0.0.1:80\" }}", 0.0),
        "host:9100 10.0.0.1:80"
    );
    assert_eq!(x("{{ safeHtml \"<b>\" }}", 0.0), "<b>");
    assert_eq!(x("{{ graphLink \"rate(x[5m]) > 0\" }}", 0.0), "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0");
    assert_eq!(x("{{ tableLink \"up\" }}", 0.0), "/graph?g0.expr=up&g0.tab=1");
    assert_eq!(x("{{ externalURL }} {{ pathPrefix }}", 0.0), "http://prom.example.com:9090/prefix /prefix");
    assert!(x("{{ title 5 }}", 0.0).ends_with("at <5>: expected string; found 5"));
}

#[test]
fn query_functions() {
    assert_eq!(x("{{ query \"up\" | first | value }}", 0.0), "0");
    assert_eq!(x("{{ query \"up\" | first | label \"instance\" }}", 0.0), "y");
    assert_eq!(x("{{ with query \"up\" }}{{ . | first | label \"job\" }}{{ end }}", 0.0), "b");
    assert_eq!(
        x("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}", 0.0),
        "x:1 y:0 "
    );
    assert_eq!(x("{{ (query \"up\" | first).Labels.job }} {{ len (query \"up\") }}", 0.0), "b 2");
    assert_eq!(x("{{ query \"scalar\" | first | value | humanize }}", 0.0), "1.5");
    assert_eq!(x("[{{ query \"up\" | first | strvalue }}]", 0.0), "[]");
    assert_eq!(
        x("{{ query \"none\" | first }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:130: executing \"__alert_A\" at <first>: error calling first: first() called on vector with no elements"
    );
    assert_eq!(
        x("{{ query \"bad(\" }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <query \"bad(\">: error calling query: parse error: unexpected bad("
    );
    let q = TestQuerier::default();
    let out =
        expand_alert_template("A", "{{ query \"up\" | len }}{{ query \"none\" | len }}", &data(0.0), 123_456, Some(&q));
    assert_eq!(out.as_deref(), Ok("20"));
    assert_eq!(
        *q.calls.lock().unwrap_or_else(|e| e.into_inner()),
        vec![("up".into(), 123_456), ("none".into(), 123_456)]
    );
    assert!(expand_alert_template("A", "{{ query \"up\" }}", &data(0.0), 0, None).is_err_and(|e| {
        e.ends_with("error calling query: runtime error: invalid memory address or nil pointer dereference")
    }));
}

#[test]
fn errors_and_fallback_text() {
    assert_eq!(
        x("{{ foo }}", 0.0),
        "ERR error parsing template __alert_A: template: __alert_A:1: function \"foo\" not defined"
    );
    assert_eq!(
        templates::expand_or_error_text("A", "{{ if }}", &data(0.0), 0, None),
        "<error expanding template: error parsing template __alert_A: template: __alert_A:1: missing value for if>"
    );
    let opts = ExpandOptions { ts_ms: 0, querier: None, external_url: None };
    assert_eq!(
        expand_alert_template_with("A", "{{ externalURL }}", &data(0.0), &opts).err().as_deref(),
        Some(
            "error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <externalURL>: error calling externalURL: runtime error: invalid memory address or nil pointer dereference"
        )
    );
    assert_eq!(
        x("{{ humanize }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize>: wrong number of args for humanize: want 1 got 0"
    );
    assert_eq!(
        x("line1\n{{ humanize \"x\" }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:2:3: executing \"__alert_A\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        x("{{ define \"d\" }}{{ humanize \"x\" }}{{ end }}{{ template \"d\" }}", 0.0),
        "ERR error executing template __alert_A: template: __alert_A:1:131: executing \"d\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax"
    );
}
