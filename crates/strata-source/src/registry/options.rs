//! How sources are opened: credentials, TLS, registries.conf, retries and timeouts for `docker://`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::RegistryError;

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (or a token the registry accepts as one).
    pub password: String,
}

impl Credentials {
    /// Parses `USER:PASSWORD`, as `--creds` takes it. The password is everything after the first `:`.
    ///
    /// # Errors
    /// When there is no `:` or the user name is empty (strata does not prompt for passwords).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        match text.split_once(':') {
            Some(("", _)) => Err(RegistryError::InvalidCredentials {
                reason: "empty user name".into(),
            }),
            Some((user, password)) => Ok(Credentials {
                username: user.to_owned(),
                password: password.to_owned(),
            }),
            None => Err(RegistryError::InvalidCredentials {
                reason: "expected USER:PASSWORD (strata does not prompt for a password)".into(),
            }),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How often and how patiently to retry a request the registry answered with 429 or a 5xx, or that failed
/// on the network (a reset connection, a timeout). Connection refused and TLS failures are not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub max_retries: u32,
    /// The first wait; each further wait doubles it.
    pub initial_delay: Duration,
    /// The longest single wait, including one a `Retry-After` header asks for; a registry asking for a longer
    /// wait gets an error instead.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, waiting 0.5 s, 1 s, 2 s; `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based) when the server named none.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Options for opening an image source: the registry ones for `docker://`, the default store for
/// `containers-storage:`; the file transports ignore them.
///
/// `SourceOptions::default()` is what [`crate::open`] uses: credentials from the usual auth files, TLS verified
/// unless registries.conf marks the registry insecure, the default retry policy and a 30 s network timeout.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceOptions {
    /// `--creds`: use these credentials, and read no auth file.
    pub credentials: Option<Credentials>,
    /// `--authfile`: read credentials from this file only. When `None`, `$REGISTRY_AUTH_FILE` if set, else the
    /// files containers/image reads, in its order: `$XDG_RUNTIME_DIR/containers/auth.json` (as root without
    /// `XDG_RUNTIME_DIR`, `/run/containers/0/auth.json`), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
    /// `${DOCKER_CONFIG:-~/.docker}/config.json`, `~/.dockercfg`. The first file with an entry for the
    /// registry wins (its `credHelpers` first, then its `auths`, most specific key first).
    pub authfile: Option<PathBuf>,
    /// `--tls-verify`: `Some(false)` tries HTTPS without checking certificates, then plain HTTP (as skopeo
    /// does); `Some(true)` insists on verified HTTPS even for registries.conf's insecure registries; `None`
    /// lets registries.conf decide (`[[registry]] insecure = true`).
    pub tls_verify: Option<bool>,
    /// `--cert-dir`: CA certificates (`*.crt`) and a client certificate (`*.cert` + `*.key`) for the
    /// registry. When `None`, `/etc/containers/certs.d/HOST[:PORT]` or `/etc/docker/certs.d/HOST[:PORT]`.
    pub cert_dir: Option<PathBuf>,
    /// The registries.conf to read instead of `$CONTAINERS_REGISTRIES_CONF`, or
    /// `~/.config/containers/registries.conf` / `/etc/containers/registries.conf` and their `.d` drop-ins.
    pub registries_conf: Option<PathBuf>,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// The longest wait to connect, and for each read of a response (headers or body) to make progress.
    pub timeout: Duration,
    /// The store graph root a `containers-storage:` name without `[ROOT+RUNROOT]` means (`None`: the store
    /// transport's default).
    pub storage_root: Option<PathBuf>,
    /// The run root that goes with [`SourceOptions::storage_root`] (`None`: the default for that root).
    pub storage_runroot: Option<PathBuf>,
    /// As a push destination: a blob larger than this many bytes is uploaded in chunks of this size
    /// (`PATCH` with `Content-Range`, resumable); smaller ones in one streamed `PUT`. 0: never in chunks.
    pub upload_chunk_size: u64,
}

/// The default [`SourceOptions::upload_chunk_size`]: 32 MiB.
pub const DEFAULT_UPLOAD_CHUNK_SIZE: u64 = 32 << 20;

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            credentials: None,
            authfile: None,
            tls_verify: None,
            cert_dir: None,
            registries_conf: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            storage_root: None,
            storage_runroot: None,
            upload_chunk_size: DEFAULT_UPLOAD_CHUNK_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_creds() {
        let c = Credentials::parse("alice:s3:cr:et").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3:cr:et");
        assert!(Credentials::parse("alice").is_err());
        assert!(Credentials::parse(":pw").is_err());
        assert!(!format!("{c:?}").contains("s3"));
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(60));
    }
}
