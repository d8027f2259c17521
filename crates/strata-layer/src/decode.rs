//! Decompressors that know where they are: gzip (any number of members) and zstd (any number of frames) decoded
//! from a [`BufRead`] into caller-sized chunks, either from the start of the blob — recording random-access
//! [`Checkpoint`]s on the way, as zlib's `examples/zran.c` and SOCI's zTOC do — or resumed at a checkpoint.
//!
//! * gzip: a checkpoint at the start of every member's deflate data (just after its header, empty window), and
//!   within a member at the first deflate block boundary after every [`CHECKPOINT_SPAN`] bytes of output, with
//!   the bit offset of the boundary and the 32 KiB of output before it. Members' headers are parsed here
//!   (RFC 1952) and their CRC-32 and ISIZE checked.
//! * zstd: a checkpoint at every frame start (byte offset × 8, empty window): zstd cannot resume mid-frame.
//! * plain: no checkpoints; tar offsets are blob offsets.

use std::io::{self, BufRead};

use strata_index::Checkpoint;
use strata_oci::media::Compression;
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

use crate::isal::IsalInflate;
use crate::zlib::{Flush, RawInflate, crc32};

/// How much uncompressed output lies, at least, between two gzip checkpoints within a member: 4 MiB, as in
/// SOCI's zTOC. Reading from a random offset inflates at most about this much before the first wanted byte;
/// each checkpoint costs 32 KiB of window in the index (about 0.8% of the tar's size).
pub const CHECKPOINT_SPAN: u64 = 4 << 20;

/// gzip header flags (RFC 1952 §2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// Calls in a row that may neither consume input nor produce output before a stream counts as stuck.
const MAX_STALLS: u32 = 8;

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the blob ends inside {what}"),
    )
}

/// A whole compressed stream read as its uncompressed bytes, with the fastest inflater strata has (ISA-L's
/// for gzip, any number of members, each member's CRC-32 and size checked; zstd's frames): for callers
/// that decompress a layer once, front to back, and need no checkpoints (recompression).
pub struct DecompressReader<R> {
    decoder: Decoder,
    input: R,
}

impl<R: BufRead> DecompressReader<R> {
    /// A reader of `input`, compressed as `compression`, from its first byte.
    ///
    /// # Errors
    /// When the decoder cannot be set up.
    pub fn new(compression: Compression, input: R) -> io::Result<Self> {
        Ok(DecompressReader {
            decoder: Decoder::from_start(compression, false)?,
            input,
        })
    }
}

impl<R: BufRead> io::Read for DecompressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.decoder.decode(&mut self.input, buf)
    }
}

/// A decompressor of one of the layer compressions.
pub(crate) enum Decoder {
    /// No compression: bytes are copied.
    Plain,
    /// gzip.
    Gzip(Box<GzipDecoder>),
    /// zstd.
    Zstd(Box<ZstdDecoder>),
}

impl Decoder {
    /// A decoder for a whole blob from its first byte, recording checkpoints when `record` is set.
    pub fn from_start(compression: Compression, record: bool) -> io::Result<Decoder> {
        Ok(match compression {
            Compression::None => Decoder::Plain,
            Compression::Gzip => Decoder::Gzip(Box::new(GzipDecoder::new(record)?)),
            Compression::Zstd => Decoder::Zstd(Box::new(ZstdDecoder::new(record)?)),
        })
    }

    /// A decoder resumed at `checkpoint`: `input` must be positioned at byte `compressed_bit_offset / 8` of
    /// the blob. Fails if the checkpoint cannot be one of `compression` (a zstd checkpoint inside a byte).
    pub fn resume(
        compression: Compression,
        checkpoint: &Checkpoint,
        input: &mut dyn BufRead,
    ) -> io::Result<Decoder> {
        Ok(match compression {
            Compression::None => Decoder::Plain,
            Compression::Gzip => Decoder::Gzip(Box::new(GzipDecoder::resume(checkpoint, input)?)),
            Compression::Zstd => {
                if !checkpoint.compressed_bit_offset.is_multiple_of(8)
                    || !checkpoint.window.is_empty()
                {
                    return Err(invalid(
                        "a zstd checkpoint must be at a byte offset and have no window",
                    ));
                }
                let mut decoder = ZstdDecoder::new(false)?;
                decoder.pos = checkpoint.compressed_bit_offset / 8;
                decoder.out = checkpoint.uncompressed_offset;
                Decoder::Zstd(Box::new(decoder))
            }
        })
    }

    /// Fills `out` from `input` as far as the stream goes; returns the bytes written, less than `out.len()`
    /// only at the end of the stream (0 once it is over). The stream runs to the end of `input`: gzip members
    /// or zstd frames follow one another up to there, and anything else there is an error.
    pub fn decode(&mut self, input: &mut dyn BufRead, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain => {
                let mut filled = 0;
                while filled < out.len() {
                    match input.read(&mut out[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(filled)
            }
            Decoder::Gzip(d) => d.decode(input, out),
            Decoder::Zstd(d) => d.decode(input, out),
        }
    }

    /// Calls `f` with each checkpoint's `compressed_bit_offset` as it is recorded (only when recording), in
    /// order: the pipeline cuts the blob into spans there while the decoder goes on. A checkpoint is
    /// recorded at most [`MAX_HELD_BITS`] before the input the decoder has consumed when it is recorded.
    pub fn on_checkpoint(&mut self, f: CheckpointSink) {
        match self {
            Decoder::Plain => {}
            Decoder::Gzip(d) => {
                if let Some(r) = &mut d.recorder {
                    r.sink = Some(f);
                }
            }
            Decoder::Zstd(d) => {
                if d.checkpoints.is_some() {
                    d.sink = Some(f);
                }
            }
        }
    }

    /// The checkpoints recorded so far (none unless recording), by uncompressed offset.
    pub fn take_checkpoints(&mut self) -> Vec<Checkpoint> {
        match self {
            Decoder::Plain => Vec::new(),
            Decoder::Gzip(d) => d.recorder.take().map(|r| r.checkpoints).unwrap_or_default(),
            Decoder::Zstd(d) => d.checkpoints.take().unwrap_or_default(),
        }
    }
}

/// What [`Decoder::on_checkpoint`] calls with each checkpoint's bit offset.
pub(crate) type CheckpointSink = Box<dyn FnMut(u64) + Send>;

/// How far (in bits) a checkpoint can lie before the end of the input consumed when it is recorded: the
/// bits an inflater has taken in but not decoded yet (zlib holds fewer than 64; zstd checkpoints are at the
/// input position itself).
pub(crate) const MAX_HELD_BITS: u64 = 64;

/// Checkpoints being recorded.
struct Recorder {
    checkpoints: Vec<Checkpoint>,
    /// Told of each checkpoint's bit offset as it is recorded.
    sink: Option<CheckpointSink>,
    /// Uncompressed offset of the last checkpoint.
    last: u64,
    /// Scratch space for windows.
    window: Vec<u8>,
}

/// Where a gzip decoder is in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzState {
    /// Before a member header (or at the end of the input).
    Header,
    /// In a member's deflate data.
    Deflate,
    /// Before a member's 8-byte trailer.
    Trailer,
    /// Past the last member.
    Done,
}

/// The inflater of a [`GzipDecoder`]: zlib-rs where checkpoints are recorded (it stops at deflate block
/// boundaries and gives its window), ISA-L everywhere else (it inflates faster).
enum Inflater {
    Zlib(RawInflate),
    Isal(IsalInflate),
}

impl Inflater {
    /// Starts over, at the start of a new raw deflate stream.
    fn reset(&mut self) -> io::Result<()> {
        match self {
            Inflater::Zlib(z) => z.reset(),
            Inflater::Isal(i) => {
                i.reset();
                Ok(())
            }
        }
    }

    /// Resumes inside a stream: the low `bits` bits of `value` come first (the rest of the byte a
    /// checkpoint lies in; none at a byte boundary), with `window` as the output before this point.
    fn resume(&mut self, bits: u8, value: u8, window: &[u8]) -> io::Result<()> {
        match self {
            Inflater::Zlib(z) => {
                if bits > 0 {
                    z.prime(bits, u16::from(value))?;
                }
                z.set_dictionary(window)
            }
            Inflater::Isal(i) => {
                if bits > 0 {
                    i.prime(bits, value)?;
                }
                i.set_dictionary(window)
            }
        }
    }
}

/// What one inflate call did, whichever the inflater.
struct Inflated {
    consumed: usize,
    produced: usize,
    /// The deflate stream ended.
    end: bool,
    /// The call stopped at the end of a block (zlib, with [`Flush::Block`]): it made progress.
    block_end: bool,
    /// Stopped just after a block that is not the last: the bits held (a checkpoint can be recorded here).
    boundary: Option<u32>,
}

/// A gzip decoder over any number of members.
pub(crate) struct GzipDecoder {
    inflate: Inflater,
    /// Bytes after a member's deflate data that the inflater took in but did not use (ISA-L reads ahead up
    /// to 8 bytes): the next ones to read, before the input.
    carry: Vec<u8>,
    state: GzState,
    /// Whether the current member's CRC-32 and size are checked (not when resumed inside it).
    verify: bool,
    crc: u32,
    member_out: u64,
    /// Members started (a resumed decoder counts the one it resumed in).
    members: u64,
    /// Offset in the blob of the next input byte.
    pos: u64,
    /// Offset in the uncompressed stream of the next output byte.
    out: u64,
    recorder: Option<Recorder>,
}

impl GzipDecoder {
    fn new(record: bool) -> io::Result<GzipDecoder> {
        Ok(GzipDecoder {
            inflate: if record {
                Inflater::Zlib(RawInflate::new()?)
            } else {
                Inflater::Isal(IsalInflate::new())
            },
            carry: Vec::new(),
            state: GzState::Header,
            verify: false,
            crc: 0,
            member_out: 0,
            members: 0,
            pos: 0,
            out: 0,
            recorder: record.then(|| Recorder {
                checkpoints: Vec::new(),
                sink: None,
                last: 0,
                window: Vec::new(),
            }),
        })
    }

    fn resume(checkpoint: &Checkpoint, input: &mut dyn BufRead) -> io::Result<GzipDecoder> {
        let mut d = GzipDecoder::new(false)?;
        d.state = GzState::Deflate;
        d.members = 1;
        d.pos = checkpoint.compressed_bit_offset / 8;
        d.out = checkpoint.uncompressed_offset;
        let shift = (checkpoint.compressed_bit_offset % 8) as u8;
        // (bits, value): none, or the checkpoint's byte's bits from it on.
        let mut primed = (0, 0);
        if shift != 0 {
            // The checkpoint is inside this byte: its high 8 - shift bits are the first ones to inflate.
            let mut byte = [0u8];
            d.read_exact(input, &mut byte, "the deflate stream")?;
            primed = (8 - shift, byte[0] >> shift);
        }
        d.inflate.resume(primed.0, primed.1, &checkpoint.window)?;
        Ok(d)
    }

    fn decode(&mut self, input: &mut dyn BufRead, out: &mut [u8]) -> io::Result<usize> {
        let mut produced = 0;
        loop {
            let (n, carried) = if self.carry.is_empty() {
                self.decode_from(input, &mut out[produced..])?
            } else {
                // The bytes carried over come first. (After an error the decoder is not used again.)
                let carry = std::mem::take(&mut self.carry);
                let mut chained = io::Read::chain(&carry[..], &mut *input);
                let decoded = self.decode_from(&mut chained, &mut out[produced..]);
                // Carried bytes not read yet (only after an error: a trailer takes all 8) go before the
                // ones a later member's end left.
                let unread = chained.into_inner().0;
                if !unread.is_empty() {
                    self.carry.splice(0..0, unread.iter().copied());
                }
                decoded?
            };
            produced += n;
            if !carried {
                return Ok(produced);
            }
        }
    }

    /// Inflates from `buf` into `out` with the decoder's inflater.
    fn inflate(&mut self, buf: &[u8], out: &mut [u8], flush: Flush) -> io::Result<Inflated> {
        Ok(match &mut self.inflate {
            Inflater::Zlib(z) => {
                let step = z.inflate(buf, out, flush)?;
                Inflated {
                    consumed: step.consumed,
                    produced: step.produced,
                    end: step.end,
                    block_end: step.block_end,
                    boundary: (flush == Flush::Block && step.block_boundary)
                        .then_some(step.held_bits),
                }
            }
            Inflater::Isal(i) => {
                let step = i.inflate(buf, out)?;
                if step.end {
                    // ISA-L took in up to 8 bytes past the stream's end: they are the trailer's.
                    self.carry = i.take_unused();
                }
                Inflated {
                    consumed: step.consumed,
                    produced: step.produced,
                    end: step.end,
                    block_end: false,
                    boundary: None,
                }
            }
        })
    }

    /// Decodes from `input` into `out` like [`Decoder::decode`], but stops early when the inflater leaves
    /// bytes to carry over (then says so): they must be read before `input`.
    fn decode_from(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut [u8],
    ) -> io::Result<(usize, bool)> {
        let mut produced = 0;
        let mut stalls = 0;
        while produced < out.len() {
            match self.state {
                GzState::Done => break,
                GzState::Header => {
                    if input.fill_buf()?.is_empty() {
                        if self.members == 0 {
                            return Err(truncated("the first gzip header"));
                        }
                        self.state = GzState::Done;
                        continue;
                    }
                    self.read_header(input)?;
                    self.inflate.reset()?;
                    self.members += 1;
                    self.verify = true;
                    self.crc = 0;
                    self.member_out = 0;
                    self.state = GzState::Deflate;
                    if let Some(r) = &mut self.recorder {
                        if let Some(sink) = &mut r.sink {
                            sink(self.pos.saturating_mul(8));
                        }
                        r.checkpoints.push(Checkpoint {
                            compressed_bit_offset: self.pos.saturating_mul(8),
                            uncompressed_offset: self.out,
                            window: Vec::new(),
                        });
                        r.last = self.out;
                    }
                }
                GzState::Deflate => {
                    let buf = input.fill_buf()?;
                    if buf.is_empty() {
                        return Err(truncated("a gzip member's deflate data"));
                    }
                    let flush = match &self.recorder {
                        Some(r) if self.out.saturating_sub(r.last) >= CHECKPOINT_SPAN => {
                            Flush::Block
                        }
                        _ => Flush::Normal,
                    };
                    let step = self.inflate(buf, &mut out[produced..], flush)?;
                    input.consume(step.consumed);
                    self.pos = self.pos.saturating_add(step.consumed as u64);
                    let written = &out[produced..produced + step.produced];
                    if self.verify {
                        self.crc = crc32(self.crc, written);
                    }
                    produced += step.produced;
                    self.member_out = self.member_out.saturating_add(step.produced as u64);
                    // Saturating: a resumed decoder's offset comes from an index, which may be hostile.
                    self.out = self.out.saturating_add(step.produced as u64);
                    if step.end {
                        self.state = GzState::Trailer;
                        if !self.carry.is_empty() {
                            // Taken in but not used: read again (from the carry) for the trailer.
                            self.pos = self.pos.saturating_sub(self.carry.len() as u64);
                            return Ok((produced, true));
                        }
                    } else if let Some(held_bits) = step.boundary {
                        self.checkpoint(held_bits)?;
                    }
                    // A call may legitimately consume and produce nothing (a block end decoded from bits
                    // already held), but not over and over.
                    if step.consumed == 0 && step.produced == 0 && !step.block_end {
                        stalls += 1;
                        if stalls > MAX_STALLS {
                            return Err(invalid("the deflate stream makes no progress"));
                        }
                    } else {
                        stalls = 0;
                    }
                }
                GzState::Trailer => {
                    let mut trailer = [0u8; 8];
                    self.read_exact(input, &mut trailer, "a gzip trailer")?;
                    let [c0, c1, c2, c3, s0, s1, s2, s3] = trailer;
                    if self.verify {
                        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
                        if crc != self.crc {
                            return Err(invalid(format!(
                                "gzip member {} has CRC-32 {crc:08x} but its data has {:08x}",
                                self.members, self.crc
                            )));
                        }
                        let size = u32::from_le_bytes([s0, s1, s2, s3]);
                        if size != self.member_out as u32 {
                            return Err(invalid(format!(
                                "gzip member {} says it holds {size} bytes (mod 2^32) but holds {}",
                                self.members, self.member_out
                            )));
                        }
                    }
                    self.state = GzState::Header;
                }
            }
        }
        Ok((produced, false))
    }

    /// Records a checkpoint where the inflater stopped, at a block boundary, `held_bits` before the input
    /// position.
    fn checkpoint(&mut self, held_bits: u32) -> io::Result<()> {
        let Some(r) = &mut self.recorder else {
            return Ok(());
        };
        let bit = self
            .pos
            .checked_mul(8)
            .and_then(|bits| bits.checked_sub(u64::from(held_bits)))
            .ok_or_else(|| io::Error::other("inflate holds more bits than it read"))?;
        let Inflater::Zlib(z) = &self.inflate else {
            return Err(io::Error::other("only zlib records checkpoints"));
        };
        z.window(&mut r.window)?;
        if let Some(sink) = &mut r.sink {
            sink(bit);
        }
        r.checkpoints.push(Checkpoint {
            compressed_bit_offset: bit,
            uncompressed_offset: self.out,
            window: r.window.clone(),
        });
        r.last = self.out;
        Ok(())
    }

    /// Parses a gzip member header (RFC 1952 §2.3), checking its CRC-16 if it has one.
    fn read_header(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        const WHAT: &str = "a gzip header";
        let mut fixed = [0u8; 10];
        let (magic, rest) = fixed.split_at_mut(2);
        self.read_exact(input, magic, WHAT)?;
        if magic != [0x1f, 0x8b] {
            return Err(invalid(format!(
                "bytes at offset {} are not a gzip member (no gzip magic)",
                self.pos - 2
            )));
        }
        self.read_exact(input, rest, WHAT)?;
        let mut crc = crc32(0, &fixed);
        if fixed[2] != 8 {
            return Err(invalid(format!(
                "gzip compression method {} is not deflate",
                fixed[2]
            )));
        }
        let flags = fixed[3];
        if flags & FRESERVED != 0 {
            return Err(invalid("gzip header has reserved flags set"));
        }
        if flags & FEXTRA != 0 {
            let mut xlen = [0u8; 2];
            self.read_exact(input, &mut xlen, WHAT)?;
            crc = crc32(crc, &xlen);
            let mut left = u64::from(u16::from_le_bytes(xlen));
            while left > 0 {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    return Err(truncated(WHAT));
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                crc = crc32(crc, &buf[..n]);
                input.consume(n);
                self.pos += n as u64;
                left -= n as u64;
            }
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag == 0 {
                continue;
            }
            // A NUL-terminated string, of any length.
            loop {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    return Err(truncated(WHAT));
                }
                let (n, done) = match buf.iter().position(|&b| b == 0) {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                crc = crc32(crc, &buf[..n]);
                input.consume(n);
                self.pos += n as u64;
                if done {
                    break;
                }
            }
        }
        if flags & FHCRC != 0 {
            let mut hcrc = [0u8; 2];
            self.read_exact(input, &mut hcrc, WHAT)?;
            if u16::from_le_bytes(hcrc) != crc as u16 {
                return Err(invalid("gzip header CRC mismatch"));
            }
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes, counting them.
    fn read_exact(
        &mut self,
        input: &mut dyn BufRead,
        buf: &mut [u8],
        what: &str,
    ) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let avail = input.fill_buf()?;
            if avail.is_empty() {
                return Err(truncated(what));
            }
            let n = avail.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&avail[..n]);
            input.consume(n);
            self.pos += n as u64;
            filled += n;
        }
        Ok(())
    }
}

/// A zstd decoder over any number of frames (skippable ones included).
pub(crate) struct ZstdDecoder {
    decoder: zstd::stream::raw::Decoder<'static>,
    /// Inside a frame (its end not yet reached).
    in_frame: bool,
    /// Frames started.
    frames: u64,
    /// Offset in the blob of the next input byte.
    pos: u64,
    /// Offset in the uncompressed stream of the next output byte.
    out: u64,
    checkpoints: Option<Vec<Checkpoint>>,
    /// Told of each checkpoint's bit offset as it is recorded.
    sink: Option<CheckpointSink>,
}

impl ZstdDecoder {
    fn new(record: bool) -> io::Result<ZstdDecoder> {
        Ok(ZstdDecoder {
            decoder: zstd::stream::raw::Decoder::new()?,
            in_frame: false,
            frames: 0,
            pos: 0,
            out: 0,
            checkpoints: record.then(Vec::new),
            sink: None,
        })
    }

    fn decode(&mut self, input: &mut dyn BufRead, out: &mut [u8]) -> io::Result<usize> {
        let mut produced = 0;
        let mut stalls = 0;
        while produced < out.len() {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                if self.in_frame {
                    return Err(truncated("a zstd frame"));
                }
                break;
            }
            if !self.in_frame {
                if self.frames > 0 {
                    self.decoder.reinit()?;
                }
                self.frames += 1;
                self.in_frame = true;
                if let Some(c) = &mut self.checkpoints {
                    if let Some(sink) = &mut self.sink {
                        sink(self.pos.saturating_mul(8));
                    }
                    c.push(Checkpoint {
                        compressed_bit_offset: self.pos.saturating_mul(8),
                        uncompressed_offset: self.out,
                        window: Vec::new(),
                    });
                }
            }
            let mut inb = InBuffer::around(buf);
            let mut outb = OutBuffer::around(&mut out[produced..]);
            let hint = self.decoder.run(&mut inb, &mut outb)?;
            let (consumed, written) = (inb.pos(), outb.pos());
            input.consume(consumed);
            self.pos = self.pos.saturating_add(consumed as u64);
            self.out = self.out.saturating_add(written as u64);
            produced += written;
            if hint == 0 {
                self.in_frame = false;
            }
            if consumed == 0 && written == 0 {
                stalls += 1;
                if stalls > MAX_STALLS {
                    return Err(invalid("the zstd stream makes no progress"));
                }
            } else {
                stalls = 0;
            }
        }
        Ok(produced)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Some compressible, some incompressible bytes.
    fn data(n: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if (out.len() >> 16) % 2 == 0 {
                out.extend_from_slice(&state.to_le_bytes());
            } else {
                out.extend_from_slice(b"compressible text ");
            }
        }
        out.truncate(n);
        out
    }

    fn decode_all(
        compression: Compression,
        blob: &[u8],
        record: bool,
    ) -> io::Result<(Vec<u8>, Vec<Checkpoint>)> {
        let mut decoder = Decoder::from_start(compression, record)?;
        let mut input = io::BufReader::with_capacity(1000, blob);
        let mut out = Vec::new();
        loop {
            let mut chunk = vec![0u8; 77_777];
            let n = decoder.decode(&mut input, &mut chunk)?;
            out.extend_from_slice(&chunk[..n]);
            if n < chunk.len() {
                return Ok((out, decoder.take_checkpoints()));
            }
        }
    }

    /// The error decoding `blob` gives, the same with either inflater (zlib-rs when recording, ISA-L not).
    fn gzip_err(blob: &[u8]) -> String {
        let recorded = decode_all(Compression::Gzip, blob, true).unwrap_err();
        let plain = decode_all(Compression::Gzip, blob, false).unwrap_err();
        assert_eq!(recorded.to_string(), plain.to_string());
        recorded.to_string()
    }

    #[test]
    fn gzip_checkpoints_resume_to_the_same_bytes() {
        let original = data(11 << 20);
        let mut blob = gzip(&original[..5_000_000]);
        blob.extend(gzip(&original[5_000_000..]));
        let (out, checkpoints) = decode_all(Compression::Gzip, &blob, true).unwrap();
        assert!(out == original);
        // Two member starts, and one past each span in each member.
        assert_eq!(checkpoints.len(), 4, "{checkpoints:?}");
        for c in &checkpoints {
            let mut input = &blob[(c.compressed_bit_offset / 8) as usize..];
            let mut decoder = Decoder::resume(Compression::Gzip, c, &mut input).unwrap();
            let mut chunk = vec![0u8; 100_000];
            let n = decoder.decode(&mut input, &mut chunk).unwrap();
            let at = c.uncompressed_offset as usize;
            assert_eq!(n, 100_000);
            assert!(chunk == original[at..at + n], "at {at}");
        }
    }

    #[test]
    fn gzip_without_checkpoints_decodes_across_members() {
        // Members of every size around ISA-L's 8-byte read-ahead: the trailer bytes it takes in with the
        // end of a member are read again from the carry.
        let original = data(11 << 20);
        let mut blob = Vec::new();
        let mut at = 0;
        for len in [0, 1, 7, 8, 9, 100, 1 << 20, 9 << 20] {
            let end = (at + len).min(original.len());
            blob.extend(gzip(&original[at..end]));
            at = end;
        }
        blob.extend(gzip(&original[at..]));
        let (out, checkpoints) = decode_all(Compression::Gzip, &blob, false).unwrap();
        assert!(out == original);
        assert!(checkpoints.is_empty());
        // Resumed at any checkpoint (some inside a byte), to the end: across the later members too.
        let (_, checkpoints) = decode_all(Compression::Gzip, &blob, true).unwrap();
        assert!(checkpoints.iter().any(|c| c.compressed_bit_offset % 8 != 0));
        for c in &checkpoints {
            let mut input =
                io::BufReader::with_capacity(999, &blob[(c.compressed_bit_offset / 8) as usize..]);
            let mut decoder = Decoder::resume(Compression::Gzip, c, &mut input).unwrap();
            let at = c.uncompressed_offset as usize;
            let mut rest = vec![0u8; original.len() - at + 1];
            let n = decoder.decode(&mut input, &mut rest).unwrap();
            assert_eq!(n, original.len() - at, "at {at}");
            assert!(rest[..n] == original[at..], "at {at}");
        }
    }

    #[test]
    fn gzip_trailers_and_headers_are_checked() {
        let good = gzip(b"hello, layer");
        assert_eq!(
            decode_all(Compression::Gzip, &good, true).unwrap().0,
            b"hello, layer"
        );
        let n = good.len();

        let mut bad_crc = good.clone();
        bad_crc[n - 8] ^= 1;
        assert!(gzip_err(&bad_crc).contains("CRC-32"));

        let mut bad_size = good.clone();
        bad_size[n - 4] ^= 1;
        assert!(gzip_err(&bad_size).contains("holds"));

        let mut reserved = good.clone();
        reserved[3] |= 0x20;
        assert!(gzip_err(&reserved).contains("reserved"));

        let mut method = good.clone();
        method[2] = 7;
        assert!(gzip_err(&method).contains("method"));

        let mut hcrc = good[..10].to_vec();
        hcrc[3] |= FHCRC;
        hcrc.extend_from_slice(&[0, 0]);
        hcrc.extend_from_slice(&good[10..]);
        assert!(gzip_err(&hcrc).contains("header CRC"));

        let mut garbage = good.clone();
        garbage.extend_from_slice(b"\0\0\0\0");
        assert!(gzip_err(&garbage).contains("no gzip magic"));

        for cut in [5, 10, n / 2, n - 3] {
            let e = decode_all(Compression::Gzip, &good[..cut], true).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{cut}: {e}");
        }

        let mut corrupt = gzip(&data(100_000));
        let mid = corrupt.len() / 2;
        corrupt[mid..mid + 64].fill(0xff);
        assert!(decode_all(Compression::Gzip, &corrupt, true).is_err());
    }

    #[test]
    fn zstd_frames_and_truncation() {
        let original = data(300_000);
        let mut blob = zstd::bulk::compress(&original[..100_000], 3).unwrap();
        let second = blob.len() as u64;
        blob.extend(zstd::bulk::compress(&original[100_000..], 3).unwrap());
        let (out, checkpoints) = decode_all(Compression::Zstd, &blob, true).unwrap();
        assert!(out == original);
        assert_eq!(
            checkpoints
                .iter()
                .map(|c| (c.compressed_bit_offset, c.uncompressed_offset))
                .collect::<Vec<_>>(),
            [(0, 0), (second * 8, 100_000)]
        );
        let e = decode_all(Compression::Zstd, &blob[..blob.len() - 5], true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }
}
