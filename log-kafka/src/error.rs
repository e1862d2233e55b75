//! Errors: the crate's own ([`ConfigError`]) and the mapping of librdkafka's
//! [`KafkaError`]s onto the log's [`LogError`].

use common::log::LogError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A [`KafkaLogConfig`](crate::KafkaLogConfig) that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value the log cannot run with.
    #[error("invalid log-kafka setting `{key}`: {reason}")]
    Invalid {
        /// The setting, as spelled in the config file.
        key: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

impl From<ConfigError> for LogError {
    fn from(err: ConfigError) -> Self {
        LogError::Broker { context: "configuring the Kafka log".to_owned(), message: err.to_string() }
    }
}

/// Whether `code` says the topic (or one of its partitions) is unknown.
pub(crate) fn is_unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
}

/// Maps a client error met while working on `topic` (and `partition`, when
/// one is concerned).
///
/// Unknown-topic codes become [`LogError::TopicNotFound`], the client's
/// unknown-partition code [`LogError::PartitionNotFound`], everything else
/// [`LogError::Broker`] with `context`.
pub(crate) fn map_kafka(context: &str, topic: &str, partition: Option<u32>, err: &KafkaError) -> LogError {
    match (err.rdkafka_error_code(), partition) {
        (Some(code), _) if is_unknown_topic(code) => LogError::TopicNotFound { topic: topic.to_owned() },
        (Some(RDKafkaErrorCode::UnknownPartition), Some(partition)) => {
            LogError::PartitionNotFound { topic: topic.to_owned(), partition }
        }
        _ => broker(context, err),
    }
}

/// A [`LogError::Broker`] for `err`.
pub(crate) fn broker(context: &str, err: impl std::fmt::Display) -> LogError {
    LogError::Broker { context: context.to_owned(), message: err.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_topic_and_partition_are_not_found() {
        let err = KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert!(matches!(map_kafka("fetch", "t", Some(1), &err), LogError::TopicNotFound { topic } if topic == "t"));
        let err = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition);
        assert!(matches!(map_kafka("append", "t", Some(7), &err), LogError::PartitionNotFound { partition: 7, .. }));
        let err = KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure);
        let mapped = map_kafka("append", "t", Some(7), &err);
        assert!(matches!(&mapped, LogError::Broker { context, .. } if context == "append"), "{mapped}");
    }
}
