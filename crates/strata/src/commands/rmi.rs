//! `strata rmi`: remove images (and the layers nothing else uses) from the store.

use super::store::global;
use crate::output::{print_json, print_raw};

/// Arguments of `strata rmi`.
#[derive(clap::Args)]
pub struct Args {
    /// Remove an image even while it is mounted (its mounts are undone first).
    #[arg(long, short = 'f')]
    force: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    /// The images: names, IDs or ID prefixes. A name of an image that has others only loses that name.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Runs `strata rmi`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = global().open()?;
    let mut reports = Vec::new();
    let mut out = String::new();
    for name in &args.images {
        let r = store.remove_image(name, args.force)?;
        for n in &r.untagged {
            out.push_str(&format!("Untagged: {n}\n"));
        }
        if r.deleted {
            out.push_str(&format!("Deleted: {}\n", r.image));
        }
        reports.push(r);
    }
    if args.json {
        return print_json(&reports);
    }
    print_raw(out.as_bytes())
}
