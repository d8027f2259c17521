//! The store flags, `--root` and `--runroot`: which containers/storage store the store commands use, and
//! which one `containers-storage:` names without `[ROOT+RUNROOT]` mean.

use std::path::PathBuf;

use strata_store::Store;

/// The store flags, given before or after the subcommand.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The store's graph root [default: /var/lib/strata as root, ~/.local/share/strata otherwise;
    /// /var/lib/containers/storage shares podman's].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Store options"
    )]
    root: Option<PathBuf>,
    /// The store's run root (mount state) [default: /run/strata as root, $XDG_RUNTIME_DIR/strata otherwise,
    /// or $TMPDIR/strata-run-UID without XDG_RUNTIME_DIR; /run/containers/storage with podman's root; a
    /// subdirectory named after the root for other roots].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Store options"
    )]
    runroot: Option<PathBuf>,
}

impl StoreArgs {
    /// The graph root given, if any.
    pub fn given_root(&self) -> Option<PathBuf> {
        self.root.clone()
    }

    /// The run root given, if any.
    pub fn given_runroot(&self) -> Option<PathBuf> {
        self.runroot.clone()
    }

    /// The graph root.
    pub fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(strata_store::default_root)
    }

    /// The run root.
    pub fn runroot(&self) -> PathBuf {
        self.runroot
            .clone()
            .unwrap_or_else(|| strata_store::default_runroot(self.root.as_deref()))
    }

    /// Opens (creating if needed) the store, cleaning up after interrupted operations.
    pub fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.root(), &self.runroot())?)
    }
}
