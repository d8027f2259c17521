//! The FUSE mount's serving protocol: `strata mount --fuse` mounts any image read-only through FUSE
//! (`strata_fuse`), nothing unpacked; and what `strata umount`, `strata mounts` and `strata rmi` do with
//! such mounts.
//!
//! Without `--foreground`, `strata mount` starts a copy of itself with the same arguments plus the hidden
//! `--serve-detached`, which opens the image, mounts it, writes the mount record, says `ready REPORT` on
//! its stdout and then detaches (new session, stdio on /dev/null, cwd /) and serves until the mount goes
//! away. The first process prints the report and exits: when it returns, the mount is ready. A failure
//! before that is the child's error message, relayed.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use strata_fuse::{FsOptions, ImageFs, MountLock, MountOptions, MountRecord, Records};
use strata_image::ImageSource;
use strata_layer::{IndexDir, IndexOptions};

use crate::args::image::{has_transport, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{print_json, print_raw};

/// How long `strata umount` waits for the serving process to finish.
const UMOUNT_WAIT: Duration = Duration::from_secs(5);

/// The FUSE flags of `strata mount`.
#[derive(clap::Args, Debug, Clone)]
pub struct FuseArgs {
    /// Mount through FUSE, served by a background strata process: any image (a store image read from its
    /// layers' directories), as any user [default for images with a transport (oci:, oci-archive:,
    /// docker-archive:, dir:, docker://), and when not root].
    #[arg(long, conflicts_with = "overlay")]
    pub fuse: bool,
    /// Mount a store image through the kernel's overlayfs (root only) [default for store images as root].
    #[arg(long)]
    pub overlay: bool,
    /// With FUSE: serve the mount from this process until it is unmounted (`strata umount`, SIGINT,
    /// SIGTERM), instead of from a background one.
    #[arg(long)]
    pub foreground: bool,
    /// With FUSE: read layer indexes from DIR/<blob hex>.idx (as `strata index -o DIR` writes them)
    /// instead of reading and indexing those layers again. DIR must exist.
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
    /// Mount over a directory that is not empty (its files are hidden until the unmount). Without it such
    /// a directory is refused, as fusermount did before libfuse 3.
    #[arg(long)]
    pub nonempty: bool,
    /// With FUSE, as a user other than root: let other users (root included) into the mount. fusermount3
    /// allows it only when /etc/fuse.conf has a line `user_allow_other`. Root's FUSE mounts always let
    /// other users in. Inside the mount the kernel enforces the image's modes and owners either way
    /// (default_permissions).
    #[arg(long)]
    pub allow_other: bool,
    #[command(flatten)]
    pub platform: PlatformArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Internal: this is the background serving process (says `ready` on stdout, then detaches).
    #[arg(long, hide = true)]
    pub serve_detached: bool,
}

impl FuseArgs {
    /// Whether `strata mount IMAGE` goes through FUSE: `--fuse`; not with `--overlay`; otherwise for images
    /// named with a transport, and for everyone but root.
    pub fn wants_fuse(&self, image: &str) -> bool {
        if self.fuse || self.serve_detached {
            true
        } else if self.overlay {
            false
        } else {
            reads_blobs(image) || !rustix::process::geteuid().is_root()
        }
    }
}

/// Whether `image` names a transport read from blobs (not a store image).
fn reads_blobs(image: &str) -> bool {
    has_transport(image) && !image.starts_with(strata_store::TRANSPORT)
}

/// The directory of FUSE mount records: `/run/strata/mounts` as root, `$XDG_RUNTIME_DIR/strata/mounts`
/// otherwise (`$TMPDIR/strata-run-UID/mounts` without one, if that is the user's own: see
/// [`strata_store::user_run_dir`]).
pub fn records() -> anyhow::Result<Records> {
    Ok(Records::new(strata_store::user_run_dir()?.join("mounts")))
}

/// What `strata mount --fuse` reports (`--json`), and the serving process tells the first one.
#[derive(Serialize, Deserialize)]
struct Report {
    dir: PathBuf,
    image: String,
    manifest: String,
    mode: String,
    pid: u32,
    layers: usize,
    entries: usize,
    seconds: f64,
}

/// Runs `strata mount --fuse [--foreground] IMAGE DIR`.
pub fn mount(
    args: &FuseArgs,
    store: &StoreArgs,
    image: &str,
    dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let dir = strata_fuse::absolute(dir)?;
    // A missing --index-dir is said here, before a serving process starts.
    if let Some(index_dir) = &args.index_dir {
        IndexDir::open(index_dir).context("--index-dir")?;
    }
    if args.serve_detached || args.foreground {
        return serve(args, store, image, &dir, json);
    }
    // A quick check before the serving process opens the image; it checks again, under the lock.
    prepare(&records()?.lock(&dir)?, &dir, args.nonempty)?;
    let report = start_detached()?;
    let report: Report =
        serde_json::from_str(&report).context("reading the serving process's report")?;
    print_report(&report, json)
}

/// Starts this command again with `--serve-detached` added and waits until that process says `ready
/// REPORT` (then returns REPORT, its JSON) or fails (then its error message is this one's).
pub fn start_detached() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("locating the strata executable")?;
    let mut child = Command::new(&exe)
        .args(child_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    if let Some(report) = line.trim_end().strip_prefix("ready ") {
        return Ok(report.to_owned());
    }
    let status = child.wait()?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    let message = err
        .lines()
        .last()
        .unwrap_or_default()
        .trim_start_matches("strata: error: ")
        .to_owned();
    if message.is_empty() {
        bail!("the serving process failed ({status})");
    }
    bail!("{message}")
}

/// This process's arguments with `--serve-detached` added (before a `--`, if there is one).
fn child_args() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.insert(at, "--serve-detached".into());
    args
}

/// Checks, holding `dir`'s lock, that `dir` can take a new mount: not mounted by a live strata process
/// (a stale record and a dead mount left by a killed one are cleaned up), a directory, and empty unless
/// `nonempty`.
pub fn prepare(lock: &MountLock, dir: &Path, nonempty: bool) -> anyhow::Result<()> {
    if let Some(r) = lock.record()? {
        if r.is_alive() {
            bail!(
                "{} is already mounted ({}, served by pid {})",
                dir.display(),
                r.image,
                r.pid
            );
        }
        lock.remove(Some(r.pid))?;
    }
    strata_fuse::cleanup_dead_mount(dir);
    if strata_fuse::is_strata_mount(dir)? {
        bail!(
            "{} is already mounted (a strata mount this user has no record of)",
            dir.display()
        );
    }
    check_dir(dir, nonempty)
}

/// Checks that `dir` is a directory, and an empty one unless `nonempty` (the mount would hide its files).
pub fn check_dir(dir: &Path, nonempty: bool) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if !nonempty
        && std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: the mount would hide its files until the unmount (--nonempty mounts over them)",
            dir.display()
        );
    }
    Ok(())
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    print_raw(format!("{}\n", report.dir.display()).as_bytes())
}

/// Opens, mounts and serves `image` at `dir` in this process (`--foreground` or `--serve-detached`).
fn serve(
    args: &FuseArgs,
    store: &StoreArgs,
    image: &str,
    dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let records = records()?;
    // Fails early; the check that counts is made again below, under the directory's lock.
    prepare(&records.lock(dir)?, dir, args.nonempty)?;
    let options = FsOptions {
        indexes: IndexOptions {
            index_dir: args.index_dir.as_deref().map(IndexDir::open).transpose()?,
            finders: crate::args::image::finders(image, &args.registry)?,
        },
        ..FsOptions::default()
    };
    let source_options = source_options(&args.registry, store)?;
    let platform = args.platform.platform();
    let (fs, store_image) = if reads_blobs(image) {
        let source: Arc<dyn ImageSource> =
            Arc::from(strata_store::transports().open(image, &source_options)?);
        (ImageFs::open(source, &platform, &options)?, None)
    } else {
        // A store image: its layers' indexes and diff dirs, nothing read from blobs. The record names the
        // store and the image, so that `strata rmi` refuses to remove it while it is mounted.
        if args.index_dir.is_some() {
            bail!(
                "--index-dir is for images read from their blobs: a store image keeps its layers' indexes"
            );
        }
        let source = if image.starts_with(strata_store::TRANSPORT) {
            let (root, runroot) = store.transport_store(None, None)?;
            strata_store::open_source(image, &root, &runroot)?
        } else {
            let name = format!("{}:{image}", strata_store::TRANSPORT);
            strata_store::open_source(&name, &store.root(), &store.runroot()?).map_err(|e| {
                crate::hints::store_hint(&e, image, &store.root()).unwrap_or_else(|| e.into())
            })?
        };
        let store_image = (
            std::path::absolute(source.store().root())?,
            source.image().id.clone(),
        );
        let source: Arc<dyn ImageSource> = Arc::new(source);
        (
            ImageFs::open(source, &platform, &options)?,
            Some(store_image),
        )
    };
    let summary = fs.summary().clone();
    // From the check that nothing is mounted at `dir` until the record is written, one step: of several
    // processes mounting there at once, one mounts, the others find its record.
    let lock = records.lock(dir)?;
    prepare(&lock, dir, args.nonempty)?;
    let mount_options = MountOptions {
        // Root's mounts let everyone in, as kernel image mounts (overlay, podman image mount) do; the
        // kernel checks the image's modes and owners (default_permissions).
        allow_other: args.allow_other || rustix::process::geteuid().is_root(),
        ..MountOptions::default()
    };
    let mounted = strata_fuse::mount(fs, dir, &mount_options)?;
    let pid = std::process::id();
    let record = MountRecord {
        manifest: summary.manifest.clone(),
        pid,
        pid_start: strata_fuse::process_start(pid).unwrap_or(0),
        entries: summary.entries as u64,
        store_root: store_image.as_ref().map(|(root, _)| root.clone()),
        image_id: store_image.map(|(_, id)| id),
        ..MountRecord::new(dir, image, strata_fuse::MODE_FUSE)
    };
    // On failure `mounted` is dropped, which unmounts.
    unmount_on_signals(dir)?;
    lock.write(&record)?;
    drop(lock);
    let report = Report {
        dir: dir.to_path_buf(),
        image: image.to_owned(),
        manifest: summary.manifest,
        mode: strata_fuse::MODE_FUSE.into(),
        pid,
        layers: summary.layers,
        entries: summary.entries,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.serve_detached {
        detach(&report)?;
    } else {
        print_report(&report, json)?;
        eprintln!(
            "serving {image} at {} until it is unmounted (strata umount, or Ctrl-C)",
            dir.display()
        );
    }
    let served = mounted.serve();
    let _ = records.remove(dir, Some(pid));
    Ok(served?)
}

/// Tells the waiting `strata mount` that the mount is ready, then leaves its session and terminal: from
/// here on this process prints nothing anywhere.
pub fn detach(report: &impl Serialize) -> anyhow::Result<()> {
    // Out of the terminal's session (and its SIGINT/SIGHUP) before saying ready.
    let _ = rustix::process::setsid();
    let line = format!("ready {}\n", serde_json::to_string(report)?);
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()?;
    drop(out);
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    rustix::stdio::dup2_stderr(&null)?;
    rustix::process::chdir("/")?;
    Ok(())
}

/// Unmounts `dir` when this process gets SIGINT, SIGTERM or SIGHUP, so that serving ends cleanly.
pub fn unmount_on_signals(dir: &Path) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("strata-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                let _ = strata_fuse::unmount(&dir);
            }
        })?;
    Ok(())
}

/// `strata umount DIR` for FUSE mounts: unmounts `dir` if it is a strata FUSE mount (live, or dead after
/// its serving process was killed) and waits for the serving process to finish. `Ok(false)` when `dir`
/// is no FUSE mount (it may be an overlay mount of the store).
pub fn umount(dir: &Path) -> anyhow::Result<bool> {
    let dir = strata_fuse::absolute(dir)?;
    let records = records()?;
    let record = records.get(&dir)?;
    if record
        .as_ref()
        .is_some_and(|r| r.mode == strata_fuse::MODE_OVERLAY)
    {
        return Ok(false);
    }
    if !strata_fuse::is_strata_mount(&dir)? {
        if let Some(r) = record
            && !r.is_alive()
        {
            records.remove(&dir, Some(r.pid))?;
        }
        return Ok(false);
    }
    strata_fuse::unmount(&dir)?;
    if let Some(r) = record {
        let deadline = Instant::now() + UMOUNT_WAIT;
        while r.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !r.is_alive() {
            records.remove(&dir, Some(r.pid))?;
        }
    }
    Ok(true)
}

/// The live mounts strata recorded: FUSE mounts (stale records removed and their dead mounts detached on the
/// way, excluding mounts already detached whose process still serves open files) and overlay mounts of store
/// images still in place.
pub fn live_mounts() -> anyhow::Result<Vec<MountRecord>> {
    let mut live = records()?.list()?;
    live.retain(|r| {
        r.mode == strata_fuse::MODE_OVERLAY || strata_fuse::is_strata_mount(&r.dir).unwrap_or(false)
    });
    Ok(live)
}
