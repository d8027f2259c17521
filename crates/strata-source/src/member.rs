//! Files of a local source, read in place: a file of a directory, or a member of a tar archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::{Error, Result};

/// A byte range of an open file: a whole file of a directory, or one member's data inside a tar archive.
/// Reads are positioned (`pread`), so one member can serve many readers and threads at once.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    file: Arc<File>,
    offset: u64,
    size: u64,
    path: PathBuf,
}

impl Member {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// How the member's bytes are compressed, from their first bytes (gzip's and zstd's magic numbers):
    /// for [`ImageSource::stored_compression`](crate::ImageSource::stored_compression) of a local source,
    /// where a media type may say otherwise.
    pub(crate) fn sniff_compression(&self) -> Result<strata_oci::media::Compression> {
        use strata_oci::media::Compression;
        let mut head = [0u8; 4];
        let n = self.read_at(0, &mut head)?;
        Ok(Compression::sniff(head.get(..n).unwrap_or_default()))
    }

    /// Reads up to `buf.len()` bytes at `offset` within the member; 0 at or past its end.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let left = self.size.saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        self.file
            .read_at(&mut buf[..want], self.offset + offset)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// A sequential reader over the whole member.
    pub(crate) fn reader(&self) -> MemberReader {
        MemberReader {
            member: self.clone(),
            pos: 0,
        }
    }

    /// The whole member, refused when larger than `limit`.
    pub(crate) fn read_all(&self, limit: u64, source_name: &str) -> Result<Vec<u8>> {
        if self.size > limit {
            return Err(Error::oci(
                source_name,
                strata_oci::Error::TooLarge {
                    what: self.path.display().to_string(),
                    size: self.size,
                    limit,
                },
            ));
        }
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.reader()
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(out)
    }
}

/// Sequential reads over a [`Member`].
pub(crate) struct MemberReader {
    member: Member,
    pos: u64,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.member.size.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self
            .member
            .file
            .read_at(&mut buf[..want], self.member.offset + self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is truncated", self.member.path.display()),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where the files of a local source live.
pub(crate) trait Tree: Send + Sync {
    /// The file at `path` (relative, `/`-separated), or `None` when there is none.
    fn member(&self, path: &str) -> Result<Option<Member>>;
}

/// A directory, opened so that no path (nor symlink in it) can lead outside it.
pub(crate) struct DirTree {
    dir: Dir,
    root: PathBuf,
}

impl DirTree {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let dir =
            Dir::open_ambient_dir(root, ambient_authority()).map_err(|e| Error::io(root, e))?;
        Ok(DirTree {
            dir,
            root: root.to_owned(),
        })
    }
}

impl Tree for DirTree {
    fn member(&self, path: &str) -> Result<Option<Member>> {
        let full = self.root.join(path);
        let file = match self.dir.open(path) {
            Ok(f) => f.into_std(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(full, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&full, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                &full,
                io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
            ));
        }
        Ok(Some(Member {
            file: Arc::new(file),
            offset: 0,
            size: meta.len(),
            path: full,
        }))
    }
}

/// How many members an archive may have before strata refuses to index it.
const MAX_ARCHIVE_MEMBERS: usize = 1 << 20;
/// How many symlinks or hardlinks one lookup may follow.
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug)]
enum TarKind {
    File { offset: u64, size: u64 },
    Link(String),
    Other,
}

/// A tar archive read in place: its members are indexed once, then served by positioned reads.
pub(crate) struct TarTree {
    file: Arc<File>,
    path: PathBuf,
    members: HashMap<String, TarKind>,
}

/// Normalises a member name or link target lexically: `./a//b/../c` → `a/c`. `None` when it climbs out of
/// the archive's root or is empty.
pub(crate) fn normalise(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl TarTree {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let err = |e| Error::io(path, e);
        let file = File::open(path).map_err(err)?;
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(BufReader::new(&file));
            for entry in archive.entries_with_seek().map_err(err)? {
                let entry = entry.map_err(err)?;
                if members.len() >= MAX_ARCHIVE_MEMBERS {
                    return Err(err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("more than {MAX_ARCHIVE_MEMBERS} members"),
                    )));
                }
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                // Names that climb out of the archive are never served.
                let Some(name) = normalise(&name) else {
                    continue;
                };
                let kind = match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => TarKind::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                    tar::EntryType::Symlink => {
                        let target = entry
                            .link_name_bytes()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                            .unwrap_or_default();
                        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                        let joined = if target.starts_with('/') {
                            target
                        } else {
                            format!("{parent}/{target}")
                        };
                        normalise(&joined).map_or(TarKind::Other, TarKind::Link)
                    }
                    tar::EntryType::Link => entry
                        .link_name_bytes()
                        .and_then(|t| normalise(&String::from_utf8_lossy(&t)))
                        .map_or(TarKind::Other, TarKind::Link),
                    _ => TarKind::Other,
                };
                members.insert(name, kind);
            }
        }
        Ok(TarTree {
            file: Arc::new(file),
            path: path.to_owned(),
            members,
        })
    }
}

impl Tree for TarTree {
    fn member(&self, path: &str) -> Result<Option<Member>> {
        let Some(mut name) = normalise(path) else {
            return Ok(None);
        };
        for _ in 0..=MAX_LINK_HOPS {
            match self.members.get(&name) {
                None => return Ok(None),
                Some(TarKind::File { offset, size }) => {
                    return Ok(Some(Member {
                        file: Arc::clone(&self.file),
                        offset: *offset,
                        size: *size,
                        path: self.path.join(&name),
                    }));
                }
                Some(TarKind::Link(target)) => name = target.clone(),
                Some(TarKind::Other) => {
                    return Err(Error::io(
                        self.path.join(&name),
                        io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
                    ));
                }
            }
        }
        Err(Error::io(
            self.path.join(path),
            io::Error::new(io::ErrorKind::InvalidData, "too many levels of links"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_contains_names() {
        assert_eq!(normalise("./a//b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalise("/index.json").as_deref(), Some("index.json"));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("a/../../x"), None);
        assert_eq!(normalise("."), None);
    }

    #[test]
    fn tar_members_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "./d/file", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "x/link", "../d/file").unwrap();
        b.append_link(&mut l, "loop", "loop").unwrap();
        b.append_link(&mut l, "out", "../../etc/passwd").unwrap();
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();

        let t = TarTree::open(&path).unwrap();
        let m = t.member("x/link").unwrap().unwrap();
        assert_eq!(m.read_all(100, "t").unwrap(), b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(m.read_at(2, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"llo");
        assert!(t.member("loop").is_err());
        assert!(
            t.member("out")
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(t.member("nope").unwrap().is_none());
        assert!(m.read_all(2, "t").is_err());
    }
}
