//! `strata umount`: undo a `strata mount`.

use std::path::PathBuf;

use super::store::global;

/// Arguments of `strata umount`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory an image was mounted at.
    dir: PathBuf,
}

/// Runs `strata umount`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if super::fuse::umount(&args.dir)? {
        return Ok(());
    }
    global().open()?.unmount(&args.dir)?;
    Ok(())
}
