//! [`KafkaLogConfig`]: where the brokers are and how the clients behave.
//!
//! Typed fields cover what the code reasons about (timeouts, replication,
//! pool sizes); everything else goes through the [`KafkaLogConfig::librdkafka`]
//! pass-through, applied to every client after our own settings, so an
//! operator can override anything (TLS, SASL, backoffs), including our
//! defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::error::ConfigError;

/// Configuration of a [`KafkaLog`](crate::KafkaLog).
///
/// Deserializes from TOML/JSON with every field optional (missing fields take
/// the [`Default`] values); durations are strings such as `"30s"`,
/// `"1500ms"`, `"2m"` or plain integers of milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaLogConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from
    /// (librdkafka `bootstrap.servers`). Default `"localhost:9092"`.
    pub bootstrap_servers: String,

    /// Replication factor of the topics [`KafkaLog`](crate::KafkaLog)
    /// creates. With `acks=all` an append is durable on every in-sync
    /// replica; the broker's `min.insync.replicas` decides how many that must
    /// be at least. Default `3`.
    pub replication_factor: i32,

    /// Client id sent to the brokers (librdkafka `client.id`); shows up in
    /// broker logs and quotas. Default `"promlake"`.
    pub client_id: String,

    /// Upper bound on one administrative or metadata round trip: topic
    /// creation/deletion, metadata and watermark queries, offset commits and
    /// committed-offset lookups. Default 30 s.
    #[serde(with = "duration")]
    pub request_timeout: Duration,

    /// How long a record may wait for acknowledgement, retries included,
    /// before [`append`](common::log::Log::append) fails (librdkafka
    /// `message.timeout.ms`). This is the longest a broker outage can stall an
    /// append. Default 60 s.
    #[serde(with = "duration")]
    pub delivery_timeout: Duration,

    /// How long the producer waits to batch records into one request
    /// (librdkafka `linger.ms`). Adds at most this much latency to every
    /// append. Default 5 ms.
    #[serde(with = "duration")]
    pub linger: Duration,

    /// Most idle fetch consumers kept (one per (topic, partition)); the least
    /// recently used is closed beyond that. Each is a librdkafka instance
    /// with a thread per broker, so keep this near the number of partitions
    /// one process tails. Default `64`.
    pub max_fetch_consumers: usize,

    /// Bytes a fetch consumer prefetches for its partition ahead of
    /// [`fetch`](common::log::Log::fetch) calls (librdkafka
    /// `queued.max.messages.kbytes`, rounded up to KiB). Memory use is up to
    /// this times [`max_fetch_consumers`](Self::max_fetch_consumers).
    /// Default 4 MiB.
    pub fetch_buffer_bytes: usize,

    /// How long a consumer-group member (see
    /// [`KafkaMembership`](crate::KafkaMembership)) may go without a
    /// heartbeat before the group coordinator declares it dead and gives its
    /// partitions to the other members (librdkafka `session.timeout.ms`;
    /// heartbeats go every fifth of it). This is how long the partitions of
    /// a killed worker process stay unprocessed. The broker bounds it
    /// (`group.min.session.timeout.ms`, 6 s by default). Default 10 s.
    #[serde(with = "duration")]
    pub session_timeout: Duration,

    /// librdkafka settings applied to every client (producer, consumers,
    /// admin) after ours, so they win. See librdkafka's `CONFIGURATION.md`.
    /// Default empty.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaLogConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "localhost:9092".to_owned(),
            replication_factor: 3,
            client_id: "promlake".to_owned(),
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(60),
            linger: Duration::from_millis(5),
            max_fetch_consumers: 64,
            fetch_buffer_bytes: 4 << 20,
            session_timeout: Duration::from_secs(10),
            librdkafka: BTreeMap::new(),
        }
    }
}

/// Default of librdkafka's `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

impl KafkaLogConfig {
    /// Checks the settings, naming the offending key.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an empty `bootstrap_servers`, a
    /// `replication_factor` below 1, zero timeouts or pool sizes, or
    /// pass-through settings that try to turn off idempotence or `acks=all`
    /// (which the delivery guarantee depends on).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.bootstrap_servers.trim().is_empty() {
            return invalid("bootstrap_servers", "must name at least one broker".into());
        }
        if self.replication_factor < 1 {
            return invalid("replication_factor", format!("must be at least 1, got {}", self.replication_factor));
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive".into());
        }
        if self.delivery_timeout.is_zero() {
            return invalid("delivery_timeout", "must be positive".into());
        }
        if self.max_fetch_consumers == 0 {
            return invalid("max_fetch_consumers", "must be at least 1".into());
        }
        if self.session_timeout < Duration::from_millis(100) {
            return invalid("session_timeout", "must be at least 100ms".into());
        }
        if self.fetch_buffer_bytes == 0 {
            return invalid("fetch_buffer_bytes", "must be positive".into());
        }
        for (key, forbidden) in [("enable.idempotence", "false"), ("acks", "1"), ("acks", "0")] {
            if self.librdkafka.get(key).is_some_and(|v| v.trim() == forbidden) {
                return invalid("librdkafka", format!("{key}={forbidden} would break the delivery guarantee"));
            }
        }
        if let Some(v) = self.librdkafka.get("message.max.bytes")
            && v.trim().parse::<usize>().is_err()
        {
            return invalid("librdkafka", format!("message.max.bytes={v:?} is not a byte count"));
        }
        Ok(())
    }

    /// The largest record (key plus value) the producer accepts.
    pub(crate) fn message_max_bytes(&self) -> usize {
        self.librdkafka
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
    }

    /// A client configuration: shared settings, then `role` settings, then
    /// the pass-through.
    fn client_config(&self, role: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            // Topics are created explicitly with their spec; a typo must not
            // create a topic with the broker's defaults.
            .set("allow.auto.create.topics", "false");
        for (key, value) in role {
            config.set(*key, value);
        }
        for (key, value) in &self.librdkafka {
            config.set(key, value);
        }
        config
    }

    /// The producer: idempotent, `acks=all`.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        self.client_config(&[
            ("enable.idempotence", "true".into()),
            ("acks", "all".into()),
            ("message.timeout.ms", millis(self.delivery_timeout)),
            ("linger.ms", millis(self.linger)),
        ])
    }

    /// A fetch consumer: positioned explicitly by `assign`, never joins or
    /// commits for its group (librdkafka's `assign` requires a `group.id`;
    /// `<client_id>.fetch` is only a name).
    pub(crate) fn fetch_consumer_config(&self) -> ClientConfig {
        self.client_config(&[
            ("group.id", format!("{}.fetch", self.client_id)),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("enable.partition.eof", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            ("queued.max.messages.kbytes", self.fetch_buffer_bytes.div_ceil(1024).max(1).to_string()),
        ])
    }

    /// The consumer that commits and reads offsets for `group`.
    pub(crate) fn group_consumer_config(&self, group: &str) -> ClientConfig {
        self.client_config(&[
            ("group.id", group.to_owned()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
        ])
    }

    /// A consumer-group member that only takes part in rebalances: it
    /// commits nothing, and its assigned partitions are paused (the stream
    /// workers read through fetch consumers). Cooperative rebalancing, so
    /// a member joining or leaving moves only the partitions that change
    /// owner instead of stopping every worker of the group.
    pub(crate) fn membership_consumer_config(&self, group: &str) -> ClientConfig {
        self.client_config(&[
            ("group.id", group.to_owned()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("enable.partition.eof", "false".into()),
            ("auto.offset.reset", "latest".into()),
            ("partition.assignment.strategy", "cooperative-sticky".into()),
            ("session.timeout.ms", millis(self.session_timeout)),
            ("heartbeat.interval.ms", millis(self.session_timeout / 5)),
            ("queued.max.messages.kbytes", "1".into()),
        ])
    }

    /// The admin client.
    pub(crate) fn admin_config(&self) -> ClientConfig {
        self.client_config(&[])
    }
}

/// A duration as librdkafka's integer milliseconds.
fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// Serde for durations: `"250ms"`, `"30s"`, `"5m"`, `"1h"` or integer
/// milliseconds.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(s) => parse(&s).ok_or_else(|| {
                de::Error::custom(format!("invalid duration {s:?}: expected e.g. \"250ms\", \"30s\", \"5m\", \"1h\""))
            }),
        }
    }

    pub(super) fn parse(s: &str) -> Option<Duration> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().ok()?;
        match unit.trim() {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration::parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration::parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration::parse("10"), None);
        assert_eq!(duration::parse("s"), None);
        assert_eq!(duration::parse("3d"), None);
    }

    #[test]
    fn defaults_validate() {
        KafkaLogConfig::default().validate().unwrap();
    }

    #[test]
    fn validate_names_the_key() {
        let config = KafkaLogConfig { replication_factor: 0, ..Default::default() };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { key: "replication_factor", .. }), "{err}");

        let mut config = KafkaLogConfig::default();
        config.librdkafka.insert("enable.idempotence".into(), "false".into());
        assert!(matches!(config.validate(), Err(ConfigError::Invalid { key: "librdkafka", .. })));
    }

    #[test]
    fn passthrough_wins_over_ours() {
        let mut config = KafkaLogConfig::default();
        config.librdkafka.insert("linger.ms".into(), "50".into());
        config.librdkafka.insert("message.max.bytes".into(), "2000000".into());
        let producer = config.producer_config();
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("allow.auto.create.topics"), Some("false"));
        assert_eq!(config.message_max_bytes(), 2_000_000);
        assert_eq!(config.fetch_consumer_config().get("queued.max.messages.kbytes"), Some("4096"));
        assert_eq!(config.group_consumer_config("g").get("group.id"), Some("g"));
    }
}
