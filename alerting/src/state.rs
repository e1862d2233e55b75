//! The Alertmanagers' durable state — alerts, silences, notification-log
//! entries — kept in the log's compacted `_alerting` topic, one record per
//! item (key `<workspace>\n<kind>\n<id>`, value its JSON; a tombstone when
//! it is gone), so that a restart, or a successor process, resumes where
//! the last one stopped. A workspace's records all go to one partition,
//! [`schemas::topics::alerting_partition`]: partitions are what alerting
//! processes share out (see `crate::registry`), and a process taking a
//! partition over reads just that partition's state.
//!
//! Alerts for a workspace whose Alertmanager runs in another process (the
//! ruler of a process that does not own the workspace) go to its
//! partition's *inbox*: a record `<workspace>\ni\n<id>` holding the posted
//! batch, durable before the sender is answered. The owner tails its
//! partitions, applies each batch to the workspace's Alertmanager (which
//! saves the alerts as its own), then deletes the inbox record; a crash in
//! between applies the batch again: the same alerts merged again by
//! fingerprint (their update time refreshed).
//!
//! A posted alert or silence is answered only once its record is durable;
//! a notification-log entry is written right after its delivery (a crash
//! between the two sends that notification again once, as Alertmanager's
//! own notification log would).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use amconfig::{MatchType, Matcher};
use async_trait::async_trait;
use bytes::Bytes;
use common::clock::Clock;
use common::log::{CleanupPolicy, Log, Record, TopicSpec};
use serde::{Deserialize, Serialize};

use crate::dispatch::{Alert, LogEntry};
use crate::engine::{Change, LogKey, StoredAlert, StoredEntry};
use crate::silence::Silence;

/// Where the Alertmanagers' state is kept (the seam the tests replace).
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The partitions the state is split into (a workspace's state is all
    /// in [`schemas::topics::alerting_partition`] of them).
    fn partitions(&self) -> u32;
    /// Makes a workspace's changes durable.
    async fn save(&self, workspace_id: &str, changes: Vec<Change>) -> Result<(), String>;
    /// The stored state of the workspaces of one partition, with the
    /// inbox batches not applied yet.
    async fn load(&self, partition: u32) -> Result<Loaded, String>;
    /// Posts alerts (a v2 API body) to the workspace's inbox; returns once
    /// durable.
    async fn post_inbox(&self, workspace_id: &str, alerts: Vec<u8>) -> Result<(), String>;
    /// Inbox batches posted to `partition` at or after offset `from` (waiting
    /// up to `wait` for some), and the offset to read from next.
    async fn tail_inbox(&self, partition: u32, from: u64, wait: Duration) -> Result<(Vec<InboxBatch>, u64), String>;
    /// Deletes an applied inbox batch.
    async fn delete_inbox(&self, batch: &InboxBatch) -> Result<(), String>;
}

/// A partition's stored state ([`StateStore::load`]).
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each workspace's alerts, silences and notification-log entries.
    pub state: BTreeMap<String, Vec<Change>>,
    /// Inbox batches not applied yet, oldest first.
    pub inbox: Vec<InboxBatch>,
    /// The offset after what was read (where the inbox is tailed from).
    pub next: u64,
}

/// Alerts posted to a workspace's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxBatch {
    pub workspace_id: String,
    /// Its record key's id.
    pub id: String,
    /// The alerts: a v2 API `POST /alerts` body.
    pub alerts: Vec<u8>,
}

/// No durable state (tests, and engines that need none).
#[derive(Debug, Default)]
pub struct InMemory;

#[async_trait]
impl StateStore for InMemory {
    fn partitions(&self) -> u32 {
        1
    }

    async fn save(&self, _: &str, _: Vec<Change>) -> Result<(), String> {
        Ok(())
    }

    async fn load(&self, _: u32) -> Result<Loaded, String> {
        Ok(Loaded::default())
    }

    async fn post_inbox(&self, _: &str, _: Vec<u8>) -> Result<(), String> {
        Err("no inbox: this process keeps no alerting state".into())
    }

    async fn tail_inbox(&self, _: u32, from: u64, wait: Duration) -> Result<(Vec<InboxBatch>, u64), String> {
        tokio::time::sleep(wait).await;
        Ok((Vec::new(), from))
    }

    async fn delete_inbox(&self, _: &InboxBatch) -> Result<(), String> {
        Ok(())
    }
}

/// The state in the log's `_alerting` topic.
#[derive(Debug)]
pub struct LogState {
    log: Arc<dyn Log>,
    clock: Arc<dyn Clock>,
    /// The topic's partition count.
    partitions: u32,
}

const FETCH_BYTES: usize = 4 << 20;

impl LogState {
    /// The state in `log` (the topic is created with
    /// [`schemas::topics::ALERTING_PARTITIONS`] when missing; an existing
    /// one keeps its partitions).
    ///
    /// # Errors
    /// The log's error.
    pub async fn open(log: Arc<dyn Log>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let spec = TopicSpec { partitions: schemas::topics::ALERTING_PARTITIONS, cleanup: CleanupPolicy::Compact };
        let partitions =
            log.ensure_topic(schemas::topics::ALERTING_TOPIC, spec).await.map_err(|e| e.to_string())?.max(1);
        Ok(Self { log, clock, partitions })
    }
}

#[derive(Serialize, Deserialize)]
struct AlertDoc {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at_ms: i64,
    ends_at_ms: Option<i64>,
    generator_url: String,
    updated_at_ms: i64,
    timeout: bool,
}

#[derive(Serialize, Deserialize)]
struct SilenceDoc {
    id: String,
    /// (name, operator, value)
    matchers: Vec<(String, String, String)>,
    starts_at_ms: Option<i64>,
    ends_at_ms: i64,
    updated_at_ms: i64,
    created_by: String,
    comment: String,
}

#[derive(Serialize, Deserialize)]
struct LogDoc {
    group_key: String,
    receiver: String,
    integration: String,
    index: usize,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
    timestamp_ms: i64,
    expires_at_ms: i64,
}

fn integration_name(name: &str) -> Option<&'static str> {
    ["webhook", "email", "slack", "pagerduty", "sns"].into_iter().find(|n| *n == name)
}

fn log_id(k: &LogKey) -> String {
    format!("{}\u{1f}{}\u{1f}{}\u{1f}{}", k.0, k.1, k.2, k.3)
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| e.to_string())
}

/// A change as a record: (key, value).
fn encode(workspace_id: &str, c: &Change) -> Result<(String, Option<Vec<u8>>), String> {
    Ok(match c {
        Change::Alert(fp, v) => (
            format!("{workspace_id}\na\n{fp:016x}"),
            v.as_ref()
                .map(|s| {
                    json(&AlertDoc {
                        labels: s.alert.labels.clone(),
                        annotations: s.alert.annotations.clone(),
                        starts_at_ms: s.alert.starts_at_ms,
                        ends_at_ms: s.alert.ends_at_ms,
                        generator_url: s.alert.generator_url.clone(),
                        updated_at_ms: s.alert.updated_at_ms,
                        timeout: s.timeout,
                    })
                })
                .transpose()?,
        ),
        Change::Silence(id, v) => (
            format!("{workspace_id}\ns\n{id}"),
            v.as_ref()
                .map(|s| {
                    json(&SilenceDoc {
                        id: s.id.clone(),
                        matchers: s
                            .matchers
                            .iter()
                            .map(|m| (m.name.clone(), m.op.as_str().to_owned(), m.value.clone()))
                            .collect(),
                        starts_at_ms: s.starts_at_ms,
                        ends_at_ms: s.ends_at_ms,
                        updated_at_ms: s.updated_at_ms,
                        created_by: s.created_by.clone(),
                        comment: s.comment.clone(),
                    })
                })
                .transpose()?,
        ),
        Change::Log(k, v) => (
            format!("{workspace_id}\nn\n{}", log_id(k)),
            v.as_ref()
                .map(|e| {
                    json(&LogDoc {
                        group_key: k.0.clone(),
                        receiver: k.1.clone(),
                        integration: k.2.to_owned(),
                        index: k.3,
                        firing: e.entry.firing.clone(),
                        resolved: e.entry.resolved.clone(),
                        timestamp_ms: e.entry.timestamp_ms,
                        expires_at_ms: e.expires_at_ms,
                    })
                })
                .transpose()?,
        ),
    })
}

/// A stored record back as a change (`None`: not one of ours, or
/// unreadable — skipped with a warning).
fn decode(key: &str, value: &[u8]) -> Option<(String, Change)> {
    let mut parts = key.splitn(3, '\n');
    let (ws, kind, _) = (parts.next()?, parts.next()?, parts.next()?);
    let change = match kind {
        "a" => {
            let d: AlertDoc = serde_json::from_slice(value).ok()?;
            let alert = Alert {
                labels: d.labels,
                annotations: d.annotations,
                starts_at_ms: d.starts_at_ms,
                ends_at_ms: d.ends_at_ms,
                generator_url: d.generator_url,
                updated_at_ms: d.updated_at_ms,
            };
            Change::Alert(alert.fingerprint(), Some(StoredAlert { alert, timeout: d.timeout }))
        }
        "s" => {
            let d: SilenceDoc = serde_json::from_slice(value).ok()?;
            let mut matchers = Vec::with_capacity(d.matchers.len());
            for (name, op, value) in d.matchers {
                let op = match op.as_str() {
                    "=" => MatchType::Equal,
                    "!=" => MatchType::NotEqual,
                    "=~" => MatchType::Regexp,
                    _ => MatchType::NotRegexp,
                };
                matchers.push(Matcher::new(&name, op, &value).ok()?);
            }
            let id = d.id.clone();
            Change::Silence(
                id,
                Some(Silence {
                    id: d.id,
                    matchers,
                    starts_at_ms: d.starts_at_ms,
                    ends_at_ms: d.ends_at_ms,
                    updated_at_ms: d.updated_at_ms,
                    created_by: d.created_by,
                    comment: d.comment,
                }),
            )
        }
        "n" => {
            let d: LogDoc = serde_json::from_slice(value).ok()?;
            let key: LogKey = (d.group_key, d.receiver, integration_name(&d.integration)?, d.index);
            let entry = LogEntry { firing: d.firing, resolved: d.resolved, timestamp_ms: d.timestamp_ms };
            Change::Log(key, Some(StoredEntry { entry, expires_at_ms: d.expires_at_ms }))
        }
        _ => return None,
    };
    Some((ws.to_owned(), change))
}

impl LogState {
    /// Appends to the workspace's partition (durable on return).
    async fn append(&self, workspace_id: &str, records: Vec<Record>) -> Result<(), String> {
        let partition = schemas::topics::alerting_partition(workspace_id, self.partitions);
        self.log
            .append(schemas::topics::ALERTING_TOPIC, partition, records)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// An inbox record as a batch (`None`: another kind of record).
fn inbox_batch(key: &[u8], value: &[u8]) -> Option<InboxBatch> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.splitn(3, '\n');
    let (ws, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
    (kind == "i").then(|| InboxBatch { workspace_id: ws.to_owned(), id: id.to_owned(), alerts: value.to_vec() })
}

#[async_trait]
impl StateStore for LogState {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn save(&self, workspace_id: &str, changes: Vec<Change>) -> Result<(), String> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let mut records = Vec::with_capacity(changes.len());
        for c in &changes {
            let (key, value) = encode(workspace_id, c)?;
            records.push(Record { key: Some(Bytes::from(key)), value: value.map(Bytes::from), timestamp_ms: now });
        }
        self.append(workspace_id, records).await
    }

    async fn post_inbox(&self, workspace_id: &str, alerts: Vec<u8>) -> Result<(), String> {
        let key = format!("{workspace_id}\ni\n{}", uuid::Uuid::new_v4());
        let now = self.clock.now_ms();
        self.append(
            workspace_id,
            vec![Record { key: Some(Bytes::from(key)), value: Some(alerts.into()), timestamp_ms: now }],
        )
        .await
    }

    async fn tail_inbox(&self, partition: u32, from: u64, wait: Duration) -> Result<(Vec<InboxBatch>, u64), String> {
        let fetched = self
            .log
            .fetch(schemas::topics::ALERTING_TOPIC, partition, from, FETCH_BYTES, wait)
            .await
            .map_err(|e| e.to_string())?;
        let next = fetched.records.last().map_or(from, |r| r.offset + 1);
        let batches =
            fetched.records.into_iter().filter_map(|r| inbox_batch(r.key.as_deref()?, r.value.as_deref()?)).collect();
        Ok((batches, next))
    }

    async fn delete_inbox(&self, batch: &InboxBatch) -> Result<(), String> {
        let key = format!("{}\ni\n{}", batch.workspace_id, batch.id);
        let now = self.clock.now_ms();
        self.append(&batch.workspace_id, vec![Record { key: Some(Bytes::from(key)), value: None, timestamp_ms: now }])
            .await
    }

    async fn load(&self, partition: u32) -> Result<Loaded, String> {
        const TOPIC: &str = schemas::topics::ALERTING_TOPIC;
        // Everything up to the end as of now (what a predecessor saved
        // before handing the partition over is below it).
        let end = self.log.offsets(TOPIC, partition).await.map_err(|e| e.to_string())?.high_watermark;
        // The newest record of each key wins; tombstones delete.
        let mut latest: BTreeMap<String, (u64, Option<Bytes>)> = BTreeMap::new();
        let mut next = 0;
        let mut empty = 0;
        while next < end {
            let fetched = self
                .log
                .fetch(TOPIC, partition, next, FETCH_BYTES, Duration::from_millis(100))
                .await
                .map_err(|e| e.to_string())?;
            if fetched.records.is_empty() {
                // A broker may answer a fetch with nothing for a while; the
                // state is never read in part.
                empty += 1;
                if empty > 50 {
                    return Err(format!("{TOPIC}/{partition}: nothing readable at offset {next}, below its end {end}"));
                }
                continue;
            }
            empty = 0;
            for r in fetched.records {
                next = r.offset + 1;
                if let Some(k) = r.key {
                    latest.insert(String::from_utf8_lossy(&k).into_owned(), (r.offset, r.value));
                }
            }
        }
        let mut out = Loaded { next, ..Loaded::default() };
        let mut inbox = Vec::new();
        for (key, (offset, value)) in latest {
            let Some(value) = value else { continue };
            if let Some(batch) = inbox_batch(key.as_bytes(), &value) {
                inbox.push((offset, batch));
                continue;
            }
            match decode(&key, &value) {
                Some((ws, change)) => out.state.entry(ws).or_default().push(change),
                None => tracing::warn!(key = %key.replace('\n', "/"), "Skipped an unreadable alerting state record."),
            }
        }
        inbox.sort_by_key(|(offset, _)| *offset);
        out.inbox = inbox.into_iter().map(|(_, b)| b).collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_round_trips_through_the_log_and_deletions_stick() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn Log> =
            log_embedded::EmbeddedLog::open(dir.path(), log_embedded::EmbeddedLogConfig::default()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(common::clock::SystemClock);
        let state = LogState::open(log.clone(), clock.clone()).await.unwrap();
        let alert = Alert {
            labels: [("alertname".to_owned(), "A".to_owned())].into(),
            annotations: BTreeMap::new(),
            starts_at_ms: 1,
            ends_at_ms: Some(2),
            generator_url: "http://g".into(),
            updated_at_ms: 3,
        };
        let fp = alert.fingerprint();
        let silence = Silence {
            id: "s-1".into(),
            matchers: amconfig::parse_matchers("{a=~\"b|c\",d!=\"e\"}").unwrap(),
            starts_at_ms: Some(1),
            ends_at_ms: 9,
            updated_at_ms: 1,
            created_by: "me".into(),
            comment: "c".into(),
        };
        let key: LogKey = ("{}:{a=\"b\"}".into(), "team".into(), "webhook", 1);
        let entry = StoredEntry {
            entry: LogEntry { firing: [fp].into(), resolved: BTreeSet::new(), timestamp_ms: 5 },
            expires_at_ms: 50,
        };
        let all = vec![
            Change::Alert(fp, Some(StoredAlert { alert: alert.clone(), timeout: true })),
            Change::Silence("s-1".into(), Some(silence.clone())),
            Change::Log(key.clone(), Some(entry.clone())),
        ];
        state.save("ws-1", all.clone()).await.unwrap();
        state.save("ws-2", vec![Change::Silence("s-1".into(), Some(silence))]).await.unwrap();
        state.save("ws-2", vec![Change::Silence("s-1".into(), None)]).await.unwrap();
        let reopened = LogState::open(log, clock).await.unwrap();
        assert_eq!(reopened.partitions(), schemas::topics::ALERTING_PARTITIONS);
        let home = schemas::topics::alerting_partition("ws-1", reopened.partitions());
        let mut loaded = BTreeMap::new();
        for p in 0..reopened.partitions() {
            let part = reopened.load(p).await.unwrap().state;
            // A workspace's state is in its partition only.
            assert!(part.keys().all(|ws| p == home && ws == "ws-1"), "partition {p}: {:?}", part.keys());
            loaded.extend(part);
        }
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["ws-1"], "ws-2's silence was deleted");
        let mut got = loaded["ws-1"].clone();
        got.sort_by_key(|c| format!("{c:?}"));
        let mut want = all;
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn inbox_batches_are_loaded_tailed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn Log> =
            log_embedded::EmbeddedLog::open(dir.path(), log_embedded::EmbeddedLogConfig::default()).unwrap();
        let state = LogState::open(log, Arc::new(common::clock::SystemClock)).await.unwrap();
        let p = schemas::topics::alerting_partition("ws-1", state.partitions());
        state.save("ws-1", vec![Change::Silence("s-1".into(), None)]).await.unwrap();
        state.post_inbox("ws-1", b"[1]".to_vec()).await.unwrap();
        state.post_inbox("ws-1", b"[2]".to_vec()).await.unwrap();
        let loaded = state.load(p).await.unwrap();
        assert_eq!(loaded.inbox.iter().map(|b| b.alerts.as_slice()).collect::<Vec<_>>(), [b"[1]", b"[2]"]);
        assert!(loaded.inbox.iter().all(|b| b.workspace_id == "ws-1"));
        assert_eq!(loaded.next, 3);
        // Tailing from the start finds the same batches, in order.
        let (tailed, next) = state.tail_inbox(p, 0, Duration::ZERO).await.unwrap();
        assert_eq!(tailed, loaded.inbox);
        assert_eq!(next, 3);
        state.delete_inbox(&loaded.inbox[0]).await.unwrap();
        let left = state.load(p).await.unwrap().inbox;
        assert_eq!(left, loaded.inbox[1..]);
        // A tail past the end waits, then finds nothing new.
        let (none, next) = state.tail_inbox(p, 4, Duration::from_millis(10)).await.unwrap();
        assert!(none.is_empty());
        assert_eq!(next, 4);
    }
}
