//! Write → read round trips, against a model of last-wins semantics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Rng, dir, entry, file, index, kind_class, random_entry};
use strata_index::{
    Checkpoint, Entry, EntryKind, Error, IndexWriter, LayerIndex, LayerInfo, SpanDigest, format,
    split_parent,
};

const ALPHABET: &[&[u8]] = &[
    b"a",
    b"b",
    b"a-b",
    b"a.b",
    b"\xff",
    b"\x80\x81",
    b"z",
    b"bb",
    b"a b",
    b"\xc3\xa9",
];

/// What the index must hold: the last entry per (path, class).
fn model(entries: &[Entry]) -> BTreeMap<(Vec<u8>, u8), Entry> {
    let mut m = BTreeMap::new();
    for e in entries {
        m.insert((e.path.clone(), kind_class(e.kind)), e.clone());
    }
    m
}

fn sort_key(e: &Entry) -> (Vec<u8>, Vec<u8>, u8) {
    let (p, n) = split_parent(&e.path);
    (p.to_vec(), n.to_vec(), kind_class(e.kind))
}

fn check_against_model(idx: &LayerIndex, m: &BTreeMap<(Vec<u8>, u8), Entry>) {
    // iter: everything, in (parent, name, class) order.
    let got: Vec<Entry> = idx.iter().map(|e| e.unwrap().to_entry()).collect();
    let mut want: Vec<Entry> = m.values().cloned().collect();
    want.sort_by_key(sort_key);
    assert_eq!(got, want);
    assert_eq!(idx.len(), want.len());

    // lookup and marker at every path of the model, and at absent ones.
    let paths: BTreeSet<&Vec<u8>> = m.keys().map(|(p, _)| p).collect();
    for p in &paths {
        let real = idx.lookup(p).unwrap().map(|e| e.to_entry());
        assert_eq!(real.as_ref(), m.get(&((*p).clone(), 0)), "lookup {p:?}");
        let marker = idx.marker(p).unwrap();
        assert_eq!(
            marker,
            m.get(&((*p).clone(), 1)).map(|e| e.kind),
            "marker {p:?}"
        );
        let mut absent = (*p).clone();
        absent.push(b'!');
        assert!(idx.lookup(&absent).unwrap().is_none());
    }
    assert!(idx.lookup(b"").unwrap().is_none());
    assert!(idx.lookup(b"never/there").unwrap().is_none());

    // readdir of every parent (and of the root, and of absent dirs).
    let mut dirs: BTreeSet<Vec<u8>> = m
        .values()
        .map(|e| split_parent(&e.path).0.to_vec())
        .collect();
    dirs.insert(Vec::new());
    dirs.insert(b"nope".to_vec());
    for d in &dirs {
        let got: Vec<Entry> = idx
            .readdir(d)
            .unwrap()
            .map(|e| e.unwrap().to_entry())
            .collect();
        let want: Vec<Entry> = want
            .iter()
            .filter(|e| split_parent(&e.path).0 == &d[..])
            .cloned()
            .collect();
        assert_eq!(got, want, "readdir {d:?}");
    }
}

#[test]
fn random_round_trips() {
    let mut rng = Rng::new(1);
    for case in 0..300 {
        let n = rng.below(60) as usize;
        let entries: Vec<Entry> = (0..n)
            .map(|_| random_entry(&mut rng, 4, ALPHABET))
            .collect();
        let mut w = IndexWriter::new();
        for e in &entries {
            w.try_push(e.clone()).unwrap();
        }
        let mut checkpoints = Vec::new();
        for _ in 0..rng.below(5) {
            let c = Checkpoint {
                compressed_bit_offset: rng.next_u64(),
                uncompressed_offset: rng.below(1 << 40),
                window: (0..rng.below(100)).map(|_| rng.next_u64() as u8).collect(),
            };
            w.add_checkpoint(c.clone());
            checkpoints.push(c);
        }
        let info = LayerInfo {
            blob_digest: format!("sha256:{case:064x}"),
            diff_id: format!("sha256:{:064x}", case + 1),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compression: LayerInfo::COMPRESSION_GZIP,
            blob_size: rng.next_u64(),
            tar_size: rng.next_u64(),
        };
        w.set_layer(info.clone());
        let bytes = w.to_bytes();
        let idx = LayerIndex::from_bytes(bytes.clone()).unwrap();
        check_against_model(&idx, &model(&entries));
        assert_eq!(idx.layer(), &info);

        checkpoints.sort_by_key(|c| c.uncompressed_offset);
        let got: Vec<Checkpoint> = idx.checkpoints().map(|c| c.to_checkpoint()).collect();
        assert_eq!(got, checkpoints);
        for _ in 0..10 {
            let off = rng.below(1 << 41);
            let want = checkpoints
                .iter()
                .rev()
                .find(|c| c.uncompressed_offset <= off);
            let got = idx.checkpoint_for(off).map(|c| c.to_checkpoint());
            assert_eq!(
                got.as_ref().map(|c| c.uncompressed_offset),
                want.map(|c| c.uncompressed_offset)
            );
        }

        // Deterministic: the same entries give the same bytes.
        let mut w2 = IndexWriter::new();
        for e in &entries {
            w2.push(e.clone());
        }
        for c in &checkpoints {
            w2.add_checkpoint(c.clone());
        }
        w2.set_layer(info);
        assert_eq!(w2.to_bytes(), bytes);
    }
}

#[test]
fn last_wins_per_class() {
    let mut a = file("etc/passwd");
    a.size = 1;
    let mut b = file("etc/passwd");
    b.size = 2;
    let idx = index([
        dir("a"),
        entry(b"a", EntryKind::Opaque),
        a,
        entry(b"etc/passwd", EntryKind::Whiteout),
        b,
        entry(b"a", EntryKind::Whiteout),
    ]);
    assert_eq!(idx.len(), 4);
    assert_eq!(idx.lookup(b"etc/passwd").unwrap().unwrap().size(), 2);
    assert_eq!(
        idx.marker(b"etc/passwd").unwrap(),
        Some(EntryKind::Whiteout)
    );
    assert_eq!(idx.lookup(b"a").unwrap().unwrap().kind(), EntryKind::Dir);
    assert_eq!(idx.marker(b"a").unwrap(), Some(EntryKind::Whiteout));
    let root: Vec<(Vec<u8>, EntryKind)> = idx
        .readdir(b"")
        .unwrap()
        .map(|e| e.map(|e| (e.name().to_vec(), e.kind())).unwrap())
        .collect();
    assert_eq!(
        root,
        vec![
            (b"a".to_vec(), EntryKind::Dir),
            (b"a".to_vec(), EntryKind::Whiteout)
        ]
    );
}

#[test]
fn fields_round_trip() {
    let mut e = entry(b"dev/\xffnull", EntryKind::CharDevice);
    e.dev_major = 1;
    e.dev_minor = 3;
    e.mode = 0o7666;
    e.uid = u32::MAX;
    e.gid = 7;
    e.mtime = -5;
    e.mtime_nsec = 999_999_999;
    e.offset = u64::MAX;
    e.xattrs = vec![
        (b"security.capability".to_vec(), vec![0, 1, 2]),
        (b"user.empty".to_vec(), vec![]),
        (b"user.a".to_vec(), b"x".to_vec()),
    ];
    let mut l = entry(b"lnk", EntryKind::Symlink);
    l.link = b"../../\xfe/target".to_vec();
    let idx = index([e.clone(), l.clone()]);
    let r = idx.lookup(b"dev/\xffnull").unwrap().unwrap();
    assert_eq!(r.to_entry(), e);
    assert_eq!(r.name(), b"\xffnull");
    assert_eq!(r.parent(), b"dev");
    assert_eq!(r.xattr_count(), 3);
    assert_eq!(r.xattr(b"user.a"), Some(&b"x"[..]));
    assert_eq!(r.xattr(b"user.none"), None);
    assert!(!r.is_implicit() && !r.is_marker());
    assert_eq!(idx.lookup(b"lnk").unwrap().unwrap().to_entry(), l);
}

#[test]
fn rejects_unnormalised_paths() {
    for bad in [
        &b"/abs"[..],
        b"a//b",
        b"a/",
        b"./a",
        b"a/../b",
        b"",
        b"a\0b",
        b"a/./b",
    ] {
        let mut w = IndexWriter::new();
        assert!(
            matches!(
                w.try_push(entry(bad, EntryKind::File)),
                Err(Error::UnsafePath { .. })
            ),
            "{bad:?}"
        );
        w.push(entry(bad, EntryKind::File));
        assert!(w.try_to_bytes().is_err());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.idx");
        assert!(w.write(&target).is_err());
        assert!(!target.exists());
    }
}

#[test]
fn long_windows_keep_their_tail() {
    let mut w = IndexWriter::new();
    let window: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    w.add_checkpoint(Checkpoint {
        compressed_bit_offset: 3,
        uncompressed_offset: 10,
        window: window.clone(),
    });
    let idx = LayerIndex::from_bytes(w.to_bytes()).unwrap();
    let c = idx.checkpoint_for(10).unwrap();
    assert_eq!(c.window, &window[window.len() - 32 * 1024..]);
    assert!(idx.checkpoint_for(9).is_none());
    assert_eq!(
        idx.checkpoint_for(u64::MAX).unwrap().compressed_bit_offset,
        3
    );
}

#[test]
fn empty_index() {
    let idx = LayerIndex::from_bytes(IndexWriter::new().to_bytes()).unwrap();
    assert!(idx.is_empty());
    assert_eq!(idx.iter().count(), 0);
    assert_eq!(idx.readdir(b"").unwrap().count(), 0);
    assert!(idx.lookup(b"a").unwrap().is_none());
    assert!(idx.checkpoint_for(0).is_none());
    assert_eq!(idx.layer(), &LayerInfo::default());
}

#[test]
fn write_and_open_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.idx");
    let mut w = IndexWriter::new();
    w.push(dir_entry());
    w.push(file("usr/bin/sh"));
    w.write(&path).unwrap();
    // Overwrite atomically.
    w.push(file("usr/bin/bash"));
    w.write(&path).unwrap();
    let idx = LayerIndex::open(&path).unwrap();
    assert_eq!(idx.path(), path);
    assert_eq!(idx.len(), 3);
    assert!(idx.lookup(b"usr/bin/bash").unwrap().is_some());
    // No temporary left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(matches!(
        LayerIndex::open(dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
    std::fs::write(dir.path().join("short"), b"STRATAIX").unwrap();
    assert!(matches!(
        LayerIndex::open(dir.path().join("short")),
        Err(Error::BadIndex { .. })
    ));
}

fn dir_entry() -> Entry {
    dir("usr")
}

#[test]
fn rejects_other_versions_and_flags() {
    let good = index([file("a")]);
    drop(good);
    let bytes = IndexWriter::new().to_bytes();
    let mut v2 = bytes.clone();
    v2[8] = 2;
    strata_index::format::seal(&mut v2);
    let err = LayerIndex::from_bytes(v2).unwrap_err().to_string();
    assert!(err.contains("version 2.2"), "{err}");
    let mut minor = bytes.clone();
    minor[10] = 7;
    strata_index::format::seal(&mut minor);
    assert!(
        LayerIndex::from_bytes(minor).is_ok(),
        "a newer minor version is read"
    );
    let mut flags = bytes.clone();
    flags[12] = 1;
    strata_index::format::seal(&mut flags);
    assert!(LayerIndex::from_bytes(flags).is_err());
    let mut magic = bytes;
    magic[0] = b'X';
    strata_index::format::seal(&mut magic);
    assert!(LayerIndex::from_bytes(magic).is_err());
}

fn root(mode: u32, uid: u32, mtime: i64) -> Entry {
    Entry {
        mode,
        uid,
        gid: uid + 1,
        mtime,
        mtime_nsec: 5,
        xattrs: vec![(b"user.root".to_vec(), b"yes".to_vec())],
        ..entry(b"", EntryKind::Dir)
    }
}

#[test]
fn the_root_record_round_trips_and_is_not_a_child() {
    let mut w = IndexWriter::new();
    w.push(root(0o700, 7, 1));
    w.push(file("a"));
    // The last root entry wins, as for any path.
    w.push(root(0o750, 1234, 1_000_000_000));
    let idx = LayerIndex::from_bytes(w.try_to_bytes().unwrap()).unwrap();
    let r = idx.root().unwrap().expect("a root record");
    assert_eq!(r.to_entry(), root(0o750, 1234, 1_000_000_000));
    assert!(r.parent().is_empty() && r.name().is_empty());
    // Not among the records: iter, readdir and lookup see the layer's paths only.
    assert_eq!(idx.len(), 1);
    let names: Vec<Vec<u8>> = idx
        .readdir(b"")
        .unwrap()
        .map(|e| e.unwrap().name().to_vec())
        .collect();
    assert_eq!(names, [b"a".to_vec()]);
    assert!(idx.lookup(b"").unwrap().is_none());
    // A layer without one has none.
    assert!(index([file("a")]).root().unwrap().is_none());
    // Only a directory can be the root.
    let mut w = IndexWriter::new();
    assert!(w.try_push(entry(b"", EntryKind::File)).is_err());
}

#[test]
fn a_version_1_0_index_reads_without_a_root() {
    // A 1.0 writer's file: a 160-byte header, no root record; what lies between the header and the first
    // section is not the reader's business.
    let mut w = IndexWriter::new();
    w.push(root(0o700, 7, 1));
    w.push(file("a"));
    let mut old = w.to_bytes();
    old[10] = 0;
    old[16..20].copy_from_slice(&160u32.to_le_bytes());
    strata_index::format::seal(&mut old);
    let idx = LayerIndex::from_bytes(old).unwrap();
    assert!(idx.root().unwrap().is_none());
    assert!(idx.lookup(b"a").unwrap().is_some());
    // And a 1.1 file's root record must be one record inside the file.
    let mut bad = w.to_bytes();
    bad[168..176].copy_from_slice(&50u64.to_le_bytes());
    strata_index::format::seal(&mut bad);
    assert!(matches!(
        LayerIndex::from_bytes(bad),
        Err(Error::BadIndex { .. })
    ));
}

/// A writer for a 100-byte blob with `spans`.
fn with_spans(spans: &[(u64, u64)]) -> IndexWriter {
    let mut w = IndexWriter::new();
    w.push(file("a"));
    w.set_layer(LayerInfo {
        blob_digest: "sha256:00".into(),
        blob_size: 100,
        ..LayerInfo::default()
    });
    w.set_spans(
        spans
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| SpanDigest {
                start,
                end,
                sha256: [i as u8; 32],
            })
            .collect(),
    );
    w
}

#[test]
fn span_digests_round_trip() {
    // Cut at a byte boundary (40) and inside byte 69 (shared by both spans).
    let w = with_spans(&[(0, 40), (40, 70), (69, 100)]);
    let idx = LayerIndex::from_bytes(w.try_to_bytes().unwrap()).unwrap();
    assert!(idx.has_span_digests());
    assert_eq!(idx.span_count(), 3);
    let spans: Vec<SpanDigest> = idx.spans().collect();
    assert_eq!(
        spans.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(),
        [(0, 40), (40, 70), (69, 100)]
    );
    assert_eq!(spans[2].sha256, [2; 32]);
    assert_eq!(idx.layer().blob_size, 100);
    // The header says 1.2 and 192 bytes.
    let bytes = w.to_bytes();
    assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), 2);
    assert_eq!(
        u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
        format::HEADER_SIZE_1_2 as u32
    );
    // Without span digests: none, and the section is empty.
    let idx = index([file("a")]);
    assert!(!idx.has_span_digests());
    assert_eq!(idx.spans().count(), 0);
}

#[test]
fn span_tables_that_do_not_cover_the_blob_are_refused() {
    let long = format::MAX_SPAN_BYTES + 2;
    for bad in [
        &[(1, 100)][..],                 // does not start at 0
        &[(0, 50), (51, 100)],           // a gap
        &[(0, 50), (48, 100)],           // overlaps by two bytes
        &[(0, 50), (50, 99)],            // ends before the blob does
        &[(0, 50), (50, 101)],           // runs past it
        &[(0, 50), (50, 50), (50, 100)], // an empty span
        &[(0, 1), (0, 100)],             // does not move on
    ] {
        let w = with_spans(bad);
        assert!(w.try_to_bytes().is_err(), "{bad:?} written");
        // A file holding them (as a hostile one would) does not open.
        let err = LayerIndex::from_bytes(w.to_bytes()).unwrap_err();
        assert!(matches!(err, Error::BadIndex { .. }), "{bad:?}: {err}");
    }
    // A span longer than MAX_SPAN_BYTES + 1.
    let mut w = with_spans(&[(0, long)]);
    w.set_layer(LayerInfo {
        blob_size: long,
        ..LayerInfo::default()
    });
    assert!(LayerIndex::from_bytes(w.to_bytes()).is_err());
    // A span table that is not whole records, or lies outside the file.
    let good = with_spans(&[(0, 100)]).to_bytes();
    for (at, value) in [(184, 47u64), (176, 1 << 40)] {
        let mut bad = good.clone();
        bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
        format::seal(&mut bad);
        assert!(matches!(
            LayerIndex::from_bytes(bad),
            Err(Error::BadIndex { .. })
        ));
    }
}

#[test]
fn a_version_1_1_index_reads_without_span_digests() {
    // A 1.1 writer's file: a 176-byte header; the span table's header field lies beyond it, unread.
    let mut old = with_spans(&[(0, 100)]).to_bytes();
    old[10] = 1;
    old[16..20].copy_from_slice(&176u32.to_le_bytes());
    format::seal(&mut old);
    let idx = LayerIndex::from_bytes(old).unwrap();
    assert!(!idx.has_span_digests());
    assert!(idx.lookup(b"a").unwrap().is_some());
}
