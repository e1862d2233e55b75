//! Gateway errors and their one mapping to HTTP. Remote-write senders read
//! the status: 4xx means "do not retry", 429 and 5xx mean "retry".

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::ErrorKind;
use common::log::LogError;

/// A remote-write failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workspace does not exist or is not active.
    #[error("workspace {0} not found")]
    WorkspaceNotFound(String),
    /// `Content-Type` or `Content-Encoding` is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The compressed or decompressed body is over its cap.
    #[error("{0}")]
    TooLarge(String),
    /// The body is not valid snappy or protobuf: nothing was written.
    #[error("decoding the request failed: {0}")]
    Decode(String),
    /// Reading the request body failed.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// Some series were invalid: the valid ones were written, this is the
    /// first error.
    #[error("{0}")]
    Invalid(String),
    /// The workspace's ingestion rate limit or a label set's active-series
    /// limit: nothing was written.
    #[error("{message}")]
    RateLimited {
        /// Names the limit and its settings.
        message: String,
        /// When a retry can succeed.
        retry_after: Duration,
    },
    /// Appending to the log failed: nothing acknowledged, retry.
    #[error("storing the samples failed: {0}")]
    Log(#[from] LogError),
}

/// Result of gateway operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::WorkspaceNotFound(_) => ErrorKind::NotFound,
            Error::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            Error::TooLarge(_) => ErrorKind::TooLarge,
            Error::Decode(_) | Error::Body(_) | Error::Invalid(_) => ErrorKind::BadData,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Log(e) => e.kind(),
        }
    }
}

/// The HTTP status of a kind on the remote-write path: the one mapping.
pub(crate) fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadData => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RateLimited | ErrorKind::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable | ErrorKind::Canceled => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(self.kind());
        if status.is_server_error() {
            tracing::error!(error = %self, "Remote write failed.");
        }
        let mut response = (status, format!("{self}\n")).into_response();
        if let Error::RateLimited { retry_after, .. } = &self {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
