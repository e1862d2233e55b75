//! The PromQL conformance runner: runs Prometheus's test scripts
//! (`../shared/conformance/promql/`, format in its `FORMAT.md`) against the
//! engine, with the data loaded through the real storage path: `WriteBatch`
//! records appended to an embedded log, applied by the stream workers into
//! Delta tables and their head, and read back through `SampleReader`. Each
//! `clear` starts a fresh workspace. The runner's workspaces keep
//! everything: no retention pass, an out-of-order window of a century.
//!
//! Evals listed in the skip file ([`SKIP_FILE`]) are counted as skipped with
//! their reason; every other eval passes or fails.

pub mod compare;
pub mod nhcb;
pub mod script;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::clock::SystemClock;
use common::limits::{Limits, Overrides};
use common::log::{CleanupPolicy, Log, Record, TopicSpec};
use common::seams::SampleReader;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prost::Message;
use schemas::stream::{Label, Sample, Series as StreamSeries, WriteBatch};
use stream_workers::{AllPartitions, DeltaTableWriter, LakeLocation, StreamWorkers, StreamWorkersConfig};

use crate::engine::{DEFAULT_LOOKBACK_MS, Engine, QueryRequest};
use script::{Command, EvalKind, Value};

/// The skip list, relative to the crate: `<dir>/<file>:<line> <reason>` or
/// `<dir>/<file> <reason>` (the whole file), `#` comments; `<dir>` is
/// `testdata` or `testdata-next`.
pub const SKIP_FILE: &str = "promqltest-skips.txt";

/// Counts of one file or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Evals that passed.
    pub passed: usize,
    /// Evals that failed.
    pub failed: usize,
    /// Evals skipped (listed in the skip file).
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// The skip list.
#[derive(Debug, Default, Clone)]
pub struct Skips {
    files: HashMap<String, String>,
    lines: HashMap<(String, usize), String>,
}

impl Skips {
    /// Parses the skip file's text.
    pub fn parse(text: &str) -> Self {
        let mut s = Skips::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (what, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let reason = reason.trim().to_owned();
            match what.rsplit_once(':').and_then(|(f, n)| n.parse::<usize>().ok().map(|n| (f, n))) {
                Some((file, n)) => {
                    s.lines.insert((file.to_owned(), n), reason);
                }
                None => {
                    s.files.insert(what.to_owned(), reason);
                }
            }
        }
        s
    }

    /// The reason an eval is skipped, if it is.
    pub fn reason(&self, file: &str, line: usize) -> Option<&str> {
        self.files.get(file).or_else(|| self.lines.get(&(file.to_owned(), line))).map(String::as_str)
    }
}

/// A runner over one storage stack (embedded log, lake in a temporary
/// directory, stream workers).
#[derive(Debug)]
pub struct Runner {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    workers: Arc<StreamWorkers>,
    engine: Engine,
    next_workspace: usize,
    /// Print each failure.
    pub verbose: bool,
}

impl Runner {
    /// Starts the storage stack.
    ///
    /// # Errors
    /// When the log or the workers cannot start.
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogConfig::default())?;
        let lake = LakeLocation::from_path(&dir.path().join("lake"))?;
        let writer = Arc::new(DeltaTableWriter::new(lake));
        let mut limits = Limits::default();
        limits.storage.out_of_order_time_window_seconds = 100 * 365 * 86_400;
        let overrides = Arc::new(Overrides::new(&limits));
        let config = StreamWorkersConfig {
            flush_interval_ms: 200,
            fetch_max_wait_ms: 10,
            maintenance_start_delay_ms: u64::MAX / 4,
            maintenance_interval_ms: u64::MAX / 4,
            ..StreamWorkersConfig::default()
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let membership = Arc::new(AllPartitions::new(log.clone() as Arc<dyn Log>));
        let workers = stream_workers::start(
            config,
            log.clone() as Arc<dyn Log>,
            writer,
            overrides,
            Arc::new(SystemClock),
            membership,
            &mut registry,
        )
        .await?;
        let workers = Arc::new(workers);
        let engine = Engine::new(workers.clone() as Arc<dyn SampleReader>).with_delayed_name_removal(true);
        Ok(Self { _dir: dir, log, workers, engine, next_workspace: 0, verbose: false })
    }

    async fn fresh_workspace(&mut self) -> anyhow::Result<(String, String)> {
        self.next_workspace += 1;
        let ws = format!("ws-00000000-0000-4000-8000-{:012}", self.next_workspace);
        let topic = schemas::topics::samples_topic(&ws);
        let spec =
            TopicSpec { partitions: 1, cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(86_400) } };
        self.log.ensure_topic(&topic, spec).await?;
        self.workers.watch_workspace(&ws, &topic).await?;
        Ok((ws, topic))
    }

    /// Runs one script file; prints a line per failure when verbose.
    ///
    /// # Errors
    /// When the script does not parse or the storage fails.
    pub async fn run_file(&mut self, path: &Path, skips: &Skips) -> anyhow::Result<Counts> {
        // `<dir>/<file>`: both snapshots have files of the same names.
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let dir = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
        let name = format!("{dir}/{file}");
        let text = std::fs::read_to_string(path)?;
        let commands = script::parse_script(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let mut counts = Counts::default();
        let (mut ws, mut topic) = self.fresh_workspace().await?;
        let mut loaded = false;
        for cmd in commands {
            match cmd {
                Command::Clear => {
                    if loaded {
                        (ws, topic) = self.fresh_workspace().await?;
                        loaded = false;
                    }
                }
                Command::Load { interval_ms, mut series, nhcb, .. } => {
                    if nhcb {
                        // The classic histograms also as custom-bucket ones.
                        let converted = nhcb::convert(&series);
                        series.extend(converted);
                    }
                    self.load(&ws, &topic, interval_ms, &series).await?;
                    loaded = true;
                }
                Command::Eval(eval) => {
                    if let Some(reason) = skips.reason(&name, eval.line) {
                        counts.skipped += 1;
                        if self.verbose {
                            println!("  SKIP {name}:{} {}: {reason}", eval.line, eval.expr);
                        }
                        continue;
                    }
                    match self.eval(&ws, &eval).await {
                        Ok(()) => counts.passed += 1,
                        Err(why) => {
                            counts.failed += 1;
                            if self.verbose {
                                println!("  FAIL {name}:{} {}: {why}", eval.line, eval.expr);
                            }
                        }
                    }
                }
            }
        }
        Ok(counts)
    }

    async fn load(&self, ws: &str, topic: &str, interval_ms: i64, series: &[script::SeriesLine]) -> anyhow::Result<()> {
        let mut out = Vec::new();
        for s in series {
            let labels: Vec<Label> =
                s.labels.iter().map(|(n, v)| Label { name: n.clone(), value: v.clone() }).collect();
            let series_id = schemas::labels::series_id(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
            let mut samples = Vec::new();
            let mut histograms = Vec::new();
            for (k, v) in s.values.iter().enumerate() {
                let t = k as i64 * interval_ms;
                match v {
                    Some(Value::Float(f)) => samples.push(Sample { timestamp_ms: t, value: *f, start_timestamp_ms: 0 }),
                    Some(Value::Stale) => samples.push(Sample {
                        timestamp_ms: t,
                        value: f64::from_bits(schemas::labels::STALE_NAN_BITS),
                        start_timestamp_ms: 0,
                    }),
                    Some(Value::Histogram(h)) => histograms.push(stream_histogram(h, t)),
                    None => {}
                }
            }
            out.push(StreamSeries { labels, series_id, samples, histograms, exemplars: Vec::new() });
        }
        // The record's time is when it was written, as the gateway stamps it
        // (log retention and the dedup horizon run on it), whatever the
        // samples' times.
        let now = common::clock::Clock::now_ms(&SystemClock);
        let batch = WriteBatch {
            workspace_id: ws.to_owned(),
            received_at_ms: now,
            protocol_version: 1,
            series: out,
            metadata: vec![],
        };
        let record = Record { key: None, value: Some(Bytes::from(batch.encode_to_vec())), timestamp_ms: now };
        let receipt = self.log.append(topic, 0, vec![record]).await?;
        self.workers
            .wait_for_position(ws, &vec![(0, receipt.last_offset)], Duration::from_secs(30))
            .await
            .map_err(|e| anyhow::anyhow!("waiting for the load: {e}"))?;
        Ok(())
    }

    async fn eval(&self, ws: &str, eval: &script::Eval) -> Result<(), String> {
        let req = match eval.kind {
            EvalKind::Instant { at_ms } => QueryRequest {
                query: eval.expr.clone(),
                start_ms: at_ms,
                end_ms: at_ms,
                step_ms: 1_000,
                lookback_ms: DEFAULT_LOOKBACK_MS,
                subquery_step_ms: crate::engine::DEFAULT_SUBQUERY_STEP_MS,
                instant: true,
                limits: common::limits::QueryLimits::default(),
                timeout: None,
            },
            EvalKind::Range { start_ms, end_ms, step_ms } => QueryRequest {
                query: eval.expr.clone(),
                start_ms,
                end_ms,
                step_ms,
                lookback_ms: DEFAULT_LOOKBACK_MS,
                subquery_step_ms: crate::engine::DEFAULT_SUBQUERY_STEP_MS,
                instant: false,
                limits: common::limits::QueryLimits::default(),
                timeout: None,
            },
        };
        let result = self.engine.query_annotated(ws, &req).await;
        compare::check(eval, result)
    }
}

/// The `.test` files of a directory, sorted.
///
/// # Errors
/// When the directory cannot be read.
pub fn test_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every script of `dirs`, printing a line per file and the total as
/// the last line; returns the total.
///
/// # Errors
/// When a script does not parse or the storage fails.
pub async fn run_dirs(dirs: &[PathBuf], skips: &Skips, verbose: bool) -> anyhow::Result<Counts> {
    let mut total = Counts::default();
    for dir in dirs {
        let mut runner = Runner::new().await?;
        runner.verbose = verbose;
        for file in test_files(dir)? {
            let counts = runner.run_file(&file, skips).await?;
            println!("{}: {counts}", file.display());
            total.add(counts);
        }
    }
    println!("{total}");
    Ok(total)
}

/// A script's histogram literal as the stream's (float) histogram at `t`.
pub fn stream_histogram(h: &script::HistogramLit, t: i64) -> schemas::stream::Histogram {
    use schemas::stream::histogram::{Count, ResetHint, ZeroCount};
    use schemas::stream::{BucketSpan, Histogram};
    let spans = |offset: i32, counts: &[f64]| {
        if counts.is_empty() { Vec::new() } else { vec![BucketSpan { offset, length: counts.len() as u32 }] }
    };
    let reset_hint = match h.counter_reset_hint.as_deref() {
        Some("reset") => ResetHint::Yes,
        Some("not_reset") => ResetHint::No,
        Some("gauge") => ResetHint::Gauge,
        _ => ResetHint::Unknown,
    };
    Histogram {
        count: Some(Count::CountFloat(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.z_bucket_w,
        zero_count: Some(ZeroCount::ZeroCountFloat(h.z_bucket)),
        negative_spans: spans(h.n_offset, &h.n_buckets),
        negative_deltas: Vec::new(),
        negative_counts: h.n_buckets.clone(),
        positive_spans: spans(h.offset, &h.buckets),
        positive_deltas: Vec::new(),
        positive_counts: h.buckets.clone(),
        reset_hint: reset_hint as i32,
        timestamp_ms: t,
        custom_values: h.custom_values.clone(),
        start_timestamp_ms: 0,
    }
}
