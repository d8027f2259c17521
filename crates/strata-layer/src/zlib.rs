//! Raw-deflate inflation for random access: a safe wrapper over zlib-rs's C API (`libz-rs-sys`) exposing the
//! few calls that the safe `zlib_rs::Inflate` lacks — stopping at deflate block boundaries (`Z_BLOCK`, with
//! `data_type` telling where in the bit stream it stopped), `inflatePrime` (resume at a bit offset),
//! `inflateSetDictionary` and `inflateGetDictionary` (the 32 KiB window).
//!
//! With [`crate::isal`], this is one of the crate's two modules with `unsafe` code. Every call hands zlib pointers into slices that outlive
//! the call, and the stream pointers are cleared afterwards, so no pointer to caller memory survives a call.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_uint};
use std::io;
use std::ptr;

use libz_rs_sys as z;

/// The largest deflate window: how far back a deflate stream can refer.
pub(crate) const WINDOW_SIZE: usize = 32 << 10;

/// When [`RawInflate::inflate`] should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// When the input is used up or the output is full (`Z_NO_FLUSH`).
    Normal,
    /// Also at the end of each deflate block (`Z_BLOCK`).
    Block,
}

/// What one [`RawInflate::inflate`] call did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    /// Input bytes taken (some of their bits may still be held, see `held_bits`).
    pub consumed: usize,
    /// Output bytes written.
    pub produced: usize,
    /// The deflate stream's last block is done (`Z_STREAM_END`).
    pub end: bool,
    /// The call stopped just after the end of a block (with [`Flush::Block`]).
    pub block_end: bool,
    /// The call stopped just after a block that is not the last one: a point where a new inflater can
    /// resume with a bit offset and a window.
    pub block_boundary: bool,
    /// Bits of the consumed input not yet used: the stream position is `consumed * 8 - held_bits`.
    pub held_bits: u32,
}

/// A raw-deflate (no zlib or gzip wrapper) inflate stream with a 32 KiB window.
pub(crate) struct RawInflate {
    /// Boxed: zlib's internal state may refer back to its stream, which must therefore never move.
    strm: Box<z::z_stream>,
}

// SAFETY: the stream's state is heap memory owned by this value alone (allocated through the Rust
// allocator); between calls `next_in`/`next_out` are null, so no pointer into another thread's memory is
// kept, and zlib-rs keeps no thread-local state. Moving the owner to another thread is therefore sound.
unsafe impl Send for RawInflate {}

impl RawInflate {
    /// A new stream, ready to inflate raw deflate data from its start.
    pub fn new() -> io::Result<RawInflate> {
        let mut strm = Box::new(z::z_stream::default());
        let size = c_int::try_from(size_of::<z::z_stream>()).unwrap_or(c_int::MAX);
        // SAFETY: `strm` is a default-initialised stream (null buffers, the default allocator functions);
        // the version string is the library's own NUL-terminated one and `size` is the size of the very
        // struct type the library uses.
        let ret = unsafe { z::inflateInit2_(&mut *strm, -15, z::zlibVersion(), size) };
        let inflate = RawInflate { strm };
        inflate.check(ret, "inflateInit2")?;
        Ok(inflate)
    }

    /// Starts over, at the start of a new raw deflate stream, with an empty window.
    pub fn reset(&mut self) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new` (a failed init never yields a `RawInflate`).
        let ret = unsafe { z::inflateReset(&mut *self.strm) };
        self.check(ret, "inflateReset")
    }

    /// Feeds the low `bits` (≤ 16) bits of `value` before any input byte: resuming mid-byte.
    pub fn prime(&mut self, bits: u8, value: u16) -> io::Result<()> {
        // SAFETY: the stream is initialised; inflatePrime checks `bits` itself.
        let ret =
            unsafe { z::inflatePrime(&mut *self.strm, c_int::from(bits), c_int::from(value)) };
        self.check(ret, "inflatePrime")
    }

    /// Sets the window (the last 32 KiB of `dictionary` count).
    pub fn set_dictionary(&mut self, dictionary: &[u8]) -> io::Result<()> {
        let dictionary = &dictionary[dictionary.len().saturating_sub(WINDOW_SIZE)..];
        if dictionary.is_empty() {
            return Ok(());
        }
        let len = c_uint::try_from(dictionary.len()).unwrap_or(0);
        // SAFETY: the stream is initialised; pointer and length describe `dictionary`, which outlives the call,
        // and zlib copies it into its own window.
        let ret = unsafe { z::inflateSetDictionary(&mut *self.strm, dictionary.as_ptr(), len) };
        self.check(ret, "inflateSetDictionary")
    }

    /// Replaces `out` with the current window: the up to 32 KiB of output preceding this point.
    pub fn window(&self, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        let mut len: c_uint = 0;
        // SAFETY: the stream is initialised; with a null dictionary pointer zlib only stores the window's
        // length in `len`, a valid `c_uint`.
        let ret = unsafe { z::inflateGetDictionary(&*self.strm, ptr::null_mut(), &mut len) };
        self.check(ret, "inflateGetDictionary")?;
        if len as usize > WINDOW_SIZE {
            return Err(io::Error::other(format!(
                "inflate window of {len} bytes is larger than 32 KiB"
            )));
        }
        out.resize(len as usize, 0);
        // SAFETY: `out` is `len` bytes long, exactly the window's length just read, and nothing touched the
        // stream in between; zlib writes at most that many bytes.
        let ret = unsafe { z::inflateGetDictionary(&*self.strm, out.as_mut_ptr(), &mut len) };
        self.check(ret, "inflateGetDictionary")
    }

    /// Inflates from `input` into `output` until the input is used up, the output is full, the stream ends, or
    /// (with [`Flush::Block`]) a block ends.
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: Flush) -> io::Result<Step> {
        let avail_in = c_uint::try_from(input.len()).unwrap_or(c_uint::MAX);
        let avail_out = c_uint::try_from(output.len()).unwrap_or(c_uint::MAX);
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = avail_out;
        let flush = match flush {
            Flush::Normal => z::Z_NO_FLUSH,
            Flush::Block => z::Z_BLOCK,
        };
        // SAFETY: the stream is initialised; `next_in`/`avail_in` describe (a prefix of) `input` and
        // `next_out`/`avail_out` (a prefix of) `output`, both borrowed for the whole call, the latter
        // exclusively.
        let ret = unsafe { z::inflate(&mut *self.strm, flush) };
        let consumed = avail_in.saturating_sub(self.strm.avail_in) as usize;
        let produced = avail_out.saturating_sub(self.strm.avail_out) as usize;
        self.strm.next_in = ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = ptr::null_mut();
        self.strm.avail_out = 0;
        let data_type = self.strm.data_type;
        let end = match ret {
            z::Z_STREAM_END => true,
            // Z_BUF_ERROR only says no progress was possible; the caller sees that in the counts.
            z::Z_OK | z::Z_BUF_ERROR => false,
            z::Z_NEED_DICT => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "deflate stream needs a preset dictionary",
                ));
            }
            _ => {
                self.check(ret, "inflate")?;
                false
            }
        };
        Ok(Step {
            consumed: consumed.min(input.len()),
            produced: produced.min(output.len()),
            end,
            // 128: stopped at a block boundary; 64: in (or after) the last block.
            block_end: data_type & 0x80 != 0,
            block_boundary: data_type & 0xc0 == 0x80,
            // The bit count is below 64 (zlib-rs holds at most a 64-bit buffer); flags are 64 and up.
            held_bits: (data_type & 0x3f) as u32,
        })
    }

    /// Turns a zlib return code into a result, with zlib's message.
    fn check(&self, ret: c_int, call: &str) -> io::Result<()> {
        if ret == z::Z_OK {
            return Ok(());
        }
        let message = if self.strm.msg.is_null() {
            None
        } else {
            // SAFETY: zlib-rs only ever points `msg` at static NUL-terminated strings.
            unsafe { CStr::from_ptr(self.strm.msg) }
                .to_str()
                .ok()
                .map(str::to_owned)
        };
        let kind = if ret == z::Z_DATA_ERROR {
            io::ErrorKind::InvalidData
        } else {
            io::ErrorKind::Other
        };
        Err(io::Error::new(
            kind,
            match (ret, message) {
                (z::Z_DATA_ERROR, Some(m)) => format!("invalid deflate data: {m}"),
                (_, Some(m)) => format!("{call} failed: {m}"),
                (_, None) => format!("{call} failed with code {ret}"),
            },
        ))
    }
}

impl Drop for RawInflate {
    fn drop(&mut self) {
        // SAFETY: the stream is ended exactly once, here; if its initialisation failed, its state is null and
        // inflateEnd only returns an error code.
        unsafe { z::inflateEnd(&mut *self.strm) };
    }
}

/// The CRC-32 of gzip trailers, continued from `crc` over `bytes`.
pub(crate) fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(crc, bytes)
}
