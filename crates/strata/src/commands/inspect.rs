//! `strata inspect`: skopeo's `inspect`, for every transport.

use strata_source::{InspectReport, resolve};

use super::platform::PlatformArgs;
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
    #[command(flatten)]
    platform: PlatformArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR.
    image: String,
}

/// Runs `strata inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let source = strata_source::open(&args.image)?;
    if args.raw && !args.config {
        return print_raw(&source.top_manifest()?.bytes);
    }
    let image = resolve(source.as_ref(), &args.platform.platform())?;
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
