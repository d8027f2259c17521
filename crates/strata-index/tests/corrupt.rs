//! Corrupt and hostile index files: always an error or a harmless answer, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Rng, random_entry};
use strata_index::format::{self, HEADER_SIZE_1_2, RECORD_SIZE};
use strata_index::{
    Checkpoint, Entry, EntryKind, Error, IndexWriter, LayerIndex, LayerInfo, MergedView, SpanDigest,
};

const ALPHABET: &[&[u8]] = &[b"a", b"b", b"c-d", b"\xfe"];

fn sample(rng: &mut Rng) -> Vec<u8> {
    let mut w = IndexWriter::new();
    w.push(Entry {
        xattrs: vec![(b"user.r".to_vec(), b"v".to_vec())],
        ..common::entry(b"", EntryKind::Dir)
    });
    for _ in 0..40 {
        w.push(random_entry(rng, 4, ALPHABET));
    }
    for i in 0..3 {
        w.add_checkpoint(Checkpoint {
            compressed_bit_offset: i * 1000,
            uncompressed_offset: i * 4096,
            window: vec![i as u8; 100],
        });
    }
    w.set_layer(LayerInfo {
        blob_digest: "sha256:00".into(),
        diff_id: "sha256:11".into(),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        blob_size: 3000,
        ..LayerInfo::default()
    });
    w.set_spans(
        [(0, 1000), (1000, 2000), (2000, 3000)]
            .map(|(start, end)| SpanDigest {
                start,
                end,
                sha256: [7; 32],
            })
            .to_vec(),
    );
    w.to_bytes()
}

/// Runs every read operation; only errors are allowed to come out.
fn exercise(idx: LayerIndex) {
    let mut dirs: Vec<Vec<u8>> = vec![Vec::new(), b"a".to_vec(), b"a/b".to_vec(), b"\xfe".to_vec()];
    for e in idx.iter().take(200) {
        let Ok(e) = e else { continue };
        let _ = e.to_entry();
        let _ = e.xattrs().count();
        let p = e.path();
        let _ = idx.lookup(&p);
        let _ = idx.marker(&p);
        dirs.push(p);
    }
    for d in &dirs {
        if let Ok(rd) = idx.readdir(d) {
            for e in rd.take(200) {
                let _ = e.map(|e| e.to_entry());
            }
        }
        let _ = idx.lookup(d);
    }
    let _ = idx.checkpoints().count();
    let _ = idx.checkpoint_for(5000);
    let _ = idx.spans().count();
    let _ = idx.get(usize::MAX);
    let _ = idx.layer();
    if let Ok(Some(root)) = idx.root() {
        let _ = root.to_entry();
        let _ = root.xattrs().count();
    }
    let view = MergedView::new(vec![idx]);
    let _ = view.root();
    for d in &dirs {
        let _ = view.readdir(d);
        let _ = view.lookup(d);
    }
    for r in view.walk().take(500) {
        let _ = r;
    }
}

#[test]
fn flipped_bytes_fail_the_checksum() {
    let mut rng = Rng::new(11);
    let good = sample(&mut rng);
    LayerIndex::from_bytes(good.clone()).unwrap();
    for _ in 0..2000 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bad.len() as u64) as usize;
            bad[i] ^= 1 + rng.below(255) as u8;
        }
        if bad == good {
            continue;
        }
        assert!(matches!(
            LayerIndex::from_bytes(bad),
            Err(Error::BadIndex { .. })
        ));
    }
}

#[test]
fn truncated_and_extended_files_fail() {
    let mut rng = Rng::new(12);
    let good = sample(&mut rng);
    for len in (0..good.len()).step_by(7) {
        assert!(
            LayerIndex::from_bytes(good[..len].to_vec()).is_err(),
            "len {len}"
        );
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(LayerIndex::from_bytes(longer).is_err());
    assert!(LayerIndex::from_bytes(Vec::new()).is_err());
}

#[test]
fn hostile_resealed_files_never_panic() {
    // A valid checksum over garbage: what a deliberate attacker (or the fuzzer) gives.
    let mut rng = Rng::new(13);
    for _ in 0..1500 {
        let mut bad = sample(&mut rng);
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(bad.len() as u64) as usize;
            bad[i] = rng.next_u64() as u8;
        }
        format::seal(&mut bad);
        if let Ok(idx) = LayerIndex::from_bytes(bad) {
            exercise(idx);
        }
    }
}

#[test]
fn hostile_record_fields_never_panic() {
    // Aim at the record fields the reader does not check at open.
    let mut rng = Rng::new(14);
    let good = sample(&mut rng);
    let entries_off = u64::from_le_bytes(good[64..72].try_into().unwrap()) as usize;
    let count = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
    let values = [
        0u64,
        1,
        0xff,
        0xffff_ffff,
        u64::MAX,
        u64::MAX - 3,
        1 << 40,
        0x7fff_ffff,
    ];
    for _ in 0..3000 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(3) {
            let rec = entries_off + RECORD_SIZE * rng.below(count as u64) as usize;
            let field = [0usize, 8, 16, 24, 28, 32, 36, 80, 88][rng.below(9) as usize];
            let width = if (24..40).contains(&field) || field == 88 {
                4
            } else {
                8
            };
            let v = *rng.pick(&values) ^ if rng.chance(1, 3) { rng.next_u64() } else { 0 };
            bad[rec + field..rec + field + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        format::seal(&mut bad);
        exercise(LayerIndex::from_bytes(bad).unwrap());
    }
}

#[test]
fn hostile_header_fields_fail_or_hold() {
    let mut rng = Rng::new(15);
    let good = sample(&mut rng);
    let values = [
        0u64,
        1,
        7,
        160,
        0xffff_ffff,
        u64::MAX,
        good.len() as u64,
        good.len() as u64 + 1,
    ];
    for _ in 0..3000 {
        let mut bad = good.clone();
        let at = 16 + 8 * rng.below(((HEADER_SIZE_1_2 - 16) / 8) as u64) as usize;
        if at == format::CHECKSUM_OFFSET {
            continue;
        }
        let v = *rng.pick(&values);
        bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
        format::seal(&mut bad);
        if let Ok(idx) = LayerIndex::from_bytes(bad) {
            exercise(idx);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(16);
    for _ in 0..2000 {
        let len = rng.below(600) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if len >= 8 && rng.chance(1, 2) {
            b[..8].copy_from_slice(&format::MAGIC);
        }
        format::seal(&mut b);
        if let Ok(idx) = LayerIndex::from_bytes(b) {
            exercise(idx);
        }
    }
}
