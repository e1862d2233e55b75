//! `promlake principal …` and `promlake key …`: the identity API
//! (`auth::admin`) of a running PromLake, called with requests signed by
//! `aws-sigv4` with the key pair of `<data-dir>/credentials`.

use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{Connection, KeyCommand, PolicyArgs, PrincipalCommand};

/// Runs `promlake principal …`; prints the answer's JSON.
///
/// # Errors
/// When PromLake cannot be reached or refuses the request.
pub async fn principal(command: PrincipalCommand) -> anyhow::Result<()> {
    let (method, path, body, connection) = match command {
        PrincipalCommand::Create { name, policies, connection } => (
            "POST",
            "/iam/principals".to_owned(),
            json!({ "name": name, "policies": policies_of(&policies)? }),
            connection,
        ),
        PrincipalCommand::SetPolicies { name, policies, connection } => (
            "PUT",
            format!("/iam/principals/{name}/policies"),
            json!({ "policies": policies_of(&policies)? }),
            connection,
        ),
        PrincipalCommand::Show { name, connection } => {
            ("GET", format!("/iam/principals/{name}"), Value::Null, connection)
        }
    };
    call(&connection, method, &path, &body).await
}

/// Runs `promlake key …`; prints the answer's JSON.
///
/// # Errors
/// When PromLake cannot be reached or refuses the request.
pub async fn key(command: KeyCommand) -> anyhow::Result<()> {
    let (method, path, connection) = match command {
        KeyCommand::Create { principal, connection } => {
            ("POST", format!("/iam/principals/{principal}/keys"), connection)
        }
        KeyCommand::Rotate { access_key_id, connection } => {
            ("POST", format!("/iam/keys/{access_key_id}/rotate"), connection)
        }
        KeyCommand::Revoke { access_key_id, connection } => {
            ("DELETE", format!("/iam/keys/{access_key_id}"), connection)
        }
    };
    call(&connection, method, &path, &Value::Null).await
}

fn policies_of(args: &PolicyArgs) -> anyhow::Result<Vec<Value>> {
    let mut out: Vec<Value> = args.builtin.iter().map(|b| Value::String(b.clone())).collect();
    for file in &args.files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        out.push(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?);
    }
    Ok(out)
}

async fn call(connection: &Connection, method: &str, path: &str, body: &Value) -> anyhow::Result<()> {
    let profile = |file: &str| -> anyhow::Result<Vec<(String, String)>> {
        let path = connection.data_dir.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(ini_default_profile(&text))
    };
    let config = profile("config").unwrap_or_default();
    let get = |pairs: &[(String, String)], key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let endpoint = match &connection.endpoint {
        Some(e) => e.clone(),
        None => get(&config, "endpoint_url").context("no --endpoint, and no endpoint_url in <data-dir>/config")?,
    };
    let region = connection.region.clone().or_else(|| get(&config, "region")).unwrap_or_else(|| "us-east-1".into());
    let (access_key_id, secret_access_key) =
        match (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
            (Ok(id), Ok(secret)) => (id, secret),
            _ => {
                let creds = profile("credentials")?;
                (
                    get(&creds, "aws_access_key_id").context("no aws_access_key_id in <data-dir>/credentials")?,
                    get(&creds, "aws_secret_access_key")
                        .context("no aws_secret_access_key in <data-dir>/credentials")?,
                )
            }
        };
    let signer = auth::client::Signer { access_key_id, secret_access_key, region };
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let parsed = url::Url::parse(&url).with_context(|| format!("invalid URL {url}"))?;
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_owned(),
    };
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(body)? };
    let mut headers = vec![("host", host.as_str())];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let signed = signer.sign(method, &url, &headers, &body, SystemTime::now()).map_err(anyhow::Error::msg)?;
    let mut request = reqwest::Client::new().request(method.parse()?, &url).body(body);
    for (name, value) in
        headers.iter().filter(|(n, _)| *n != "host").map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).chain(signed)
    {
        request = request.header(name, value);
    }
    let response = request.send().await.with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{method} {path}: {status}: {text}");
    }
    println!("{text}");
    Ok(())
}

/// The `[default]` profile's keys and values of an AWS ini file.
fn ini_default_profile(text: &str) -> Vec<(String, String)> {
    let mut in_default = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = matches!(line, "[default]" | "[profile default]");
        } else if in_default && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}
