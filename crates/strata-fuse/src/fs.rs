//! The FUSE file system: [`ImageFs`], fuser's low-level (inode) API over a [`Tree`] and a [`Contents`].

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use strata_image::ImageSource;
use strata_layer::contents::DEFAULT_CACHE_BYTES;
use strata_layer::{ContentOptions, Contents, ImageView, IndexOptions, ViewOptions};
use strata_oci::Platform;

use crate::error::{Error, Result};
use crate::tree::{Kind, Node, ROOT_INO, Tree};

/// How long the kernel may cache entries and attributes: the image never changes under the mount.
pub const TTL: Duration = Duration::from_secs(1 << 32);

/// Block size reported by `stat` and `statfs`.
const BLOCK: u32 = 4096;

/// What a mounted image is, for mount records and reports.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The image manifest's digest.
    pub manifest: String,
    /// Number of layers.
    pub layers: usize,
    /// Number of visible paths (the root excluded).
    pub entries: usize,
    /// Number of inodes (hardlinks share one).
    pub inodes: usize,
    /// Total size of the regular files.
    pub bytes: u64,
}

/// A read-only FUSE file system over one image.
///
/// Everything is immutable, so the kernel may cache everything for as long as it likes: entries, negative
/// entries and attributes get [`TTL`]; opens and opendirs are answered with `ENOSYS` when the kernel
/// supports zero-message opens (it then keeps file pages and directory listings cached and sends neither
/// OPEN nor RELEASE), and with `KEEP_CACHE` / `CACHE_DIR` otherwise; READDIRPLUS, parallel directory
/// operations and symlink caching are requested at INIT. Requests are served by several threads without
/// locks (the tree is read-only; the contents' cache locks briefly) and reads reuse one buffer per thread.
pub struct ImageFs {
    tree: Tree,
    contents: Arc<dyn Contents>,
    summary: Summary,
    /// The kernel answers OPEN / OPENDIR itself (it advertised zero-message opens).
    no_open: bool,
    no_opendir: bool,
}

impl std::fmt::Debug for ImageFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFs")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// Options of [`ImageFs::open`].
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// Budget of the decompressed-span cache, in bytes.
    pub cache_bytes: usize,
    /// Where layer indexes are looked for before a layer is read whole: a directory of indexes built
    /// earlier (as `strata index -o DIR` writes them), finders (lazy formats, published indexes, a cache).
    pub indexes: IndexOptions,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            indexes: IndexOptions::default(),
        }
    }
}

/// The attributes sent with a negative entry when the root's cannot be had (never, in practice).
const NEGATIVE: FileAttr = FileAttr {
    ino: INodeNo(0),
    size: 0,
    blocks: 0,
    atime: UNIX_EPOCH,
    mtime: UNIX_EPOCH,
    ctime: UNIX_EPOCH,
    crtime: UNIX_EPOCH,
    kind: FileType::Directory,
    perm: 0o755,
    nlink: 2,
    uid: 0,
    gid: 0,
    rdev: 0,
    blksize: BLOCK,
    flags: 0,
};

thread_local! {
    /// Each worker thread's read buffer.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl ImageFs {
    /// The file system of `tree`, with file bytes from `contents`.
    pub fn new(tree: Tree, contents: Arc<dyn Contents>, summary: Summary) -> ImageFs {
        ImageFs {
            tree,
            contents,
            summary,
            no_open: false,
            no_opendir: false,
        }
    }

    /// Opens the image `source` designates for `platform`: obtains its layers' indexes (see
    /// [`ImageView::open_with`]: kept indexes first, the other layers read, verified and indexed), builds the
    /// inode table, and serves file bytes from the compressed blobs (or a store's layer directories).
    pub fn open(
        source: Arc<dyn ImageSource>,
        platform: &Platform,
        options: &FsOptions,
    ) -> Result<ImageFs> {
        let view = ImageView::open_with(
            source,
            platform,
            &ViewOptions {
                indexes: options.indexes.clone(),
                // The kernel keeps the pages it read.
                contents: ContentOptions::mount(options.cache_bytes),
            },
        )?;
        ImageFs::from_view(&view)
    }

    /// The file system of an image already opened as `view`, reading file bytes through the view's own
    /// contents provider.
    pub fn from_view(view: &ImageView) -> Result<ImageFs> {
        let tree = Tree::build(view.merged())?;
        let summary = Summary {
            manifest: view.image().instance.digest.to_string(),
            layers: view.merged().layers().len(),
            entries: tree.entries(),
            inodes: tree.inodes(),
            bytes: tree.total_bytes(),
        };
        Ok(ImageFs::new(tree, Arc::clone(view.contents()), summary))
    }

    /// What is mounted.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The inode table.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The attributes of inode `ino`.
    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let kind = match node.kind {
            Kind::File => FileType::RegularFile,
            Kind::Dir => FileType::Directory,
            Kind::Symlink => FileType::Symlink,
            Kind::CharDevice => FileType::CharDevice,
            Kind::BlockDevice => FileType::BlockDevice,
            Kind::Fifo => FileType::NamedPipe,
        };
        let mtime = time(node.mtime, node.mtime_nsec);
        FileAttr {
            ino: INodeNo(ino),
            size: node.size,
            blocks: node.size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm: node.perm,
            nlink: node.nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: node.rdev,
            blksize: BLOCK,
            flags: 0,
        }
    }

    pub(crate) fn attr_of(&self, ino: u64) -> Option<FileAttr> {
        self.tree.node(ino).map(|n| self.attr(ino, n))
    }

    /// The directory `ino`'s listing as readdir sees it: `.`, `..`, then the entries; position `i`'s
    /// (inode, name).
    pub(crate) fn dir_entry(&self, ino: u64, i: usize) -> Option<(u64, &[u8])> {
        match i {
            0 => Some((ino, b".")),
            1 => {
                let parent = self
                    .tree
                    .node(ino)
                    .map_or(ROOT_INO, |n| u64::from(n.parent));
                Some((parent, b".."))
            }
            _ => {
                let d = self.tree.children(ino)?.get(i - 2)?;
                Some((u64::from(d.ino), self.tree.bytes(d.name)))
            }
        }
    }

    pub(crate) fn file_type(&self, ino: u64) -> FileType {
        match self.tree.node(ino).map(|n| n.kind) {
            Some(Kind::Dir) => FileType::Directory,
            Some(Kind::Symlink) => FileType::Symlink,
            Some(Kind::CharDevice) => FileType::CharDevice,
            Some(Kind::BlockDevice) => FileType::BlockDevice,
            Some(Kind::Fifo) => FileType::NamedPipe,
            _ => FileType::RegularFile,
        }
    }

    /// Checks that `ino` is a directory.
    pub(crate) fn dir(&self, ino: u64) -> std::result::Result<(), Errno> {
        match self.tree.node(ino) {
            None => Err(Errno::ENOENT),
            Some(n) if n.kind != Kind::Dir => Err(Errno::ENOTDIR),
            Some(_) => Ok(()),
        }
    }
}

/// Answers a `size`-limited xattr request with `data` (the size alone when `size` is 0).
fn reply_xattr(reply: ReplyXattr, size: u32, data: &[u8]) {
    let Ok(len) = u32::try_from(data.len()) else {
        reply.error(Errno::E2BIG);
        return;
    };
    if size == 0 {
        reply.size(len);
    } else if len > size {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

impl fuser::Filesystem for ImageFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let caps = config.capabilities();
        // READDIRPLUS always, not READDIRPLUS_AUTO: with AUTO the kernel asks for attributes only in the
        // first chunk of a directory, and whatever stats the rest (ls -l, du, scanners) then costs one
        // LOOKUP per entry (measured: du over 41k entries 2-3x slower, find 1.5x faster).
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_MAX_PAGES;
        // Ask for what the kernel has; an old kernel simply gets less.
        let _ = config.add_capabilities(wanted & caps);
        self.no_open = caps.contains(InitFlags::FUSE_NO_OPEN_SUPPORT);
        self.no_opendir = caps.contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        // More read-ahead in flight at once than the default 16.
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if let Err(e) = self.dir(parent.0) {
            reply.error(e);
            return;
        }
        match self
            .tree
            .lookup(parent.0, name.as_bytes())
            .and_then(|ino| self.attr_of(ino))
        {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => {
                // A negative entry (inode 0): the kernel caches the absence for TTL too.
                let mut attr = self.attr_of(ROOT_INO).unwrap_or(NEGATIVE);
                attr.ino = INodeNo(0);
                reply.entry(&TTL, &attr, Generation(0));
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.tree.link(ino.0) {
            Some(target) => reply.data(target),
            None if self.tree.node(ino.0).is_some() => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.tree.node(ino.0).map(|n| n.kind) {
            None => reply.error(Errno::ENOENT),
            Some(Kind::Dir) => reply.error(Errno::EISDIR),
            // The kernel then opens every file itself, with KEEP_CACHE, and sends no RELEASE.
            Some(_) if self.no_open => reply.error(Errno::ENOSYS),
            Some(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.tree.file(ino.0) else {
            reply.error(match self.tree.node(ino.0).map(|n| n.kind) {
                None => Errno::ENOENT,
                Some(Kind::Dir) => Errno::EISDIR,
                Some(_) => Errno::EINVAL,
            });
            return;
        };
        let want = usize::try_from(file.size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(size as usize);
        if want == 0 {
            reply.data(&[]);
            return;
        }
        READ_BUF.with(|buf| {
            let Ok(mut buf) = buf.try_borrow_mut() else {
                reply.error(Errno::EIO);
                return;
            };
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match self.contents.read_at(&file, offset, &mut buf[..want]) {
                Ok(n) => reply.data(buf.get(..n).unwrap_or_default()),
                Err(e) => reply.error(Error::from(e).errno()),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if let Err(e) = self.dir(ino.0) {
            reply.error(e);
        } else if self.no_opendir {
            // The kernel then caches every listing (CACHE_DIR) and sends no RELEASEDIR.
            reply.error(Errno::ENOSYS);
        } else {
            reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            );
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if let Err(e) = self.dir(ino.0) {
            reply.error(e);
            return;
        }
        let mut i = usize::try_from(offset).unwrap_or(usize::MAX);
        while let Some((child, name)) = self.dir_entry(ino.0, i) {
            i += 1;
            if reply.add(
                INodeNo(child),
                i as u64,
                self.file_type(child),
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        if let Err(e) = self.dir(ino.0) {
            reply.error(e);
            return;
        }
        let mut i = usize::try_from(offset).unwrap_or(usize::MAX);
        while let Some((child, name)) = self.dir_entry(ino.0, i) {
            i += 1;
            let Some(attr) = self.attr_of(child) else {
                continue;
            };
            if reply.add(
                INodeNo(child),
                i as u64,
                OsStr::from_bytes(name),
                &TTL,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = self.summary.bytes.div_ceil(u64::from(BLOCK));
        reply.statfs(
            blocks,
            0,
            0,
            self.tree.inodes() as u64,
            0,
            BLOCK,
            255,
            BLOCK,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if self.tree.node(ino.0).is_none() {
            reply.error(Errno::ENOENT);
            return;
        }
        // The last one, if an entry sets a name twice.
        match self
            .tree
            .xattrs(ino.0)
            .filter(|(n, _)| *n == name.as_bytes())
            .last()
        {
            Some((_, value)) => reply_xattr(reply, size, value),
            None => reply.error(Errno::NO_XATTR),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if self.tree.node(ino.0).is_none() {
            reply.error(Errno::ENOENT);
            return;
        }
        let mut names: Vec<u8> = Vec::new();
        for (name, _) in self.tree.xattrs(ino.0) {
            let listed = names.split(|&b| b == 0).any(|n| !n.is_empty() && n == name);
            if !listed {
                names.extend_from_slice(name);
                names.push(0);
            }
        }
        reply_xattr(reply, size, &names);
    }
}

/// `secs` seconds and `nsec` nanoseconds after the epoch (a timespec: `secs` may be negative, `nsec` is
/// always added), or the epoch itself if that is out of range.
fn time(secs: i64, nsec: u32) -> SystemTime {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)
    } else {
        UNIX_EPOCH.checked_sub(whole)
    };
    at.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nsec))))
        .unwrap_or(UNIX_EPOCH)
}
