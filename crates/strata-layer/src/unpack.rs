//! Safe unpacking of layer entries into a directory.
//!
//! An [`Unpacker`] writes [`Entry`] values (as the tar reader produces them, whiteouts already decoded) into a
//! target directory, in one of two forms ([`Mode`]):
//!
//! - **Overlay**: exactly one layer, as containers/storage writes it into `overlay/<id>/diff` — whiteouts become
//!   character devices 0/0, opaque markers become the `overlay.opaque=y` xattr on the directory.
//! - **Squash**: any number of layers applied in order into one tree, as `umoci unpack` writes `rootfs/` —
//!   whiteouts and opaque markers delete what lower layers put there.
//!
//! # Safety against hostile layers
//!
//! Nothing is ever created, linked, changed or removed outside the target, whatever the entries say. The
//! target is opened once; every entry's parent directory is resolved from that fd with `openat2(2)` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so a symlink planted by a layer (`a -> /`, `a -> ../../x`) is
//! followed as if the target were `/` and cannot lead out of it. The entry's own name is then only handled by
//! calls that never follow it: `O_CREAT | O_EXCL | O_NOFOLLOW` for files, `mkdirat`, `symlinkat`, `mknodat`,
//! `linkat` without `AT_SYMLINK_FOLLOW`, `unlinkat`, `AT_SYMLINK_NOFOLLOW` for owners and times. An existing
//! node in the way is removed (never written through) before the new one is created. **Linux ≥ 5.6 is
//! required** (for `openat2`); [`Unpacker::new`] fails with a clear error without it.

mod fsops;
mod writer;
pub(crate) use fsops::resolve_dir as resolve_in;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode as RMode, OFlags};
use rustix::io::Errno;
use strata_index::{Entry, EntryKind, split_parent};

use crate::error::{Error, Result};
use fsops::Meta;
use writer::{FileJob, Writers};

/// The size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 1 << 20;
/// File contents in flight to the writer threads at most, in bytes.
const WRITE_BUDGET: usize = 32 << 20;
/// Files larger than this are written by the unpacker's own thread, streamed, rather than held in memory for
/// a writer thread.
const WRITE_INLINE_ABOVE: u64 = 8 << 20;

/// The form the unpacked tree takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One layer as an overlayfs upper/lower directory (a containers/storage `diff` dir): whiteouts are written
    /// as character devices 0/0 and opaque directories get the `overlay.opaque=y` xattr.
    Overlay,
    /// Layers applied in order into one root filesystem (what `umoci unpack` writes into `rootfs/`):
    /// whiteouts and opaque markers remove what lower layers wrote.
    Squash,
}

/// Which xattr namespace marks an opaque directory in [`Mode::Overlay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaqueXattr {
    /// `trusted.overlay.opaque` (overlayfs mounted by real root; needs `CAP_SYS_ADMIN` to set).
    Trusted,
    /// `user.overlay.opaque` (overlayfs mounted with `userxattr`, in a user namespace).
    User,
}

impl OpaqueXattr {
    /// The xattr's full name.
    pub fn name(self) -> &'static str {
        match self {
            OpaqueXattr::Trusted => "trusted.overlay.opaque",
            OpaqueXattr::User => "user.overlay.opaque",
        }
    }
}

/// How an [`Unpacker`] writes.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Overlay diff or squashed root filesystem.
    pub mode: Mode,
    /// Set each node's owner from the entry. Default: when running as root (euid 0).
    pub chown: bool,
    /// The opaque-marker xattr namespace in [`Mode::Overlay`]. Default: [`OpaqueXattr::Trusted`] when running
    /// as root, [`OpaqueXattr::User`] otherwise.
    pub xattr_namespace_for_opaque: OpaqueXattr,
    /// Create block and character devices. Default: when running as root. When false they are skipped (any
    /// existing node at their path is still removed) and counted in [`UnpackReport::skipped_devices`], as
    /// `umoci --rootless` does. Fifos and overlay whiteouts are always created.
    pub devices: bool,
    /// [`Mode::Overlay`] only: the `diff` directories of the layers below, nearest first. A hardlink whose
    /// target is not in this layer is then satisfied by copying the target (content and metadata) from the
    /// first lower that has it, looked up as overlayfs would (a whiteout or an opaque directory in a nearer
    /// lower hides deeper ones), and resolved safely inside that lower directory. Further hardlinks to the same
    /// target in this layer are linked to that copy. Empty (the default): such a hardlink is an error.
    pub lowers: Vec<PathBuf>,
    /// Threads that write regular files' contents and metadata while the unpacker goes on with the next
    /// entries (files are still created in tar order by the unpacker; see [`Unpacker`]). 0: the unpacker
    /// writes every file itself. Default: the CPUs left beyond the two a layer's pipeline keeps busy
    /// (inflating, and parsing and applying), at most 8 — so none on a machine with two CPUs, where both are
    /// already busy and handing files over costs more than it saves (5 % slower, measured on 2 cores).
    pub writer_threads: usize,
    /// Set (by a signal handler, say) to stop the unpack: the next entry fails with "interrupted", so the
    /// caller can remove what was written. `None`: never stopped.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl UnpackOptions {
    /// Options for `mode`, with the defaults for the running user (see each field).
    pub fn new(mode: Mode) -> UnpackOptions {
        let root = rustix::process::geteuid().is_root();
        UnpackOptions {
            mode,
            chown: root,
            xattr_namespace_for_opaque: if root {
                OpaqueXattr::Trusted
            } else {
                OpaqueXattr::User
            },
            devices: root,
            lowers: Vec::new(),
            writer_threads: std::thread::available_parallelism()
                .map_or(0, |n| n.get().saturating_sub(2).min(8)),
            cancel: None,
        }
    }
}

/// What an unpack did and left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Block and character devices not created (see [`UnpackOptions::devices`]).
    pub skipped_devices: u64,
    /// Xattrs not applied: `security.selinux` and `*.overlay.*` from the layer (never applied), and any the
    /// filesystem or kernel refused with `EPERM`, `ENOTSUP`, `ERANGE` or `EINVAL`.
    pub skipped_xattrs: u64,
    /// Entries applied.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Directory metadata applied at [`Unpacker::finish`].
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: i64,
    mtime_nsec: u32,
}

/// Writes layer entries into a target directory, safely (see the [module docs](self)).
///
/// Call [`apply`](Unpacker::apply) for each entry in tar order, [`begin_layer`](Unpacker::begin_layer) before
/// each layer in [`Mode::Squash`], and [`finish`](Unpacker::finish) at the end: directory modes and times are
/// only applied there (creating children changes a directory's mtime, and a read-only directory must stay
/// writable while it fills). An unpack abandoned on error leaves a partial tree inside the target, nothing
/// outside it.
///
/// Regular files are created by `apply`, in order, and their contents and metadata are written by a few
/// writer threads ([`UnpackOptions::writer_threads`]) that only ever use the descriptor `apply` opened: the
/// tree's names are always those of a serial unpack, and only files' contents and metadata may lag behind
/// until `finish` (which waits for them, as does dropping the unpacker). A write that fails is reported by a
/// later `apply` or by `finish`.
pub struct Unpacker {
    root: OwnedFd,
    target: PathBuf,
    opts: UnpackOptions,
    lowers: Vec<OwnedFd>,
    /// Directory entries' modes and times, applied at finish; keyed by path.
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    /// Squash: the paths written by the current layer, with all their ancestors.
    written: HashSet<Vec<u8>>,
    /// Overlay: hardlink target (a lower's path) → the path in this layer it was copied to.
    lower_copies: HashMap<Vec<u8>, Vec<u8>>,
    report: UnpackReport,
    buf: Vec<u8>,
    writers: Writers,
}

impl std::fmt::Debug for Unpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacker")
            .field("target", &self.target)
            .field("opts", &self.opts)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Unpacker {
    /// Opens `target` (an existing directory; opened once, as a directory fd, and everything is resolved from
    /// it) and the [`lowers`](UnpackOptions::lowers). Fails if `openat2(2)` is not available (Linux ≥ 5.6 is
    /// required) or refused (a seccomp filter).
    pub fn new(target: &Path, opts: UnpackOptions) -> Result<Self> {
        let open = |p: &Path| {
            rfs::open(
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                RMode::empty(),
            )
            .map_err(|e| Error::Io {
                path: p.to_path_buf(),
                source: e.into(),
            })
        };
        let root = open(target)?;
        match fsops::probe_openat2(root.as_fd()) {
            Ok(()) => {}
            Err(Errno::NOSYS | Errno::PERM) => {
                return Err(Error::Unpack {
                    path: target.to_path_buf(),
                    reason: "openat2(2) with RESOLVE_IN_ROOT is not available; safe unpacking needs Linux 5.6 or \
                             later (and no seccomp filter refusing openat2)"
                        .into(),
                });
            }
            Err(e) => {
                return Err(Error::Io {
                    path: target.to_path_buf(),
                    source: e.into(),
                });
            }
        }
        let lowers = match opts.mode {
            Mode::Overlay => opts
                .lowers
                .iter()
                .map(|p| open(p))
                .collect::<Result<Vec<_>>>()?,
            Mode::Squash => Vec::new(),
        };
        Ok(Unpacker {
            root,
            target: target.to_path_buf(),
            lowers,
            dirs: BTreeMap::new(),
            written: HashSet::new(),
            lower_copies: HashMap::new(),
            report: UnpackReport::default(),
            buf: vec![0; COPY_BUFFER],
            writers: Writers::new(opts.writer_threads, WRITE_BUDGET, opts.chown),
            opts,
        })
    }

    /// Marks the start of a new layer. In [`Mode::Squash`] an opaque marker only spares what the current layer
    /// wrote, so call this before each layer's first entry (before the first layer it is optional). In
    /// [`Mode::Overlay`] an unpacker holds one layer and this does nothing.
    pub fn begin_layer(&mut self) -> Result<()> {
        self.written.clear();
        Ok(())
    }

    /// Applies one entry. `data` is the content of a [`EntryKind::File`] (exactly `entry.size` bytes, read to
    /// its end) and is not read for other kinds.
    ///
    /// A new entry replaces whatever is at its path, except that a directory over a directory keeps the
    /// contents and takes the new metadata. Missing parent directories are created with mode 0755. Hardlinks
    /// share the inode of their target; in [`Mode::Squash`] they leave its metadata alone (as `umoci unpack`),
    /// in [`Mode::Overlay`] the hardlink's owner, mode, times and xattrs are applied to it (as
    /// containers/storage does).
    ///
    /// A regular file's content and metadata may be written by a writer thread after this returns (see
    /// [`Unpacker`]); a failure to write it is returned by a later call or by [`finish`](Unpacker::finish).
    pub fn apply(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<()> {
        if let Some(cancel) = &self.opts.cancel
            && cancel.load(Ordering::Relaxed)
        {
            return Err(Error::Unpack {
                path: self.target.clone(),
                reason: "interrupted".into(),
            });
        }
        if entry.path.is_empty() && entry.kind == EntryKind::Dir {
            self.apply_root(entry)?;
            self.report.entries += 1;
            return Ok(());
        }
        self.check_path(&entry.path)?;
        match entry.kind {
            EntryKind::File => self.apply_file(entry, data)?,
            EntryKind::Dir => self.apply_dir(entry)?,
            EntryKind::Symlink => self.apply_symlink(entry)?,
            EntryKind::Hardlink => self.apply_hardlink(entry)?,
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                self.apply_node(entry)?
            }
            EntryKind::Whiteout => match self.opts.mode {
                Mode::Overlay => self.overlay_whiteout(entry)?,
                Mode::Squash => self.squash_whiteout(entry)?,
            },
            EntryKind::Opaque => self.apply_opaque(entry)?,
        }
        if self.opts.mode == Mode::Squash && !matches!(entry.kind, EntryKind::Whiteout) {
            self.mark_written(&entry.path);
        }
        self.report.entries += 1;
        Ok(())
    }

    /// Applies the deferred directory modes and times, deepest first, and returns the report. Directories
    /// removed or replaced since their entry are skipped.
    pub fn finish(mut self) -> Result<UnpackReport> {
        self.wait_writers()?;
        self.report.skipped_xattrs += self.writers.skipped_xattrs();
        let mut dirs: Vec<(&Vec<u8>, &DirMeta)> = self.dirs.iter().collect();
        // Deepest first, the root (`./`) last: a mode it takes may keep the others from being reached.
        dirs.sort_by_key(|(p, _)| {
            (
                p.is_empty(),
                std::cmp::Reverse(p.iter().filter(|&&b| b == b'/').count()),
            )
        });
        for (path, m) in dirs {
            let fd = match fsops::open_dir_nofollow(self.root.as_fd(), path) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(self.err(path, e)),
            };
            let meta = Meta {
                uid: 0,
                gid: 0,
                mode: m.mode,
                mtime: m.mtime,
                mtime_nsec: m.mtime_nsec,
            };
            fsops::set_fd_meta(fd.as_fd(), &meta, Some(m.mode & 0o7777), false, &[], true)
                .map_err(|e| self.err(path, e))?;
        }
        Ok(self.report)
    }

    // ---- entries ----

    fn apply_file(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        let (parent, name) = self.parent_of(&e.path, true)?;
        let fd = self.create_replacing(parent.as_fd(), name, &e.path, |p| {
            rfs::openat(p, name, fsops::FILE_CREATE, RMode::from_raw_mode(0o600))
        })?;
        let mut file = File::from(fd);
        if self.opts.writer_threads > 0 && e.size <= WRITE_INLINE_ABOVE {
            return self.submit_file(e, file, data);
        }
        let n = fsops::write_data(&mut file, data, &mut self.buf).map_err(|source| Error::Io {
            path: self.full_path(&e.path),
            source,
        })?;
        self.check_size(e, n)?;
        let meta = meta_of(e);
        let skipped = fsops::set_fd_meta(
            file.as_fd(),
            &meta,
            Some(meta.mode),
            self.opts.chown,
            &e.xattrs,
            true,
        )
        .map_err(|x| self.err(&e.path, x))?;
        self.report.skipped_xattrs += skipped;
        self.report.bytes += n;
        Ok(())
    }

    /// Reads the content of file entry `e` and hands it, with the new `file`, to the writer threads.
    fn submit_file(&mut self, e: &Entry, file: File, data: &mut dyn Read) -> Result<()> {
        // `e.size` is at most WRITE_INLINE_ABOVE here.
        let len = e.size as usize;
        let mut buf = self.writers.buffer(len);
        let n = fsops::read_up_to(data, &mut buf, len).map_err(|source| Error::Io {
            path: self.full_path(&e.path),
            source,
        })?;
        self.check_size(e, n)?;
        let job = FileJob {
            file,
            data: buf,
            meta: meta_of(e),
            xattrs: e.xattrs.clone(),
            path: e.path.clone(),
        };
        self.writers
            .submit(job)
            .map_err(|(path, source)| Error::Io {
                path: self.full_path(&path),
                source,
            })?;
        self.report.bytes += n;
        Ok(())
    }

    /// Waits until the writer threads have written every file handed to them.
    fn wait_writers(&self) -> Result<()> {
        self.writers.wait().map_err(|(path, source)| Error::Io {
            path: self.full_path(&path),
            source,
        })
    }

    fn apply_dir(&mut self, e: &Entry) -> Result<()> {
        let (parent, name) = self.parent_of(&e.path, true)?;
        let fd = self.make_dir(parent.as_fd(), name, &e.path)?;
        self.dir_meta(fd.as_fd(), e, e.path.clone())
    }

    /// The layer's root directory (`./`): its owner and xattrs now, its mode and times at finish, applied to
    /// the target itself (as `umoci unpack` applies them to `rootfs/`, and containers/storage to a layer's
    /// `diff/`).
    fn apply_root(&mut self, e: &Entry) -> Result<()> {
        let fd = fsops::open_dir_nofollow(self.root.as_fd(), b"").map_err(|x| self.err(b"", x))?;
        self.dir_meta(fd.as_fd(), e, Vec::new())
    }

    /// A directory's owner and xattrs from `e` now, through `fd`; its mode and times are kept for `finish`
    /// as those of `key` (its path; empty for the root). Until then the owner may always enter and write.
    fn dir_meta(&mut self, fd: BorrowedFd<'_>, e: &Entry, key: Vec<u8>) -> Result<()> {
        let meta = meta_of(e);
        let skipped = fsops::set_fd_meta(
            fd,
            &meta,
            Some((meta.mode & 0o777) | 0o700),
            self.opts.chown,
            &e.xattrs,
            false,
        )
        .map_err(|x| self.err(&e.path, x))?;
        self.report.skipped_xattrs += skipped;
        self.dirs.insert(
            key,
            DirMeta {
                mode: meta.mode,
                mtime: meta.mtime,
                mtime_nsec: meta.mtime_nsec,
            },
        );
        Ok(())
    }

    fn apply_symlink(&mut self, e: &Entry) -> Result<()> {
        let (parent, name) = self.parent_of(&e.path, true)?;
        let link = &e.link[..];
        self.create_replacing(parent.as_fd(), name, &e.path, |p| {
            rfs::symlinkat(link, p, name)
        })?;
        self.node_meta(parent.as_fd(), name, e)
    }

    fn apply_node(&mut self, e: &Entry) -> Result<()> {
        let (parent, name) = self.parent_of(&e.path, true)?;
        let (ft, dev) = match e.kind {
            EntryKind::CharDevice => (
                FileType::CharacterDevice,
                rfs::makedev(e.dev_major, e.dev_minor),
            ),
            EntryKind::BlockDevice => (
                FileType::BlockDevice,
                rfs::makedev(e.dev_major, e.dev_minor),
            ),
            _ => (FileType::Fifo, 0),
        };
        if ft != FileType::Fifo && !self.opts.devices {
            self.clear(parent.as_fd(), name, &e.path)?;
            self.report.skipped_devices += 1;
            return Ok(());
        }
        let mode = RMode::from_raw_mode(e.mode & 0o777);
        self.create_replacing(parent.as_fd(), name, &e.path, |p| {
            rfs::mknodat(p, name, ft, mode, dev)
        })?;
        self.node_meta(parent.as_fd(), name, e)
    }

    fn apply_hardlink(&mut self, e: &Entry) -> Result<()> {
        self.check_path(&e.link)?;
        let root = self.root.as_fd();
        let (lpp, lname) = split_parent(&e.link);
        let found = match fsops::resolve_dir(root, lpp) {
            Ok(lparent) => match rfs::statat(&lparent, lname, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Some((lparent, st)),
                Err(Errno::NOENT) => None,
                Err(x) => return Err(self.err(&e.link, x)),
            },
            Err(Errno::NOENT | Errno::NOTDIR) => None,
            Err(x) => return Err(self.err(&e.link, x)),
        };
        let Some((lparent, st)) = found else {
            return self.hardlink_missing(e);
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(self.unpack_err(
                &e.path,
                format!("hardlink to {}, which is a directory", lossy(&e.link)),
            ));
        }
        if self.opts.mode == Mode::Overlay && fsops::is_whiteout(&st) {
            return Err(self.unpack_err(
                &e.path,
                format!(
                    "hardlink to {}, which this layer deletes (a whiteout)",
                    lossy(&e.link)
                ),
            ));
        }
        let (parent, name) = self.parent_of(&e.path, true)?;
        let linked = matches!(
            rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW),
            Ok(cur) if cur.st_dev == st.st_dev && cur.st_ino == st.st_ino
        );
        if !linked {
            let lp = lparent.as_fd();
            self.create_replacing(parent.as_fd(), name, &e.path, |p| {
                rfs::linkat(lp, lname, p, name, AtFlags::empty())
            })?;
        }
        self.hardlink_meta(parent.as_fd(), name, e)
    }

    /// [`Mode::Overlay`]: applies the hardlink header's owner, mode, times and xattrs to the inode it now
    /// shares, as containers/storage does (its `pkg/archive` chowns, chmods, sets the times of and sets the
    /// xattrs on the new name; mode and times not when the target is a symlink). [`Mode::Squash`] keeps the
    /// target's metadata, as `umoci unpack` does (it applies no metadata for hardlinks).
    fn hardlink_meta(&mut self, parent: BorrowedFd<'_>, name: &[u8], e: &Entry) -> Result<()> {
        if self.opts.mode != Mode::Overlay {
            return Ok(());
        }
        // The inode may be a file the writer threads are still filling: its metadata must come after theirs.
        self.wait_writers()?;
        let skipped = fsops::set_link_meta(parent, name, &meta_of(e), self.opts.chown, &e.xattrs)
            .map_err(|x| self.err(&e.path, x))?;
        self.report.skipped_xattrs += skipped;
        Ok(())
    }

    /// A hardlink whose target is not in the target directory: an error, or in overlay mode a copy from a
    /// lower diff.
    fn hardlink_missing(&mut self, e: &Entry) -> Result<()> {
        let missing = |this: &Self| {
            this.unpack_err(
                &e.path,
                match this.opts.mode {
                    Mode::Squash => format!("hardlink target {} does not exist", lossy(&e.link)),
                    Mode::Overlay if this.lowers.is_empty() => format!(
                        "hardlink target {} is not in this layer (and no lower layers were given)",
                        lossy(&e.link)
                    ),
                    Mode::Overlay => {
                        format!(
                            "hardlink target {} is neither in this layer nor in a lower one",
                            lossy(&e.link)
                        )
                    }
                },
            )
        };
        if self.opts.mode == Mode::Squash || self.lowers.is_empty() {
            return Err(missing(self));
        }
        // A second link to the same lower file: link to the first copy.
        if let Some(copy) = self.lower_copies.get(&e.link).cloned() {
            let (cpp, cname) = split_parent(&copy);
            if let Ok(cparent) = fsops::resolve_dir(self.root.as_fd(), cpp)
                && rfs::statat(&cparent, cname, AtFlags::SYMLINK_NOFOLLOW).is_ok()
            {
                let (parent, name) = self.parent_of(&e.path, true)?;
                let cp = cparent.as_fd();
                self.create_replacing(parent.as_fd(), name, &e.path, |p| {
                    rfs::linkat(cp, cname, p, name, AtFlags::empty())
                })?;
                return self.hardlink_meta(parent.as_fd(), name, e);
            }
        }
        let Some((li, lparent, st)) = self.find_in_lowers(&e.link)? else {
            return Err(missing(self));
        };
        self.copy_from_lower(e, li, lparent.as_fd(), &st)?;
        self.lower_copies.insert(e.link.clone(), e.path.clone());
        let (parent, name) = self.parent_of(&e.path, false)?;
        self.hardlink_meta(parent.as_fd(), name, e)
    }

    /// Looks `path` up in the lowers as overlayfs would: the first lower that has it wins; a whiteout there, or
    /// an ancestor in a nearer lower that is a whiteout, a non-directory or an opaque directory, hides it.
    fn find_in_lowers(&self, path: &[u8]) -> Result<Option<(usize, OwnedFd, rfs::Stat)>> {
        let (pp, name) = split_parent(path);
        for (i, lower) in self.lowers.iter().enumerate() {
            let lower = lower.as_fd();
            let lerr = |x: Errno| Error::Io {
                path: self.opts.lowers[i].join(OsStr::from_bytes(path)),
                source: x.into(),
            };
            match fsops::resolve_dir(lower, pp) {
                Ok(parent) => match rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if fsops::is_whiteout(&st) => return Ok(None),
                    Ok(st) => return Ok(Some((i, parent, st))),
                    Err(Errno::NOENT) => {}
                    Err(x) => return Err(lerr(x)),
                },
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                Err(x) => return Err(lerr(x)),
            }
            // Not here: does this lower hide the deeper ones?
            let mut end = 0;
            while end < pp.len() {
                end = pp[end..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(pp.len(), |j| end + j);
                let anc = &pp[..end];
                end += 1;
                let (app, aname) = split_parent(anc);
                let Ok(aparent) = fsops::resolve_dir(lower, app) else {
                    break;
                };
                let Ok(st) = rfs::statat(&aparent, aname, AtFlags::SYMLINK_NOFOLLOW) else {
                    break;
                };
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => {
                        if let Ok(d) = rfs::openat(&aparent, aname, fsops::DIR_READ, RMode::empty())
                            && fsops::is_opaque_dir(d.as_fd())
                        {
                            return Ok(None);
                        }
                    }
                    FileType::Symlink => {}
                    _ => return Ok(None),
                }
            }
        }
        Ok(None)
    }

    /// Copies a lower layer's node (the target of hardlink `e`) to `e.path`, with its metadata.
    fn copy_from_lower(
        &mut self,
        e: &Entry,
        li: usize,
        lparent: BorrowedFd<'_>,
        st: &rfs::Stat,
    ) -> Result<()> {
        let (_, lname) = split_parent(&e.link);
        let lerr = |this: &Self, x: Errno| Error::Io {
            path: this.opts.lowers[li].join(OsStr::from_bytes(&e.link)),
            source: x.into(),
        };
        let (parent, name) = self.parent_of(&e.path, true)?;
        let meta = Meta::of_stat(st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let src = rfs::openat(
                    lparent,
                    lname,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    RMode::empty(),
                )
                .map_err(|x| lerr(self, x))?;
                let xattrs = fsops::read_xattrs(src.as_fd()).map_err(|x| lerr(self, x))?;
                let fd = self.create_replacing(parent.as_fd(), name, &e.path, |p| {
                    rfs::openat(p, name, fsops::FILE_CREATE, RMode::from_raw_mode(0o600))
                })?;
                let mut dst = File::from(fd);
                let n =
                    std::io::copy(&mut File::from(src), &mut dst).map_err(|source| Error::Io {
                        path: self.full_path(&e.path),
                        source,
                    })?;
                let skipped = fsops::set_fd_meta(
                    dst.as_fd(),
                    &meta,
                    Some(meta.mode),
                    self.opts.chown,
                    &xattrs,
                    true,
                )
                .map_err(|x| self.err(&e.path, x))?;
                self.report.skipped_xattrs += skipped;
                self.report.bytes += n;
            }
            FileType::Symlink => {
                let target =
                    rfs::readlinkat(lparent, lname, Vec::new()).map_err(|x| lerr(self, x))?;
                self.create_replacing(parent.as_fd(), name, &e.path, |p| {
                    rfs::symlinkat(target.as_c_str(), p, name)
                })?;
                fsops::set_node_meta(parent.as_fd(), name, &meta, self.opts.chown, &[])
                    .map_err(|x| self.err(&e.path, x))?;
            }
            ft @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                if ft != FileType::Fifo && !self.opts.devices {
                    self.clear(parent.as_fd(), name, &e.path)?;
                    self.report.skipped_devices += 1;
                    return Ok(());
                }
                let mode = RMode::from_raw_mode(meta.mode & 0o777);
                let dev = st.st_rdev as rfs::Dev;
                self.create_replacing(parent.as_fd(), name, &e.path, |p| {
                    rfs::mknodat(p, name, ft, mode, dev)
                })?;
                fsops::set_node_meta(parent.as_fd(), name, &meta, self.opts.chown, &[])
                    .map_err(|x| self.err(&e.path, x))?;
            }
            _ => {
                return Err(self.unpack_err(
                    &e.path,
                    format!(
                        "hardlink target {} in a lower layer is not a linkable file",
                        lossy(&e.link)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn overlay_whiteout(&mut self, e: &Entry) -> Result<()> {
        // A whiteout below a path that this layer made a non-directory hides nothing that entry does not
        // hide already (umoci writes a file, then whiteouts for the children of the directory it replaced).
        // containers/storage drops such whiteouts; so does strata, rather than fail the layer.
        if matches!(
            fsops::resolve_dir(self.root.as_fd(), split_parent(&e.path).0),
            Err(Errno::NOTDIR)
        ) {
            return Ok(());
        }
        let (parent, name) = self.parent_of(&e.path, true)?;
        self.create_replacing(parent.as_fd(), name, &e.path, |p| {
            rfs::mknodat(p, name, FileType::CharacterDevice, RMode::empty(), 0)
        })?;
        let meta = Meta {
            mode: 0,
            ..meta_of(e)
        };
        fsops::set_node_meta(parent.as_fd(), name, &meta, self.opts.chown, &[])
            .map_err(|x| self.err(&e.path, x))?;
        Ok(())
    }

    fn squash_whiteout(&mut self, e: &Entry) -> Result<()> {
        let (pp, name) = split_parent(&e.path);
        let parent = match fsops::resolve_dir(self.root.as_fd(), pp) {
            Ok(p) => p,
            // Nothing can be there.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(x) => return Err(self.err(pp, x)),
        };
        self.clear(parent.as_fd(), name, &e.path)?;
        self.written.remove(&e.path);
        Ok(())
    }

    fn apply_opaque(&mut self, e: &Entry) -> Result<()> {
        let (parent, name) = self.parent_of(&e.path, true)?;
        let existing = match rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(x) => return Err(self.err(&e.path, x)),
        };
        let not_dir = |this: &Self| {
            this.unpack_err(
                &e.path,
                "opaque marker on a path this layer made a non-directory".to_string(),
            )
        };
        let dir = match (self.opts.mode, existing) {
            (_, None) => {
                fsops::mkdir_exact(parent.as_fd(), name, 0o755).map_err(|x| self.err(&e.path, x))?
            }
            (_, Some(FileType::Directory)) => {
                rfs::openat(&parent, name, fsops::DIR_READ, RMode::empty())
                    .map_err(|x| self.err(&e.path, x))?
            }
            (Mode::Overlay, Some(_)) => return Err(not_dir(self)),
            (Mode::Squash, Some(_)) => {
                // A lower layer's non-directory: the opaque directory replaces it. One from this layer
                // contradicts the marker.
                if self.written.contains(&e.path) {
                    return Err(not_dir(self));
                }
                self.clear(parent.as_fd(), name, &e.path)?;
                fsops::mkdir_exact(parent.as_fd(), name, 0o755).map_err(|x| self.err(&e.path, x))?
            }
        };
        match self.opts.mode {
            Mode::Overlay => {
                let xname = self.opts.xattr_namespace_for_opaque.name();
                rfs::fsetxattr(&dir, xname, b"y", rfs::XattrFlags::empty())
                    .map_err(|x| self.err(&e.path, x))?;
            }
            Mode::Squash => {
                drop(dir);
                self.clear_lower_children(&e.path)?;
            }
        }
        Ok(())
    }

    /// Squash: removes everything under directory `path` that the current layer did not write.
    fn clear_lower_children(&mut self, path: &[u8]) -> Result<()> {
        let mut pending = vec![path.to_vec()];
        while let Some(dpath) = pending.pop() {
            let dir = match fsops::open_dir_nofollow(self.root.as_fd(), &dpath) {
                Ok(d) => d,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(x) => return Err(self.err(&dpath, x)),
            };
            let names = fsops::list_dir(dir.as_fd()).map_err(|x| self.err(&dpath, x))?;
            for n in names {
                let mut child = dpath.clone();
                child.push(b'/');
                child.extend_from_slice(&n);
                if !self.written.contains(&child) {
                    fsops::remove_all(dir.as_fd(), &n).map_err(|x| self.err(&child, x))?;
                    self.forget_dirs_under(&child);
                } else if let Ok(st) = rfs::statat(&dir, &n[..], AtFlags::SYMLINK_NOFOLLOW)
                    && FileType::from_raw_mode(st.st_mode) == FileType::Directory
                {
                    pending.push(child);
                }
            }
        }
        Ok(())
    }

    // ---- helpers ----

    /// The parent directory of `path` resolved inside the target (created if `create`), and the final name.
    fn parent_of<'p>(&self, path: &'p [u8], create: bool) -> Result<(OwnedFd, &'p [u8])> {
        let (pp, name) = split_parent(path);
        let r = if create {
            fsops::ensure_dir(self.root.as_fd(), pp)
        } else {
            fsops::resolve_dir(self.root.as_fd(), pp)
        };
        match r {
            Ok(fd) => Ok((fd, name)),
            Err(Errno::NOTDIR) => Err(self.unpack_err(
                path,
                format!(
                    "parent directory {} exists and is not a directory",
                    lossy(pp)
                ),
            )),
            Err(Errno::LOOP) => {
                Err(self.unpack_err(path, format!("too many symlinks resolving {}", lossy(pp))))
            }
            Err(Errno::XDEV) => Err(self.unpack_err(
                path,
                "a symlink in this over-long path leads above where it was met".to_string(),
            )),
            Err(x) => Err(self.err(pp, x)),
        }
    }

    /// Runs a creating call `op` on `parent`; if the name exists, removes what is there (recursively for a
    /// directory) and runs it once more.
    fn create_replacing<T>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        op: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> Result<T> {
        match op(parent) {
            Err(Errno::EXIST) => {
                self.clear(parent, name, path)?;
                op(parent).map_err(|x| self.err(path, x))
            }
            r => r.map_err(|x| self.err(path, x)),
        }
    }

    /// Makes `name` a directory: an existing directory is kept, anything else replaced. Returns it opened.
    fn make_dir(&mut self, parent: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<OwnedFd> {
        match rfs::mkdirat(parent, name, RMode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|x| self.err(path, x))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.clear(parent, name, path)?;
                    rfs::mkdirat(parent, name, RMode::from_raw_mode(0o700))
                        .map_err(|x| self.err(path, x))?;
                }
            }
            Err(x) => return Err(self.err(path, x)),
        }
        rfs::openat(parent, name, fsops::DIR_READ, RMode::empty()).map_err(|x| self.err(path, x))
    }

    /// Removes whatever is at `name` in `parent` (recursively, never following a symlink), forgetting the
    /// deferred metadata of directories that were under it.
    fn clear(&mut self, parent: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<()> {
        fsops::remove_all(parent, name).map_err(|x| self.err(path, x))?;
        self.forget_dirs_under(path);
        Ok(())
    }

    fn forget_dirs_under(&mut self, path: &[u8]) {
        self.dirs.remove(path);
        let mut lo = path.to_vec();
        lo.push(b'/');
        let mut hi = path.to_vec();
        hi.push(b'/' + 1);
        let doomed: Vec<Vec<u8>> = self.dirs.range(lo..hi).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            self.dirs.remove(&k);
        }
    }

    fn node_meta(&mut self, parent: BorrowedFd<'_>, name: &[u8], e: &Entry) -> Result<()> {
        let skipped = fsops::set_node_meta(parent, name, &meta_of(e), self.opts.chown, &e.xattrs)
            .map_err(|x| self.err(&e.path, x))?;
        self.report.skipped_xattrs += skipped;
        Ok(())
    }

    fn mark_written(&mut self, path: &[u8]) {
        if !self.written.insert(path.to_vec()) {
            return;
        }
        let mut p = path;
        while let Some(i) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..i];
            if !self.written.insert(p.to_vec()) {
                break;
            }
        }
    }

    /// Refuses a path that is not normalised (see [`Entry::path`]).
    fn check_path(&self, path: &[u8]) -> Result<()> {
        let bad = path.is_empty()
            || path.contains(&0)
            || path
                .split(|&b| b == b'/')
                .any(|c| c.is_empty() || c == b"." || c == b"..");
        if bad {
            return Err(self.unpack_err(path, "not a normalised relative path".to_string()));
        }
        Ok(())
    }

    fn full_path(&self, rel: &[u8]) -> PathBuf {
        self.target.join(OsStr::from_bytes(rel))
    }

    fn err(&self, rel: &[u8], e: Errno) -> Error {
        Error::Io {
            path: self.full_path(rel),
            source: e.into(),
        }
    }

    /// Fails unless `n`, the bytes of file entry `e`'s content, is the size its header gives.
    fn check_size(&self, e: &Entry, n: u64) -> Result<()> {
        if n == e.size {
            return Ok(());
        }
        Err(self.unpack_err(
            &e.path,
            format!("file content is {n} bytes, the entry says {}", e.size),
        ))
    }

    fn unpack_err(&self, rel: &[u8], reason: String) -> Error {
        Error::Unpack {
            path: self.full_path(rel),
            reason,
        }
    }
}

fn meta_of(e: &Entry) -> Meta {
    Meta {
        uid: e.uid,
        gid: e.gid,
        mode: e.mode & 0o7777,
        mtime: e.mtime,
        mtime_nsec: e.mtime_nsec,
    }
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}
