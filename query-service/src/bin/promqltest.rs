//! `promqltest <dir>...`: runs Prometheus's PromQL test scripts of each
//! directory through PromLake's storage path and engine; prints a line per
//! file and, last, `N passed, N failed, N skipped`. `-v` prints each failed
//! or skipped eval. Skips are read from `query-service/promqltest-skips.txt`.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut verbose = false;
    let mut dirs = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "-v" {
            verbose = true;
        } else {
            dirs.push(PathBuf::from(arg));
        }
    }
    if dirs.is_empty() {
        anyhow::bail!("usage: promqltest [-v] <dir>...");
    }
    let skips_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(query_service::promqltest::SKIP_FILE);
    let skips = query_service::promqltest::Skips::parse(&std::fs::read_to_string(&skips_path).unwrap_or_default());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(query_service::promqltest::run_dirs(&dirs, &skips, verbose))?;
    Ok(())
}
