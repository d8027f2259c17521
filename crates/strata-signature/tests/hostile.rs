//! Hostile input: each a clear error, no panic, nothing read past the limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::SystemTime;

use strata_signature::{Error, Keyring, MAX_SIGNATURE_SIZE, Signature, verify_simple_signing};

#[test]
fn every_truncation_of_a_signature_is_an_error() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = Keyring::from_bytes(&support::read(&dir, "public-key.gpg")).unwrap();
    for name in [
        "image.signature",
        "subkey.signature-v3",
        "expired.signature",
    ] {
        let sig = support::read(&dir, name);
        for len in 0..sig.len() {
            let r = verify_simple_signing(&keys, sig.get(..len).unwrap(), SystemTime::now());
            assert!(r.is_err(), "{name} truncated to {len} bytes verified");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_refused_or_harmless() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = Keyring::from_bytes(&support::read(&dir, "public-key.gpg")).unwrap();
    let sig = support::read(&dir, "image.signature");
    let good = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap();
    for i in 0..sig.len() {
        let mut bad = sig.clone();
        if let Some(b) = bad.get_mut(i) {
            *b ^= 0x55;
        }
        // Some bytes (e.g. the literal packet's file name or date, unhashed subpackets) are not covered by
        // the signature; whatever verifies must carry the same payload.
        if let Ok(v) = verify_simple_signing(&keys, &bad, SystemTime::now()) {
            assert_eq!(v, good, "byte {i}");
        }
    }
}

#[test]
fn truncated_keyrings_are_errors() {
    let Some(dir) = support::vectors() else {
        return;
    };
    for name in [
        "pubring.gpg",
        "public-key-with-subkey.gpg",
        "public-key.gpg",
    ] {
        let bytes = support::read(&dir, name);
        for len in (1..bytes.len()).step_by(7) {
            // A prefix may still hold whole keys; it must never panic, and never invent a key.
            if let Ok(k) = Keyring::from_bytes(bytes.get(..len).unwrap()) {
                assert!(k.len() <= Keyring::from_bytes(&bytes).unwrap().len());
            }
        }
    }
}

#[test]
fn a_100_mb_blob_is_refused_by_size() {
    let blob = vec![0xA3u8; 100 * 1024 * 1024];
    let err = Signature::from_blob(&blob).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == MAX_SIGNATURE_SIZE as u64),
        "{err}"
    );
    assert!(err.to_string().contains("more than"), "{err}");
    let err = Keyring::new().verify(&blob, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn a_compression_bomb_stops_at_the_limit() {
    if !support::have("gpg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("zeros");
    std::fs::write(&big, vec![0u8; 64 * 1024 * 1024]).unwrap();
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(tmp.path())
        .args(["--batch", "--no-tty", "--store", "-z", "9", "--output", "-"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.len() < 1024 * 1024, "{} bytes", out.stdout.len());
    let err = Keyring::new()
        .verify(&out.stdout, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "decompressed OpenPGP message",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn packet_floods_and_odd_messages_are_errors() {
    // 1000 marker packets (new format, tag 10, "PGP").
    let flood: Vec<u8> = std::iter::repeat_n([0xCAu8, 3, b'P', b'G', b'P'], 1000)
        .flatten()
        .collect();
    let err = Keyring::new()
        .verify(&flood, SystemTime::now())
        .unwrap_err();
    assert!(err.to_string().contains("packets"), "{err}");
    // A packet claiming 4 GiB of body in a few bytes.
    let liar = [0xCBu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, b'b', 0, 0, 0, 0, 0];
    assert!(Keyring::new().verify(&liar, SystemTime::now()).is_err());
    for junk in [
        &b"\x00"[..],
        b"\xff\xff\xff",
        b"-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n",
    ] {
        assert!(
            Keyring::new().verify(junk, SystemTime::now()).is_err(),
            "{junk:?}"
        );
    }
}

#[test]
fn malformed_blobs_are_clear_errors() {
    let cases: [(&[u8], &str); 6] = [
        (b"", "empty"),
        (b"\x00sigstore-json", "missing newline"),
        (b"\x00sigst\x01re\n{}", "non-ASCII"),
        (
            b"\x00unknown-format\ndata",
            "unrecognized signature format \"unknown-format\"",
        ),
        (b"{\"not\":\"a signature\"}", "starting with binary 0x7b"),
        (
            b"\x00sigstore-json\n{\"payload\":\"not base64!\"}",
            "base64",
        ),
    ];
    for (blob, what) in cases {
        let err = Signature::from_blob(blob).unwrap_err();
        assert!(err.to_string().contains(what), "{blob:?}: {err}");
    }
    // The zero-byte form of simple signing is read too.
    let sig = Signature::from_blob(b"\x00simple-signing\n\xa3\x01").unwrap();
    assert_eq!(sig, Signature::SimpleSigning(vec![0xa3, 0x01]));
}
