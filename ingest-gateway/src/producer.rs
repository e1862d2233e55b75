//! Turning validated series into log records: one `WriteBatch` per
//! partition (chunked to stay under the record size), appended to all
//! partitions concurrently; returns when every record is durable.

use std::time::Instant;

use bytes::Bytes;
use common::log::{Log, Record};
use futures::future::try_join_all;
use prost::Message;
use schemas::stream::{MetricMetadata, Series, WriteBatch};

use crate::error::Result;

/// Encoded size above which a partition's batch is split into several
/// records, so every record fits Kafka's default 1 MiB message limit.
const TARGET_RECORD_BYTES: usize = 900 * 1024;

/// The partition of a series: its id modulo the partition count, so a
/// series always lands in one partition and stays ordered.
pub fn partition_of(series_id: u64, partitions: u32) -> u32 {
    (series_id % u64::from(partitions.max(1))) as u32
}

/// Everything needed to write one request.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    pub(crate) workspace_id: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) partitions: u32,
    pub(crate) protocol_version: u32,
    pub(crate) received_at_ms: i64,
}

/// What an append did.
#[derive(Debug)]
pub(crate) struct Appended {
    /// Seconds spent appending.
    pub(crate) seconds: f64,
    /// The last offset written to each partition written.
    pub(crate) position: Vec<(u32, u64)>,
}

/// Appends the series and metadata.
pub(crate) async fn append(
    log: &dyn Log,
    batch: &Batch<'_>,
    series: Vec<Series>,
    metadata: Vec<MetricMetadata>,
) -> Result<Appended> {
    let n = batch.partitions.max(1) as usize;
    let mut per_partition: Vec<(Vec<Series>, Vec<MetricMetadata>)> = (0..n).map(|_| Default::default()).collect();
    for s in series {
        per_partition[partition_of(s.series_id, batch.partitions) as usize].0.push(s);
    }
    for m in metadata {
        let id = schemas::labels::series_id([(schemas::labels::METRIC_NAME, m.metric_family_name.as_str())]);
        per_partition[partition_of(id, batch.partitions) as usize].1.push(m);
    }
    let started = Instant::now();
    let appends = per_partition.into_iter().enumerate().filter(|(_, (s, m))| !s.is_empty() || !m.is_empty()).map(
        |(partition, (series, metadata))| {
            let records = records(batch, series, metadata);
            async move {
                let receipt = log.append(batch.topic, partition as u32, records).await?;
                Ok::<_, common::log::LogError>((partition as u32, receipt.last_offset))
            }
        },
    );
    let position = try_join_all(appends).await?;
    Ok(Appended { seconds: started.elapsed().as_secs_f64(), position })
}

fn records(batch: &Batch<'_>, series: Vec<Series>, metadata: Vec<MetricMetadata>) -> Vec<Record> {
    let mut records = Vec::new();
    let mut current = new_batch(batch);
    let mut size = 0;
    for s in series {
        let len = s.encoded_len();
        // The field tag and length prefix of the repeated `series` entry.
        let len = 1 + prost::length_delimiter_len(len) + len;
        if size + len > TARGET_RECORD_BYTES && !current.series.is_empty() {
            records.push(encode(batch, std::mem::replace(&mut current, new_batch(batch))));
            size = 0;
        }
        size += len;
        current.series.push(s);
    }
    current.metadata = metadata;
    records.push(encode(batch, current));
    records
}

fn new_batch(batch: &Batch<'_>) -> WriteBatch {
    WriteBatch {
        workspace_id: batch.workspace_id.to_owned(),
        received_at_ms: batch.received_at_ms,
        protocol_version: batch.protocol_version,
        series: Vec::new(),
        metadata: Vec::new(),
    }
}

fn encode(batch: &Batch<'_>, wb: WriteBatch) -> Record {
    Record { key: None, value: Some(Bytes::from(wb.encode_to_vec())), timestamp_ms: batch.received_at_ms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::stream::{Label, Sample};

    #[test]
    fn big_batches_are_split_and_nothing_is_lost() {
        let batch = Batch { workspace_id: "ws", topic: "t", partitions: 1, protocol_version: 1, received_at_ms: 0 };
        let series: Vec<Series> = (0..5000)
            .map(|i| Series {
                labels: vec![Label { name: "__name__".into(), value: format!("metric_with_a_long_name_{i:0>200}") }],
                series_id: i,
                samples: vec![Sample { timestamp_ms: 1, value: 1.0, start_timestamp_ms: 0 }],
                ..Default::default()
            })
            .collect();
        let recs = records(&batch, series, vec![]);
        assert!(recs.len() > 1);
        let mut total = 0;
        for r in &recs {
            let v = r.value.as_ref().unwrap();
            assert!(v.len() <= TARGET_RECORD_BYTES + 1024);
            total += WriteBatch::decode(v.as_ref()).unwrap().series.len();
        }
        assert_eq!(total, 5000);
    }
}
