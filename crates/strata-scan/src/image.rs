//! An image opened for scanning: its merged tree, file contents, distribution, packages and checks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use serde::Serialize;
use strata_index::{EntryKind, EntryRef};
use strata_layer::ImageView;
use strata_oci::Platform;
use strata_source::{ImageSource, SourceOptions};

use crate::check::{Assessment, CheckInput, CheckReport, assess};
use crate::os::{OsInfo, parse_alpine_release, parse_os_release, parse_redhat_release};
use crate::packages::{
    Package, PackageError, is_berkeley_db, parse_apk_installed, parse_dpkg_status, parse_rpm_sqlite,
};

/// Errors of the scanner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image could not be opened or resolved.
    #[error(transparent)]
    Source(#[from] strata_source::Error),
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The path, absolute (`/etc/passwd`), lossily UTF-8 for display; see `raw_path` for the bytes.
    pub path: String,
    /// The path's bytes, relative (no leading `/`; empty for the root).
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size of a regular file's content.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Symlink target; for a hardlink, the path it links to (absolute).
    pub link: String,
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
            path: "/".into(),
            raw_path: Vec::new(),
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: String::new(),
            hardlink: false,
            device: (0, 0),
            layer: 0,
        }
    }

    /// The last component of the path (`/` for the root), lossily UTF-8.
    pub fn name(&self) -> &str {
        match self.path.rsplit_once('/') {
            Some((_, "")) | None => "/",
            Some((_, name)) => name,
        }
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

/// `a/b` → `/a/b`, lossily UTF-8.
pub(crate) fn display_path(rel: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(rel))
}

/// `/a/b/` → `a/b`: the relative form the index uses.
fn relative(path: &str) -> Vec<u8> {
    path.trim_matches('/').as_bytes().to_vec()
}

/// How many symbolic links one path resolution follows before giving up (Linux's limit).
pub const MAX_SYMLINKS: usize = 40;

/// An image opened for scanning.
pub struct ScanImage {
    view: ImageView,
    name: String,
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
    /// Opens image `name` (any transport `strata_source::open` knows) for `platform`: every layer is read,
    /// verified and indexed (in memory); nothing is unpacked.
    pub fn open(name: &str, platform: &Platform) -> Result<ScanImage> {
        ScanImage::open_with(name, &SourceOptions::default(), platform)
    }

    /// [`ScanImage::open`] with source options (registry credentials, TLS, timeouts).
    pub fn open_with(
        name: &str,
        options: &SourceOptions,
        platform: &Platform,
    ) -> Result<ScanImage> {
        let source: Arc<dyn ImageSource> = Arc::from(strata_source::open_with(name, options)?);
        ScanImage::from_source(name, source, platform)
    }

    /// Opens the image `source` designates for `platform`; `name` is used in messages.
    pub fn from_source(
        name: &str,
        source: Arc<dyn ImageSource>,
        platform: &Platform,
    ) -> Result<ScanImage> {
        Ok(ScanImage::from_view(
            name,
            ImageView::open(source, platform)?,
        ))
    }

    /// A scanner over a view opened elsewhere (e.g. from a store's indexes).
    pub fn from_view(name: &str, view: ImageView) -> ScanImage {
        ScanImage {
            view,
            name: name.to_owned(),
        }
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
            path: display_path(path),
            raw_path: path.to_vec(),
            kind,
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime: meta.mtime(),
            link: if hardlink {
                display_path(e.link())
            } else {
                String::from_utf8_lossy(e.link()).into_owned()
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
            start: Some(dir.raw_path.clone()),
        }
    }

    /// The entry at `path` (absolute or relative; the root included), if any. Symlinks are not followed,
    /// not even in the path's directories: see [`ScanImage::resolve`].
    pub fn stat(&self, path: &str) -> Result<Option<FileEntry>> {
        self.stat_raw(&relative(path))
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

    /// The entry `path` designates when symlinks are followed inside the image, as the kernel resolves a
    /// path in a chroot: symlinks in the directories of the path are always followed, the last component's
    /// only when `follow` is true (or the path ends with `/`); absolute targets start again at the image's
    /// root and `..` never climbs above it. The entry's `path` is the canonical one. `Ok(None)` when a
    /// component does not exist, a directory component is not a directory, or a followed link dangles;
    /// [`Error::SymlinkLoop`] after [`MAX_SYMLINKS`] links.
    pub fn resolve(&self, path: &str, follow: bool) -> Result<Option<FileEntry>> {
        self.resolve_raw(path.as_bytes(), follow || path.ends_with('/'))
    }

    fn resolve_raw(&self, path: &[u8], follow: bool) -> Result<Option<FileEntry>> {
        // Components still to walk, the next one last.
        let mut todo: Vec<Vec<u8>> = components(path).rev().map(<[u8]>::to_vec).collect();
        let mut done: Vec<u8> = Vec::new();
        let mut current = self.root()?;
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == b".." {
                done.truncate(done.iter().rposition(|&b| b == b'/').unwrap_or(0));
                current = match self.stat_raw(&done)? {
                    Some(e) => e,
                    None => return Ok(None),
                };
                continue;
            }
            if current.kind != Kind::Dir {
                return Ok(None);
            }
            let mut candidate = done.clone();
            if !candidate.is_empty() {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(&c);
            let Some(entry) = self.stat_raw(&candidate)? else {
                return Ok(None);
            };
            let last = todo.is_empty();
            if entry.kind == Kind::Symlink && (follow || !last) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop {
                        path: String::from_utf8_lossy(path).into_owned(),
                    });
                }
                let Some((_, e)) = self.view.merged().lookup(&candidate)? else {
                    return Ok(None);
                };
                let target = e.link();
                if target.starts_with(b"/") {
                    done.clear();
                    current = self.root()?;
                }
                todo.extend(components(target).rev().map(<[u8]>::to_vec));
                continue;
            }
            done = candidate;
            current = entry;
        }
        Ok(Some(current))
    }

    /// The entries of directory `path`, sorted by name. `path` is taken literally (see
    /// [`ScanImage::resolve`]); empty when it is not a directory.
    pub fn read_dir(&self, path: &str) -> Result<Vec<FileEntry>> {
        self.read_dir_raw(&relative(path))
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
    pub fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.view.read_file(&relative(path), limit)?)
    }

    /// Like [`ScanImage::read`], following symlinks inside the image (see [`ScanImage::resolve`]).
    /// `Ok(None)` when the path does not resolve to a regular file.
    pub fn read_resolved(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match self.resolve(path, true)? {
            Some(e) if e.kind == Kind::File => Ok(self.view.read_file(&e.raw_path, limit)?),
            _ => Ok(None),
        }
    }

    /// Writes the content of the regular file at `path` to `out` in chunks, never holding it whole.
    /// `Ok(None)` when there is no such entry; an error when it is not a regular file.
    pub fn copy_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<Option<u64>> {
        self.copy_raw(&relative(path), out)
    }

    /// [`ScanImage::copy_to`] for an entry found by [`ScanImage::entries`], [`ScanImage::resolve`] or
    /// [`ScanImage::read_dir`] (exact even for paths that are not UTF-8).
    pub fn copy_entry(
        &self,
        entry: &FileEntry,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>> {
        self.copy_raw(&entry.raw_path, out)
    }

    fn copy_raw(&self, rel: &[u8], out: &mut dyn std::io::Write) -> Result<Option<u64>> {
        let Some((layer, entry)) = self.view.merged().lookup(rel)? else {
            return Ok(None);
        };
        let (layer, entry) = self.view.data_entry(layer, entry)?;
        let mut buf = vec![0u8; 1 << 20];
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
        let mut out = Vec::new();
        let mut found = false;
        if let Some(status) = self.read_resolved("/var/lib/dpkg/status", MAX_DATABASE_SIZE)? {
            found = true;
            out.extend(parse_dpkg_status(&String::from_utf8_lossy(&status)));
        }
        if let Some(dir) = self.resolve("/var/lib/dpkg/status.d", true)?
            && dir.kind == Kind::Dir
        {
            found = true;
            for entry in self.read_dir_raw(&dir.raw_path)? {
                if entry.kind == Kind::File
                    && !entry.path.ends_with(".md5sums")
                    && let Some(bytes) = self.view.read_file(&entry.raw_path, MAX_DATABASE_SIZE)?
                {
                    out.extend(parse_dpkg_status(&String::from_utf8_lossy(&bytes)));
                }
            }
        }
        if let Some(installed) = self.read_resolved("/lib/apk/db/installed", MAX_DATABASE_SIZE)? {
            found = true;
            out.extend(parse_apk_installed(&String::from_utf8_lossy(&installed)));
        }
        for db in [
            "/var/lib/rpm/rpmdb.sqlite",
            "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        ] {
            if let Some(bytes) = self.read_resolved(db, MAX_DATABASE_SIZE)? {
                found = true;
                out.extend(self.rpm_sqlite(db, &bytes)?);
                break;
            }
        }
        if !found {
            for db in ["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"] {
                if let Some(bytes) = self.read_resolved(db, MAX_DATABASE_SIZE)? {
                    let reason = if is_berkeley_db(&bytes) {
                        "a BerkeleyDB rpm database (rpm < 4.16); strata reads only rpmdb.sqlite"
                    } else {
                        "an rpm database in a format strata does not read"
                    };
                    return Err(PackageError::Unsupported {
                        path: db.to_owned(),
                        reason: reason.to_owned(),
                    }
                    .into());
                }
            }
            return Err(PackageError::NoDatabase {
                image: self.name.clone(),
            }
            .into());
        }
        Ok(out)
    }

    fn rpm_sqlite(&self, path: &str, bytes: &[u8]) -> Result<Vec<Package>> {
        // sqlite reads files: hand it a private copy, in a private directory (it may add -wal and -shm
        // files next to it).
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
        Ok(parse_rpm_sqlite(&copy, path)?)
    }

    /// The certification assessments for this image.
    pub fn check(&self) -> Result<Vec<Assessment>> {
        Ok(self.check_report()?.assessments)
    }

    /// The certification assessments with the image's name, the overall verdict and the distribution: what
    /// `strata check --json` prints (docs/FORMAT.md, "JSON outputs").
    pub fn check_report(&self) -> Result<CheckReport> {
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
                        files.push(entry.path);
                    }
                }
                Some(files)
            }
            _ => None,
        };
        let os = self.os()?;
        let input = CheckInput {
            user: inner.and_then(|c| c.user().clone()),
            labels,
            layer_count: self.view.image().manifest.layers().len(),
            license_files,
            os: os.clone(),
            packages: self.packages().map(|p| p.len()).map_err(|e| e.to_string()),
        };
        let assessments = assess(&input);
        Ok(CheckReport {
            image: self.name.clone(),
            passed: assessments.iter().all(|a| a.passed),
            assessments,
            distribution: os,
        })
    }
}

/// The path's components, `.` and empty ones dropped (`..` kept).
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
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
                match self.image.read_dir_raw(&entry.raw_path) {
                    Ok(sub) => self.stack.push(sub.into_iter()),
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(Ok(entry));
        }
    }
}
