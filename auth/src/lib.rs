//! Authentication of every PromLake request with AWS Signature Version 4
//! (service `aps`), as AMP does it.
//!
//! ```text
//!  request ──► layer::authenticate ──► sigv4::parse (Authorization header | presigned query)
//!                 │ (body read, capped     ──► check_scope_and_time (region, service, ±5 min / expiry)
//!                 │  by the ingest limit)  ──► KeyStore::lookup (access key → principal, secret decrypted)
//!                 │                        ──► verify_signature (canonical request rebuilt; aws-sigv4's
//!                 │                             signing key and signature; constant-time compare)
//!                 │                        ──► authorize (actions::action_for → policy::evaluate)
//!                 ▼
//!            router (Identity in the request's extensions) │ or 403 in AWS's error shape
//! ```
//!
//! Guarantees:
//! - Nothing is routed before the signature is verified: an
//!   unauthenticated caller gets the same 403 whatever the path, so it
//!   cannot learn whether a workspace exists.
//! - A signed payload hash covers the body byte for byte; `UNSIGNED-PAYLOAD`
//!   is accepted only when the client declares it (header or presigned).
//! - Secret access keys are stored encrypted in the control plane
//!   ([`keys`]) and never logged; a revoked key is refused from the moment
//!   the revocation is applied to the process's view of `_control`.
//! - Only the paths in [`layer::UNAUTHENTICATED_PATHS`] skip the check.
//! - Then the principal's policies ([`policy`], IAM's evaluation) must allow
//!   the request's action on its resource ([`actions`], AMP's `aps:` names);
//!   otherwise 403 `AccessDeniedException`, again before routing.

pub mod actions;
pub mod admin;
pub mod client;
pub mod error;
pub mod keys;
pub mod layer;
pub mod policy;
pub mod sigv4;

pub use error::AuthError;
pub use keys::{AccessKey, KeyError, KeyStatus, KeyStore, MasterKey};
pub use layer::{Authenticator, Identity, authenticate};
