//! The HTTP layer that authenticates and authorizes every request before it
//! is routed, so a caller learns nothing it may not (not even whether a
//! workspace exists): body read (capped), SigV4 parsed, scope and time
//! checked, key looked up, signature verified, then the caller's policies
//! evaluated for the request's action and resource
//! ([`crate::actions::action_for`]); the caller's [`Identity`] is then in
//! the request's extensions for the handlers.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use common::clock::Clock;
use common::limits::Overrides;
use http_body_util::BodyExt as _;

use common::arn::ArnScheme;

use crate::error::AuthError;
use crate::keys::{AccessKey, KeyStatus, KeyStore};
use crate::policy::{Decision, evaluate};
use crate::sigv4::{self, RequestParts, Scope};

/// Paths served without authentication: the health checks (they tell
/// nothing). PromLake's own `/metrics` names workspaces, so it needs a
/// signature and `promlake:GetMetrics` (which `AdministratorAccess` has).
pub const UNAUTHENTICATED_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

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
    arns: ArnScheme,
    clock: Arc<dyn Clock>,
    overrides: Arc<Overrides>,
}

impl Authenticator {
    /// An authenticator for requests signed for the region of `arns` and
    /// service `aps`.
    pub fn new(keys: Arc<KeyStore>, arns: ArnScheme, clock: Arc<dyn Clock>, overrides: Arc<Overrides>) -> Self {
        let scope = Scope { region: arns.region.clone(), service: "aps".to_owned() };
        Self { keys, scope, arns, clock, overrides }
    }

    /// Checks that `identity`'s policies allow the request: IAM's
    /// evaluation (explicit deny wins, default deny) of each action the
    /// request maps to, on its resource. A request that maps to no API is
    /// denied too: nothing is routed unchecked.
    ///
    /// # Errors
    /// `AccessDenied` with AWS's message.
    pub fn authorize(&self, identity: &Identity, method: &str, raw_path: &str) -> Result<(), AuthError> {
        let user = self.keys.principal_arn(&identity.principal);
        let key_owner = |id: &str| self.keys.key_principal(id).ok().map(|p| self.keys.principal_arn(&p));
        let Some(action) = crate::actions::action_for(method, raw_path, &self.arns, &key_owner) else {
            return Err(AuthError::AccessDenied(format!(
                "User: {user} is not authorized to perform: {method} {raw_path}: it is no operation of this service"
            )));
        };
        let policies = self.keys.policies(&identity.principal).map_err(|e| AuthError::Internal(e.to_string()))?;
        for name in action.actions {
            match evaluate(&policies, name, &action.resource) {
                Decision::Allow => {}
                Decision::ExplicitDeny => {
                    return Err(AuthError::AccessDenied(format!(
                        "User: {user} is not authorized to perform: {name} on resource: {} with an explicit deny \
                         in an identity-based policy",
                        action.resource
                    )));
                }
                Decision::ImplicitDeny => {
                    return Err(AuthError::AccessDenied(format!(
                        "User: {user} is not authorized to perform: {name} on resource: {} because no \
                         identity-based policy allows the {name} action",
                        action.resource
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks everything of a request's signature that does not need the
    /// body — its form, scope and time, and that its key exists and is
    /// active — so that no body is read for a caller without a key.
    ///
    /// # Errors
    /// The [`AuthError`] to answer with.
    pub fn precheck(&self, request: &RequestParts<'_>) -> Result<(sigv4::SignedRequestInfo, AccessKey), AuthError> {
        let info = sigv4::parse(request)?;
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(self.clock.now_ms().max(0) as u64);
        sigv4::check_scope_and_time(&info, &self.scope, now)?;
        match self.keys.lookup(&info.access_key_id) {
            Ok(Some(key)) if key.status == KeyStatus::Active => Ok((info, key)),
            Ok(_) => Err(AuthError::InvalidClientTokenId),
            Err(e) => Err(AuthError::Internal(e.to_string())),
        }
    }

    /// The largest body read for verification: the ingest limit of the
    /// workspace the path names (the largest bodies are remote writes),
    /// else the default one.
    fn body_limit(&self, path: &str) -> usize {
        let workspace = path.strip_prefix("/workspaces/").and_then(|rest| rest.split('/').next()).unwrap_or_default();
        self.overrides.ingest(workspace).max_request_body_bytes
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`): signature
/// form, scope, time and key first (no body is read for a caller without
/// an active key), then the body (capped) and the signature over it, then
/// the policies.
pub async fn authenticate(State(auth): State<Arc<Authenticator>>, request: Request, next: Next) -> Response {
    if UNAUTHENTICATED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    fn request_parts<'a>(
        parts: &'a axum::http::request::Parts,
        headers: &'a [(&'a str, &'a [u8])],
        body: &'a [u8],
    ) -> RequestParts<'a> {
        RequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers,
            body,
        }
    }
    let (info, key) = match auth.precheck(&request_parts(&parts, &headers, &[])) {
        Ok(checked) => checked,
        Err(error) => return refuse(error, parts.uri.path()),
    };
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
    if let Err(error) = sigv4::verify_signature(&request_parts(&parts, &headers, &body), &info, &key.secret) {
        return refuse(error, parts.uri.path());
    }
    let identity = Identity { principal: key.principal, access_key_id: key.access_key_id };
    if let Err(error) = auth.authorize(&identity, parts.method.as_str(), parts.uri.path()) {
        return refuse(error, parts.uri.path());
    }
    drop(headers);
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(identity);
    next.run(request).await
}

fn refuse(error: AuthError, path: &str) -> Response {
    tracing::debug!(%error, path, "Refused a request.");
    error.into_response()
}
