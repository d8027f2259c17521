//! The registry flags shared by every command that opens an image (`docker://` sources), as skopeo spells them.

use std::path::PathBuf;
use std::time::Duration;

use strata_source::{Credentials, SourceOptions};

/// `--creds`, `--authfile`, `--tls-verify`, `--cert-dir`, `--registries-conf`, `--retry-times`, `--timeout`,
/// and strata's `--cache-dir` (the local index cache of registry layers).
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Credentials for the registry, USER:PASSWORD (no auth file is read then).
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    /// Read registry credentials from this auth.json only [default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Require HTTPS with verified certificates; --tls-verify=false allows unverified HTTPS, then plain HTTP
    /// [default: true, unless registries.conf marks the registry insecure].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    tls_verify: Option<bool>,
    /// CA certificates (*.crt) and a client certificate (*.cert, *.key) for the registry [default:
    /// /etc/containers/certs.d/HOST:PORT or /etc/docker/certs.d/HOST:PORT].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// The registries.conf to use [default: $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/ or
    /// /etc/containers/registries.conf and its .d drop-ins].
    #[arg(long, value_name = "FILE")]
    registries_conf: Option<PathBuf>,
    /// Retries of a registry request that got 429, a 5xx or a network failure.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retry_times: u32,
    /// Seconds to wait for a registry to connect or to send more data.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
    /// The local index cache: registry layers read whole keep their index there, and later commands read
    /// only the ranges they need [default: $XDG_CACHE_HOME/strata, else ~/.cache/strata].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

impl RegistryArgs {
    /// The index cache directory given (`--cache-dir`), if any.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    /// The source options these flags describe.
    pub fn options(&self) -> anyhow::Result<SourceOptions> {
        let mut options = SourceOptions::default();
        options.credentials = self.creds.as_deref().map(Credentials::parse).transpose()?;
        options.authfile = self.authfile.clone();
        options.tls_verify = self.tls_verify;
        options.cert_dir = self.cert_dir.clone();
        options.registries_conf = self.registries_conf.clone();
        options.retry.max_retries = self.retry_times;
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            anyhow::bail!("--timeout must be a positive number of seconds");
        }
        options.timeout = Duration::from_secs_f64(self.timeout.min(86_400.0));
        Ok(options)
    }
}
