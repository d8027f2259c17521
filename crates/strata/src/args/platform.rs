//! The platform-choice flags shared by every command that opens an image.

use strata_oci::Platform;

/// `--override-os/arch/variant`, as skopeo has them.
#[derive(clap::Args, Debug, Clone)]
pub struct PlatformArgs {
    /// Choose the image for this OS instead of the host's.
    #[arg(long, value_name = "OS")]
    override_os: Option<String>,
    /// Choose the image for this architecture instead of the host's.
    #[arg(long, value_name = "ARCH")]
    override_arch: Option<String>,
    /// Choose the image for this architecture variant instead of the host's.
    #[arg(long, value_name = "VARIANT")]
    override_variant: Option<String>,
}

impl PlatformArgs {
    /// The host's platform with the overrides applied.
    pub fn platform(&self) -> Platform {
        let host = Platform::host();
        // A different architecture makes the host's variant meaningless.
        let variant = match (&self.override_variant, &self.override_arch) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(_)) => None,
            (None, None) => host.variant.clone(),
        };
        Platform {
            os: self.override_os.clone().unwrap_or(host.os),
            architecture: self.override_arch.clone().unwrap_or(host.architecture),
            variant,
        }
    }
}
