//! `strata umount`: undo a `strata mount`.

use std::path::PathBuf;

use crate::args::StoreArgs;

/// Arguments of `strata umount`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory an image was mounted at.
    dir: PathBuf,
}

/// Runs `strata umount`: a FUSE mount, or an overlay mount of the store its record names (else of the
/// store `--root` names).
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    if crate::serve::umount(&args.dir)? {
        return Ok(());
    }
    let dir = strata_fuse::absolute(&args.dir)?;
    let records = crate::serve::records()?;
    let lock = records.lock(&dir)?;
    let recorded = lock
        .record()?
        .filter(|r| r.mode == strata_fuse::MODE_OVERLAY);
    match &recorded {
        Some(r) => {
            let root = r.store_root.clone();
            store
                .open_at(root, r.store_runroot.clone())?
                .unmount(&dir)?;
        }
        None => {
            store.open()?.unmount(&dir)?;
        }
    }
    if recorded.is_some() {
        lock.remove(None)?;
    }
    Ok(())
}
