//! `strata layer-store DIR`: containers/storage's Additional Layer Store at DIR (`strata_fuse::LayerStore`),
//! so that podman takes an image's layers from strata, read lazily, instead of downloading them.
//! Served as `strata mount --fuse` serves (`crate::serve`): a background process, `strata umount DIR`
//! to stop it, listed by `strata mounts`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use strata_fuse::{LayerStore, MountOptions, MountRecord, SourceOpener, StoreLog, StoreOptions};
use strata_image::ImageSource;
use strata_layer::IndexOptions;
use strata_lazy::IndexCache;

use crate::args::image::{finders, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{print_json, print_raw};

/// What the mount record and `strata mounts` call this mount's image.
const RECORD_IMAGE: &str = "layer-store";

/// Arguments of `strata layer-store`.
#[derive(clap::Args)]
pub struct Args {
    /// An existing, empty directory: podman's `--storage-opt overlay.additionallayerstore=DIR:ref` (or
    /// `additionallayerstores = ["DIR:ref"]` in storage.conf).
    dir: PathBuf,
    /// Serve from this process until unmounted (`strata umount DIR`, SIGINT, SIGTERM), instead of from a
    /// background one.
    #[arg(long)]
    foreground: bool,
    /// Append a line to FILE for every layer opened, refused, used and released.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// As a user other than root: let other users (root included) into the store (needs
    /// `user_allow_other` in /etc/fuse.conf). Root's store always lets them in.
    #[arg(long)]
    allow_other: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Internal: this is the background serving process (says `ready` on stdout, then detaches).
    #[arg(long, hide = true)]
    serve_detached: bool,
}

/// What `strata layer-store` reports (`--json`), and the serving process tells the first one.
#[derive(Serialize, Deserialize)]
struct Report {
    dir: PathBuf,
    mode: String,
    pid: u32,
    blob_dir: PathBuf,
    seconds: f64,
}

/// Runs `strata layer-store`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let dir = strata_fuse::absolute(&args.dir)?;
    if args.serve_detached || args.foreground {
        return serve(&args, store, &dir);
    }
    crate::serve::prepare(&crate::serve::records()?.lock(&dir)?, &dir, false)?;
    let report = crate::serve::start_detached()?;
    let report: Report =
        serde_json::from_str(&report).context("reading the serving process's report")?;
    print_report(&report, args.json)
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    print_raw(format!("{}\n", report.dir.display()).as_bytes())
}

/// The log the store writes to: `--log FILE` (appended to), else nowhere.
fn store_log(path: Option<&Path>) -> anyhow::Result<Option<StoreLog>> {
    let Some(path) = path else { return Ok(None) };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--log {}", path.display()))?;
    let file = Mutex::new(file);
    let log: StoreLog = Arc::new(move |line: &str| {
        let mut f = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(f, "{line}");
    });
    Ok(Some(log))
}

/// Where blobs fetched whole for `blob` are kept while their layers are in use: `layer-store/PID` in the
/// index cache's directory (`--cache-dir`, else `$XDG_CACHE_HOME/strata`), else in the temporary directory.
fn blob_dir(registry: &RegistryArgs) -> anyhow::Result<PathBuf> {
    let base = registry
        .cache_dir()
        .map(Path::to_path_buf)
        .or_else(IndexCache::default_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("strata"));
    let dir = base
        .join("layer-store")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    Ok(dir)
}

/// Mounts and serves the store at `dir` in this process (`--foreground` or `--serve-detached`).
fn serve(args: &Args, store: &StoreArgs, dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let records = crate::serve::records()?;
    crate::serve::prepare(&records.lock(dir)?, dir, false)?;
    let options = source_options(&args.registry, store)?;
    let opener: SourceOpener = Arc::new(move |reference: &str| {
        let name = format!("docker://{reference}");
        let source = strata_store::transports().open(&name, &options)?;
        Ok(Arc::from(source) as Arc<dyn ImageSource>)
    });
    let blobs = blob_dir(&args.registry)?;
    let store_options = StoreOptions {
        platform: args.platform.platform(),
        indexes: IndexOptions {
            index_dir: None,
            finders: finders("docker://", &args.registry)?,
        },
        cache_bytes: strata_layer::contents::DEFAULT_CACHE_BYTES,
        blob_dir: blobs.clone(),
        log: store_log(args.log.as_deref())?,
    };
    let fs = LayerStore::new(opener, store_options);
    let lock = records.lock(dir)?;
    crate::serve::prepare(&lock, dir, false)?;
    let mount_options = MountOptions {
        allow_other: args.allow_other || rustix::process::geteuid().is_root(),
        // containers/storage's `create` of `use` and `rmdir` of a layer must reach the store.
        read_only: false,
        ..MountOptions::default()
    };
    let mounted = strata_fuse::mount(fs, dir, &mount_options)?;
    let pid = std::process::id();
    let record = MountRecord {
        pid,
        pid_start: strata_fuse::process_start(pid).unwrap_or(0),
        ..MountRecord::new(dir, RECORD_IMAGE, strata_fuse::MODE_FUSE)
    };
    crate::serve::unmount_on_signals(dir)?;
    lock.write(&record)?;
    drop(lock);
    let report = Report {
        dir: dir.to_path_buf(),
        mode: RECORD_IMAGE.into(),
        pid,
        blob_dir: blobs.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.serve_detached {
        crate::serve::detach(&report)?;
    } else {
        print_report(&report, args.json)?;
        eprintln!(
            "serving an additional layer store at {} until it is unmounted (strata umount, or Ctrl-C)",
            dir.display()
        );
    }
    let served = mounted.serve();
    let _ = records.remove(dir, Some(pid));
    let _ = std::fs::remove_dir_all(&blobs);
    Ok(served?)
}
