//! Stream workers: consume each workspace's log topic and append its samples
//! to the workspace's Delta Lake tables exactly once, keep the fresh-data
//! head that the query path reads, enforce retention, and evaluate recording
//! and alerting rules.
//!
//! ```text
//! log partition ──► head (in memory) ──► Delta commit with app transaction
//!                     │                    (app id "<topic>/<partition>",
//!                     └─► query path        version = last log offset)
//! ```
//!
//! Not built yet: see the stream-workers and ruler issues. Until then the log
//! keeps every acknowledged record (its retention deletes nothing below the
//! lowest offset a worker has committed, and no worker commits yet).
