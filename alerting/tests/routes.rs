//! The routing tree against the real `amtool config routes test` 0.33.1:
//! for a configuration exercising nested routes, `continue`, `match`,
//! `match_re` and `matchers` (both syntaxes, negations, regular
//! expressions, missing labels), every label set is routed to the same
//! receivers in the same order; and the tree's matcher texts are those
//! `amtool config routes` prints.

use std::collections::BTreeMap;
use std::process::Command;

use alerting::routing::RouteNode;
use common::testing::reference_bin;

const CONFIG: &str = r#"route:
  receiver: default
  group_by: [alertname]
  routes:
    - receiver: db
      matchers: ['service=~"mysql|postgres"']
      routes:
        - receiver: db-pager
          matchers: [severity=page]
          continue: true
        - receiver: db-ticket
          match_re: {severity: 'ticket|warn.*'}
    - receiver: frontend
      match: {team: frontend}
      continue: true
    - receiver: frontend-eu
      matchers: ['team="frontend"', 'region!~"us-.*"']
    - receiver: catch-empty
      matchers: ['env=""']
      routes:
        - receiver: nested
          matchers: ['{zone="a", rack!="1"}']
receivers:
  - name: default
  - name: db
  - name: db-pager
  - name: db-ticket
  - name: frontend
  - name: frontend-eu
  - name: catch-empty
  - name: nested
"#;

const LABEL_SETS: &[&[(&str, &str)]] = &[
    &[("service", "mysql"), ("severity", "page"), ("env", "prod")],
    &[("service", "postgres"), ("severity", "warning"), ("env", "prod")],
    &[("service", "postgres"), ("severity", "info"), ("env", "prod")],
    &[("service", "mysqlx"), ("env", "prod")],
    &[("team", "frontend"), ("region", "eu-west"), ("env", "prod")],
    &[("team", "frontend"), ("region", "us-east"), ("env", "prod")],
    &[("team", "frontend"), ("env", "prod")],
    &[("team", "backend")],
    &[("zone", "a"), ("rack", "2")],
    &[("zone", "a"), ("rack", "1")],
    &[("zone", "a")],
    &[("service", "mysql"), ("severity", "page")],
];

fn amtool() -> std::path::PathBuf {
    let path = reference_bin().join("amtool");
    assert!(path.is_file(), "amtool not found at {} (set PROMLAKE_REF_BIN)", path.display());
    path
}

#[test]
fn label_sets_reach_the_receivers_amtool_names() {
    let dir = std::env::temp_dir().join(format!("promlake-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let file = dir.join("config.yml");
    std::fs::write(&file, CONFIG).unwrap_or_else(|e| panic!("write: {e}"));
    let tree = RouteNode::new(&amconfig::parse_config(CONFIG).unwrap_or_else(|e| panic!("{e}")).route);
    let mut differences = Vec::new();
    for set in LABEL_SETS {
        let labels: BTreeMap<String, String> = set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let args: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let out = Command::new(amtool())
            .args(["config", "routes", "test", "--config.file"])
            .arg(&file)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("amtool: {e}"));
        let want = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let got: Vec<&str> = tree.matches(&labels).iter().map(|r| r.opts.receiver.as_str()).collect();
        if want != got.join(",") {
            differences.push(format!("{args:?}: amtool {want:?}, PromLake {:?}", got.join(",")));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn matcher_texts_are_those_amtool_prints() {
    let dir = std::env::temp_dir().join(format!("promlake-routes-tree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let file = dir.join("config.yml");
    std::fs::write(&file, CONFIG).unwrap_or_else(|e| panic!("write: {e}"));
    let out = Command::new(amtool())
        .args(["config", "routes", "--config.file"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("amtool: {e}"));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let tree = RouteNode::new(&amconfig::parse_config(CONFIG).unwrap_or_else(|e| panic!("{e}")).route);
    let mut ours = Vec::new();
    tree.walk(&mut |r| {
        if !r.matchers.is_empty() {
            ours.push(alerting::routing::matchers_string(&r.matchers));
        }
    });
    // amtool prints each node's matchers, in tree order.
    let theirs: Vec<String> = printed
        .lines()
        .filter_map(|l| l.find('{').map(|i| l[i..].split("  ").next().unwrap_or_default().to_owned()))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(ours, theirs, "amtool printed:\n{printed}");
    assert_eq!(ours.len(), 7);
}
