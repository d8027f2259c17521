//! What the store commands share: the global `--root`/`--runroot` flags, the default store, and opening
//! `containers-storage:` images for the commands that read images.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::bail;

use strata_layer::LayerSpec;
use strata_source::{ImageSource, ResolvedImage, SourceOptions};
use strata_store::Store;

use crate::output::human_bytes;

/// podman's graph root; its run root is the default for it.
const PODMAN_ROOT: &str = "/var/lib/containers/storage";
const PODMAN_RUNROOT: &str = "/run/containers/storage";

/// The global store flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The store's graph root [default: /var/lib/strata as root, ~/.local/share/strata otherwise;
    /// /var/lib/containers/storage shares podman's].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The store's run root (mount state) [default: /run/strata as root, $XDG_RUNTIME_DIR/strata otherwise,
    /// or without XDG_RUNTIME_DIR $TMPDIR/strata-run-UID, made mode 0700 and refused unless it is yours and
    /// 0700; /run/containers/storage with podman's root; a subdirectory named after the root for other
    /// roots].
    #[arg(long, global = true, value_name = "DIR")]
    runroot: Option<PathBuf>,
}

static GLOBAL: OnceLock<StoreArgs> = OnceLock::new();

/// Records the global flags for the commands that open images (`containers-storage:` without a store spec).
pub fn set_global(args: &StoreArgs) {
    let _ = GLOBAL.set(args.clone());
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

impl StoreArgs {
    /// The graph root.
    pub fn root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        if is_root() {
            return PathBuf::from("/var/lib/strata");
        }
        match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d).join("strata"),
            None => home().join(".local/share/strata"),
        }
    }

    /// The run root.
    pub fn runroot(&self) -> anyhow::Result<PathBuf> {
        if let Some(r) = &self.runroot {
            return Ok(r.clone());
        }
        match &self.root {
            Some(r) if Path::new(r) == Path::new(PODMAN_ROOT) => Ok(PathBuf::from(PODMAN_RUNROOT)),
            None => run_dir(),
            Some(r) => {
                let abs = std::path::absolute(r).unwrap_or_else(|_| r.clone());
                let d = strata_oci::Digest::sha256(abs.to_string_lossy().as_bytes());
                Ok(run_dir()?.join(&d.hex()[..16]))
            }
        }
    }

    /// Opens (creating if needed) the store, cleaning up after interrupted operations (see [`open_store`]).
    pub fn open(&self) -> anyhow::Result<Store> {
        self.open_at(None, None)
    }

    /// Opens the store at `root` and `runroot` where given (a `containers-storage:[ROOT+RUNROOT]` reference),
    /// at the flags' or the default ones otherwise (see [`open_store`]).
    pub fn open_at(
        &self,
        root: Option<PathBuf>,
        runroot: Option<PathBuf>,
    ) -> anyhow::Result<Store> {
        let defaulted = root.is_none() && self.root.is_none();
        let root = root.unwrap_or_else(|| self.root());
        let runroot = match runroot {
            Some(r) => r,
            None => self.runroot()?,
        };
        open_store(&root, &runroot, defaulted)
    }
}

/// Opens (creating if needed) the store, and says on stderr what its recovery removed: what interrupted
/// operations left (a killed pull's staging directories, incomplete layers), with where and how big.
/// `default_root`: the graph root is the default one, in the user's home; if it cannot be made there, the
/// error says to pass `--root`.
pub fn open_store(root: &Path, runroot: &Path, default_root: bool) -> anyhow::Result<Store> {
    let store = match Store::open(root, runroot) {
        Ok(s) => s,
        Err(strata_store::Error::Io { path, source })
            if default_root
                && !is_root()
                && (root.starts_with(&path) || path.starts_with(root))
                && matches!(
                    source.kind(),
                    io::ErrorKind::PermissionDenied
                        | io::ErrorKind::ReadOnlyFilesystem
                        | io::ErrorKind::NotFound
                        | io::ErrorKind::NotADirectory
                ) =>
        {
            let home = match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(h) => format!("HOME is {}", Path::new(&h).display()),
                None => "HOME is not set".to_owned(),
            };
            bail!(
                "{}: {source}; the default store is in your home directory, which is not usable ({home}): \
                 pass --root DIR (a directory you can write)",
                path.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    for x in store.recovered() {
        eprintln!(
            "strata: removed what an interrupted operation left: {} {} ({})",
            x.what,
            x.path.display(),
            human_bytes(x.bytes)
        );
    }
    Ok(store)
}

/// The directory for this user's run-time state: `/run/strata` as root, `$XDG_RUNTIME_DIR/strata` otherwise,
/// and without `XDG_RUNTIME_DIR` `$TMPDIR/strata-run-UID`. That last one is in a directory every user can
/// write: it is made mode 0700 if missing, and refused, as podman refuses its `podman-run-UID`, if it is not
/// a directory of this user's with no access for others (another user could plant or read locks and mount
/// records there).
pub fn run_dir() -> anyhow::Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/run/strata"));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("strata"));
    }
    let uid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("strata-run-{uid}"));
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => bail!(
            "{}: {e}; set XDG_RUNTIME_DIR or pass --runroot DIR",
            dir.display()
        ),
    }
    let meta = fs::symlink_metadata(&dir)?;
    let advice = "remove it, or set XDG_RUNTIME_DIR or pass --runroot DIR";
    if !meta.is_dir() {
        bail!(
            "{}: the run directory is not a directory (a symbolic link?); {advice}",
            dir.display()
        );
    }
    if meta.uid() != uid {
        bail!(
            "{}: the run directory belongs to {}, not to you, {}; {advice}",
            dir.display(),
            user_name(meta.uid()),
            user_name(uid)
        );
    }
    if meta.mode() & 0o077 != 0 {
        bail!(
            "{}: the run directory has mode {:04o}, open to other users; it must be 0700 (chmod 700 it), or set \
             XDG_RUNTIME_DIR or pass --runroot DIR",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(dir)
}

/// `NAME (uid N)` from /etc/passwd, or `uid N`.
fn user_name(uid: u32) -> String {
    let name = fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
        })
    });
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// The global store flags as given to this run.
pub fn global() -> StoreArgs {
    GLOBAL.get().cloned().unwrap_or_default()
}

/// Whether `name` is a `containers-storage:` image.
pub fn is_store_image(name: &str) -> bool {
    name.starts_with("containers-storage:")
}

/// Opens the store image `name` (`containers-storage:[ROOT+RUNROOT]IMAGE`; the global `--root`/`--runroot`
/// store when the reference names none).
pub fn open_store_image(name: &str) -> anyhow::Result<strata_store::StoreSource> {
    let g = global();
    Ok(strata_store::open_source(name, &g.root(), &g.runroot()?)?)
}

/// Opens image `name` for reading: `containers-storage:[ROOT+RUNROOT]IMAGE` from a store (the global
/// `--root`/`--runroot` one when the reference names none), anything else through `strata_source`.
pub fn open_image(name: &str, options: &SourceOptions) -> anyhow::Result<Box<dyn ImageSource>> {
    if is_store_image(name) {
        return Ok(Box::new(open_store_image(name)?));
    }
    Ok(strata_source::open_with(name, options)?)
}

/// The layer specs to read `image`'s layers with: a store keeps layers uncompressed, so a
/// `containers-storage:` image's layers are read by diff ID.
pub fn layer_specs(name: &str, image: &ResolvedImage) -> anyhow::Result<Vec<LayerSpec>> {
    let specs = strata_layer::layer_specs(image)?;
    Ok(if is_store_image(name) {
        strata_store::uncompressed_specs(&specs)
    } else {
        specs
    })
}
