//! `strata prune`: remove unnamed images, unused layers and leftovers of interrupted operations.

use crate::args::StoreArgs;
use crate::output::{human_bytes, print_json, print_raw};

/// Arguments of `strata prune`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// Runs `strata prune`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let report = store.open()?.prune()?;
    if args.json {
        return print_json(&report);
    }
    let mut out = String::new();
    for i in &report.images {
        out.push_str(&format!("Deleted image: {i}\n"));
    }
    for l in &report.layers {
        out.push_str(&format!("Deleted layer: {l}\n"));
    }
    for x in &report.leftovers {
        out.push_str(&format!(
            "Removed {} {} ({})\n",
            x.what,
            x.path.display(),
            human_bytes(x.bytes)
        ));
    }
    print_raw(out.as_bytes())
}
