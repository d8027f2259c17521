//! An image opened for scanning: its merged tree, file contents, distribution, packages and checks.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use strata_image::ImageSource;
use strata_index::{EntryKind, EntryRef};
use strata_layer::{ImageView, IndexOptions, ViewOptions};
use strata_lazy::LazyOptions;
use strata_oci::{ImageReference, Platform};
use strata_source::SourceOptions;

use crate::check::{
    Assessment, CheckInput, CheckReport, HealthIndex, NO_ADVISORY_FEED, PackageList, Tags,
    Verification, assess,
};
use crate::os::{OsInfo, parse_alpine_release, parse_os_release, parse_redhat_release};
use crate::packages::{
    Manager, Package, PackageError, RpmPackage, is_berkeley_db, parse_apk_installed,
    parse_dpkg_status, parse_rpm_sqlite_files,
};

/// Errors of the scanner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image could not be opened or resolved.
    #[error(transparent)]
    Source(#[from] strata_image::Error),
    /// A layer could not be read, verified or indexed.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// A layer index could not be read.
    #[error(transparent)]
    Index(#[from] strata_index::Error),
    /// A package database could not be read.
    #[error(transparent)]
    Packages(#[from] PackageError),
    /// Writing output (an export, a file's content) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Resolving a path met too many symbolic links (a loop, most likely).
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
    /// The advisory feed could not be matched against the image (an installed version its manager's
    /// ordering refuses, named).
    #[error("advisories: {0}")]
    Advisory(String),
    /// An entry cannot be written in the requested form (e.g. a tar header field it does not fit).
    #[error("{path}: {reason}")]
    Unrepresentable {
        /// The entry.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Result with the scanner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest metadata file (os-release, a package database) the scanner reads whole.
pub const MAX_DATABASE_SIZE: u64 = 512 << 20;

/// What a file is, in the merged tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file (hardlinks included).
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A named pipe.
    Fifo,
}

impl Kind {
    /// The letter `ls -l` shows for it (`-`, `d`, `l`, `c`, `b`, `p`), which is also `find -type`'s (`f` for
    /// a regular file aside).
    pub fn ls_char(self) -> char {
        match self {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Char => 'c',
            Kind::Block => 'b',
            Kind::Fifo => 'p',
        }
    }

    /// The kind `find -type LETTER` selects (`f`, `d`, `l`, `c`, `b`, `p`).
    pub fn from_find_type(letter: &str) -> Option<Kind> {
        Some(match letter {
            "f" => Kind::File,
            "d" => Kind::Dir,
            "l" => Kind::Symlink,
            "c" => Kind::Char,
            "b" => Kind::Block,
            "p" => Kind::Fifo,
            _ => return None,
        })
    }
}

/// One entry of the merged tree, as a scanner sees it.
///
/// Paths and link targets are raw bytes, as the layers' tar headers have them: names need not be UTF-8.
/// [`FileEntry::path_lossy`] and [`FileEntry::link_lossy`] decode them for display. Serialized (JSON), the
/// entry has `path` and `link` decoded lossily, `mode` as an octal string (`"0644"`), and, only for a path
/// or target that is not valid UTF-8, `path_raw`/`link_raw` with the exact bytes in base64 (docs/FORMAT.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The path, absolute (`/etc/passwd`; `/` for the root).
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (0777 for a symlink, as on disk).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size of a regular file's content.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Symlink target, verbatim; for a hardlink, the path it links to (absolute).
    pub link: Vec<u8>,
    /// Whether the entry is a hardlink to another path.
    pub hardlink: bool,
    /// Device numbers (major, minor) of a character or block device; (0, 0) otherwise.
    pub device: (u32, u32),
    /// The layer it comes from (0 = bottom).
    pub layer: usize,
}

impl FileEntry {
    /// The root directory when no layer has an entry for it: mode 0755, owned by root, mtime 0.
    fn default_root() -> FileEntry {
        FileEntry {
            path: b"/".to_vec(),
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: Vec::new(),
            hardlink: false,
            device: (0, 0),
            layer: 0,
        }
    }

    /// The last component of the path (`/` for the root).
    pub fn name(&self) -> &[u8] {
        let rel = self.relative();
        if rel.is_empty() {
            return b"/";
        }
        match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => rel.get(i + 1..).unwrap_or_default(),
            None => rel,
        }
    }

    /// The path relative to the root, as the layer indexes have it (`etc/passwd`; empty for the root).
    pub fn relative(&self) -> &[u8] {
        self.path.strip_prefix(b"/").unwrap_or(&self.path)
    }

    /// The path decoded for display (invalid UTF-8 as U+FFFD).
    pub fn path_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.path)
    }

    /// The link target decoded for display (invalid UTF-8 as U+FFFD).
    pub fn link_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.link)
    }
}

impl Serialize for FileEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let path_raw = raw_bytes(&self.path);
        let link_raw = raw_bytes(&self.link);
        let fields = 11 + usize::from(path_raw.is_some()) + usize::from(link_raw.is_some());
        let mut s = serializer.serialize_struct("FileEntry", fields)?;
        s.serialize_field("path", &self.path_lossy())?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("mode", &octal_mode(self.mode))?;
        s.serialize_field("uid", &self.uid)?;
        s.serialize_field("gid", &self.gid)?;
        s.serialize_field("size", &self.size)?;
        s.serialize_field("mtime", &self.mtime)?;
        s.serialize_field("link", &self.link_lossy())?;
        s.serialize_field("hardlink", &self.hardlink)?;
        s.serialize_field("device", &self.device)?;
        s.serialize_field("layer", &self.layer)?;
        if let Some(raw) = path_raw {
            s.serialize_field("path_raw", &raw)?;
        }
        if let Some(raw) = link_raw {
            s.serialize_field("link_raw", &raw)?;
        }
        s.end()
    }
}

/// Permission bits as JSON has them: four octal digits, `"0644"`, `"4755"`.
pub fn octal_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The exact bytes of a name for JSON when they are not valid UTF-8 (base64, standard alphabet, padded,
/// as Go's `encoding/json` and tar-split's `name_raw` write bytes); `None` when the lossy string is exact.
pub fn raw_bytes(bytes: &[u8]) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(_) => None,
        Err(_) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

pub(crate) fn kind_of(kind: EntryKind) -> Kind {
    match kind {
        EntryKind::Dir => Kind::Dir,
        EntryKind::Symlink => Kind::Symlink,
        EntryKind::CharDevice => Kind::Char,
        EntryKind::BlockDevice => Kind::Block,
        EntryKind::Fifo => Kind::Fifo,
        _ => Kind::File,
    }
}

/// `a/b` → `/a/b`.
pub(crate) fn absolute(rel: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rel.len() + 1);
    out.push(b'/');
    out.extend_from_slice(rel);
    out
}

/// `a/b` → `/a/b`, lossily UTF-8 (for messages).
pub(crate) fn display_path(rel: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(rel))
}

/// `/a/b/` → `a/b`: the relative form the index uses.
fn relative(path: &[u8]) -> Vec<u8> {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let end = path
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(start, |i| i + 1);
    path.get(start..end).unwrap_or_default().to_vec()
}

/// Where a path leads, when symlinks are followed inside the image: [`ScanImage::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The entry, with its canonical path.
    Entry(FileEntry),
    /// A component does not exist (or a followed symlink dangles): `ENOENT`.
    Missing,
    /// A component used as a directory (followed by `/`, `.`, `..` or more components) is not one:
    /// `ENOTDIR`.
    NotADirectory,
}

impl Resolved {
    /// The entry, if the path leads to one.
    pub fn entry(self) -> Option<FileEntry> {
        match self {
            Resolved::Entry(e) => Some(e),
            _ => None,
        }
    }
}

/// How many symbolic links one path resolution follows before giving up (Linux's limit).
pub const MAX_SYMLINKS: usize = 40;

/// An image opened for scanning.
pub struct ScanImage {
    view: ImageView,
    name: String,
    /// How many visible paths share each regular file's bytes (layer, offset), counted on first need.
    links: std::sync::OnceLock<HashMap<(usize, u64), u64>>,
}

impl std::fmt::Debug for ScanImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanImage")
            .field("name", &self.name)
            .field("view", &self.view)
            .finish()
    }
}

impl ScanImage {
    /// Opens image `name` (any transport strata reads, `containers-storage:[ROOT+RUNROOT]NAME` included:
    /// see `strata_store::transports`) for `platform`. Nothing is unpacked: a store image is read through
    /// its layers' indexes and `diff` directories; any other image has every layer read, verified and
    /// indexed in memory, its files then read through the layer engine's piece cache and read-ahead.
    pub fn open(name: &str, platform: &Platform) -> Result<ScanImage> {
        ScanImage::open_with(name, &SourceOptions::default(), platform)
    }

    /// [`ScanImage::open`] with source options (registry credentials, TLS, timeouts; the default store).
    pub fn open_with(
        name: &str,
        options: &SourceOptions,
        platform: &Platform,
    ) -> Result<ScanImage> {
        let source: Arc<dyn ImageSource> =
            Arc::from(strata_store::transports().open(name, options)?);
        ScanImage::from_source(name, source, platform)
    }

    /// Opens the image `source` designates for `platform`, reading layers lazily where they allow it
    /// (see [`strata_lazy::finders`]); `name` is used in messages.
    pub fn from_source(
        name: &str,
        source: Arc<dyn ImageSource>,
        platform: &Platform,
    ) -> Result<ScanImage> {
        ScanImage::from_source_with(name, source, platform, &LazyOptions::default())
    }

    /// [`ScanImage::from_source`] with lazy-read options.
    pub fn from_source_with(
        name: &str,
        source: Arc<dyn ImageSource>,
        platform: &Platform,
        lazy: &LazyOptions,
    ) -> Result<ScanImage> {
        let options = ViewOptions {
            indexes: IndexOptions {
                finders: strata_lazy::finders(lazy),
                ..IndexOptions::default()
            },
            ..ViewOptions::default()
        };
        Ok(ScanImage::from_view(
            name,
            ImageView::open_with(source, platform, &options)?,
        ))
    }

    /// A scanner over a view opened elsewhere (e.g. with an index directory, `strata_layer::ViewOptions`).
    pub fn from_view(name: &str, view: ImageView) -> ScanImage {
        ScanImage {
            view,
            name: name.to_owned(),
            links: std::sync::OnceLock::new(),
        }
    }

    /// A scanner over the image as its bottom `layers` layers show it (see `ImageView::bottom`): a base
    /// image, without reading anything again.
    pub fn bottom(&self, layers: usize) -> ScanImage {
        ScanImage::from_view(&self.name, self.view.bottom(layers))
    }

    /// The scanner's view of the entry at `path` in `layer`. A hardlink reports the metadata and size of
    /// the file it links to (what the file system shows for either path); a hardlink whose target cannot
    /// be found keeps its own header's values.
    pub(crate) fn file_entry(&self, path: &[u8], layer: usize, e: &EntryRef<'_>) -> FileEntry {
        let kind = kind_of(e.kind());
        let hardlink = e.kind() == EntryKind::Hardlink;
        let meta = if hardlink {
            self.view
                .data_entry(layer, *e)
                .map_or(*e, |(_, target)| target)
        } else {
            *e
        };
        FileEntry {
            path: absolute(path),
            kind,
            // A symlink's permissions mean nothing: unpacked, it is 0777 whatever its tar header says.
            mode: if kind == Kind::Symlink {
                0o777
            } else {
                meta.mode()
            },
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime: meta.mtime(),
            link: if hardlink {
                absolute(e.link())
            } else {
                e.link().to_vec()
            },
            hardlink,
            device: if matches!(kind, Kind::Char | Kind::Block) {
                (e.dev_major(), e.dev_minor())
            } else {
                (0, 0)
            },
            layer,
        }
    }

    /// The root directory: the topmost layer's entry for it (`./`), or mode 0755, owned by root, mtime 0 when
    /// no layer has one.
    pub fn root(&self) -> Result<FileEntry> {
        let root = self.view.merged().root()?;
        if root.entry.is_implicit() {
            return Ok(FileEntry::default_root());
        }
        Ok(self.file_entry(b"", root.layer, &root.entry))
    }

    /// The entry's link count, as `ls -l` and `stat` show it: for a directory 2 and one per subdirectory,
    /// for a regular file the number of paths of the image that are hardlinks to its bytes (itself
    /// included), 1 for anything else. The hardlinks of the whole image are counted once, on first need
    /// (a walk of the tree), and only when a layer has one.
    pub fn link_count(&self, entry: &FileEntry) -> Result<u64> {
        if entry.kind == Kind::Dir {
            let dirs = self.read_dir_raw(entry.relative())?;
            return Ok(2 + dirs.iter().filter(|e| e.kind == Kind::Dir).count() as u64);
        }
        if entry.kind != Kind::File {
            return Ok(1);
        }
        let merged = self.view.merged();
        let Some((layer, e)) = merged.lookup(entry.relative())? else {
            return Ok(1);
        };
        let Ok((layer, data)) = self.view.data_entry(layer, e) else {
            return Ok(1);
        };
        let links = match self.links.get() {
            Some(links) => links,
            None => {
                let counted = self.count_hardlinks()?;
                self.links.get_or_init(|| counted)
            }
        };
        Ok(links.get(&(layer, data.offset())).copied().unwrap_or(1))
    }

    /// For every regular file's bytes that some visible hardlink shares: how many visible paths show them.
    fn count_hardlinks(&self) -> Result<HashMap<(usize, u64), u64>> {
        let merged = self.view.merged();
        let mut links = HashMap::new();
        let mut any = false;
        'layers: for index in merged.layers() {
            for e in index.iter() {
                if e?.kind() == EntryKind::Hardlink {
                    any = true;
                    break 'layers;
                }
            }
        }
        if !any {
            return Ok(links);
        }
        for item in merged.walk() {
            let (_, m) = item?;
            if matches!(m.entry.kind(), EntryKind::File | EntryKind::Hardlink)
                && let Ok((layer, data)) = self.view.data_entry(m.layer, m.entry)
            {
                *links.entry((layer, data.offset())).or_insert(0) += 1;
            }
        }
        Ok(links)
    }

    /// The name the image was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying view.
    pub fn view(&self) -> &ImageView {
        &self.view
    }

    /// Every entry of the merged tree, parents before children, names sorted (the root itself is not
    /// listed).
    pub fn entries(&self) -> impl Iterator<Item = Result<FileEntry>> + '_ {
        self.view.merged().walk().map(|item| {
            let (path, m) = item?;
            Ok(self.file_entry(&path, m.layer, &m.entry))
        })
    }

    /// Every entry under directory `dir` (not `dir` itself), in the order of [`ScanImage::entries`]. Empty
    /// when `dir` is not a directory. `dir` is taken literally: see [`ScanImage::resolve`] for symlinks.
    pub fn walk(&self, dir: &FileEntry) -> impl Iterator<Item = Result<FileEntry>> + '_ {
        Walk {
            image: self,
            stack: Vec::new(),
            start: Some(dir.relative().to_vec()),
        }
    }

    /// The entry at `path` (absolute or relative; the root included), if any. Symlinks are not followed,
    /// not even in the path's directories: see [`ScanImage::resolve`]. Paths are bytes (`&str` and `&[u8]`
    /// both do).
    pub fn stat(&self, path: impl AsRef<[u8]>) -> Result<Option<FileEntry>> {
        self.stat_raw(&relative(path.as_ref()))
    }

    fn stat_raw(&self, rel: &[u8]) -> Result<Option<FileEntry>> {
        if rel.is_empty() {
            return self.root().map(Some);
        }
        Ok(self
            .view
            .merged()
            .lookup(rel)?
            .map(|(layer, e)| self.file_entry(rel, layer, &e)))
    }

    /// The entry `path` designates when symlinks are followed inside the image (see
    /// [`ScanImage::lookup`]), or `None` when there is none (a missing component, a dangling link, a
    /// non-directory used as one); [`Error::SymlinkLoop`] after [`MAX_SYMLINKS`] links.
    pub fn resolve(&self, path: impl AsRef<[u8]>, follow: bool) -> Result<Option<FileEntry>> {
        Ok(self.lookup(path, follow)?.entry())
    }

    /// Where `path` leads when symlinks are followed inside the image, as the kernel resolves a path in a
    /// chroot: symlinks in the directories of the path are always followed, the last component's only when
    /// `follow` is true or the path ends with `/`; absolute targets start again at the image's root and
    /// `..` never climbs above it. A component followed by `/`, `.` or `..` must be a directory
    /// ([`Resolved::NotADirectory`] otherwise, as `ENOTDIR`: `/etc/passwd/` is not `/etc/passwd`). The
    /// entry's `path` is the canonical one. [`Error::SymlinkLoop`] after [`MAX_SYMLINKS`] links.
    pub fn lookup(&self, path: impl AsRef<[u8]>, follow: bool) -> Result<Resolved> {
        let path = path.as_ref();
        self.lookup_raw(path, follow || path.ends_with(b"/"))
    }

    fn lookup_raw(&self, path: &[u8], follow: bool) -> Result<Resolved> {
        // Components still to walk, the next one last. `.` stays: it asks for a directory.
        let mut todo: Vec<Vec<u8>> = components(path).rev().map(<[u8]>::to_vec).collect();
        let mut done: Vec<u8> = Vec::new();
        let mut current = self.root()?;
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if current.kind != Kind::Dir {
                return Ok(Resolved::NotADirectory);
            }
            if c == b"." {
                continue;
            }
            if c == b".." {
                done.truncate(done.iter().rposition(|&b| b == b'/').unwrap_or(0));
                current = match self.stat_raw(&done)? {
                    Some(e) => e,
                    None => return Ok(Resolved::Missing),
                };
                continue;
            }
            let mut candidate = done.clone();
            if !candidate.is_empty() {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(&c);
            let Some(entry) = self.stat_raw(&candidate)? else {
                return Ok(Resolved::Missing);
            };
            let last = todo.is_empty();
            if entry.kind == Kind::Symlink && (follow || !last) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop {
                        path: String::from_utf8_lossy(path).into_owned(),
                    });
                }
                if entry.link.starts_with(b"/") {
                    done.clear();
                    current = self.root()?;
                }
                todo.extend(components(&entry.link).rev().map(<[u8]>::to_vec));
                continue;
            }
            done = candidate;
            current = entry;
        }
        // A trailing slash asks for a directory too (the last link was followed for it).
        if path.ends_with(b"/") && current.kind != Kind::Dir {
            return Ok(Resolved::NotADirectory);
        }
        Ok(Resolved::Entry(current))
    }

    /// The entries of directory `path`, sorted by name. `path` is taken literally (see
    /// [`ScanImage::resolve`]); empty when it is not a directory.
    pub fn read_dir(&self, path: impl AsRef<[u8]>) -> Result<Vec<FileEntry>> {
        self.read_dir_raw(&relative(path.as_ref()))
    }

    fn read_dir_raw(&self, rel: &[u8]) -> Result<Vec<FileEntry>> {
        let mut out = Vec::new();
        for m in self.view.merged().readdir(rel)? {
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(m.entry.name());
            out.push(self.file_entry(&child, m.layer, &m.entry));
        }
        Ok(out)
    }

    /// The content of the regular file at `path` (hardlinks followed; symlinks are not), refused when larger
    /// than `limit`. `Ok(None)` when there is no such entry.
    pub fn read(&self, path: impl AsRef<[u8]>, limit: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.view.read_file(&relative(path.as_ref()), limit)?)
    }

    /// Like [`ScanImage::read`], following symlinks inside the image (see [`ScanImage::resolve`]).
    /// `Ok(None)` when the path does not resolve to a regular file.
    pub fn read_resolved(&self, path: impl AsRef<[u8]>, limit: u64) -> Result<Option<Vec<u8>>> {
        match self.resolve(path, true)? {
            Some(e) if e.kind == Kind::File => Ok(self.view.read_file(e.relative(), limit)?),
            _ => Ok(None),
        }
    }

    /// Writes the content of the regular file at `path` to `out` in chunks, never holding it whole.
    /// `Ok(None)` when there is no such entry; an error when it is not a regular file.
    pub fn copy_to(
        &self,
        path: impl AsRef<[u8]>,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>> {
        self.copy_raw(&relative(path.as_ref()), out)
    }

    /// [`ScanImage::copy_to`] for an entry found by [`ScanImage::entries`], [`ScanImage::resolve`] or
    /// [`ScanImage::read_dir`].
    pub fn copy_entry(
        &self,
        entry: &FileEntry,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>> {
        self.copy_raw(entry.relative(), out)
    }

    /// Where the bytes of regular file (or hardlink) `entry` lie: the layer and the offset in its tar
    /// stream, hardlinks followed; `None` if the path is gone. Reading many files in this order goes
    /// through each layer once instead of jumping between its checkpoints.
    pub fn data_position(&self, entry: &FileEntry) -> Result<Option<(usize, u64)>> {
        let Some((layer, found)) = self.view.merged().lookup(entry.relative())? else {
            return Ok(None);
        };
        let (layer, found) = self.view.data_entry(layer, found)?;
        Ok(Some((layer, found.offset())))
    }

    fn copy_raw(&self, rel: &[u8], out: &mut dyn std::io::Write) -> Result<Option<u64>> {
        let Some((layer, entry)) = self.view.merged().lookup(rel)? else {
            return Ok(None);
        };
        let (layer, entry) = self.view.data_entry(layer, entry)?;
        // At most 1 MiB at a time; no more than the file needs (verification copies thousands of small files).
        let mut buf = vec![0u8; usize::try_from(entry.size().min(1 << 20)).unwrap_or(1 << 20)];
        let mut offset = 0u64;
        while offset < entry.size() {
            let n = self.view.read_at(layer, entry, offset, &mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|source| Error::Io {
                what: format!("writing {}", display_path(rel)),
                source,
            })?;
            offset += n as u64;
        }
        Ok(Some(offset))
    }

    /// The distribution: `/etc/os-release`, else `/usr/lib/os-release`, `/etc/redhat-release`,
    /// `/etc/alpine-release`. Symlinks among them (os-release usually is one) are followed inside the image.
    pub fn os(&self) -> Result<Option<OsInfo>> {
        type Parser = fn(&str, &str) -> OsInfo;
        let candidates: [(&str, Parser); 4] = [
            ("/etc/os-release", parse_os_release),
            ("/usr/lib/os-release", parse_os_release),
            ("/etc/redhat-release", parse_redhat_release),
            ("/etc/alpine-release", parse_alpine_release),
        ];
        for (path, parse) in candidates {
            if let Some(bytes) = self.read_resolved(path, MAX_DATABASE_SIZE)? {
                let info = parse(&String::from_utf8_lossy(&bytes), path);
                if !info.id.is_empty() {
                    return Ok(Some(info));
                }
            }
        }
        Ok(None)
    }

    /// The installed packages, from whichever databases the image has: dpkg (`status` and distroless
    /// `status.d/`), apk, rpm (`rpmdb.sqlite`). A BerkeleyDB rpm database is reported as
    /// [`PackageError::Unsupported`]; an image with no database at all gives [`PackageError::NoDatabase`].
    pub fn packages(&self) -> Result<Vec<Package>> {
        Ok(self.packages_and_rpms()?.0)
    }

    /// [`ScanImage::packages`], with the rpm database's records (vendors included) when there is one:
    /// the database read and parsed once for both.
    fn packages_and_rpms(&self) -> Result<(Vec<Package>, Option<Vec<RpmPackage>>)> {
        let mut out = Vec::new();
        let mut rpms = None;
        let mut found = false;
        if let Some(status) = self.read_resolved("/var/lib/dpkg/status", MAX_DATABASE_SIZE)? {
            found = true;
            out.extend(parse_dpkg_status(&String::from_utf8_lossy(&status)));
        }
        if let Some(dir) = self.resolve("/var/lib/dpkg/status.d", true)?
            && dir.kind == Kind::Dir
        {
            found = true;
            for entry in self.read_dir_raw(dir.relative())? {
                if entry.kind == Kind::File
                    && !entry.path.ends_with(b".md5sums")
                    && let Some(bytes) = self.view.read_file(entry.relative(), MAX_DATABASE_SIZE)?
                {
                    out.extend(parse_dpkg_status(&String::from_utf8_lossy(&bytes)));
                }
            }
        }
        if let Some(installed) = self.read_resolved("/lib/apk/db/installed", MAX_DATABASE_SIZE)? {
            found = true;
            out.extend(parse_apk_installed(&String::from_utf8_lossy(&installed)));
        }
        for db in RPMDB_PATHS {
            if let Some(bytes) = self.read_resolved(db, MAX_DATABASE_SIZE)? {
                found = true;
                let records = rpm_sqlite_files(db, &bytes, false)?;
                out.extend(records.iter().map(|r| r.package.clone()));
                rpms = Some(records);
                break;
            }
        }
        if !found {
            if let Some(unsupported) = self.unsupported_rpm_database()? {
                return Err(unsupported.into());
            }
            return Err(PackageError::NoDatabase {
                image: self.name.clone(),
            }
            .into());
        }
        Ok((out, rpms))
    }

    pub(crate) fn rpm_sqlite(&self, path: &str, bytes: &[u8]) -> Result<Vec<Package>> {
        Ok(rpm_sqlite_files(path, bytes, false)?
            .into_iter()
            .map(|p| p.package)
            .collect())
    }

    /// An rpm database strata does not read (rpm's BerkeleyDB `Packages`, before rpm 4.16), as the error
    /// to report; `None` when there is none.
    pub(crate) fn unsupported_rpm_database(&self) -> Result<Option<PackageError>> {
        for db in ["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"] {
            if let Some(bytes) = self.read_resolved(db, MAX_DATABASE_SIZE)? {
                let reason = if is_berkeley_db(&bytes) {
                    "a BerkeleyDB rpm database (rpm < 4.16); strata reads only rpmdb.sqlite"
                } else {
                    "an rpm database in a format strata does not read"
                };
                return Ok(Some(PackageError::Unsupported {
                    path: db.to_owned(),
                    reason: reason.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    /// The rpm packages of the image's `rpmdb.sqlite` (either place rpm keeps it), with their vendors and,
    /// when `files` is true, their file lists; `None` when the image has no such database.
    pub fn rpm_packages(&self, files: bool) -> Result<Option<Vec<RpmPackage>>> {
        for db in RPMDB_PATHS {
            if let Some(bytes) = self.read_resolved(db, MAX_DATABASE_SIZE)? {
                return Ok(Some(rpm_sqlite_files(db, &bytes, files)?));
            }
        }
        Ok(None)
    }

    /// The certification assessments for this image, with [`CheckOptions::default`].
    pub fn check(&self) -> Result<Vec<Assessment>> {
        Ok(self.check_report(&CheckOptions::default())?.assessments)
    }

    /// The certification assessments with the image's name, the verdict, the distribution and the package
    /// verification's report: what `strata check --json` prints (docs/FORMAT.md, "JSON outputs").
    pub fn check_report(&self, options: &CheckOptions) -> Result<CheckReport> {
        let config = &self.view.image().config.oci;
        let inner = config.config().as_ref();
        let labels: BTreeMap<String, String> = inner
            .and_then(|c| c.labels().as_ref())
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let license_files = match self.resolve("/licenses", true)? {
            Some(dir) if dir.kind == Kind::Dir => {
                let mut files = Vec::new();
                for entry in self.walk(&dir) {
                    let entry = entry?;
                    if entry.kind == Kind::File {
                        files.push(entry.path_lossy().into_owned());
                    }
                }
                Some(files)
            }
            _ => None,
        };
        let os = self.os()?;
        let redhat_release = self
            .read_resolved("/etc/redhat-release", MAX_DATABASE_SIZE)?
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            });
        let (packages, rpms) = match self.packages_and_rpms() {
            Ok((list, rpms)) => (Ok(list), rpms),
            Err(e) => (Err(e), None),
        };
        let packages = match packages {
            Ok(list) => {
                let count = |m: Manager| list.iter().filter(|p| p.manager == m).count();
                let manager = if rpms.is_some() {
                    Manager::Rpm
                } else {
                    list.first().map_or(Manager::Dpkg, |p| p.manager)
                };
                PackageList::Read(manager, count(manager))
            }
            Err(Error::Packages(PackageError::NoDatabase { .. })) => PackageList::NoDatabase,
            Err(e) => PackageList::Failed(e.to_string()),
        };
        let verification = if !options.verify_packages {
            Verification::NotRun
        } else {
            match self.verify_packages() {
                Ok(report) => Verification::Done(report),
                Err(Error::Packages(PackageError::NoDatabase { .. })) => Verification::NoDatabase,
                Err(e) => Verification::Failed(e.to_string()),
            }
        };
        let answers = options
            .advisories
            .as_ref()
            .map(crate::advisories::check_answers);
        let input = CheckInput {
            user: inner.and_then(|c| c.user().clone()),
            labels,
            layer_count: self.view.image().manifest.layers().len(),
            license_files,
            os: os.clone(),
            redhat_release,
            rpm_vendors: rpms
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.vendor)
                .collect(),
            packages,
            verification,
            tags: Tags {
                reference_tag: reference_tag(&self.name),
                repository_tags: options.repository_tags.clone(),
            },
            vulnerabilities: answers.as_ref().map(|(decision, _)| decision.clone()),
        };
        let assessments = assess(&input);
        let mut report = CheckReport::new(
            self.name.clone(),
            assessments,
            answers.map_or_else(
                || HealthIndex {
                    grade: "unknown".to_owned(),
                    reason: NO_ADVISORY_FEED.to_owned(),
                },
                |(_, grade)| grade,
            ),
            os,
            match input.verification {
                Verification::Done(report) => Some(report),
                _ => None,
            },
        );
        report.advisories = options.advisories.clone();
        Ok(report)
    }
}

/// What [`ScanImage::check_report`] does beyond reading the image: the answers that come from elsewhere.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Whether to verify every packaged file (`rpm_verify_successful`; it reads every packaged file).
    /// Without it, that assessment is `unknown`.
    pub verify_packages: bool,
    /// The repository's tags, when the caller listed them (a `docker://` image), for `good_tags`.
    pub repository_tags: Option<Vec<String>>,
    /// The image matched against an advisory feed ([`ScanImage::advisory_assessment`]): it decides
    /// `free_of_critical_vulnerabilities` and the Container Health Index, and its findings are reported;
    /// `None` leaves both `unknown` ([`NO_ADVISORY_FEED`]).
    pub advisories: Option<strata_advisory::Assessment>,
}

impl Default for CheckOptions {
    /// Packages verified; no tag list, no advisory feed.
    fn default() -> Self {
        CheckOptions {
            verify_packages: true,
            repository_tags: None,
            advisories: None,
        }
    }
}

/// The tag an image name references, for `good_tags`: a `docker://` reference's (`latest` when it has
/// neither tag nor digest, as a pull would take), a `containers-storage:` reference's, the `:REF` of an
/// `oci:` or `oci-archive:` name, a store name's. `None` for other transports and references by digest.
pub fn reference_tag(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("docker://") {
        return ImageReference::parse(rest).ok()?.tag().map(str::to_owned);
    }
    if let Some(rest) = name.strip_prefix("containers-storage:") {
        let rest = match rest.strip_prefix('[') {
            Some(r) => r.split_once(']').map_or(r, |(_, n)| n),
            None => rest,
        };
        return ImageReference::parse_normalized_named(rest)
            .ok()?
            .tag()
            .map(str::to_owned);
    }
    if strata_store::transports().of(name).is_none() {
        // A name in strata's store.
        return ImageReference::parse_normalized_named(name)
            .ok()?
            .tag()
            .map(str::to_owned);
    }
    let rest = name
        .strip_prefix("oci:")
        .or_else(|| name.strip_prefix("oci-archive:"))?;
    let (_, reference) = rest.rsplit_once(':')?;
    (!reference.is_empty() && !reference.contains('/')).then(|| reference.to_owned())
}

/// Where rpm keeps its sqlite database, in the order looked at.
pub(crate) const RPMDB_PATHS: [&str; 2] = [
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// Parses rpm's sqlite database from its bytes: sqlite reads files, so it gets a private copy in a private
/// directory (it may add -wal and -shm files next to it). `path` is the database's path in the image.
fn rpm_sqlite_files(
    path: &str,
    bytes: &[u8],
    files: bool,
) -> Result<Vec<RpmPackage>, PackageError> {
    let malformed = |reason: String| PackageError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let dir = tempfile::tempdir().map_err(|e| malformed(e.to_string()))?;
    let copy = dir.path().join("rpmdb.sqlite");
    let mut file = std::fs::File::create(&copy).map_err(|e| malformed(e.to_string()))?;
    file.write_all(bytes)
        .map_err(|e| malformed(e.to_string()))?;
    drop(file);
    parse_rpm_sqlite_files(&copy, path, files)
}

/// The path's components, empty ones dropped (`.` and `..` kept).
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// The iterator of [`ScanImage::walk`].
struct Walk<'a> {
    image: &'a ScanImage,
    stack: Vec<std::vec::IntoIter<FileEntry>>,
    start: Option<Vec<u8>>,
}

impl Iterator for Walk<'_> {
    type Item = Result<FileEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(start) = self.start.take() {
            match self.image.read_dir_raw(&start) {
                Ok(children) => self.stack.push(children.into_iter()),
                Err(e) => return Some(Err(e)),
            }
        }
        loop {
            let children = self.stack.last_mut()?;
            let Some(entry) = children.next() else {
                self.stack.pop();
                continue;
            };
            if entry.kind == Kind::Dir {
                match self.image.read_dir_raw(entry.relative()) {
                    Ok(sub) => self.stack.push(sub.into_iter()),
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(Ok(entry));
        }
    }
}
