//! The ingest gateway: Prometheus remote write in, durable log records out.
//!
//! ```text
//! POST /workspaces/{id}/api/v1/remote_write
//!   │ workspace lookup (ControlPlaneStore) ─────────────── 404 unknown / not active
//!   │ Content-Type / Content-Encoding ───────────────────── 415
//!   │ body ≤ max_request_body_bytes, snappy ≤ max_decompressed_bytes ── 413
//!   │ protobuf decode (RW 1.0 or 2.0) ───────────────────── 400, nothing written
//!   │ validate (labels, limits, future timestamps) ──────── invalid series dropped
//!   │ ingestion rate limit (governor) ───────────────────── 429 + Retry-After, nothing written
//!   │ active series per label set (limitsPerLabelSet) ───── 429 + Retry-After, nothing written
//!   ▼ append: one WriteBatch per partition (series id % partitions), all partitions
//!     concurrently; answer only when every record is durable in the log
//!   204 (or 400 naming the first dropped series), with RW 2.0's
//!   X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written headers
//! ```
//!
//! Guarantees: a 2xx means every accepted sample is durable in the log; a
//! 4xx other than a partial 400 means nothing was written; on 5xx/429 the
//! sender retries, and a retry may duplicate records in the log (the stream
//! workers deduplicate). Duplicate and out-of-order samples are not the
//! gateway's to judge: the stream workers drop them.
//!
//! Limits come from `common::limits::Overrides`, per workspace.
//!
//! [`LogSampleAppender`] writes samples that come from inside PromLake (the
//! ruler's recording rules) to a workspace's log the same way, without the
//! remote-write front (decoding, validation, limits).

mod appender;
mod decode;
mod error;
mod http;
mod limiter;
mod metrics;
mod producer;
mod series_limits;
mod validate;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::limits::Overrides;
use common::log::Log;
use common::workspace::{WorkspaceRecord, is_valid_workspace_id};
use prometheus_client::registry::Registry;

pub use appender::LogSampleAppender;
pub use decode::{DecodedRequest, Protocol, decode, decompress};
pub use error::{Error, Result};
pub use http::router;
pub use producer::partition_of;
pub use validate::{Counts, Reason, Validated, validate};

use crate::limiter::{Denied, IngestionLimiter};
use crate::metrics::Metrics;

/// What a remote write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Items written durably (the `*-Written` headers).
    pub written: Counts,
}

/// The gateway: validates remote writes and appends them to the log.
#[derive(Debug)]
pub struct Gateway {
    log: Arc<dyn Log>,
    control: Arc<dyn ControlPlaneStore>,
    overrides: Arc<Overrides>,
    arns: ArnScheme,
    clock: Arc<dyn Clock>,
    limiter: IngestionLimiter,
    active_series: series_limits::ActiveSeries,
    metrics: Metrics,
    partitions: RwLock<HashMap<String, u32>>,
}

impl Gateway {
    /// A gateway writing to `log`, finding workspaces in `control`.
    pub fn new(
        log: Arc<dyn Log>,
        control: Arc<dyn ControlPlaneStore>,
        overrides: Arc<Overrides>,
        arns: ArnScheme,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Self {
        Self {
            log,
            control,
            overrides,
            arns,
            clock,
            limiter: IngestionLimiter::default(),
            active_series: series_limits::ActiveSeries::default(),
            metrics: Metrics::new(registry),
            partitions: RwLock::new(HashMap::new()),
        }
    }

    /// The workspace, if it exists and accepts writes.
    fn workspace(&self, workspace_id: &str) -> Result<WorkspaceRecord> {
        let not_found = || Error::WorkspaceNotFound(workspace_id.to_owned());
        if !is_valid_workspace_id(workspace_id) {
            return Err(not_found());
        }
        let doc = self.control.get(&self.arns.workspace(workspace_id)).ok_or_else(not_found)?;
        let record: WorkspaceRecord = serde_json::from_value(doc).map_err(|_| not_found())?;
        if record.is_active() { Ok(record) } else { Err(not_found()) }
    }

    async fn partition_count(&self, topic: &str) -> Result<u32> {
        if let Some(n) = self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(topic) {
            return Ok(*n);
        }
        let n = self.log.partition_count(topic).await?;
        self.partitions.write().unwrap_or_else(|p| p.into_inner()).insert(topic.to_owned(), n);
        Ok(n)
    }

    /// Handles one remote-write body (still compressed).
    ///
    /// # Errors
    /// See [`Error`]; [`Error::Invalid`] comes with the outcome of the valid
    /// part, which was written.
    pub async fn remote_write(
        &self,
        workspace_id: &str,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: &[u8],
    ) -> Result<WriteOutcome, (Error, WriteOutcome)> {
        let none = WriteOutcome::default();
        let workspace = self.workspace(workspace_id).map_err(|e| (e, none))?;
        let protocol = Protocol::from_content_type(content_type).map_err(|e| (e, none))?;
        decode::check_content_encoding(content_encoding).map_err(|e| (e, none))?;
        let limits = self.overrides.ingest(workspace_id);
        let raw = decompress(body, limits.max_decompressed_bytes).map_err(|e| (e, none))?;
        let decoded = decode(protocol, &raw).map_err(|e| (e, none))?;
        drop(raw);
        let received = decoded.series.iter().fold(Counts::default(), |mut c, s| {
            c.add(Counts::of(s));
            c
        });
        Metrics::count(&self.metrics.received, workspace_id, received);

        let now_ms = self.clock.now_ms();
        let validated = validate(decoded.series, &limits, now_ms);
        for (reason, counts) in &validated.discarded {
            self.metrics.discard(workspace_id, reason.id(), *counts);
        }
        let accepted = validated.accepted;
        let (rate, burst) = self.overrides.ingestion_rate(workspace_id);
        let items = accepted.total() + decoded.metadata.len() as u64;
        if let Err(denied) = self.limiter.check(workspace_id, rate, burst, items) {
            self.metrics.discard(workspace_id, Reason::RateLimited.id(), accepted);
            let retry_after = match denied {
                Denied::RetryAfter(d) => d,
                Denied::OverBurst => std::time::Duration::from_secs(1),
            };
            let message = format!(
                "the request has been rejected because the workspace exceeded its ingestion rate limit, set to {rate} items/s with a maximum allowed burst of {burst}, while adding {} samples, {} histograms, {} exemplars and {} metadata (err-promlake-{}). To adjust it, configure limits.ingest.ingestion_rate and limits.ingest.ingestion_burst_size",
                accepted.samples,
                accepted.histograms,
                accepted.exemplars,
                decoded.metadata.len(),
                Reason::RateLimited.id()
            );
            return Err((Error::RateLimited { message, retry_after }, none));
        }
        let admitted = match self.active_series.admit(
            workspace_id,
            &limits.limits_per_label_set,
            &validated.series,
            now_ms,
        ) {
            Ok(admitted) => admitted,
            Err(exceeded) => {
                self.metrics.discard(workspace_id, Reason::PerLabelSetSeriesLimit.id(), accepted);
                let message = format!(
                    "the request has been rejected because it would add {} new series to the label set {}, which has {} active series and a limit of {} (err-promlake-{}). To adjust it, update the workspace configuration's limitsPerLabelSet",
                    exceeded.adding,
                    series_limits::label_set_string(&exceeded.limit),
                    exceeded.active,
                    exceeded.limit.max_series,
                    Reason::PerLabelSetSeriesLimit.id()
                );
                let retry_after = std::time::Duration::from_secs(60);
                return Err((Error::RateLimited { message, retry_after }, none));
            }
        };

        if !validated.series.is_empty() || !decoded.metadata.is_empty() {
            let partitions = self.partition_count(&workspace.samples_topic).await.map_err(|e| (e, none))?;
            let batch = producer::Batch {
                workspace_id,
                topic: &workspace.samples_topic,
                partitions,
                protocol_version: protocol.version(),
                received_at_ms: now_ms,
            };
            let seconds = match producer::append(self.log.as_ref(), &batch, validated.series, decoded.metadata).await {
                Ok(appended) => appended.seconds,
                Err(e) => {
                    self.active_series.release(workspace_id, admitted, now_ms);
                    return Err((e, none));
                }
            };
            self.metrics.append_seconds.observe(seconds);
            Metrics::count(&self.metrics.written, workspace_id, accepted);
        }
        let outcome = WriteOutcome { written: accepted };
        match validated.first_error {
            Some((_, message)) => Err((Error::Invalid(message), outcome)),
            None => Ok(outcome),
        }
    }
}
