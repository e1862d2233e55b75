//! Oracle test against the real Alertmanager: `amtool template render`
//! 0.33.1 renders the same texts over the same data and user template file
//! as [`NotificationTemplates::execute_text`]; the outputs (or the error
//! messages) must be equal byte for byte.
//!
//! The cases cover every template of Alertmanager's `default.tmpl` and
//! `email.tmpl` (in text mode), the data types' fields and methods (`KV`,
//! `Pairs`, `Alerts`, times in several zones), every function of
//! Alertmanager's function map whose result does not depend on the clock,
//! Go's printing of the data (`%v`, `%+v`, `%#v`), a user template file
//! that overrides a default, and parse and execution errors.
//!
//! amtool is found in `$PROMLAKE_REF_BIN` (a directory), else fetched by
//! `../shared/tools/fetch-reference-binaries`; the test fails if it is missing.
//!
//! Debian's amtool does not embed the default templates: its package ships
//! them as files (`usr/share/prometheus/alertmanager/`, byte for byte the
//! files PromLake embeds, which the test checks), so the test passes them
//! to amtool as the first glob. Go then names them by file (`template:
//! default.tmpl:7:41: ...` in errors raised inside them) where upstream
//! Alertmanager, which parses them into its root template, names them `""`
//! as PromLake does; amtool's messages are compared with that renamed.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::testing::reference_bin;
use templates::{NotificationData, NotificationTemplates};

fn amtool() -> PathBuf {
    let path = reference_bin().join("amtool");
    assert!(
        path.is_file(),
        "amtool not found at {} (set PROMLAKE_REF_BIN to the directory containing the reference amtool 0.33.1)",
        path.display()
    );
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("promlake-amtool-oracle-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A group of two alerts (one firing, one resolved) with times in UTC and
/// at a fixed offset, labels needing escapes, and an unset end.
const DATA_MIXED: &str = r#"{
  "receiver": "team-<x>",
  "status": "firing",
  "alerts": [
    {"status": "firing",
     "labels": {"alertname": "HighLatency", "zone": "eu-1", "instance": "h1:9100", "severity": "page", "quote": "a \"b\" & c"},
     "annotations": {"summary": "Latency above 500ms", "description": "p99 is 1.2s on h1:9100\nsecond line", "runbook": "https://r/x?a=1&b=2"},
     "startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prom:9090/graph?g0.expr=up", "fingerprint": "a1b2c3d4e5f60718"},
    {"status": "resolved",
     "labels": {"alertname": "HighLatency", "zone": "eu-2", "severity": "page", "ünï": "cødé"},
     "annotations": {"summary": "Latency above 500ms"},
     "startsAt": "2024-05-01T09:00:00.123456789+02:00", "endsAt": "2024-05-01T10:30:00-05:30",
     "generatorURL": "", "fingerprint": "0f1e2d3c4b5a6978"}
  ],
  "groupLabels": {"alertname": "HighLatency", "severity": "page"},
  "commonLabels": {"alertname": "HighLatency", "severity": "page"},
  "commonAnnotations": {"summary": "Latency above 500ms"},
  "externalURL": "http://am.example.com:9093/prefix"
}"#;

/// One resolved alert without an `alertname`, string fields missing
/// (label maps are always present: Alertmanager's own data never holds a
/// nil map, which Go would print and encode differently from an empty one).
const DATA_SPARSE: &str = r#"{
  "status": "resolved",
  "alerts": [
    {"status": "resolved", "labels": {"job": "node", "a": "1"}, "annotations": {},
     "startsAt": "2023-12-31T23:59:59Z", "endsAt": "2024-01-01T00:00:01Z"}
  ],
  "groupLabels": {},
  "commonLabels": {"job": "node", "a": "1"},
  "commonAnnotations": {},
  "externalURL": ""
}"#;

/// A user template file: new templates, and a default one overridden.
const USER_TMPL: &str = r#"{{ define "team.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ len .Alerts }}){{ end }}
{{ define "team.list" }}{{ range $i, $a := .Alerts }}{{ if $i }}; {{ end }}{{ $a.Labels.instance | printf "%q" }}@{{ $a.StartsAt.Format "15:04" }}{{ end }}{{ end }}
{{ define "__alertmanager" }}PromLake Alertmanager{{ end }}
{{ define "empty.override" }}{{ end }}
"#;

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = Vec::new();
    // Every template Alertmanager ships, executed in text mode.
    for text in [templates::DEFAULT_TMPL, templates::EMAIL_TMPL] {
        for part in text.split("{{ define \"").skip(1) {
            if let Some(name) = part.split('"').next() {
                cases.push(format!("{{{{ template \"{name}\" . }}}}"));
            }
        }
    }
    cases.extend(
        [
            // The user file.
            r#"{{ template "team.title" . }}"#,
            r#"{{ template "team.list" . }}"#,
            r#"{{ template "slack.default.username" . }}"#,
            r#"{{ template "team.tmpl" . }}|"#,
            // Printing the data.
            "{{ . }}",
            "{{ .Alerts }}",
            "{{ index .Alerts 0 }}",
            r#"{{ printf "%+v" (index .Alerts 0) }}"#,
            r#"{{ printf "%#v" .GroupLabels }}"#,
            r#"{{ printf "%v|%s|%q|%d" .GroupLabels .GroupLabels.Names .Receiver (len .Alerts) }}"#,
            "{{ .CommonLabels.SortedPairs }}",
            "{{ range .CommonLabels.SortedPairs }}[{{ . }}|{{ .Name }}={{ .Value }}]{{ end }}",
            "{{ .CommonLabels.SortedPairs.Names }} {{ .CommonLabels.SortedPairs.Values }} {{ .CommonLabels.SortedPairs.String }}",
            "{{ .GroupLabels.String }}|{{ .GroupLabels.Values }}|{{ .CommonAnnotations }}",
            // Methods and fields.
            "{{ .CommonLabels.Remove .GroupLabels.Names }}|{{ (.CommonLabels.Remove (stringSlice \"a\" \"zz\")).Names }}",
            "{{ len .Alerts.Firing }} {{ len .Alerts.Resolved }} {{ .Alerts.Firing }}",
            "{{ range .Alerts.Resolved }}{{ .Labels.SortedPairs }} ended {{ .EndsAt }}{{ end }}",
            "{{ range $k, $v := (index .Alerts 0).Labels }}{{ $k }}={{ $v }};{{ end }}",
            "{{ (index .Alerts 0).Labels.missing }}|{{ index (index .Alerts 0).Labels \"zone\" }}|{{ index .CommonLabels \"nope\" }}|",
            "{{ with .GroupLabels }}{{ .alertname }}{{ else }}none{{ end }}",
            "{{ if .Alerts.Firing }}firing{{ else }}none firing{{ end }}",
            "{{ .NotificationReason }}|{{ .ExternalURL }}|{{ .Receiver | urlquery }}",
            // Times.
            "{{ range .Alerts }}{{ .StartsAt }}|{{ .EndsAt }}|{{ .EndsAt.IsZero }}|{{ .StartsAt.Unix }}|{{ .StartsAt.UnixMilli }}\n{{ end }}",
            "{{ range .Alerts }}{{ .StartsAt.Format \"2006-01-02T15:04:05.000Z07:00 MST Mon Jan 2 3PM\" }}\n{{ end }}",
            "{{ range .Alerts }}{{ date \"Monday, 02-Jan-06 15:04:05 MST -0700\" .StartsAt }}|{{ .StartsAt.UTC }}\n{{ end }}",
            "{{ range .Alerts }}{{ .StartsAt | tz \"America/New_York\" }}|{{ (.EndsAt | tz \"Asia/Kathmandu\").Format \"15:04 MST\" }}|{{ .StartsAt | tz \"UTC\" }}\n{{ end }}",
            "{{ range .Alerts }}{{ tz \"Australia/Lord_Howe\" .StartsAt | date \"Z07:00 -07 -070000 MST\" }}\n{{ end }}",
            "{{ range .Alerts }}{{ .StartsAt.Year }} {{ .StartsAt.Month }} {{ .StartsAt.Day }} {{ .StartsAt.Hour }} {{ .StartsAt.Weekday }} {{ .StartsAt.YearDay }}\n{{ end }}",
            // Functions.
            "{{ .CommonAnnotations.summary | toUpper }}|{{ \"HeLLo\" | toLower }}|{{ title \"hello wide world\" }}|{{ trimSpace \"  pad \\n \" }}",
            "{{ title \"CRITICAL dISK full\" }}|{{ toJson \"a\\bb\\fc\\u0001\" }}",
            " ",
            "{{/* only a comment */}}",
            "{{ define \"local\" }}L{{ end }}",
            "{{ join \", \" .CommonLabels.Values }}|{{ stringSlice \"a\" \"b\" | join \"+\" }}|{{ stringSlice }}",
            "{{ match \"^High\" .CommonLabels.alertname }} {{ match \"x+\" \"abc\" }}",
            "{{ reReplaceAll \"(\\\\w+):(\\\\d+)\" \"$2 on $1\" \"h1:9100\" }}|{{ reReplaceAll \"a\" \"${0}${0}\" \"banana\" }}",
            "{{ safeHtml \"<b>x</b>\" }}|{{ safeUrl \"http://x/?a=<1>\" }}|{{ urlUnescape \"a%20b+c%2Fd\" }}",
            "{{ humanizeDuration 3725 }}|{{ humanizeDuration 0.25 }}|{{ humanizeDuration \"90\" }}|{{ humanizeDuration 0 }}",
            "{{ toJson .GroupLabels }}|{{ toJson .Alerts.Resolved }}",
            "{{ toJson . }}",
            "{{ toJson (dict \"n\" 1 \"f\" 2.5 \"tiny\" 0.0000001 \"big\" 1e21 \"s\" \"<&>\" \"l\" (list true nil)) }}",
            "{{ $l := list 1 2 }}{{ $l = append $l 3 \"x\" }}{{ $l }} {{ len $l }} {{ index $l 3 }}",
            "{{ $d := dict \"a\" \"1\" \"b\" (dict \"c\" 2) }}{{ $d.a }} {{ $d.b.c }} {{ $d }}",
            "{{ html \"<a href='x'>&</a>\" }}|{{ js \"it's <x>\" }}|{{ urlquery \"a b&c\" }}|{{ print 1 2.5 \"x\" nil }}",
            "{{ printf \"%s has %d alerts (%.1f%%)\" .Receiver (len .Alerts) 50.0 }}|{{ println \"a\" 1 }}",
            "{{ slice \"abcdef\" 1 3 }}|{{ and 1 0 }}|{{ or 0 \"\" \"z\" }}|{{ not .Alerts }}|{{ eq .Status \"firing\" \"resolved\" }}|{{ lt 1 2 }}",
            // Errors.
            "{{ nope }}",
            "{{ .Nope }}",
            "{{ .Alerts.Firing.Firing }}",
            "{{ .CommonLabels.Remove }}",
            "{{ .CommonLabels.Remove \"a\" }}",
            "{{ join \",\" .Receiver }}",
            "{{ join \",\" (list \"a\") }}",
            "{{ template \"does.not.exist\" . }}",
            "{{ index .Alerts 5 }}",
            "{{ dict \"a\" }}",
            "{{ dict 1 2 }}",
            "{{ tz \"Nowhere/Zone\" (index .Alerts 0).StartsAt }}",
            "{{ date \"2006\" .Receiver }}",
            "{{ urlUnescape \"%zz\" }}",
            "{{ reReplaceAll \"(\" \"x\" \"y\" }}",
            "{{ toJson (dict \"x\" (index .Alerts 0).EndsAt) }}",
            "{{ .Receiver.Foo }}",
            "{{ range .Receiver }}{{ end }}",
            "{{ if }}",
            "{{ define \"x\" }}unterminated",
            "{{ (index .Alerts 0).StartsAt.Nope }}",
            "{{ humanizeDuration .Alerts }}",
            "",
            "plain text, no actions",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    cases
}

/// amtool's rendering: `Ok(stdout)` or `Err(message)` (stderr without
/// amtool's `amtool: error: ` prefix).
fn amtool_render(amtool: &Path, glob: &str, data: &Path, text: &str) -> Result<String, String> {
    let defaults = defaults_dir();
    let out = Command::new(amtool)
        .args(["template", "render", "--template.glob"])
        .arg(format!("{}/*.tmpl", defaults.display()))
        .args(["--template.glob", glob, "--template.text", text, "--template.data"])
        .arg(data)
        .output()
        .unwrap_or_else(|e| panic!("run amtool: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        let msg = stderr.strip_prefix("amtool: error: ").unwrap_or_else(|| panic!("amtool failed oddly: {stderr}"));
        let msg = msg.trim_end_matches('\n').replace("template: default.tmpl:", "template: :");
        Err(msg.replace("template: email.tmpl:", "template: :"))
    }
}

/// Where Debian's package puts Alertmanager's default templates.
fn defaults_dir() -> PathBuf {
    reference_bin().join("../share/prometheus/alertmanager")
}

#[test]
fn the_embedded_defaults_are_alertmanagers() {
    for (file, ours) in [("default.tmpl", templates::DEFAULT_TMPL), ("email.tmpl", templates::EMAIL_TMPL)] {
        let path = defaults_dir().join(file);
        let shipped = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(shipped, ours, "{file} differs from Alertmanager's");
    }
}

#[test]
fn renderings_match_amtool_template_render() {
    let amtool = amtool();
    let dir = temp_dir("render");
    std::fs::write(dir.join("team.tmpl"), USER_TMPL).unwrap_or_else(|e| panic!("write: {e}"));
    let glob = format!("{}/*.tmpl", dir.display());
    let ours = NotificationTemplates::new([("team.tmpl", USER_TMPL)]).unwrap_or_else(|e| panic!("user file: {e}"));
    let mut differences = Vec::new();
    let mut compared = 0;
    for (tag, json) in [("mixed", DATA_MIXED), ("sparse", DATA_SPARSE)] {
        let data_path = dir.join(format!("{tag}.json"));
        std::fs::write(&data_path, json).unwrap_or_else(|e| panic!("write: {e}"));
        let data: NotificationData = serde_json::from_str(json).unwrap_or_else(|e| panic!("{tag}: {e}"));
        for text in cases() {
            let want = amtool_render(&amtool, &glob, &data_path, &text);
            let got = ours.execute_text(&text, &data);
            compared += 1;
            if want != got {
                differences.push(format!("data {tag}, text {text:?}:\n  amtool:   {want:?}\n  PromLake: {got:?}"));
            }
        }
    }
    assert!(compared > 150, "only {compared} cases ran");
    assert!(
        differences.is_empty(),
        "{} of {compared} renderings differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

#[test]
fn amtool_detects_a_wrong_rendering() {
    // The oracle can fail: a different user file gives a different answer.
    let amtool = amtool();
    let dir = temp_dir("detect");
    std::fs::write(dir.join("team.tmpl"), USER_TMPL.replace("PromLake Alertmanager", "Other"))
        .unwrap_or_else(|e| panic!("write: {e}"));
    let data_path = dir.join("d.json");
    std::fs::write(&data_path, DATA_MIXED).unwrap_or_else(|e| panic!("write: {e}"));
    let data: NotificationData = serde_json::from_str(DATA_MIXED).unwrap_or_else(|e| panic!("{e}"));
    let text = r#"{{ template "slack.default.username" . }}"#;
    let ours = NotificationTemplates::new([("team.tmpl", USER_TMPL)]).unwrap_or_else(|e| panic!("{e}"));
    let want = amtool_render(&amtool, &format!("{}/*.tmpl", dir.display()), &data_path, text);
    assert_eq!(want.as_deref(), Ok("Other"));
    assert_ne!(want, ours.execute_text(text, &data));
}

#[test]
fn user_file_errors_match_amtool() {
    let amtool = amtool();
    for (i, bad) in ["{{ define \"a\" }}{{ nope }}{{ end }}", "{{ define \"a\" }}x", "{{ end }}"].iter().enumerate() {
        let dir = temp_dir(&format!("bad{i}"));
        std::fs::write(dir.join("bad.tmpl"), bad).unwrap_or_else(|e| panic!("write: {e}"));
        let data_path = dir.join("d.json");
        std::fs::write(&data_path, DATA_SPARSE).unwrap_or_else(|e| panic!("write: {e}"));
        let want = amtool_render(&amtool, &format!("{}/*.tmpl", dir.display()), &data_path, "x");
        let got = NotificationTemplates::new([("bad.tmpl", *bad)]).map(|_| "x".to_string());
        assert!(want.is_err(), "amtool accepted {bad:?}");
        assert_eq!(want, got, "user file {bad:?}");
    }
}
