//! `strata rmi`: remove images (and the layers nothing else uses) from the store.

use anyhow::bail;
use strata_store::Store;

use crate::args::StoreArgs;
use crate::output::{print_json, print_raw};
use crate::serve::{live_mounts, umount};

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
pub fn run(args: Args, store_args: &StoreArgs) -> anyhow::Result<()> {
    let store = store_args.open()?;
    let mut reports = Vec::new();
    let mut out = String::new();
    for name in &args.images {
        check_fuse_mounts(&store, name, args.force)?;
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

/// Refuses to remove an image (not just one of its names) that a live FUSE mount serves from the store's
/// layer directories; with `force`, unmounts those mounts first.
fn check_fuse_mounts(store: &Store, name: &str, force: bool) -> anyhow::Result<()> {
    let Some(id) = store.image_to_remove(name)? else {
        return Ok(());
    };
    let root = std::path::absolute(store.root())?;
    for m in live_mounts()? {
        if m.image_id.as_deref() != Some(id.as_str())
            || m.store_root.as_deref() != Some(root.as_path())
        {
            continue;
        }
        if !force {
            bail!(
                "image {}: mounted at {} (FUSE, served by pid {}); unmount it first (strata umount {}) or use --force",
                id.get(..12).unwrap_or(&id),
                m.dir.display(),
                m.pid,
                m.dir.display()
            );
        }
        umount(&m.dir)?;
    }
    Ok(())
}
