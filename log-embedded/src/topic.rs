//! Topics: a validated name, a spec stored in `topic.meta`, and partitions.
//!
//! `topic.meta` is the commit point of a topic's creation and deletion:
//! it is written (atomically) after the partition directories are durable,
//! and removed first when the topic is deleted. A topic directory without it
//! is the leftover of an interrupted creation or deletion and is removed at
//! open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::log::{CleanupPolicy, LogError, LogResult, TopicSpec};

use crate::ctx::{Ctx, corrupt, io_err};
use crate::partition::Partition;

/// The spec file's name in the topic directory.
pub(crate) const META_FILE: &str = "topic.meta";
/// Most partitions a topic may have.
const MAX_PARTITIONS: u32 = 10_000;

/// Checks a topic name as Kafka does: 1 to 249 characters of
/// `[A-Za-z0-9._-]`, and not `.` or `..`.
pub(crate) fn validate_topic_name(topic: &str) -> LogResult<()> {
    let invalid = |reason| Err(LogError::InvalidTopic { topic: topic.to_owned(), reason });
    if topic.is_empty() {
        return invalid("the name is empty");
    }
    if topic.len() > 249 {
        return invalid("the name is longer than 249 characters");
    }
    if topic == "." || topic == ".." {
        return invalid("the name cannot be \".\" or \"..\"");
    }
    if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("the name may contain only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Checks a spec before creating a topic with it.
pub(crate) fn validate_spec(topic: &str, spec: &TopicSpec) -> LogResult<()> {
    if spec.partitions == 0 || spec.partitions > MAX_PARTITIONS {
        return Err(LogError::InvalidTopic {
            topic: topic.to_owned(),
            reason: "the partition count must be 1 to 10000",
        });
    }
    Ok(())
}

fn encode_meta(spec: &TopicSpec) -> String {
    let cleanup = match spec.cleanup {
        CleanupPolicy::Delete { retention } => format!("cleanup=delete\nretention_ms={}\n", retention.as_millis()),
        CleanupPolicy::Compact => "cleanup=compact\n".to_owned(),
    };
    format!("version=1\npartitions={}\n{cleanup}", spec.partitions)
}

fn parse_meta(text: &str) -> Result<TopicSpec, String> {
    let mut fields = std::collections::BTreeMap::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {line:?} is not key=value"))?;
        fields.insert(key, value);
    }
    let get = |key: &str| fields.get(key).copied().ok_or_else(|| format!("{key} is missing"));
    let number = |key: &str| get(key)?.parse::<u64>().map_err(|e| format!("{key}: {e}"));
    if get("version")? != "1" {
        return Err("unknown version".into());
    }
    let partitions = u32::try_from(number("partitions")?).map_err(|e| format!("partitions: {e}"))?;
    let cleanup = match get("cleanup")? {
        "delete" => CleanupPolicy::Delete { retention: Duration::from_millis(number("retention_ms")?) },
        "compact" => CleanupPolicy::Compact,
        other => return Err(format!("unknown cleanup policy {other:?}")),
    };
    Ok(TopicSpec { partitions, cleanup })
}

/// A topic and its partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) spec: TopicSpec,
    pub(crate) partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// Creates a topic durably. Blocking.
    pub(crate) fn create(ctx: &Arc<Ctx>, root: &Path, name: &str, spec: TopicSpec) -> LogResult<Topic> {
        let dir = root.join(name);
        // Leftovers of an earlier failed creation.
        if ctx.fs.exists(&dir).map_err(|e| io_err("stat", &dir, e))? {
            ctx.fs.remove_dir_all(&dir).map_err(|e| io_err("remove stale topic directory", &dir, e))?;
        }
        ctx.fs.create_dir_all(&dir).map_err(|e| io_err("create topic directory", &dir, e))?;
        let partitions = (0..spec.partitions)
            .map(|id| Partition::create(ctx.clone(), &dir, name, id).map(Arc::new))
            .collect::<LogResult<Vec<_>>>()?;
        ctx.sync_dir(&dir)?;
        ctx.write_atomic(&dir, META_FILE, encode_meta(&spec).as_bytes())?;
        ctx.sync_dir(root)?;
        Ok(Topic { spec, partitions })
    }

    /// Opens an existing topic, `None` if its creation never completed.
    /// Blocking.
    pub(crate) fn open(ctx: &Arc<Ctx>, root: &Path, name: &str) -> LogResult<Option<Topic>> {
        let dir = root.join(name);
        ctx.remove_if_exists(&dir.join(format!("{META_FILE}.tmp")))?;
        let meta_path = dir.join(META_FILE);
        if !ctx.fs.exists(&meta_path).map_err(|e| io_err("stat", &meta_path, e))? {
            return Ok(None);
        }
        let bytes = ctx.read_all(&meta_path)?;
        let text = String::from_utf8(bytes).map_err(|_| corrupt(&meta_path, 0, "not UTF-8"))?;
        let spec = parse_meta(&text).map_err(|reason| corrupt(&meta_path, 0, reason))?;
        let partitions = (0..spec.partitions)
            .map(|id| Partition::open(ctx.clone(), &dir, name, id).map(Arc::new))
            .collect::<LogResult<Vec<_>>>()?;
        Ok(Some(Topic { spec, partitions }))
    }

    /// Deletes the topic's files durably: `topic.meta` first (the commit
    /// point), then the rest. Blocking.
    pub(crate) fn delete_files(ctx: &Ctx, root: &Path, name: &str) -> LogResult<()> {
        let dir = root.join(name);
        if !ctx.fs.exists(&dir).map_err(|e| io_err("stat", &dir, e))? {
            return Ok(());
        }
        ctx.remove_if_exists(&dir.join(META_FILE))?;
        ctx.sync_dir(&dir)?;
        ctx.fs.remove_dir_all(&dir).map_err(|e| io_err("remove topic directory", &dir, e))?;
        ctx.sync_dir(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "samples", "_control", "a.b-c_D9", &"x".repeat(249), "..."] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250), "a~deleted"] {
            assert!(matches!(validate_topic_name(bad), Err(LogError::InvalidTopic { .. })), "{bad:?}");
        }
    }

    #[test]
    fn meta_round_trips() {
        for spec in [
            TopicSpec { partitions: 3, cleanup: CleanupPolicy::Compact },
            TopicSpec {
                partitions: 1,
                cleanup: CleanupPolicy::Delete { retention: Duration::from_millis(86_400_123) },
            },
        ] {
            assert_eq!(parse_meta(&encode_meta(&spec)), Ok(spec));
        }
        assert!(parse_meta("version=1\npartitions=2\ncleanup=delete\n").is_err());
        assert!(parse_meta("garbage").is_err());
    }
}
