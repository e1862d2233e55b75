//! For tests and benchmarks: where the tools they start are. Each comes
//! from its environment variable (set by `scripts/test`), else from the
//! last line printed by its idempotent set-up script, so tests also run
//! under plain `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The reference binaries' folder (Prometheus, promtool, Alertmanager, …):
/// `$PROMLAKE_REF_BIN`, else what `shared/tools/fetch-reference-binaries`
/// prints.
pub fn reference_bin() -> PathBuf {
    env_or_setup_script("PROMLAKE_REF_BIN", "../shared/tools/fetch-reference-binaries")
}

/// The path in the environment variable `var`, or the last line printed
/// by `script` (relative to the repository's root).
///
/// # Panics
///
/// When the script cannot run or fails: a test cannot go on without it.
pub fn env_or_setup_script(var: &str, script: &str) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join(script);
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim())
}
