//! The unpacker's filesystem primitives, each confined to a root directory given as an fd.
//!
//! Directories on the way to an entry (its *parent*) are resolved with `openat2(2)` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so a symlink met on the way is followed as if the root were
//! `/`: absolute targets and `..` are clamped to the root and can never lead out of it. The final component is
//! only ever handled by `*at` calls that do not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`,
//! `unlinkat`, `mknodat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! Everything here is a free function over borrowed fds and holds no unpacker state, so the work (regular-file
//! writes in particular) can be handed to a pool of threads later.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec,
    Timestamps, Uid, XattrFlags,
};
use rustix::io::{Errno, Result as SysResult};

/// Flags for a directory used only as the `dirfd` of further calls.
const DIR_PATH: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
/// Flags for a directory that is listed, chmodded or given xattrs; never follows the final component.
pub(crate) const DIR_READ: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// Flags for creating a regular file: never through an existing name, never through a symlink.
pub(crate) const FILE_CREATE: OFlags = OFlags::CREATE
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::WRONLY)
    .union(OFlags::CLOEXEC);
/// Resolution of a path from the root: symlinks followed as if the root were `/`, no `/proc` magic links.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// Resolution of the continuation of an over-long path (see [`resolve_dir`]): nothing may leave the dirfd.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
/// The longest path handed to one `openat2` call (`PATH_MAX` is 4096 with its NUL).
const MAX_RESOLVE: usize = 3800;
/// Symlinks followed while creating missing parents before giving up with `ELOOP` (as the kernel does).
const MAX_SYMLINK_HOPS: u32 = 40;
/// How often `openat2` is retried when it reports `EAGAIN` (a concurrent rename during `..` resolution).
const MAX_AGAIN: u32 = 64;

/// The metadata applied to one node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
}

impl Meta {
    /// The metadata of an existing node.
    // `st_mtime`'s type differs between targets and backends.
    #[allow(clippy::useless_conversion)]
    pub(crate) fn of_stat(st: &Stat) -> Meta {
        Meta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            mtime: i64::from(st.st_mtime),
            mtime_nsec: st.st_mtime_nsec as u32,
        }
    }

    /// Access and modification time both set to the mtime (nanoseconds clamped to a valid value, so that
    /// neither `UTIME_NOW` nor `UTIME_OMIT` can be smuggled in).
    pub(crate) fn timestamps(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: self.mtime_nsec.min(999_999_999).into(),
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// `openat2` with `EAGAIN` retried.
fn openat2_retry(
    dirfd: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    resolve: ResolveFlags,
) -> SysResult<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(dirfd, path, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < MAX_AGAIN => tries += 1,
            r => return r,
        }
    }
}

/// Checks that `openat2(2)` with `RESOLVE_IN_ROOT` works on `root` (Linux ≥ 5.6, and not refused by a
/// seccomp filter).
pub(crate) fn probe_openat2(root: BorrowedFd<'_>) -> SysResult<()> {
    openat2_retry(root, b".", DIR_PATH, IN_ROOT).map(drop)
}

/// Splits a path at a `/` so that the head fits one `openat2` call.
fn split_chunk(p: &[u8]) -> SysResult<(&[u8], &[u8])> {
    if p.len() <= MAX_RESOLVE {
        return Ok((p, &[]));
    }
    match p[..=MAX_RESOLVE].iter().rposition(|&b| b == b'/') {
        Some(i) if i > 0 => Ok((&p[..i], &p[i + 1..])),
        _ => Err(Errno::NAMETOOLONG),
    }
}

/// Resolves the directory `rel` (relative, `/`-separated; empty for the root itself) inside `root`, following
/// symlinks as if `root` were `/`. Returns an `O_PATH` fd of the directory.
///
/// A path too long for one `openat2` call is resolved in pieces: the first with `RESOLVE_IN_ROOT`, the rest
/// with `RESOLVE_BENEATH` from the directory reached so far, so that a symlink deep in such a path that would
/// climb above that point (or is absolute) gives `EXDEV` instead of being clamped. Either way nothing outside
/// `root` is ever reached.
pub(crate) fn resolve_dir(root: BorrowedFd<'_>, rel: &[u8]) -> SysResult<OwnedFd> {
    if rel.is_empty() {
        return rfs::openat(root, c".", DIR_PATH, Mode::empty());
    }
    let (head, mut rest) = split_chunk(rel)?;
    let mut fd = openat2_retry(root, head, DIR_PATH, IN_ROOT)?;
    while !rest.is_empty() {
        let (h, r) = split_chunk(rest)?;
        fd = openat2_retry(fd.as_fd(), h, DIR_PATH, BENEATH)?;
        rest = r;
    }
    Ok(fd)
}

/// Creates directory `name` in `parent` with exactly `mode` (no umask) and returns it opened with
/// [`DIR_READ`].
pub(crate) fn mkdir_exact(parent: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<OwnedFd> {
    rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
    let fd = rfs::openat(parent, name, DIR_READ, Mode::empty())?;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// Like [`resolve_dir`], but creates missing directories (mode 0755, as tar does).
///
/// A dangling symlink on the way is followed as the kernel would, inside the root (an absolute target is taken
/// from the root), and the directories it names are created there — at most [`MAX_SYMLINK_HOPS`] times. A
/// component that exists but is not a directory gives `ENOTDIR`.
pub(crate) fn ensure_dir(root: BorrowedFd<'_>, rel: &[u8]) -> SysResult<OwnedFd> {
    match resolve_dir(root, rel) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    let mut comps: Vec<Vec<u8>> = components(rel).map(<[u8]>::to_vec).collect();
    let mut hops = 0;
    'restart: loop {
        // The deepest prefix that exists (the root always does).
        let mut k = comps.len();
        let mut fd = loop {
            if k == 0 {
                break resolve_dir(root, b"")?;
            }
            match resolve_dir(root, &comps[..k].join(&b'/')) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) => k -= 1,
                Err(e) => return Err(e),
            }
        };
        for i in k..comps.len() {
            let name = &comps[i];
            match mkdir_exact(fd.as_fd(), name, 0o755) {
                Ok(d) => fd = d,
                Err(Errno::EXIST) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::LOOP);
                    }
                    let st = rfs::statat(fd.as_fd(), &name[..], AtFlags::SYMLINK_NOFOLLOW)?;
                    match FileType::from_raw_mode(st.st_mode) {
                        // Appeared meanwhile: resolve again from the root.
                        FileType::Directory => continue 'restart,
                        FileType::Symlink => {
                            let target = rfs::readlinkat(fd.as_fd(), &name[..], Vec::new())?;
                            let target = target.as_bytes();
                            let mut new: Vec<Vec<u8>> = if target.starts_with(b"/") {
                                Vec::new()
                            } else {
                                comps[..i].to_vec()
                            };
                            new.extend(components(target).map(<[u8]>::to_vec));
                            new.extend(comps[i + 1..].iter().cloned());
                            comps = new;
                            continue 'restart;
                        }
                        _ => return Err(Errno::NOTDIR),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        return Ok(fd);
    }
}

/// The non-empty, non-`.` components of a path (`..` is kept; the kernel resolves it inside the root).
fn components(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Opens directory `rel` inside `root` with [`DIR_READ`]: its parent resolved in the root, its own name not
/// followed (a symlink there gives `ELOOP`, a non-directory `ENOTDIR`).
pub(crate) fn open_dir_nofollow(root: BorrowedFd<'_>, rel: &[u8]) -> SysResult<OwnedFd> {
    if rel.is_empty() {
        return rfs::openat(
            root,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
    }
    let (pp, name) = strata_index::split_parent(rel);
    let parent = resolve_dir(root, pp)?;
    rfs::openat(parent, name, DIR_READ, Mode::empty())
}

/// The names in a directory (opened with read access), without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> SysResult<Vec<Vec<u8>>> {
    let fd = rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for ent in Dir::new(fd)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// Removes `name` in `parent`, recursively if it is a directory; never follows a symlink (a symlink is
/// removed, not its target). Missing is fine.
///
/// Iterative, holding two directory fds at a time, so any depth works: it climbs back with `..`, checking that
/// it lands on the directory it came from.
pub(crate) fn remove_all(parent: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    struct Frame {
        /// Subdirectories still to remove.
        pending: Vec<Vec<u8>>,
        /// This directory's name in its parent (none for the top).
        name: Option<Vec<u8>>,
        /// (dev, ino) of this directory.
        id: (u64, u64),
    }
    fn scan(dir: BorrowedFd<'_>, name: Option<Vec<u8>>) -> SysResult<Frame> {
        let st = rfs::fstat(dir)?;
        let mut pending = Vec::new();
        for n in list_dir(dir)? {
            match rfs::unlinkat(dir, &n[..], AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(Errno::ISDIR) => pending.push(n),
                Err(e) => return Err(e),
            }
        }
        Ok(Frame {
            pending,
            name,
            id: (st.st_dev as u64, st.st_ino as u64),
        })
    }
    let mut cur = rfs::openat(parent, name, DIR_READ, Mode::empty())?;
    let mut frames = vec![scan(cur.as_fd(), None)?];
    while let Some(top) = frames.last_mut() {
        if let Some(sub) = top.pending.pop() {
            match rfs::openat(cur.as_fd(), &sub[..], DIR_READ, Mode::empty()) {
                Ok(fd) => {
                    let frame = scan(fd.as_fd(), Some(sub))?;
                    cur = fd;
                    frames.push(frame);
                }
                Err(Errno::NOENT) => {}
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    rfs::unlinkat(cur.as_fd(), &sub[..], AtFlags::empty())?
                }
                Err(e) => return Err(e),
            }
            continue;
        }
        // `cur` is empty now.
        let Some(done) = frames.pop() else { break };
        let (Some(done_name), Some(up_frame)) = (done.name, frames.last()) else {
            break;
        };
        let up = rfs::openat(cur.as_fd(), c"..", DIR_READ, Mode::empty())?;
        let st = rfs::fstat(&up)?;
        if (st.st_dev as u64, st.st_ino as u64) != up_frame.id {
            // Moved under us: refuse to continue rather than remove anything elsewhere.
            return Err(Errno::STALE);
        }
        rfs::unlinkat(up.as_fd(), &done_name[..], AtFlags::REMOVEDIR)?;
        cur = up;
    }
    drop(cur);
    match rfs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A `/proc/self/fd/<parent>/<name>` path, to reach a node that cannot be opened for xattr calls (a symlink,
/// a device, a fifo) with the `l*xattr` calls, which do not follow its last component.
fn proc_path(parent: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    PathBuf::from(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&p)))
}

/// Whether an xattr from a layer is never applied: the SELinux label (the host's policy decides it) and
/// overlayfs's own attributes (`*.overlay.*`: only whiteout/opaque entries may set those).
fn xattr_refused(name: &[u8]) -> bool {
    name == b"security.selinux"
        || name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
}

/// Where xattrs go.
#[derive(Clone, Copy)]
pub(crate) enum XattrTarget<'a> {
    /// An open regular file or directory.
    Fd(BorrowedFd<'a>),
    /// A node reached as `/proc/self/fd/<parent>/<name>`, not following `name`.
    At(BorrowedFd<'a>, &'a [u8]),
}

/// Sets xattrs; returns how many were skipped (refused by [`xattr_refused`], or by the filesystem or
/// the kernel with `EPERM`, `ENOTSUP`, `ERANGE` or `EINVAL`).
pub(crate) fn set_xattrs(target: XattrTarget<'_>, xattrs: &[(Vec<u8>, Vec<u8>)]) -> SysResult<u64> {
    let mut skipped = 0;
    let path = match target {
        XattrTarget::At(parent, name) if !xattrs.is_empty() => Some(proc_path(parent, name)),
        _ => None,
    };
    for (name, value) in xattrs {
        if xattr_refused(name) {
            skipped += 1;
            continue;
        }
        let r = match (target, &path) {
            (XattrTarget::Fd(fd), _) => rfs::fsetxattr(fd, &name[..], value, XattrFlags::empty()),
            (XattrTarget::At(..), Some(p)) => {
                rfs::lsetxattr(p, &name[..], value, XattrFlags::empty())
            }
            (XattrTarget::At(..), None) => Ok(()),
        };
        match r {
            Ok(()) => {}
            Err(Errno::PERM | Errno::OPNOTSUPP | Errno::RANGE | Errno::INVAL) => skipped += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(skipped)
}

/// Owner, mode, xattrs and times of an open regular file or directory, in the order that keeps each: chown
/// first (it clears setuid/setgid and file capabilities), then the mode, then xattrs, then the times.
/// `mode = None` leaves the mode alone. Returns the number of skipped xattrs.
pub(crate) fn set_fd_meta(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    mode: Option<u32>,
    chown: bool,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    times: bool,
) -> SysResult<u64> {
    if chown {
        rfs::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )?;
    }
    if let Some(mode) = mode {
        rfs::fchmod(fd, Mode::from_raw_mode(mode))?;
    }
    let skipped = set_xattrs(XattrTarget::Fd(fd), xattrs)?;
    if times {
        rfs::futimens(fd, &meta.timestamps())?;
    }
    Ok(skipped)
}

/// The same for a node that is not opened (a symlink, device, fifo or whiteout), never following `name`.
/// Symlinks have no mode of their own and keep 0777.
pub(crate) fn set_node_meta(
    parent: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    chown: bool,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> SysResult<u64> {
    apply_node_meta(parent, name, meta, chown, xattrs, true)
}

/// Owner and xattrs of `meta` on the node `name`, and its mode and times when `mode_and_times` is set, never
/// following `name`.
fn apply_node_meta(
    parent: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    chown: bool,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    mode_and_times: bool,
) -> SysResult<u64> {
    if chown {
        chown_nofollow(parent, name, meta)?;
    }
    if mode_and_times {
        chmod_nofollow(parent, name, meta.mode)?;
    }
    let skipped = set_xattrs(XattrTarget::At(parent, name), xattrs)?;
    if mode_and_times {
        rfs::utimensat(parent, name, &meta.timestamps(), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(skipped)
}

/// Gives the node `name` in `parent` the owner of `meta`, never following `name`.
fn chown_nofollow(parent: BorrowedFd<'_>, name: &[u8], meta: &Meta) -> SysResult<()> {
    rfs::chownat(
        parent,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

/// A hardlink header's metadata applied to the node `name` it links to, never following `name`: as
/// [`set_node_meta`], except that a symlink only takes the owner and xattrs (containers/storage neither
/// chmods nor sets the times of a hardlinked symlink).
pub(crate) fn set_link_meta(
    parent: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    chown: bool,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> SysResult<u64> {
    let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let symlink = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
    apply_node_meta(parent, name, meta, chown, xattrs, !symlink)
}

/// `fchmodat(AT_SYMLINK_NOFOLLOW)`, which Linux lacks before `fchmodat2`: the node is opened with
/// `O_PATH | O_NOFOLLOW` and changed through its `/proc/self/fd` link (as glibc does). A symlink is left
/// alone; nothing is done when the mode is already right.
fn chmod_nofollow(parent: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<()> {
    let fd = rfs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink || st.st_mode & 0o7777 == mode {
        return Ok(());
    }
    rfs::chmod(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        Mode::from_raw_mode(mode),
    )
}

/// Copies all of `data` into `file` through `buf`; returns the number of bytes.
pub(crate) fn write_data(file: &mut File, data: &mut dyn Read, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let r = match data.read(buf) {
            Ok(0) => return Ok(n),
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        file.write_all(&buf[..r])?;
        n += r as u64;
    }
}

/// Reads all of `data` into `buf` (emptied first), keeping at most `len` bytes; returns the number of bytes
/// `data` held, which is more than `len` if it held more (the rest is read and dropped).
pub(crate) fn read_up_to(data: &mut dyn Read, buf: &mut Vec<u8>, len: usize) -> io::Result<u64> {
    buf.clear();
    buf.resize(len, 0);
    let mut got = 0;
    while got < len {
        match data.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(r) => got += r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    if got < len {
        return Ok(got as u64);
    }
    Ok(got as u64 + io::copy(data, &mut io::sink())?)
}

/// Whether a node is an overlayfs whiteout (a character device 0/0).
pub(crate) fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Reads every xattr of an open file (`name`, `value`), for copying.
pub(crate) fn read_xattrs(fd: BorrowedFd<'_>) -> SysResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut list = vec![0u8; 65536];
    let n = match rfs::flistxattr(fd, &mut list[..]) {
        Ok(n) => n,
        Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 65536];
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        match rfs::fgetxattr(fd, name, &mut value[..]) {
            Ok(len) => out.push((name.to_vec(), value[..len].to_vec())),
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether directory `dir` (open with read access) carries an overlayfs opaque marker in either namespace.
pub(crate) fn is_opaque_dir(dir: BorrowedFd<'_>) -> bool {
    [&b"trusted.overlay.opaque"[..], b"user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut v = [0u8; 4];
            matches!(rfs::fgetxattr(dir, *name, &mut v[..]), Ok(1) if v[0] == b'y')
        })
}
