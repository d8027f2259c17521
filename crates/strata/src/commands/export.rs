//! `strata export`: an image's squashed tree as one tar, streamed from its layers.

use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::args::{ImageArgs, StoreArgs};
use crate::output::human_bytes;

/// Arguments of `strata export`.
#[derive(clap::Args)]
pub struct Args {
    /// The tar to write (`-` for standard output). Without it the tar goes to standard output, unless that
    /// is a terminal.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata export`: the tar to FILE (then a summary on stderr: the entries are the paths under `/`, as
/// `strata unpack` counts them), or to standard output when it is not a terminal.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let output = match &args.output {
        Some(path) if path.as_os_str() != "-" => path.clone(),
        given => {
            if given.is_none() && std::io::stdout().is_terminal() {
                bail!(
                    "standard output is a terminal: give -o FILE (or -o -), or pipe the tar to a program"
                );
            }
            let image = args.target.open_scan(store)?;
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            image.export_tar(&mut out)?;
            out.flush()?;
            return Ok(());
        }
    };
    let image = args.target.open_scan(store)?;
    let file = File::create(&output).with_context(|| format!("creating {}", output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = image.export_tar(&mut out).and_then(|report| {
        out.flush().map_err(|source| strata_scan::Error::Io {
            what: format!("writing {}", output.display()),
            source,
        })?;
        Ok(report)
    });
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            drop(out);
            // A partial tar is worse than none.
            let _ = std::fs::remove_file(&output);
            return Err(e.into());
        }
    };
    eprintln!(
        "exported {} entries (paths under /) to {}: {} of file content, {} hardlinks",
        report.entries,
        output.display(),
        human_bytes(report.bytes),
        report.hardlinks,
    );
    Ok(())
}
