//! Package verification through the merged view: every file of every installed package checked against
//! what the package database records, as `rpm -Va` and `dpkg --verify` check them, nothing unpacked.
//!
//! - **rpm** (`rpmdb.sqlite`): each file's state, flags and verify flags decide what is compared, as rpm's
//!   `lib/verify.c` decides it: files not installed or on a shared network file system are skipped; a
//!   replaced file is only looked for; a missing `%ghost` or `%config(missingok)` file is not a failure;
//!   content, size and mtime are compared for regular files only, never for `%ghost`; a symlink's target
//!   is compared instead of its mode; the mode includes the file type (not for `%ghost`); an mtime difference
//!   of a file more than one installed package owns is not reported. Owners and groups
//!   are compared by number, the recorded names looked up in the image's `/etc/passwd` and `/etc/group`
//!   (`root` is always 0; a name the image does not know counts as 0, as rpm counts it). Capabilities (`P`)
//!   are not compared. Results use rpm's letters (`S M 5 D L U G T P`, `.` for a match) or `missing`.
//! - **dpkg**: `info/<package>[:arch].md5sums` and the conffiles of the status `Conffiles:` field, each file
//!   (symlinks followed inside the image) hashed with MD5, as `dpkg --verify`: `??5??????` for a digest
//!   mismatch, `missing` for a file that is not there; conffiles are marked `c`.
//! - **apk**: the `Z:Q1…` SHA-1 of each file in `/lib/apk/db/installed` (for a symlink, of its target);
//!   results are written the dpkg way.

use std::collections::HashMap;

use serde::Serialize;

use crate::FileEntry as Entry;
use crate::image::{Kind, MAX_DATABASE_SIZE, Result, ScanImage};
use crate::packages::{
    DigestAlgorithm, FILE_GHOST, FILE_MISSINGOK, Manager, Package, PackageError, PackagedFile,
    STATE_NETSHARED, STATE_NOT_INSTALLED, STATE_REPLACED, STATE_WRONG_COLOR, dpkg_md5sums,
    parse_apk_files, parse_dpkg_conffiles, parse_dpkg_status,
};

/// rpm's verify flags (`FILEVERIFYFLAGS` bits).
const V_DIGEST: u32 = 1 << 0;
const V_SIZE: u32 = 1 << 1;
const V_LINKTO: u32 = 1 << 2;
const V_USER: u32 = 1 << 3;
const V_GROUP: u32 = 1 << 4;
const V_MTIME: u32 = 1 << 5;
const V_MODE: u32 = 1 << 6;
const V_RDEV: u32 = 1 << 7;
const V_CAPS: u32 = 1 << 8;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFIFO: u32 = 0o010_000;

/// dpkg's status file and info directory.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_INFO: &str = "/var/lib/dpkg/info";
/// apk's installed database.
const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// One file that does not match its package database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyFailure {
    /// The package manager whose database records the file.
    pub manager: Manager,
    /// The package's name (dpkg: `name:arch` for a `Multi-Arch: same` package).
    pub package: String,
    /// The file's absolute path.
    pub path: String,
    /// What differs, as the manager's own verify prints it: rpm's nine letters `SM5DLUGTP` with `.` for a
    /// match (e.g. `S.5....T.`), dpkg's `??5??????` (apk results are written the same way), or `missing`.
    pub result: String,
    /// Whether the file is not there at all.
    pub missing: bool,
    /// The attribute marker (`c` for a configuration file, `d` doc, `g` ghost, …; a space for none).
    pub marker: char,
}

impl VerifyFailure {
    /// The line `rpm -V` (for rpm) or `dpkg --verify` (dpkg, apk) prints for it.
    pub fn line(&self) -> String {
        match (self.manager, self.missing) {
            (Manager::Rpm, true) => format!("missing   {} {}", self.marker, self.path),
            (Manager::Rpm, false) => format!("{}  {} {}", self.result, self.marker, self.path),
            (_, true) => format!("missing   {} {}", self.marker, self.path),
            (_, false) => format!("{} {} {}", self.result, self.marker, self.path),
        }
    }
}

/// What [`ScanImage::verify_packages`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The package managers whose databases were verified.
    pub managers: Vec<Manager>,
    /// How many packages were verified.
    pub packages: usize,
    /// How many packaged files were checked.
    pub files: usize,
    /// Every file that does not match, per manager in the order of `managers`, then in the database's
    /// order.
    pub failures: Vec<VerifyFailure>,
}

/// A digest being computed.
enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Hasher {
        use md5::Digest as _;
        use sha2::Digest as _;
        match algorithm {
            DigestAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            DigestAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            DigestAlgorithm::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn hex(self) -> String {
        use md5::Digest as _;
        use sha2::Digest as _;
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use md5::Digest as _;
        use sha2::Digest as _;
        match self {
            Hasher::Md5(h) => h.update(buf),
            Hasher::Sha1(h) => h.update(buf),
            Hasher::Sha224(h) => h.update(buf),
            Hasher::Sha256(h) => h.update(buf),
            Hasher::Sha384(h) => h.update(buf),
            Hasher::Sha512(h) => h.update(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether a file's digest is apk's SHA-1 (dpkg's are MD5).
fn digest_is_sha1(file: &PackagedFile) -> bool {
    file.digest
        .as_ref()
        .is_some_and(|d| d.algorithm == DigestAlgorithm::Sha1)
}

/// `st_mode` of an entry: its type bits and permissions.
fn st_mode(e: &Entry) -> u32 {
    let kind = match e.kind {
        Kind::File => S_IFREG,
        Kind::Dir => S_IFDIR,
        Kind::Symlink => S_IFLNK,
        Kind::Char => S_IFCHR,
        Kind::Block => S_IFBLK,
        Kind::Fifo => S_IFIFO,
    };
    kind | (e.mode & 0o7777)
}

/// A name → id table of `/etc/passwd` or `/etc/group` (`name:x:id:…` lines).
fn id_table(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.trim().parse().ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

/// The image's users and groups, for comparing owners recorded by name.
struct Ids {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Ids {
    fn read(image: &ScanImage) -> Result<Ids> {
        let table = |path: &str| -> Result<HashMap<String, u32>> {
            Ok(image
                .read_resolved(path, MAX_DATABASE_SIZE)?
                .map(|b| id_table(&String::from_utf8_lossy(&b)))
                .unwrap_or_default())
        };
        Ok(Ids {
            users: table("/etc/passwd")?,
            groups: table("/etc/group")?,
        })
    }

    /// The id of `name` as rpm resolves it: `root` is 0, an unknown name 0.
    fn id(table: &HashMap<String, u32>, name: Option<&str>) -> u32 {
        match name {
            None | Some("root") => 0,
            Some(n) => table.get(n).copied().unwrap_or(0),
        }
    }
}

impl ScanImage {
    /// The digest of an entry's content (a regular file), or of a symlink's target, in `algorithm`.
    fn digest_of(&self, entry: &Entry, algorithm: DigestAlgorithm) -> Result<String> {
        let mut hasher = Hasher::new(algorithm);
        if entry.kind == Kind::Symlink {
            std::io::Write::write_all(&mut hasher, &entry.link).map_err(|source| {
                crate::Error::Io {
                    what: format!("hashing {}", entry.path_lossy()),
                    source,
                }
            })?;
        } else {
            self.copy_entry(entry, &mut hasher)?;
        }
        Ok(hasher.hex())
    }

    /// The SHA-1 and SHA-256 of a regular file's content, read once (an SBOM's file checksums).
    pub(crate) fn sha1_and_sha256(&self, entry: &Entry) -> Result<(String, String)> {
        struct Both(Hasher, Hasher);
        impl std::io::Write for Both {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write_all(buf)?;
                self.1.write_all(buf)?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut both = Both(
            Hasher::new(DigestAlgorithm::Sha1),
            Hasher::new(DigestAlgorithm::Sha256),
        );
        self.copy_entry(entry, &mut both)?;
        Ok((both.0.hex(), both.1.hex()))
    }

    /// The files the database says `package` installed, with what it records about each (see
    /// [`PackagedFile`]): rpm's header tags, dpkg's md5sums and conffiles, apk's checksums.
    pub fn installed_files(&self, package: &Package) -> Result<Vec<PackagedFile>> {
        let mut out = Vec::new();
        self.each_installed_file(std::slice::from_ref(package), |_, file| {
            out.push(file);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `each` with the index of the package and the file, for every file
    /// [`installed_files`](Self::installed_files) lists of each of `packages`, in their order, each package
    /// database read once. dpkg's lists are streamed from each package's md5sums, never held whole (one
    /// package may list tens of thousands of files).
    pub fn each_installed_file(
        &self,
        packages: &[Package],
        mut each: impl FnMut(usize, PackagedFile) -> Result<()>,
    ) -> Result<()> {
        let uses = |m: Manager| packages.iter().any(|p| p.manager == m);
        let mut rpms: HashMap<(String, String, String), Vec<PackagedFile>> = HashMap::new();
        if uses(Manager::Rpm) {
            for p in self.rpm_packages(true)?.unwrap_or_default() {
                let key = (p.package.name, p.package.version, p.package.architecture);
                rpms.entry(key).or_insert(p.files);
            }
        }
        let conffiles = match self.read_resolved(DPKG_STATUS, MAX_DATABASE_SIZE)? {
            Some(b) if uses(Manager::Dpkg) => {
                parse_dpkg_conffiles(&String::from_utf8_lossy(&b), DPKG_STATUS)?
            }
            _ => Default::default(),
        };
        let mut apks: HashMap<String, Vec<PackagedFile>> = HashMap::new();
        if uses(Manager::Apk)
            && let Some(bytes) = self.read_resolved(APK_INSTALLED, MAX_DATABASE_SIZE)?
        {
            for (name, files) in parse_apk_files(&String::from_utf8_lossy(&bytes), APK_INSTALLED)? {
                apks.entry(name).or_insert(files);
            }
        }
        for (i, package) in packages.iter().enumerate() {
            let files = match package.manager {
                Manager::Rpm => rpms
                    .remove(&(
                        package.name.clone(),
                        package.version.clone(),
                        package.architecture.clone(),
                    ))
                    .unwrap_or_default(),
                Manager::Dpkg => {
                    self.dpkg_files(package, &conffiles, &mut |file| each(i, file))?;
                    continue;
                }
                Manager::Apk => apks.remove(&package.name).unwrap_or_default(),
            };
            for file in files {
                each(i, file)?;
            }
        }
        Ok(())
    }

    /// Calls `each` with a dpkg package's files: its md5sums, then its conffiles (marked config) not
    /// already listed.
    fn dpkg_files(
        &self,
        package: &Package,
        conffiles: &std::collections::BTreeMap<String, Vec<(String, String)>>,
        each: &mut dyn FnMut(PackagedFile) -> Result<()>,
    ) -> Result<()> {
        let qualified = format!("{}:{}", package.name, package.architecture);
        let conf = conffiles
            .get(&qualified)
            .or_else(|| conffiles.get(&package.name))
            .map_or(&[][..], Vec::as_slice);
        // Which conffiles the md5sums listed already.
        let mut listed = vec![false; conf.len()];
        for name in [&qualified, &package.name] {
            let db = format!("{DPKG_INFO}/{name}.md5sums");
            if let Some(bytes) = self.read_resolved(&db, MAX_DATABASE_SIZE)? {
                for line in dpkg_md5sums(&String::from_utf8_lossy(&bytes), &db) {
                    let (path, md5) = line?;
                    for (seen, (conf_path, _)) in listed.iter_mut().zip(conf) {
                        *seen |= *conf_path == path;
                    }
                    each(PackagedFile::with_digest(
                        path,
                        DigestAlgorithm::Md5,
                        md5,
                        0,
                    ))?;
                }
                break;
            }
        }
        for ((path, md5), seen) in conf.iter().zip(listed) {
            if !seen {
                each(PackagedFile::with_digest(
                    path.clone(),
                    DigestAlgorithm::Md5,
                    md5.clone(),
                    crate::packages::FILE_CONFIG,
                ))?;
            }
        }
        Ok(())
    }

    /// Verifies every installed package of every database the image has (rpm's sqlite database, dpkg,
    /// apk), reading each packaged file through the merged view. An image with none of them gives
    /// [`PackageError::NoDatabase`], one with only a BerkeleyDB rpm database [`PackageError::Unsupported`]; a damaged database (a header whose counts lie, an md5sums line naming
    /// `../`) is an error naming it.
    pub fn verify_packages(&self) -> Result<VerifyReport> {
        // Every (package, file, is rpm) first; files are then read in path order, which is close to the
        // layers' tar order (reads go forward through each layer instead of back to a checkpoint for each
        // file), and the failures reported in the databases' order.
        let mut managers = Vec::new();
        let mut packages = 0;
        let mut jobs: Vec<(String, PackagedFile, bool)> = Vec::new();
        let rpms = self.rpm_packages(true)?;
        if rpms.is_none()
            && let Some(unsupported) = self.unsupported_rpm_database()?
        {
            return Err(unsupported.into());
        }
        if let Some(rpms) = rpms {
            managers.push(Manager::Rpm);
            for rpm in rpms {
                packages += 1;
                let name = rpm.package.name;
                jobs.extend(rpm.files.into_iter().map(|f| (name.clone(), f, true)));
            }
        }
        if let Some(status) = self.read_resolved(DPKG_STATUS, MAX_DATABASE_SIZE)? {
            managers.push(Manager::Dpkg);
            let text = String::from_utf8_lossy(&status);
            let conffiles = parse_dpkg_conffiles(&text, DPKG_STATUS)?;
            let list = parse_dpkg_status(&text);
            let native = crate::packages::dpkg_native_arch(&list)
                .unwrap_or_default()
                .to_owned();
            for package in list.iter().filter(|p| p.status.ends_with(" installed")) {
                packages += 1;
                // Without the dpkg package its native architecture is unknown: qualify only
                // `Multi-Arch: same` packages.
                let name = if native.is_empty() && package.multi_arch != "same" {
                    package.name.clone()
                } else {
                    package.binary_package(&native)
                };
                self.dpkg_files(package, &conffiles, &mut |file| {
                    jobs.push((name.clone(), file, false));
                    Ok(())
                })?;
            }
        }
        if let Some(bytes) = self.read_resolved(APK_INSTALLED, MAX_DATABASE_SIZE)? {
            managers.push(Manager::Apk);
            for (name, files) in parse_apk_files(&String::from_utf8_lossy(&bytes), APK_INSTALLED)? {
                packages += 1;
                jobs.extend(files.into_iter().map(|f| (name.clone(), f, false)));
            }
        }
        if managers.is_empty() {
            return Err(PackageError::NoDatabase {
                image: self.name().to_owned(),
            }
            .into());
        }
        let ids = if managers.contains(&Manager::Rpm) {
            Ids::read(self)?
        } else {
            Ids {
                users: HashMap::new(),
                groups: HashMap::new(),
            }
        };
        // rpm does not report an mtime difference of a file more than one installed package owns.
        let mut owners: HashMap<&str, usize> = HashMap::new();
        for (_, file, rpm) in &jobs {
            if *rpm {
                *owners.entry(file.path.as_str()).or_default() += 1;
            }
        }
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&x, &y| {
            let path = |i: usize| jobs.get(i).map(|j| j.1.path.as_str());
            path(x).cmp(&path(y))
        });
        let mut found = Vec::new();
        for i in order {
            let Some((package, file, rpm)) = jobs.get(i) else {
                continue;
            };
            let failure = if *rpm {
                let shared = owners.get(file.path.as_str()).is_some_and(|&n| n > 1);
                self.verify_rpm_file(package, file, &ids, shared)?
            } else {
                self.verify_digest_file(package, file)?
            };
            if let Some(f) = failure {
                found.push((i, f));
            }
        }
        found.sort_by_key(|(i, _)| *i);
        Ok(VerifyReport {
            managers,
            packages,
            files: jobs.len(),
            failures: found.into_iter().map(|(_, f)| f).collect(),
        })
    }

    /// One file checked as `dpkg --verify` checks it: present (symlinks followed) and of the recorded digest.
    fn verify_digest_file(
        &self,
        package: &str,
        file: &PackagedFile,
    ) -> Result<Option<VerifyFailure>> {
        let failure = |result: &str, missing: bool| VerifyFailure {
            manager: if digest_is_sha1(file) {
                Manager::Apk
            } else {
                Manager::Dpkg
            },
            package: package.to_owned(),
            path: file.path.clone(),
            result: result.to_owned(),
            missing,
            marker: if file.flags & crate::packages::FILE_CONFIG != 0 {
                'c'
            } else {
                ' '
            },
        };
        let Some(digest) = &file.digest else {
            return Ok(None);
        };
        // apk records a symlink's checksum as that of its target; dpkg opens the file (following links).
        let entry = match digest.algorithm {
            DigestAlgorithm::Sha1 => match self.resolve(&file.path, false)? {
                Some(e) if e.kind == Kind::Symlink => Some(e),
                _ => self.resolve(&file.path, true)?,
            },
            _ => self.resolve(&file.path, true)?,
        };
        let Some(entry) = entry else {
            return Ok(Some(failure("missing", true)));
        };
        if !matches!(entry.kind, Kind::File | Kind::Symlink) {
            return Ok(Some(failure("??5??????", false)));
        }
        if self.digest_of(&entry, digest.algorithm)? != digest.hex {
            return Ok(Some(failure("??5??????", false)));
        }
        Ok(None)
    }

    /// One file checked as `rpm -V` checks it (see the module's documentation); `shared`: more than one
    /// installed package owns the path, so an mtime difference is not reported.
    fn verify_rpm_file(
        &self,
        package: &str,
        file: &PackagedFile,
        ids: &Ids,
        shared: bool,
    ) -> Result<Option<VerifyFailure>> {
        let mut flags = file.verify_flags;
        match file.state {
            STATE_NETSHARED | STATE_NOT_INSTALLED => return Ok(None),
            STATE_REPLACED => flags = 0,
            STATE_WRONG_COLOR => flags &= !(V_DIGEST | V_SIZE | V_MTIME | V_RDEV),
            _ => {}
        }
        let failure = |result: String, missing: bool| VerifyFailure {
            manager: Manager::Rpm,
            package: package.to_owned(),
            path: file.path.clone(),
            result,
            missing,
            marker: file.marker(),
        };
        let ghost = file.flags & FILE_GHOST != 0;
        let Some(mut entry) = self.resolve(&file.path, false)? else {
            if file.flags & (FILE_MISSINGOK | FILE_GHOST) != 0 {
                return Ok(None);
            }
            return Ok(Some(failure("missing".to_owned(), true)));
        };
        let fmode = file.mode.unwrap_or(0);
        // A directory replaced by a symlink to one, owned by root or the directory's owner, is the directory.
        if fmode & S_IFMT == S_IFDIR
            && entry.kind == Kind::Symlink
            && (entry.uid == 0 || entry.uid == Ids::id(&ids.users, file.user.as_deref()))
            && let Some(dir) = self.resolve(&file.path, true)?
            && dir.kind == Kind::Dir
        {
            entry = dir;
        }
        if entry.kind == Kind::Symlink {
            flags &= !V_MODE;
        } else {
            flags &= !V_LINKTO;
        }
        if entry.kind != Kind::File {
            flags &= !(V_DIGEST | V_SIZE | V_MTIME | V_CAPS);
        }
        if ghost {
            flags &= !(V_DIGEST | V_SIZE | V_MTIME | V_LINKTO);
        }
        // Capabilities are not compared.
        flags &= !V_CAPS;
        let mut found = 0u32;
        if flags & V_DIGEST != 0 {
            match &file.digest {
                Some(d) if self.digest_of(&entry, d.algorithm)? == d.hex => {}
                _ => found |= V_DIGEST,
            }
        }
        if flags & V_LINKTO != 0 && file.link.as_deref().map(str::as_bytes) != Some(&entry.link[..])
        {
            found |= V_LINKTO;
        }
        if flags & V_SIZE != 0 && Some(entry.size) != file.size {
            found |= V_SIZE;
        }
        if flags & V_MODE != 0 {
            let (mut want, mut have) = (fmode, st_mode(&entry));
            if ghost {
                want &= !S_IFMT;
                have &= !S_IFMT;
            }
            if want != have {
                found |= V_MODE;
            }
        }
        if flags & V_RDEV != 0 {
            let is = |m: u32, t: u32| m & S_IFMT == t;
            let have = st_mode(&entry);
            if is(fmode, S_IFCHR) != is(have, S_IFCHR) || is(fmode, S_IFBLK) != is(have, S_IFBLK) {
                found |= V_RDEV;
            } else if is(fmode, S_IFCHR) || is(fmode, S_IFBLK) {
                let (major, minor) = entry.device;
                let rdev = ((major & 0xff) << 8) | (minor & 0xff);
                if rdev != file.rdev.unwrap_or(0) & 0xffff {
                    found |= V_RDEV;
                }
            }
        }
        if flags & V_MTIME != 0 && !shared && Some(entry.mtime) != file.mtime {
            found |= V_MTIME;
        }
        if flags & V_USER != 0 && entry.uid != Ids::id(&ids.users, file.user.as_deref()) {
            found |= V_USER;
        }
        if flags & V_GROUP != 0 && entry.gid != Ids::id(&ids.groups, file.group.as_deref()) {
            found |= V_GROUP;
        }
        if found == 0 {
            return Ok(None);
        }
        let letters: String = [
            (V_SIZE, 'S'),
            (V_MODE, 'M'),
            (V_DIGEST, '5'),
            (V_RDEV, 'D'),
            (V_LINKTO, 'L'),
            (V_USER, 'U'),
            (V_GROUP, 'G'),
            (V_MTIME, 'T'),
            (V_CAPS, 'P'),
        ]
        .iter()
        .map(|(bit, c)| if found & bit != 0 { *c } else { '.' })
        .collect();
        Ok(Some(failure(letters, false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_tables() {
        let t = id_table("root:x:0:0::/root:/bin/sh\napp:x:1001:1001::/app:/bin/sh\nbroken\n");
        assert_eq!(t.get("app"), Some(&1001));
        assert_eq!(Ids::id(&t, Some("root")), 0);
        assert_eq!(Ids::id(&t, Some("nobody-here")), 0);
    }

    #[test]
    fn lines_as_the_tools_print_them() {
        let f = VerifyFailure {
            manager: Manager::Rpm,
            package: "p".into(),
            path: "/etc/p.conf".into(),
            result: "S.5....T.".into(),
            missing: false,
            marker: 'c',
        };
        assert_eq!(f.line(), "S.5....T.  c /etc/p.conf");
        let m = VerifyFailure {
            result: "missing".into(),
            missing: true,
            marker: ' ',
            ..f
        };
        assert_eq!(m.line(), "missing     /etc/p.conf");
    }
}
