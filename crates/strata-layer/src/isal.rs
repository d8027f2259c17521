//! Raw-deflate inflation with ISA-L's igzip (through `isal-sys`), for decoders that record no checkpoints:
//! random-access reads resumed at a checkpoint, and whole-blob reads that need no index. On x86-64 it
//! inflates about 1.5 times as fast as zlib-rs (docs/BENCHMARKS-inflate.md), which is what a first read of
//! a file from a mounted blob waits for. It cannot stop at deflate block boundaries (zlib's `Z_BLOCK`), so
//! the decoders that record checkpoints keep [`crate::zlib::RawInflate`].
//!
//! Besides [`crate::zlib`], this is the crate's only module with `unsafe` code. Every call hands ISA-L
//! pointers into slices that outlive the call, and the stream pointers are cleared afterwards, so no pointer
//! to caller memory survives a call.

#![allow(unsafe_code)]

use std::io;
use std::ptr;

use isal_sys::igzip_lib as isal;

use crate::zlib::WINDOW_SIZE;

/// What one [`IsalInflate::inflate`] call did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IsalStep {
    /// Input bytes taken.
    pub consumed: usize,
    /// Output bytes written.
    pub produced: usize,
    /// The deflate stream's last block is done; [`IsalInflate::take_unused`] gives back the whole bytes
    /// after it that ISA-L had already taken in.
    pub end: bool,
}

/// A raw-deflate (no zlib or gzip wrapper) inflate stream with a 32 KiB window.
pub(crate) struct IsalInflate {
    /// Boxed: the state is about 90 KiB (it holds ISA-L's own output window).
    state: Box<isal::inflate_state>,
}

// SAFETY: the state is plain memory owned by this value alone; between calls its `next_in`/`next_out` are
// null, so no pointer into another thread's memory is kept, and ISA-L keeps no thread-local state.
unsafe impl Send for IsalInflate {}

impl IsalInflate {
    /// A new stream, ready to inflate raw deflate data from its start.
    pub fn new() -> IsalInflate {
        // SAFETY: all zeroes is a valid `inflate_state`, a plain C struct of integers, raw pointers and
        // arrays of them.
        let mut state: Box<isal::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `state` is a valid, exclusively borrowed state; `isal_inflate_init` only writes into it.
        unsafe { isal::isal_inflate_init(&mut *state) };
        state.crc_flag = isal::ISAL_DEFLATE;
        IsalInflate { state }
    }

    /// Starts over, at the start of a new raw deflate stream, with an empty window.
    pub fn reset(&mut self) {
        // SAFETY: the state was initialised by `new`; reset keeps `crc_flag` and clears the rest.
        unsafe { isal::isal_inflate_reset(&mut *self.state) };
    }

    /// Feeds the low `bits` (< 8) bits of `value` before any input byte: resuming mid-byte.
    pub fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        if bits >= 8 || self.state.read_in_length != 0 {
            return Err(io::Error::other(format!(
                "cannot prime an inflate stream with {bits} bits"
            )));
        }
        // ISA-L keeps the bits it has taken in but not used yet here, the next one lowest: a stream
        // resumed with these bits reads them before the next input byte, as zlib's inflatePrime does.
        self.state.read_in = u64::from(value) & ((1u64 << bits) - 1);
        self.state.read_in_length = i32::from(bits);
        Ok(())
    }

    /// Sets the window (the last 32 KiB of `dictionary` count).
    pub fn set_dictionary(&mut self, dictionary: &[u8]) -> io::Result<()> {
        let dictionary = &dictionary[dictionary.len().saturating_sub(WINDOW_SIZE)..];
        if dictionary.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(dictionary.len()).unwrap_or(0);
        // SAFETY: the state is initialised; pointer and length describe `dictionary`, which outlives the
        // call, and ISA-L only copies from it (the pointer is not const in its signature).
        let ret = unsafe {
            isal::isal_inflate_set_dict(&mut *self.state, dictionary.as_ptr().cast_mut(), len)
        };
        check(ret, "isal_inflate_set_dict")
    }

    /// Inflates from `input` into `output` until the input is used up, the output is full or the stream
    /// ends.
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> io::Result<IsalStep> {
        if self.state.block_state == isal::isal_block_state_ISAL_BLOCK_FINISH {
            return Ok(IsalStep {
                end: true,
                ..IsalStep::default()
            });
        }
        let avail_in = u32::try_from(input.len()).unwrap_or(u32::MAX);
        let avail_out = u32::try_from(output.len()).unwrap_or(u32::MAX);
        self.state.next_in = input.as_ptr().cast_mut();
        self.state.avail_in = avail_in;
        self.state.next_out = output.as_mut_ptr();
        self.state.avail_out = avail_out;
        // SAFETY: the state is initialised; `next_in`/`avail_in` describe (a prefix of) `input`, which ISA-L
        // only reads, and `next_out`/`avail_out` (a prefix of) `output`, both borrowed for the whole call, the
        // latter exclusively.
        let ret = unsafe { isal::isal_inflate(&mut *self.state) };
        let consumed = avail_in.saturating_sub(self.state.avail_in) as usize;
        let produced = avail_out.saturating_sub(self.state.avail_out) as usize;
        self.state.next_in = ptr::null_mut();
        self.state.avail_in = 0;
        self.state.next_out = ptr::null_mut();
        self.state.avail_out = 0;
        check(ret, "isal_inflate")?;
        Ok(IsalStep {
            consumed: consumed.min(input.len()),
            produced: produced.min(output.len()),
            end: self.state.block_state == isal::isal_block_state_ISAL_BLOCK_FINISH,
        })
    }

    /// Once the stream has ended: the whole bytes after it that ISA-L had taken in (at most 8), in order.
    /// The bits left of the last byte the stream used are padding and dropped.
    pub fn take_unused(&mut self) -> Vec<u8> {
        let bits = u32::try_from(self.state.read_in_length)
            .unwrap_or(0)
            .min(64);
        let bytes = bits / 8;
        let rest = self.state.read_in.checked_shr(bits % 8).unwrap_or_default();
        self.state.read_in = 0;
        self.state.read_in_length = 0;
        rest.to_le_bytes()[..bytes as usize].to_vec()
    }
}

/// Turns an ISA-L return code into a result.
fn check(ret: i32, call: &str) -> io::Result<()> {
    let what = match ret {
        // Done, input used up, output full: the caller sees which in the counts.
        0..=2 => return Ok(()),
        isal::ISAL_INVALID_BLOCK => "invalid block",
        isal::ISAL_INVALID_SYMBOL => "invalid symbol",
        isal::ISAL_INVALID_LOOKBACK => "distance too far back",
        _ if i64::from(ret) == i64::from(isal::ISAL_NEED_DICT) => "it needs a preset dictionary",
        _ => return Err(io::Error::other(format!("{call} failed with code {ret}"))),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid deflate data: {what}"),
    ))
}
