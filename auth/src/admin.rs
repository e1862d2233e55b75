//! PromLake's identity API (IAM's role, in PromLake's own small shape),
//! used by the `promlake principal …` and `promlake key …` subcommands:
//!
//! - `POST /iam/principals` `{"name", "policies": [...]}` (`iam:CreateUser`)
//! - `GET /iam/principals/{name}` (`iam:GetUser`)
//! - `PUT /iam/principals/{name}/policies` `{"policies": [...]}` (`iam:PutUserPolicy`)
//! - `POST /iam/principals/{name}/keys` (`iam:CreateAccessKey`): the new key pair
//! - `POST /iam/keys/{id}/rotate` (`iam:CreateAccessKey`): a new key pair for
//!   the same principal, the old key revoked
//! - `DELETE /iam/keys/{id}` (`iam:UpdateAccessKey`): revokes the key
//!
//! A policy is the name of a built-in one (`policy::BUILTIN_POLICIES`) or
//! an IAM policy document. Like every other request these are signed and
//! checked against the caller's policies (the first-start `admin` has
//! `AdministratorAccess`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::keys::{KeyError, KeyStore};

/// The identity API's routes.
pub fn router(keys: Arc<KeyStore>) -> Router {
    Router::new()
        .route("/iam/principals", post(create_principal))
        .route("/iam/principals/{name}", get(describe_principal))
        .route("/iam/principals/{name}/policies", put(set_policies))
        .route("/iam/principals/{name}/keys", post(create_key))
        .route("/iam/keys/{id}/rotate", post(rotate_key))
        .route("/iam/keys/{id}", delete(revoke_key))
        .with_state(keys)
}

type Keys = State<Arc<KeyStore>>;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePrincipal {
    name: String,
    #[serde(default)]
    policies: Vec<Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPolicies {
    policies: Vec<Value>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, KeyError> {
    serde_json::from_slice(body).map_err(|e| KeyError::Invalid(format!("invalid request body: {e}")))
}

async fn create_principal(State(keys): Keys, body: Bytes) -> Result<Response, KeyError> {
    let request: CreatePrincipal = parse(&body)?;
    keys.create_principal(&request.name, request.policies).await?;
    tracing::info!(principal = %request.name, "Created a principal.");
    Ok(Json(json!({ "principal": keys.describe_principal(&request.name)? })).into_response())
}

async fn describe_principal(State(keys): Keys, Path(name): Path<String>) -> Result<Response, KeyError> {
    Ok(Json(json!({ "principal": keys.describe_principal(&name)? })).into_response())
}

async fn set_policies(State(keys): Keys, Path(name): Path<String>, body: Bytes) -> Result<Response, KeyError> {
    let request: SetPolicies = parse(&body)?;
    keys.set_policies(&name, request.policies).await?;
    tracing::info!(principal = %name, "Replaced a principal's policies.");
    Ok(Json(json!({ "principal": keys.describe_principal(&name)? })).into_response())
}

async fn create_key(State(keys): Keys, Path(name): Path<String>) -> Result<Response, KeyError> {
    let (id, secret) = keys.create_key(&name).await?;
    tracing::info!(principal = %name, access_key_id = %id, "Created an access key.");
    Ok(Json(json!({ "accessKeyId": id, "secretAccessKey": secret, "principal": name })).into_response())
}

async fn rotate_key(State(keys): Keys, Path(old): Path<String>) -> Result<Response, KeyError> {
    let principal = keys.key_principal(&old)?;
    let (id, secret) = keys.create_key(&principal).await?;
    keys.revoke_key(&old).await?;
    tracing::info!(%principal, old = %old, new = %id, "Rotated an access key.");
    Ok(Json(json!({ "accessKeyId": id, "secretAccessKey": secret, "principal": principal, "revoked": old }))
        .into_response())
}

async fn revoke_key(State(keys): Keys, Path(id): Path<String>) -> Result<Response, KeyError> {
    keys.revoke_key(&id).await?;
    tracing::info!(access_key_id = %id, "Revoked an access key.");
    Ok(Json(json!({ "accessKeyId": id, "status": "Inactive" })).into_response())
}
