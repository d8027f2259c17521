//! Decompression by magic number (gzip, zstd, or none), for the tar-split recorder's copy of a blob.

use std::io::{self, BufRead, Read};

/// A reader of `input` decompressed according to its first bytes: gzip (all members), zstd (all frames), or
/// passed through unchanged.
pub(crate) fn decompress<R: BufRead + Send + 'static>(
    mut input: R,
) -> io::Result<Box<dyn Read + Send>> {
    let head = input.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(input)?))
    } else {
        Ok(Box::new(input))
    }
}
