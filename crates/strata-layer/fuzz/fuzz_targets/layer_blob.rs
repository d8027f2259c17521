//! Fuzzes the whole one-pass engine: arbitrary bytes as a gzip, zstd or plain layer blob (the first byte
//! picks the declared media type; the digest is the blob's own, so decompression and parsing are reached).
//! Errors are fine; panics are bugs.
//!
//! Run: `cargo +nightly fuzz run layer_blob` in `crates/strata-layer/fuzz`.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use strata_layer::{LayerSpec, read_layer};
use strata_oci::{Digest, media};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, blob)) = data.split_first() else {
        return;
    };
    let media_type = match pick % 3 {
        0 => media::OCI_LAYER,
        1 => media::OCI_LAYER_GZIP,
        _ => media::OCI_LAYER_ZSTD,
    };
    let spec = LayerSpec {
        digest: Digest::sha256(blob),
        size: Some(blob.len() as u64),
        media_type: media_type.to_owned(),
        diff_id: None,
    };
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(blob.to_vec()));
    let _ = read_layer(reader, &spec, &mut |_, content| {
        let _ = std::io::copy(&mut content.take(1 << 20), &mut std::io::sink());
        Ok(())
    });
});
