//! Where a merged image's file bytes come from: the [`Contents`] trait and its two providers, shared by
//! every reader of an image (the scanner through [`crate::ImageView`], the FUSE mount).
//!
//! - [`BlobContents`] (`blob.rs`) decompresses the layer blobs through their checkpoints, a span at a time,
//!   into a bounded piece cache (`cache.rs`) shared by all readers, with read-ahead on worker threads
//!   (`ahead.rs`);
//! - [`DirContents`] (`dir.rs`) reads layers a store keeps unpacked, file by file, from their directories.

mod ahead;
mod blob;
mod cache;
mod dir;

pub use blob::BlobContents;
pub use dir::{DirContents, OPEN_FILES};

use crate::error::{Error, Result};

/// Largest decompressed piece [`BlobContents`] caches (each checkpoint span is cut into equal pieces of at
/// most this size).
pub const CHUNK: usize = 1 << 20;

/// Default budget of [`BlobContents`]' piece cache under a mount, in bytes (a mount serves many readers and
/// whole files at once).
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// Default budget of the piece cache for a scan ([`ContentOptions::default`]): a scanner reads a few files
/// or walks the tree once, and should stay small in memory; 16 chunks is the least that still reads one
/// span ahead on a worker (a whole-tree read such as `strata export` is 25 % slower without it).
pub const SCAN_CACHE_BYTES: usize = 16 << 20;

/// Span decoders a scan keeps open ([`ContentOptions::default`]): each holds its checked compressed span
/// (up to 4 MiB) and its decompressor's state.
pub const SCAN_DECODERS: usize = 2;

/// Span decoders a mount keeps open ([`ContentOptions::mount`]): many readers go through different
/// spans at once.
pub const MOUNT_DECODERS: usize = 12;

/// Where one regular file's bytes are: what a [`Contents`] reads.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    /// The layer's position in the image (0 = bottom).
    pub layer: usize,
    /// Offset of the content in the layer's uncompressed tar stream.
    pub offset: u64,
    /// Size of the content.
    pub size: u64,
    /// The entry's normalised path within its layer.
    pub path: &'a [u8],
}

/// A provider of regular files' bytes. `Send + Sync`: readers call it from several threads at once.
pub trait Contents: Send + Sync {
    /// Reads up to `buf.len()` bytes of `file` from `offset` within the file. Returns the number of bytes
    /// read: fewer than asked only at the file's end, 0 at or past it.
    fn read_at(&self, file: &FileRef<'_>, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// What was decompressed so far (zero for providers that decompress nothing).
    fn stats(&self) -> ContentStats {
        ContentStats::default()
    }
}

/// How [`BlobContents`] caches. The default suits a scan: [`SCAN_CACHE_BYTES`], no page cache above.
#[derive(Debug, Clone)]
pub struct ContentOptions {
    /// Budget of the piece cache, in bytes.
    pub cache_bytes: usize,
    /// A page cache sits above the reader (a FUSE mount: the kernel keeps what it read): a piece read
    /// wholly inside one file is dropped as soon as it was read, its memory going to the next piece.
    /// Without one (the scanner), pieces stay until evicted.
    pub page_cache_above: bool,
    /// Span decoders kept open (at least one): a decoder carries on from one piece of its checkpoint
    /// span to the next; one no longer kept starts again from the span's checkpoint when needed. A
    /// decoder that reached its span's end is dropped at once.
    pub decoders: usize,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            cache_bytes: SCAN_CACHE_BYTES,
            page_cache_above: false,
            decoders: SCAN_DECODERS,
        }
    }
}

impl ContentOptions {
    /// The options of a mount caching up to `cache_bytes`: the kernel's page cache above,
    /// [`MOUNT_DECODERS`] decoders.
    pub fn mount(cache_bytes: usize) -> Self {
        ContentOptions {
            cache_bytes,
            page_cache_above: true,
            decoders: MOUNT_DECODERS,
        }
    }
}

/// What a [`Contents`] decompressed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentStats {
    /// Checkpoint spans a decoder started on.
    pub spans_decoded: u64,
    /// Pieces (of at most [`CHUNK`] bytes) decompressed.
    pub pieces_decoded: u64,
}

/// Contents whose layers come from different providers: each layer's reads go to the provider given for
/// it.
pub(crate) struct LayeredContents {
    /// Per layer (0 = bottom), its provider.
    pub(crate) layers: Vec<std::sync::Arc<dyn Contents>>,
}

impl Contents for LayeredContents {
    fn read_at(&self, file: &FileRef<'_>, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.layers
            .get(file.layer)
            .ok_or_else(|| truncated(file.layer, file.path))?
            .read_at(file, offset, buf)
    }

    fn stats(&self) -> ContentStats {
        let mut seen: Vec<*const ()> = Vec::new();
        let mut total = ContentStats::default();
        for c in &self.layers {
            let ptr = std::sync::Arc::as_ptr(c).cast::<()>();
            if !seen.contains(&ptr) {
                seen.push(ptr);
                let s = c.stats();
                total.spans_decoded += s.spans_decoded;
                total.pieces_decoded += s.pieces_decoded;
            }
        }
        total
    }
}

/// The error of a read past the end of a layer's content.
fn truncated(layer: usize, path: &[u8]) -> Error {
    Error::Truncated {
        layer,
        path: String::from_utf8_lossy(path).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;

    /// Fills reads with its byte, and says it decoded one piece.
    struct Fill(u8);

    impl Contents for Fill {
        fn read_at(&self, _: &FileRef<'_>, _: u64, buf: &mut [u8]) -> Result<usize> {
            buf.fill(self.0);
            Ok(buf.len())
        }

        fn stats(&self) -> ContentStats {
            ContentStats {
                spans_decoded: 1,
                pieces_decoded: 1,
            }
        }
    }

    #[test]
    fn layered_contents_read_each_layer_from_its_provider_and_count_each_once() {
        let a: Arc<dyn Contents> = Arc::new(Fill(b'a'));
        let b: Arc<dyn Contents> = Arc::new(Fill(b'b'));
        let layered = LayeredContents {
            layers: vec![Arc::clone(&a), Arc::clone(&b), Arc::clone(&a)],
        };
        let file = |layer| FileRef {
            layer,
            offset: 0,
            size: 4,
            path: b"f",
        };
        let mut buf = [0u8; 4];
        for (layer, byte) in [(0, b'a'), (1, b'b'), (2, b'a')] {
            layered.read_at(&file(layer), 0, &mut buf).unwrap();
            assert_eq!(buf, [byte; 4]);
        }
        assert!(layered.read_at(&file(3), 0, &mut buf).is_err());
        assert_eq!(layered.stats().pieces_decoded, 2, "a provider counted once");
    }
}
