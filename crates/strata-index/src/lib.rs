//! The layer index: what is in a layer, answerable without reading the layer.
//!
//! This crate owns [`Entry`] (one entry of a layer, whiteouts already decoded), the index file format
//! (a versioned binary table of every entry plus random-access checkpoints into the compressed blob,
//! memory-mapped and searched in place; see [`format`](mod@format) and docs/FORMAT.md), and the merged view of a stack of
//! layers.
//!
//! * [`IndexWriter`] takes a layer's entries in tar order (later duplicates win), its [`Checkpoint`]s and
//!   [`LayerInfo`], and writes the index file atomically.
//! * [`LayerIndex`] opens one (mmap) and answers `lookup`, `marker`, `readdir`, `iter` and `checkpoint_for`
//!   with binary searches over the records in place, handing out [`EntryRef`]s that borrow the file; its
//!   [`SpanDigest`]s (format 1.2) let a range read of the blob be checked span by span.
//! * [`MergedView`] stacks layer indexes and applies the OCI whiteout, opaque-directory and type-change rules
//!   lazily: `lookup`, `readdir`, `lookup_below` (hardlink targets) and `walk`.
//!
//! **Invariants:** no I/O beyond the index file itself; every read of an index validates offsets and lengths
//! before use, so a corrupt or hostile index gives [`Error::BadIndex`], never a panic or an out-of-bounds read.
//! **Must not depend on:** other strata crates, thread pools, the store, FUSE.

mod entry;
mod error;
pub mod format;
mod merged;
mod reader;
mod writer;

pub use entry::{Entry, EntryKind, normalise_path, split_parent};
pub use error::{Error, Result};
pub use merged::{MergedEntry, MergedView, Walk};
pub use reader::{
    CheckpointRef, Checkpoints, Entries, EntryRef, IMPLICIT_DIR_MODE, LayerIndex, ReadDir, Xattrs,
};
pub use writer::{Checkpoint, IndexWriter, LayerInfo, SpanDigest};
