//! Hostile layer blobs through the one-pass engine: each is refused with an error naming what is wrong.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read};

use strata_fixtures::{Compression, LayerBuilder, LongName, compress};
use strata_layer::{Error, LayerSpec, read_layer};
use strata_oci::Digest;
use strata_oci::media;

fn spec(blob: &[u8], media_type: &str, diff_id: Option<Digest>) -> LayerSpec {
    LayerSpec {
        digest: Digest::sha256(blob),
        size: Some(blob.len() as u64),
        media_type: media_type.to_owned(),
        diff_id,
    }
}

fn run(blob: Vec<u8>, spec: &LayerSpec) -> Result<u64, Error> {
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(blob));
    let mut n = 0;
    read_layer(reader, spec, &mut |_, data| {
        std::io::copy(data, &mut std::io::sink()).unwrap();
        n += 1;
        Ok(())
    })
    .map(|_| n)
}

fn err(blob: Vec<u8>, spec: &LayerSpec) -> String {
    match run(blob, spec) {
        Ok(n) => panic!("accepted ({n} entries)"),
        Err(e) => e.to_string(),
    }
}

/// A layer of a few files, one of them 200 KiB so truncation falls inside file data.
fn layer() -> LayerBuilder {
    let mut l = LayerBuilder::new();
    l.dir("etc/");
    l.file("etc/hosts", b"127.0.0.1 localhost\n");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    l.file("usr/lib/big.bin", big);
    l.file("usr/lib/after", b"after the big one\n");
    l
}

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => media::OCI_LAYER,
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    }
}

#[test]
fn a_good_layer_passes_in_every_compression() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let built = layer().build(c).unwrap();
        let diff_id = Digest::parse(&built.diff_id).unwrap();
        let s = spec(&built.blob, media_type(c), Some(diff_id));
        assert_eq!(run(built.blob, &s).unwrap(), 4, "{c:?}");
    }
}

#[test]
fn truncated_gzip_and_zstd() {
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut blob = layer().build(c).unwrap().blob;
        blob.truncate(blob.len() / 2);
        // The digest is the truncated blob's own, so only decompression can notice.
        let s = spec(&blob, media_type(c), None);
        let e = err(blob, &s);
        assert!(e.contains("decompress") || e.contains("tar"), "{c:?}: {e}");
    }
}

#[test]
fn garbage_with_a_valid_digest() {
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = err(
        garbage.clone(),
        &spec(&garbage, media::OCI_LAYER_GZIP, None),
    );
    assert!(e.contains("declares Gzip"), "{e}");
    let e = err(garbage.clone(), &spec(&garbage, media::OCI_LAYER, None));
    assert!(e.contains("bad tar stream"), "{e}");
    // gzip magic followed by garbage.
    let mut fake = vec![0x1f, 0x8b, 8, 0];
    fake.extend_from_slice(&garbage);
    let e = err(fake.clone(), &spec(&fake, media::OCI_LAYER_GZIP, None));
    assert!(e.contains("decompress"), "{e}");
}

#[test]
fn wrong_digest_size_and_diff_id() {
    let built = layer().build(Compression::Gzip).unwrap();
    let mut s = spec(&built.blob, media::OCI_LAYER_GZIP, None);
    s.digest = Digest::sha256(b"something else");
    let e = err(built.blob.clone(), &s);
    assert!(e.contains("digest mismatch"), "{e}");

    for size in [built.blob.len() as u64 + 1, built.blob.len() as u64 - 1] {
        let mut s = spec(&built.blob, media::OCI_LAYER_GZIP, None);
        s.size = Some(size);
        let e = err(built.blob.clone(), &s);
        assert!(e.contains("size mismatch"), "{e}");
    }

    let s = spec(
        &built.blob,
        media::OCI_LAYER_GZIP,
        Some(Digest::sha256(b"not the tar")),
    );
    let e = err(built.blob, &s);
    assert!(e.contains("diff ID"), "{e}");
}

#[test]
fn media_type_and_content_disagree() {
    let built = layer().build(Compression::Gzip).unwrap();
    let e = err(
        built.blob.clone(),
        &spec(&built.blob, media::OCI_LAYER_ZSTD, None),
    );
    assert!(e.contains("declares Zstd but the blob is Gzip"), "{e}");
    let e = err(
        built.blob.clone(),
        &spec(&built.blob, "application/octet-stream", None),
    );
    assert!(e.contains("not a layer media type"), "{e}");
}

#[test]
fn member_running_past_the_end() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut l = layer();
        l.truncate_at(512 * 4 + 100_000);
        let blob = compress(&l.tar_bytes().unwrap(), c).unwrap();
        let e = err(blob.clone(), &spec(&blob, media_type(c), None));
        assert!(
            e.contains("runs past the end") || e.contains("bad tar stream"),
            "{c:?}: {e}"
        );
    }
}

#[test]
fn escaping_names_in_every_header_form() {
    let long = format!("{}/../../../../etc/passwd", "d".repeat(120));
    for style in [LongName::Pax, LongName::Gnu] {
        let mut l = LayerBuilder::new();
        l.file(long.as_str(), b"x").long_name(style);
        let built = l.build(Compression::Gzip).unwrap();
        let e = err(
            built.blob.clone(),
            &spec(&built.blob, media::OCI_LAYER_GZIP, None),
        );
        assert!(e.contains("'..'"), "{style:?}: {e}");
    }
    let mut l = LayerBuilder::new();
    l.raw_header_bytes("../outside", b'0', b"x");
    let built = l.build(Compression::None).unwrap();
    let e = err(
        built.blob.clone(),
        &spec(&built.blob, media::OCI_LAYER, None),
    );
    assert!(e.contains("'..'"), "{e}");
    // A hardlink whose target climbs out, via PAX linkpath.
    let mut l = LayerBuilder::new();
    l.hardlink("h", format!("{}/../../x", "e".repeat(110)).as_str())
        .long_name(LongName::Pax);
    let built = l.build(Compression::None).unwrap();
    let e = err(
        built.blob.clone(),
        &spec(&built.blob, media::OCI_LAYER, None),
    );
    assert!(e.contains("'..'"), "{e}");
}
