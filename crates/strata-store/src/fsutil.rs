//! File helpers: atomic replacement (containers/storage `pkg/ioutils` AtomicWriteFile) and removal of trees
//! whose directories may be read-only.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::ids::random_hex;

/// Replaces `path` with `data` atomically: a temporary `.tmp-<name>…` file in the same directory is written,
/// flushed to disk (`fdatasync`), given `mode`, and renamed over `path`. Readers see the old or the new
/// content, never a mix; a crash leaves at most a stray temporary file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}{}", random_hex(6)));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .at(&tmp)?;
        file.write_all(data).at(&tmp)?;
        file.sync_data().at(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .at(&tmp)?;
        drop(file);
        fs::rename(&tmp, path).at(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `data` with [`write_atomic`], creating the parent directory (mode 0700) first if needed.
pub fn write_atomic_mkdir(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        create_dir_all_mode(parent, 0o700)?;
    }
    write_atomic(path, data, mode)
}

/// Creates `dir` and missing parents with `mode` (for the ones it creates).
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .at(dir)
}

/// Creates `dir` with `mode`; fine if it exists.
pub fn create_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Reads a whole file; `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Removes `path` (a file, a symlink or a whole tree, never following symlinks); fine if it does not exist.
/// Directories that are not writable (layer trees keep their image's modes, `0555` included) are made
/// writable by their owner first, so this works without root too.
pub fn remove_all(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        };
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_tree_writable(path)?;
            match fs::remove_dir_all(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn make_tree_writable(dir: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(dir).at(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700)).at(dir)?;
    }
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if entry.file_type().at(entry.path())?.is_dir() {
            make_tree_writable(&entry.path())?;
        }
    }
    Ok(())
}

/// The disk space `paths` take (`du`: allocated blocks, a file with several links counted once), not
/// following symbolic links nor descending into other mounts. Best effort: what cannot be read counts 0.
pub fn disk_usage(paths: &[&Path]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    paths.iter().map(|p| usage_of(p, None, &mut seen)).sum()
}

fn usage_of(
    path: &Path,
    dev: Option<u64>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if dev.is_some_and(|d| d != meta.dev()) {
        return 0;
    }
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(entries) = fs::read_dir(path)
    {
        for entry in entries.flatten() {
            total += usage_of(&entry.path(), Some(meta.dev()), seen);
        }
    }
    total
}

/// Moves file `from` to `to`: a rename, or — when they are on different mounts (`EXDEV`: the overlay home
/// is often a bind mount of its own) — a copy to a temporary file beside `to`, flushed and renamed over it,
/// then `from` removed. Readers of `to` see the whole file or none.
pub fn move_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => return Err(Error::io(to, e)),
    }
    let dir = to.parent().unwrap_or_else(|| Path::new("."));
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}{}", random_hex(6)));
    let result = (|| {
        let mut src = fs::File::open(from).at(from)?;
        let mut dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .at(&tmp)?;
        io::copy(&mut src, &mut dst).at(&tmp)?;
        dst.sync_data().at(&tmp)?;
        drop(dst);
        fs::rename(&tmp, to).at(to)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    remove_all(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_a_tree_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("sub/a"), vec![1u8; 100_000]).unwrap();
        fs::hard_link(d.join("sub/a"), d.join("b")).unwrap();
        std::os::unix::fs::symlink("/", d.join("root")).unwrap();
        let one = disk_usage(&[&d]);
        assert!((100_000..200_000).contains(&one), "{one}");
        assert_eq!(disk_usage(&[&d, &d.join("sub/a")]), one);
        assert_eq!(disk_usage(&[&dir.path().join("missing")]), 0);
    }
}
