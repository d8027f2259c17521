//! An image opened for scanning: its merged tree, file contents, distribution, packages and checks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use serde::Serialize;
use strata_index::{EntryKind, EntryRef};
use strata_layer::ImageView;
use strata_oci::Platform;
use strata_source::ImageSource;

use crate::check::{Assessment, CheckInput, assess};
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

/// One entry of the merged tree, as a scanner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The path, absolute (`/etc/passwd`), lossily UTF-8 for display; see `raw_path` for the bytes.
    pub path: String,
    /// The path's bytes, relative (no leading `/`).
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
    /// The layer it comes from (0 = bottom).
    pub layer: usize,
}

fn to_file_entry(path: &[u8], layer: usize, e: &EntryRef<'_>) -> FileEntry {
    let kind = match e.kind() {
        EntryKind::Dir => Kind::Dir,
        EntryKind::Symlink => Kind::Symlink,
        EntryKind::CharDevice => Kind::Char,
        EntryKind::BlockDevice => Kind::Block,
        EntryKind::Fifo => Kind::Fifo,
        _ => Kind::File,
    };
    let hardlink = e.kind() == EntryKind::Hardlink;
    FileEntry {
        path: format!("/{}", String::from_utf8_lossy(path)),
        raw_path: path.to_vec(),
        kind,
        mode: e.mode(),
        uid: e.uid(),
        gid: e.gid(),
        size: e.size(),
        mtime: e.mtime(),
        link: if hardlink {
            format!("/{}", String::from_utf8_lossy(e.link()))
        } else {
            String::from_utf8_lossy(e.link()).into_owned()
        },
        hardlink,
        layer,
    }
}

/// `/a/b/` → `a/b`: the relative form the index uses.
fn relative(path: &str) -> Vec<u8> {
    path.trim_matches('/').as_bytes().to_vec()
}

/// An image opened for scanning.
pub struct ScanImage {
    view: ImageView,
    name: String,
}

impl ScanImage {
    /// Opens image `name` (any transport `strata_source::open` knows) for `platform`: every layer is read,
    /// verified and indexed (in memory); nothing is unpacked.
    pub fn open(name: &str, platform: &Platform) -> Result<ScanImage> {
        let source: Arc<dyn ImageSource> = Arc::from(strata_source::open(name)?);
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

    /// The underlying view.
    pub fn view(&self) -> &ImageView {
        &self.view
    }

    /// Every entry of the merged tree, parents before children, names sorted.
    pub fn entries(&self) -> impl Iterator<Item = Result<FileEntry>> + '_ {
        self.view.merged().walk().map(|item| {
            let (path, m) = item?;
            Ok(to_file_entry(&path, m.layer, &m.entry))
        })
    }

    /// The entry at `path` (absolute or relative), if any.
    pub fn stat(&self, path: &str) -> Result<Option<FileEntry>> {
        let rel = relative(path);
        if rel.is_empty() {
            return Ok(Some(FileEntry {
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
                layer: 0,
            }));
        }
        Ok(self
            .view
            .merged()
            .lookup(&rel)?
            .map(|(layer, e)| to_file_entry(&rel, layer, &e)))
    }

    /// The entries of directory `path`, sorted by name.
    pub fn read_dir(&self, path: &str) -> Result<Vec<FileEntry>> {
        let rel = relative(path);
        let mut out = Vec::new();
        for m in self.view.merged().readdir(&rel)? {
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(m.entry.name());
            out.push(to_file_entry(&child, m.layer, &m.entry));
        }
        Ok(out)
    }

    /// The content of the regular file at `path` (hardlinks followed; symlinks are not), refused when larger
    /// than `limit`. `Ok(None)` when there is no such entry.
    pub fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.view.read_file(&relative(path), limit)?)
    }

    /// Writes the content of the regular file at `path` to `out` in chunks, never holding it whole.
    pub fn copy_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<Option<u64>> {
        let rel = relative(path);
        let Some((layer, entry)) = self.view.merged().lookup(&rel)? else {
            return Ok(None);
        };
        let (layer, entry) = self.view.data_entry(layer, entry)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0u64;
        while offset < entry.size() {
            let n = self.view.read_at(layer, entry, offset, &mut buf)?;
            out.write_all(&buf[..n])
                .map_err(|source| strata_layer::Error::Io {
                    path: path.into(),
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
            if let Some(bytes) = self.read_following(path)? {
                let info = parse(&String::from_utf8_lossy(&bytes), path);
                if !info.id.is_empty() {
                    return Ok(Some(info));
                }
            }
        }
        Ok(None)
    }

    /// Reads `path`, following symlinks inside the image (at most 16), or `None`.
    fn read_following(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let mut current = path.to_owned();
        for _ in 0..16 {
            let Some(entry) = self.stat(&current)? else {
                return Ok(None);
            };
            match entry.kind {
                Kind::Symlink => {
                    current = if entry.link.starts_with('/') {
                        entry.link.clone()
                    } else {
                        let parent = current.rsplit_once('/').map_or("", |(p, _)| p);
                        format!("{parent}/{}", entry.link)
                    };
                    current = normalise_abs(&current);
                }
                Kind::File => return self.read(&current, MAX_DATABASE_SIZE),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The installed packages, from whichever databases the image has: dpkg (`status` and distroless
    /// `status.d/`), apk, rpm (`rpmdb.sqlite`). A BerkeleyDB rpm database is reported as unsupported; an
    /// image with no database at all gives [`PackageError::Unsupported`] too.
    pub fn packages(&self) -> Result<Vec<Package>> {
        let mut out = Vec::new();
        let mut found = false;
        if let Some(status) = self.read_following("/var/lib/dpkg/status")? {
            found = true;
            out.extend(parse_dpkg_status(&String::from_utf8_lossy(&status)));
        }
        if matches!(self.stat("/var/lib/dpkg/status.d")?, Some(e) if e.kind == Kind::Dir) {
            found = true;
            for entry in self.read_dir("/var/lib/dpkg/status.d")? {
                if entry.kind == Kind::File
                    && !entry.path.ends_with(".md5sums")
                    && let Some(bytes) = self.read(&entry.path, MAX_DATABASE_SIZE)?
                {
                    out.extend(parse_dpkg_status(&String::from_utf8_lossy(&bytes)));
                }
            }
        }
        if let Some(installed) = self.read_following("/lib/apk/db/installed")? {
            found = true;
            out.extend(parse_apk_installed(&String::from_utf8_lossy(&installed)));
        }
        for db in [
            "/var/lib/rpm/rpmdb.sqlite",
            "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        ] {
            if let Some(bytes) = self.read_following(db)? {
                found = true;
                out.extend(self.rpm_sqlite(db, &bytes)?);
                break;
            }
        }
        if !found {
            for db in ["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"] {
                if let Some(bytes) = self.read_following(db)? {
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
            return Err(PackageError::Unsupported {
                path: self.name.clone(),
                reason: "no package database (dpkg, apk or rpm) found".to_owned(),
            }
            .into());
        }
        Ok(out)
    }

    fn rpm_sqlite(&self, path: &str, bytes: &[u8]) -> Result<Vec<Package>> {
        // sqlite reads files: hand it a private copy.
        let malformed = |reason: String| PackageError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let mut tmp = tempfile::NamedTempFile::new().map_err(|e| malformed(e.to_string()))?;
        tmp.write_all(bytes).map_err(|e| malformed(e.to_string()))?;
        Ok(parse_rpm_sqlite(tmp.path(), path)?)
    }

    /// The certification assessments for this image.
    pub fn check(&self) -> Result<Vec<Assessment>> {
        let config = &self.view.image().config.oci;
        let inner = config.config().as_ref();
        let labels: BTreeMap<String, String> = inner
            .and_then(|c| c.labels().as_ref())
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let license_files = match self.stat("/licenses")? {
            Some(e) if e.kind == Kind::Dir => {
                let mut files = Vec::new();
                for entry in self.entries() {
                    let entry = entry?;
                    if entry.path.starts_with("/licenses/") && entry.kind == Kind::File {
                        files.push(entry.path);
                    }
                }
                Some(files)
            }
            _ => None,
        };
        let input = CheckInput {
            user: inner.and_then(|c| c.user().clone()),
            labels,
            layer_count: self.view.image().manifest.layers().len(),
            license_files,
            os: self.os()?,
            packages: self.packages().map(|p| p.len()).map_err(|e| e.to_string()),
        };
        Ok(assess(&input))
    }
}

/// Normalises an absolute path lexically (`..` stops at `/`).
fn normalise_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}
