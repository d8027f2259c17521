//! One entry of a layer, as the tar reader produces it and every consumer (index, unpacker, merged view)
//! sees it.

use crate::error::{Error, Result};

/// What an entry is. Whiteouts are decoded here, once: consumers never look at `.wh.` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A regular file; its bytes follow in the tar stream.
    File = 1,
    /// A directory.
    Dir = 2,
    /// A symbolic link; `link` is its target, verbatim.
    Symlink = 3,
    /// A hard link; `link` is the normalised path of the entry it links to (in this layer or a lower one).
    Hardlink = 4,
    /// A character device; `rdev` holds its numbers.
    CharDevice = 5,
    /// A block device; `rdev` holds its numbers.
    BlockDevice = 6,
    /// A named pipe.
    Fifo = 7,
    /// A whiteout (`DIR/.wh.NAME` in the tar): `path` is `DIR/NAME`, the lower entry it deletes.
    Whiteout = 8,
    /// An opaque marker (`DIR/.wh..wh..opq` in the tar): `path` is `DIR`, whose lower contents it hides.
    Opaque = 9,
}

impl EntryKind {
    /// The kind stored as byte `b` (see [`EntryKind`]'s discriminants), if valid.
    pub fn from_u8(b: u8) -> Option<EntryKind> {
        Some(match b {
            1 => EntryKind::File,
            2 => EntryKind::Dir,
            3 => EntryKind::Symlink,
            4 => EntryKind::Hardlink,
            5 => EntryKind::CharDevice,
            6 => EntryKind::BlockDevice,
            7 => EntryKind::Fifo,
            8 => EntryKind::Whiteout,
            9 => EntryKind::Opaque,
            _ => return None,
        })
    }
}

/// One entry of a layer.
///
/// `path` is normalised: relative, `/`-separated, no `.` or `..` components, no trailing slash. It is empty
/// only for the layer's root directory (`./` in the tar), which is always a [`EntryKind::Dir`] and carries the
/// root's owner, mode, times and xattrs. It is raw bytes: tar names need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalised path (for whiteouts, the path deleted; for opaque markers, the directory); empty for
    /// the layer root.
    pub path: Vec<u8>,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size of a regular file's content; 0 for everything else.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of the modification time (from a PAX `mtime`).
    pub mtime_nsec: u32,
    /// Symlink target (verbatim) or hardlink target (normalised path); empty otherwise.
    pub link: Vec<u8>,
    /// Device major number.
    pub dev_major: u32,
    /// Device minor number.
    pub dev_minor: u32,
    /// Extended attributes (`SCHILY.xattr.NAME` PAX records), in tar order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Offset of the entry's content in the uncompressed tar stream (of its header, for entries without
    /// content).
    pub offset: u64,
}

/// Normalises a tar member name: strips leading `/` and `./`, drops `.` components and trailing slashes.
/// Returns `Ok(None)` for the layer root itself, and an error for a name with a `..` component (which
/// could climb out of the root) or a NUL byte.
pub fn normalise_path(name: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out: Vec<u8> = Vec::with_capacity(name.len());
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(Error::UnsafePath {
                    path: String::from_utf8_lossy(name).into_owned(),
                    reason: "has a '..' component",
                });
            }
            p if p.contains(&0) => {
                return Err(Error::UnsafePath {
                    path: String::from_utf8_lossy(name).into_owned(),
                    reason: "has a NUL byte",
                });
            }
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Splits a normalised path into its parent directory (empty for the root) and its last component.
pub fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalise_path(b"./a//b/").unwrap().unwrap(), b"a/b");
        assert_eq!(
            normalise_path(b"/etc/passwd").unwrap().unwrap(),
            b"etc/passwd"
        );
        assert_eq!(normalise_path(b"./").unwrap(), None);
        assert!(normalise_path(b"a/../../x").is_err());
        assert!(normalise_path(b"..").is_err());
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
    }
}
