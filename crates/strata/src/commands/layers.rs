//! `strata layers`: the layers in the store, or with `IMAGE` what each layer of that image adds, removes
//! and wastes.

use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json, print_raw};

mod files;

/// Arguments of `strata layers`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: each layer's record (as layers.json has it) and its mount state; with IMAGE, the
    /// per-layer report (docs/FORMAT.md).
    #[arg(long)]
    json: bool,
    /// What each layer of IMAGE holds: files added, modified and removed, bytes, and bytes wasted by later
    /// overwrites and deletions; then dive's figures (its efficiency score, wasted bytes and user-wasted
    /// percentage, computed as dive 0.13 computes them). What IMAGE alone means; needs IMAGE.
    #[arg(long, requires = "image")]
    files: bool,
    #[command(flatten)]
    ci: files::CiArgs,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// An image: its layers' files report (as with --files); without it, the store's layers are listed.
    image: Option<String>,
}

/// Runs `strata layers`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    if let Some(image) = &args.image {
        return files::run_files(
            image,
            args.json,
            &args.ci,
            &args.platform,
            &args.registry,
            store,
        );
    }
    let layers = store.open()?.layers()?;
    if args.json {
        return print_json(&layers);
    }
    let mut out = format!(
        "{:<14} {:<14} {:>10} {:>10} {:<5} {:>6}\n",
        "ID", "PARENT", "SIZE", "BLOB", "COMP", "MOUNTS"
    );
    for l in &layers {
        let r = &l.record;
        let comp = match r.compression {
            0 => "none",
            1 => "bzip2",
            2 => "gzip",
            3 => "xz",
            4 => "zstd",
            _ => "?",
        };
        out.push_str(&format!(
            "{:<14} {:<14} {:>10} {:>10} {:<5} {:>6}\n",
            &r.id[..r.id.len().min(12)],
            if r.parent.is_empty() {
                "-"
            } else {
                &r.parent[..r.parent.len().min(12)]
            },
            human_bytes(r.diff_size.max(0) as u64),
            human_bytes(r.compressed_size.max(0) as u64),
            comp,
            l.mount_count
        ));
    }
    print_raw(out.as_bytes())
}
