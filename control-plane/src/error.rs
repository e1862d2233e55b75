//! Control-plane errors and their one mapping to AWS-shaped HTTP responses
//! (`x-amzn-ErrorType` header, JSON body with `message`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::ErrorKind;
use common::control::ControlError;
use common::log::LogError;

/// A field that failed validation, as AMP's `ValidationExceptionField`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldError {
    /// The request member.
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(name: &str, message: impl Into<String>) -> Self {
        Self { name: name.to_owned(), message: message.into() }
    }
}

/// A control-plane failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid (`ValidationException`, 400).
    #[error("{message}")]
    Validation {
        /// Summary.
        message: String,
        /// Each bad field.
        fields: Vec<FieldError>,
    },
    /// The resource does not exist (`ResourceNotFoundException`, 404).
    #[error("{message}")]
    NotFound {
        /// Summary.
        message: String,
        /// The id asked for.
        resource_id: String,
        /// `Workspace`, …
        resource_type: &'static str,
    },
    /// The request conflicts with existing state (`ConflictException`, 409).
    #[error("{message}")]
    Conflict {
        /// Summary.
        message: String,
        /// The resource in conflict.
        resource_id: String,
        /// `Workspace`, …
        resource_type: &'static str,
    },
    /// A quota would be exceeded (`ServiceQuotaExceededException`, 402).
    #[error("{message}")]
    ServiceQuotaExceeded {
        /// Summary.
        message: String,
        /// The resource.
        resource_id: String,
        /// `Workspace`, …
        resource_type: &'static str,
        /// Which quota.
        quota_code: &'static str,
    },
    /// The control-plane store failed.
    #[error(transparent)]
    Store(#[from] ControlError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Our own fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of control-plane operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn validation(field: &str, message: String) -> Self {
        Error::Validation { fields: vec![FieldError::new(field, message.clone())], message }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation { .. } => ErrorKind::BadData,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::ServiceQuotaExceeded { .. } => ErrorKind::LimitExceeded,
            Error::Store(e) => e.kind(),
            Error::Log(e) => e.kind(),
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// AWS's error type name and status for a kind: the one mapping.
fn aws_error(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::BadData | ErrorKind::TooLarge | ErrorKind::UnsupportedMediaType => {
            (StatusCode::BAD_REQUEST, "ValidationException")
        }
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "ConflictException"),
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException"),
        ErrorKind::LimitExceeded => (StatusCode::PAYMENT_REQUIRED, "ServiceQuotaExceededException"),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Internal => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException")
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, error_type) = aws_error(self.kind());
        let mut body = serde_json::json!({ "message": self.to_string() });
        match &self {
            Error::Validation { fields, .. } => {
                body["reason"] = "FIELD_VALIDATION_FAILED".into();
                body["fieldList"] = serde_json::to_value(fields).unwrap_or_default();
            }
            Error::NotFound { resource_id, resource_type, .. } | Error::Conflict { resource_id, resource_type, .. } => {
                body["resourceId"] = resource_id.as_str().into();
                body["resourceType"] = (*resource_type).into();
            }
            Error::ServiceQuotaExceeded { resource_id, resource_type, quota_code, .. } => {
                body["resourceId"] = resource_id.as_str().into();
                body["resourceType"] = (*resource_type).into();
                body["serviceCode"] = "aps".into();
                body["quotaCode"] = (*quota_code).into();
            }
            _ => {}
        }
        if status.is_server_error() {
            tracing::error!(error = %self, "Control-plane request failed.");
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
        response
    }
}
