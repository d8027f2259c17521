//! The local index cache: the index of a registry layer read whole once, kept so that later commands on
//! any image sharing the layer read only the ranges they need ([`IndexCache`]).
//!
//! ```text
//! DIR/                      $XDG_CACHE_HOME/strata (~/.cache/strata), or --cache-dir
//! DIR/lock                  flock: exclusive while an entry is added, removed or evicted
//! DIR/index/sha256/<hex>    one layer index (docs/FORMAT.md, with span digests) per blob digest
//! DIR/index/tmp/<pid>-<n>   an entry being written (renamed into place once fsynced)
//! ```
//!
//! An entry's modification time is when it was last used (set on every hit): eviction removes the least
//! recently used entries first, until the entries fit the size limit. Entries appear only by `rename(2)`
//! of a complete, fsynced file, so a reader sees a whole entry or none; one that is truncated or corrupt
//! anyway (a disk error, a hand edit), lacks span digests, or describes another blob is removed and
//! ignored, never trusted. The index is trusted as the pass that verified its blob built it, and every
//! range read through it is checked against its span digests.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, flock};
use strata_image::{ImageSource, ResolvedImage};
use strata_index::{IndexWriter, LayerIndex};
use strata_layer::{FoundLayer, IndexOrigin, LayerFinder, LayerSpec};
use strata_oci::Digest;

use crate::error::{Error, Result};

/// The default size limit of the cache: 1 GiB of indexes (an index is about 1% of its layer's tar).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Temporary files older than this are left over by a process that died while writing: eviction removes
/// them.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// One entry of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The blob digest the entry is the index of.
    pub digest: Digest,
    /// The entry's file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last used (or added).
    pub last_used: SystemTime,
}

/// Layer indexes kept by blob digest, for layers read whole from a registry: a [`LayerFinder`] that finds
/// the layers it keeps (read through their checkpoints and span digests) and keeps the layers read whole.
/// Safe for concurrent processes; bounded by a size limit with least-recently-used eviction. See the
/// module docs for the directory's layout.
#[derive(Debug, Clone)]
pub struct IndexCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl IndexCache {
    /// The cache directory when none is given: `$XDG_CACHE_HOME/strata`, else `$HOME/.cache/strata`
    /// (`None` without either, or with relative ones, which the XDG spec says to ignore).
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |v: std::ffi::OsString| {
            let p = PathBuf::from(v);
            p.is_absolute().then_some(p)
        };
        std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .map(|p| p.join("strata"))
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|p| p.join(".cache").join("strata"))
            })
    }

    /// The cache in `dir` (created, mode 0700, if missing), holding at most `max_bytes` of entries.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<IndexCache> {
        let cache = IndexCache {
            dir: dir.to_path_buf(),
            max_bytes,
        };
        for d in [dir.to_path_buf(), cache.entries_dir(), cache.tmp_dir()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(|source| Error::Cache { path: d, source })?;
        }
        Ok(cache)
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn entries_dir(&self) -> PathBuf {
        self.dir.join("index").join("sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("index").join("tmp")
    }

    /// Where the index of blob `digest` is kept (only sha256 blobs are cached).
    pub fn entry_path(&self, digest: &Digest) -> Option<PathBuf> {
        (digest.algorithm() == strata_oci::Algorithm::Sha256)
            .then(|| self.entries_dir().join(digest.hex()))
    }

    /// Holds the cache's lock (exclusive) until dropped.
    fn lock(&self) -> Result<File> {
        let path = self.dir.join("lock");
        let err = |source| Error::Cache {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(err(e.into())),
            }
        }
    }

    /// The index of blob `digest` (whose size is `size`, when known), if the cache has a sound one: it
    /// opens (checksum and bounds), has span digests, and describes that blob. An entry that does not is
    /// removed. A hit counts as a use.
    pub fn get(&self, digest: &Digest, size: Option<u64>) -> Result<Option<(LayerIndex, PathBuf)>> {
        let Some(path) = self.entry_path(digest) else {
            return Ok(None);
        };
        match self.load(&path, digest, size) {
            Ok(Some(index)) => {
                // Used now (a failure only makes it look older).
                let _ = File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_times(FileTimes::new().set_modified(SystemTime::now())));
                Ok(Some((index, path)))
            }
            Ok(None) => Ok(None),
            Err(_) => {
                // Unsound: remove it, under the lock, unless a sound one replaced it meanwhile.
                let _lock = self.lock()?;
                if self.load(&path, digest, size).is_err() {
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(source) => return Err(Error::Cache { path, source }),
                    }
                }
                Ok(None)
            }
        }
    }

    /// The entry at `path`: `Ok(None)` if there is none, `Err` if it is unsound.
    fn load(
        &self,
        path: &Path,
        digest: &Digest,
        size: Option<u64>,
    ) -> std::result::Result<Option<LayerIndex>, String> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let index = LayerIndex::from_bytes(bytes).map_err(|e| e.to_string())?;
        let layer = index.layer();
        if !index.has_span_digests() {
            return Err("no span digests".into());
        }
        if layer.blob_digest != digest.to_string() {
            return Err(format!("describes blob {}", layer.blob_digest));
        }
        if size.is_some_and(|s| s != layer.blob_size) {
            return Err(format!("says the blob has {} bytes", layer.blob_size));
        }
        Ok(Some(index))
    }

    /// Keeps `index` as the index of blob `digest`, then evicts the least recently used entries until the
    /// cache fits its limit. An index without span digests (or of a blob of another digest) is not kept:
    /// `Ok(false)`.
    pub fn put(&self, digest: &Digest, index: &IndexWriter) -> Result<bool> {
        let Some(path) = self.entry_path(digest) else {
            return Ok(false);
        };
        let bytes = index.try_to_bytes()?;
        let parsed = LayerIndex::from_bytes(bytes.clone())?;
        if !parsed.has_span_digests() || parsed.layer().blob_digest != digest.to_string() {
            return Ok(false);
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = self.tmp_dir().join(format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| -> io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Cache { path: tmp, source });
        }
        let _lock = self.lock()?;
        if let Err(source) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Cache { path, source });
        }
        let _ = File::open(self.entries_dir()).and_then(|d| d.sync_all());
        self.evict_locked(self.max_bytes, Some(&path))?;
        Ok(true)
    }

    /// Every entry, least recently used first.
    pub fn entries(&self) -> Result<Vec<CacheEntry>> {
        let dir = self.entries_dir();
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Cache { path: dir, source }),
        };
        let mut out = Vec::new();
        for item in read {
            let item = item.map_err(|source| Error::Cache {
                path: dir.clone(),
                source,
            })?;
            let name = item.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
            else {
                continue;
            };
            // Gone meanwhile (another process evicted it): skip it.
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            out.push(CacheEntry {
                digest,
                path: item.path(),
                size: meta.len(),
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| (a.last_used, &a.path).cmp(&(b.last_used, &b.path)));
        Ok(out)
    }

    /// Removes the least recently used entries until the rest hold at most `max_bytes` (0: all of them);
    /// returns what was removed.
    pub fn prune(&self, max_bytes: u64) -> Result<Vec<CacheEntry>> {
        let _lock = self.lock()?;
        self.evict_locked(max_bytes, None)
    }

    /// [`IndexCache::prune`] under the lock, sparing `keep` (the entry just added) unless it alone is over
    /// the limit; also removes temporary files left by dead writers.
    fn evict_locked(&self, max_bytes: u64, keep: Option<&Path>) -> Result<Vec<CacheEntry>> {
        if let Ok(read) = fs::read_dir(self.tmp_dir()) {
            for item in read.flatten() {
                let stale = item
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TMP);
                if stale {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut removed = Vec::new();
        let (spared, others): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|e| keep.is_some_and(|k| k == e.path));
        for e in others.into_iter().chain(spared) {
            if total <= max_bytes {
                break;
            }
            match fs::remove_file(&e.path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Cache {
                        path: e.path,
                        source,
                    });
                }
            }
            total = total.saturating_sub(e.size);
            removed.push(e);
        }
        Ok(removed)
    }
}

impl LayerFinder for IndexCache {
    fn find(
        &self,
        _source: &Arc<dyn ImageSource>,
        _image: &ResolvedImage,
        _at: usize,
        spec: &LayerSpec,
    ) -> strata_layer::Result<Option<FoundLayer>> {
        // A cache that cannot be read is a miss: the layer is then read whole, as without a cache.
        let Ok(Some((index, path))) = self.get(&spec.digest, spec.size) else {
            return Ok(None);
        };
        Ok(Some(FoundLayer {
            index,
            contents: None,
            origin: IndexOrigin::Cache(path),
        }))
    }

    fn layer_read(&self, spec: &LayerSpec, index: &IndexWriter) -> strata_layer::Result<()> {
        // A cache that cannot be written (a full disk, a read-only home) only costs the next command a
        // full read: it does not fail this one.
        let _ = self.put(&spec.digest, index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use strata_index::{Entry, EntryKind, LayerInfo, SpanDigest};

    use super::*;

    /// An index of blob `digest` (100 bytes), with span digests when `spans`, padded to about `pad` bytes.
    fn index(digest: &Digest, spans: bool, pad: usize) -> IndexWriter {
        let mut w = IndexWriter::new();
        w.push(Entry {
            path: b"etc/hosts".to_vec(),
            kind: EntryKind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            link: vec![b'x'; pad],
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
            offset: 0,
        });
        w.set_layer(LayerInfo {
            blob_digest: digest.to_string(),
            blob_size: 100,
            ..LayerInfo::default()
        });
        if spans {
            w.set_spans(vec![SpanDigest {
                start: 0,
                end: 100,
                sha256: [1; 32],
            }]);
        }
        w
    }

    fn blob(n: u8) -> Digest {
        Digest::sha256(&[n])
    }

    #[test]
    fn an_index_kept_is_found_and_a_bad_entry_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(&tmp.path().join("c"), DEFAULT_MAX_BYTES).unwrap();
        let d = blob(1);
        assert!(cache.get(&d, Some(100)).unwrap().is_none());
        assert!(cache.put(&d, &index(&d, true, 0)).unwrap());
        let (found, path) = cache.get(&d, Some(100)).unwrap().unwrap();
        assert_eq!(found.layer().blob_digest, d.to_string());
        assert_eq!(path, tmp.path().join("c/index/sha256").join(d.hex()));
        // Another size than the index says: removed.
        assert!(cache.get(&d, Some(99)).unwrap().is_none());
        assert!(!path.exists());
        // Without span digests, or of another blob: not kept.
        assert!(!cache.put(&d, &index(&d, false, 0)).unwrap());
        assert!(!cache.put(&d, &index(&blob(2), true, 0)).unwrap());
        assert!(cache.entries().unwrap().is_empty());
        // Truncated, corrupt, another blob's or without span digests on disk: removed, never trusted.
        let good = index(&d, true, 0).to_bytes();
        let bad: [Vec<u8>; 4] = [
            good[..good.len() - 10].to_vec(),
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 1] ^= 1;
                b
            },
            index(&blob(2), true, 0).to_bytes(),
            index(&d, false, 0).to_bytes(),
        ];
        for bytes in bad {
            fs::write(&path, bytes).unwrap();
            assert!(cache.get(&d, None).unwrap().is_none());
            assert!(!path.exists(), "an unsound entry is removed");
        }
    }

    #[test]
    fn the_least_recently_used_entries_go_first() {
        let tmp = tempfile::tempdir().unwrap();
        let one = index(&blob(1), true, 10_000).to_bytes().len() as u64;
        // Room for three entries.
        let cache = IndexCache::open(tmp.path(), 3 * one + 100).unwrap();
        let old = SystemTime::now() - Duration::from_secs(1000);
        for n in 1..=3 {
            cache.put(&blob(n), &index(&blob(n), true, 10_000)).unwrap();
            // Used in order 1, 2, 3, a second apart.
            let path = cache.entry_path(&blob(n)).unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_times(FileTimes::new().set_modified(old + Duration::from_secs(u64::from(n))))
                .unwrap();
        }
        // 1 is used again: 2 is now the least recently used.
        assert!(cache.get(&blob(1), None).unwrap().is_some());
        cache.put(&blob(4), &index(&blob(4), true, 10_000)).unwrap();
        let left: Vec<Digest> = cache
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.digest)
            .collect();
        // (1 and 4 were used within the file system's clock tick: their order is not tested.)
        assert_eq!(left.len(), 3);
        assert_eq!(left[0], blob(3));
        assert!(!left.contains(&blob(2)), "2 was the least recently used");
        // Pruning to a size, then to nothing.
        let removed = cache.prune(one + 100).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(cache.entries().unwrap().len(), 1);
        cache.prune(0).unwrap();
        assert!(cache.entries().unwrap().is_empty());
    }

    #[test]
    fn writers_at_once_leave_sound_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(tmp.path(), DEFAULT_MAX_BYTES).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let cache = cache.clone();
                s.spawn(move || {
                    for n in 0..20u8 {
                        let d = blob(n % 5);
                        cache
                            .put(&d, &index(&d, true, usize::from(t) * 100))
                            .unwrap();
                        let _ = cache.get(&d, Some(100)).unwrap();
                    }
                });
            }
        });
        for n in 0..5 {
            assert!(cache.get(&blob(n), Some(100)).unwrap().is_some());
        }
        assert_eq!(fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
    }
}
