//! rpm's package database as current RHEL, Fedora and UBI keep it: `rpmdb.sqlite`, whose `Packages` table
//! holds one rpm header blob per package.

use rusqlite::{Connection, OpenFlags};

use super::{DigestAlgorithm, FileDigest, Manager, Package, PackageError, PackagedFile};

/// The BerkeleyDB hash magic at offset 12 of an old `Packages` database (read as little- or big-endian).
pub const RPM_BDB_MAGIC: u32 = 0x0006_1561;

/// Whether `head` (the first bytes of a file) is a BerkeleyDB database, the format of rpm's `Packages`
/// before rpm 4.16. strata does not read those, and says so rather than misreading them.
pub fn is_berkeley_db(head: &[u8]) -> bool {
    head.get(12..16)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| {
            u32::from_le_bytes(b) == RPM_BDB_MAGIC || u32::from_be_bytes(b) == RPM_BDB_MAGIC
        })
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_VENDOR: u32 = 1011;
const TAG_FILESIZES: u32 = 1028;
const TAG_FILESTATES: u32 = 1029;
const TAG_FILEMODES: u32 = 1030;
const TAG_FILERDEVS: u32 = 1033;
const TAG_FILEMTIMES: u32 = 1034;
const TAG_FILEDIGESTS: u32 = 1035;
const TAG_FILELINKTOS: u32 = 1036;
const TAG_FILEFLAGS: u32 = 1037;
const TAG_FILEUSERNAME: u32 = 1039;
const TAG_FILEGROUPNAME: u32 = 1040;
const TAG_FILEVERIFYFLAGS: u32 = 1045;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TAG_LONGFILESIZES: u32 = 5008;
const TAG_FILEDIGESTALGO: u32 = 5011;

const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT64: u32 = 5;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The most index entries and data bytes one header may have (rpm's own limits).
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// Reads the packages of an `rpmdb.sqlite` file at `path` (a copy on the local file system), opened
/// read-only. `name` is the path inside the image, for messages.
pub fn parse_rpm_sqlite(path: &std::path::Path, name: &str) -> Result<Vec<Package>, PackageError> {
    Ok(parse_rpm_sqlite_files(path, name, false)?
        .into_iter()
        .map(|p| p.package)
        .collect())
}

/// One installed rpm with what its header says about its files: what [`parse_rpm_sqlite_files`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    /// The package.
    pub package: Package,
    /// The `VENDOR` tag (`Red Hat, Inc.` for Red Hat's packages), empty when absent.
    pub vendor: String,
    /// Its files, in the header's order (empty unless files were asked for).
    pub files: Vec<PackagedFile>,
}

/// Reads the packages of an `rpmdb.sqlite` file at `path` (see [`parse_rpm_sqlite`]) with their vendor and,
/// when `files` is true, their file lists (`BASENAMES`, `DIRNAMES`, `DIRINDEXES` and the per-file tags). A
/// header whose counts or offsets point past its data is a [`PackageError::Malformed`] naming the tag.
pub fn parse_rpm_sqlite_files(
    path: &std::path::Path,
    name: &str,
    files: bool,
) -> Result<Vec<RpmPackage>, PackageError> {
    let malformed = |reason: String| PackageError::Malformed {
        path: name.to_owned(),
        reason,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| malformed(e.to_string()))?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(|e| malformed(e.to_string()))?;
    let rows = stmt
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(|e| malformed(e.to_string()))?;
    let mut out = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| malformed(e.to_string()))?;
        let package = parse_header(&blob).map_err(&malformed)?;
        let header = split_header(&blob).map_err(&malformed)?;
        let vendor = header.string(TAG_VENDOR).map_err(&malformed)?;
        let files = if files {
            header_files(&header)
                .map_err(|e| malformed(format!("package {}: {e}", package.name)))?
        } else {
            Vec::new()
        };
        out.push(RpmPackage {
            package,
            vendor,
            files,
        });
    }
    Ok(out)
}

struct Header<'a> {
    entries: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| "truncated header".to_owned())
}

impl Header<'_> {
    /// The entry for `tag`: (type, offset, count).
    fn find(&self, tag: u32) -> Result<Option<(u32, usize, u32)>, String> {
        for e in self.entries.chunks_exact(16) {
            if be32(e, 0)? == tag {
                let offset = usize::try_from(be32(e, 8)?).map_err(|_| "bad offset")?;
                return Ok(Some((be32(e, 4)?, offset, be32(e, 12)?)));
            }
        }
        Ok(None)
    }

    fn string(&self, tag: u32) -> Result<String, String> {
        let Some((ty, offset, _)) = self.find(tag)? else {
            return Ok(String::new());
        };
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(format!("tag {tag} has type {ty}, not a string"));
        }
        let rest = self
            .data
            .get(offset..)
            .ok_or_else(|| format!("tag {tag} points past the data"))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("tag {tag}: unterminated string"))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// The `count` elements of `width` bytes at the tag's offset, refused when they run past the data.
    fn array(
        &self,
        tag: u32,
        types: &[u32],
        width: usize,
    ) -> Result<Option<(&[u8], usize)>, String> {
        let Some((ty, offset, count)) = self.find(tag)? else {
            return Ok(None);
        };
        if !types.contains(&ty) {
            return Err(format!("tag {tag} has type {ty}, not {types:?}"));
        }
        let count = usize::try_from(count).map_err(|_| format!("tag {tag}: bad count"))?;
        let bytes = count
            .checked_mul(width)
            .and_then(|n| offset.checked_add(n))
            .and_then(|end| self.data.get(offset..end))
            .ok_or_else(|| {
                format!(
                    "tag {tag} claims {count} entries at offset {offset}, past the {} bytes of data",
                    self.data.len()
                )
            })?;
        Ok(Some((bytes, count)))
    }

    /// An array of unsigned integers of `width` bytes (1, 2, 4 or 8), big-endian.
    fn uints(&self, tag: u32, types: &[u32], width: usize) -> Result<Option<Vec<u64>>, String> {
        let Some((bytes, _)) = self.array(tag, types, width)? else {
            return Ok(None);
        };
        Ok(Some(
            bytes
                .chunks_exact(width)
                .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
                .collect(),
        ))
    }

    /// A string array: `count` NUL-terminated strings from the tag's offset.
    fn strings(&self, tag: u32) -> Result<Option<Vec<String>>, String> {
        let Some((ty, offset, count)) = self.find(tag)? else {
            return Ok(None);
        };
        if ty != TYPE_STRING_ARRAY {
            return Err(format!("tag {tag} has type {ty}, not a string array"));
        }
        let mut rest = self
            .data
            .get(offset..)
            .ok_or_else(|| format!("tag {tag} points past the data"))?;
        let mut out = Vec::new();
        for i in 0..count {
            let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                format!("tag {tag} claims {count} strings, the data ends in string {i}")
            })?;
            out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            rest = rest.get(end + 1..).unwrap_or_default();
        }
        Ok(Some(out))
    }

    fn int32(&self, tag: u32) -> Result<Option<u32>, String> {
        match self.find(tag)? {
            None => Ok(None),
            Some((TYPE_INT32, offset, count)) if count >= 1 => be32(self.data, offset).map(Some),
            Some((ty, _, _)) => Err(format!("tag {tag} has type {ty}, not int32")),
        }
    }
}

/// Splits one header blob: `il` and `dl` (big-endian u32), `il` 16-byte index entries, `dl` bytes of data.
fn split_header(blob: &[u8]) -> Result<Header<'_>, String> {
    let il = usize::try_from(be32(blob, 0)?).map_err(|_| "bad count")?;
    let dl = usize::try_from(be32(blob, 4)?).map_err(|_| "bad size")?;
    if il > MAX_ENTRIES || dl > MAX_DATA {
        return Err(format!("header claims {il} entries and {dl} bytes"));
    }
    let entries_end = 8 + il * 16;
    Ok(Header {
        entries: blob.get(8..entries_end).ok_or("truncated index")?,
        data: blob
            .get(entries_end..entries_end + dl)
            .ok_or("truncated data")?,
    })
}

/// Parses one header blob's package fields.
fn parse_header(blob: &[u8]) -> Result<Package, String> {
    let header = split_header(blob)?;
    let version = header.string(TAG_VERSION)?;
    let release = header.string(TAG_RELEASE)?;
    let mut full = if release.is_empty() {
        version
    } else {
        format!("{version}-{release}")
    };
    if let Some(epoch) = header.int32(TAG_EPOCH)? {
        full = format!("{epoch}:{full}");
    }
    Ok(Package {
        name: header.string(TAG_NAME)?,
        version: full,
        architecture: header.string(TAG_ARCH)?,
        source: header.string(TAG_SOURCERPM)?,
        license: header.string(TAG_LICENSE)?,
        status: "installed".into(),
        multi_arch: String::new(),
        manager: Manager::Rpm,
    })
}

/// The files of one header. Every per-file array must have one element per `BASENAMES` entry.
fn header_files(header: &Header<'_>) -> Result<Vec<PackagedFile>, String> {
    let Some(basenames) = header.strings(TAG_BASENAMES)? else {
        return Ok(Vec::new());
    };
    let n = basenames.len();
    let dirnames = header.strings(TAG_DIRNAMES)?.unwrap_or_default();
    let per_file = |tag: u32, values: Option<Vec<u64>>| -> Result<Option<Vec<u64>>, String> {
        match values {
            Some(v) if v.len() != n => {
                Err(format!("tag {tag} has {} entries for {n} files", v.len()))
            }
            v => Ok(v),
        }
    };
    let strings = |tag: u32| -> Result<Option<Vec<String>>, String> {
        match header.strings(tag)? {
            Some(v) if v.len() != n => {
                Err(format!("tag {tag} has {} entries for {n} files", v.len()))
            }
            v => Ok(v),
        }
    };
    let ints =
        |tag: u32, types: &[u32], width: usize| per_file(tag, header.uints(tag, types, width)?);
    let dirindexes =
        ints(TAG_DIRINDEXES, &[TYPE_INT32], 4)?.ok_or("BASENAMES without DIRINDEXES")?;
    let sizes = match ints(TAG_LONGFILESIZES, &[TYPE_INT64], 8)? {
        Some(v) => Some(v),
        None => ints(TAG_FILESIZES, &[TYPE_INT32], 4)?,
    };
    let modes = ints(TAG_FILEMODES, &[TYPE_INT16], 2)?;
    let rdevs = ints(TAG_FILERDEVS, &[TYPE_INT16], 2)?;
    let mtimes = ints(TAG_FILEMTIMES, &[TYPE_INT32], 4)?;
    let flags = ints(TAG_FILEFLAGS, &[TYPE_INT32], 4)?;
    let vflags = ints(TAG_FILEVERIFYFLAGS, &[TYPE_INT32], 4)?;
    let states = ints(TAG_FILESTATES, &[TYPE_CHAR, TYPE_INT8], 1)?;
    let digests = strings(TAG_FILEDIGESTS)?;
    let links = strings(TAG_FILELINKTOS)?;
    let users = strings(TAG_FILEUSERNAME)?;
    let groups = strings(TAG_FILEGROUPNAME)?;
    let algorithm = match header.int32(TAG_FILEDIGESTALGO)? {
        None => DigestAlgorithm::Md5,
        Some(a) => DigestAlgorithm::from_rpm(a)
            .ok_or_else(|| format!("unknown file digest algorithm {a}"))?,
    };
    let at = |v: &Option<Vec<u64>>, i: usize| v.as_ref().and_then(|v| v.get(i).copied());
    let at_str = |v: &Option<Vec<String>>, i: usize| v.as_ref().and_then(|v| v.get(i).cloned());
    let mut out = Vec::with_capacity(n);
    for (i, base) in basenames.iter().enumerate() {
        let dir_index = dirindexes.get(i).copied().unwrap_or(0);
        let dir = usize::try_from(dir_index)
            .ok()
            .and_then(|d| dirnames.get(d))
            .ok_or_else(|| {
                format!(
                    "file {i} ({base}) names directory {dir_index} of {}",
                    dirnames.len()
                )
            })?;
        let digest = at_str(&digests, i)
            .filter(|d| !d.is_empty())
            .map(|hex| FileDigest { algorithm, hex });
        out.push(PackagedFile {
            path: format!("{dir}{base}"),
            digest,
            size: at(&sizes, i),
            mode: at(&modes, i).and_then(|m| u32::try_from(m).ok()),
            user: at_str(&users, i),
            group: at_str(&groups, i),
            link: at_str(&links, i).filter(|l| !l.is_empty()),
            rdev: at(&rdevs, i).and_then(|m| u32::try_from(m).ok()),
            mtime: at(&mtimes, i).and_then(|m| i64::try_from(m).ok()),
            flags: at(&flags, i)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0),
            verify_flags: at(&vflags, i)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(u32::MAX),
            state: at(&states, i)
                .and_then(|m| u8::try_from(m).ok())
                .unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with one-element entries.
    fn header(tags: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let counted: Vec<(u32, u32, u32, &[u8])> =
            tags.iter().map(|(tag, ty, v)| (*tag, *ty, 1, *v)).collect();
        header_counted(&counted)
    }

    #[test]
    fn parses_a_header() {
        let blob = header(&[
            (TAG_EPOCH, TYPE_INT32, &2u32.to_be_bytes()),
            (TAG_NAME, TYPE_STRING, b"bash\0"),
            (TAG_VERSION, TYPE_STRING, b"5.1.8\0"),
            (TAG_RELEASE, TYPE_STRING, b"6.el9\0"),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
            (TAG_LICENSE, TYPE_STRING, b"GPLv3+\0"),
        ]);
        let p = parse_header(&blob).unwrap();
        assert_eq!(p.name, "bash");
        assert_eq!(p.version, "2:5.1.8-6.el9");
        assert_eq!(p.license, "GPLv3+");
    }

    #[test]
    fn hostile_headers_are_errors() {
        let good = header(&[(TAG_NAME, TYPE_STRING, b"bash\0")]);
        for cut in 0..good.len() {
            assert!(parse_header(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&huge).is_err());
        let unterminated = header(&[(TAG_NAME, TYPE_STRING, b"bash")]);
        assert!(parse_header(&unterminated).is_err());
        let wrong_type = header(&[(TAG_EPOCH, TYPE_STRING, b"x\0")]);
        assert!(parse_header(&wrong_type).is_err());
    }

    #[test]
    fn berkeley_db_detected() {
        let mut head = vec![0u8; 64];
        head[12..16].copy_from_slice(&RPM_BDB_MAGIC.to_le_bytes());
        assert!(is_berkeley_db(&head));
        assert!(!is_berkeley_db(b"SQLite format 3\0"));
    }

    /// A header with the given (tag, type, count, value) entries.
    fn header_counted(tags: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, count, value) in tags {
            for v in [*tag, *ty, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(value);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn file_lists() {
        let sizes: Vec<u8> = [3u32, 5].iter().flat_map(|v| v.to_be_bytes()).collect();
        let modes: Vec<u8> = [0o100644u16, 0o120777]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let dirindexes: Vec<u8> = [0u32, 1].iter().flat_map(|v| v.to_be_bytes()).collect();
        let flags: Vec<u8> = [1u32, 0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let good = header_counted(&[
            (TAG_BASENAMES, TYPE_STRING_ARRAY, 2, b"a.conf\0link\0"),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, 2, b"/etc/\0/usr/bin/\0"),
            (TAG_DIRINDEXES, TYPE_INT32, 2, &dirindexes),
            (TAG_FILESIZES, TYPE_INT32, 2, &sizes),
            (TAG_FILEMODES, TYPE_INT16, 2, &modes),
            (TAG_FILEFLAGS, TYPE_INT32, 2, &flags),
            (TAG_FILEDIGESTS, TYPE_STRING_ARRAY, 2, b"abc\0\0"),
            (TAG_FILELINKTOS, TYPE_STRING_ARRAY, 2, b"\0a.conf\0"),
            (TAG_FILEDIGESTALGO, TYPE_INT32, 1, &8u32.to_be_bytes()),
        ]);
        let files = header_files(&split_header(&good).unwrap()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "/etc/a.conf");
        assert_eq!(files[0].marker(), 'c');
        assert_eq!(
            files[0].digest.as_ref().unwrap().algorithm,
            DigestAlgorithm::Sha256
        );
        assert_eq!(
            (files[1].path.as_str(), files[1].link.as_deref()),
            ("/usr/bin/link", Some("a.conf"))
        );
        assert_eq!(files[1].mode, Some(0o120777));
        assert!(files[1].digest.is_none());

        // Lying counts: more strings, sizes or directory indexes than the data holds, or disagreeing.
        let lying = [
            header_counted(&[
                (TAG_BASENAMES, TYPE_STRING_ARRAY, 1000, b"a\0"),
                (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0"),
            ]),
            header_counted(&[
                (TAG_BASENAMES, TYPE_STRING_ARRAY, 1, b"a\0"),
                (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0"),
                (TAG_DIRINDEXES, TYPE_INT32, 0x4000_0000, &0u32.to_be_bytes()),
            ]),
            header_counted(&[
                (TAG_BASENAMES, TYPE_STRING_ARRAY, 1, b"a\0"),
                (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0"),
                (TAG_DIRINDEXES, TYPE_INT32, 1, &7u32.to_be_bytes()),
            ]),
            header_counted(&[
                (TAG_BASENAMES, TYPE_STRING_ARRAY, 2, b"a\0b\0"),
                (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0"),
                (TAG_DIRINDEXES, TYPE_INT32, 2, &[0u8; 8]),
                (TAG_FILESIZES, TYPE_INT32, 1, &3u32.to_be_bytes()),
            ]),
        ];
        for (i, blob) in lying.iter().enumerate() {
            let err = header_files(&split_header(blob).unwrap()).unwrap_err();
            assert!(
                err.contains("tag") || err.contains("directory"),
                "{i}: {err}"
            );
        }
        let err = header_files(&split_header(&lying[0]).unwrap()).unwrap_err();
        assert!(err.contains("1117") && err.contains("1000"), "{err}");
    }
}
