//! Lock files, as containers/storage uses them: whole-file `fcntl(2)` locks, and the 64-byte "last write"
//! token at the start of the file.
//!
//! Every lock is an OFD lock ([`crate::sys`]) on its own open file description, so it conflicts with
//! containers/storage's POSIX locks on the same file, with other strata processes, and with other threads of
//! this process. It is released when the [`Lock`] is dropped (its descriptor closed), or when the process dies.
//!
//! The token (containers/storage `pkg/lockfile/lastwrite.go`): bytes `[0:8]` the wall-clock time in
//! nanoseconds, `[8:16]` a per-process counter, `[16:20]` the process ID (all little-endian), `[20:64]` random
//! bytes chosen once per process. A writer stores a fresh token **before** it writes the data the lock guards,
//! so a reader that remembers the token it saw can tell whether anything changed since — even if the writer
//! crashed half-way. An empty file means "never written".

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, IoContext, Result};
use crate::sys::{LockKind, ofd_lock};

pub(crate) use crate::sys::LockKind as Kind;

/// The size of the last-write token.
pub const TOKEN_SIZE: usize = 64;

/// A last-write token, as read from a lock file (all zeros: never written).
pub type Token = [u8; TOKEN_SIZE];

/// A held lock on a lock file. Dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
    path: PathBuf,
    kind: LockKind,
}

fn open_lock_file(path: &Path, kind: LockKind, create_parents: bool) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC);
    match opts.open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create_parents => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).at(parent)?;
            }
            opts.open(path).at(path)
        }
        // A store we may only read (another user's, a read-only file system): a shared lock needs only read
        // access.
        Err(e)
            if kind == LockKind::Shared
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EROFS | libc::EPERM)
                ) =>
        {
            File::open(path).at(path)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

impl Lock {
    /// Opens (creating if needed, mode 0644) and locks `path`, waiting as long as another holder conflicts.
    pub(crate) fn acquire(path: &Path, kind: LockKind) -> Result<Lock> {
        Self::acquire_with(path, kind, true)
    }

    /// Like [`acquire`](Lock::acquire); `create_parents: false` fails (`NotFound`) if the directory is gone
    /// instead of making it again.
    pub(crate) fn acquire_with(path: &Path, kind: LockKind, create_parents: bool) -> Result<Lock> {
        let file = open_lock_file(path, kind, create_parents)?;
        ofd_lock(file.as_fd(), kind, true).at(path)?;
        Ok(Lock {
            file,
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Like [`acquire`](Lock::acquire) but never waits: `None` when another holder conflicts.
    #[cfg(test)]
    pub(crate) fn try_acquire(path: &Path, kind: LockKind) -> Result<Option<Lock>> {
        Self::try_acquire_with(path, kind, true)
    }

    /// Like [`acquire_with`](Lock::acquire_with) but never waits (`None` when another holder conflicts), with
    /// `create_parents` as there.
    pub(crate) fn try_acquire_with(
        path: &Path,
        kind: LockKind,
        create_parents: bool,
    ) -> Result<Option<Lock>> {
        let file = open_lock_file(path, kind, create_parents)?;
        match ofd_lock(file.as_fd(), kind, false) {
            Ok(()) => Ok(Some(Lock {
                file,
                path: path.to_path_buf(),
                kind,
            })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The open lock file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The token stored in the lock file (zeros if it was never written or is short).
    pub(crate) fn token(&self) -> Result<Token> {
        read_token(&self.file, &self.path)
    }

    /// Stores a fresh token, before the guarded data is written. Needs the lock held exclusively.
    pub(crate) fn record_write(&self) -> Result<Token> {
        if self.kind != LockKind::Exclusive {
            return Err(Error::io(
                &self.path,
                io::Error::other("internal error: recording a write under a shared lock"),
            ));
        }
        let token = new_token();
        self.file.write_all_at(&token, 0).at(&self.path)?;
        Ok(token)
    }
}

/// Reads the token of an open lock file.
pub(crate) fn read_token(file: &File, path: &Path) -> Result<Token> {
    let mut token = [0u8; TOKEN_SIZE];
    let mut filled = 0;
    while filled < TOKEN_SIZE {
        match file.read_at(&mut token[filled..], filled as u64) {
            Ok(0) => return Ok([0u8; TOKEN_SIZE]),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(token)
}

/// A fresh token: now, this process's next counter value, its PID and its random bytes.
pub(crate) fn new_token() -> Token {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static RANDOM: OnceLock<[u8; 44]> = OnceLock::new();
    let random = RANDOM.get_or_init(|| {
        let mut r = [0u8; 44];
        crate::ids::fill_random(&mut r);
        r
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut token = [0u8; TOKEN_SIZE];
    token[0..8].copy_from_slice(&nanos.to_le_bytes());
    token[8..16].copy_from_slice(&counter.to_le_bytes());
    token[16..20].copy_from_slice(&pid.to_le_bytes());
    token[20..64].copy_from_slice(random);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_exclusive_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = Lock::acquire(&p, LockKind::Shared).unwrap();
        let b = Lock::try_acquire(&p, LockKind::Shared).unwrap();
        assert!(b.is_some(), "readers never block each other");
        assert!(
            Lock::try_acquire(&p, LockKind::Exclusive)
                .unwrap()
                .is_none()
        );
        drop((a, b));
        let w = Lock::acquire(&p, LockKind::Exclusive).unwrap();
        assert!(Lock::try_acquire(&p, LockKind::Shared).unwrap().is_none());
        assert_eq!(w.token().unwrap(), [0u8; TOKEN_SIZE]);
        let t = w.record_write().unwrap();
        assert_eq!(w.token().unwrap(), t);
        assert_eq!(&t[16..20], &std::process::id().to_le_bytes());
        let t2 = w.record_write().unwrap();
        assert_ne!(t, t2);
    }
}
