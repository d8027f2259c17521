//! A 2 GiB layer of zeros goes through the engine in bounded memory. Its own test binary, so the peak
//! resident size measured is this test's alone.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read, Write};

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use strata_layer::{LayerSpec, read_layer};
use strata_oci::{Algorithm, Digest, DigestWriter, media};

const SIZE: u64 = 2 << 30;

/// Peak resident set of this process, from /proc/self/status.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn two_gib_of_zeros_in_bounded_memory() {
    // Stream the tar (one 2 GiB file of zeros) through a hasher and a gzip encoder, never holding it.
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(SIZE);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut diff_id = DigestWriter::new(Algorithm::Sha256);
    let mut gz = GzEncoder::new(Vec::new(), Level::fast());
    let mut feed = |bytes: &[u8]| {
        diff_id.update(bytes);
        gz.write_all(bytes).unwrap();
    };
    feed(header.as_bytes());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        feed(&zeros);
    }
    feed(&[0u8; 1024]);
    let blob = gz.finish().unwrap();
    let diff_id = diff_id.finish();
    let before = peak_rss_kib();

    let spec = LayerSpec {
        digest: Digest::sha256(&blob),
        size: Some(blob.len() as u64),
        media_type: media::OCI_LAYER_GZIP.to_owned(),
        diff_id: Some(diff_id),
    };
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(blob));
    let mut seen = 0u64;
    let summary = read_layer(reader, &spec, &mut |entry, data| {
        seen += std::io::copy(data, &mut std::io::sink()).unwrap();
        assert_eq!(entry.size, SIZE);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, SIZE);
    assert_eq!(summary.tar_size, SIZE + 512 + 1024);
    let after = peak_rss_kib();
    // The blob itself (~2 MiB) is in memory; the 2 GiB it inflates to must never be.
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB reading a 2 GiB layer"
    );
}
