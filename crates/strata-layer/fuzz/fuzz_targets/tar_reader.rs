//! Fuzzes the tar reader: arbitrary bytes as an uncompressed layer tar, every entry's content read.
//! Errors are fine; panics are bugs.
//!
//! Run: `cargo +nightly fuzz run tar_reader` in `crates/strata-layer/fuzz`.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strata_layer::read_entries(data, "fuzz", &mut |entry, content| {
        let mut sink = Vec::new();
        content.take(1 << 20).read_to_end(&mut sink).map(drop).map_err(|source| {
            strata_layer::Error::Io {
                path: String::from_utf8_lossy(&entry.path).into_owned().into(),
                source,
            }
        })
    });
});
