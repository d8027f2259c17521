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
    let mut mounts = Vec::new();
    let mut overlays = Vec::new();
    for r in live_mounts()? {
        if r.mode == strata_fuse::MODE_OVERLAY {
            overlays.push(OverlayMount {
                dir: r.dir.display().to_string(),
                image: r.image_id.unwrap_or_default(),
                mode: "overlay",
                layer: r.layer.unwrap_or_default(),
                store_root: r.store_root.unwrap_or_default(),
            });
        } else {
            mounts.push(Listed::Fuse(r));
        }
    }
    // The store's own overlay mounts that no record names (made by an older strata). Listing never
    // creates a store.
    if let Ok(store) = Store::open_existing(&store.root(), &store.runroot()?) {
        let root = std::path::absolute(store.root())?;
        for b in store.mounts()? {
            if !overlays.iter().any(|o| o.dir == b.dir) {
                overlays.push(OverlayMount {
                    dir: b.dir,
                    image: b.image,
                    mode: "overlay",
                    layer: b.layer,
                    store_root: root.clone(),
                });
            }
        }
    }
    overlays.sort_by(|a, b| a.dir.cmp(&b.dir));
    mounts.extend(overlays.into_iter().map(Listed::Overlay));
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
