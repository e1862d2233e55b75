//! The config file (`--config FILE`, TOML). Every field has a default, so
//! `promlake serve` runs with none.
//!
//! ```toml
//! log = "embedded"                 # or "kafka://broker1:9092,broker2:9092"
//! lake = "file:///var/lib/promlake/lake"   # default: <data-dir>/lake; or "s3://bucket/prefix"
//! region = "us-east-1"
//! account_id = "000000000000"
//!
//! [lake_s3]                        # only for an s3:// lake; all optional
//! endpoint = "http://minio:9000"   # S3-compatible store; default AWS S3 (or AWS_ENDPOINT_URL)
//! region = "us-east-1"             # default AWS_REGION, else us-east-1
//! access_key_id = "…"              # default AWS_ACCESS_KEY_ID, else the AWS credential chain
//! secret_access_key = "…"          # default AWS_SECRET_ACCESS_KEY
//! allow_http = true                # plain-http endpoints (default false, or AWS_ALLOW_HTTP)
//! [lake_s3.options]                # object_store S3 options passed through
//! aws_virtual_hosted_style_request = "true"
//!
//! [embedded_log]
//! segment_bytes = 67108864
//!
//! [kafka]
//! replication_factor = 3
//! session_timeout_ms = 10000       # a dead worker's partitions move after this
//! [kafka.librdkafka]
//! "security.protocol" = "plaintext"
//!
//! [stream_workers]
//! flush_interval_ms = 5000
//! maintenance_interval_ms = 3600000   # retention + vacuum of the lake
//! checkpoint_interval = 100           # Delta checkpoint every N commits
//!
//! [auth]                           # --auth sigv4 (the default)
//! master_key_file = "/etc/promlake/master.key"   # default <data-dir>/master.key; same file in every process
//!
//! [workspaces]
//! partitions = 4
//! log_retention_hours = 24
//!
//! [limits.ingest]
//! ingestion_rate = 140000.0
//! [limits.storage]
//! retention_period_days = 150
//! [limits.query]
//! max_samples = 50000000             # samples one query may load
//! max_fetched_series = 0             # 0: no limit
//! max_query_length_days = 32
//! timeout_seconds = 120
//! [limits.overrides."ws-…".ingest]
//! ingestion_rate = 500000.0
//! [limits.overrides."ws-…".storage]
//! retention_period_days = 30
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use common::limits::Limits;
use serde::Deserialize;
use stream_workers::{LakeLocation, S3Config, StreamWorkersConfig};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the log lives: `embedded` (on-disk, under `<data-dir>/log`) or
    /// `kafka://host:port[,host:port…]`. Default `embedded`.
    pub log: String,
    /// Where the Delta tables live: a directory, a `file://` URL, or
    /// `s3://bucket/prefix` (AWS S3 or an S3-compatible store with
    /// conditional writes, reached as `[lake_s3]` says). Default
    /// `<data-dir>/lake`.
    pub lake: Option<String>,
    /// How to reach an `s3://` lake: endpoint, region, credentials,
    /// `allow_http`, pass-through `object_store` options; whatever is unset
    /// comes from the standard AWS environment variables (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, …), then the AWS credential
    /// chain. Ignored for other lakes. See `stream_workers::S3Config`.
    pub lake_s3: S3Config,
    /// Region named in ARNs. Default `us-east-1`.
    pub region: String,
    /// 12-digit account id named in ARNs. Default `000000000000`.
    pub account_id: String,
    /// Settings of the embedded log.
    pub embedded_log: EmbeddedLogSection,
    /// Settings of the Kafka log.
    pub kafka: KafkaSection,
    /// Settings of new workspaces.
    pub workspaces: WorkspacesSection,
    /// Per-workspace limits: defaults and overrides.
    pub limits: Limits,
    /// Settings of the stream workers (log → lake): flush size and age, …
    pub stream_workers: StreamWorkersConfig,
    /// Settings of authentication.
    pub auth: AuthSection,
    /// Settings of rule evaluation.
    pub ruler: RulerSection,
}

/// `[ruler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulerSection {
    /// Interval of the rule groups that set none, seconds (Prometheus's
    /// `evaluation_interval`). Default 60.
    pub evaluation_interval_seconds: u64,
    /// The Alertmanager every workspace's alerts go to: its base URL (the
    /// alerts are posted to `<url>/api/v2/alerts`). Default none: alerts
    /// are evaluated, shown by the rules and alerts APIs, and not sent.
    pub alertmanager_url: Option<String>,
    /// Per-workspace Alertmanagers (workspace id → base URL), taking
    /// precedence over `alertmanager_url`.
    pub alertmanager_urls: std::collections::HashMap<String, String>,
    /// Minimum time before a firing alert is sent again, seconds
    /// (Prometheus's `--rules.alert.resend-delay`). Default 60.
    pub resend_delay_seconds: u64,
    /// Minimum time between a restart and a restored alert firing,
    /// seconds; alerts whose `for` is shorter are not restored (Prometheus's
    /// `--rules.alert.for-grace-period`). Default 600.
    pub for_grace_period_seconds: u64,
    /// How far back the `for` state is restored from, seconds
    /// (Prometheus's `--rules.alert.for-outage-tolerance`). Default 3600.
    pub for_outage_tolerance_seconds: u64,
    /// Labels added to every alert sent (where it lacks them), and the
    /// templates' `$externalLabels` (Prometheus's `external_labels`).
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// The URL before the alerts' `generatorURL` links and the templates'
    /// `$externalURL` (Prometheus's `--web.external-url`). Default empty.
    pub external_url: String,
}

impl Default for RulerSection {
    fn default() -> Self {
        Self {
            evaluation_interval_seconds: 60,
            alertmanager_url: None,
            alertmanager_urls: std::collections::HashMap::new(),
            resend_delay_seconds: 60,
            for_grace_period_seconds: 600,
            for_outage_tolerance_seconds: 3600,
            external_labels: std::collections::BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The file holding the master key that encrypts secret access keys in
    /// the control plane (64 hex digits), created with a random key when
    /// absent. Every process of a deployment must read the same key.
    /// Default `<data-dir>/master.key`.
    pub master_key_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            log: "embedded".into(),
            lake: None,
            lake_s3: S3Config::default(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            embedded_log: EmbeddedLogSection::default(),
            kafka: KafkaSection::default(),
            workspaces: WorkspacesSection::default(),
            limits: Limits::default(),
            stream_workers: StreamWorkersConfig::default(),
            auth: AuthSection::default(),
            ruler: RulerSection::default(),
        }
    }
}

/// `[embedded_log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedLogSection {
    /// Size at which a segment file is closed and a new one started, bytes.
    /// Default 64 MiB.
    pub segment_bytes: u64,
    /// How often retention and compaction run, seconds. Default 60.
    pub maintenance_interval_seconds: u64,
}

impl Default for EmbeddedLogSection {
    fn default() -> Self {
        Self { segment_bytes: 64 << 20, maintenance_interval_seconds: 60 }
    }
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// Replication factor of the topics PromLake creates. Default 3.
    pub replication_factor: i32,
    /// How long a worker process may miss heartbeats before the others take
    /// its partitions over (Kafka consumer-group `session.timeout.ms`),
    /// milliseconds. The broker bounds it (`group.min.session.timeout.ms`,
    /// 6000 by default). Default 10000.
    pub session_timeout_ms: u64,
    /// librdkafka settings passed through to every client, after PromLake's own.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        Self { replication_factor: 3, session_timeout_ms: 10_000, librdkafka: BTreeMap::new() }
    }
}

/// `[workspaces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspacesSection {
    /// Partitions of each new workspace's samples topic. Default 4.
    pub partitions: u32,
    /// How long the log keeps records the stream workers have committed to
    /// the lake, hours. Default 24.
    pub log_retention_hours: u64,
}

impl Default for WorkspacesSection {
    fn default() -> Self {
        Self { partitions: 4, log_retention_hours: 24 }
    }
}

/// Which log backend the config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogBackend {
    /// The on-disk log under the data directory.
    Embedded,
    /// A Kafka cluster, by its bootstrap servers.
    Kafka(String),
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// When the file cannot be read, is not valid TOML, has unknown keys, or
    /// fails [`Config::validate`].
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?;
        config.validate().with_context(|| format!("config file {}", path.display()))?;
        Ok(config)
    }

    /// Checks values, naming the key at fault.
    ///
    /// # Errors
    /// The first invalid key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.log_backend()?;
        if let Some(lake) = &self.lake {
            LakeLocation::parse(lake).and_then(|l| l.with_s3(&self.lake_s3)).context("lake")?;
        }
        if self.workspaces.partitions == 0 || self.workspaces.partitions > 1024 {
            bail!("workspaces.partitions must be between 1 and 1024, not {}", self.workspaces.partitions);
        }
        let label_sets = std::iter::once(Some(&self.limits.ingest.limits_per_label_set))
            .chain(self.limits.overrides.values().map(|o| o.ingest.limits_per_label_set.as_ref()))
            .flatten();
        for sets in label_sets {
            if sets.len() > common::limits::MAX_LABEL_SETS {
                bail!("limits_per_label_set may hold at most {} label sets", common::limits::MAX_LABEL_SETS);
            }
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account_id must be 12 digits, not {:?}", self.account_id);
        }
        if self.region.is_empty()
            || !self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("region must look like us-east-1, not {:?}", self.region);
        }
        if self.embedded_log.segment_bytes < 4096 {
            bail!("embedded_log.segment_bytes must be at least 4096");
        }
        self.stream_workers.validate().map_err(|e| anyhow::anyhow!("stream_workers: {e}"))?;
        let retention_ok = |d: u32| common::limits::RETENTION_PERIOD_DAYS.contains(&d);
        if !retention_ok(self.limits.storage.retention_period_days)
            || self.limits.overrides.values().any(|o| o.storage.retention_period_days.is_some_and(|d| !retention_ok(d)))
        {
            bail!("limits.storage.retention_period_days (and its overrides) must be between 1 and 1095");
        }
        if self.limits.ingest.ingestion_rate <= 0.0 || self.limits.ingest.ingestion_burst_size == 0 {
            bail!("limits.ingest.ingestion_rate and limits.ingest.ingestion_burst_size must be positive");
        }
        Ok(())
    }

    /// The log backend named by `log`.
    ///
    /// # Errors
    /// When `log` is neither `embedded` nor a `kafka://` URL with servers.
    pub fn log_backend(&self) -> anyhow::Result<LogBackend> {
        if self.log == "embedded" {
            return Ok(LogBackend::Embedded);
        }
        match self.log.strip_prefix("kafka://") {
            Some(servers) if !servers.trim_end_matches('/').is_empty() => {
                Ok(LogBackend::Kafka(servers.trim_end_matches('/').to_owned()))
            }
            _ => bail!("log must be \"embedded\" or \"kafka://host:port[,host:port…]\", not {:?}", self.log),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_keys_refused() {
        Config::default().validate().unwrap();
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
        let c: Config =
            toml::from_str("log = \"kafka://a:9092,b:9092\"\n[limits.ingest]\ningestion_rate = 5.0").unwrap();
        assert_eq!(c.log_backend().unwrap(), LogBackend::Kafka("a:9092,b:9092".into()));
        assert_eq!(c.limits.ingest.ingestion_rate, 5.0);
        let bad: Config = toml::from_str("log = \"redis://x\"").unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("log must be"));
    }

    #[test]
    fn s3_lakes_are_configured_in_lake_s3() {
        let c: Config = toml::from_str(
            "lake = \"s3://bucket/lake\"\n[lake_s3]\nendpoint = \"http://minio:9000\"\nallow_http = true\n\
             [lake_s3.options]\naws_virtual_hosted_style_request = \"true\"",
        )
        .unwrap();
        c.validate().unwrap();
        let lake = LakeLocation::parse(c.lake.as_deref().unwrap()).unwrap().with_s3(&c.lake_s3).unwrap();
        assert_eq!(lake.storage_options()["aws_endpoint"], "http://minio:9000");
        assert_eq!(lake.storage_options()["aws_conditional_put"], "etag");
        let unsafe_commits: Config =
            toml::from_str("lake = \"s3://bucket/lake\"\n[lake_s3.options]\naws_conditional_put = \"disabled\"")
                .unwrap();
        let err = format!("{:#}", unsafe_commits.validate().unwrap_err());
        assert!(err.contains("lake") && err.contains("aws_conditional_put"), "{err}");
        assert!(toml::from_str::<Config>("[lake_s3]\nbogus = 1").is_err());
    }

    #[test]
    fn compose_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let config = Config::load(&path).unwrap();
                if let Some(lake) = &config.lake {
                    LakeLocation::parse(lake).unwrap().with_s3(&config.lake_s3).unwrap();
                }
                n += 1;
            }
        }
        assert!(n > 0, "compose/ has no example config");
    }
}
