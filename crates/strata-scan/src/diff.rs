//! What differs between two images' trees: [`diff`].

use std::cmp::Ordering;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::image::{Error, FileEntry, Kind, Result, ScanImage, display_path, raw_bytes};

/// How an entry differs between the two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the second image.
    Added,
    /// Only in the first image.
    Removed,
    /// In both, differing in some [`Field`].
    Changed,
}

impl ChangeKind {
    /// The letter `docker diff` uses: `A`, `D` or `C`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Removed => 'D',
            ChangeKind::Changed => 'C',
        }
    }
}

/// What differs in a changed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The kind (file, directory, symlink, …); nothing else is compared then.
    Kind,
    /// The permission bits (with setuid, setgid, sticky).
    Mode,
    /// The owner or group.
    Owner,
    /// A regular file's size.
    Size,
    /// A regular file's bytes (same size, different sha256).
    Content,
    /// A symlink's target.
    Link,
    /// A device's numbers.
    Device,
    /// A directory's modification time (a directory has no content to compare: its own metadata is what
    /// changes; files are compared by content, so their times are not).
    Mtime,
}

impl Field {
    /// The field's name as the JSON has it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Mode => "mode",
            Field::Owner => "owner",
            Field::Size => "size",
            Field::Content => "content",
            Field::Link => "link",
            Field::Device => "device",
            Field::Mtime => "mtime",
        }
    }
}

/// One difference between two trees. Serialized (JSON), `path` is decoded lossily and `path_raw` (only for a
/// path that is not UTF-8) has its bytes in base64, as in [`FileEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Added, removed or changed.
    pub change: ChangeKind,
    /// The path (absolute, raw bytes).
    pub path: Vec<u8>,
    /// What differs, for a changed entry (empty otherwise).
    pub fields: Vec<Field>,
    /// The entry in the first image (`None` when added).
    pub before: Option<FileEntry>,
    /// The entry in the second image (`None` when removed).
    pub after: Option<FileEntry>,
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let raw = raw_bytes(&self.path);
        let mut s = serializer.serialize_struct("Change", 5 + usize::from(raw.is_some()))?;
        s.serialize_field("change", &self.change)?;
        s.serialize_field("path", &String::from_utf8_lossy(&self.path))?;
        s.serialize_field("fields", &self.fields)?;
        s.serialize_field("before", &self.before)?;
        s.serialize_field("after", &self.after)?;
        if let Some(raw) = raw {
            s.serialize_field("path_raw", &raw)?;
        }
        s.end()
    }
}

/// Orders paths as the walk visits them: component by component.
fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Every difference between the trees of `a` and `b`, in walk order (the root `/` first): entries only in
/// `b` (added), only in `a` (removed, each path of a removed tree listed), and in both with a different kind,
/// mode, owner, size, content, symlink target, device numbers or, for a directory, modification time
/// (changed). Files' modification times are not compared. Contents are compared only when sizes match: not
/// at all when both are the same bytes of the same layer blob, otherwise by the sha256 of each.
pub fn diff(a: &ScanImage, b: &ScanImage) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    changed(a, a.root()?, b, b.root()?, &mut out)?;
    let mut left = a.entries();
    let mut right = b.entries();
    let mut l = left.next().transpose()?;
    let mut r = right.next().transpose()?;
    loop {
        let order = match (&l, &r) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => walk_order(x.relative(), y.relative()),
        };
        match order {
            Ordering::Less => {
                if let Some(x) = l.take() {
                    out.push(Change {
                        change: ChangeKind::Removed,
                        path: x.path.clone(),
                        fields: Vec::new(),
                        before: Some(x),
                        after: None,
                    });
                }
                l = left.next().transpose()?;
            }
            Ordering::Greater => {
                if let Some(y) = r.take() {
                    out.push(Change {
                        change: ChangeKind::Added,
                        path: y.path.clone(),
                        fields: Vec::new(),
                        before: None,
                        after: Some(y),
                    });
                }
                r = right.next().transpose()?;
            }
            Ordering::Equal => {
                if let (Some(x), Some(y)) = (l.take(), r.take()) {
                    changed(a, x, b, y, &mut out)?;
                }
                l = left.next().transpose()?;
                r = right.next().transpose()?;
            }
        }
    }
    Ok(out)
}

/// Adds to `out` the change from `x` (of `a`) to `y` (of `b`), the same path, if any field differs.
fn changed(
    a: &ScanImage,
    x: FileEntry,
    b: &ScanImage,
    y: FileEntry,
    out: &mut Vec<Change>,
) -> Result<()> {
    let fields = compare(a, &x, b, &y)?;
    if !fields.is_empty() {
        out.push(Change {
            change: ChangeKind::Changed,
            path: y.path.clone(),
            fields,
            before: Some(x),
            after: Some(y),
        });
    }
    Ok(())
}

fn compare(a: &ScanImage, x: &FileEntry, b: &ScanImage, y: &FileEntry) -> Result<Vec<Field>> {
    if x.kind != y.kind {
        return Ok(vec![Field::Kind]);
    }
    let mut fields = Vec::new();
    if x.mode & 0o7777 != y.mode & 0o7777 {
        fields.push(Field::Mode);
    }
    if (x.uid, x.gid) != (y.uid, y.gid) {
        fields.push(Field::Owner);
    }
    match x.kind {
        Kind::File if x.size != y.size => fields.push(Field::Size),
        Kind::File if x.size > 0 => {
            let same_bytes = match (a.content_identity(x)?, b.content_identity(y)?) {
                (Some(i), Some(j)) => i == j,
                _ => false,
            };
            if !same_bytes && !same_sha256(a, x, b, y)? {
                fields.push(Field::Content);
            }
        }
        Kind::Symlink if x.link != y.link => fields.push(Field::Link),
        Kind::Char | Kind::Block if x.device != y.device => fields.push(Field::Device),
        Kind::Dir if x.mtime != y.mtime => fields.push(Field::Mtime),
        _ => {}
    }
    Ok(fields)
}

/// Files from this size on are hashed on two threads, one per image.
const PARALLEL_HASH: u64 = 1 << 20;

/// Whether two regular files of the same size have the same sha256.
fn same_sha256(a: &ScanImage, x: &FileEntry, b: &ScanImage, y: &FileEntry) -> Result<bool> {
    if x.size < PARALLEL_HASH {
        return Ok(a.sha256(x)? == b.sha256(y)?);
    }
    let (left, right) = std::thread::scope(|s| {
        let left = s.spawn(|| a.sha256(x));
        let right = b.sha256(y);
        (left.join(), right)
    });
    let left = left.map_err(|_| Error::Io {
        what: format!("hashing {}", x.path_lossy()),
        source: std::io::Error::other("the hashing thread failed"),
    })??;
    Ok(left == right?)
}

impl ScanImage {
    /// Where a regular file's bytes are: the digest of the layer blob holding them and their offset in its
    /// tar stream (hardlinks followed). Two files with the same identity have the same bytes.
    pub fn content_identity(&self, entry: &FileEntry) -> Result<Option<(String, u64)>> {
        let merged = self.view().merged();
        let Some((layer, e)) = merged.lookup(entry.relative())? else {
            return Ok(None);
        };
        let (layer, data) = self.view().data_entry(layer, e)?;
        Ok(merged
            .layers()
            .get(layer)
            .map(|l| (l.layer().blob_digest.clone(), data.offset())))
    }

    /// The sha256 of a regular file's content, read in chunks.
    pub fn sha256(&self, entry: &FileEntry) -> Result<[u8; 32]> {
        struct HashWriter(Sha256);
        impl std::io::Write for HashWriter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut hasher = HashWriter(Sha256::new());
        match self.copy_entry(entry, &mut hasher)? {
            Some(_) => Ok(hasher.0.finalize().into()),
            None => Err(Error::Io {
                what: format!("hashing {}", display_path(entry.relative())),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_order_is_by_component() {
        let mut paths: Vec<&[u8]> = vec![b"a-c", b"a/b", b"a", b"a.b/c", b"ab"];
        paths.sort_by(|x, y| walk_order(x, y));
        assert_eq!(
            paths,
            vec![&b"a"[..], b"a/b", b"a-c", b"a.b/c", b"ab"],
            "a directory's children come right after it"
        );
    }
}
