//! Inflates a gzip file (any number of members) REPEAT times with the backend this binary was built with, checks
//! that every run gives the same output length and CRC-32, and prints MB/s of output per run and the median.
//!
//!     inflate-bench [--strata | --strata-index] [--log FILE] FILE.gz [REPEAT]
//!
//! Backends (cargo features, one per build; see Cargo.toml):
//! * `zlib-rs`, `zlib-ng`, `miniz`: flate2's `bufread::MultiGzDecoder` over the file in memory, read out in
//!   256 KiB chunks (the chunk size of strata's pipeline).
//! * `libdeflate`: libdeflate's whole-buffer `libdeflate_gzip_decompress_ex`, member after member, each into one
//!   reused output buffer (sized from the last member's ISIZE, doubled and the member redone when too small).
//! * `isal`: ISA-L's igzip, `isal_inflate` in gzip mode (ISA-L parses each member's header and checks its CRC-32
//!   and ISIZE), the whole file as input, into a 256 KiB output buffer; after each member the state is reset and
//!   the next member starts where the last one's trailer ended.
//! * `--strata` (feature `strata`): strata-layer's own gzip decoder (ISA-L, as for all its reads that record no
//!   checkpoints; strata parses the members and checks their CRC-32 and ISIZE), through `LayerReader::read_at`
//!   from offset 0 in 256 KiB
//!   reads, the blob served from memory by a minimal `ImageSource`: the decoder's streaming cost plus the
//!   reader's copies, with no hashing.
//! * `--strata-index` (feature `strata`): `strata_layer::read_layer`, the whole pass `strata index` makes minus
//!   writing the index: sha256 of the blob, inflate and checkpoints on one thread; sha256 of the tar and tar
//!   parsing on the calling one. The file must be a gzip tar.
//!
//! The file is read into memory first (not in the rate); each run's time is the inflate alone, including the
//! whole-output CRC-32 (crc32fast, the same in every build). `--log FILE` appends one line per run:
//! `label<TAB>bytes<TAB>crc<TAB>seconds<TAB>run`.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[cfg(any(
    all(feature = "zlib-rs", feature = "zlib-ng"),
    all(feature = "zlib-rs", feature = "miniz"),
    all(feature = "zlib-ng", feature = "miniz"),
))]
compile_error!("flate2 takes one backend per build: choose one of zlib-rs, zlib-ng, miniz");

/// Output chunk for the streaming decoders: strata's pipeline hands 256 KiB chunks to the tar parser.
const CHUNK: usize = 256 << 10;

type Res<T> = Result<T, String>;

/// Output length and CRC-32 of one run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Output {
    bytes: u64,
    crc: u32,
}

/// Counts and checksums the output.
#[derive(Default)]
struct Sink {
    bytes: u64,
    crc: crc32fast::Hasher,
}

impl Sink {
    fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.crc.update(data);
    }

    fn finish(self) -> Output {
        Output {
            bytes: self.bytes,
            crc: self.crc.finalize(),
        }
    }
}

/// The flate2 backend compiled in.
#[allow(dead_code)]
fn flate2_backend() -> Option<&'static str> {
    if cfg!(feature = "zlib-rs") {
        Some("flate2+zlib-rs")
    } else if cfg!(feature = "zlib-ng") {
        Some("flate2+zlib-ng")
    } else if cfg!(feature = "miniz") {
        Some("flate2+miniz_oxide")
    } else {
        None
    }
}

#[cfg(any(feature = "zlib-rs", feature = "zlib-ng", feature = "miniz"))]
fn inflate_flate2(data: &[u8], buf: &mut [u8]) -> Res<Output> {
    use std::io::Read;
    let mut decoder = flate2::bufread::MultiGzDecoder::new(data);
    let mut sink = Sink::default();
    loop {
        match decoder.read(buf) {
            Ok(0) => return Ok(sink.finish()),
            Ok(n) => sink.add(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("flate2: {e}")),
        }
    }
}

#[cfg(feature = "libdeflate")]
mod libdeflate {
    use super::{Output, Res, Sink};
    use libdeflate_sys as sys;

    /// A libdeflate decompressor, freed on drop.
    pub struct Inflater(*mut sys::libdeflate_decompressor);

    impl Inflater {
        pub fn new() -> Res<Inflater> {
            // SAFETY: no preconditions; NULL means out of memory, checked.
            let p = unsafe { sys::libdeflate_alloc_decompressor() };
            if p.is_null() {
                return Err("libdeflate_alloc_decompressor failed".into());
            }
            Ok(Inflater(p))
        }

        /// Inflates every member of `data` into `out` (reused: each member overwrites the last; grown when a
        /// member does not fit).
        pub fn inflate(&mut self, data: &[u8], out: &mut Vec<u8>) -> Res<Output> {
            let mut sink = Sink::default();
            let mut at = 0;
            while at < data.len() {
                let input = &data[at..];
                let mut used = 0usize;
                let mut produced = 0usize;
                // SAFETY: the pointers and lengths describe live slices; the decompressor is ours.
                let ret = unsafe {
                    sys::libdeflate_gzip_decompress_ex(
                        self.0,
                        input.as_ptr().cast(),
                        input.len(),
                        out.as_mut_ptr().cast(),
                        out.len(),
                        &mut used,
                        &mut produced,
                    )
                };
                match ret {
                    sys::libdeflate_result_LIBDEFLATE_SUCCESS => {
                        if used == 0 {
                            return Err(format!("libdeflate: no progress at input offset {at}"));
                        }
                        sink.add(&out[..produced]);
                        at += used;
                    }
                    sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => {
                        let grown = (out.len() * 2).max(1 << 20);
                        out.resize(grown, 0);
                    }
                    other => {
                        return Err(format!("libdeflate: error {other} at input offset {at}"));
                    }
                }
            }
            Ok(sink.finish())
        }
    }

    impl Drop for Inflater {
        fn drop(&mut self) {
            // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
            unsafe { sys::libdeflate_free_decompressor(self.0) }
        }
    }

    /// The output buffer's first size: the last member's ISIZE (its size mod 2^32), at least 1 MiB.
    pub fn first_size(data: &[u8]) -> usize {
        let isize = data
            .len()
            .checked_sub(4)
            .map(|i| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]))
            .unwrap_or(0);
        (isize as usize).max(1 << 20)
    }
}

#[cfg(feature = "isal")]
mod isal {
    use super::{CHUNK, Output, Res, Sink};
    use isal_sys::igzip_lib as sys;

    /// An igzip inflate state (85 KiB, its 64 KiB output history included: boxed), set up for gzip members.
    pub struct Inflater(Box<sys::inflate_state>);

    impl Inflater {
        pub fn new() -> Inflater {
            let mut state = Box::<sys::inflate_state>::new_zeroed();
            // SAFETY: the pointer is to a live, writable inflate_state-sized allocation; isal_inflate_init
            // writes every field it reads later, and the rest stay zeroed (valid for this plain C struct).
            let mut state = unsafe {
                sys::isal_inflate_init(state.as_mut_ptr());
                state.assume_init()
            };
            // Gzip: ISA-L reads each member's header and checks its trailer (CRC-32 and ISIZE) itself.
            // isal_inflate_reset keeps crc_flag.
            state.crc_flag = sys::ISAL_GZIP;
            Inflater(state)
        }

        /// Inflates every member of `data`, output through `buf` (CHUNK bytes at a time).
        pub fn inflate(&mut self, data: &[u8], buf: &mut [u8]) -> Res<Output> {
            let buf = &mut buf[..CHUNK];
            let st = &mut *self.0;
            // A fresh member state (after an error the last run may have left one half done). SAFETY: the state
            // is ours and initialised; the reset only writes its fields (next_in/next_out, left as they were, are
            // set below before isal_inflate reads them).
            unsafe { sys::isal_inflate_reset(st) };
            let mut sink = Sink::default();
            // Offsets in `data` of the current member's start and of the state's next_in (always data + at);
            // members done; whether a member is under way (from its first byte to its trailer checked).
            let (mut member_at, mut at, mut members, mut in_member) = (0usize, 0usize, 0u64, false);
            st.next_in = data.as_ptr().cast_mut();
            st.avail_in = 0;
            loop {
                if !in_member {
                    if at == data.len() {
                        return Ok(sink.finish());
                    }
                    (in_member, member_at) = (true, at);
                }
                if st.avail_in == 0 && at < data.len() {
                    // avail_in is 32 bits: the input in pieces of at most 4 GiB - 1.
                    st.avail_in = u32::try_from(data.len() - at).unwrap_or(u32::MAX);
                }
                st.next_out = buf.as_mut_ptr();
                st.avail_out = CHUNK as u32;
                let (state_before, tmp_in_before) = (st.block_state, st.tmp_in_size);
                // SAFETY: next_in/avail_in describe a part of `data` and next_out/avail_out all of `buf`, both
                // live and unaliased for the call (isal_inflate only reads the input: it takes `*mut u8` but
                // never writes through next_in); the state is ours, initialised.
                let ret = unsafe { sys::isal_inflate(st) };
                let produced = CHUNK - st.avail_out as usize;
                // SAFETY: both pointers are into `data` (or one past its end): isal_inflate only moves next_in
                // forward, within the avail_in bytes it was given.
                let new_at = usize::try_from(unsafe { st.next_in.offset_from(data.as_ptr()) })
                    .expect("next_in before the input");
                if ret < 0 {
                    return Err(format!(
                        "isa-l: isal_inflate error {ret} ({}) in member {} (starting at input offset {member_at}), \
                         near input offset {new_at}",
                        error_name(ret),
                        members + 1
                    ));
                }
                sink.add(&buf[..produced]);
                let moved = new_at != at;
                at = new_at;
                if st.block_state == sys::isal_block_state_ISAL_BLOCK_FINISH {
                    // Trailer checked; next_in is just past it (check_gzip_checksum reads the 8 trailer
                    // bytes from the bit buffer and then from next_in, never more). Next member, if any.
                    (members, in_member) = (members + 1, false);
                    // SAFETY: the state is ours; the reset keeps next_in/avail_in/crc_flag.
                    unsafe { sys::isal_inflate_reset(st) };
                    continue;
                }
                if produced == 0 && !moved && st.block_state == state_before && st.tmp_in_size == tmp_in_before {
                    return Err(if at == data.len() {
                        format!(
                            "isa-l: input ends inside member {} (starting at input offset {member_at})",
                            members + 1
                        )
                    } else {
                        format!("isa-l: no progress at input offset {at}, member {}", members + 1)
                    });
                }
            }
        }
    }

    fn error_name(ret: i32) -> &'static str {
        match ret {
            sys::ISAL_INVALID_BLOCK => "invalid block",
            sys::ISAL_INVALID_SYMBOL => "invalid symbol",
            sys::ISAL_INVALID_LOOKBACK => "invalid lookback distance",
            sys::ISAL_INVALID_WRAPPER => "invalid gzip header",
            sys::ISAL_UNSUPPORTED_METHOD => "unsupported compression method",
            sys::ISAL_INCORRECT_CHECKSUM => "CRC-32 or ISIZE mismatch",
            _ => "unknown",
        }
    }
}

#[cfg(feature = "strata")]
mod strata {
    use super::{CHUNK, Output, Res, Sink};
    use std::io::Cursor;
    use std::sync::Arc;
    use strata_layer::{LayerReader, LayerSpec, read_layer};
    use strata_oci::media::Compression;
    use strata_oci::Digest;
    use strata_source::{Blob, Error, ImageSource, RawManifest, Result};

    /// One blob served from memory; nothing else.
    pub struct MemorySource {
        pub data: Arc<Vec<u8>>,
    }

    impl MemorySource {
        fn none<T>(&self, what: &str) -> Result<T> {
            Err(Error::NotFound {
                what: what.into(),
                source_name: self.name().into(),
            })
        }
    }

    impl ImageSource for MemorySource {
        fn name(&self) -> &str {
            "memory:"
        }
        fn top_manifest(&self) -> Result<RawManifest> {
            self.none("a manifest")
        }
        fn manifest(&self, _: &Digest, _: Option<&str>) -> Result<RawManifest> {
            self.none("a manifest")
        }
        fn open_blob(&self, _: &Digest) -> Result<Blob> {
            self.none("a verified blob stream")
        }
        fn read_blob_at(&self, _: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.data.len());
            let n = buf.len().min(self.data.len() - start);
            buf[..n].copy_from_slice(&self.data[start..start + n]);
            Ok(n)
        }
    }

    /// The blob's sha256 digest.
    pub fn digest(data: &[u8]) -> Digest {
        Digest::sha256(data)
    }

    /// Reads the whole tar stream through `LayerReader::read_at`, with no checkpoints (from the start).
    pub fn inflate_reader(source: &MemorySource, digest: &Digest, buf: &mut [u8]) -> Res<Output> {
        let reader = LayerReader::new(
            source as &dyn ImageSource,
            digest.clone(),
            Compression::Gzip,
            Vec::new(),
        );
        let mut sink = Sink::default();
        let mut at = 0u64;
        loop {
            let n = reader.read_at(at, &mut buf[..CHUNK]).map_err(|e| e.to_string())?;
            sink.add(&buf[..n]);
            at += n as u64;
            // A short read is the end. (Asking again at the very end, with no tar size set, would make
            // LayerReader decode the whole stream a second time: it does not reuse an ended cursor there.)
            if n < CHUNK {
                return Ok(sink.finish());
            }
        }
    }

    /// `read_layer`: the index pass minus writing the index. The output figures are the tar's size and the
    /// number of entries (in place of a CRC).
    pub fn index_pass(data: Arc<Vec<u8>>, digest: &Digest) -> Res<Output> {
        let spec = LayerSpec {
            digest: digest.clone(),
            size: Some(data.len() as u64),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: None,
        };
        let blob = Box::new(Cursor::new(ArcBytes(data)));
        let summary = read_layer(blob, &spec, &mut |_, _| Ok(())).map_err(|e| e.to_string())?;
        Ok(Output {
            bytes: summary.tar_size,
            crc: summary.entries as u32,
        })
    }

    /// Shared bytes as `AsRef<[u8]>`, for a `Cursor` that does not copy the blob.
    struct ArcBytes(Arc<Vec<u8>>);

    impl AsRef<[u8]> for ArcBytes {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn usage() -> String {
    "usage: inflate-bench [--strata | --strata-index] [--log FILE] FILE.gz [REPEAT]".into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Default,
    Strata,
    StrataIndex,
}

fn run() -> Res<()> {
    let mut args = env::args().skip(1);
    let mut mode = Mode::Default;
    let mut log = None;
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--strata" => mode = Mode::Strata,
            "--strata-index" => mode = Mode::StrataIndex,
            "--log" => log = Some(args.next().ok_or_else(usage)?),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            _ if arg.starts_with("--") => return Err(usage()),
            _ => positional.push(arg),
        }
    }
    let (path, repeat) = match positional.as_slice() {
        [path] => (path.clone(), 1),
        [path, n] => (path.clone(), n.parse::<usize>().map_err(|_| usage())?.max(1)),
        _ => return Err(usage()),
    };

    let label = match mode {
        Mode::Strata if cfg!(feature = "strata") => "strata-LayerReader(isa-l)",
        Mode::StrataIndex if cfg!(feature = "strata") => "strata-read_layer(zlib-rs)",
        Mode::Strata | Mode::StrataIndex => {
            return Err("this build has no strata decoder: build with --features strata".into());
        }
        Mode::Default if cfg!(feature = "libdeflate") => "libdeflate",
        Mode::Default if cfg!(feature = "isal") => "isa-l(igzip)",
        Mode::Default => flate2_backend().ok_or("this build has no backend: see Cargo.toml")?,
    };

    // Shared, so that strata's in-memory source serves it without a copy.
    let data = std::sync::Arc::new(fs::read(&path).map_err(|e| format!("{path}: {e}"))?);
    let mut log = match log {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| format!("{p}: {e}"))?,
        ),
        None => None,
    };

    #[allow(unused_mut, unused_variables)]
    let mut buf = vec![0u8; CHUNK];
    #[cfg(feature = "libdeflate")]
    let (mut inflater, mut out) = (
        libdeflate::Inflater::new()?,
        vec![0u8; libdeflate::first_size(&data[..])],
    );
    #[cfg(feature = "isal")]
    let mut isal = isal::Inflater::new();
    // LayerReader never checks the digest (range reads cannot be hashed): any valid one will do. read_layer
    // verifies it, so --strata-index hashes the blob once here, before timing (in the wall time, not the rate).
    #[cfg(feature = "strata")]
    let (source, digest) = {
        let digest = strata::digest(if mode == Mode::StrataIndex { &data[..] } else { &[] });
        (strata::MemorySource { data: data.clone() }, digest)
    };

    let mut first: Option<Output> = None;
    let mut rates = Vec::with_capacity(repeat);
    for i in 1..=repeat {
        let start = Instant::now();
        let output: Output = match mode {
            #[cfg(feature = "strata")]
            Mode::Strata => strata::inflate_reader(&source, &digest, &mut buf)?,
            #[cfg(feature = "strata")]
            Mode::StrataIndex => strata::index_pass(source.data.clone(), &digest)?,
            #[cfg(feature = "libdeflate")]
            Mode::Default => inflater.inflate(&data[..], &mut out)?,
            #[cfg(feature = "isal")]
            Mode::Default => isal.inflate(&data[..], &mut buf)?,
            #[cfg(any(feature = "zlib-rs", feature = "zlib-ng", feature = "miniz"))]
            Mode::Default => inflate_flate2(&data[..], &mut buf)?,
            #[allow(unreachable_patterns)]
            _ => return Err("this mode is not in this build".into()),
        };
        let secs = start.elapsed().as_secs_f64();
        match first {
            None => first = Some(output),
            Some(f) if f != output => {
                return Err(format!("run {i} gave {output:?}, run 1 gave {f:?}"));
            }
            Some(_) => {}
        }
        let rate = output.bytes as f64 / 1e6 / secs;
        rates.push(rate);
        let what = if mode == Mode::StrataIndex { "entries" } else { "crc32" };
        println!(
            "{label} run {i}: {} bytes, {what} {:08x}, {:.4} s, {rate:.1} MB/s",
            output.bytes, output.crc, secs
        );
        if let Some(log) = log.as_mut() {
            writeln!(log, "{label}\t{}\t{:08x}\t{secs:.6}\t{i}", output.bytes, output.crc)
                .map_err(|e| format!("log: {e}"))?;
        }
    }
    println!(
        "{label}: {} bytes from {} compressed, median {:.1} MB/s of output over {repeat} runs",
        first.map_or(0, |f| f.bytes),
        data.len(),
        median(&mut rates)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inflate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
