//! `strata mount`: any image read-only at a directory — through FUSE (`crate::serve`), or a store image
//! through the kernel's overlayfs.

use std::path::PathBuf;

use anyhow::bail;

use strata_fuse::MountRecord;

use crate::args::StoreArgs;
use crate::output::{print_json, print_raw};
use crate::serve::FuseArgs;

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
    fuse: FuseArgs,
}

/// Runs `strata mount`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    if args.fuse.wants_fuse(&args.image) {
        return crate::serve::mount(&args.fuse, store, &args.image, &args.dir, args.json);
    }
    if !rustix::process::geteuid().is_root() {
        bail!(
            "overlay mounts need root; use --fuse (strata mount --fuse {} {})",
            args.image,
            args.dir.display()
        );
    }
    let (store, image, bare) = if args.image.starts_with(strata_store::TRANSPORT) {
        let (root, runroot, image) = strata_store::parse_reference(&args.image)?;
        let (root, runroot) = store.transport_store(root, runroot)?;
        (store.open_at(Some(root), Some(runroot))?, image, false)
    } else {
        (store.open()?, args.image.clone(), true)
    };
    // A mount point is the store's to refuse; anything else must be an empty directory (or --nonempty).
    if strata_fuse::mount_type(&args.dir)?.is_none() {
        crate::serve::check_dir(&args.dir, args.fuse.nonempty)?;
    }
    let report = store.mount_image(&image, &args.dir).map_err(|e| {
        bare.then(|| crate::hints::store_hint(&e, &image, store.root()))
            .flatten()
            .unwrap_or_else(|| e.into())
    })?;
    record_overlay(&store, &args.image, &report)?;
    if args.json {
        return print_json(&report);
    }
    print_raw(format!("{}\n", report.dir).as_bytes())
}

/// Records an overlay mount beside the FUSE mount records, so that `strata mounts` lists it and `strata
/// umount DIR` undoes it whatever `--root` they are given.
fn record_overlay(
    store: &strata_store::Store,
    image: &str,
    report: &strata_store::MountReport,
) -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(&report.dir);
    let record = MountRecord {
        store_root: Some(std::path::absolute(store.root())?),
        image_id: Some(report.image.clone()),
        store_runroot: Some(std::path::absolute(store.runroot())?),
        layer: Some(report.layer.clone()),
        ..MountRecord::new(&dir, image, strata_fuse::MODE_OVERLAY)
    };
    crate::serve::records()?.lock(&dir)?.write(&record)?;
    Ok(())
}
