//! Error kinds: every crate's error knows its kind, and each service maps a
//! kind to an HTTP status exactly once, at its edge.

/// The category of a failure, deciding the HTTP status and whether a client
/// should retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or its data is invalid; retrying cannot help (400).
    BadData,
    /// The body is larger than a configured cap (413).
    TooLarge,
    /// The request's content type is not one we accept (415).
    UnsupportedMediaType,
    /// A rate limit was hit; retrying later can help (429).
    RateLimited,
    /// A non-rate limit was hit (series, query size); see the message (422/429).
    LimitExceeded,
    /// The resource does not exist (404).
    NotFound,
    /// The request conflicts with the resource's state (409).
    Conflict,
    /// A dependency (log, disk, broker) is unavailable; retrying can help (503).
    Unavailable,
    /// The operation ran out of time (503 on the query API).
    Timeout,
    /// The caller went away or the server is shutting down.
    Canceled,
    /// Our own fault (500).
    Internal,
}
