//! [`DirContents`]: file bytes read from layers kept unpacked (a store's `diff` directories).

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Contents, FileRef, truncated};
use crate::dir::{LayerDir, read_full_at};
use crate::error::{Error, Result};

/// How many files [`DirContents`] keeps open.
pub const OPEN_FILES: usize = 512;

/// File bytes read from each layer's directory: a file is opened by its path in its layer (resolved inside
/// the directory, see [`LayerDir`]) and checked against the size its index records, then kept open in a
/// table of up to [`OPEN_FILES`] files (the least recently used half closed when it is full), so a file read
/// in many requests is opened once. There is nothing to decompress and nothing to cache beyond that: the kernel's page cache holds the
/// files' pages (and the mount's own pages, as for any FUSE file system).
pub struct DirContents {
    /// Per layer (0 = bottom), its directory (`None`: a layer this provider does not read).
    layers: Vec<Option<LayerDir>>,
    open: Mutex<OpenFiles>,
}

/// The open-file table, keyed by (layer, offset of the content in the layer's tar), which names one
/// entry of one layer.
#[derive(Default)]
struct OpenFiles {
    files: HashMap<(usize, u64), (Arc<File>, u64)>,
    tick: u64,
}

impl std::fmt::Debug for DirContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirContents")
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl DirContents {
    /// Reads the layers from `layers`, bottom first (the same order as the image's indexes); a layer
    /// without a directory cannot be read here.
    pub fn new(layers: Vec<Option<LayerDir>>) -> DirContents {
        DirContents {
            layers,
            open: Mutex::new(OpenFiles::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OpenFiles> {
        // The table holds no invariant a panic elsewhere could break: use it anyway.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open file of `file` (of layer directory `dir`), opening it if it is not in the table.
    fn file(&self, dir: &LayerDir, file: &FileRef<'_>) -> Result<Arc<File>> {
        let key = (file.layer, file.offset);
        {
            let mut open = self.lock();
            open.tick += 1;
            let tick = open.tick;
            if let Some((f, used)) = open.files.get_mut(&key) {
                *used = tick;
                return Ok(Arc::clone(f));
            }
        }
        let opened = Arc::new(dir.open_file(file.path, file.size)?);
        let mut open = self.lock();
        if open.files.len() >= OPEN_FILES {
            // Close the least recently used half at once: one pass per OPEN_FILES / 2 opens, not one per
            // open (a scan per open was 6 % of a cold `cat` of every file).
            let mut ticks: Vec<u64> = open.files.values().map(|(_, used)| *used).collect();
            let (_, &mut median, _) = ticks.select_nth_unstable(OPEN_FILES / 2);
            open.files.retain(|_, (_, used)| *used > median);
        }
        let tick = open.tick;
        open.files.insert(key, (Arc::clone(&opened), tick));
        Ok(opened)
    }
}

impl Contents for DirContents {
    fn read_at(&self, file: &FileRef<'_>, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let left = file.size.saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let dir = self
            .layers
            .get(file.layer)
            .and_then(Option::as_ref)
            .ok_or_else(|| truncated(file.layer, file.path))?;
        let f = self.file(dir, file)?;
        let n = read_full_at(&f, offset, &mut buf[..want]).map_err(|source| Error::Io {
            path: dir.path().join(String::from_utf8_lossy(file.path).as_ref()),
            source,
        })?;
        if n < want {
            // The file shrank after it was checked.
            return Err(truncated(file.layer, file.path));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_and_keeps_files_open() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("diff");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::write(layer.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
        let contents = DirContents::new(vec![Some(LayerDir::open(&layer).unwrap())]);
        let file = FileRef {
            layer: 0,
            offset: 512,
            size: 20,
            path: b"etc/hosts",
        };
        let mut buf = [0u8; 64];
        assert_eq!(contents.read_at(&file, 10, &mut buf).unwrap(), 10);
        assert_eq!(&buf[..10], b"localhost\n");
        assert_eq!(contents.read_at(&file, 20, &mut buf).unwrap(), 0);
        // Kept open: removing the name does not stop reads of the file already open.
        std::fs::remove_file(layer.join("etc/hosts")).unwrap();
        assert_eq!(contents.read_at(&file, 0, &mut buf).unwrap(), 20);
        // A missing file or another layer is an error, not a panic.
        let other = FileRef { layer: 3, ..file };
        assert!(contents.read_at(&other, 0, &mut buf).is_err());
    }

    #[test]
    fn the_open_file_table_stays_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let n = OPEN_FILES + OPEN_FILES / 2 + 7;
        for i in 0..n {
            std::fs::write(tmp.path().join(format!("f{i}")), format!("{i:08}")).unwrap();
        }
        let contents = DirContents::new(vec![Some(LayerDir::open(tmp.path()).unwrap())]);
        let mut buf = [0u8; 8];
        for round in 0..2 {
            for i in 0..n {
                let path = format!("f{i}");
                let file = FileRef {
                    layer: 0,
                    offset: i as u64 * 1024,
                    size: 8,
                    path: path.as_bytes(),
                };
                assert_eq!(contents.read_at(&file, 0, &mut buf).unwrap(), 8);
                assert_eq!(buf, *format!("{i:08}").as_bytes(), "round {round}");
                assert!(contents.lock().files.len() <= OPEN_FILES);
            }
        }
    }
}
