//! The trust flags, as skopeo spells them: which containers-policy.json decides, and where registries.d is.

use std::path::PathBuf;

use anyhow::Context as _;
use strata_policy::{Policy, RegistriesD};

/// The policy that accepts everything (`--insecure-policy`), as skopeo builds it.
const INSECURE_POLICY: &[u8] = br#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

/// `--policy`, `--insecure-policy`, `--registries.d`.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// The trust policy (containers-policy.json) [default: ~/.config/containers/policy.json, else
    /// /etc/containers/policy.json].
    #[arg(long, value_name = "FILE", conflicts_with = "insecure_policy")]
    policy: Option<PathBuf>,
    /// Accept any image, signed or not, whatever the policy says.
    #[arg(long)]
    insecure_policy: bool,
    /// Where signature lookaside locations are configured [default: ~/.config/containers/registries.d,
    /// else /etc/containers/registries.d].
    #[arg(long = "registries.d", value_name = "DIR")]
    registries_d: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy these flags name.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        if self.insecure_policy {
            return Policy::from_bytes(INSECURE_POLICY, std::path::Path::new("--insecure-policy"))
                .context("the built-in insecure policy");
        }
        Ok(Policy::load(self.policy.as_deref())?)
    }

    /// The registries.d configuration these flags name (none, if the directory does not exist).
    pub fn registries_d(&self) -> anyhow::Result<RegistriesD> {
        Ok(RegistriesD::load(self.registries_d.as_deref())?)
    }
}
