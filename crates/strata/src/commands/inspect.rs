//! `strata inspect`: skopeo's `inspect`, for every transport.

use strata_image::resolve;
use strata_source::InspectReport;

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
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
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR,
    /// docker://HOST[:PORT]/NAME[:TAG|@DIGEST], containers-storage:[ROOT+RUNROOT]IMAGE.
    image: String,
}

/// Runs `strata inspect`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let source = open_source(&args.image, &source_options(&args.registry, store)?)?;
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
        match source.repo_tags() {
            Ok(tags) => tags,
            // As skopeo: some registries refuse to list tags (401, 403, 404); the rest of inspect still works.
            Err(e)
                if strata_source::registry_error(&e)
                    .is_some_and(|r| matches!(r.status(), Some(401 | 403 | 404))) =>
            {
                eprintln!("strata: warning: the registry refuses to list tags; skipping: {e}");
                Vec::new()
            }
            Err(e) => return Err(anyhow::Error::new(e).context("listing the repository's tags")),
        }
    };
    let name = source.docker_reference().map(|r| r.name());
    print_json(&InspectReport::new(&image, name, tags))
}
