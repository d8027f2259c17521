//! `strata inspect`: skopeo's `inspect`, for every transport.

use strata_oci::Platform;
use strata_source::{InspectReport, resolve};

use crate::output::{print_json, print_raw};

/// Arguments of `strata inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the manifest exactly as stored (the index, for a multi-platform image).
    #[arg(long)]
    raw: bool,
    /// Print the image config (converted to OCI; with --raw, the config blob as stored).
    #[arg(long)]
    config: bool,
    /// Do not list the repository's tags.
    #[arg(long, short = 'n')]
    no_tags: bool,
    /// Choose the image for this OS instead of the host's.
    #[arg(long, value_name = "OS")]
    override_os: Option<String>,
    /// Choose the image for this architecture instead of the host's.
    #[arg(long, value_name = "ARCH")]
    override_arch: Option<String>,
    /// Choose the image for this architecture variant instead of the host's.
    #[arg(long, value_name = "VARIANT")]
    override_variant: Option<String>,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR.
    image: String,
}

impl Args {
    fn platform(&self) -> Platform {
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

/// Runs `strata inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let source = strata_source::open(&args.image)?;
    if args.raw && !args.config {
        return print_raw(&source.top_manifest()?.bytes);
    }
    let image = resolve(source.as_ref(), &args.platform())?;
    if args.config {
        return if args.raw {
            print_raw(&image.config_bytes)
        } else {
            print_json(&image.config.oci)
        };
    }
    let tags = if args.no_tags {
        Vec::new()
    } else {
        source.repo_tags()?
    };
    let name = source.docker_reference().map(|r| r.name());
    print_json(&InspectReport::new(&image, name, tags))
}
