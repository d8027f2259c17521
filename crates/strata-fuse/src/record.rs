//! Mount records: one small JSON file per live FUSE mount, so that `strata mounts` can list them and a
//! mount whose serving process died can be found and cleaned up ([`Records`]).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mount::{absolute, is_strata_mount, unmount};

/// The record format's version.
pub const RECORD_VERSION: u32 = 1;

/// One mount, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The mount point (absolute).
    pub dir: PathBuf,
    /// The image as the user named it (`oci:…`, `docker-archive:…`).
    pub image: String,
    /// The image manifest's digest.
    pub manifest: String,
    /// How it is mounted: `fuse`, or `overlay` (a store image through the kernel's overlayfs, recorded here
    /// too so that `strata mounts` and `strata umount` find it whatever store the user names).
    pub mode: String,
    /// The serving process (0 for an overlay mount, which has none).
    pub pid: u32,
    /// The serving process's start time (field 22 of `/proc/PID/stat`, clock ticks after boot), telling
    /// it from a later process that got the same pid.
    pub pid_start: u64,
    /// The user who mounted it.
    pub uid: u32,
    /// When it was mounted, seconds since the epoch.
    pub mounted_at: u64,
    /// Number of visible paths.
    pub entries: u64,
    /// For an image of a store: the store's graph root, absolute (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_root: Option<PathBuf>,
    /// For an image of a store: its image ID (absent otherwise). The store's users (`strata rmi`) refuse to
    /// remove an image a live record names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// For an overlay mount: the store's run root, absolute (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_runroot: Option<PathBuf>,
    /// For an overlay mount: the image's top layer, whose overlay mount is bound at `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// [`MountRecord::mode`] of a FUSE mount.
pub const MODE_FUSE: &str = "fuse";
/// [`MountRecord::mode`] of a kernel-overlay mount of a store image.
pub const MODE_OVERLAY: &str = "overlay";

impl MountRecord {
    /// A record of a `mode` mount of `image` at `dir`, made now by this process's user; what else is
    /// known of it is for the caller to fill in.
    pub fn new(dir: &Path, image: &str, mode: &str) -> MountRecord {
        MountRecord {
            version: RECORD_VERSION,
            dir: dir.to_path_buf(),
            image: image.to_owned(),
            mode: mode.to_owned(),
            uid: rustix::process::getuid().as_raw(),
            mounted_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ..MountRecord::default()
        }
    }

    /// Whether the mount is still there: for FUSE, its serving process is running; for overlay, `dir` is
    /// still an overlay mount.
    pub fn is_alive(&self) -> bool {
        if self.mode == MODE_OVERLAY {
            return crate::mount::mount_type(&self.dir)
                .ok()
                .flatten()
                .is_some_and(|t| t == "overlay");
        }
        process_start(self.pid) == Some(self.pid_start)
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it is running (a zombie, which
/// nothing has reaped yet, is not).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: skip past the last
    // ')'. Field 3 (the state) is then the first one after it, so field 22 is the 20th.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The directory of mount records.
///
/// A record is written by the serving process once the mount is ready, and removed by it when the mount
/// goes away; a record whose process is gone (killed, crashed) is stale, and [`Records::list`] removes it
/// (and detaches the dead mount, if it is still in the mount table). Its name is derived from the mount
/// point, so a directory has at most one record. The format is in docs/FORMAT.md ("Mount records").
///
/// Every change to a directory's record is made under that directory's lock ([`Records::lock`]), which a
/// mounting process holds from its check that the directory is free until its record is written: of
/// several processes mounting at one directory at once, one mounts and the others find its record.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The records kept in `dir` (created when the first record is written).
    pub fn new(dir: impl Into<PathBuf>) -> Records {
        Records { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name (without extension) of the record and lock files of the mount at `mount_dir` (absolute).
    fn stem_for(mount_dir: &Path) -> String {
        use std::os::unix::ffi::OsStrExt;
        let digest = strata_oci::Digest::sha256(mount_dir.as_os_str().as_bytes());
        let hex = digest.hex();
        hex.get(..32).unwrap_or(hex).to_owned()
    }

    /// The file holding the record of the mount at `mount_dir` (absolute).
    fn path_for(&self, mount_dir: &Path) -> PathBuf {
        self.dir.join(format!("{}.json", Self::stem_for(mount_dir)))
    }

    /// Takes the lock of the directory `mount_dir` (an exclusive `flock` of `<record name>.lock` in the
    /// records directory, created when needed), waiting while another process holds it. Every change to
    /// the directory's record is made under it: a mounting process holds it from its check that nothing
    /// is mounted there until its record is written ([`MountLock::write`]). The lock file is removed when
    /// the lock is released.
    pub fn lock(&self, mount_dir: &Path) -> Result<MountLock> {
        let mount_dir = absolute(mount_dir)?;
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self
            .dir
            .join(format!("{}.lock", Self::stem_for(&mount_dir)));
        match MountLock::acquire(path, mount_dir, self.clone(), true)? {
            Some(lock) => Ok(lock),
            // A blocking acquire only returns with the lock.
            None => Err(Error::io(
                &self.dir,
                io::Error::from(io::ErrorKind::WouldBlock),
            )),
        }
    }

    /// Writes `record` under its directory's lock ([`MountLock::write`]).
    pub fn write(&self, record: &MountRecord) -> Result<()> {
        self.lock(&record.dir)?.write(record)
    }

    /// Writes `record` (atomically: a temporary file renamed over the old record of that directory); the
    /// caller holds the directory's lock.
    fn write_locked(&self, record: &MountRecord) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.path_for(&record.dir);
        let tmp = self.dir.join(format!(".tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::BadRecord {
            path: path.clone(),
            source: e,
        })?;
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    /// The record of the mount at `mount_dir`, if there is one (stale or not).
    pub fn get(&self, mount_dir: &Path) -> Result<Option<MountRecord>> {
        let path = self.path_for(&absolute(mount_dir)?);
        read_record(&path)
    }

    /// Removes the record of the mount at `mount_dir` if it names process `pid` (any process if `None`),
    /// under the directory's lock.
    pub fn remove(&self, mount_dir: &Path, pid: Option<u32>) -> Result<()> {
        self.lock(mount_dir)?.remove(pid)
    }

    /// [`Records::remove`]; the caller holds the directory's lock.
    fn remove_locked(&self, mount_dir: &Path, pid: Option<u32>) -> Result<()> {
        let path = self.path_for(mount_dir);
        match read_record(&path) {
            Ok(Some(r)) if pid.is_some_and(|p| p != r.pid) => Ok(()),
            Ok(None) => Ok(()),
            _ => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&path, e)),
                _ => Ok(()),
            },
        }
    }

    /// The live mounts, sorted by mount point. Stale records (their process is gone) and unreadable ones
    /// are removed on the way, under their directory's lock (one being mounted right now is left alone),
    /// and a dead strata mount a stale record names is detached. Records of another [`RECORD_VERSION`]
    /// are left alone.
    pub fn list(&self) -> Result<Vec<MountRecord>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut live = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_record(&path) {
                // Another version's record: not ours to judge.
                Ok(Some(r)) if r.version != RECORD_VERSION => {}
                Ok(Some(r)) if r.is_alive() => live.push(r),
                Ok(_) | Err(_) => {
                    // Stale or unreadable: judged again under the lock. Waiting for it (a mount there, or
                    // another listing cleaning up, holds it briefly) means that when this returns, a dead
                    // mount it does not list is gone, whoever removed it.
                    if let Some(lock) = self.lock_record_file(&path, true)? {
                        match read_record(&path) {
                            Ok(Some(r)) if r.version != RECORD_VERSION => {}
                            Ok(Some(r)) if r.is_alive() => live.push(r),
                            Ok(Some(r)) => {
                                cleanup_dead_mount(&r.dir);
                                let _ = fs::remove_file(&path);
                            }
                            Ok(None) => {}
                            Err(_) => {
                                let _ = fs::remove_file(&path);
                            }
                        }
                        drop(lock);
                    }
                }
            }
        }
        live.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(live)
    }
}

impl Records {
    /// The lock of the record file `record` (`<stem>.json`): waited for if `wait`, else `None` when another
    /// process holds it.
    fn lock_record_file(&self, record: &Path, wait: bool) -> Result<Option<MountLock>> {
        let lock = record.with_extension("lock");
        MountLock::acquire(lock, PathBuf::new(), self.clone(), wait)
    }
}

/// A mount directory's lock ([`Records::lock`]): while it is held, no other process changes the
/// directory's record. Released (and its file removed) when dropped.
#[derive(Debug)]
pub struct MountLock {
    file: fs::File,
    path: PathBuf,
    mount_dir: PathBuf,
    records: Records,
}

impl MountLock {
    /// Locks the file `path`, waiting for it if `wait`, else `None` when another process holds it. A lock
    /// file removed (by the holder releasing it) between the open and the lock is opened again.
    fn acquire(
        path: PathBuf,
        mount_dir: PathBuf,
        records: Records,
        wait: bool,
    ) -> Result<Option<MountLock>> {
        use rustix::fs::FlockOperation;
        use std::os::unix::fs::MetadataExt as _;
        let op = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            loop {
                match rustix::fs::flock(&file, op) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::WOULDBLOCK) if !wait => return Ok(None),
                    Err(e) => return Err(Error::io(&path, e.into())),
                }
            }
            // Still the file at `path` (not one its last holder removed on release)?
            let held = file.metadata().map_err(|e| Error::io(&path, e))?;
            match fs::metadata(&path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => {
                    return Ok(Some(MountLock {
                        file,
                        path,
                        mount_dir,
                        records,
                    }));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }

    /// The directory's record, if there is one (stale or not).
    pub fn record(&self) -> Result<Option<MountRecord>> {
        read_record(&self.records.path_for(&self.mount_dir))
    }

    /// Writes `record` (of this lock's directory), atomically.
    pub fn write(&self, record: &MountRecord) -> Result<()> {
        if absolute(&record.dir)? != self.mount_dir {
            return Err(Error::Mount {
                path: record.dir.clone(),
                reason: format!(
                    "the record is not that of {}, whose lock is held",
                    self.mount_dir.display()
                ),
            });
        }
        self.records.write_locked(record)
    }

    /// Removes the directory's record if it names process `pid` (any process if `None`).
    pub fn remove(&self, pid: Option<u32>) -> Result<()> {
        self.records.remove_locked(&self.mount_dir, pid)
    }
}

impl Drop for MountLock {
    fn drop(&mut self) {
        // Removed while still locked: a process waiting on this file finds it gone and opens a new one.
        let _ = fs::remove_file(&self.path);
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

/// How long [`is_dead_mount`] waits for a dying server's connection to close.
const DEATH_WAIT: Duration = Duration::from_secs(3);

/// Whether `dir` is a strata mount whose serving process is gone: requests fail with `ENOTCONN`. statfs is
/// asked because, unlike stat, the kernel never answers it from its cache. A server that is still exiting
/// (its threads closing their descriptors) makes the request wait until the connection ends; a live one
/// answers; one that does not answer within a few seconds counts as alive.
pub fn is_dead_mount(dir: &Path) -> bool {
    if !is_strata_mount(dir).unwrap_or(false) {
        return false;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let target = dir.to_path_buf();
    // A thread, so that a request nobody answers cannot hold the caller (the thread ends with the process).
    let spawned = std::thread::Builder::new()
        .name("strata-statfs".into())
        .spawn(move || {
            let _ = tx.send(rustix::fs::statfs(&target).map(|_| ()));
        });
    spawned.is_ok()
        && matches!(
            rx.recv_timeout(DEATH_WAIT),
            Ok(Err(rustix::io::Errno::NOTCONN))
        )
}

/// Detaches the strata mount at `dir` if it is dead ([`is_dead_mount`]): best effort.
pub fn cleanup_dead_mount(dir: &Path) {
    if is_dead_mount(dir) {
        let _ = unmount(dir);
    }
}

fn read_record(path: &Path) -> Result<Option<MountRecord>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |e| Error::BadRecord {
        path: path.to_path_buf(),
        source: e,
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version.is_some_and(|v| v != u64::from(RECORD_VERSION)) {
        // Only the version is known of another version's record.
        return Ok(Some(MountRecord {
            version: u32::try_from(version.unwrap_or(0)).unwrap_or(u32::MAX),
            ..MountRecord::default()
        }));
    }
    serde_json::from_value(value).map(Some).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dir: &Path) -> MountRecord {
        let pid = std::process::id();
        MountRecord {
            manifest: "sha256:00".into(),
            pid,
            pid_start: process_start(pid).unwrap_or(0),
            ..MountRecord::new(dir, "oci:x", MODE_FUSE)
        }
    }

    /// A directory's lock excludes every other holder (a second open in this process too: flock locks
    /// belong to the open file), a record written under it is listed, and releasing it removes its file.
    #[test]
    fn the_lock_excludes_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(tmp.path().join("records"));
        let dir = tmp.path().join("mnt");
        let lock = records.lock(&dir).unwrap();
        let json = records.path_for(&absolute(&dir).unwrap());
        assert!(records.lock_record_file(&json, false).unwrap().is_none());
        lock.write(&record(&dir)).unwrap();
        assert!(lock.write(&record(&tmp.path().join("other"))).is_err());
        let (tx, rx) = std::sync::mpsc::channel();
        let (records2, dir2) = (records.clone(), dir.clone());
        let waiter = std::thread::spawn(move || {
            let lock = records2.lock(&dir2).unwrap();
            tx.send(lock.record().unwrap()).unwrap();
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "a second holder got the lock");
        drop(lock);
        let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(seen.map(|r| r.dir), Some(dir.clone()));
        waiter.join().unwrap();
        assert_eq!(records.list().unwrap().len(), 1);
        records.remove(&dir, None).unwrap();
        assert!(records.list().unwrap().is_empty());
        let left: Vec<_> = fs::read_dir(records.dir()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
