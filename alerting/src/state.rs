//! The Alertmanagers' durable state — alerts, silences, notification-log
//! entries — kept in the log's compacted `_alerting` topic, one record per
//! item (key `<workspace>\n<kind>\n<id>`, value its JSON; a tombstone when
//! it is gone), so that a restart, or a successor process, resumes where
//! the last one stopped.
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
    /// Makes a workspace's changes durable.
    async fn save(&self, workspace_id: &str, changes: Vec<Change>) -> Result<(), String>;
    /// Every workspace's stored state.
    async fn load(&self) -> Result<BTreeMap<String, Vec<Change>>, String>;
}

/// No durable state (tests, and engines that need none).
#[derive(Debug, Default)]
pub struct InMemory;

#[async_trait]
impl StateStore for InMemory {
    async fn save(&self, _: &str, _: Vec<Change>) -> Result<(), String> {
        Ok(())
    }

    async fn load(&self) -> Result<BTreeMap<String, Vec<Change>>, String> {
        Ok(BTreeMap::new())
    }
}

/// The state in the log's `_alerting` topic.
#[derive(Debug)]
pub struct LogState {
    log: Arc<dyn Log>,
    clock: Arc<dyn Clock>,
}

const FETCH_BYTES: usize = 4 << 20;

impl LogState {
    /// The state in `log` (the topic is created when missing).
    ///
    /// # Errors
    /// The log's error.
    pub async fn open(log: Arc<dyn Log>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        log.ensure_topic(schemas::topics::ALERTING_TOPIC, TopicSpec { partitions: 1, cleanup: CleanupPolicy::Compact })
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { log, clock })
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

#[async_trait]
impl StateStore for LogState {
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
        self.log.append(schemas::topics::ALERTING_TOPIC, 0, records).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn load(&self) -> Result<BTreeMap<String, Vec<Change>>, String> {
        // The newest record of each key wins; tombstones delete.
        let mut latest: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
        let mut next = 0;
        loop {
            let fetched = self
                .log
                .fetch(schemas::topics::ALERTING_TOPIC, 0, next, FETCH_BYTES, Duration::ZERO)
                .await
                .map_err(|e| e.to_string())?;
            if fetched.records.is_empty() {
                break;
            }
            for r in fetched.records {
                next = r.offset + 1;
                if let Some(k) = r.key {
                    latest.insert(String::from_utf8_lossy(&k).into_owned(), r.value);
                }
            }
        }
        let mut out: BTreeMap<String, Vec<Change>> = BTreeMap::new();
        for (key, value) in latest {
            let Some(value) = value else { continue };
            match decode(&key, &value) {
                Some((ws, change)) => out.entry(ws).or_default().push(change),
                None => tracing::warn!(key = %key.replace('\n', "/"), "Skipped an unreadable alerting state record."),
            }
        }
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
        let loaded = reopened.load().await.unwrap();
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["ws-1"], "ws-2's silence was deleted");
        let mut got = loaded["ws-1"].clone();
        got.sort_by_key(|c| format!("{c:?}"));
        let mut want = all;
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(got, want);
    }
}
