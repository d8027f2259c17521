//! What the store commands share: the global `--root`/`--runroot` flags, the default store, and opening
//! `containers-storage:` images for the commands that read images.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use strata_layer::LayerSpec;
use strata_source::{ImageSource, ResolvedImage, SourceOptions};
use strata_store::Store;

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
    /// The store's run root (mount state) [default: /run/strata as root, $XDG_RUNTIME_DIR/strata otherwise;
    /// /run/containers/storage with podman's root; a subdirectory named after the root for other roots].
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
    pub fn runroot(&self) -> PathBuf {
        if let Some(r) = &self.runroot {
            return r.clone();
        }
        let base = if is_root() {
            PathBuf::from("/run/strata")
        } else {
            match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
                Some(d) => PathBuf::from(d).join("strata"),
                None => std::env::temp_dir()
                    .join(format!("strata-run-{}", rustix::process::getuid().as_raw())),
            }
        };
        match &self.root {
            None => base,
            Some(r) if Path::new(r) == Path::new(PODMAN_ROOT) => PathBuf::from(PODMAN_RUNROOT),
            Some(r) => {
                let abs = std::path::absolute(r).unwrap_or_else(|_| r.clone());
                let d = strata_oci::Digest::sha256(abs.to_string_lossy().as_bytes());
                base.join(&d.hex()[..16])
            }
        }
    }

    /// Opens (creating if needed) the store, cleaning up after interrupted operations.
    pub fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.root(), &self.runroot())?)
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
    Ok(strata_store::open_source(name, &g.root(), &g.runroot())?)
}

/// Opens image `name` for reading: `containers-storage:[ROOT+RUNROOT]IMAGE` from a store (the global
/// `--root`/`--runroot` one when the reference names none), anything else through `strata_source`.
pub fn open_image(name: &str, options: &SourceOptions) -> anyhow::Result<Box<dyn ImageSource>> {
    if is_store_image(name) {
        return Ok(Box::new(open_store_image(name)?));
    }
    super::names::check_transport(name)?;
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
