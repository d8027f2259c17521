//! Mounting an [`ImageFs`], serving it, and unmounting: [`mount`], [`Mounted::serve`], [`unmount`], and
//! reading the kernel's mount table ([`mount_type`]).
//!
//! The mount is `ro,nosuid,nodev,noatime`, of type `fuse.strata` with source `strata`, and by default
//! `default_permissions`: the kernel checks every access against the modes and owners the image gives its
//! files, as it does on any other file system (without it a FUSE server that checks nothing lets whoever
//! may enter the mount read everything). `allow_other` lets users other than the mounting one in at all.
//! As root it is made with
//! mount(2); otherwise (or when mount(2) answers `EPERM`) through the setuid `fusermount3`, which hands
//! back the `/dev/fuse` descriptor over a socket, as libfuse does. Unmounting tries umount(2), then a lazy (`MNT_DETACH`) unmount
//! when the mount is busy, and `fusermount3 -u` (then `-u -z`) when umount(2) is not permitted.

use std::ffi::{CString, OsString};
use std::fs;
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fuser::{Config, Filesystem, Session, SessionACL};
use rustix::fs::{Access, Mode, OFlags};
use rustix::io::FdFlags;
use rustix::mount::{MountFlags, UnmountFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType,
};

use crate::error::{Error, Result};
use crate::fs::ImageFs;

/// The file system type a strata mount shows in the mount table (`fuse.` + its subtype).
pub const FS_TYPE: &str = "fuse.strata";

const DEV_FUSE: &str = "/dev/fuse";

/// Options of [`mount`].
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Worker threads serving requests, each with its own `/dev/fuse` descriptor (`clone_fd`).
    pub threads: usize,
    /// Let other users than the mounting one into the mount (`allow_other`; for a non-root user
    /// `fusermount3` allows it only with `user_allow_other` in `/etc/fuse.conf`). Without it nobody else,
    /// root included, may enter it.
    pub allow_other: bool,
    /// Let the kernel check every access against the image's modes and owners (`default_permissions`).
    /// Without it every user who may enter the mount reads every file.
    pub default_permissions: bool,
    /// Mount read-only (`ro`). An Additional Layer Store is mounted read-write so that containers/storage's
    /// `create` of `<layer>/use` and `rmdir` of a layer reach it (the file system itself refuses every
    /// write); everything else read-only.
    pub read_only: bool,
}

impl Default for MountOptions {
    /// As many threads as CPUs, at least 2 and at most 8; the mount is the mounting user's; the kernel
    /// enforces the image's permissions.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        MountOptions {
            threads: cpus.clamp(2, 8),
            allow_other: false,
            default_permissions: true,
            read_only: true,
        }
    }
}

impl MountOptions {
    /// The FUSE options these add to the mount (`allow_other`, `default_permissions`), comma-separated
    /// with a leading comma, or empty.
    fn fuse_options(&self) -> String {
        let mut out = String::new();
        if self.allow_other {
            out.push_str(",allow_other");
        }
        if self.default_permissions {
            out.push_str(",default_permissions");
        }
        out
    }
}

/// A mounted file system (an [`ImageFs`], or the Additional Layer Store's), not yet served:
/// [`Mounted::serve`] answers its requests until it is unmounted. Requests made before then wait. Dropping
/// it unserved unmounts.
#[derive(Debug)]
pub struct Mounted<F: Filesystem = ImageFs> {
    session: Option<Session<F>>,
    dir: PathBuf,
    threads: usize,
}

/// Mounts `fs` at the directory `dir` (read-only unless `options` say otherwise, `nosuid`, `nodev`) and
/// completes the FUSE handshake: when this returns the mount is in the mount table and answers as soon as
/// [`Mounted::serve`] runs.
pub fn mount<F: Filesystem>(fs: F, dir: &Path, options: &MountOptions) -> Result<Mounted<F>> {
    let dir = absolute(dir)?;
    let threads = options.threads.max(1);
    let mut config = Config::default();
    if options.allow_other {
        config.acl = SessionACL::All;
    }
    config.n_threads = Some(threads);
    // Each cloned descriptor is a new open of /dev/fuse, which an unprivileged user may not be allowed.
    config.clone_fd =
        threads > 1 && rustix::fs::access(DEV_FUSE, Access::READ_OK | Access::WRITE_OK).is_ok();
    let fd = match mount_sys(&dir, options)? {
        Some(fd) => fd,
        None => mount_fusermount(&dir, options)?,
    };
    let acl = config.acl;
    let session = match Session::from_fd(fs, fd, acl, config) {
        Ok(s) => s,
        Err(e) => {
            let _ = unmount(&dir);
            return Err(Error::io(&dir, e));
        }
    };
    Ok(Mounted {
        session: Some(session),
        dir,
        threads,
    })
}

/// Mounts a `fuse.strata` file system at `dir` with mount(2) and returns its `/dev/fuse` descriptor;
/// `None` when mount(2) is not permitted (not root, or no `CAP_SYS_ADMIN`).
fn mount_sys(dir: &Path, options: &MountOptions) -> Result<Option<OwnedFd>> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let dev = DEV_FUSE;
    let fd = rustix::fs::open(dev, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(dev, e.into()))?;
    let root_mode = fs::metadata(dir)
        .map_err(|e| Error::io(dir, e))?
        .permissions()
        .mode()
        & 0o170000;
    let mut data = format!(
        "fd={},rootmode={root_mode:o},user_id={},group_id={}",
        fd.as_raw_fd(),
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw()
    );
    data.push_str(&options.fuse_options());
    let data = CString::new(data).map_err(|e| Error::io(dir, io::Error::other(e)))?;
    let mut flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOATIME;
    if options.read_only {
        flags |= MountFlags::RDONLY;
    }
    match rustix::mount::mount("strata", dir, FS_TYPE, flags, data.as_c_str()) {
        Ok(()) => Ok(Some(fd)),
        // Not permitted (no CAP_SYS_ADMIN here): fusermount3 then.
        Err(rustix::io::Errno::PERM) => Ok(None),
        Err(e) => Err(Error::io(dir, e.into())),
    }
}

/// Mounts a `fuse.strata` file system at `dir` through the setuid `fusermount3` (as libfuse does for
/// unprivileged users) and receives its `/dev/fuse` descriptor over a socket (`_FUSE_COMMFD`).
fn mount_fusermount(dir: &Path, mount_options: &MountOptions) -> Result<OwnedFd> {
    let err = |e: io::Error| Error::io(dir, e);
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| err(e.into()))?;
    // fusermount3 inherits its end.
    rustix::io::fcntl_setfd(&theirs, FdFlags::empty()).map_err(|e| err(e.into()))?;
    let options = format!(
        "{},nosuid,nodev,noatime,fsname=strata,subtype=strata{}",
        if mount_options.read_only { "ro" } else { "rw" },
        mount_options.fuse_options()
    );
    let mut last = None;
    for bin in ["fusermount3", "fusermount"] {
        let child = Command::new(bin)
            .arg("-o")
            .arg(&options)
            .arg("--")
            .arg(dir)
            .env("_FUSE_COMMFD", theirs.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        match child {
            Ok(child) => {
                last = Some(child);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
    }
    drop(theirs);
    let Some(child) = last else {
        return Err(Error::Mount {
            path: dir.to_path_buf(),
            reason: "mount(2) is not permitted and there is no fusermount3".into(),
        });
    };
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    // An error or end of stream means fusermount3 failed: its message says why.
    let received = rustix::net::recvmsg(
        &ours,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    );
    let fd = received.ok().and_then(|_| {
        control.drain().find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
    });
    let output = child.wait_with_output().map_err(err)?;
    match fd {
        Some(fd) if output.status.success() => Ok(fd),
        _ => Err(Error::Mount {
            path: dir.to_path_buf(),
            reason: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }),
    }
}

impl<F: Filesystem> Mounted<F> {
    /// The mount point (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Worker threads [`Mounted::serve`] runs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Serves requests until the file system is unmounted ([`unmount`], `umount`, `fusermount3 -u`).
    pub fn serve(mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let result = session.run().map_err(|e| Error::io(&self.dir, e));
        if result.is_err() && is_strata_mount(&self.dir).unwrap_or(false) {
            let _ = unmount(&self.dir);
        }
        result
    }
}

impl<F: Filesystem> Drop for Mounted<F> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            drop(session);
            if is_strata_mount(&self.dir).unwrap_or(false) {
                let _ = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH);
            }
        }
    }
}

/// `dir` made absolute with its parent's symlinks resolved, without touching `dir` itself (which may be a
/// FUSE mount whose server died, where any access fails with `ENOTCONN`).
pub fn absolute(dir: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = fs::canonicalize(parent).map_err(|e| Error::io(parent, e))?;
            Ok(parent.join(name))
        }
        _ => Ok(abs),
    }
}

/// The file system type mounted at `dir` (exactly there, the last mount on top), from
/// `/proc/self/mountinfo`; `None` if `dir` is not a mount point.
pub fn mount_type(dir: &Path) -> Result<Option<String>> {
    let dir = absolute(dir)?;
    let table = "/proc/self/mountinfo";
    let text = fs::read(table).map_err(|e| Error::io(table, e))?;
    let mut found = None;
    for line in text.split(|&b| b == b'\n') {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(point) = fields.get(4) else {
            continue;
        };
        if unescape(point) != dir.as_os_str().as_bytes() {
            continue;
        }
        let fs_type = fields
            .iter()
            .position(|f| *f == b"-")
            .and_then(|i| fields.get(i + 1));
        if let Some(t) = fs_type {
            found = Some(String::from_utf8_lossy(&unescape(t)).into_owned());
        }
    }
    Ok(found)
}

/// Whether `dir` is a strata FUSE mount (live, or left behind by a serving process that died).
pub fn is_strata_mount(dir: &Path) -> Result<bool> {
    Ok(mount_type(dir)?.as_deref() == Some(FS_TYPE))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        if b == b'\\'
            && let Some(oct) = field.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Unmounts the strata FUSE mount at `dir`: umount(2); a lazy unmount if it is busy (open files keep
/// being served until closed; new lookups no longer reach it); `fusermount3 -u` (then `-u -z`) when
/// umount(2) is not permitted. Fails with [`Error::NotMounted`] if `dir` is not a strata mount.
pub fn unmount(dir: &Path) -> Result<()> {
    let dir = absolute(dir)?;
    if !is_strata_mount(&dir)? {
        return Err(Error::NotMounted(dir));
    }
    match rustix::mount::unmount(&dir, UnmountFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            return rustix::mount::unmount(&dir, UnmountFlags::DETACH).map_err(|e| {
                Error::Unmount {
                    path: dir.clone(),
                    reason: io::Error::from(e).to_string(),
                }
            });
        }
        Err(rustix::io::Errno::PERM) => {}
        Err(e) => {
            return Err(Error::Unmount {
                path: dir,
                reason: io::Error::from(e).to_string(),
            });
        }
    }
    let mut last = String::new();
    for args in [&["-u", "-q"][..], &["-u", "-q", "-z"][..]] {
        match fusermount(args, &dir) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(Error::Unmount {
        path: dir,
        reason: last,
    })
}

/// Runs `fusermount3 ARGS -- DIR` (`fusermount` if there is no `fusermount3`); the error is its message.
fn fusermount(args: &[&str], dir: &Path) -> std::result::Result<(), String> {
    let mut last = String::from("fusermount3 not found");
    for bin in ["fusermount3", "fusermount"] {
        let mut arg_list: Vec<OsString> = args.iter().map(OsString::from).collect();
        arg_list.push("--".into());
        arg_list.push(OsString::from_vec(dir.as_os_str().as_bytes().to_vec()));
        let out = Command::new(bin)
            .args(&arg_list)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match out {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => {
                return Err(String::from_utf8_lossy(&o.stderr).trim().to_owned());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => last = format!("{bin}: {e}"),
        }
    }
    Err(last)
}
