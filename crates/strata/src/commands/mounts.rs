//! `strata mounts`: the live mounts — FUSE mounts from their mount records (stale ones cleaned up on the
//! way), and the store's kernel-overlay image mounts from its bind records.

use serde::Serialize;
use strata_store::Store;

use crate::args::StoreArgs;
use crate::output::{print_json, print_raw};
use crate::serve::live_mounts;

/// Arguments of `strata mounts`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the mounts as JSON: the FUSE mount records, then the store's overlay mounts.
    #[arg(long)]
    json: bool,
}

/// One mount as listed.
#[derive(Serialize)]
#[serde(untagged)]
enum Listed {
    Fuse(strata_fuse::MountRecord),
    Overlay(OverlayMount),
}

/// A kernel-overlay image mount of the store (`strata mount --overlay`).
#[derive(Serialize)]
struct OverlayMount {
    dir: String,
    image: String,
    /// `overlay`.
    mode: &'static str,
    /// The mounted (top) layer.
    layer: String,
    store_root: std::path::PathBuf,
}

/// Runs `strata mounts`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let mut mounts: Vec<Listed> = live_mounts()?.into_iter().map(Listed::Fuse).collect();
    // Listing never creates a store.
    if let Ok(store) = Store::open_existing(&store.root(), &store.runroot()?) {
        let root = std::path::absolute(store.root())?;
        for b in store.mounts()? {
            mounts.push(Listed::Overlay(OverlayMount {
                dir: b.dir,
                image: b.image,
                mode: "overlay",
                layer: b.layer,
                store_root: root.clone(),
            }));
        }
    }
    if args.json {
        return print_json(&mounts);
    }
    let mut out = format!(
        "{:<40} {:<7} {:>8}  {}\n",
        "DIRECTORY", "MODE", "PID", "IMAGE"
    );
    for m in &mounts {
        let (dir, mode, pid, image) = match m {
            Listed::Fuse(r) => (
                r.dir.display().to_string(),
                r.mode.as_str(),
                r.pid.to_string(),
                r.image.as_str(),
            ),
            Listed::Overlay(o) => (o.dir.clone(), o.mode, "-".to_owned(), o.image.as_str()),
        };
        out.push_str(&format!("{dir:<40} {mode:<7} {pid:>8}  {image}\n"));
    }
    print_raw(out.as_bytes())
}
