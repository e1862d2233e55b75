//! The HTTP layer that authenticates every request before it is routed, so
//! an unauthenticated caller learns nothing (not even whether a workspace
//! exists): body read (capped), SigV4 parsed, scope and time checked, key
//! looked up, signature verified; the caller's [`Identity`] is then in the
//! request's extensions for the handlers (and the policy check).

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use common::clock::Clock;
use common::limits::Overrides;
use http_body_util::BodyExt as _;

use crate::error::AuthError;
use crate::keys::{KeyStatus, KeyStore};
use crate::sigv4::{self, RequestParts, Scope};

/// Paths served without authentication: health checks and PromLake's own
/// `/metrics` (an operator's endpoints, outside AMP's API).
pub const UNAUTHENTICATED_PATHS: [&str; 3] = ["/-/healthy", "/-/ready", "/metrics"];

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The principal's name.
    pub principal: String,
    /// The access key that signed the request.
    pub access_key_id: String,
}

/// Verifies SigV4 signatures against the key store.
#[derive(Debug)]
pub struct Authenticator {
    keys: Arc<KeyStore>,
    scope: Scope,
    clock: Arc<dyn Clock>,
    overrides: Arc<Overrides>,
}

impl Authenticator {
    /// An authenticator for requests signed for `region` and service `aps`.
    pub fn new(keys: Arc<KeyStore>, region: &str, clock: Arc<dyn Clock>, overrides: Arc<Overrides>) -> Self {
        Self { keys, scope: Scope { region: region.to_owned(), service: "aps".to_owned() }, clock, overrides }
    }

    /// Checks a request's signature; returns who signed it.
    ///
    /// # Errors
    /// The [`AuthError`] to answer with.
    pub fn verify(&self, request: &RequestParts<'_>) -> Result<Identity, AuthError> {
        let info = sigv4::parse(request)?;
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(self.clock.now_ms().max(0) as u64);
        sigv4::check_scope_and_time(&info, &self.scope, now)?;
        let key = match self.keys.lookup(&info.access_key_id) {
            Ok(Some(key)) if key.status == KeyStatus::Active => key,
            Ok(_) => return Err(AuthError::InvalidClientTokenId),
            Err(e) => return Err(AuthError::Internal(e.to_string())),
        };
        sigv4::verify_signature(request, &info, &key.secret)?;
        Ok(Identity { principal: key.principal, access_key_id: key.access_key_id })
    }

    /// The largest body read for verification: the ingest limit of the
    /// workspace the path names (the largest bodies are remote writes),
    /// else the default one.
    fn body_limit(&self, path: &str) -> usize {
        let workspace = path.strip_prefix("/workspaces/").and_then(|rest| rest.split('/').next()).unwrap_or_default();
        self.overrides.ingest(workspace).max_request_body_bytes
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn authenticate(State(auth): State<Arc<Authenticator>>, request: Request, next: Next) -> Response {
    if UNAUTHENTICATED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = auth.body_limit(parts.uri.path());
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return AuthError::PayloadTooLarge(limit).into_response();
        }
        Err(e) => {
            return (axum::http::StatusCode::BAD_REQUEST, format!("reading the request body: {e}")).into_response();
        }
    };
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let verified = auth.verify(&RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
        body: &body,
    });
    match verified {
        Ok(identity) => {
            drop(headers);
            let mut request = Request::from_parts(parts, Body::from(body));
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(error) => {
            tracing::debug!(%error, path = parts.uri.path(), "Refused an unauthenticated request.");
            error.into_response()
        }
    }
}
