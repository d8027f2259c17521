//! The registry client's errors: each names the URL (or file) it is about.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// One entry of a registry's error body (`{"errors": [{"code", "message", "detail"}]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error code, e.g. `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, `TOOMANYREQUESTS`.
    pub code: String,
    /// The registry's message.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code.is_empty(), self.message.is_empty()) {
            (false, false) => write!(f, "{}: {}", self.code, self.message),
            (false, true) => f.write_str(&self.code),
            _ => f.write_str(&self.message),
        }
    }
}

/// What went wrong talking to a registry.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The request could not be made or its response not read: DNS, connection, TLS, a timeout, a
    /// connection cut short, malformed HTTP.
    #[error("{method} {url}: {source}")]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A URL strata was given to read is not `http://` or `https://` with a host.
    #[error("{url}: not an http:// or https:// URL")]
    InvalidUrl {
        /// The URL.
        url: String,
    },
    /// The registry answered with an error status.
    #[error("{method} {url}: {}{}", status_line(.status), describe_errors(.errors, .body))]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The errors the body listed, if it was the registry's error JSON.
        errors: Vec<ApiError>,
        /// The start of the body when it was not error JSON (bounded, control characters removed).
        body: String,
    },
    /// The registry kept answering 429 or 5xx after every retry allowed.
    #[error("{method} {url}: gave up after {attempts} attempts: last answer {}{}", status_line(.status), describe_errors(.errors, ""))]
    RetriesExhausted {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// How many requests were made.
        attempts: u32,
        /// The last status.
        status: u16,
        /// The errors the last body listed.
        errors: Vec<ApiError>,
    },
    /// The registry or its token server refused the credentials, or asked for credentials there are none of.
    #[error("{url}: unauthorized: {reason}")]
    Unauthorized {
        /// The URL that refused.
        url: String,
        /// Why, as far as the registry said.
        reason: String,
    },
    /// A response that does not follow the distribution API (a bad header, JSON or challenge).
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A response larger than strata accepts for its kind (manifests, tag lists, tokens).
    #[error("{url}: {what} larger than the {limit}-byte limit")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// What was being read.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Content that does not hash to the digest asked for, or to the `Docker-Content-Digest` the registry sent.
    #[error("{url}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The URL requested.
        url: String,
        /// The digest asked for (or announced in `Docker-Content-Digest`).
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// registries.conf blocks the registry.
    #[error("registry {registry} is blocked in {}", path.display())]
    Blocked {
        /// The registry (prefix) blocked.
        registry: String,
        /// The registries.conf that blocks it.
        path: PathBuf,
    },
    /// A configuration or credentials file that cannot be read or parsed.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} for {registry}: {reason}")]
    CredentialHelper {
        /// The helper's name (after `docker-credential-`).
        helper: String,
        /// The registry asked about.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// The referrers tag schema's index of a manifest (the tag `<alg>-<hex>`) cannot be used or kept.
    #[error("referrers tag {name}: {reason}")]
    ReferrersTag {
        /// `HOST/NAME:TAG`.
        name: String,
        /// What is wrong: not an OCI index, or other writers kept replacing it.
        reason: String,
    },
    /// A manifest given to be pushed as a referrer has no usable `subject`.
    #[error("manifest {digest} is not a referrer: {reason}")]
    NotAReferrer {
        /// The manifest's digest.
        digest: String,
        /// What is wrong.
        reason: String,
    },
    /// A pull tried the mirrors registries.conf lists for the reference, then its primary location, and
    /// none served the manifest. `source` is the primary location's error.
    #[error("{primary}: {source} (mirrors also failed: {})", .mirrors.join("; "))]
    AllSourcesFailed {
        /// The reference at the primary location (after any `location` rewrite).
        primary: String,
        /// Each mirror tried, as `[REFERENCE: ERROR]`, in the order tried.
        mirrors: Vec<String>,
        /// The primary location's error.
        #[source]
        source: Box<RegistryError>,
    },
    /// Credentials given on the command line are malformed.
    #[error("invalid credentials: {reason}")]
    InvalidCredentials {
        /// What is wrong.
        reason: String,
    },
}

impl RegistryError {
    /// The HTTP status the registry answered with, for status errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. }
            | RegistryError::RetriesExhausted { status, .. } => Some(*status),
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::AllSourcesFailed { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// `404 Not Found`.
fn status_line(status: &u16) -> String {
    match ureq::http::StatusCode::from_u16(*status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

fn describe_errors(errors: &[ApiError], body: &str) -> String {
    if errors.is_empty() {
        if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        }
    } else {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(": {}", list.join("; "))
    }
}

impl From<RegistryError> for crate::Error {
    fn from(e: RegistryError) -> Self {
        crate::Error::Transport(Box::new(e))
    }
}

/// The registry error inside a source error, if it is one (to look at its HTTP status, say).
pub fn registry_error(e: &crate::Error) -> Option<&RegistryError> {
    match e {
        crate::Error::Transport(inner) => inner.downcast_ref::<RegistryError>(),
        _ => None,
    }
}
