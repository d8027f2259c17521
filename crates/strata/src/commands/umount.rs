//! `strata umount`: undo a `strata mount`.

use std::path::PathBuf;

use crate::args::StoreArgs;

/// Arguments of `strata umount`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory an image was mounted at.
    dir: PathBuf,
}

/// Runs `strata umount`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    if crate::serve::umount(&args.dir)? {
        return Ok(());
    }
    store.open()?.unmount(&args.dir)?;
    Ok(())
}
