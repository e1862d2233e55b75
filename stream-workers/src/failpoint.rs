//! Failpoints: **a testing hook**, for the crash tests of the commit path.
//!
//! The commit path calls [`hit`] with a name at each point where a crash
//! matters for exactly-once. Nothing happens unless the environment variable
//! [`ENV`] (`PROMLAKE_FAILPOINTS`) arms the point: it holds
//! `name=N[,name=N…]` (a bare `name` means `name=1`), and the process
//! aborts (`std::process::abort()`: no destructors, no flush, like SIGKILL)
//! the `N`-th time the point is reached. For example
//! `PROMLAKE_FAILPOINTS=after_parquet_write=3` kills the process right after
//! the third Parquet write, before that write's Delta commit.
//!
//! The variable is read once, at the first [`hit`]; unset (production), a
//! hit costs one `OnceLock` read and an empty-slice check.
//!
//! | name                    | where                                                                      |
//! |-------------------------|----------------------------------------------------------------------------|
//! | `after_parquet_write`   | a table's Parquet files are written, not committed (`DeltaTableWriter::stage`) |
//! | `after_samples_commit`  | the `samples` commit of a flush is done, `series` and `metadata` are not   |
//! | `after_series_commit`   | the `series` commit of a flush is done, `metadata` is not                  |
//! | `after_metadata_commit` | every table of a flush is committed                                        |
//! | `before_offset_commit`  | every table of a flush is committed, the log consumer offset is not stored |
//!
//! A table with nothing to commit in a flush skips its commit, and its
//! `after_*_commit` point with it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::tables::TableKind;

/// The environment variable that arms failpoints.
pub(crate) const ENV: &str = "PROMLAKE_FAILPOINTS";

/// Every failpoint name [`hit`] is called with.
pub(crate) const NAMES: [&str; 5] = [
    "after_parquet_write",
    "after_samples_commit",
    "after_series_commit",
    "after_metadata_commit",
    "before_offset_commit",
];

#[derive(Debug)]
struct Armed {
    name: String,
    /// Abort on this hit (1-based).
    at: u64,
    hits: AtomicU64,
}

static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();

/// Reaches the failpoint `name`: aborts the process if it is armed and this
/// is the hit it is armed for.
pub(crate) fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| parse(std::env::var(ENV).as_deref().unwrap_or("")));
    for point in armed.iter().filter(|p| p.name == name) {
        if point.hits.fetch_add(1, Ordering::Relaxed) + 1 == point.at {
            eprintln!("failpoint {name} reached (hit {}): aborting the process ({ENV})", point.at);
            std::process::abort();
        }
    }
}

/// The failpoint after a table's commit: `after_<table>_commit`.
pub(crate) fn after_commit(kind: TableKind) {
    hit(match kind {
        TableKind::Samples => "after_samples_commit",
        TableKind::Series => "after_series_commit",
        TableKind::Metadata => "after_metadata_commit",
    });
}

fn parse(spec: &str) -> Vec<Armed> {
    let mut armed = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, at) = match item.split_once('=') {
            Some((name, n)) => (name.trim(), n.trim().parse::<u64>().ok().filter(|&n| n > 0)),
            None => (item, Some(1)),
        };
        match at {
            Some(at) if NAMES.contains(&name) => {
                armed.push(Armed { name: name.to_owned(), at, hits: AtomicU64::new(0) });
            }
            _ => tracing::warn!(item, known = ?NAMES, "Ignoring a malformed or unknown failpoint in {ENV}."),
        }
    }
    if !armed.is_empty() {
        tracing::warn!(spec, "Failpoints armed ({ENV}): this process will abort on purpose.");
    }
    armed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_counts_and_rejects_unknown_names() {
        let armed =
            parse("after_parquet_write=3, before_offset_commit ,nope=2,after_samples_commit=0,after_series_commit=x");
        let got: Vec<_> = armed.iter().map(|a| (a.name.as_str(), a.at)).collect();
        assert_eq!(got, [("after_parquet_write", 3), ("before_offset_commit", 1)]);
        assert!(parse("").is_empty());
    }
}
