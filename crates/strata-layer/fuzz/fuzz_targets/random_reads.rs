//! Fuzzes random-access reads: arbitrary bytes as a gzip or zstd blob, read through `LayerReader` from a
//! checkpoint the input also picks (any bit offset, any window), the way a mount resumes inside a layer.
//! This reaches the resumed inflater (ISA-L: primed mid-byte, given the window) and the gzip member and
//! trailer handling after it. Errors and wrong bytes are fine; panics are bugs.
//!
//! Run: `cargo +nightly fuzz run random_reads` in `crates/strata-layer/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_index::Checkpoint;
use strata_layer::LayerReader;
use strata_oci::Digest;
use strata_oci::media::Compression;
use strata_image::{Blob, Error, ImageSource, RawManifest, Result};

/// One blob served from memory by range; nothing else.
struct Memory(Vec<u8>);

impl Memory {
    fn none<T>(&self) -> Result<T> {
        Err(Error::NotFound {
            what: "anything but blob ranges".into(),
            source_name: self.name().into(),
        })
    }
}

impl ImageSource for Memory {
    fn name(&self) -> &str {
        "memory:"
    }
    fn top_manifest(&self) -> Result<RawManifest> {
        self.none()
    }
    fn manifest(&self, _: &Digest, _: Option<&str>) -> Result<RawManifest> {
        self.none()
    }
    fn open_blob(&self, _: &Digest) -> Result<Blob> {
        self.none()
    }
    fn read_blob_at(&self, _: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    // pick (1), bit offset (2), window length (2), read offset (2), then the window and the blob.
    let Some((head, rest)) = data.split_at_checked(7) else {
        return;
    };
    let compression = if head[0] % 4 == 3 {
        Compression::Zstd
    } else {
        Compression::Gzip
    };
    let bit = u64::from(u16::from_le_bytes([head[1], head[2]]));
    let window = usize::from(u16::from_le_bytes([head[3], head[4]]) % ((32 << 10) + 1));
    let at = u64::from(u16::from_le_bytes([head[5], head[6]]));
    let (window, blob) = rest.split_at(window.min(rest.len()));
    let checkpoints = if head[0] % 2 == 0 {
        Vec::new()
    } else {
        vec![Checkpoint {
            compressed_bit_offset: bit,
            uncompressed_offset: 0,
            window: window.to_vec(),
        }]
    };
    let source = Memory(blob.to_vec());
    let reader = LayerReader::new(
        &source as &dyn ImageSource,
        Digest::sha256(blob),
        compression,
        checkpoints,
    );
    let mut buf = vec![0u8; 70_000];
    let _ = reader.read_at(at, &mut buf);
    let _ = reader.read_at(at.saturating_add(100_000), &mut buf[..1000]);
});
