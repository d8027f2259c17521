//! `strata unpack`: an image's squashed root filesystem in a directory, what `umoci unpack` puts in `rootfs/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;
use strata_image::resolve;
use strata_layer::unpack::{Mode, UnpackOptions, Unpacker};
use strata_layer::{source_layer_specs, unpack_layers};

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json};

/// Arguments of `strata unpack`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON report of what was written.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image (see `strata inspect --help` for the transports).
    image: String,
    /// The directory to write the root filesystem into; created if missing, must be empty.
    dir: PathBuf,
}

#[derive(Serialize)]
struct Report {
    layers: usize,
    entries: u64,
    bytes: u64,
    skipped_devices: u64,
    skipped_xattrs: u64,
    seconds: f64,
}

fn prepare(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Runs `strata unpack`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = open_source(&args.image, &source_options(&args.registry, store)?)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let specs = source_layer_specs(source.as_ref(), &image)?;
    prepare(&args.dir)?;
    let mut unpacker = Unpacker::new(&args.dir, UnpackOptions::new(Mode::Squash))?;
    unpack_layers(source.as_ref(), &specs, &mut unpacker)?;
    let done = unpacker.finish()?;
    let report = Report {
        layers: specs.len(),
        entries: done.entries,
        bytes: done.bytes,
        skipped_devices: done.skipped_devices,
        skipped_xattrs: done.skipped_xattrs,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        return print_json(&report);
    }
    let mut note = String::new();
    if report.skipped_devices > 0 {
        note.push_str(&format!(
            "; skipped {} device nodes (not root)",
            report.skipped_devices
        ));
    }
    if report.skipped_xattrs > 0 {
        note.push_str(&format!(
            "; skipped {} xattrs the file system refused",
            report.skipped_xattrs
        ));
    }
    eprintln!(
        "unpacked {} layers, {} entries, {} into {} in {:.2} s{note}",
        report.layers,
        report.entries,
        human_bytes(report.bytes),
        args.dir.display(),
        report.seconds
    );
    Ok(())
}
