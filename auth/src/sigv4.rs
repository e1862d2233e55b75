//! Verification of AWS Signature Version 4 requests.
//!
//! The `aws-sigv4` crate signs but does not verify, so this module rebuilds
//! what the client signed from the request as received — the canonical
//! request (method, path URI-encoded again as AWS does for every service
//! but S3, query parameters sorted and encoded, the headers the client
//! listed in `SignedHeaders`, the payload hash) and the string to sign — and
//! computes the expected signature with the crate's
//! [`generate_signing_key`] and [`calculate_signature`]. Both ways of
//! carrying a signature are accepted: the `Authorization` header and the
//! presigned query string (`X-Amz-Signature`, with `X-Amz-Expires`).

use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AuthError;

/// The only algorithm accepted.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest `X-Amz-Expires` of a presigned request (7 days, as AWS).
const MAX_EXPIRES_SECONDS: u64 = 7 * 24 * 3600;
/// The payload hash that says the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The scope a signature must be made for: this deployment's region and
/// the service name (`aps`).
#[derive(Debug, Clone)]
pub struct Scope {
    /// E.g. `us-east-1`.
    pub region: String,
    /// `aps`.
    pub service: String,
}

/// What a request says about its signature, parsed from its
/// `Authorization` header or its presigned query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestInfo {
    /// The access key id of the credential.
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub scope_date: String,
    /// The credential scope's region.
    pub region: String,
    /// The credential scope's service.
    pub service: String,
    /// The signed header names, lowercase, in the client's order.
    pub signed_headers: Vec<String>,
    /// The signature, lowercase hex.
    pub signature: String,
    /// The request time, `YYYYMMDD'T'HHMMSS'Z'` (`X-Amz-Date`).
    pub amz_date: String,
    /// Presigned: seconds the signature is valid after `amz_date`.
    pub expires_seconds: Option<u64>,
}

/// The parts of an HTTP request that SigV4 signs.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received (without `?`), if any.
    pub raw_query: Option<&'a str>,
    /// Every header, names in any case; repeated names appear repeatedly.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
}

impl RequestParts<'_> {
    fn header_values(&self, name: &str) -> impl Iterator<Item = &[u8]> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Parses the signature information of a request: its `Authorization`
/// header, else its presigned query string.
///
/// # Errors
/// `MissingAuthenticationToken` when neither is there, `IncompleteSignature`
/// when one is malformed.
pub fn parse(request: &RequestParts<'_>) -> Result<SignedRequestInfo, AuthError> {
    if let Some(header) = request.header("authorization") {
        let mut info = parse_authorization_header(header)?;
        info.amz_date = request.header("x-amz-date").map(str::to_owned).ok_or_else(|| {
            AuthError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
            )
        })?;
        return Ok(info);
    }
    let params = query_pairs(request.raw_query.unwrap_or_default());
    if params.iter().any(|(k, _)| k == "X-Amz-Signature" || k == "X-Amz-Credential") {
        return parse_presigned(&params);
    }
    Err(AuthError::MissingAuthenticationToken)
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
/// (`amz_date` is left empty: it comes from a header).
///
/// # Errors
/// `IncompleteSignature` naming what is missing or malformed.
pub fn parse_authorization_header(header: &str) -> Result<SignedRequestInfo, AuthError> {
    let incomplete = |what: &str| {
        AuthError::IncompleteSignature(format!(
            "Authorization header requires '{what}' parameter. Authorization={header}"
        ))
    };
    let rest = header
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| AuthError::IncompleteSignature(format!("Unsupported authorization type: {header:?}")))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(AuthError::IncompleteSignature(format!(
                "Authorization header requires each component to be of the form key=value: {:?}",
                part.trim()
            )));
        };
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v.to_owned()).is_some() {
            return Err(AuthError::IncompleteSignature(format!("Authorization header repeats '{k}'.")));
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    build_info(&credential, &signed_headers, signature, String::new(), None)
}

fn parse_presigned(params: &[(String, String)]) -> Result<SignedRequestInfo, AuthError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let need = |k: &str| {
        get(k).ok_or_else(|| AuthError::IncompleteSignature(format!("AWS query-string parameters must include '{k}'.")))
    };
    let algorithm = need("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!("Unsupported X-Amz-Algorithm {algorithm:?}.")));
    }
    let expires = need("X-Amz-Expires")?;
    let expires: u64 = expires.parse().ok().filter(|e| *e <= MAX_EXPIRES_SECONDS).ok_or_else(|| {
        AuthError::IncompleteSignature(format!("X-Amz-Expires must be 0 to {MAX_EXPIRES_SECONDS} seconds."))
    })?;
    build_info(
        &need("X-Amz-Credential")?,
        &need("X-Amz-SignedHeaders")?,
        need("X-Amz-Signature")?,
        need("X-Amz-Date")?,
        Some(expires),
    )
}

fn build_info(
    credential: &str,
    signed_headers: &str,
    signature: String,
    amz_date: String,
    expires_seconds: Option<u64>,
) -> Result<SignedRequestInfo, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential should be scoped to a valid region, not {credential:?}: \
             <access key>/<YYYYMMDD>/<region>/<service>/aws4_request"
        )));
    };
    if terminator != "aws4_request" {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(AuthError::IncompleteSignature(
            "SignedHeaders must be lowercase header names separated by ';'.".into(),
        ));
    }
    Ok(SignedRequestInfo {
        access_key_id: access_key_id.to_owned(),
        scope_date: scope_date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date,
        expires_seconds,
    })
}

/// Checks the scope and the time of a parsed signature (before any
/// credential is looked up).
///
/// # Errors
/// `SignatureDoesNotMatch` for another region or service, or a time out of
/// the ±5 minutes window (or past a presigned request's expiry);
/// `IncompleteSignature` for a malformed date.
pub fn check_scope_and_time(info: &SignedRequestInfo, scope: &Scope, now: SystemTime) -> Result<(), AuthError> {
    if info.region != scope.region {
        return Err(AuthError::SignatureDoesNotMatch(format!(
            "Credential should be scoped to a valid region. Expected '{}', got '{}'.",
            scope.region, info.region
        )));
    }
    if info.service != scope.service {
        return Err(AuthError::SignatureDoesNotMatch(format!(
            "Credential should be scoped to correct service: '{}'.",
            scope.service
        )));
    }
    let signed_at = parse_amz_date(&info.amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "X-Amz-Date must be in the ISO8601 basic format, not {:?}.",
            info.amz_date
        ))
    })?;
    if !info.amz_date.starts_with(&info.scope_date) {
        return Err(AuthError::SignatureDoesNotMatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            info.scope_date,
            &info.amz_date[..8]
        )));
    }
    let now: DateTime<Utc> = now.into();
    let skew = chrono::Duration::from_std(MAX_CLOCK_SKEW).unwrap_or_default();
    if signed_at > now + skew {
        return Err(AuthError::SignatureDoesNotMatch(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            info.amz_date,
            fmt_amz(now + skew),
            fmt_amz(now)
        )));
    }
    match info.expires_seconds {
        None if signed_at < now - skew => Err(AuthError::SignatureDoesNotMatch(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            info.amz_date,
            fmt_amz(now - skew),
            fmt_amz(now)
        ))),
        Some(expires) if signed_at + chrono::Duration::seconds(expires as i64) < now => {
            Err(AuthError::SignatureDoesNotMatch("Request has expired".into()))
        }
        _ => Ok(()),
    }
}

/// Checks the signature of `request` made with `secret`.
///
/// # Errors
/// `IncompleteSignature` when a required header is not signed or absent,
/// `SignatureDoesNotMatch` when the signature (or the payload hash the
/// client declared) does not match.
pub fn verify_signature(request: &RequestParts<'_>, info: &SignedRequestInfo, secret: &str) -> Result<(), AuthError> {
    let candidates = canonical_requests(request, info)?;
    let signed_at = parse_amz_date(&info.amz_date)
        .ok_or_else(|| AuthError::IncompleteSignature("X-Amz-Date must be in the ISO8601 basic format.".into()))?;
    let key = generate_signing_key(secret, signed_at.into(), &info.region, &info.service);
    let mut matched = false;
    for canonical in &candidates {
        let expected = calculate_signature(&key, string_to_sign(info, canonical).as_bytes());
        matched |= bool::from(expected.as_bytes().ct_eq(info.signature.as_bytes()));
    }
    if matched {
        Ok(())
    } else {
        tracing::debug!(canonical_request = %candidates[0], "SigV4 signature mismatch.");
        Err(AuthError::SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
                .into(),
        ))
    }
}

/// The canonical request the client signed, rebuilt from what was
/// received: the first of [`canonical_requests`].
///
/// # Errors
/// See [`canonical_requests`].
pub fn canonical_request(request: &RequestParts<'_>, info: &SignedRequestInfo) -> Result<String, AuthError> {
    Ok(canonical_requests(request, info)?.swap_remove(0))
}

/// The canonical requests a client may have signed for what was received;
/// the signature must match one. Clients agree on everything but two
/// details, so both forms of each are tried:
/// - the query string: its parameters decoded and re-encoded as RFC 3986
///   says (Go's and Rust's SDKs, the spec), or as sent, only sorted
///   (botocore, for a URL whose query it did not encode itself);
/// - a presigned request's payload: the body's hash (botocore for every
///   service but S3) or `UNSIGNED-PAYLOAD` (S3-style presigners).
///
/// Every form covers the same request, so accepting either weakens nothing.
///
/// # Errors
/// `IncompleteSignature` when `host` is not signed or a signed header is
/// absent; `SignatureDoesNotMatch` when the declared payload hash is not
/// the body's.
pub fn canonical_requests(request: &RequestParts<'_>, info: &SignedRequestInfo) -> Result<Vec<String>, AuthError> {
    if !info.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::IncompleteSignature("'Host' must be a signed header.".into()));
    }
    let mut headers = String::with_capacity(256);
    for name in &info.signed_headers {
        let values: Vec<String> =
            request.header_values(name).map(|v| canonical_header_value(&String::from_utf8_lossy(v))).collect();
        if values.is_empty() {
            return Err(AuthError::IncompleteSignature(format!("The signed header '{name}' is not in the request.")));
        }
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let presigned = info.expires_seconds.is_some();
    let raw_query = request.raw_query.unwrap_or_default();
    let mut queries = vec![canonical_query(raw_query, presigned)];
    queries.push(raw_sorted_query(raw_query, presigned));
    queries.dedup();
    let payloads = payload_hashes(request, info)?;
    let uri = canonical_uri(request.raw_path);
    let signed = info.signed_headers.join(";");
    let mut out = Vec::with_capacity(queries.len() * payloads.len());
    for query in &queries {
        for payload in &payloads {
            out.push(format!("{}\n{uri}\n{query}\n{headers}\n{signed}\n{payload}", request.method));
        }
    }
    Ok(out)
}

/// The payload hashes of the canonical request: the `x-amz-content-sha256`
/// header when given (`UNSIGNED-PAYLOAD`, or a hash that must be the
/// body's); else the body's SHA-256, and for a presigned request also
/// `UNSIGNED-PAYLOAD`.
fn payload_hashes(request: &RequestParts<'_>, info: &SignedRequestInfo) -> Result<Vec<String>, AuthError> {
    let body_hash = || hex::encode(Sha256::digest(request.body));
    match request.header("x-amz-content-sha256") {
        Some(UNSIGNED_PAYLOAD) => Ok(vec![UNSIGNED_PAYLOAD.to_owned()]),
        Some(hash) if hash.eq_ignore_ascii_case(&body_hash()) => Ok(vec![hash.to_owned()]),
        Some(_) => Err(AuthError::SignatureDoesNotMatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        )),
        None if info.expires_seconds.is_some() => Ok(vec![body_hash(), UNSIGNED_PAYLOAD.to_owned()]),
        None => Ok(vec![body_hash()]),
    }
}

fn string_to_sign(info: &SignedRequestInfo, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        info.amz_date,
        info.scope_date,
        info.region,
        info.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The path as AWS canonicalises it for every service but S3: the path as
/// sent (already percent-encoded by the client), with `.`/`..` segments
/// resolved, URI-encoded once more (`%` becomes `%25`), `/` kept.
fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing = raw_path.len() > 1 && raw_path.ends_with('/');
    for s in raw_path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segments.join("/"));
    if trailing && !segments.is_empty() {
        path.push('/');
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b == b'/' {
            out.push('/');
        } else {
            uri_encode_byte(b, &mut out);
        }
    }
    out
}

/// The query string's parameters decoded (`+` as a space, as the handlers
/// read it), re-encoded as RFC 3986 wants (unreserved characters kept,
/// every other byte `%XX`), sorted by name then value; a presigned
/// request's own `X-Amz-Signature` is left out.
fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs_bytes(raw_query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == b"X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The query string's parameters as sent, sorted (`X-Amz-Signature` left
/// out of a presigned request's).
fn raw_sorted_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(&str, &str)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .filter(|(k, _)| !(presigned && *k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// A query string's parameters decoded to bytes as the handlers decode
/// them (`application/x-www-form-urlencoded`: `+` is a space), so one
/// signature never covers two queries the handlers read differently.
fn query_pairs_bytes(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
}

/// [`query_pairs_bytes`] as text (for the presigned parameters).
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    query_pairs_bytes(raw_query)
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for b in bytes {
        uri_encode_byte(*b, &mut out);
    }
    out
}

fn uri_encode_byte(b: u8, out: &mut String) {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
        out.push(b as char);
    } else {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// A header value trimmed, with each run of spaces made one.
fn canonical_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

fn fmt_amz(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (the IAM `ListUsers` GET of the SigV4
    /// guide): its canonical request and signature.
    #[test]
    fn aws_documented_example_verifies() {
        let headers: Vec<(&str, &[u8])> = vec![
            ("Host", b"iam.amazonaws.com"),
            ("Content-Type", b"application/x-www-form-urlencoded; charset=utf-8"),
            ("X-Amz-Date", b"20150830T123600Z"),
            (
                "Authorization",
                b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                  SignedHeaders=content-type;host;x-amz-date, \
                  Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        ];
        let request = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            body: b"",
        };
        let info = parse(&request).unwrap();
        assert_eq!(info.access_key_id, "AKIDEXAMPLE");
        assert_eq!(info.signed_headers, ["content-type", "host", "x-amz-date"]);
        let canonical = canonical_request(&request, &info).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        verify_signature(&request, &info, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap();
        let err = verify_signature(&request, &info, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ").unwrap_err();
        assert!(matches!(err, AuthError::SignatureDoesNotMatch(_)));

        let scope = Scope { region: "us-east-1".into(), service: "iam".into() };
        let at = |s: &str| -> SystemTime { parse_amz_date(s).unwrap().into() };
        check_scope_and_time(&info, &scope, at("20150830T124000Z")).unwrap();
        let late = check_scope_and_time(&info, &scope, at("20150830T124200Z")).unwrap_err();
        assert_eq!(
            late.to_string(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T124200Z - 5 min.)"
        );
        let early = check_scope_and_time(&info, &scope, at("20150830T123000Z")).unwrap_err();
        assert!(early.to_string().starts_with("Signature not yet current"), "{early}");
        let other_region = Scope { region: "eu-west-1".into(), service: "iam".into() };
        assert!(check_scope_and_time(&info, &other_region, at("20150830T123600Z")).is_err());
        let other_service = Scope { region: "us-east-1".into(), service: "aps".into() };
        assert!(check_scope_and_time(&info, &other_service, at("20150830T123600Z")).is_err());
    }

    #[test]
    fn paths_are_encoded_again_and_queries_sorted() {
        assert_eq!(
            canonical_uri("/tags/arn%3Aaws%3Aaps%3Aus-east-1%3A1%3Aworkspace%2Fws-1"),
            "/tags/arn%253Aaws%253Aaps%253Aus-east-1%253A1%253Aworkspace%252Fws-1"
        );
        assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/workspaces/ws-1/api/v1/query"), "/workspaces/ws-1/api/v1/query");
        assert_eq!(canonical_query("b=2&a=x%20y&a=1&tagKeys=k%3Av", false), "a=1&a=x%20y&b=2&tagKeys=k%3Av");
        assert_eq!(canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true), "X-Amz-Date=1");
        assert_eq!(canonical_query("", false), "");
        // `+` is a space, as the handlers read it; a literal plus is %2B;
        // bytes that are not UTF-8 stay distinct.
        assert_eq!(canonical_query("q=a+b", false), "q=a%20b");
        assert_eq!(canonical_query("q=a%2Bb", false), "q=a%2Bb");
        assert_ne!(canonical_query("q=%FF", false), canonical_query("q=%FE", false));
        assert_eq!(canonical_header_value("  a   b  c "), "a b c");
    }

    #[test]
    fn malformed_authorization_headers_are_incomplete() {
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/iam/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/iam, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/iam/aws4_request, SignedHeaders=Host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/iam/aws4_request, SignedHeaders, Signature=00",
            "AWS3 Credential=A/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
            "Basic dXNlcjpwYXNz",
        ] {
            assert!(
                matches!(parse_authorization_header(bad), Err(AuthError::IncompleteSignature(_))),
                "{bad} was accepted"
            );
        }
    }
}

/// Requests signed by `aws-sigv4`'s own signer (what the AWS SDK for Rust
/// sends) verify, and fail with any part changed.
#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::client::Signer;

    fn check(method: &str, path_and_query: &str, body: &[u8], extra: &[(&str, &str)]) {
        let signer = Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
        };
        let now = SystemTime::now();
        let url = format!("http://127.0.0.1:9464{path_and_query}");
        let mut headers: Vec<(&str, &str)> = vec![("host", "127.0.0.1:9464")];
        headers.extend_from_slice(extra);
        let added = signer.sign(method, &url, &headers, body, now).unwrap();
        let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        all.extend(added);
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let verify = |method: &str, path: &str, query: Option<&str>, all: &[(String, String)], body: &[u8]| {
            let hs: Vec<(&str, &[u8])> = all.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
            let parts = RequestParts { method, raw_path: path, raw_query: query, headers: &hs, body };
            let info = parse(&parts)?;
            check_scope_and_time(&info, &Scope { region: "us-east-1".into(), service: "aps".into() }, now)?;
            verify_signature(&parts, &info, &signer.secret_access_key)
        };
        verify(method, path, query, &all, body).unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
        assert!(verify("PUT", path, query, &all, body).is_err());
        assert!(verify(method, &format!("{path}x"), query, &all, body).is_err());
        assert!(verify(method, path, Some("a=1"), &all, body).is_err());
        let mut changed = body.to_vec();
        changed.push(b' ');
        assert!(verify(method, path, query, &all, &changed).is_err());
        let mut other_host = all.clone();
        other_host[0].1 = "127.0.0.1:9465".into();
        assert!(verify(method, path, query, &other_host, body).is_err());
    }

    #[test]
    fn the_aws_sdk_signer_and_this_verifier_agree() {
        check("GET", "/workspaces", b"", &[]);
        check("POST", "/workspaces", br#"{"alias":"a b"}"#, &[("content-type", "application/json")]);
        check("GET", "/workspaces?alias=prod&maxResults=10", b"", &[]);
        check("GET", "/workspaces/ws-1/api/v1/query?query=sum%28rate%28x%5B5m%5D%29%29&time=1.5", b"", &[]);
        check("GET", "/tags/arn%3Aaws%3Aaps%3Aus-east-1%3A000000000000%3Aworkspace%2Fws-1", b"", &[]);
        check("DELETE", "/tags/arn%3Aaws%3Aaps%3Aus-east-1%3A0%3Aworkspace%2Fws-1?tagKeys=a&tagKeys=b%20c", b"", &[]);
        check(
            "POST",
            "/workspaces/ws-1/api/v1/remote_write",
            &[0xff, 0, 1, 2, 3],
            &[
                ("content-encoding", "snappy"),
                ("content-type", "application/x-protobuf"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
        );
    }
}
