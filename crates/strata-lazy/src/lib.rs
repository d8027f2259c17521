//! Lazy layer reads: a layer's index and its files' bytes without reading the whole layer.
//!
//! This crate owns the ways strata finds a layer's index other than reading the layer, each a
//! [`strata_layer::LayerFinder`] the index seam asks, and the [`strata_layer::Contents`] providers that
//! then read file bytes by byte range from the layer's blob, checking every range against a digest before
//! serving a byte of it:
//!
//! - `toc` — layers that carry their own table of contents: eStargz (`stargz.index.json` and its footer)
//!   and zstd:chunked (both the footer and annotations of containers/storage ≤ 1.43, as Debian's skopeo
//!   writes them, and the current ones); every chunk checked against its `chunkDigest`, the table against
//!   the digest in the (verified) manifest's annotations.
//! - [`cache`] — [`IndexCache`], the local index cache: the index of a registry layer read whole once (with
//!   its span digests), kept under `$XDG_CACHE_HOME/strata` by blob digest, so that later commands read
//!   the layer through its checkpoints, each span checked; file locks and atomic renames for concurrent
//!   processes, a size limit with least-recently-used eviction, unsound entries removed and never trusted.
//! - `published` — strata's own layer indexes published to the image's repository as an OCI artifact
//!   whose `subject` is the image manifest ([`published::publish`]), found through the referrers API or
//!   the `sha256-<hex>` referrers tag ([`published::discover`]); each index fetched verified, and checked to
//!   describe the very blob it is listed for.
//!
//! **Invariants:** nothing from a table of contents is trusted before its digest was checked against the
//! manifest; no byte is served before the range holding it was checked; a hostile table is an error naming
//! the layer (and file), never a panic, a read outside the blob, or wrong bytes.
//!
//! **Must not depend on:** a transport's internals: layers are read through [`strata_image::ImageSource`],
//! and only published indexes use a registry, through `strata_source::Repository` (no HTTP type). Nor on
//! the store, FUSE, the CLI. It never prints.

pub mod cache;
mod chunks;
mod error;
pub mod published;
mod time;
pub mod toc;

pub use cache::{CacheEntry, DEFAULT_MAX_BYTES, IndexCache};
pub use error::{Error, Result};
pub use toc::{TocFinder, TocFormat};

use std::sync::Arc;

use strata_layer::LayerFinder;
use strata_source::SourceOptions;

/// Default budget of the verified-chunk cache a [`TocFinder`] shares among an image's layers.
pub const DEFAULT_CHUNK_CACHE_BYTES: u64 = 64 << 20;

/// How lazy reads are set up for one opened image.
#[derive(Debug, Clone)]
pub struct LazyOptions {
    /// Budget of the verified-chunk cache of layers read through their tables of contents.
    pub chunk_cache_bytes: u64,
    /// The local index cache to look in (and keep the indexes of layers read whole in), if any.
    pub index_cache: Option<IndexCache>,
    /// Look for indexes published to the image's registry, reaching it with these options: `None`, don't.
    /// Only images named by tag use them (see [`published::PublishedFinder`]).
    pub published: Option<SourceOptions>,
}

impl Default for LazyOptions {
    /// Tables of contents only: no index cache, no published indexes.
    fn default() -> Self {
        LazyOptions {
            chunk_cache_bytes: DEFAULT_CHUNK_CACHE_BYTES,
            index_cache: None,
            published: None,
        }
    }
}

/// The finders, in the order the index seam asks them, for one image opened with `options`: the one place
/// that decides which lazy ways strata tries. A layer's own table of contents first (it needs no index
/// from anyone and every chunk has a digest the manifest vouches for), then the local index cache (built
/// here from a verified full read), then an index published to the registry (fetched from it).
pub fn finders(options: &LazyOptions) -> Vec<Arc<dyn LayerFinder>> {
    let mut finders: Vec<Arc<dyn LayerFinder>> =
        vec![Arc::new(TocFinder::new(options.chunk_cache_bytes))];
    if let Some(cache) = &options.index_cache {
        finders.push(Arc::new(cache.clone()));
    }
    if let Some(source_options) = &options.published {
        finders.push(Arc::new(published::PublishedFinder::new(
            source_options.clone(),
        )));
    }
    finders
}
