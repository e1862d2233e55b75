//! The test storage: every series in memory, appended to by the input
//! series and the rules, read by the engine (promtool's test storage).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use common::seams::{
    Labels, LogPosition, MetricMetadata, Sample, SampleAppender, SampleReader, SampleValue, SeamError, Selected,
    SelectedSeries, Selection,
};

/// Series by labels, samples by timestamp (a later sample at one timestamp
/// replaces the earlier one).
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    series: Mutex<HashMap<Labels, BTreeMap<i64, SampleValue>>>,
}

impl MemoryStore {
    pub(crate) fn add(&self, labels: Labels, sample: Sample) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.entry(labels).or_default().insert(sample.timestamp_ms, sample.value);
    }
}

#[async_trait]
impl SampleReader for MemoryStore {
    async fn select(&self, _workspace_id: &str, selection: &Selection) -> Result<Selected, SeamError> {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<SelectedSeries> = series
            .iter()
            .filter(|(labels, _)| selection.matches(labels))
            .map(|(labels, samples)| SelectedSeries {
                labels: labels.clone(),
                samples: samples
                    .range(selection.start_ms..=selection.end_ms)
                    .map(|(t, v)| Sample { timestamp_ms: *t, value: v.clone() })
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Selected { series: out, ..Selected::default() })
    }

    async fn metadata(&self, _workspace_id: &str) -> Result<Vec<MetricMetadata>, SeamError> {
        Ok(Vec::new())
    }

    async fn wait_for_position(&self, _: &str, _: &LogPosition, _: Duration) -> Result<(), SeamError> {
        Ok(())
    }
}

#[async_trait]
impl SampleAppender for MemoryStore {
    async fn append(&self, _workspace_id: &str, samples: Vec<(Labels, Sample)>) -> Result<LogPosition, SeamError> {
        for (labels, sample) in samples {
            self.add(labels, sample);
        }
        Ok(Vec::new())
    }
}
