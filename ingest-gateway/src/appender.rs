//! Samples from inside PromLake (the ruler's recording rules and their
//! staleness markers) appended to a workspace's log exactly as remote
//! write appends them: one `WriteBatch` per partition, durable before the
//! answer, so the stream workers store them like any other sample.

use std::sync::Arc;

use async_trait::async_trait;
use common::ErrorKind;
use common::arn::ArnScheme;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use common::log::Log;
use common::seams::{Labels, LogPosition, Sample, SampleAppender, SampleValue, SeamError};
use common::workspace::WorkspaceRecord;
use prost::Message;
use schemas::stream::{Histogram, Label, Sample as StreamSample, Series};

use crate::producer;

/// The [`SampleAppender`] over the log.
#[derive(Debug, Clone)]
pub struct LogSampleAppender {
    log: Arc<dyn Log>,
    control: Arc<dyn ControlPlaneStore>,
    arns: ArnScheme,
    clock: Arc<dyn Clock>,
}

impl LogSampleAppender {
    /// Appends to the topics of the workspaces `control` knows.
    pub fn new(log: Arc<dyn Log>, control: Arc<dyn ControlPlaneStore>, arns: ArnScheme, clock: Arc<dyn Clock>) -> Self {
        Self { log, control, arns, clock }
    }
}

#[async_trait]
impl SampleAppender for LogSampleAppender {
    async fn append(&self, workspace_id: &str, samples: Vec<(Labels, Sample)>) -> Result<LogPosition, SeamError> {
        let record: WorkspaceRecord = self
            .control
            .get(&self.arns.workspace(workspace_id))
            .and_then(|doc| serde_json::from_value(doc).ok())
            .filter(WorkspaceRecord::is_active)
            .ok_or_else(|| SeamError {
                kind: ErrorKind::NotFound,
                message: format!("workspace {workspace_id} is not active"),
            })?;
        let mut series = Vec::with_capacity(samples.len());
        for (labels, sample) in samples {
            let series_id = schemas::labels::series_id(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let mut s = Series {
                labels: labels.iter().map(|(n, v)| Label { name: n.clone(), value: v.clone() }).collect(),
                series_id,
                ..Default::default()
            };
            match sample.value {
                SampleValue::Float(value) => {
                    s.samples.push(StreamSample { timestamp_ms: sample.timestamp_ms, value, start_timestamp_ms: 0 });
                }
                SampleValue::Histogram(bytes) => {
                    let mut h = Histogram::decode(bytes.as_ref())
                        .map_err(|e| SeamError { kind: ErrorKind::Internal, message: format!("a histogram: {e}") })?;
                    h.timestamp_ms = sample.timestamp_ms;
                    s.histograms.push(h);
                }
            }
            series.push(s);
        }
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let partitions = self.log.partition_count(&record.samples_topic).await.map_err(seam)?;
        let batch = producer::Batch {
            workspace_id,
            topic: &record.samples_topic,
            partitions,
            protocol_version: 2,
            received_at_ms: self.clock.now_ms(),
        };
        let appended = producer::append(self.log.as_ref(), &batch, series, Vec::new()).await.map_err(seam)?;
        Ok(appended.position)
    }
}

fn seam(e: impl Into<crate::Error>) -> SeamError {
    let e: crate::Error = e.into();
    SeamError { kind: e.kind(), message: e.to_string() }
}
