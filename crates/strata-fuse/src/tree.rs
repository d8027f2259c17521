//! The inode table: [`Tree`], built once at mount time by walking the merged view.

use std::collections::{HashMap, VecDeque};

use strata_index::{EntryKind, EntryRef, MergedEntry, MergedView};
use strata_layer::FileRef;

use crate::error::{Error, Result};

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT_INO: u64 = 1;

/// How many hardlinks are followed to find the entry holding a file's data (a hostile index could make a
/// cycle).
const MAX_HARDLINK_HOPS: usize = 16;

/// The xattr overlayfs reads to know a lower directory hides the layers below it.
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// Whether `name` is one of overlayfs's own xattrs, which only its markers may set.
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// How [`Tree::push_node`] adds an entry.
#[derive(Debug, Clone, Copy)]
struct Form {
    /// overlayfs's form: whiteouts as devices 0/0, no `*.overlay.*` xattrs of the layer's own.
    overlay: bool,
    /// The directory is opaque (overlay form): it gets `trusted.overlay.opaque` = `y`.
    opaque: bool,
}

impl Form {
    fn plain(overlay: bool) -> Form {
        Form {
            overlay,
            opaque: false,
        }
    }
}

/// A directory's child while building: a visible entry, or (overlay form) a whiteout of the top layer.
#[derive(Clone, Copy)]
enum Child<'a> {
    Visible(MergedEntry<'a>),
    Whiteout(EntryRef<'a>),
}

impl<'a> Child<'a> {
    fn name(&self) -> &'a [u8] {
        match self {
            Child::Visible(c) => c.entry.name(),
            Child::Whiteout(e) => e.name(),
        }
    }
}

/// A byte range of the arena.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    off: u32,
    len: u32,
}

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// Where a node's kind-specific data lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload {
    None,
    /// Index into `Tree::dirs`.
    Dir(u32),
    /// Index into `Tree::files`.
    File(u32),
    /// The symlink's target in the arena.
    Symlink(Span),
}

/// One inode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub kind: Kind,
    /// `mode & 0o7777`.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Device number in the kernel's 32-bit `new_encode_dev` form.
    pub rdev: u32,
    /// The parent directory's inode (for `..`; a hardlinked file's first parent).
    pub parent: u32,
    pub payload: Payload,
    /// First record in `Tree::xattrs` and count.
    pub xattrs: (u32, u32),
}

/// One entry of a directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dirent {
    pub name: Span,
    pub ino: u32,
}

/// Where a regular file's bytes are.
#[derive(Debug, Clone, Copy)]
struct FileData {
    layer: u32,
    offset: u64,
    path: Span,
}

/// One extended attribute.
#[derive(Debug, Clone, Copy)]
struct Xattr {
    name: Span,
    value: Span,
}

/// The inode table of a mounted image.
///
/// Every visible entry gets an inode number, assigned breadth-first from the root (inode 1), so the same
/// image always gets the same numbers. Everything a request needs is copied into a few flat arrays: one
/// fixed-size node per inode, one entry per directory entry (each directory's entries contiguous
/// and sorted by name, so a lookup is a binary search), and one byte arena holding names, symlink
/// targets, xattrs and the in-layer paths of file contents. Serving a request allocates nothing and never
/// touches the layer indexes again.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: Vec<Node>,
    /// Per directory: its first entry in `dirents` and its entry count.
    dirs: Vec<(u32, u32)>,
    dirents: Vec<Dirent>,
    files: Vec<FileData>,
    xattrs: Vec<Xattr>,
    arena: Vec<u8>,
    total_bytes: u64,
}

/// The kernel's `new_encode_dev`: 12-bit major, 20-bit minor in 32 bits.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

impl Tree {
    /// Builds the table of the merged tree `merged`: one inode per visible entry (hardlinks sharing
    /// their target's), breadth-first from the root, whose metadata is [`MergedView::root`]'s. Hardlinks whose target is missing, a directory, or
    /// a chain longer than 16 links are left out.
    pub fn build(merged: &MergedView) -> Result<Tree> {
        Tree::build_with(merged, false)
    }

    /// Builds the table of the top layer of `merged` (a view of one layer, as an Additional Layer Store
    /// serves it) in the form overlayfs takes as a lower directory, as containers/storage unpacks a layer:
    /// its entries as [`Tree::build`] gives them, plus each whiteout as a character device 0/0 of the
    /// whited-out name and each opaque directory with the xattr `trusted.overlay.opaque` = `y`. The layer's
    /// own `trusted.overlay.*` and `user.overlay.*` xattrs are left out (only markers may set those).
    pub fn build_overlay(merged: &MergedView) -> Result<Tree> {
        Tree::build_with(merged, true)
    }

    fn build_with(merged: &MergedView, overlay: bool) -> Result<Tree> {
        let mut t = Tree::default();
        // The root's metadata is the topmost layer's `./` entry (mode 0755, root's, mtime 0 without one).
        let root = merged.root()?;
        let root_ino = t.push_node(root.layer, root.entry, 1, Form::plain(overlay))?;
        debug_assert_eq!(u64::from(root_ino), ROOT_INO);
        let top = merged.layers().len().saturating_sub(1);
        // Inodes of the entries that hold data (files, and anything a hardlink points to), by (layer, offset
        // in the tar stream): a hardlink and its target get the same one.
        let mut by_data: HashMap<(usize, u64), u32> = HashMap::new();
        let mut queue: VecDeque<(u32, Vec<u8>)> = VecDeque::from([(1, Vec::new())]);
        while let Some((dir_ino, path)) = queue.pop_front() {
            let mut children: Vec<Child<'_>> = merged
                .readdir(&path)?
                .into_iter()
                .map(Child::Visible)
                .collect();
            // The top layer's markers in this directory (overlay form only).
            let mut opaque: Vec<&[u8]> = Vec::new();
            if overlay && let Some(index) = merged.layers().last() {
                for e in index.readdir(&path)? {
                    let e = e?;
                    match e.kind() {
                        EntryKind::Opaque => opaque.push(e.name()),
                        EntryKind::Whiteout if !children.iter().any(|c| c.name() == e.name()) => {
                            children.push(Child::Whiteout(e));
                        }
                        _ => {}
                    }
                }
                children.sort_by(|a, b| a.name().cmp(b.name()));
            }
            let first = u32::try_from(t.dirents.len()).map_err(|_| Error::TooLarge("entries"))?;
            let mut subdirs = 0u32;
            for child in children {
                let (layer, entry, name) = match child {
                    Child::Whiteout(e) => (top, e, e.name()),
                    Child::Visible(c) => match resolve(merged, c.layer, c.entry)? {
                        Some((layer, entry)) => (layer, entry, c.entry.name()),
                        None => continue,
                    },
                };
                let ino = if entry.kind() == EntryKind::Dir {
                    subdirs = subdirs.saturating_add(1);
                    let form = Form {
                        overlay,
                        opaque: overlay && opaque.contains(&name),
                    };
                    let ino = t.push_node(layer, entry, dir_ino, form)?;
                    let mut sub = Vec::with_capacity(path.len() + 1 + name.len());
                    sub.extend_from_slice(&path);
                    if !sub.is_empty() {
                        sub.push(b'/');
                    }
                    sub.extend_from_slice(name);
                    queue.push_back((ino, sub));
                    ino
                } else if entry.kind() == EntryKind::Whiteout {
                    t.push_node(layer, entry, dir_ino, Form::plain(overlay))?
                } else {
                    match by_data.get(&(layer, entry.offset())) {
                        Some(&ino) => {
                            if let Some(node) = t.nodes.get_mut(ino as usize - 1) {
                                node.nlink = node.nlink.saturating_add(1);
                            }
                            ino
                        }
                        None => {
                            let ino = t.push_node(layer, entry, dir_ino, Form::plain(overlay))?;
                            by_data.insert((layer, entry.offset()), ino);
                            ino
                        }
                    }
                };
                let name = t.push_bytes(name)?;
                t.dirents.push(Dirent { name, ino });
            }
            let count = u32::try_from(t.dirents.len())
                .map_err(|_| Error::TooLarge("entries"))?
                .saturating_sub(first);
            if let Some(node) = t.nodes.get_mut(dir_ino as usize - 1) {
                node.nlink = subdirs.saturating_add(2);
                if let Payload::Dir(d) = node.payload
                    && let Some(slot) = t.dirs.get_mut(d as usize)
                {
                    *slot = (first, count);
                }
            }
        }
        Ok(t)
    }

    /// Number of inodes (the root included).
    pub fn inodes(&self) -> usize {
        self.nodes.len()
    }

    /// Number of directory entries (every visible path but the root).
    pub fn entries(&self) -> usize {
        self.dirents.len()
    }

    /// Total size of the regular files' contents (each hardlinked file counted once).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The inode at `path` (`/`-separated, relative to the root; `""` is the root).
    pub fn lookup_path(&self, path: &[u8]) -> Option<u64> {
        let mut ino = ROOT_INO;
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            ino = self.lookup(ino, part)?;
        }
        Some(ino)
    }

    /// The content of the regular file `ino`.
    pub fn file(&self, ino: u64) -> Option<FileRef<'_>> {
        let node = self.node(ino)?;
        let Payload::File(f) = node.payload else {
            return None;
        };
        let data = self.files.get(f as usize)?;
        Some(FileRef {
            layer: data.layer as usize,
            offset: data.offset,
            size: node.size,
            path: self.bytes(data.path),
        })
    }

    // ----- crate API (the file system's requests) -----

    pub(crate) fn node(&self, ino: u64) -> Option<&Node> {
        let i = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.nodes.get(i)
    }

    /// The entries of directory `ino`, sorted by name.
    pub(crate) fn children(&self, ino: u64) -> Option<&[Dirent]> {
        let Payload::Dir(d) = self.node(ino)?.payload else {
            return None;
        };
        let &(first, count) = self.dirs.get(d as usize)?;
        let first = first as usize;
        self.dirents.get(first..first.checked_add(count as usize)?)
    }

    /// The child `name` of directory `parent`.
    pub(crate) fn lookup(&self, parent: u64, name: &[u8]) -> Option<u64> {
        let children = self.children(parent)?;
        let i = children
            .binary_search_by(|d| self.bytes(d.name).cmp(name))
            .ok()?;
        children.get(i).map(|d| u64::from(d.ino))
    }

    pub(crate) fn bytes(&self, span: Span) -> &[u8] {
        let start = span.off as usize;
        self.arena
            .get(start..start.saturating_add(span.len as usize))
            .unwrap_or_default()
    }

    /// The symlink target of `ino`.
    pub(crate) fn link(&self, ino: u64) -> Option<&[u8]> {
        match self.node(ino)?.payload {
            Payload::Symlink(span) => Some(self.bytes(span)),
            _ => None,
        }
    }

    /// The extended attributes of `ino`, `(name, value)`, in the layer's order.
    pub(crate) fn xattrs(&self, ino: u64) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (first, count) = self.node(ino).map_or((0, 0), |n| n.xattrs);
        let first = first as usize;
        self.xattrs
            .get(first..first.saturating_add(count as usize))
            .unwrap_or_default()
            .iter()
            .map(|x| (self.bytes(x.name), self.bytes(x.value)))
    }

    // ----- building -----

    fn new_dir_slot(&mut self) -> Result<u32> {
        let d = u32::try_from(self.dirs.len()).map_err(|_| Error::TooLarge("directories"))?;
        self.dirs.push((0, 0));
        Ok(d)
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<Span> {
        let off = u32::try_from(self.arena.len()).map_err(|_| Error::TooLarge("names"))?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::TooLarge("names"))?;
        if off.checked_add(len).is_none() {
            return Err(Error::TooLarge("names"));
        }
        self.arena.extend_from_slice(bytes);
        Ok(Span { off, len })
    }

    /// Adds the inode of `entry` (of layer `layer`, hardlinks resolved), child of `parent`.
    fn push_node(
        &mut self,
        layer: usize,
        entry: EntryRef<'_>,
        parent: u32,
        form: Form,
    ) -> Result<u32> {
        let ino = u32::try_from(self.nodes.len() + 1).map_err(|_| Error::TooLarge("inodes"))?;
        let (kind, payload, size, rdev) = match entry.kind() {
            EntryKind::Dir => (Kind::Dir, Payload::Dir(self.new_dir_slot()?), 4096, 0),
            EntryKind::File => {
                let f = u32::try_from(self.files.len()).map_err(|_| Error::TooLarge("files"))?;
                let mut path = Vec::with_capacity(entry.parent().len() + 1 + entry.name().len());
                entry.write_path(&mut path);
                let path = self.push_bytes(&path)?;
                self.files.push(FileData {
                    layer: u32::try_from(layer).map_err(|_| Error::TooLarge("layers"))?,
                    offset: entry.offset(),
                    path,
                });
                self.total_bytes = self.total_bytes.saturating_add(entry.size());
                (Kind::File, Payload::File(f), entry.size(), 0)
            }
            EntryKind::Symlink => {
                let link = self.push_bytes(entry.link())?;
                (
                    Kind::Symlink,
                    Payload::Symlink(link),
                    entry.link().len() as u64,
                    0,
                )
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                let kind = if entry.kind() == EntryKind::CharDevice {
                    Kind::CharDevice
                } else {
                    Kind::BlockDevice
                };
                let rdev = encode_dev(entry.dev_major(), entry.dev_minor());
                (kind, Payload::None, 0, rdev)
            }
            EntryKind::Fifo => (Kind::Fifo, Payload::None, 0, 0),
            // overlayfs's whiteout: a character device 0/0.
            EntryKind::Whiteout if form.overlay => (Kind::CharDevice, Payload::None, 0, 0),
            // Resolved away before (hardlinks) or never visible (markers).
            EntryKind::Hardlink | EntryKind::Whiteout | EntryKind::Opaque => {
                (Kind::Fifo, Payload::None, 0, 0)
            }
        };
        let first = u32::try_from(self.xattrs.len()).map_err(|_| Error::TooLarge("xattrs"))?;
        for (name, value) in entry.xattrs() {
            if form.overlay && is_overlay_xattr(name) {
                continue;
            }
            let name = self.push_bytes(name)?;
            let value = self.push_bytes(value)?;
            self.xattrs.push(Xattr { name, value });
        }
        if form.opaque {
            let name = self.push_bytes(OPAQUE_XATTR)?;
            let value = self.push_bytes(b"y")?;
            self.xattrs.push(Xattr { name, value });
        }
        let count = u32::try_from(self.xattrs.len())
            .map_err(|_| Error::TooLarge("xattrs"))?
            .saturating_sub(first);
        let whiteout = form.overlay && entry.kind() == EntryKind::Whiteout;
        self.nodes.push(Node {
            kind,
            // A symlink's permissions mean nothing: the kernel and every unpacker show 0777, whatever its
            // tar header says.
            perm: if kind == Kind::Symlink {
                0o777
            } else if whiteout {
                0
            } else {
                (entry.mode() & 0o7777) as u16
            },
            uid: entry.uid(),
            gid: entry.gid(),
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            size,
            mtime: entry.mtime(),
            mtime_nsec: entry.mtime_nsec().min(999_999_999),
            rdev,
            parent,
            payload,
            xattrs: (first, count),
        });
        Ok(ino)
    }
}

/// The entry whose inode the visible entry (`layer`, `entry`) shows: the entry itself, or for a hardlink
/// the entry it links to (as seen from the hardlink's layer). `None` for a hardlink that leads nowhere (a
/// missing target, a directory, a cycle).
fn resolve<'a>(
    merged: &'a MergedView,
    layer: usize,
    entry: EntryRef<'a>,
) -> Result<Option<(usize, EntryRef<'a>)>> {
    let (mut layer, mut entry) = (layer, entry);
    for _ in 0..MAX_HARDLINK_HOPS {
        if entry.kind() != EntryKind::Hardlink {
            return Ok(Some((layer, entry)));
        }
        match merged.lookup_below(entry.link(), layer)? {
            Some((l, e)) if e.kind() != EntryKind::Dir => (layer, entry) = (l, e),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
    use strata_image::resolve;
    use strata_layer::{IndexOptions, obtain_layer};
    use strata_oci::Platform;

    use super::*;

    /// The upper layer of a two-layer image, alone, in overlay form: its whiteout a 0/0 device, its opaque
    /// directory marked (an implicit one too), its own `trusted.overlay.*` xattr dropped.
    #[test]
    fn a_layer_in_overlay_form_keeps_its_markers_as_overlayfs_reads_them() {
        let tmp = tempfile::tempdir().unwrap();
        let mut lower = LayerBuilder::new();
        lower.file("etc/gone", b"removed above\n");
        lower.file("opt/d/x", b"hidden\n");
        lower.file("srv/e/x", b"hidden\n");
        let mut upper = LayerBuilder::new();
        upper.whiteout("etc/gone");
        upper.file("etc/kept", b"kept\n");
        upper.dir("opt/d");
        upper.opaque("opt/d");
        upper.file("opt/d/y", b"above\n");
        // An opaque directory the layer has no entry for.
        upper.opaque("srv/e");
        upper
            .file("sneaky", b"x")
            .xattr("trusted.overlay.opaque", b"y")
            .xattr("user.kept", b"1");
        let layout = tmp.path().join("layout");
        ImageBuilder::new()
            .layer(lower, Compression::Gzip)
            .layer(upper, Compression::Gzip)
            .write_layout(&layout, "t")
            .unwrap();
        let source: Arc<dyn strata_image::ImageSource> =
            Arc::from(strata_source::open(&format!("oci:{}:t", layout.display())).unwrap());
        let platform = Platform::new("linux", "amd64", None);
        let image = resolve(source.as_ref(), &platform).unwrap();
        let layer = obtain_layer(&source, &image, 1, &IndexOptions::default()).unwrap();
        let merged = MergedView::new(vec![layer.index]);

        let tree = Tree::build_overlay(&merged).unwrap();
        let gone = tree.lookup_path(b"etc/gone").unwrap();
        let node = tree.node(gone).unwrap();
        assert_eq!((node.kind, node.rdev, node.perm), (Kind::CharDevice, 0, 0));
        assert!(tree.lookup_path(b"etc/kept").is_some());
        for dir in [&b"opt/d"[..], b"srv/e"] {
            let ino = tree.lookup_path(dir).unwrap();
            let xattrs: Vec<_> = tree.xattrs(ino).collect();
            assert_eq!(
                xattrs,
                vec![(OPAQUE_XATTR, &b"y"[..])],
                "{}",
                String::from_utf8_lossy(dir)
            );
        }
        let sneaky = tree.lookup_path(b"sneaky").unwrap();
        let xattrs: Vec<_> = tree.xattrs(sneaky).collect();
        assert_eq!(xattrs, vec![(&b"user.kept"[..], &b"1"[..])]);

        // The plain form shows none of it.
        let plain = Tree::build(&merged).unwrap();
        assert!(plain.lookup_path(b"etc/gone").is_none());
        let d = plain.lookup_path(b"opt/d").unwrap();
        assert_eq!(plain.xattrs(d).count(), 0);
    }
}
