//! Authentication failures and their one mapping to HTTP: 403 (413 for a
//! body too large to verify) in AWS's JSON error shape, with
//! `x-amzn-ErrorType` and AWS's messages.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor a presigned query string.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// A malformed signature (header, credential scope, date).
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature, its scope or its time does not match.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The access key is unknown, inactive or revoked.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    /// The body is larger than any request accepts, so it is not read.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The caller's policies do not allow the request
    /// (`AccessDeniedException`).
    #[error("{0}")]
    AccessDenied(String),
    /// Our own fault (the key store cannot be read).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// AWS's error type name.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignature",
            AuthError::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
            AuthError::InvalidClientTokenId => "InvalidClientTokenId",
            AuthError::PayloadTooLarge(_) => "ValidationException",
            AuthError::AccessDenied(_) => "AccessDeniedException",
            AuthError::Internal(_) => "InternalServerException",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AuthError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "Authentication failed on our side.");
        }
        aws_response(status, self.error_type(), &self.to_string())
    }
}

/// AWS's error shape: the status, `x-amzn-ErrorType`, `{"message": …}`.
fn aws_response(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut response = (status, axum::Json(serde_json::json!({ "message": message }))).into_response();
    response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    response
}

impl IntoResponse for crate::keys::KeyError {
    fn into_response(self) -> Response {
        use crate::keys::KeyError;
        let (status, error_type) = match &self {
            KeyError::Invalid(_) => (StatusCode::BAD_REQUEST, "ValidationException"),
            KeyError::NotFound(_) => (StatusCode::NOT_FOUND, "NoSuchEntity"),
            KeyError::Exists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists"),
            KeyError::Store(_) | KeyError::MasterKey { .. } | KeyError::Decrypt(_) | KeyError::Random => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException")
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "Identity request failed on our side.");
        }
        aws_response(status, error_type, &self.to_string())
    }
}
