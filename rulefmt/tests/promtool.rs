//! `rulefmt::parse` accepts exactly the rules files the real
//! `promtool check rules` (Prometheus 3.5.3) accepts.

use std::path::PathBuf;
use std::process::Command;

/// The reference binaries' folder: `$PROMLAKE_REF_BIN` (set by
/// `scripts/test`), else the last line the shared fetch tool prints.
use common::testing::reference_bin;

fn promtool() -> PathBuf {
    let path = reference_bin().join("promtool");
    assert!(
        path.exists(),
        "promtool not found at {} (scripts/test installs the reference binaries and sets PROMLAKE_REF_BIN)",
        path.display()
    );
    path
}

/// Each case is a rules file; the name says what it exercises.
const CASES: &[(&str, &str)] = &[
    ("empty file", ""),
    ("no groups", "groups: []\n"),
    (
        "recording and alerting",
        r#"groups:
  - name: g
    interval: 30s
    query_offset: 10s
    limit: 5
    labels: {team: a}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 10m
        labels: {severity: page, instance: "{{ $labels.instance }}"}
        annotations:
          summary: '{{ $labels.instance }} of {{ $labels.job }} is down: {{ $value | humanize }}'
          table: '{{ range query "up" }}{{ .Labels.instance }} {{ .Value }}{{ end }}'
          printf: '{{ printf "%.2f" $value }} {{ humanizeDuration 3600 }} {{ $externalLabels.x }} {{ $externalURL }}'
"#,
    ),
    ("empty group name", "groups:\n  - name: ''\n    rules: []\n"),
    ("repeated group", "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n"),
    ("unknown group field", "groups:\n  - name: a\n    rulez: []\n"),
    ("unknown rule field", "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        exp: up\n"),
    ("unknown top-level field", "groupz: []\n"),
    ("record and alert", "groups:\n  - name: a\n    rules:\n      - record: r\n        alert: A\n        expr: up\n"),
    ("neither record nor alert", "groups:\n  - name: a\n    rules:\n      - expr: up\n"),
    ("no expr", "groups:\n  - name: a\n    rules:\n      - record: r\n"),
    ("bad expr", "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: sum(up\n"),
    ("bad expr: unknown function", "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: nosuch(up)\n"),
    (
        "bad expr: range where instant",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up[5m] + 1\n",
    ),
    (
        "expr: duration arithmetic",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: rate(up[5m]) offset 1m\n",
    ),
    (
        "for on a recording rule",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
    ),
    (
        "keep_firing_for on a recording rule",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        keep_firing_for: 1m\n",
    ),
    (
        "annotations on a recording rule",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        annotations: {a: b}\n",
    ),
    ("braces in record", "groups:\n  - name: a\n    rules:\n      - record: 'r{a=\"b\"}'\n        expr: up\n"),
    ("UTF-8 record name", "groups:\n  - name: a\n    rules:\n      - record: 'my.metric name'\n        expr: up\n"),
    (
        "__name__ label",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        labels: {__name__: x}\n",
    ),
    (
        "UTF-8 label name",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        labels: {'a.b': x}\n",
    ),
    ("group __name__ label", "groups:\n  - name: a\n    labels: {__name__: x}\n    rules: []\n"),
    ("bad interval", "groups:\n  - name: a\n    interval: 1.5m\n    rules: []\n"),
    ("bad for", "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        for: 5\n"),
    ("bad query_offset", "groups:\n  - name: a\n    query_offset: soon\n    rules: []\n"),
    (
        "undefined template function",
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ nosuch 1 }}'}\n",
    ),
    (
        "unclosed template action",
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ range query \"up\" }}x'}\n",
    ),
    (
        "bad template in an alert label",
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels: {s: '{{ if }}'}\n",
    ),
    (
        "undefined template variable",
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ $nope }}'}\n",
    ),
    (
        "templates on a recording rule's labels are not parsed",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        labels: {s: '{{ nosuch }}'}\n",
    ),
    ("groups is a map", "groups: {a: b}\n"),
    ("duplicate key", "groups:\n  - name: a\n    labels: {x: '1', x: '2'}\n    rules: []\n"),
    (
        "numbers as strings",
        "groups:\n  - name: 7\n    rules:\n      - record: r\n        expr: 1\n        labels: {a: 1.50}\n",
    ),
    ("null rules", "groups:\n  - name: a\n    rules:\n"),
];

#[test]
fn verdicts_match_promtool_check_rules() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    for (i, (name, yaml)) in CASES.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(&promtool).args(["check", "rules"]).arg(&path).output().unwrap();
        let theirs = out.status.success();
        let ours = rulefmt::parse(yaml.as_bytes());
        if theirs != ours.is_ok() {
            mismatches.push(format!(
                "{name}: promtool {} ({}), rulefmt {:?}",
                if theirs { "accepts" } else { "refuses" },
                String::from_utf8_lossy(&out.stderr).trim(),
                ours.err()
            ));
        }
    }
    assert!(mismatches.is_empty(), "verdicts differ:\n{}", mismatches.join("\n"));
}
