//! `strata cat`: a file's bytes from an image, streamed.

use std::io::Write as _;

use anyhow::bail;
use strata_scan::Kind;

use crate::args::{ImageArgs, StoreArgs};

/// Arguments of `strata cat`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: ImageArgs,
    /// The file inside the image; symlinks are followed inside the image (absolute targets from its root).
    path: String,
}

/// Runs `strata cat`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let Some(entry) = image.resolve(&args.path, true)? else {
        bail!("{}: no such file in the image", args.path);
    };
    match entry.kind {
        Kind::File => {}
        Kind::Dir => bail!("{}: is a directory", args.path),
        other => bail!(
            "{}: not a regular file (a {})",
            args.path,
            match other {
                Kind::Char => "character device",
                Kind::Block => "block device",
                Kind::Fifo => "named pipe",
                _ => "special file",
            }
        ),
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    image.copy_entry(&entry, &mut out)?;
    out.flush()?;
    Ok(())
}
