//! The layer engine: a layer blob in, a verified layer out — its index built, and optionally its files
//! written — in one streaming pass.
//!
//! This crate owns reading layers: decompression (gzip, zstd, plain; detected by magic and checked against
//! the media type), verification (the blob's digest and size, and the uncompressed tar's diff ID), tar parsing
//! into [`strata_index::Entry`] values, and unpacking them safely into a directory, either in overlay form (a
//! containers/storage `diff` dir) or squashed into one root filesystem. Reading images without unpacking
//! them goes through two seams owned here: the index seam ([`indexes`]: each layer's index kept by the
//! source, kept in an [`IndexDir`], or built by reading the layer) and the contents seam ([`contents`]: file
//! bytes from the blobs through a shared piece cache and read-ahead, or from a store's layer directories),
//! joined in [`ImageView`], which the scanner and the FUSE mount both read through.
//! It also owns the workspace's one tar-split writer and CRC-64 ([`tarsplit`]), which the store's pull and
//! strata-copy's zstd:chunked writer both record layers with.
//!
//! **Invariants:** nothing holds a whole layer in memory; nothing is created, linked, changed or removed
//! outside the target directory, whatever the layer contains; data from a layer never causes a panic.
//! **Must not depend on:** any transport (`strata-source`: it sees images only through `strata-image`'s
//! `ImageSource`, so no HTTP or TLS crate is below it), the store, FUSE, the CLI. Never prints.

pub mod contents;
mod decode;
pub mod dir;
mod error;
mod image;
pub mod indexes;
mod isal;
mod pipeline;
pub mod random;
mod reader;
mod spans;
pub mod tarsplit;
pub mod unpack;
mod view;
mod zlib;

pub use contents::{BlobContents, ContentOptions, ContentStats, Contents, DirContents, FileRef};
pub use decode::{CHECKPOINT_SPAN, DecompressReader};
pub use dir::LayerDir;
pub use error::{Error, Result};
pub use image::{
    IndexedLayer, index_layer, index_layers, layer_specs, source_layer_specs, unpack_layers,
};
pub use indexes::{
    FoundLayer, IndexDir, IndexOptions, IndexOrigin, LayerFinder, ObtainedLayer, obtain_layer,
    obtain_layers,
};
pub use pipeline::{ChannelReader, LayerSpec, LayerSummary, read_layer, read_layer_with_tar};
pub use random::LayerReader;
pub use reader::{entry_named, read_entries};
pub use spans::probe;
pub use view::{ImageView, ViewOptions};
