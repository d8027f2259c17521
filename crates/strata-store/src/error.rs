use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of the layer store. Each names the file, layer or image involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory of the store could not be read, written, locked or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A metadata file (`layers.json`, `images.json`, …) that does not parse.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no store at this graph root (nothing was ever pulled into it).
    #[error("there is no store at {} (nothing has been stored there)", root.display())]
    NoStore {
        /// The graph root looked at.
        root: PathBuf,
    },
    /// No image with this name or ID is in the store.
    #[error("image {name:?} is not in the store {}", root.display())]
    ImageUnknown {
        /// The name or ID asked for.
        name: String,
        /// The store's graph root.
        root: PathBuf,
    },
    /// No layer with this ID is in the store.
    #[error("layer {id:?} is not in the store {}", root.display())]
    LayerUnknown {
        /// The ID asked for.
        id: String,
        /// The store's graph root.
        root: PathBuf,
    },
    /// An image name or ID prefix that matches more than one image.
    #[error("{name:?} matches more than one image ({candidates})")]
    Ambiguous {
        /// The name or ID prefix.
        name: String,
        /// The matching IDs, comma-separated.
        candidates: String,
    },
    /// The operation would disturb something in use (a mounted layer, an image a container uses).
    #[error("{what}: {reason}")]
    InUse {
        /// The image or layer.
        what: String,
        /// Who uses it.
        reason: String,
    },
    /// The per-user run directory in a directory everyone can write (`$TMPDIR/strata-run-UID`) is not this
    /// user's own (see [`crate::user_run_dir`]).
    #[error(
        "{}: refused as the run directory: {reason}; remove it, or set XDG_RUNTIME_DIR or give another run root (--runroot)",
        path.display()
    )]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it: its owner, its mode.
        reason: String,
    },
    /// An image a removal would empty under its users: one of its layers to delete is mounted (see
    /// [`crate::Store::remove_image`]).
    #[error(
        "image {image}: {}; unmount it first or force the removal",
        describe_mounts(dirs, layer_mount)
    )]
    ImageMounted {
        /// The image ID.
        image: String,
        /// The directories it is mounted at by [`crate::Store::mount_image`] (the users' mount points).
        dirs: Vec<PathBuf>,
        /// A layer mount that others hold (`podman image mount`): its mount point and how many users it has
        /// besides `dirs`.
        layer_mount: Option<(PathBuf, i64)>,
    },
    /// A layer's stored contents do not match its metadata (tar-split checksum, diff ID), or its files are
    /// missing.
    #[error("layer {id}: {reason}")]
    Damaged {
        /// The layer ID.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A tar stream the tar-split recorder could not follow.
    #[error("tar-split: {reason}")]
    TarSplit {
        /// What is wrong with the stream.
        reason: String,
    },
    /// A mount or unmount that failed or cannot be done.
    #[error("{}: {reason}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An invalid argument: a bad image name, a `containers-storage:` reference that does not parse.
    #[error("{what:?}: {reason}")]
    Invalid {
        /// The value given.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image source failed.
    #[error(transparent)]
    Source(#[from] strata_image::Error),
    /// The layer engine failed (a layer that does not verify, a hostile entry).
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// The layer index could not be written or read.
    #[error(transparent)]
    Index(#[from] strata_index::Error),
    /// Image metadata (manifest, config, digest) that does not parse.
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
}

/// Result with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `mounted at /a, /b`, `mounted at R/overlay/<id>/merged for 1 other user (podman image mount)`.
fn describe_mounts(dirs: &[PathBuf], layer_mount: &Option<(PathBuf, i64)>) -> String {
    let mut parts = Vec::new();
    if !dirs.is_empty() {
        parts.push(format!(
            "mounted at {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some((path, users)) = layer_mount {
        parts.push(format!(
            "mounted at {} for {users} other user{} (podman image mount)",
            path.display(),
            if *users == 1 { "" } else { "s" }
        ));
    }
    parts.join(", and ")
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn errno(path: impl Into<PathBuf>, errno: rustix::io::Errno) -> Self {
        Error::Io {
            path: path.into(),
            source: errno.into(),
        }
    }

    pub(crate) fn damaged(id: &str, reason: impl Into<String>) -> Self {
        Error::Damaged {
            id: id.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn mount(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Mount {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::errno(path, e))
    }
}
