//! `strata cat`: a file's bytes from an image, streamed.

use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use anyhow::bail;
use strata_scan::{Kind, Resolved};

use crate::args::{ImageArgs, StoreArgs};
use crate::names::{self, quoted};

/// Arguments of `strata cat`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: ImageArgs,
    /// The file inside the image, any bytes (names need not be UTF-8); symlinks are followed inside the
    /// image (absolute targets from its root).
    path: PathBuf,
}

/// Runs `strata cat`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let path = args.path.as_os_str().as_bytes();
    let entry = match image.lookup(path, true)? {
        Resolved::Entry(e) => e,
        Resolved::Missing => {
            // A symlink that leads nowhere: name where it points.
            if let Some(link) = image.resolve(path, false)?
                && link.kind == Kind::Symlink
            {
                bail!(
                    "{}: dangling symlink to {}",
                    quoted(path),
                    quoted(&link.link)
                );
            }
            return Err(names::lookup_error(path, &Resolved::Missing));
        }
        other => return Err(names::lookup_error(path, &other)),
    };
    match entry.kind {
        Kind::File => {}
        Kind::Dir => bail!("{}: Is a directory", quoted(path)),
        other => bail!(
            "{}: not a regular file (a {})",
            quoted(path),
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
