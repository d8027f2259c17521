//! Recompression: a layer decompressed, its tar checked against its diff ID, compressed again and hashed, in
//! one streaming pass into an anonymous temporary file (the new digest is known only at the end, and a
//! destination is handed a blob by digest), then given to the destination from there.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use strata_layer::DecompressReader;

use strata_oci::Algorithm;
use strata_oci::media::Compression;
use strata_oci::{Digest, HashingWriter, VerifyingReader};

/// The highest gzip level (flate2's, as Go's `compress/gzip`).
pub const MAX_GZIP_LEVEL: i32 = 9;
/// The highest zstd level.
pub const MAX_ZSTD_LEVEL: i32 = 22;

/// What recompressing a layer gave beside its bytes.
pub(crate) struct Recompressed {
    /// The annotations the layer's descriptor takes (zstd:chunked's, eStargz's).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The layer's new diff ID, when its tar changed (eStargz adds entries).
    pub diff_id: Option<Digest>,
}

/// A recompressed layer spooled to an anonymous temporary file (rewound), with its digest and size, for a
/// destination that needs the digest before the bytes.
pub(crate) struct Spooled {
    pub file: File,
    pub digest: Digest,
    pub size: u64,
}

/// Spools what `write` writes to an anonymous temporary file, hashing it on the way: the bytes are hashed
/// once, here, and not again when they are read back (the file is this process's own, unlinked).
pub(crate) fn spool<T>(
    write: impl FnOnce(&mut dyn Write) -> Result<T, String>,
) -> Result<(Spooled, T), String> {
    let file = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
    let mut sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file), Algorithm::Sha256);
    let out = write(&mut sink)?;
    let (file, hash) = sink.into_parts();
    let mut file = file
        .into_inner()
        .map_err(|e| format!("the temporary file: {}", e.error()))?;
    file.rewind()
        .map_err(|e| format!("the temporary file: {e}"))?;
    let size = hash.len();
    let spooled = Spooled {
        file,
        digest: hash.finish(),
        size,
    };
    Ok((spooled, out))
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
/// compresses it in `to` at `level` (the encoder's default level without one: gzip 6, zstd 3) into `sink`.
///
/// An error names what failed: the decoder, the diff ID check, the encoder or the sink.
pub(crate) fn recompress(
    reader: impl Read + Send,
    from: Compression,
    to: Compression,
    level: Option<i32>,
    toc: bool,
    diff_id: &Digest,
    sink: &mut dyn Write,
) -> Result<Recompressed, String> {
    // The layer engine's decoder: ISA-L's inflater for gzip (about 1.5x zlib-rs, docs/BENCHMARKS-inflate.md).
    let decoded = DecompressReader::new(from, io::BufReader::with_capacity(1 << 20, reader))
        .map_err(|e| format!("{from:?} decoder: {e}"))?;
    let mut tar = VerifyingReader::new(decoded, diff_id.clone(), None);
    let read_error = |e: io::Error| match e.kind() {
        io::ErrorKind::InvalidData => format!("reading the layer: {e}"),
        _ => format!("reading or writing the layer: {e}"),
    };
    let mut out = Recompressed {
        annotations: std::collections::BTreeMap::new(),
        diff_id: None,
    };
    match to {
        Compression::Gzip if toc => {
            let level = level.map_or(crate::estargz::DEFAULT_LEVEL, |l| {
                u32::try_from(l).unwrap_or(crate::estargz::DEFAULT_LEVEL)
            });
            let (written, diff_id) = crate::estargz::write_estargz(
                &mut tar,
                &mut *sink,
                crate::estargz::CHUNK_SIZE,
                level,
            )?;
            out.annotations = written.annotations;
            out.diff_id = Some(diff_id);
        }
        Compression::Zstd if toc => {
            let written = crate::chunked::write_zstd_chunked(
                &mut tar,
                &mut *sink,
                crate::chunked::CHUNK_SIZE,
                level.unwrap_or(crate::chunked::DEFAULT_LEVEL),
            )?;
            out.annotations = written.annotations;
        }
        Compression::Gzip => {
            let level = level.map_or(6, |l| u32::try_from(l).unwrap_or(6));
            let mut encoder =
                flate2::write::GzEncoder::new(&mut *sink, flate2::Compression::new(level));
            copy(&mut tar, &mut encoder).map_err(read_error)?;
            encoder.finish().map_err(|e| format!("gzip: {e}"))?;
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(&mut *sink, level.unwrap_or(3))
                .map_err(|e| format!("zstd encoder: {e}"))?;
            copy(&mut tar, &mut encoder).map_err(read_error)?;
            encoder.finish().map_err(|e| format!("zstd: {e}"))?;
        }
        Compression::None => return Err("recompressing to no compression".into()),
    }
    sink.flush()
        .map_err(|e| format!("writing the layer: {e}"))?;
    Ok(out)
}

/// Copies `reader` to `writer` through a 256 KiB buffer (`io::copy`'s 8 KiB one makes 32 times the calls
/// into the encoder).
fn copy(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(buf.get(..n).unwrap_or_default())?;
        total += n as u64;
    }
}
