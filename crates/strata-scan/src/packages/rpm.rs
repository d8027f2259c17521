//! rpm's package database as current RHEL, Fedora and UBI keep it: `rpmdb.sqlite`, whose `Packages` table
//! holds one rpm header blob per package.

use rusqlite::{Connection, OpenFlags};

use super::{Manager, Package, PackageError};

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
        out.push(parse_header(&blob).map_err(malformed)?);
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

    fn int32(&self, tag: u32) -> Result<Option<u32>, String> {
        match self.find(tag)? {
            None => Ok(None),
            Some((TYPE_INT32, offset, count)) if count >= 1 => be32(self.data, offset).map(Some),
            Some((ty, _, _)) => Err(format!("tag {tag} has type {ty}, not int32")),
        }
    }
}

/// Parses one header blob: `il` and `dl` (big-endian u32), `il` 16-byte index entries, `dl` bytes of data.
fn parse_header(blob: &[u8]) -> Result<Package, String> {
    let il = usize::try_from(be32(blob, 0)?).map_err(|_| "bad count")?;
    let dl = usize::try_from(be32(blob, 4)?).map_err(|_| "bad size")?;
    if il > MAX_ENTRIES || dl > MAX_DATA {
        return Err(format!("header claims {il} entries and {dl} bytes"));
    }
    let entries_end = 8 + il * 16;
    let header = Header {
        entries: blob.get(8..entries_end).ok_or("truncated index")?,
        data: blob
            .get(entries_end..entries_end + dl)
            .ok_or("truncated data")?,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tags: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, value) in tags {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
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
}
