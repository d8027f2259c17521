//! `strata mount`: an image of the store, read-only, through the kernel's overlayfs.

use std::path::PathBuf;

use anyhow::bail;

use super::store::{global, is_store_image};
use crate::output::{print_json, print_raw};

/// Arguments of `strata mount`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    /// The image: a name or ID in the store, containers-storage:[ROOT+RUNROOT]IMAGE, or (FUSE) any
    /// transport: oci:, oci-archive:, docker-archive:, dir:, docker://.
    image: String,
    /// An existing directory to mount it at.
    dir: PathBuf,
    #[command(flatten)]
    fuse: super::fuse::FuseArgs,
}

/// Runs `strata mount`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.fuse.wants_fuse(&args.image) {
        return super::fuse::mount(&args.fuse, &args.image, &args.dir, args.json);
    }
    if !rustix::process::geteuid().is_root() {
        bail!(
            "overlay mounts need root; use --fuse (strata mount --fuse {} {})",
            args.image,
            args.dir.display()
        );
    }
    let (store, image) = if is_store_image(&args.image) {
        let (root, runroot, image) = strata_store::parse_reference(&args.image)?;
        (global().open_at(root, runroot)?, image)
    } else {
        (global().open()?, args.image.clone())
    };
    let report = store.mount_image(&image, &args.dir)?;
    if args.json {
        return print_json(&report);
    }
    print_raw(format!("{}\n", report.dir).as_bytes())
}
