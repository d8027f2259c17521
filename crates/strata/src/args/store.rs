//! The store flags, `--root` and `--runroot`: which containers/storage store the store commands use, and
//! which one `containers-storage:` names without `[ROOT+RUNROOT]` mean.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::bail;
use strata_store::Store;

use crate::output::human_bytes;

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
    /// or without XDG_RUNTIME_DIR $TMPDIR/strata-run-UID, made mode 0700 and refused unless it is yours and
    /// 0700; /run/containers/storage with podman's root; a subdirectory named after the root for other
    /// roots].
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
    pub fn runroot(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.runroot {
            Some(r) => r.clone(),
            None => strata_store::default_runroot(self.root.as_deref())?,
        })
    }

    /// The store a `containers-storage:` name means: the `[ROOT+RUNROOT]` it gives (`ref_root`,
    /// `ref_runroot`); else the store `--root`/`--runroot` name; else containers/storage's own default
    /// (storage.conf), where skopeo and podman look. A bare name means strata's store instead ([`root`]).
    pub fn transport_store(
        &self,
        ref_root: Option<PathBuf>,
        ref_runroot: Option<PathBuf>,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        Ok(strata_store::transport_store(
            ref_root.or_else(|| self.root.clone()).as_deref(),
            ref_runroot.or_else(|| self.runroot.clone()).as_deref(),
        )?)
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
                && !rustix::process::geteuid().is_root()
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
