//! `promlake rules test` against the real `promtool test rules` 3.5.3: for
//! every test file in `tests/data/` (passing ones and ones written to
//! fail), the same verdict and byte for byte the same report on stdout and
//! stderr; the same with `--run`.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::testing::reference_bin;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// promtool's exit status, stdout and stderr.
fn promtool(args: &[&str], file: &Path) -> (bool, String, String) {
    let out = Command::new(reference_bin().join("promtool"))
        .args(["test", "rules"])
        .args(args)
        .arg(file)
        .output()
        .expect("run promtool");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

async fn promlake(run: &[String], file: &Path) -> (bool, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let passed = rules_test::run(&[file.to_owned()], run, &mut out, &mut err).await;
    (passed, String::from_utf8_lossy(&out).into(), String::from_utf8_lossy(&err).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_file_gets_promtools_verdict_and_report() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let (mut passing, mut failing) = (0, 0);
    for file in &files {
        let want = promtool(&[], file);
        let got = promlake(&[], file).await;
        assert_eq!(got.0, want.0, "verdict on {}: promtool said {}", file.display(), want.2);
        assert_eq!(got.2, want.2, "stderr on {}", file.display());
        assert_eq!(got.1, want.1, "stdout on {}", file.display());
        if want.0 { passing += 1 } else { failing += 1 }
    }
    assert!(passing >= 4 && failing >= 3, "{passing} passing, {failing} failing files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_selects_test_groups_as_promtool_does() {
    let file = data().join("templates.test.yml");
    for run in [vec!["^templates$".to_owned()], vec!["nothing".to_owned(), "skipped".to_owned()], vec![]] {
        let args: Vec<String> = run.iter().flat_map(|r| ["--run".to_owned(), r.clone()]).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = promtool(&args, &file);
        assert_eq!(promlake(&run, &file).await, want, "--run {run:?}");
    }
    // Several files in one run: each reported, the run fails if one does.
    let files = [data().join("basic.test.yml"), data().join("failing.test.yml")];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(!rules_test::run(&files, &[], &mut out, &mut err).await);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("  SUCCESS\n\n"), "{out}");
}

#[tokio::test]
async fn unreadable_and_malformed_files_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yml");
    let (passed, _, err) = promlake(&[], &missing).await;
    assert!(!passed);
    assert_eq!(err, format!("  FAILED:\nopen {}: no such file or directory\n", missing.display()));
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "tests:\n  - unknown_field: 1\n").unwrap();
    let (passed, _, err) = promlake(&[], &bad).await;
    assert!(!passed);
    assert!(err.contains("unknown field `unknown_field`"), "{err}");
    // A rules file that does not parse: its problems are the failure.
    std::fs::write(dir.path().join("r.yml"), "groups:\n  - name: g\n    rules:\n      - record: x\n").unwrap();
    let t = dir.path().join("t.yml");
    std::fs::write(&t, "rule_files: [r.yml, nothing*.yml]\ntests:\n  - input_series: []\n").unwrap();
    let (passed, _, err) = promlake(&[], &t).await;
    assert!(!passed);
    assert!(err.contains("WARNING: no file match pattern") && err.contains("r.yml:"), "{err}");
}
