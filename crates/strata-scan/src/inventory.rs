//! Everything an SBOM lists, with the layer each package came from: [`ScanImage::inventory`].
//!
//! OS packages come from the package databases (dpkg, apk, rpm's sqlite), each attributed to the layer
//! whose copy of the database first lists that name, architecture and version: every layer that changes a
//! database file is read as the merged view up to that layer shows the file. Language packages (Python's
//! `*.dist-info`/`*.egg-info`, npm's `node_modules/**/package.json`, Go's module build information in ELF
//! executables) are found by one walk of the merged tree and attributed to the layer of their file.
//!
//! With `files`, each OS package also lists the regular files it owns that the image has (from its
//! database's file list: rpm's header, dpkg's md5sums and conffiles, apk's entries), each with the SHA-1
//! and SHA-256 of the bytes the image holds — read through the merged view — and the digest the database
//! records. Not yet: language packages removed by the layers above a base (only OS packages are listed
//! as removed).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use strata_index::EntryKind;

use crate::image::{Error, FileEntry, Kind, MAX_DATABASE_SIZE, Result, ScanImage};
use crate::os::OsInfo;
use crate::packages::golang::read_go_buildinfo;
use crate::packages::lang::{
    LangMetadata, parse_debian_copyright, parse_package_json, parse_python_metadata,
};
use crate::packages::{Manager, Package, PackageError, parse_apk_installed, parse_dpkg_status};

/// The largest language metadata file (METADATA, PKG-INFO, package.json, a copyright file) read.
pub const MAX_METADATA_SIZE: u64 = 4 << 20;

/// Where a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// A Debian package (dpkg).
    Deb,
    /// An rpm package.
    Rpm,
    /// An Alpine package (apk).
    Apk,
    /// A Python distribution (`*.dist-info`, `*.egg-info`).
    Python,
    /// An npm package (`node_modules/**/package.json`).
    Npm,
    /// A Go module compiled into a binary.
    Go,
}

impl Ecosystem {
    /// The ecosystem of an OS package manager's packages.
    pub fn of(manager: Manager) -> Ecosystem {
        match manager {
            Manager::Dpkg => Ecosystem::Deb,
            Manager::Rpm => Ecosystem::Rpm,
            Manager::Apk => Ecosystem::Apk,
        }
    }

    /// Whether it is an OS package manager's.
    pub fn is_os(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Rpm | Ecosystem::Apk)
    }
}

/// One package of an image, with where it was found and the layer that brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryPackage {
    /// The name (`libc6`, `requests`, `@types/node`, `github.com/spf13/cobra`).
    pub name: String,
    /// The version as its ecosystem writes it (dpkg and rpm with their `EPOCH:` prefix).
    pub version: String,
    /// The architecture, when recorded (OS packages).
    pub architecture: String,
    /// The source package, when recorded (dpkg `Source`, rpm source rpm, apk origin).
    pub source: String,
    /// The licences it declares (apk `L:`, rpm `LICENSE`, the `License:` fields of a dpkg package's
    /// machine-readable copyright file, Python and npm metadata), as written there.
    pub licenses: Vec<String>,
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The file it was found in (the package database, a METADATA file, a package.json, a binary).
    pub path: String,
    /// The layer that introduced it (0 = bottom); for a removed package, the layer that removed it.
    pub layer: usize,
    /// With a base: the version the base had when the layers above changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// The regular files it owns that the image has (OS packages, when asked for): in its database's
    /// order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<OwnedFile>,
}

/// A regular file an OS package owns, as the image has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedFile {
    /// The absolute path.
    pub path: String,
    /// The SHA-1 of its bytes in the image, lowercase hex.
    pub sha1: String,
    /// The SHA-256 of its bytes in the image, lowercase hex.
    pub sha256: String,
    /// The digest the package database records for it, when it records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<crate::packages::FileDigest>,
}

/// One layer, as an inventory names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerRef {
    /// Its position, 0 = bottom.
    pub index: usize,
    /// The blob's digest.
    pub digest: String,
    /// The uncompressed tar's digest (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
}

/// An image's packages with their layers: [`ScanImage::inventory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// The distribution, when the image says.
    pub os: Option<OsInfo>,
    /// The image's layers, bottom first.
    pub layers: Vec<LayerRef>,
    /// How many bottom layers are the base (0: no base; every package is listed).
    pub base_layers: usize,
    /// The packages: OS packages in their databases' order, then language packages in path order. With a
    /// base, only those the layers above it added or changed.
    pub packages: Vec<InventoryPackage>,
    /// With a base: the OS and language packages the base had that the layers above it removed.
    pub removed: Vec<InventoryPackage>,
}

/// The package databases whose history is followed, as literal paths (no symlink is followed).
const DATABASES: [(&str, Manager); 4] = [
    ("var/lib/dpkg/status", Manager::Dpkg),
    ("lib/apk/db/installed", Manager::Apk),
    ("var/lib/rpm/rpmdb.sqlite", Manager::Rpm),
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", Manager::Rpm),
];

const RPM_VAR: &str = "/var/lib/rpm/rpmdb.sqlite";
const RPM_SYSIMAGE: &str = "/usr/lib/sysimage/rpm/rpmdb.sqlite";

/// (ecosystem, name, architecture): a package slot, whatever its version.
type Slot = (Ecosystem, String, String);

fn slot(p: &Package) -> Slot {
    (
        Ecosystem::of(p.manager),
        p.name.clone(),
        p.architecture.clone(),
    )
}

/// What the layers did to the OS packages.
#[derive(Default)]
struct History {
    /// (slot, version) → the layer that first listed it (in its current run of presence).
    introduced: HashMap<(Slot, String), usize>,
    /// The packages as of the top of the base.
    at_base: Vec<Package>,
    /// slot → the last layer that removed it.
    removed_at: HashMap<Slot, usize>,
}

impl ScanImage {
    /// The layers, bottom first.
    pub fn layer_refs(&self) -> Vec<LayerRef> {
        self.view()
            .merged()
            .layers()
            .iter()
            .enumerate()
            .map(|(index, l)| LayerRef {
                index,
                digest: l.layer().blob_digest.clone(),
                diff_id: l.layer().diff_id.clone(),
            })
            .collect()
    }

    /// Every package of the image (OS and language packages) with the layer that introduced it. With
    /// `base_layers` > 0, only what the layers above the bottom `base_layers` added or changed, and in
    /// [`Inventory::removed`] the OS and language packages they removed. An image without a package database has no
    /// OS packages; an unreadable one is an error.
    pub fn inventory(&self, base_layers: usize, files: bool) -> Result<Inventory> {
        let layers = self.layer_refs();
        let base_layers = base_layers.min(layers.len());
        let history = self.package_history(base_layers)?;
        let os_packages = match self.packages() {
            Ok(p) => p,
            Err(Error::Packages(PackageError::NoDatabase { .. })) => Vec::new(),
            Err(e) => return Err(e),
        };
        let distroless = self.distroless_layers()?;
        let rpm_path = if self.resolve(RPM_SYSIMAGE, true)?.is_some()
            && self.resolve(RPM_VAR, true)?.is_none()
        {
            RPM_SYSIMAGE
        } else {
            RPM_VAR
        };
        let path_of = |manager: Manager| match manager {
            Manager::Dpkg => "/var/lib/dpkg/status",
            Manager::Apk => "/lib/apk/db/installed",
            Manager::Rpm => rpm_path,
        };
        let mut packages = Vec::new();
        for p in &os_packages {
            let key = (slot(p), p.version.clone());
            let layer = history
                .introduced
                .get(&key)
                .or_else(|| distroless.get(&key))
                .copied()
                .unwrap_or(0);
            let licenses = if p.manager == Manager::Dpkg {
                self.debian_licenses(&p.name)
            } else if p.license.is_empty() {
                Vec::new()
            } else {
                vec![p.license.clone()]
            };
            packages.push(InventoryPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                source: p.source.clone(),
                licenses,
                ecosystem: Ecosystem::of(p.manager),
                path: path_of(p.manager).to_owned(),
                layer,
                previous_version: None,
                files: Vec::new(),
            });
        }
        if files {
            for (i, file) in self.owned_files(&os_packages)? {
                if let Some(package) = packages.get_mut(i) {
                    package.files.push(file);
                }
            }
        }
        let languages = self.language_packages()?;
        let lang_slot =
            |p: &InventoryPackage| (p.ecosystem, p.name.clone(), p.architecture.clone());
        let mut now: std::collections::HashSet<Slot> = os_packages.iter().map(slot).collect();
        now.extend(languages.iter().map(lang_slot));
        packages.extend(languages);
        let mut removed = Vec::new();
        if base_layers > 0 {
            // The base's language packages, from the tree its own layers show.
            let base_languages = self.bottom(base_layers).language_packages()?;
            let mut base_versions: HashMap<Slot, &str> = history
                .at_base
                .iter()
                .map(|p| (slot(p), p.version.as_str()))
                .collect();
            for p in &base_languages {
                base_versions
                    .entry(lang_slot(p))
                    .or_insert(p.version.as_str());
            }
            packages.retain(|p| p.layer >= base_layers);
            for p in &mut packages {
                let s = (p.ecosystem, p.name.clone(), p.architecture.clone());
                if let Some(v) = base_versions.get(&s)
                    && *v != p.version
                {
                    p.previous_version = Some((*v).to_owned());
                }
            }
            for p in &history.at_base {
                let s = slot(p);
                if now.contains(&s) {
                    continue;
                }
                removed.push(InventoryPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    architecture: p.architecture.clone(),
                    source: p.source.clone(),
                    licenses: if p.license.is_empty() {
                        Vec::new()
                    } else {
                        vec![p.license.clone()]
                    },
                    ecosystem: Ecosystem::of(p.manager),
                    path: path_of(p.manager).to_owned(),
                    layer: history.removed_at.get(&s).copied().unwrap_or(base_layers),
                    previous_version: None,
                    files: Vec::new(),
                });
            }
            // A base's language package is removed when no package of its name is left; its layer is the
            // first above the base where its metadata (or executable) is gone.
            let mut gone: std::collections::HashSet<Slot> = std::collections::HashSet::new();
            for mut p in base_languages {
                let s = lang_slot(&p);
                if now.contains(&s) || !gone.insert(s) {
                    continue;
                }
                p.layer = self.removed_by(p.path.as_bytes(), base_layers)?;
                removed.push(p);
            }
        }
        Ok(Inventory {
            os: self.os()?,
            layers,
            base_layers,
            packages,
            removed,
        })
    }

    /// The first layer from `from` on whose merged view no longer has `path`: the layer that removed it
    /// (`from` if it is still there, replaced by something no longer read as a package).
    fn removed_by(&self, path: &[u8], from: usize) -> Result<usize> {
        let merged = self.view().merged();
        let rel = path.strip_prefix(b"/").unwrap_or(path);
        for layer in from..merged.layers().len() {
            if merged.lookup_below(rel, layer)?.is_none() {
                return Ok(layer);
            }
        }
        Ok(from)
    }

    /// The regular files each of `packages` owns that the image holds, with their digests: (the package's
    /// index, the file), each package's in its database's order. The files are hashed in the order their
    /// bytes lie in the layers (one pass through each layer, not a jump per file); the databases' lists
    /// are streamed, only the files the image holds kept.
    fn owned_files(&self, packages: &[Package]) -> Result<Vec<(usize, OwnedFile)>> {
        struct Found {
            package: usize,
            file: crate::packages::PackagedFile,
            entry: FileEntry,
            at: (usize, u64),
        }
        let mut found = Vec::new();
        self.each_installed_file(packages, |package, file| {
            let Some(entry) = self.resolve(file.path.as_bytes(), false)? else {
                return Ok(());
            };
            if entry.kind != Kind::File {
                return Ok(());
            }
            if let Some(at) = self.data_position(&entry)? {
                found.push(Found {
                    package,
                    file,
                    entry,
                    at,
                });
            }
            Ok(())
        })?;
        let mut order: Vec<usize> = (0..found.len()).collect();
        order.sort_by_key(|&i| found.get(i).map(|f| f.at));
        let mut digests = vec![None; found.len()];
        for i in order {
            if let (Some(f), Some(slot)) = (found.get(i), digests.get_mut(i)) {
                *slot = Some(self.sha1_and_sha256(&f.entry)?);
            }
        }
        Ok(found
            .into_iter()
            .zip(digests)
            .filter_map(|(f, digest)| {
                let (sha1, sha256) = digest?;
                Some((
                    f.package,
                    OwnedFile {
                        path: f.file.path,
                        sha1,
                        sha256,
                        recorded: f.file.digest,
                    },
                ))
            })
            .collect())
    }

    /// Follows each package database through the layers: every layer whose own tar changes the database
    /// file (adds, replaces or deletes it) is a new snapshot of it.
    fn package_history(&self, base_layers: usize) -> Result<History> {
        let merged = self.view().merged();
        let count = merged.layers().len();
        let mut history = History::default();
        // The current packages of each database, keyed by slot and version.
        let mut current: Vec<BTreeMap<(Slot, String), Package>> =
            vec![BTreeMap::new(); DATABASES.len()];
        for layer in 0..count {
            for (db, (path, manager)) in DATABASES.iter().enumerate() {
                let Some(state) = current.get_mut(db) else {
                    continue;
                };
                let snapshot = match merged.lookup_below(path.as_bytes(), layer)? {
                    Some((l, entry)) if l == layer => {
                        if !matches!(entry.kind(), EntryKind::File | EntryKind::Hardlink) {
                            continue;
                        }
                        let bytes = self.read_entry(layer, entry, path)?;
                        match manager {
                            Manager::Dpkg => parse_dpkg_status(&String::from_utf8_lossy(&bytes)),
                            Manager::Apk => parse_apk_installed(&String::from_utf8_lossy(&bytes)),
                            Manager::Rpm => self.rpm_sqlite(&format!("/{path}"), &bytes)?,
                        }
                    }
                    None if !state.is_empty() => Vec::new(),
                    _ => continue,
                };
                let next: BTreeMap<(Slot, String), Package> = snapshot
                    .into_iter()
                    .map(|p| ((slot(&p), p.version.clone()), p))
                    .collect();
                for key in state.keys() {
                    if !next.contains_key(key) {
                        history.introduced.remove(key);
                        if !next.keys().any(|(s, _)| *s == key.0) {
                            history.removed_at.insert(key.0.clone(), layer);
                        }
                    }
                }
                for key in next.keys() {
                    history.introduced.entry(key.clone()).or_insert(layer);
                }
                *state = next;
            }
            if layer + 1 == base_layers {
                history.at_base = current.iter().flat_map(|s| s.values().cloned()).collect();
            }
        }
        Ok(history)
    }

    /// The whole content of the file at (`layer`, `entry`), at most [`MAX_DATABASE_SIZE`] bytes.
    fn read_entry(
        &self,
        layer: usize,
        entry: strata_index::EntryRef<'_>,
        path: &str,
    ) -> Result<Vec<u8>> {
        let (layer, data) = self.view().data_entry(layer, entry)?;
        if data.size() > MAX_DATABASE_SIZE {
            return Err(PackageError::Malformed {
                path: format!("/{path}"),
                reason: format!(
                    "{} bytes in layer {layer}, over the {MAX_DATABASE_SIZE}-byte limit",
                    data.size()
                ),
            }
            .into());
        }
        let mut out = vec![0u8; usize::try_from(data.size()).unwrap_or(0)];
        self.view().read_at(layer, data, 0, &mut out)?;
        Ok(out)
    }

    /// Distroless dpkg (`/var/lib/dpkg/status.d/NAME`, one file per package): each package's layer is its
    /// file's.
    fn distroless_layers(&self) -> Result<HashMap<(Slot, String), usize>> {
        let mut out = HashMap::new();
        if let Some(dir) = self.resolve("/var/lib/dpkg/status.d", true)?
            && dir.kind == Kind::Dir
        {
            for entry in self.read_dir(&dir.path)? {
                if entry.kind != Kind::File || entry.path.ends_with(b".md5sums") {
                    continue;
                }
                if let Some(bytes) = self.read(&entry.path, MAX_DATABASE_SIZE)? {
                    for p in parse_dpkg_status(&String::from_utf8_lossy(&bytes)) {
                        out.insert((slot(&p), p.version.clone()), entry.layer);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The licences `/usr/share/doc/NAME/copyright` names, when it is machine-readable (symlinks followed;
    /// an unreadable or oversized file names none).
    fn debian_licenses(&self, name: &str) -> Vec<String> {
        match self.read_resolved(
            format!("/usr/share/doc/{name}/copyright"),
            MAX_METADATA_SIZE,
        ) {
            Ok(Some(bytes)) => parse_debian_copyright(&String::from_utf8_lossy(&bytes)),
            _ => Vec::new(),
        }
    }

    /// Python, npm and Go packages, from one walk of the merged tree.
    fn language_packages(&self) -> Result<Vec<InventoryPackage>> {
        let mut out = Vec::new();
        for entry in self.entries() {
            let entry = entry?;
            if entry.kind != Kind::File {
                continue;
            }
            let path = entry.path.as_slice();
            let name = entry.name();
            let python = path.ends_with(b".dist-info/METADATA")
                || path.ends_with(b".egg-info/PKG-INFO")
                || name.ends_with(b".egg-info");
            if python {
                if let Some(m) = self.metadata(&entry, parse_python_metadata)? {
                    out.push(lang_package(m, Ecosystem::Python, &entry));
                }
                continue;
            }
            if name == b"package.json" && in_node_modules(path) {
                if let Some(m) = self.metadata(&entry, |t| parse_package_json(t.as_bytes()))? {
                    out.push(lang_package(m, Ecosystem::Npm, &entry));
                }
                continue;
            }
            if entry.mode & 0o111 != 0 && entry.size >= 64 {
                out.extend(self.go_packages(&entry)?);
            }
        }
        Ok(out)
    }

    fn metadata(
        &self,
        entry: &FileEntry,
        parse: impl Fn(&str) -> Option<LangMetadata>,
    ) -> Result<Option<LangMetadata>> {
        if entry.size > MAX_METADATA_SIZE {
            return Ok(None);
        }
        Ok(self
            .read(&entry.path, MAX_METADATA_SIZE)?
            .and_then(|bytes| parse(&String::from_utf8_lossy(&bytes))))
    }

    /// The Go modules of an executable: its main module (or, for a binary built outside module mode,
    /// its main package's path at version `(devel)`) and dependencies, and the Go standard library
    /// (`stdlib`, at the toolchain's version).
    fn go_packages(&self, entry: &FileEntry) -> Result<Vec<InventoryPackage>> {
        let merged = self.view().merged();
        let Some((layer, e)) = merged.lookup(entry.relative())? else {
            return Ok(Vec::new());
        };
        let view = self.view();
        let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            view.read_at(layer, e, offset, buf)
                .map_err(|err| std::io::Error::other(err.to_string()))
        };
        let info = read_go_buildinfo(&mut read).map_err(|source| Error::Io {
            what: format!("reading {}", entry.path_lossy()),
            source,
        })?;
        let Some(info) = info else {
            return Ok(Vec::new());
        };
        let path = entry.path_lossy().into_owned();
        let package = |name: &str, version: &str| InventoryPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: String::new(),
            source: String::new(),
            licenses: Vec::new(),
            ecosystem: Ecosystem::Go,
            path: path.clone(),
            layer: entry.layer,
            previous_version: None,
            files: Vec::new(),
        };
        let mut out = Vec::new();
        match &info.main {
            Some(main) if !main.path.is_empty() => out.push(package(&main.path, &main.version)),
            // Built outside module mode (GOPATH, as Debian builds Go): no `mod` line, only the main
            // package's path, with no version recorded.
            _ if !info.path.is_empty() => out.push(package(&info.path, "(devel)")),
            _ => {}
        }
        for dep in &info.deps {
            out.push(package(&dep.path, &dep.version));
        }
        out.push(package("stdlib", &info.go_version));
        Ok(out)
    }
}

fn lang_package(m: LangMetadata, ecosystem: Ecosystem, entry: &FileEntry) -> InventoryPackage {
    InventoryPackage {
        name: m.name,
        version: m.version,
        architecture: String::new(),
        source: String::new(),
        licenses: m.licenses,
        ecosystem,
        path: entry.path_lossy().into_owned(),
        layer: entry.layer,
        previous_version: None,
        files: Vec::new(),
    }
}

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn in_node_modules(path: &[u8]) -> bool {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let n = parts.len();
    let at = |i: usize| n.checked_sub(i).and_then(|j| parts.get(j)).copied();
    match (at(2), at(3), at(4)) {
        (Some(pkg), Some(b"node_modules"), _) => !pkg.starts_with(b"@") && !pkg.starts_with(b"."),
        (Some(_), Some(scope), Some(b"node_modules")) => scope.starts_with(b"@"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_modules_paths() {
        assert!(in_node_modules(b"/app/node_modules/lodash/package.json"));
        assert!(in_node_modules(
            b"/app/node_modules/@types/node/package.json"
        ));
        assert!(in_node_modules(
            b"/a/node_modules/x/node_modules/y/package.json"
        ));
        assert!(!in_node_modules(b"/app/package.json"));
        assert!(!in_node_modules(b"/app/node_modules/@types/package.json"));
        assert!(!in_node_modules(b"/app/node_modules/x/lib/package.json"));
        assert!(!in_node_modules(b"/app/node_modules/.bin/package.json"));
    }
}
