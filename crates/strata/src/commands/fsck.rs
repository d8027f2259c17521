//! `strata fsck`: check the store's consistency, and repair it.

use strata_store::FsckOptions;

use crate::args::StoreArgs;
use crate::output::{Findings, print_json, print_raw};

/// Arguments of `strata fsck`.
#[derive(clap::Args)]
pub struct Args {
    /// Fix what can be fixed: lost links and directories, stale mount records, broken layers (and the images
    /// that need them), leftovers.
    #[arg(long)]
    repair: bool,
    /// Also rebuild every layer's tar from its tar-split and files and check it against the diff ID.
    #[arg(long)]
    content: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// Runs `strata fsck`. Exits 1 (findings) if a problem is left unrepaired.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let report = store.open()?.fsck(FsckOptions {
        repair: args.repair,
        content: args.content,
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        let mut out = String::new();
        for p in &report.problems {
            out.push_str(&format!(
                "{}{} {}: {}\n",
                if p.repaired { "repaired: " } else { "" },
                p.kind,
                p.subject,
                p.detail
            ));
        }
        out.push_str(&format!(
            "{} layers, {} images checked{}; {} problems\n",
            report.layers,
            report.images,
            if args.content {
                format!(", {} layers' contents verified", report.content_checked)
            } else {
                String::new()
            },
            report.problems.len()
        ));
        print_raw(out.as_bytes())?;
    }
    let left = report.problems.iter().filter(|p| !p.repaired).count();
    if left > 0 {
        return Err(Findings(format!(
            "the store has {left} problems (strata fsck --repair fixes what it can)"
        ))
        .into());
    }
    Ok(())
}
