//! tar-split (`vbatts/tar-split`, docs/FORMAT.md "tar-split"): the JSON-lines record of a tar's headers and
//! padding that rebuilds the tar, byte for byte, from its unpacked files — what containers/storage keeps as
//! `overlay-layers/<id>.tar-split.gz` and what a zstd:chunked layer carries in a skippable frame.
//!
//! One entry per line:
//! - `{"type":2,"payload":"<base64>","position":N}` — raw bytes of the tar other than file contents: a file's
//!   padding, then any extended headers (PAX `x`, GNU `L`/`K`) with their data and padding, then the entry's
//!   own 512-byte header; at the end, the end-of-archive blocks and whatever follows them;
//! - `{"type":1,"name":"etc/passwd","size":1234,"payload":"<base64 crc64>","position":N}` — one per tar
//!   entry, after its header segment: `name` as Go's `archive/tar` reports it (PAX `path` and GNU long names
//!   applied, ustar prefix joined), or `name_raw` (base64) when the name is not valid UTF-8; `size` omitted
//!   when 0; `payload` the big-endian CRC-64 (ISO polynomial) of the content, `null` for size 0.
//!
//! [`TarSplitWriter`] records a tar stream pushed into it through [`std::io::Write`] — any chunking, so it can
//! sit on the raw tar bytes of a layer pass (the store's pull) or beside another parser as a tee (the
//! zstd:chunked writer in strata-copy). [`Crc64`] is the checksum of its file entries, also used to check
//! files when a tar is rebuilt (strata-store's `tarsplit::assemble`). This is the only tar-split writer
//! and the only CRC-64 in the workspace: the store and strata-copy (both a layer above) use these.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Write};

use base64::Engine as _;

const BLOCK: usize = 512;
/// The most extended-header data (PAX records, GNU long names) accepted for one entry, as Go's 1 MiB.
const MAX_SPECIAL_FILE: u64 = 1 << 20;
/// Trailing bytes after the end-of-archive blocks are recorded in segments of at most this size (as tar-split).
const TRAILER_CHUNK: usize = 1 << 20;

// ---- CRC-64 (ISO polynomial, reflected), as Go's hash/crc64 with crc64.ISO ----

const CRC64_ISO_POLY: u64 = 0xD800_0000_0000_0000;

const fn crc_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut j = 0;
        while j < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ CRC64_ISO_POLY
            } else {
                crc >> 1
            };
            j += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static CRC_TABLES: [[u64; 256]; 8] = crc_tables();

/// A running CRC-64/ISO, as tar-split checksums file contents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc64(u64);

impl Crc64 {
    /// Adds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        let t = &CRC_TABLES;
        let mut crc = !self.0;
        while data.len() >= 8 {
            let (chunk, rest) = data.split_at(8);
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            crc ^= u64::from_le_bytes(word);
            crc = t[7][(crc & 0xff) as usize]
                ^ t[6][((crc >> 8) & 0xff) as usize]
                ^ t[5][((crc >> 16) & 0xff) as usize]
                ^ t[4][((crc >> 24) & 0xff) as usize]
                ^ t[3][((crc >> 32) & 0xff) as usize]
                ^ t[2][((crc >> 40) & 0xff) as usize]
                ^ t[1][((crc >> 48) & 0xff) as usize]
                ^ t[0][(crc >> 56) as usize];
            data = rest;
        }
        for &b in data {
            crc = t[0][((crc as u8) ^ b) as usize] ^ (crc >> 8);
        }
        self.0 = !crc;
    }

    /// The checksum as Go's `Sum(nil)`: eight bytes, big-endian.
    pub fn sum(&self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

// ---- recording ----

/// What [`TarSplitWriter`] saw, beyond the entries it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarSplitSummary {
    /// Bytes of tar consumed.
    pub tar_size: u64,
    /// Entries (headers, not counting extended headers).
    pub entries: u64,
    /// The UIDs of entries whose base name does not start with `.wh.` (containers/storage's `uidset`).
    pub uids: BTreeSet<u32>,
    /// The GIDs likewise (`gidset`).
    pub gids: BTreeSet<u32>,
    /// Two entries with the same cleaned name: tar-split (and so containers/storage) refuses such a layer,
    /// and its tar cannot be rebuilt from a directory. The recorded stream must not be used.
    pub duplicate: Option<String>,
}

#[derive(Debug)]
enum State {
    /// Collecting a header block.
    Header,
    /// After an all-zero block: collecting the next one.
    SecondZero,
    /// Data of an extended header (`x`, `g`, `L`, `K`).
    Ext { typ: u8, remaining: u64, pad: u64 },
    /// A file's content.
    Content { remaining: u64, pad: u64 },
    /// Padding after content or extended data, recorded.
    Pad { remaining: u64 },
    /// After the end-of-archive blocks: everything is recorded.
    Trailer,
}

/// Records a tar stream as tar-split entries. Push the tar's bytes (in any chunks) with [`Write`], then call
/// [`finish`](TarSplitWriter::finish). Malformed tar (a bad header checksum, sparse files, oversized
/// extended headers) is an error from `write`.
pub struct TarSplitWriter<W: Write> {
    out: W,
    seg: Vec<u8>,
    position: u64,
    state: State,
    block: [u8; BLOCK],
    block_len: usize,
    ext: Vec<u8>,
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    gnu_long_name: Option<Vec<u8>>,
    /// The entry whose content is being read: name and size for its type-1 entry.
    current: Option<(Vec<u8>, u64)>,
    crc: Crc64,
    seen: HashSet<Vec<u8>>,
    summary: TarSplitSummary,
    line: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for TarSplitWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarSplitWriter")
            .field("state", &self.state)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

fn bad(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

impl<W: Write> TarSplitWriter<W> {
    /// A recorder writing JSON lines to `out` (usually a gzip encoder on `<id>.tar-split.gz`).
    pub fn new(out: W) -> Self {
        TarSplitWriter {
            out,
            seg: Vec::new(),
            position: 0,
            state: State::Header,
            block: [0; BLOCK],
            block_len: 0,
            ext: Vec::new(),
            pax: Vec::new(),
            gnu_long_name: None,
            current: None,
            crc: Crc64::default(),
            seen: HashSet::new(),
            summary: TarSplitSummary::default(),
            line: Vec::with_capacity(1024),
        }
    }

    /// Ends the stream: records what is left and returns the output and a summary. Fails if the stream
    /// stopped inside an entry.
    pub fn finish(mut self) -> io::Result<(W, TarSplitSummary)> {
        match self.state {
            State::Header | State::SecondZero if self.block_len == 0 => self.flush_segment()?,
            // As the tar-split of containers/storage 1.43 (tar-split 0.11): the remainder after the
            // end-of-archive blocks is recorded as read, then the read that hit the end adds an empty
            // segment.
            State::Trailer => {
                self.flush_segment()?;
                self.write_segment()?;
            }
            _ => return Err(bad("the tar stream ends inside an entry")),
        }
        self.out.flush()?;
        Ok((self.out, self.summary))
    }

    fn flush_segment(&mut self) -> io::Result<()> {
        if self.seg.is_empty() {
            return Ok(());
        }
        self.write_segment()
    }

    fn write_segment(&mut self) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":2,\"payload\":\"");
        push_b64(&mut self.line, &self.seg);
        self.line.push(b'"');
        self.end_line()?;
        self.seg.clear();
        Ok(())
    }

    /// Ends the line being built with its `position` and writes it.
    fn end_line(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b",\"position\":");
        self.line
            .extend_from_slice(self.position.to_string().as_bytes());
        self.line.extend_from_slice(b"}\n");
        self.out.write_all(&self.line)?;
        self.position += 1;
        Ok(())
    }

    fn file_entry(&mut self, name: &[u8], size: u64, crc: Option<[u8; 8]>) -> io::Result<()> {
        let key = clean_name(name);
        if !self.seen.insert(key) && self.summary.duplicate.is_none() {
            self.summary.duplicate = Some(String::from_utf8_lossy(name).into_owned());
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":1,");
        match std::str::from_utf8(name) {
            Ok(s) if !s.contains('\u{FFFD}') => {
                if !s.is_empty() {
                    self.line.extend_from_slice(b"\"name\":");
                    serde_json::to_writer(&mut self.line, s).map_err(io::Error::other)?;
                    self.line.push(b',');
                }
            }
            _ => {
                self.line.extend_from_slice(b"\"name_raw\":\"");
                push_b64(&mut self.line, name);
                self.line.extend_from_slice(b"\",");
            }
        }
        if size > 0 {
            self.line.extend_from_slice(b"\"size\":");
            self.line.extend_from_slice(size.to_string().as_bytes());
            self.line.push(b',');
        }
        self.line.extend_from_slice(b"\"payload\":");
        match crc {
            Some(c) => {
                self.line.push(b'"');
                push_b64(&mut self.line, &c);
                self.line.push(b'"');
            }
            None => self.line.extend_from_slice(b"null"),
        }
        self.end_line()?;
        self.summary.entries += 1;
        Ok(())
    }

    /// A header block is complete.
    fn header_done(&mut self) -> io::Result<()> {
        let b = self.block;
        if b.iter().all(|&x| x == 0) {
            self.state = State::SecondZero;
            return Ok(());
        }
        check_checksum(&b)?;
        let typ = b[156];
        let size = parse_numeric(&b[124..136])?;
        match typ {
            b'x' | b'g' | b'L' | b'K' => {
                if size > MAX_SPECIAL_FILE {
                    return Err(bad(format!(
                        "extended header of {size} bytes (more than {MAX_SPECIAL_FILE})"
                    )));
                }
                self.ext.clear();
                self.state = State::Ext {
                    typ,
                    remaining: size,
                    pad: padding(size),
                };
                if size == 0 {
                    self.ext_done()?;
                }
                Ok(())
            }
            b'S' => Err(bad("GNU sparse files are not supported")),
            _ => self.entry_header(&b, typ, size),
        }
    }

    /// The main header of an entry.
    fn entry_header(&mut self, b: &[u8; BLOCK], typ: u8, header_size: u64) -> io::Result<()> {
        let mut name = header_name(b);
        let mut size = header_size;
        let mut uid = parse_numeric(&b[108..116])?;
        let mut gid = parse_numeric(&b[116..124])?;
        for (k, v) in std::mem::take(&mut self.pax) {
            match k.as_slice() {
                b"path" => name = v,
                b"size" => size = parse_pax_int(&v)?,
                b"uid" => uid = parse_pax_int(&v)?,
                b"gid" => gid = parse_pax_int(&v)?,
                k if k.starts_with(b"GNU.sparse.") => {
                    return Err(bad("PAX sparse files are not supported"));
                }
                _ => {}
            }
        }
        if let Some(long) = self.gnu_long_name.take() {
            name = long;
        }
        let header_only = matches!(typ, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
            || (typ == 0 && name.last() == Some(&b'/'));
        let base = name
            .split(|&c| c == b'/')
            .rfind(|c| !c.is_empty())
            .unwrap_or(&[]);
        if !base.starts_with(b".wh.") {
            self.summary.uids.insert(uid as u32);
            self.summary.gids.insert(gid as u32);
        }
        self.flush_segment()?;
        let nb = if header_only { 0 } else { size };
        self.crc = Crc64::default();
        self.current = Some((name, size));
        self.state = State::Content {
            remaining: nb,
            pad: padding(nb),
        };
        if nb == 0 {
            self.content_done(0)?;
        }
        Ok(())
    }

    fn content_done(&mut self, pad: u64) -> io::Result<()> {
        let (name, size) = self.current.take().unwrap_or_default();
        let crc = (size > 0).then(|| self.crc.sum());
        self.file_entry(&name, size, crc)?;
        self.state = if pad > 0 {
            State::Pad { remaining: pad }
        } else {
            State::Header
        };
        Ok(())
    }

    /// An extended header's data is complete.
    fn ext_done(&mut self) -> io::Result<()> {
        let State::Ext { typ, pad, .. } = self.state else {
            return Ok(());
        };
        let data = std::mem::take(&mut self.ext);
        match typ {
            b'x' => self.pax = parse_pax(&data)?,
            b'g' => {
                // Go returns a global header as an entry of its own, named by its header (or its `path`).
                let mut name = header_name(&self.block);
                for (k, v) in parse_pax(&data)? {
                    if k == b"path" {
                        name = v;
                    }
                }
                self.pax.clear();
                self.gnu_long_name = None;
                self.flush_segment()?;
                self.file_entry(&name, 0, None)?;
            }
            b'L' => {
                let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
                self.gnu_long_name = Some(data[..end].to_vec());
            }
            _ => {} // 'K': a long link name, not part of tar-split's entries.
        }
        self.state = if pad > 0 {
            State::Pad { remaining: pad }
        } else {
            State::Header
        };
        Ok(())
    }

    fn feed(&mut self, mut buf: &[u8]) -> io::Result<()> {
        self.summary.tar_size += buf.len() as u64;
        while !buf.is_empty() {
            match &mut self.state {
                State::Header | State::SecondZero => {
                    let n = (BLOCK - self.block_len).min(buf.len());
                    self.block[self.block_len..self.block_len + n].copy_from_slice(&buf[..n]);
                    self.seg.extend_from_slice(&buf[..n]);
                    self.block_len += n;
                    buf = &buf[n..];
                    if self.block_len == BLOCK {
                        self.block_len = 0;
                        if matches!(self.state, State::SecondZero) {
                            if self.block.iter().any(|&x| x != 0) {
                                return Err(bad("a zero block followed by a non-zero block"));
                            }
                            self.flush_segment()?;
                            self.state = State::Trailer;
                        } else {
                            self.header_done()?;
                        }
                    }
                }
                State::Ext { remaining, .. } => {
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    self.seg.extend_from_slice(&buf[..n]);
                    self.ext.extend_from_slice(&buf[..n]);
                    *remaining -= n as u64;
                    buf = &buf[n..];
                    if *remaining == 0 {
                        self.ext_done()?;
                    }
                }
                State::Content { remaining, pad } => {
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    self.crc.update(&buf[..n]);
                    *remaining -= n as u64;
                    let pad = *pad;
                    buf = &buf[n..];
                    if let State::Content { remaining: 0, .. } = self.state {
                        self.content_done(pad)?;
                    }
                }
                State::Pad { remaining } => {
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    self.seg.extend_from_slice(&buf[..n]);
                    *remaining -= n as u64;
                    buf = &buf[n..];
                    if *remaining == 0 {
                        self.state = State::Header;
                    }
                }
                State::Trailer => {
                    let n = (TRAILER_CHUNK - self.seg.len()).min(buf.len());
                    self.seg.extend_from_slice(&buf[..n]);
                    buf = &buf[n..];
                    if self.seg.len() >= TRAILER_CHUNK {
                        self.flush_segment()?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for TarSplitWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends the standard base64 of `data` to `out`.
fn push_b64(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .as_bytes(),
    );
}

fn padding(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

/// A NUL-terminated string field.
fn field(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// The entry name Go's `archive/tar` reads from a header block: the name field, joined to the ustar (or star)
/// prefix when the format has one.
fn header_name(b: &[u8; BLOCK]) -> Vec<u8> {
    let name = field(&b[0..100]);
    let magic = &b[257..263];
    let prefix = if magic == b"ustar\0" {
        if &b[508..512] == b"tar\0" {
            field(&b[345..476])
        } else {
            field(&b[345..500])
        }
    } else {
        &[][..]
    };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut out = prefix.to_vec();
        out.push(b'/');
        out.extend_from_slice(name);
        out
    }
}

/// A numeric header field: octal (spaces and NULs trimmed) or base-256 (high bit of the first byte set).
fn parse_numeric(b: &[u8]) -> io::Result<u64> {
    if let Some(&first) = b.first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return Err(bad("negative number in a tar header"));
        }
        let mut x: u64 = u64::from(first & 0x3f);
        for &c in &b[1..] {
            if x >> 56 != 0 {
                return Err(bad("number too large in a tar header"));
            }
            x = (x << 8) | u64::from(c);
        }
        return Ok(x);
    }
    let trimmed: Vec<u8> = {
        let s = b
            .iter()
            .position(|&c| c != b' ' && c != 0)
            .unwrap_or(b.len());
        let e = b
            .iter()
            .rposition(|&c| c != b' ' && c != 0)
            .map_or(s, |i| i + 1);
        b[s..e.max(s)].to_vec()
    };
    let text = field(&trimmed);
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(text).map_err(|_| bad("non-ASCII number in a tar header"))?;
    u64::from_str_radix(s, 8).map_err(|_| bad(format!("bad octal number {s:?} in a tar header")))
}

fn parse_pax_int(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("bad number in a PAX record"))
}

/// The header checksum: the unsigned or signed byte sum with the checksum field read as spaces.
fn check_checksum(b: &[u8; BLOCK]) -> io::Result<()> {
    let want = parse_numeric(&b[148..156])?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += u64::from(c);
        signed += i64::from(c as i8);
    }
    if want == unsigned || want as i64 == signed {
        Ok(())
    } else {
        Err(bad("tar header checksum mismatch"))
    }
}

/// PAX records: `"%d %s=%s\n"`.
fn parse_pax(mut data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("bad PAX record"))?;
        let n: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n > sp + 1 && n <= data.len())
            .ok_or_else(|| bad("bad PAX record length"))?;
        let record = &data[sp + 1..n];
        data = &data[n..];
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("bad PAX record"))?;
        let eq = record
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("bad PAX record"))?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
    }
    Ok(out)
}

/// The key tar-split deduplicates names by: Go's `filepath.Clean`.
fn clean_name(name: &[u8]) -> Vec<u8> {
    let rooted = name.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(c);
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = if rooted { vec![b'/'] } else { Vec::new() };
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_iso_check_value() {
        let mut c = Crc64::default();
        c.update(b"123456789");
        assert_eq!(u64::from_be_bytes(c.sum()), 0xb909_56c7_75a4_1001);
        let mut split = Crc64::default();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.sum(), c.sum());
        let long: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut a = Crc64::default();
        a.update(&long);
        let mut b = Crc64::default();
        for chunk in long.chunks(13) {
            b.update(chunk);
        }
        assert_eq!(a.sum(), b.sum());
    }

    #[test]
    fn clean_names() {
        assert_eq!(clean_name(b"./etc/"), b"etc");
        assert_eq!(clean_name(b"etc"), b"etc");
        assert_eq!(clean_name(b"./"), b".");
        assert_eq!(clean_name(b"/a//b/../c"), b"/a/c");
    }

    /// The lines, in any chunking: segments hold everything but file contents, entries name files (PAX and
    /// GNU names applied) with their CRC-64; concatenating the segments' payloads with the contents gives the tar.
    #[test]
    fn records_lines_in_any_chunking() {
        let tar = strata_fixtures::tar_split_tar().unwrap();
        let mut whole = TarSplitWriter::new(Vec::new());
        whole.write_all(&tar).unwrap();
        let (json, summary) = whole.finish().unwrap();
        for size in [1, 97, 512, 4096] {
            let mut w = TarSplitWriter::new(Vec::new());
            for chunk in tar.chunks(size) {
                w.write_all(chunk).unwrap();
            }
            let (again, _) = w.finish().unwrap();
            assert_eq!(again, json, "chunks of {size}");
        }
        assert_eq!(summary.tar_size, tar.len() as u64);
        assert_eq!(summary.entries, 6);
        assert_eq!(summary.uids.iter().copied().collect::<Vec<_>>(), [0, 1000]);
        assert!(summary.duplicate.is_none());
        let text = String::from_utf8(json).unwrap();
        let mut crc = Crc64::default();
        crc.update(b"pax\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(crc.sum());
        assert!(
            text.contains(&format!(
                r#"{{"type":1,"name":"etc/pax name","size":4,"payload":"{b64}","#
            )),
            "{text}"
        );
        assert!(text.contains(&format!(r#""name":"usr/{}""#, "n".repeat(150))));
        assert!(
            text.contains(r#"{"type":1,"name":"etc/","payload":null,"position":1}"#),
            "{text}"
        );
        // The end: the end-of-archive blocks, the trailer's segment, then an empty one.
        assert!(
            text.ends_with(",\"payload\":\"\",\"position\":14}\n"),
            "{text}"
        );
        // The segments with the contents between them are the tar.
        let mut rebuilt = Vec::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == 2 {
                let p = v["payload"].as_str().unwrap();
                rebuilt.extend(base64::engine::general_purpose::STANDARD.decode(p).unwrap());
            } else if let Some((_, data)) = strata_fixtures::TAR_SPLIT_FILES
                .iter()
                .find(|(name, _)| v["name"] == *name)
            {
                rebuilt.extend_from_slice(data);
            }
        }
        assert!(rebuilt == tar, "segments and contents do not give the tar");
    }

    #[test]
    fn refuses_bad_checksum() {
        let mut tar = strata_fixtures::tar_split_tar().unwrap();
        tar[0] ^= 1;
        let mut w = TarSplitWriter::new(Vec::new());
        assert!(w.write_all(&tar).is_err());
    }
}
