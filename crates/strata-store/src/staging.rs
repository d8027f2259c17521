//! Staging directories: where a pull unpacks layers before they enter the store.
//!
//! They follow containers/storage's own protocol for `overlay/staging/` (its partial pulls use it): each
//! staging directory `R/overlay/staging/<random>/` holds a `staging.lock` that its process keeps locked for
//! as long as it works there. A staging directory whose lock can be taken belongs to a process that died:
//! it is removed by the next [`crate::Store::open`] (and by `prune` and `fsck --repair`) — and by
//! containers/storage itself, which skips the ones still locked. The directory is inside the overlay home
//! (which containers/storage bind-mounts onto itself), so the final rename of a layer's `diff/` into
//! `overlay/<id>` stays on one mount. Unpacking needs no store lock; only the move into place does.
//!
//! A process can die where a staging directory has no lock file: between making the directory and its
//! lock, or while removing it (its own, when done, or a dead one's). strata's directories are named with
//! 32 hex digits (containers/storage's, [`os.MkdirTemp`], with decimal numbers), so one of those without a
//! lock file is judged like the others, by creating its lock and trying it: [`Staging::create`] starts
//! again if a cleaner takes its new directory away. A directory is removed with its lock file last, so
//! that a process killed part-way leaves it judged the same way.
//!
//! [`os.MkdirTemp`]: https://pkg.go.dev/os#MkdirTemp

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{create_dir_all_mode, remove_all};
use crate::ids::random_hex;
use crate::layout::Layout;
use crate::lock::{Kind, Lock};
use crate::store::Leftover;

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
            // A cleaner may take the new directory before this process holds its lock (it finds the lock free,
            // or creates it, as it does in a strata directory without one): then opening the lock fails, or
            // the lock turns out to be unlinked. Start again.
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
        let _ = remove_locked(&self.dir);
        self.lock.take();
    }
}

/// Whether `name` is one strata gives its staging directories ([`random_hex`]`(16)`).
fn is_strata_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Removes staging directory `dir`, whose lock the caller holds: everything but the lock file, then the lock
/// file, then the directory — so that at any point a process killed part-way leaves a directory the next
/// cleaner judges stale. `false` when another process made the directory its own meanwhile (a
/// [`Staging::create`], or a cleaner, made a new lock file in it once this one's was gone).
fn remove_locked(dir: &Path) -> Result<bool> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        if entry.file_name() != STAGING_LOCK {
            remove_all(&entry.path())?;
        }
    }
    remove_all(&dir.join(STAGING_LOCK))?;
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The staging directories whose lock is free (their process died), each with its lock held. A directory
/// without a lock file is judged only if strata named it (see the module docs): its lock is created to be
/// tried. Others without one are left alone (an older containers/storage (1.43) stages partial pulls without
/// a lock, and cleans those up itself).
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
        let ours = is_strata_name(&entry.file_name().to_string_lossy());
        if !entry.file_type().at(&dir)?.is_dir() || !(ours || dir.join(STAGING_LOCK).exists()) {
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
pub(crate) fn clean_stale(layout: &Layout) -> Result<Vec<Leftover>> {
    let mut removed = Vec::new();
    for (dir, lock) in stale(layout)? {
        let found = Leftover::measure("staging directory", &[&dir]);
        let done = remove_locked(&dir)?;
        drop(lock);
        if done {
            removed.push(found);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &Path) -> Layout {
        let l = Layout::new(&dir.join("r"), &dir.join("rr"));
        fs::create_dir_all(l.staging()).unwrap();
        l
    }

    #[test]
    fn held_directories_stay_and_go_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        let s = Staging::create(&l).unwrap();
        fs::create_dir_all(s.path().join("diff/etc")).unwrap();
        fs::write(s.path().join("diff/etc/x"), b"x").unwrap();
        assert!(!has_stale(&l).unwrap());
        assert!(clean_stale(&l).unwrap().is_empty());
        let path = s.path().to_path_buf();
        assert!(path.join(STAGING_LOCK).is_file());
        drop(s);
        assert!(!path.exists());
        assert_eq!(fs::read_dir(l.staging()).unwrap().count(), 0);
    }

    #[test]
    fn dead_directories_go_with_or_without_their_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        // Killed while removing it (its lock file already gone), and between `mkdir` and making its lock.
        let half_removed = l.staging().join("0123456789abcdef0123456789abcdef");
        fs::create_dir_all(half_removed.join("diff/etc")).unwrap();
        fs::write(half_removed.join("diff/etc/x"), b"x").unwrap();
        let unlocked = l.staging().join("fedcba9876543210fedcba9876543210");
        fs::create_dir_all(&unlocked).unwrap();
        // Killed with its lock file still there (any name).
        let locked = l.staging().join("42");
        fs::create_dir_all(locked.join("dir")).unwrap();
        fs::write(locked.join(STAGING_LOCK), b"").unwrap();
        // containers/storage 1.43's partial pull: no lock file, not strata's name; it cleans up its own.
        let theirs = l.staging().join("1234567890");
        fs::create_dir_all(theirs.join("dir")).unwrap();

        assert!(has_stale(&l).unwrap());
        let removed = clean_stale(&l).unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!half_removed.exists() && !unlocked.exists() && !locked.exists());
        assert!(theirs.join("dir").is_dir());
        assert!(!theirs.join(STAGING_LOCK).exists());
        assert!(!has_stale(&l).unwrap());
    }

    #[test]
    fn creators_and_cleaners_race_safely() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let cleaners: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        while !stop.load(Ordering::Relaxed) {
                            clean_stale(&l).unwrap();
                        }
                    })
                })
                .collect();
            let creators: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..200 {
                            let s = Staging::create(&l).unwrap();
                            fs::create_dir(s.path().join("diff")).unwrap();
                            fs::write(s.path().join("diff/x"), b"x").unwrap();
                            assert!(s.path().join(STAGING_LOCK).is_file());
                            // A creator killed before making its lock.
                            fs::create_dir(l.staging().join(random_hex(16))).unwrap();
                        }
                    })
                })
                .collect();
            for c in creators {
                c.join().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            for c in cleaners {
                c.join().unwrap();
            }
        });
        clean_stale(&l).unwrap();
        assert_eq!(fs::read_dir(l.staging()).unwrap().count(), 0);
    }
}
