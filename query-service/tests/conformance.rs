//! The PromQL conformance scripts (`../shared/conformance/promql/testdata/`)
//! through the real storage path, as an ordinary test: the totals are
//! printed, and the test fails if fewer evals pass than the count recorded
//! in `promqltest-expected.txt` (raise it as the engine improves).

use std::path::PathBuf;

use query_service::promqltest::{SKIP_FILE, Skips, run_dirs};

fn expected_passed(dir: &str) -> usize {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("promqltest-expected.txt");
    let text = std::fs::read_to_string(&path).expect("promqltest-expected.txt");
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            l.split_once(char::is_whitespace).filter(|(d, _)| *d == dir).map(|(_, n)| n.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no expected count for {dir}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_testdata_passes_at_least_the_recorded_count() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/promql");
    let skips =
        Skips::parse(&std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SKIP_FILE)).unwrap());
    let total = run_dirs(&[root.join("testdata")], &skips, false).await.unwrap();
    let expected = expected_passed("testdata");
    assert!(
        total.passed >= expected,
        "conformance went down: {} passed, {expected} expected (promqltest-expected.txt)",
        total.passed
    );
}
