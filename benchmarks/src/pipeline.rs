//! PromLake's ingestion pipeline in this process, for the storage and worker
//! benchmarks: the real embedded log, the real [`Gateway`] (decode,
//! validate, limit, append durably) and the real stream workers writing
//! Delta tables, wired as `promlake serve` wires them, minus HTTP.
//!
//! ```text
//! Pool ──► Gateway::remote_write (C tasks, chunks in round order) ──► EmbeddedLog
//!                                                                      │
//!            StreamWorkers (started after, or alongside) ◄──────────────┘
//!                 │ wait_for_offset(last offset of every partition)
//!                 ▼
//!            <dir>/lake/<workspace>/{samples,series,metadata}
//! ```
//!
//! Running the gateway and then the workers one after the other on the same
//! cores measures each alone: the gateway's ingest rate, then how fast the
//! workers turn what it stored into committed tables.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::arn::ArnScheme;
use common::clock::{Clock, SystemClock};
use common::control::{ControlPlaneStore, MemoryControlStore};
use common::limits::{Limits, Overrides};
use common::log::{CleanupPolicy, Log, TopicSpec};
use common::workspace::{WorkspaceRecord, WorkspaceStatusCode};
use ingest_gateway::Gateway;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use prometheus_client::registry::Registry;
use stream_workers::{DeltaTableWriter, LakeLocation, StreamWorkers, StreamWorkersConfig};

use crate::loadgen::{Pool, content_type};
use crate::targets::{MachineCpu, machine_cpu, proc_usage};

/// The workspace every in-process benchmark writes to.
pub const WORKSPACE_ID: &str = "ws-00000000-0000-4000-8000-00000000be4c";

/// Partitions of the workspace topic: `promlake serve`'s default
/// (`[workspaces] partitions`).
pub const PARTITIONS: u32 = 4;

/// The log, gateway and lake of one benchmark run, in a temp directory.
#[derive(Debug)]
pub struct Pipeline {
    dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    gateway: Arc<Gateway>,
    overrides: Arc<Overrides>,
    topic: String,
    lake: LakeLocation,
}

/// CPU and wall time of one phase of this process.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Wall time.
    pub elapsed: Duration,
    /// CPU seconds of this process (user + system).
    pub cpu_seconds: f64,
    /// CPU seconds of the whole machine, all processes.
    pub machine: MachineCpu,
}

impl Phase {
    /// Cores busy in this process on average.
    pub fn cores(&self) -> f64 {
        self.cpu_seconds / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Cores other processes took on average.
    pub fn other_cores(&self) -> f64 {
        ((self.machine.busy - self.cpu_seconds) / self.elapsed.as_secs_f64().max(1e-9)).max(0.0)
    }
}

/// Measures `f` as one [`Phase`].
pub async fn measure<T>(f: impl std::future::Future<Output = T>) -> (T, Phase) {
    let (cpu0, m0, t0) = (proc_usage(std::process::id()).0, machine_cpu(), Instant::now());
    let out = f.await;
    let phase = Phase {
        elapsed: t0.elapsed(),
        cpu_seconds: proc_usage(std::process::id()).0 - cpu0,
        machine: machine_cpu().since(&m0),
    };
    (out, phase)
}

impl Pipeline {
    /// A fresh log with one active workspace (ingestion rate limit raised out
    /// of the way) and a lake, under `tmp_root` (the system temp dir when
    /// `None`).
    ///
    /// # Errors
    /// When the directory or the log cannot be created.
    pub async fn new(tmp_root: Option<&Path>) -> anyhow::Result<Pipeline> {
        let dir = match tmp_root {
            Some(root) => tempfile::Builder::new().prefix("promlake-pipeline").tempdir_in(root),
            None => tempfile::Builder::new().prefix("promlake-pipeline").tempdir(),
        }
        .context("creating a temp directory")?;
        let log = EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogConfig::default())
            .context("opening the embedded log")?;
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "000000000000".into() };
        let topic = schemas::topics::samples_topic(WORKSPACE_ID);
        let record = WorkspaceRecord {
            workspace_id: WORKSPACE_ID.into(),
            arn: arns.workspace(WORKSPACE_ID),
            alias: Some("bench".into()),
            status: WorkspaceStatusCode::Active,
            created_at: 0.0,
            tags: Default::default(),
            client_token: None,
            samples_topic: topic.clone(),
            delete_client_token: None,
            configuration: Default::default(),
        };
        // As the control plane creates a workspace topic (24 h retention).
        let spec = TopicSpec {
            partitions: PARTITIONS,
            cleanup: CleanupPolicy::Delete { retention: Duration::from_secs(24 * 3600) },
        };
        log.ensure_topic(&topic, spec).await.context("creating the workspace topic")?;
        let control = Arc::new(MemoryControlStore::default());
        control.put(&record.arn, serde_json::to_value(&record)?).await.context("storing the workspace")?;
        let mut limits = Limits::default();
        limits.ingest.ingestion_rate = 1e9;
        limits.ingest.ingestion_burst_size = u32::MAX;
        let overrides = Arc::new(Overrides::new(&limits));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let gateway =
            Arc::new(Gateway::new(log.clone(), control, overrides.clone(), arns, clock, &mut Registry::default()));
        let lake = LakeLocation::from_path(&dir.path().join("lake")).context("the lake location")?;
        Ok(Pipeline { dir, log, gateway, overrides, topic, lake })
    }

    /// The lake's root directory.
    pub fn lake_dir(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// The lake.
    pub fn lake(&self) -> &LakeLocation {
        &self.lake
    }

    /// The log's directory.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Sends every request of `pool` through the gateway, `concurrency`
    /// chunks at a time, each chunk's rounds in order; returns the samples
    /// the gateway wrote.
    ///
    /// # Errors
    /// The first request the gateway refused.
    pub async fn ingest(&self, pool: &Arc<Pool>, concurrency: usize) -> anyhow::Result<u64> {
        let ready: Arc<Mutex<VecDeque<(usize, usize)>>> =
            Arc::new(Mutex::new((0..pool.chunks.len()).map(|c| (c, 0)).collect()));
        let ct = content_type(pool.workload.protocol);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (ready, pool, gateway) = (ready.clone(), pool.clone(), self.gateway.clone());
            tasks.spawn(async move {
                let mut written = 0u64;
                loop {
                    let next = ready.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((chunk, round)) = next else { return Ok(written) };
                    let request = &pool.chunks[chunk][round];
                    match gateway.remote_write(WORKSPACE_ID, Some(ct), Some("snappy"), &request.body).await {
                        Ok(outcome) => written += outcome.written.samples,
                        Err((e, _)) => bail!("the gateway refused chunk {chunk} round {round}: {e}"),
                    }
                    if round + 1 < pool.chunks[chunk].len() {
                        ready.lock().unwrap_or_else(|p| p.into_inner()).push_back((chunk, round + 1));
                    }
                }
            });
        }
        let mut written = 0;
        while let Some(joined) = tasks.join_next().await {
            written += joined.context("an ingest task panicked")??;
        }
        Ok(written)
    }

    /// The next offset of every partition (its high watermark).
    ///
    /// # Errors
    /// When the log cannot say.
    pub async fn high_watermarks(&self) -> anyhow::Result<Vec<u64>> {
        let mut out = Vec::new();
        for p in 0..PARTITIONS {
            out.push(self.log.offsets(&self.topic, p).await?.high_watermark);
        }
        Ok(out)
    }

    /// Starts the stream workers over the log and lake and watches the
    /// workspace (as `promlake serve` does at start).
    ///
    /// # Errors
    /// When the workspace topic cannot be read.
    pub async fn start_workers(
        &self,
        config: StreamWorkersConfig,
        registry: &mut Registry,
    ) -> anyhow::Result<StreamWorkers> {
        let writer =
            Arc::new(DeltaTableWriter::new(self.lake.clone()).with_checkpoint_interval(config.checkpoint_interval));
        let membership = Arc::new(stream_workers::AllPartitions::new(self.log.clone() as Arc<dyn Log>));
        let workers = stream_workers::start(
            config,
            self.log.clone(),
            writer,
            self.overrides.clone(),
            Arc::new(SystemClock),
            membership,
            registry,
        )
        .await?;
        workers.watch_workspace(WORKSPACE_ID, &self.topic).await?;
        Ok(workers)
    }

    /// Waits until every offset below `high_watermarks` is committed to the
    /// lake.
    ///
    /// # Errors
    /// A worker stopped, or `timeout` passed.
    pub async fn wait_committed(
        &self,
        workers: &StreamWorkers,
        high_watermarks: &[u64],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        for (p, hw) in high_watermarks.iter().enumerate() {
            if *hw > 0 {
                workers.wait_for_offset(WORKSPACE_ID, p as u32, hw - 1, timeout).await?;
            }
        }
        Ok(())
    }

    /// Closes the log.
    pub async fn close(&self) {
        let _ = self.log.close().await;
    }
}
