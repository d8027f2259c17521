//! `strata unpack`: an image's squashed root filesystem in a directory, what `umoci unpack` puts in `rootfs/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;
use strata_layer::unpack::{Mode, UnpackOptions, Unpacker};
use strata_layer::unpack_layers;
use strata_source::resolve;

use super::platform::PlatformArgs;
use super::registry_args::RegistryArgs;
use crate::output::{human_bytes, print_json};

/// Arguments of `strata unpack`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON report of what was written: {"layers", "entries" (paths under /, as `strata export`
    /// counts them), "layer_entries" (layer entries applied, whiteouts included), "bytes",
    /// "skipped_devices", "skipped_xattrs", "seconds"}.
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
    /// Paths under `/` in the unpacked tree (what `strata export` counts).
    entries: u64,
    /// Layer entries applied (whiteouts and entries later replaced included).
    layer_entries: u64,
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
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = super::store::open_image(&args.image, &args.registry.options()?)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let specs = super::store::layer_specs(&args.image, &image)?;
    prepare(&args.dir)?;
    let mut unpacker = Unpacker::new(&args.dir, UnpackOptions::new(Mode::Squash))?;
    unpack_layers(source.as_ref(), &specs, &mut unpacker)?;
    let done = unpacker.finish()?;
    let entries = count_entries(&args.dir)
        .with_context(|| format!("counting what was unpacked into {}", args.dir.display()))?;
    let report = Report {
        layers: specs.len(),
        entries,
        layer_entries: done.entries,
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
        "unpacked {} layers into {}: {} entries (paths under /), {} of file content, in {:.2} s{note}",
        report.layers,
        args.dir.display(),
        report.entries,
        human_bytes(report.bytes),
        report.seconds
    );
    Ok(())
}

/// The paths under `dir` (not `dir` itself), symlinks not followed: what `find DIR -mindepth 1` lists and
/// `strata export` writes as entries.
fn count_entries(dir: &Path) -> std::io::Result<u64> {
    let mut count = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            count += 1;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(count)
}
