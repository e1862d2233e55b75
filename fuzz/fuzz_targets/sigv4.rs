//! The SigV4 parser and verifier on arbitrary requests: never a panic, and
//! never an accepted signature for a key that did not sign.

#![no_main]

use auth::sigv4::{RequestParts, Scope, check_scope_and_time, parse, parse_authorization_header, verify_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into an Authorization header, a date, a path, a query
    // and a body.
    let mut parts = data.splitn(5, |b| *b == b'\n');
    let authorization = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    if let Ok(header) = std::str::from_utf8(authorization) {
        let _ = parse_authorization_header(header);
    }
    let headers: Vec<(&str, &[u8])> =
        vec![("authorization", authorization), ("x-amz-date", date), ("host", b"localhost")];
    let request = RequestParts { method: "POST", raw_path: &path, raw_query: Some(&query), headers: &headers, body };
    if let Ok(info) = parse(&request) {
        let scope = Scope { region: "us-east-1".into(), service: "aps".into() };
        let _ = check_scope_and_time(&info, &scope, std::time::SystemTime::UNIX_EPOCH);
        // A signature made by someone without the secret never verifies
        // (the chance of a random 256-bit match is nil).
        assert!(verify_signature(&request, &info, "secret-the-fuzzer-never-saw").is_err());
    }
    let presigned = RequestParts { method: "GET", raw_path: &path, raw_query: Some(&query), headers: &[], body };
    if let Ok(info) = parse(&presigned) {
        assert!(verify_signature(&presigned, &info, "secret-the-fuzzer-never-saw").is_err());
    }
});
