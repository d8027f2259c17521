//! The layer index file format (`*.idx`), version 1.
//!
//! An index is one little-endian file, designed to be memory-mapped and searched in place:
//!
//! * a fixed **header** of [`HEADER_SIZE`] bytes: [`MAGIC`], the format version (`u16` major = 1, `u16`
//!   minor = 0), flags (none defined; readers reject any set bit), the header and record sizes, a CRC-32 of the
//!   whole file, the entry, xattr and checkpoint counts, the file size, and the `(offset, length)` of each
//!   section;
//! * the **entry records**, [`RECORD_SIZE`] bytes each, sorted by (parent directory bytes, name bytes, class:
//!   real entries before whiteout/opaque markers). A directory's children are therefore contiguous and sorted
//!   by name: a lookup is one binary search, a readdir a binary search for the first child plus a scan;
//! * the **string table**: parent paths (deduplicated), names, link targets, xattr names and values, referred
//!   to by `(u64 offset, u32 length)`; strings are raw bytes, not terminated;
//! * the **xattr table**, [`XATTR_SIZE`] bytes per attribute, each entry's attributes contiguous, in tar order;
//! * the **checkpoint table**, [`CHECKPOINT_SIZE`] bytes per checkpoint, sorted by uncompressed offset, and the
//!   **window blob** holding their (≤ [`MAX_WINDOW`] bytes) decompressor windows;
//! * the **layer info**: blob digest, diff id, media type, compression, blob and tar sizes;
//! * since version 1.1, the **root record**: the layer's own entry for its root directory (`./` in the tar),
//!   one entry record or nothing, its strings and xattrs in the tables above;
//! * since version 1.2, the **span table**: [`SPAN_SIZE`] bytes per span of the compressed blob — its byte
//!   range and the sha256 of those bytes — so that a range read of the blob is checked before it is
//!   decompressed. Spans follow the checkpoints: one per checkpoint span (cut into parts of at most
//!   [`MAX_SPAN_BYTES`]), covering every byte of the blob; see [`crate::SpanDigest`].
//!
//! The checksum is CRC-32 (IEEE 802.3, as zlib's `crc32`) of the whole file with the 4 checksum bytes read as
//! zeros; it is verified on open. Apart from that pass, opening parses only the header, the layer info and the
//! checkpoint table; entry records are read, and their offsets and lengths checked, when they are accessed.
//!
//! Versioning: a reader rejects a major version it does not know. A minor version may only add what an
//! older reader can skip: larger headers (`header_size`) or records (`record_size`) with fields appended,
//! or new sections placed after those it knows. Anything else needs a new major version.
//!
//! docs/FORMAT.md describes every field byte for byte.

/// The first 8 bytes of every index file.
pub const MAGIC: [u8; 8] = *b"STRATAIX";
/// The major format version this crate writes and reads.
pub const VERSION_MAJOR: u16 = 1;
/// The minor format version this crate writes (any minor of [`VERSION_MAJOR`] is read). 1.1 added the
/// root record, 1.2 the span table.
pub const VERSION_MINOR: u16 = 2;
/// Size of the version 1.0 header, the smallest a reader accepts; a file's `header_size` may be larger.
pub const HEADER_SIZE: usize = 160;
/// Size of a version 1.1 header: the 1.0 header and the root record's section.
pub const HEADER_SIZE_1_1: usize = 176;
/// Size of the header this crate writes (version 1.2): the 1.1 header and the span table's section.
pub const HEADER_SIZE_1_2: usize = 192;
/// Size of a version 1 entry record; a file's `record_size` may be larger.
pub const RECORD_SIZE: usize = 104;
/// Size of an xattr record.
pub const XATTR_SIZE: usize = 24;
/// Size of a checkpoint record.
pub const CHECKPOINT_SIZE: usize = 32;
/// Size of a span record (version 1.2): `u64` start, `u64` end, 32-byte sha256.
pub const SPAN_SIZE: usize = 48;
/// Longest run of compressed bytes one span record covers, but for the one byte a checkpoint inside a byte
/// shares with the next span (so a record is at most `MAX_SPAN_BYTES + 1` bytes long): longer checkpoint
/// spans (a single-frame zstd layer, a plain layer) are cut into parts of this size. It bounds what a
/// reader holds to check one span before decompressing it.
pub const MAX_SPAN_BYTES: u64 = 4 << 20;
/// Size of the fixed part of the layer info section (its three strings follow).
pub const LAYER_INFO_SIZE: usize = 40;
/// Largest decompressor window a checkpoint may carry (32 KiB, deflate's window).
pub const MAX_WINDOW: usize = 32 * 1024;
/// Offset of the CRC-32 in the header.
pub const CHECKSUM_OFFSET: usize = 24;
/// Alignment of every section's start.
pub const SECTION_ALIGN: usize = 8;

/// Header field offsets.
pub(crate) mod hdr {
    pub const MAJOR: usize = 8;
    pub const MINOR: usize = 10;
    pub const FLAGS: usize = 12;
    pub const HEADER_SIZE: usize = 16;
    pub const RECORD_SIZE: usize = 20;
    pub const CHECKSUM: usize = super::CHECKSUM_OFFSET;
    pub const ENTRY_COUNT: usize = 32;
    pub const XATTR_COUNT: usize = 40;
    pub const CHECKPOINT_COUNT: usize = 48;
    pub const FILE_SIZE: usize = 56;
    /// `(u64 offset, u64 length)` of each section, in this order: entries, strings, xattrs, checkpoints,
    /// windows, layer info.
    pub const SECTIONS: usize = 64;
    pub const SECTION_COUNT: usize = 6;
    /// Version 1.1: `(u64 offset, u64 length)` of the root record (length 0 when the layer has none).
    pub const ROOT: usize = 160;
    /// Version 1.2: `(u64 offset, u64 length)` of the span table (length 0 when the index has no span
    /// digests).
    pub const SPANS: usize = 176;
}

/// Span record field offsets.
pub(crate) mod spn {
    pub const START: usize = 0;
    pub const END: usize = 8;
    pub const SHA256: usize = 16;
}

/// Entry record field offsets.
pub(crate) mod rec {
    pub const PARENT_OFF: usize = 0;
    pub const NAME_OFF: usize = 8;
    pub const LINK_OFF: usize = 16;
    pub const PARENT_LEN: usize = 24;
    pub const NAME_LEN: usize = 28;
    pub const LINK_LEN: usize = 32;
    pub const KIND: usize = 36;
    pub const MODE: usize = 40;
    pub const UID: usize = 44;
    pub const GID: usize = 48;
    pub const MTIME_NSEC: usize = 52;
    pub const SIZE: usize = 56;
    pub const MTIME: usize = 64;
    pub const DEV_MAJOR: usize = 72;
    pub const DEV_MINOR: usize = 76;
    pub const XATTR_FIRST: usize = 80;
    pub const XATTR_COUNT: usize = 88;
    pub const DATA_OFFSET: usize = 96;
}

/// Xattr record field offsets.
pub(crate) mod xat {
    pub const NAME_OFF: usize = 0;
    pub const VALUE_OFF: usize = 8;
    pub const NAME_LEN: usize = 16;
    pub const VALUE_LEN: usize = 20;
}

/// Checkpoint record field offsets.
pub(crate) mod ckp {
    pub const COMPRESSED_BIT_OFFSET: usize = 0;
    pub const UNCOMPRESSED_OFFSET: usize = 8;
    pub const WINDOW_OFF: usize = 16;
    pub const WINDOW_LEN: usize = 24;
}

/// Layer info field offsets.
pub(crate) mod lay {
    pub const COMPRESSION: usize = 0;
    pub const BLOB_SIZE: usize = 8;
    pub const TAR_SIZE: usize = 16;
    pub const DIGEST_LEN: usize = 24;
    pub const DIFF_ID_LEN: usize = 28;
    pub const MEDIA_TYPE_LEN: usize = 32;
}

/// Reads a little-endian `u64` at `at`; 0 if out of bounds (callers check bounds first).
#[inline]
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at.wrapping_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Reads a little-endian `u32` at `at`; 0 if out of bounds (callers check bounds first).
#[inline]
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at.wrapping_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Reads a little-endian `u16` at `at`; 0 if out of bounds (callers check bounds first).
#[inline]
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at.wrapping_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

/// Writes a little-endian `u64` at `at` (no-op if out of bounds: callers size the buffer first).
#[inline]
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at.wrapping_add(8)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian `u32` at `at` (no-op if out of bounds: callers size the buffer first).
#[inline]
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at.wrapping_add(4)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian `u16` at `at` (no-op if out of bounds: callers size the buffer first).
#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at.wrapping_add(2)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Feeds `data` into a running CRC-32 (slicing-by-8). `crc` is the pre-inverted state.
fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, as zlib's `crc32` and gzip's trailer) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    !crc32_update(!0, data)
}

/// The checksum an index file's header must hold: the CRC-32 of `file` with the 4 bytes at
/// [`CHECKSUM_OFFSET`] read as zeros. Files shorter than the header are summed as they are.
pub fn compute_checksum(file: &[u8]) -> u32 {
    let end = CHECKSUM_OFFSET + 4;
    match (file.get(..CHECKSUM_OFFSET), file.get(end..)) {
        (Some(head), Some(tail)) => {
            let mut crc = crc32_update(!0, head);
            crc = crc32_update(crc, &[0; 4]);
            !crc32_update(crc, tail)
        }
        _ => crc32(file),
    }
}

/// Stores [`compute_checksum`] of `file` in its header (after the rest of the file has been written or
/// edited). Does nothing to a file shorter than the header.
pub fn seal(file: &mut [u8]) {
    if file.len() >= HEADER_SIZE {
        let sum = compute_checksum(file);
        put_u32(file, CHECKSUM_OFFSET, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Slicing path and byte path agree.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut bytewise = !0u32;
        for &b in &data {
            bytewise = crc32_update(bytewise, &[b]);
        }
        assert_eq!(!bytewise, crc32(&data));
    }

    #[test]
    fn checksum_ignores_its_field() {
        let mut a = vec![7u8; 200];
        let sum = compute_checksum(&a);
        put_u32(&mut a, CHECKSUM_OFFSET, 0xdead_beef);
        assert_eq!(compute_checksum(&a), sum);
        seal(&mut a);
        assert_eq!(le_u32(&a, CHECKSUM_OFFSET), sum);
    }
}
