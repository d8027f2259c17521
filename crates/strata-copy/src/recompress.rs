//! Recompression: a layer decompressed, its tar checked against its diff ID, compressed again and hashed, in
//! one streaming pass into an anonymous temporary file (the new digest is known only at the end, and a
//! destination is handed a blob by digest), then given to the destination from there.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use strata_layer::DecompressReader;

use strata_oci::Algorithm;
use strata_oci::media::Compression;
use strata_oci::{Digest, DigestWriter, VerifyingReader};

/// The highest gzip level (flate2's, as Go's `compress/gzip`).
pub const MAX_GZIP_LEVEL: i32 = 9;
/// The highest zstd level.
pub const MAX_ZSTD_LEVEL: i32 = 22;

/// A recompressed layer: its bytes in a temporary file (rewound), their digest and size.
pub(crate) struct Spooled {
    pub file: File,
    pub digest: Digest,
    pub size: u64,
    /// The annotations the layer's descriptor takes (zstd:chunked's, eStargz's).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The layer's new diff ID, when its tar changed (eStargz adds entries).
    pub diff_id: Option<Digest>,
}

/// Writes to the spool file and hashes what it writes.
struct Tee {
    file: BufWriter<File>,
    hash: DigestWriter,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether `level` is one `to` takes.
pub fn check_level(to: Compression, level: i32) -> Result<(), String> {
    let range = match to {
        Compression::Gzip => 0..=MAX_GZIP_LEVEL,
        Compression::Zstd => 1..=MAX_ZSTD_LEVEL,
        Compression::None => return Err("an uncompressed layer has no compression level".into()),
    };
    if range.contains(&level) {
        Ok(())
    } else {
        Err(format!(
            "compression level {level} is out of {}..={} for {to:?}",
            range.start(),
            range.end()
        ))
    }
}

/// Reads the blob `reader` (compressed in `from`) to its end, checks its tar against `diff_id`, and
/// compresses it in `to` at `level` (the encoder's default level without one: gzip 6, zstd 3).
///
/// An error names what failed: the decoder, the diff ID check, the encoder or the temporary file.
pub(crate) fn recompress(
    reader: impl Read + Send,
    from: Compression,
    to: Compression,
    level: Option<i32>,
    toc: bool,
    diff_id: &Digest,
) -> Result<Spooled, String> {
    // The layer engine's decoder: ISA-L's inflater for gzip (about 1.5x zlib-rs, docs/BENCHMARKS-inflate.md).
    let decoded = DecompressReader::new(from, io::BufReader::with_capacity(1 << 20, reader))
        .map_err(|e| format!("{from:?} decoder: {e}"))?;
    let mut tar = VerifyingReader::new(decoded, diff_id.clone(), None);
    let file = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
    let sink = Tee {
        file: BufWriter::with_capacity(1 << 20, file),
        hash: DigestWriter::new(Algorithm::Sha256),
    };
    let read_error = |e: io::Error| match e.kind() {
        io::ErrorKind::InvalidData => format!("reading the layer: {e}"),
        _ => format!("reading or writing the layer: {e}"),
    };
    let mut annotations = std::collections::BTreeMap::new();
    let mut new_diff_id = None;
    let sink = match to {
        Compression::Gzip if toc => {
            let mut sink = sink;
            let level = level.map_or(crate::estargz::DEFAULT_LEVEL, |l| {
                u32::try_from(l).unwrap_or(crate::estargz::DEFAULT_LEVEL)
            });
            let (written, diff_id) = crate::estargz::write_estargz(
                &mut tar,
                &mut sink,
                crate::estargz::CHUNK_SIZE,
                level,
            )?;
            annotations = written.annotations;
            new_diff_id = Some(diff_id);
            sink
        }
        Compression::Zstd if toc => {
            let mut sink = sink;
            let written = crate::chunked::write_zstd_chunked(
                &mut tar,
                &mut sink,
                crate::chunked::CHUNK_SIZE,
                level.unwrap_or(crate::chunked::DEFAULT_LEVEL),
            )?;
            annotations = written.annotations;
            sink
        }
        Compression::Gzip => {
            let level = level.map_or(6, |l| u32::try_from(l).unwrap_or(6));
            let mut encoder = flate2::write::GzEncoder::new(sink, flate2::Compression::new(level));
            io::copy(&mut tar, &mut encoder).map_err(read_error)?;
            encoder.finish().map_err(|e| format!("gzip: {e}"))?
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(sink, level.unwrap_or(3))
                .map_err(|e| format!("zstd encoder: {e}"))?;
            io::copy(&mut tar, &mut encoder).map_err(read_error)?;
            encoder.finish().map_err(|e| format!("zstd: {e}"))?
        }
        Compression::None => return Err("recompressing to no compression".into()),
    };
    let Tee { file, hash } = sink;
    let mut file = file
        .into_inner()
        .map_err(|e| format!("the temporary file: {}", e.error()))?;
    file.rewind()
        .map_err(|e| format!("the temporary file: {e}"))?;
    let size = hash.len();
    Ok(Spooled {
        file,
        digest: hash.finish(),
        size,
        annotations,
        diff_id: new_diff_id,
    })
}
