//! What each layer of an image holds and how much of it the final image still shows: [`LayerReport`], the
//! efficiency `dive` reports.

use std::collections::HashSet;

use serde::Serialize;
use strata_index::EntryKind;

use crate::image::{Result, ScanImage};

/// One layer's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerFiles {
    /// The layer's position (0 = bottom).
    pub index: usize,
    /// The layer blob's digest.
    pub digest: String,
    /// Real entries (files, directories, links, devices, fifos) the layer holds.
    pub entries: usize,
    /// Of those, the paths no lower layer has (new to the image).
    pub added: usize,
    /// Of those, the paths a lower layer has (replaced or, for directories, updated).
    pub modified: usize,
    /// Whiteouts and opaque markers: paths (or directory contents) the layer deletes from the layers below.
    pub removed: usize,
    /// Bytes of its regular files' contents.
    pub bytes: u64,
    /// Of those, the bytes the final image does not show: files a later layer overwrites or deletes.
    pub wasted_bytes: u64,
}

/// Every layer's files, and the image's efficiency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    /// The layers, bottom first.
    pub layers: Vec<LayerFiles>,
    /// Bytes of regular-file content in all layers.
    pub total_bytes: u64,
    /// Of those, the bytes no path of the final image shows.
    pub wasted_bytes: u64,
    /// `(total_bytes - wasted_bytes) / total_bytes`, 1 for an image without file content.
    pub efficiency: f64,
}

impl ScanImage {
    /// What each layer holds: its entries (new to the image or replacing a lower one), the deletions it
    /// makes, its bytes and how many of them later layers waste by overwriting or deleting the files. A file's
    /// bytes count as used when a visible path shows them, directly or through a hardlink.
    pub fn layer_report(&self) -> Result<LayerReport> {
        let merged = self.view().merged();
        // (layer, offset in its tar) of every regular file's bytes the final tree shows.
        let mut visible: HashSet<(usize, u64)> = HashSet::new();
        for item in merged.walk() {
            let (_, m) = item?;
            if matches!(m.entry.kind(), EntryKind::File | EntryKind::Hardlink) {
                let (layer, data) = self.view().data_entry(m.layer, m.entry)?;
                visible.insert((layer, data.offset()));
            }
        }
        let mut layers = Vec::new();
        for (i, index) in merged.layers().iter().enumerate() {
            let mut files = LayerFiles {
                index: i,
                digest: index.layer().blob_digest.clone(),
                entries: 0,
                added: 0,
                modified: 0,
                removed: 0,
                bytes: 0,
                wasted_bytes: 0,
            };
            for entry in index.iter() {
                let entry = entry?;
                if entry.is_marker() {
                    files.removed += 1;
                    continue;
                }
                files.entries += 1;
                let below = match i.checked_sub(1) {
                    Some(lower) => merged.lookup_below(&entry.path(), lower)?.is_some(),
                    None => false,
                };
                if below {
                    files.modified += 1;
                } else {
                    files.added += 1;
                }
                if entry.kind() == EntryKind::File {
                    files.bytes += entry.size();
                    if !visible.contains(&(i, entry.offset())) {
                        files.wasted_bytes += entry.size();
                    }
                }
            }
            layers.push(files);
        }
        let total_bytes: u64 = layers.iter().map(|l| l.bytes).sum();
        let wasted_bytes: u64 = layers.iter().map(|l| l.wasted_bytes).sum();
        let efficiency = if total_bytes == 0 {
            1.0
        } else {
            (total_bytes - wasted_bytes) as f64 / total_bytes as f64
        };
        Ok(LayerReport {
            layers,
            total_bytes,
            wasted_bytes,
            efficiency,
        })
    }
}
