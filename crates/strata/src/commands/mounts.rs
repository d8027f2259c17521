//! `strata mounts`: the live FUSE mounts, from their mount records (stale ones cleaned up on the way).

use super::fuse::live_mounts;
use crate::output::{print_json, print_raw};

/// Arguments of `strata mounts`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the mount records as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `strata mounts`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mounts = live_mounts()?;
    if args.json {
        return print_json(&mounts);
    }
    let mut out = format!(
        "{:<40} {:<6} {:>8}  {}\n",
        "DIRECTORY", "MODE", "PID", "IMAGE"
    );
    for m in &mounts {
        out.push_str(&format!(
            "{:<40} {:<6} {:>8}  {}\n",
            m.dir.display(),
            m.mode,
            m.pid,
            m.image
        ));
    }
    print_raw(out.as_bytes())
}
