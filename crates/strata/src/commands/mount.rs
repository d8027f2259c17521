//! `strata mount`: an image of the store, read-only, through the kernel's overlayfs.

use std::path::PathBuf;

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
    /// An existing, empty directory to mount it at (see --nonempty).
    dir: PathBuf,
    #[command(flatten)]
    fuse: super::fuse::FuseArgs,
}

/// Runs `strata mount`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.fuse.wants_fuse(&args.image) {
        return super::fuse::mount(&args.fuse, &args.image, &args.dir, args.json);
    }
    let (store, image) = if is_store_image(&args.image) {
        let (root, runroot, image) = strata_store::parse_reference(&args.image)?;
        let g = global();
        let store = strata_store::Store::open(
            &root.unwrap_or_else(|| g.root()),
            &runroot.unwrap_or_else(|| g.runroot()),
        )?;
        (store, image)
    } else {
        (global().open()?, args.image.clone())
    };
    // A mount point is the store's to refuse; anything else must be an empty directory (or --nonempty).
    if strata_fuse::mount_type(&args.dir)?.is_none() {
        super::fuse::check_dir(&args.dir, args.fuse.nonempty)?;
    }
    let report = store
        .mount_image(&image, &args.dir)
        .map_err(|e| super::names::store_hint(e.into(), &args.image))?;
    if args.json {
        return print_json(&report);
    }
    print_raw(format!("{}\n", report.dir).as_bytes())
}
