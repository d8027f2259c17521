//! Staging directories: where a pull unpacks layers before they enter the store.
//!
//! They follow containers/storage's own protocol for `overlay/staging/` (its partial pulls use it): each
//! staging directory `R/overlay/staging/<random>/` holds a `staging.lock` that its process keeps locked for
//! as long as it works there. A staging directory whose lock can be taken belongs to a process that died:
//! it is removed by the next [`crate::Store::open`] (and by `prune` and `fsck --repair`) — and by
//! containers/storage itself, which skips the ones still locked. The directory is inside the overlay home
//! (which containers/storage bind-mounts onto itself), so the final rename of a layer's `diff/` into
//! `overlay/<id>` stays on one mount. Unpacking needs no store lock; only the move into place does.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{create_dir_all_mode, remove_all};
use crate::ids::random_hex;
use crate::layout::Layout;
use crate::lock::{Kind, Lock};

/// The lock file inside each staging directory (containers/storage's `stagingLockFile`).
pub(crate) const STAGING_LOCK: &str = "staging.lock";

/// A staging directory, held by this process until dropped (then removed with what is left in it).
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
    lock: Option<Lock>,
}

impl Staging {
    /// Creates a fresh staging directory and takes its lock.
    pub(crate) fn create(layout: &Layout) -> Result<Staging> {
        let base = layout.staging();
        create_dir_all_mode(&base, 0o700)?;
        loop {
            let dir = base.join(random_hex(16));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            }
            // A cleaner may remove the new directory before its lock exists (it finds the lock free): then
            // opening the lock fails, or the lock turns out to be unlinked. Start again.
            let lock = match Lock::acquire_with(&dir.join(STAGING_LOCK), Kind::Exclusive, false) {
                Ok(l) => l,
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if lock.file().metadata().at(&dir)?.nlink() == 0 || !dir.is_dir() {
                continue;
            }
            return Ok(Staging {
                dir,
                lock: Some(lock),
            });
        }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_all(&self.dir);
        self.lock.take();
    }
}

/// The staging directories whose lock is free (their process died), each with its lock held. A directory
/// without a lock file is left alone (a process between `mkdir` and creating its lock, or an older
/// containers/storage's).
fn stale(layout: &Layout) -> Result<Vec<(PathBuf, Lock)>> {
    let base = layout.staging();
    let entries = match fs::read_dir(&base) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&base, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.at(&base)?;
        let dir = entry.path();
        // Only directories with a lock are judged: an older containers/storage (1.43) stages partial pulls
        // here without one, and cleans those up itself.
        if !entry.file_type().at(&dir)?.is_dir() || !dir.join(STAGING_LOCK).exists() {
            continue;
        }
        match Lock::try_acquire_with(&dir.join(STAGING_LOCK), Kind::Exclusive, false) {
            Ok(Some(lock)) => out.push((dir, lock)),
            Ok(None) => {}
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether a dead pull left a staging directory.
pub(crate) fn has_stale(layout: &Layout) -> Result<bool> {
    Ok(!stale(layout)?.is_empty())
}

/// Removes staging directories whose lock is free. Returns what was removed.
pub(crate) fn clean_stale(layout: &Layout) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (dir, lock) in stale(layout)? {
        remove_all(&dir)?;
        drop(lock);
        removed.push(format!("staging directory {}", dir.display()));
    }
    Ok(removed)
}
