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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The mount point (absolute).
    pub dir: PathBuf,
    /// The image as the user named it (`oci:…`, `docker-archive:…`).
    pub image: String,
    /// The image manifest's digest.
    pub manifest: String,
    /// How it is mounted: `fuse`.
    pub mode: String,
    /// The serving process.
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
}

impl MountRecord {
    /// Whether the process that serves the mount is still running.
    pub fn is_alive(&self) -> bool {
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

    /// The file holding the record of the mount at `mount_dir` (absolute).
    fn path_for(&self, mount_dir: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let digest = strata_oci::Digest::sha256(mount_dir.as_os_str().as_bytes());
        let hex = digest.hex();
        self.dir
            .join(format!("{}.json", hex.get(..32).unwrap_or(hex)))
    }

    /// Writes `record` (atomically: a temporary file renamed over the old record of that directory).
    pub fn write(&self, record: &MountRecord) -> Result<()> {
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

    /// Removes the record of the mount at `mount_dir` if it names process `pid` (any process if `None`).
    pub fn remove(&self, mount_dir: &Path, pid: Option<u32>) -> Result<()> {
        let path = self.path_for(&absolute(mount_dir)?);
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
    /// are removed on the way, and a dead strata mount a stale record names is detached. Records of
    /// another [`RECORD_VERSION`] are left alone.
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
                Ok(Some(r)) => {
                    cleanup_dead_mount(&r.dir);
                    let _ = fs::remove_file(&path);
                }
                Ok(None) => {}
                Err(_) => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        live.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(live)
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
            dir: PathBuf::new(),
            image: String::new(),
            manifest: String::new(),
            mode: String::new(),
            pid: 0,
            pid_start: 0,
            uid: 0,
            mounted_at: 0,
            entries: 0,
            store_root: None,
            image_id: None,
        }));
    }
    serde_json::from_value(value).map(Some).map_err(bad)
}
