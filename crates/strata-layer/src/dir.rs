//! Layers kept unpacked in a directory — a containers/storage overlay `diff/` dir — read file by file.
//!
//! A store keeps each layer's files, not its blob; the layer's index (built when the layer was stored)
//! still describes every entry, so a file's bytes are read from the file of the same path in the directory.
//! Paths are resolved as the unpacker resolves them: with `openat2(2)` and `RESOLVE_IN_ROOT`, so a symlink on
//! the way is followed as if the directory were `/`, and the file itself is opened with `O_NOFOLLOW`. Nothing
//! outside the directory is ever opened, whatever the index or the directory holds.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use crate::error::{Error, Result};
use crate::unpack::resolve_in;

/// Flags for opening a layer's file: read-only, never through a symlink, never blocking on a fifo.
const FILE_READ: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// A layer unpacked in a directory: opens its regular files by their path in the layer. Clones share the
/// directory handle.
#[derive(Debug, Clone)]
pub struct LayerDir {
    path: PathBuf,
    root: Arc<OwnedFd>,
    /// The file [`LayerDir::read_at`] read last (its path and size, as asked), kept open: a file read in
    /// pieces is opened, and checked, once.
    last: Arc<Mutex<Option<OpenFile>>>,
}

/// A file opened by [`LayerDir::read_at`]: its path and size as asked, and the file.
type OpenFile = (Vec<u8>, u64, Arc<File>);

impl LayerDir {
    /// Opens the layer directory at `path` (an `O_PATH` handle: the directory may not be renamed away
    /// under a reader, and later lookups start from it).
    pub fn open(path: &Path) -> Result<LayerDir> {
        let root = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(LayerDir {
            path: path.to_path_buf(),
            root: Arc::new(root),
            last: Arc::new(Mutex::new(None)),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file at `rel` (the entry's path in the layer, `/`-separated, without a leading
    /// `/`) and checks that it is a regular file of `size` bytes: a directory that no longer matches its
    /// index (changed or damaged since the layer was stored) is reported, never read silently.
    pub fn open_file(&self, rel: &[u8], size: u64) -> Result<File> {
        let shown = || self.path.join(String::from_utf8_lossy(rel).as_ref());
        let io_err = |e: rustix::io::Errno| Error::Io {
            path: shown(),
            source: e.into(),
        };
        let rel = trim_slashes(rel);
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&[][..], rel),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Error::Unpack {
                path: shown(),
                reason: "not a file name".into(),
            });
        }
        let dir = resolve_in(self.root.as_fd(), parent).map_err(io_err)?;
        let fd = rfs::openat(dir.as_fd(), name, FILE_READ, Mode::empty()).map_err(io_err)?;
        let st = rfs::fstat(&fd).map_err(io_err)?;
        let found = u64::try_from(st.st_size).unwrap_or(0);
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || found != size {
            return Err(Error::Unpack {
                path: shown(),
                reason: format!(
                    "not the regular file of {size} bytes the layer's index describes (the layer \
                     directory was changed or damaged)"
                ),
            });
        }
        Ok(File::from(fd))
    }

    /// Reads up to `buf.len()` bytes of the file at `rel` (of `size` bytes, per the index) from `offset`.
    /// Returns fewer bytes only at the file's end. Reading on in the same file reuses its open descriptor.
    pub fn read_at(&self, rel: &[u8], size: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let file = {
            // Nothing a panic elsewhere could leave half-done here: use the slot anyway.
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            match &*last {
                Some((p, s, f)) if p == rel && *s == size => Arc::clone(f),
                _ => {
                    let f = Arc::new(self.open_file(rel, size)?);
                    *last = Some((rel.to_vec(), size, Arc::clone(&f)));
                    f
                }
            }
        };
        read_full_at(&file, offset, buf).map_err(|source| Error::Io {
            path: self.path.join(String::from_utf8_lossy(rel).as_ref()),
            source,
        })
    }
}

/// Reads from `offset` until `buf` is full or the file ends.
pub fn read_full_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn trim_slashes(mut p: &[u8]) -> &[u8] {
    while let [b'/', rest @ ..] = p {
        p = rest;
    }
    while let [rest @ .., b'/'] = p {
        p = rest;
    }
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_files_and_refuses_escapes() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("diff");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), b"hello").unwrap();
        std::fs::write(outer.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink("/", dir.join("up")).unwrap();
        std::os::unix::fs::symlink("../../secret", dir.join("a/link")).unwrap();
        let layer = LayerDir::open(&dir).unwrap();

        let mut buf = [0u8; 16];
        let n = layer.read_at(b"a/b/f", 5, 1, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"ello");
        // The size must match the index's.
        assert!(layer.open_file(b"a/b/f", 4).is_err());
        // A symlink as the file itself is never followed.
        assert!(layer.open_file(b"a/link", 7).is_err());
        // A symlink on the way is resolved inside the directory: "up" is the directory itself.
        assert_eq!(layer.read_at(b"up/a/b/f", 5, 0, &mut buf).unwrap(), 5);
        assert!(layer.open_file(b"up/secret", 7).is_err());
        assert!(layer.open_file(b"../secret", 7).is_err());
        assert!(layer.open_file(b"a/b", 0).is_err());
        assert!(layer.open_file(b"", 0).is_err());
    }
}
