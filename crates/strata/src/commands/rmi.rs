//! `strata rmi`: remove images (and the layers nothing else uses) from the store.

use anyhow::{anyhow, bail};
use strata_store::Store;

use crate::args::StoreArgs;
use crate::output::{print_error, print_json, print_raw};
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
    /// As podman does, the images found are removed even when others are not; then the command fails.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Runs `strata rmi`: removes every image it can, reports those it cannot (each on its own line, the last
/// as the command's error).
pub fn run(args: Args, store_args: &StoreArgs) -> anyhow::Result<()> {
    let store = store_args.open()?;
    let mut reports = Vec::new();
    let mut out = String::new();
    let mut errors = Vec::new();
    for name in &args.images {
        let removed = check_fuse_mounts(&store, name, args.force)
            .and_then(|()| store.remove_image(name, args.force).map_err(advice));
        let r = match removed {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for n in &r.untagged {
            out.push_str(&format!("Untagged: {n}\n"));
        }
        if r.deleted {
            out.push_str(&format!("Deleted: {}\n", r.image));
        }
        reports.push(r);
    }
    if args.json {
        print_json(&reports)?;
    } else {
        print_raw(out.as_bytes())?;
    }
    let last = errors.pop();
    for e in &errors {
        print_error(e);
    }
    match last {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The store's error, with the command that undoes a strata mount in the way.
fn advice(e: strata_store::Error) -> anyhow::Error {
    match e {
        strata_store::Error::ImageMounted {
            image,
            dirs,
            layer_mount,
        } => {
            let mut how: Vec<String> = dirs
                .iter()
                .map(|d| format!("strata umount {}", d.display()))
                .collect();
            if layer_mount.is_some() {
                how.push(format!("podman image umount {image}"));
            }
            let mut at: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            if let Some((path, users)) = &layer_mount {
                at.push(format!(
                    "{} for {users} other user{} (podman image mount)",
                    path.display(),
                    if *users == 1 { "" } else { "s" }
                ));
            }
            anyhow!(
                "image {image}: mounted at {}; unmount it first ({}) or use --force",
                at.join(" and "),
                how.join(", ")
            )
        }
        e => e.into(),
    }
}

/// Refuses to remove an image (not just one of its names) that a live FUSE mount serves from the store's
/// layer directories; with `force`, unmounts those mounts first.
fn check_fuse_mounts(store: &Store, name: &str, force: bool) -> anyhow::Result<()> {
    let Some(id) = store.image_to_remove(name)? else {
        return Ok(());
    };
    let root = std::path::absolute(store.root())?;
    // FUSE mounts; the store guards its own overlay mounts (recorded here too, for `strata mounts`).
    for m in live_mounts()? {
        if m.mode != strata_fuse::MODE_FUSE
            || m.image_id.as_deref() != Some(id.as_str())
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
