use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Reading or parsing containers-policy.json failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Neither the per-user nor the system policy file exists (and no path was given).
    #[error("no policy.json file found at any of the following: {user:?}, {system:?}")]
    NotFound {
        /// `$HOME/.config/containers/policy.json`.
        user: PathBuf,
        /// `/etc/containers/policy.json`.
        system: PathBuf,
    },
    /// The policy file could not be read.
    #[error("reading policy {file:?}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid JSON.
    #[error("invalid policy in {file:?}: {source}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// serde_json's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON, but not a policy containers/image accepts: the whole file is refused.
    #[error("invalid policy in {file:?}: at {json_path}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where in the document, e.g. `$.transports.docker["example.com"][0].keyType`.
        json_path: String,
        /// What is wrong there.
        reason: String,
    },
}

/// A fault found while walking the JSON tree: where and what; the file is added by the caller.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) path: String,
    pub(crate) reason: String,
}

impl Fault {
    pub(crate) fn new(path: &str, reason: impl Into<String>) -> Self {
        Fault {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Loading the key material a requirement names failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyLoadError {
    /// A key file could not be read.
    #[error("reading key file {path:?}: {source}")]
    Read {
        /// The path as written in the policy (relative paths are relative to the working directory).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A key file is larger than strata reads.
    #[error("key file {path:?} is over the {limit}-byte limit")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
}

/// A signature's claimed identity does not satisfy a `signedIdentity` rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("signature for identity {signed:?} is not accepted: {rule} expects {expected}")]
pub struct IdentityMismatch {
    /// The rule's `type` (`matchExact`, `remapIdentity`, …).
    pub rule: &'static str,
    /// What the rule wanted, in words (e.g. `exactly "docker.io/library/busybox:latest"`).
    pub expected: String,
    /// The `critical.identity.docker-reference` the signature claims, as written.
    pub signed: String,
}

/// The policy could not be looked up for an image.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// A docker reference with both a tag and a digest (containers/image refuses those for policy lookup).
    #[error(
        "docker reference {reference} has both a tag and a digest: policy lookup needs exactly one"
    )]
    TagAndDigest {
        /// The reference.
        reference: String,
    },
}

/// registries.d could not be read, or a lookaside location could not be formed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistriesError {
    /// The directory or one of its files could not be read.
    #[error("reading registries.d {path:?}: {source}")]
    Read {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A `*.yaml` file is not valid (YAML syntax, or a value of the wrong type).
    #[error("parsing {file:?}: {reason}")]
    Yaml {
        /// The file.
        file: PathBuf,
        /// The YAML reader's message.
        reason: String,
    },
    /// `default-docker` or a `docker` scope is defined in two files.
    #[error("signature storage configuration: {what} defined both in {first:?} and {second:?}")]
    Duplicate {
        /// `"default-docker"` or `"docker" namespace "<scope>"`.
        what: String,
        /// The file that defined it first.
        first: PathBuf,
        /// The file that defined it again.
        second: PathBuf,
    },
    /// A docker reference with both a tag and a digest.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The manifest digest is not a valid digest (it would name a path outside the lookaside tree).
    #[error("invalid manifest digest {digest:?} for a lookaside signature path: {reason}")]
    InvalidDigest {
        /// The digest text (possibly truncated).
        digest: String,
        /// Why it was refused.
        reason: String,
    },
    /// The repository path would leave the lookaside tree (`.`, `..` or empty components).
    #[error("unexpected path elements in docker reference {reference} for signature storage")]
    UnsafeRepositoryPath {
        /// The reference.
        reference: String,
    },
    /// The lookaside base is not a URL containers/image can read from.
    #[error("invalid signature storage URL {url:?}: {reason}")]
    InvalidUrl {
        /// The configured base.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// No home directory could be found for the per-user locations.
    #[error("cannot find the home directory (HOME is unset and the user has no passwd entry)")]
    NoHome,
}
