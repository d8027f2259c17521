//! `strata export`: an image's squashed tree as one tar, streamed from its layers.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;

use crate::args::{ImageArgs, StoreArgs};
use crate::output::human_bytes;

/// Arguments of `strata export`.
#[derive(clap::Args)]
pub struct Args {
    /// The tar to write (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata export`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    if args.output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
        image.export_tar(&mut out)?;
        out.flush()?;
        return Ok(());
    }
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = image.export_tar(&mut out).and_then(|report| {
        out.flush().map_err(|source| strata_scan::Error::Io {
            what: format!("writing {}", args.output.display()),
            source,
        })?;
        Ok(report)
    });
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            drop(out);
            // A partial tar is worse than none.
            let _ = std::fs::remove_file(&args.output);
            return Err(e.into());
        }
    };
    eprintln!(
        "exported {} entries ({} of file content, {} hardlinks) to {}",
        report.entries,
        human_bytes(report.bytes),
        report.hardlinks,
        args.output.display()
    );
    Ok(())
}
