//! The configuration types Alertmanager takes from Prometheus's common
//! library: URLs (`URL`, `SecretURL`, the webhook's templated URL),
//! `host:port` addresses, `http_config` (`HTTPClientConfig`) and
//! `tls_config`, with their validation and messages.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::yaml::{GoBool, GoStr, set};

/// `http_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub oauth2: Option<OAuth2>,
    #[serde(default)]
    pub bearer_token: Option<GoStr>,
    #[serde(default)]
    pub bearer_token_file: Option<GoStr>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub follow_redirects: Option<GoBool>,
    #[serde(default)]
    pub enable_http2: Option<GoBool>,
    #[serde(default)]
    pub proxy_url: Option<GoStr>,
    #[serde(default)]
    pub no_proxy: Option<GoStr>,
    #[serde(default)]
    pub proxy_from_environment: Option<GoBool>,
    #[serde(default)]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<GoStr>>>,
    #[serde(default)]
    pub http_headers: Option<BTreeMap<String, Option<HeaderValues>>>,
}

/// The proxy members shared by `http_config` and `oauth2`.
struct Proxy<'a> {
    proxy_url: &'a Option<GoStr>,
    no_proxy: &'a Option<GoStr>,
    proxy_from_environment: &'a Option<GoBool>,
    proxy_connect_header: &'a Option<BTreeMap<String, Vec<GoStr>>>,
}

macro_rules! proxy_of {
    ($c:expr) => {
        Proxy {
            proxy_url: &$c.proxy_url,
            no_proxy: &$c.no_proxy,
            proxy_from_environment: &$c.proxy_from_environment,
            proxy_connect_header: &$c.proxy_connect_header,
        }
    };
}

/// One of `http_headers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValues {
    #[serde(default)]
    pub values: Option<Vec<GoStr>>,
    #[serde(default)]
    pub secrets: Option<Vec<GoStr>>,
    #[serde(default)]
    pub files: Option<Vec<GoStr>>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: Option<GoStr>,
    #[serde(default)]
    pub username_file: Option<GoStr>,
    #[serde(default)]
    pub username_ref: Option<GoStr>,
    #[serde(default)]
    pub password: Option<GoStr>,
    #[serde(default)]
    pub password_file: Option<GoStr>,
    #[serde(default)]
    pub password_ref: Option<GoStr>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type")]
    pub kind: Option<GoStr>,
    #[serde(default)]
    pub credentials: Option<GoStr>,
    #[serde(default)]
    pub credentials_file: Option<GoStr>,
    #[serde(default)]
    pub credentials_ref: Option<GoStr>,
}

/// `oauth2`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default)]
    pub client_id: Option<GoStr>,
    #[serde(default)]
    pub client_secret: Option<GoStr>,
    #[serde(default)]
    pub client_secret_file: Option<GoStr>,
    #[serde(default)]
    pub client_secret_ref: Option<GoStr>,
    #[serde(default)]
    pub client_certificate_key_id: Option<GoStr>,
    #[serde(default)]
    pub client_certificate_key: Option<GoStr>,
    #[serde(default)]
    pub client_certificate_key_file: Option<GoStr>,
    #[serde(default)]
    pub client_certificate_key_ref: Option<GoStr>,
    #[serde(default)]
    pub grant_type: Option<GoStr>,
    #[serde(default)]
    pub signature_algorithm: Option<GoStr>,
    #[serde(default)]
    pub iss: Option<GoStr>,
    #[serde(default)]
    pub audience: Option<GoStr>,
    #[serde(default)]
    pub claims: Option<serde_norway::Value>,
    #[serde(default)]
    pub scopes: Option<Vec<GoStr>>,
    #[serde(default)]
    pub token_url: Option<GoStr>,
    #[serde(default)]
    pub endpoint_params: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub proxy_url: Option<GoStr>,
    #[serde(default)]
    pub no_proxy: Option<GoStr>,
    #[serde(default)]
    pub proxy_from_environment: Option<GoBool>,
    #[serde(default)]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<GoStr>>>,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca: Option<GoStr>,
    #[serde(default)]
    pub cert: Option<GoStr>,
    #[serde(default)]
    pub key: Option<GoStr>,
    #[serde(default)]
    pub ca_file: Option<GoStr>,
    #[serde(default)]
    pub cert_file: Option<GoStr>,
    #[serde(default)]
    pub key_file: Option<GoStr>,
    #[serde(default)]
    pub ca_ref: Option<GoStr>,
    #[serde(default)]
    pub cert_ref: Option<GoStr>,
    #[serde(default)]
    pub key_ref: Option<GoStr>,
    #[serde(default)]
    pub server_name: Option<GoStr>,
    #[serde(default)]
    pub insecure_skip_verify: Option<GoBool>,
    #[serde(default)]
    pub min_version: Option<GoStr>,
    #[serde(default)]
    pub max_version: Option<GoStr>,
}

fn count(vs: &[&Option<GoStr>]) -> usize {
    vs.iter().filter(|v| set(v)).count()
}

impl TlsConfig {
    /// `TLSConfig`'s checks.
    ///
    /// # Errors
    /// Prometheus's messages.
    pub fn check(&self) -> Result<(), String> {
        for v in [&self.min_version, &self.max_version].into_iter().flatten() {
            if !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
                return Err(format!("unknown TLS version: {v}"));
            }
        }
        if count(&[&self.ca, &self.ca_file, &self.ca_ref]) > 1 {
            return Err("at most one of ca, ca_file & ca_ref must be configured".into());
        }
        let certs = count(&[&self.cert, &self.cert_file, &self.cert_ref]);
        if certs > 1 {
            return Err("at most one of cert, cert_file & cert_ref must be configured".into());
        }
        let keys = count(&[&self.key, &self.key_file, &self.key_ref]);
        if keys > 1 {
            return Err("at most one of key and key_file must be configured".into());
        }
        if certs > 0 && keys == 0 {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured".into()
            );
        }
        if keys > 0 && certs == 0 {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        Ok(())
    }
}

impl Proxy<'_> {
    fn check(&self) -> Result<(), String> {
        let from_env = self.proxy_from_environment.is_some_and(|b| b.0);
        let url = set(self.proxy_url);
        if let Some(u) = &self.proxy_url
            && !u.is_empty()
        {
            go_url_parse(u.as_str()).map_err(|e| format!("parse {:?}: {e}", u.as_str()))?;
        }
        if self.proxy_connect_header.as_ref().is_some_and(|h| !h.is_empty()) && !from_env && !url {
            return Err(
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured"
                    .into(),
            );
        }
        if from_env && url {
            return Err("if proxy_from_environment is configured, proxy_url must not be configured".into());
        }
        if from_env && set(self.no_proxy) {
            return Err("if proxy_from_environment is configured, no_proxy must not be configured".into());
        }
        if set(self.no_proxy) && !url {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        Ok(())
    }
}

const RESERVED_HEADERS: &[&str] = &[
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// Go's `CanonicalMIMEHeaderKey` (`x-amz-date` → `X-Amz-Date`).
pub(crate) fn canonical_header(name: &str) -> String {
    if name.bytes().any(|b| b == b' ' || !b.is_ascii() || b.is_ascii_control()) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

impl HttpClientConfig {
    /// `HTTPClientConfig`'s checks (the nested TLS and OAuth 2 blocks
    /// first, then `Validate`).
    ///
    /// # Errors
    /// Prometheus's messages.
    pub fn check(&self) -> Result<(), String> {
        if let Some(t) = &self.tls_config {
            t.check()?;
        }
        if let Some(o) = &self.oauth2 {
            if let Some(t) = &o.tls_config {
                t.check()?;
            }
            proxy_of!(o).check()?;
        }
        if set(&self.bearer_token) && set(&self.bearer_token_file) {
            return Err("at most one of bearer_token & bearer_token_file must be configured".into());
        }
        let bearer = set(&self.bearer_token) || set(&self.bearer_token_file);
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && bearer {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth {
            if count(&[&b.username, &b.username_file, &b.username_ref]) > 1 {
                return Err(
                    "at most one of basic_auth username, username_file & username_ref must be configured".into()
                );
            }
            if count(&[&b.password, &b.password_file, &b.password_ref]) > 1 {
                return Err(
                    "at most one of basic_auth password, password_file & password_ref must be configured".into()
                );
            }
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err("authorization is not compatible with bearer_token & bearer_token_file".into());
            }
            if count(&[&a.credentials, &a.credentials_file, &a.credentials_ref]) > 1 {
                return Err("at most one of authorization credentials & credentials_file must be configured".into());
            }
            let kind = a.kind.as_ref().map_or("", |k| k.as_str().trim());
            if kind.to_lowercase() == "basic" {
                return Err("authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into());
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
            }
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
            }
            if !set(&o.client_id) {
                return Err("oauth2 client_id must be configured".into());
            }
            if !set(&o.token_url) {
                return Err("oauth2 token_url must be configured".into());
            }
            if o.grant_type.as_ref().is_some_and(|g| g.as_str() == "urn:ietf:params:oauth:grant-type:jwt-bearer") {
                if count(&[&o.client_certificate_key, &o.client_certificate_key_file, &o.client_certificate_key_ref])
                    > 1
                {
                    return Err("at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer".into());
                }
                if let Some(alg) = o.signature_algorithm.as_ref().filter(|a| !a.is_empty())
                    && !matches!(alg.as_str(), "RS256" | "RS384" | "RS512")
                {
                    return Err("valid signature algorithms are RS256, RS384 and RS512".into());
                }
            } else if count(&[&o.client_secret, &o.client_secret_file, &o.client_secret_ref]) > 1 {
                return Err("at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials".into());
            }
        }
        proxy_of!(self).check()?;
        for name in self.http_headers.iter().flat_map(BTreeMap::keys) {
            let canonical = canonical_header(name);
            if RESERVED_HEADERS.contains(&canonical.as_str()) {
                return Err(format!("setting header {canonical:?} is not allowed"));
            }
        }
        Ok(())
    }

    /// Whether it sets an `authorization`.
    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }
}

/// The parts of Go's `url.Parse` the checks need: the scheme (as written)
/// and the host.
struct ParsedUrl {
    scheme: String,
    host: String,
}

/// Go's `url.Parse`, far enough to give its errors for the URLs
/// configurations hold.
fn go_url_parse(raw: &str) -> Result<ParsedUrl, String> {
    if raw.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let (scheme, rest) = match raw.find(':') {
        Some(0) => return Err("missing protocol scheme".into()),
        Some(i)
            if raw[..i].chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && raw[..i].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (raw[..i].to_owned(), &raw[i + 1..])
        }
        _ => (String::new(), raw),
    };
    let rest = rest.split(['#']).next().unwrap_or_default();
    let rest = rest.split(['?']).next().unwrap_or_default();
    if scheme.is_empty() && !rest.starts_with('/') {
        let first = rest.split('/').next().unwrap_or_default();
        if first.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut host = String::new();
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        if userinfo.is_some_and(|u| u.chars().any(|c| !(c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))))
        {
            return Err("net/url: invalid userinfo".into());
        }
        let (h, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { return Err("missing ']' in host".into()) };
            (&hostport[..end + 2], &stripped[end + 1..])
        } else {
            match hostport.rfind(':') {
                Some(i) => (&hostport[..i], &hostport[i..]),
                None => (hostport, ""),
            }
        };
        if !port.is_empty() && (!port.starts_with(':') || !port[1..].bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("invalid port {port:?} after host"));
        }
        if let Some(c) = h.chars().find(|c| " <>\"`{}|\\^".contains(*c)) {
            return Err(format!("invalid character {:?} in host name", c.to_string()));
        }
        host = h.to_owned();
    }
    for (i, _) in rest.match_indices('%') {
        let hex = rest.get(i + 1..i + 3).unwrap_or("");
        if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bad: String = rest[i..].chars().take(3).collect();
            return Err(format!("invalid URL escape {bad:?}"));
        }
    }
    Ok(ParsedUrl { scheme, host })
}

/// A `URL` member: an absolute `http` or `https` URL with a host.
///
/// # Errors
/// `parse "…": …`, `unsupported scheme "…" for URL`, `missing host for URL`.
pub(crate) fn check_url(raw: &str) -> Result<(), String> {
    let u = go_url_parse(raw).map_err(|e| format!("parse {raw:?}: {e}"))?;
    let scheme = u.scheme.to_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    if u.host.is_empty() {
        return Err("missing host for URL".into());
    }
    Ok(())
}

/// A `SecretURL` member: a URL, or the `<secret>` placeholder.
///
/// # Errors
/// As [`check_url`].
pub(crate) fn check_secret_url(raw: &str) -> Result<(), String> {
    if raw == "<secret>" {
        return Ok(());
    }
    check_url(raw)
}

/// The webhook's `url`: empty, `<secret>`, a Go template (which must
/// parse), or a URL.
///
/// # Errors
/// `invalid template syntax: …` or `invalid URL: …`.
pub(crate) fn check_template_url(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw == "<secret>" {
        return Ok(());
    }
    if raw.contains("{{") {
        return templates::NotificationTemplates::check_bare_text(raw)
            .map_err(|e| format!("invalid template syntax: {e}"));
    }
    check_url(raw).map_err(|e| format!("invalid URL: {e}"))
}

/// A `host:port` member (`smtp_smarthost`, `smarthost`), as Go's
/// `net.SplitHostPort` checks it; empty is unset.
///
/// # Errors
/// `address …: …` messages.
pub(crate) fn check_host_port(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    let err = |why: &str| format!("address {s}: {why}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else { return Err(err("missing ']' in address")) };
        let after = &rest[end + 1..];
        let Some(port) = after.strip_prefix(':') else {
            return Err(err("missing port in address"));
        };
        if rest[..end].contains('[') {
            return Err(err("unexpected '[' in address"));
        }
        (&rest[..end], port)
    } else {
        let Some(i) = s.rfind(':') else { return Err(err("missing port in address")) };
        let host = &s[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        if host.contains('[') {
            return Err(err("unexpected '[' in address"));
        }
        if host.contains(']') {
            return Err(err("unexpected ']' in address"));
        }
        (host, &s[i + 1..])
    };
    let _ = host;
    if port.is_empty() {
        return Err(format!("address {s:?}: port cannot be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_as_go_does() {
        assert!(check_url("https://hooks.example.com/x?a=1").is_ok());
        assert_eq!(check_url("ftp://x").unwrap_err(), "unsupported scheme \"ftp\" for URL");
        assert_eq!(check_url("x").unwrap_err(), "unsupported scheme \"\" for URL");
        assert_eq!(check_url("http://").unwrap_err(), "missing host for URL");
        assert_eq!(check_url("http:x").unwrap_err(), "missing host for URL");
        assert_eq!(
            check_url("http://a b/").unwrap_err(),
            "parse \"http://a b/\": invalid character \" \" in host name"
        );
        assert_eq!(
            check_url("http://h:abc/").unwrap_err(),
            "parse \"http://h:abc/\": invalid port \":abc\" after host"
        );
        assert_eq!(check_url("::bad").unwrap_err(), "parse \"::bad\": missing protocol scheme");
        assert!(check_secret_url("<secret>").is_ok());
        assert!(check_template_url("http://x/{{ .GroupLabels.team }}").is_ok());
        assert!(
            check_template_url("http://x/{{ .GroupLabels.team }")
                .unwrap_err()
                .starts_with("invalid template syntax: template: :1:")
        );
        assert_eq!(check_template_url("ftp://x").unwrap_err(), "invalid URL: unsupported scheme \"ftp\" for URL");
    }

    #[test]
    fn host_ports() {
        assert!(check_host_port("smtp.example.com:587").is_ok());
        assert!(check_host_port("[::1]:25").is_ok());
        assert!(check_host_port(":25").is_ok());
        assert_eq!(check_host_port("localhost").unwrap_err(), "address localhost: missing port in address");
        assert_eq!(check_host_port("a:b:25").unwrap_err(), "address a:b:25: too many colons in address");
        assert_eq!(check_host_port("localhost:").unwrap_err(), "address \"localhost:\": port cannot be empty");
    }

    #[test]
    fn http_configs() {
        let c = |y: &str| serde_norway::from_str::<HttpClientConfig>(y).unwrap().check();
        assert!(c("basic_auth: {username: u, password: p}").is_ok());
        assert_eq!(
            c("bearer_token: a\nbearer_token_file: b").unwrap_err(),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
        assert_eq!(
            c("authorization: {type: basic, credentials: x}").unwrap_err(),
            "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
        );
        assert_eq!(c("oauth2: {client_id: a}").unwrap_err(), "oauth2 token_url must be configured");
        assert_eq!(
            c("http_headers: {user-agent: {values: [x]}}").unwrap_err(),
            "setting header \"User-Agent\" is not allowed"
        );
        assert_eq!(c("no_proxy: x").unwrap_err(), "if no_proxy is configured, proxy_url must also be configured");
        assert_eq!(c("tls_config: {min_version: TLS9}").unwrap_err(), "unknown TLS version: TLS9");
        assert_eq!(
            c("tls_config: {cert_file: c}").unwrap_err(),
            "exactly one of key or key_file must be configured when a client certificate is configured"
        );
        assert!(serde_norway::from_str::<HttpClientConfig>("colour: red").is_err());
    }
}
