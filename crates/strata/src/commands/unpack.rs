//! `strata unpack`: an image's squashed root filesystem in a directory, what `umoci unpack` puts in `rootfs/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use strata_image::resolve;
use strata_layer::unpack::{Mode, UnpackOptions, Unpacker};
use strata_layer::{source_layer_specs, unpack_layers};

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
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
    /// The directory to write the root filesystem into; created if missing, must be empty. If the unpack
    /// fails or is interrupted (SIGINT, SIGTERM, SIGHUP), what it wrote is removed (and DIR too if it
    /// created it), so it can simply be run again.
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

/// Checks that `dir` is empty, creating it if missing; returns whether it was created.
fn prepare(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty", dir.display());
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Removes what an unpack that did not finish wrote into `dir` (which was empty, or `created`). Several
/// tries: writer threads may still be finishing files.
fn remove_partial(dir: &Path, created: bool) -> std::io::Result<()> {
    let mut last = Ok(());
    for _ in 0..5 {
        last = if created {
            std::fs::remove_dir_all(dir)
        } else {
            std::fs::read_dir(dir).and_then(|entries| {
                for entry in entries {
                    let path = entry?.path();
                    match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
                        Ok(_) => std::fs::remove_file(&path)?,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        };
        if last.is_ok() {
            break;
        }
    }
    last
}

/// Runs `strata unpack`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = open_source(&args.image, &source_options(&args.registry, store)?)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let specs = source_layer_specs(source.as_ref(), &image)?;
    let created = prepare(&args.dir)?;
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&cancel))?;
    }
    let mut options = UnpackOptions::new(Mode::Squash);
    options.cancel = Some(Arc::clone(&cancel));
    let unpacked = Unpacker::new(&args.dir, options).and_then(|mut unpacker| {
        unpack_layers(source.as_ref(), &specs, &mut unpacker)?;
        unpacker.finish()
    });
    let done = match unpacked {
        Ok(done) => done,
        Err(e) => {
            let what = if created {
                "removed it"
            } else {
                "removed what it wrote"
            };
            return Err(match remove_partial(&args.dir, created) {
                Ok(()) => anyhow::Error::new(e).context(format!(
                    "unpacking into {} failed; {what}",
                    args.dir.display()
                )),
                Err(cleanup) => anyhow::Error::new(e).context(format!(
                    "unpacking into {} failed, and removing the partial tree failed too ({cleanup})",
                    args.dir.display()
                )),
            });
        }
    };
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
