//! Signing requests as a client (the `promlake principal …` / `key …`
//! subcommands), with `aws-sigv4`'s own signer: the headers to add to a
//! request so that PromLake (or AWS) accepts it.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// A key pair and the scope to sign for.
#[derive(Clone)]
pub struct Signer {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region of the credential scope.
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("access_key_id", &self.access_key_id).field("region", &self.region).finish()
    }
}

impl Signer {
    /// The headers (`authorization`, `x-amz-date`, …) that sign a request
    /// for service `aps` at `time`. `url` is the full URL, already
    /// percent-encoded; `headers` must include `host`.
    ///
    /// # Errors
    /// When the URL or a header cannot be signed.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let identity: Identity =
            Credentials::new(&self.access_key_id, &self.secret_access_key, None, None, "promlake").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("aps")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        let (added, _query) = instructions.into_parts();
        Ok(added.into_iter().map(|h| (h.name().to_owned(), h.value().to_owned())).collect())
    }
}
