//! The stream workers' errors, one variant per failure site.

use common::ErrorKind;
use common::log::LogError;

/// A failure of the stream workers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading from or committing offsets to the log failed.
    #[error("log ({context}): {source}")]
    Log {
        /// What the worker was doing.
        context: String,
        /// The log's error.
        #[source]
        source: LogError,
    },
    /// A log record is not a valid `WriteBatch`. The worker cannot skip it
    /// silently (that would lose acknowledged samples), so it stops.
    #[error("record at {topic}/{partition} offset {offset} is not a valid WriteBatch: {source}")]
    Decode {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// The lake location is not a usable URL or path.
    #[error("invalid lake location {location:?}: {reason}")]
    InvalidLake {
        /// What was given.
        location: String,
        /// Why it is refused.
        reason: String,
    },
    /// Building an Arrow batch failed (a bug: the schemas are ours).
    #[error("building the {table} batch: {source}")]
    Arrow {
        /// The table.
        table: &'static str,
        /// Arrow's error.
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    /// Creating, reading, writing or committing a Delta table failed.
    #[error("delta table {table_url} ({context}): {source}")]
    Delta {
        /// The table.
        table_url: String,
        /// What the writer was doing.
        context: &'static str,
        /// delta-rs' error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Another writer committed for the same application id since this worker
    /// read the table: the partition has (or had) a second owner. The worker
    /// stops rather than guess; [`crate::StreamWorkers`] starts a fresh one
    /// from the tables' versions if the partition is still owned here.
    #[error(
        "table {table_url}: transaction {app_id} is at version {found:?}, expected {expected:?} (another worker owns the partition)"
    )]
    Fenced {
        /// The table.
        table_url: String,
        /// The application id (`<topic>/<partition>`).
        app_id: String,
        /// The version this worker last committed or read.
        expected: Option<u64>,
        /// The version found in the table.
        found: Option<u64>,
    },
    /// A test double was told to fail (see the tests' fault-injecting writers).
    #[error("injected failure: {0}")]
    Injected(&'static str),
    /// The worker was shut down before it finished.
    #[error("stream worker shut down")]
    Canceled,
    /// Waiting for an offset to be committed ran out of time.
    #[error("offset {offset} of partition {partition} not committed within {timeout_ms} ms")]
    Timeout {
        /// The partition waited on.
        partition: u32,
        /// The offset waited for.
        offset: u64,
        /// How long the caller waited.
        timeout_ms: u64,
    },
    /// The worker's task is gone (it failed or was stopped).
    #[error("no running worker for {workspace_id} partition {partition}")]
    NoWorker {
        /// The workspace.
        workspace_id: String,
        /// The partition.
        partition: u32,
    },
}

impl Error {
    /// The kind of this error, for the HTTP edge.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Log { source, .. } => source.kind(),
            Error::Decode { .. } | Error::Arrow { .. } | Error::Injected(_) => ErrorKind::Internal,
            Error::InvalidLake { .. } => ErrorKind::BadData,
            Error::Delta { .. } => ErrorKind::Unavailable,
            Error::Fenced { .. } => ErrorKind::Conflict,
            Error::Canceled => ErrorKind::Canceled,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::NoWorker { .. } => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn log(context: impl Into<String>, source: LogError) -> Self {
        Error::Log { context: context.into(), source }
    }

    pub(crate) fn delta(table_url: &impl ToString, context: &'static str, source: deltalake::DeltaTableError) -> Self {
        Error::Delta { table_url: table_url.to_string(), context, source: Box::new(source) }
    }
}

/// Result of stream-worker operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
