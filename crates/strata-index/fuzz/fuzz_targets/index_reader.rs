//! Fuzzes the index reader: `LayerIndex::from_bytes`, then every read (lookup, marker, readdir, iter,
//! checkpoints, and a merged view's lookup/readdir/walk). Errors are fine; panics are bugs.
//!
//! The input is used two ways, so the fuzzer gets past the checksum without a corpus:
//! * first byte even: the bytes are an index file, read as they are and again with a valid checksum;
//! * first byte odd: the rest is a list of `(u32 offset, u8 value)` patches applied to a valid index
//!   built here, which is then resealed (a hostile index with a good checksum).
//!
//! Run: `cargo +nightly fuzz run index_reader` in `crates/strata-index/fuzz`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata_index::{
    Checkpoint, Entry, EntryKind, IndexWriter, LayerIndex, LayerInfo, MergedView, SpanDigest,
    format,
};

fn entry(path: &[u8], kind: EntryKind) -> Entry {
    Entry {
        path: path.to_vec(),
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 3,
        mtime: 0,
        mtime_nsec: 0,
        link: if kind == EntryKind::Symlink {
            b"../x".to_vec()
        } else {
            Vec::new()
        },
        dev_major: 0,
        dev_minor: 0,
        xattrs: if kind == EntryKind::File {
            vec![(b"user.k".to_vec(), b"v".to_vec())]
        } else {
            Vec::new()
        },
        offset: 512,
    }
}

/// A small valid index with every kind of record.
fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut w = IndexWriter::new();
        for (p, k) in [
            (&b"a"[..], EntryKind::Dir),
            (b"a", EntryKind::Opaque),
            (b"a/b", EntryKind::File),
            (b"a/c/d", EntryKind::Symlink),
            (b"a-b", EntryKind::Whiteout),
            (b"e/\xff/f", EntryKind::Hardlink),
            (b"g", EntryKind::Fifo),
        ] {
            w.push(entry(p, k));
        }
        w.add_checkpoint(Checkpoint {
            compressed_bit_offset: 80,
            uncompressed_offset: 0,
            window: vec![1; 16],
        });
        w.set_layer(LayerInfo {
            blob_digest: "sha256:00".into(),
            blob_size: 20,
            ..LayerInfo::default()
        });
        w.set_spans(vec![
            SpanDigest {
                start: 0,
                end: 11,
                sha256: [1; 32],
            },
            SpanDigest {
                start: 10,
                end: 20,
                sha256: [2; 32],
            },
        ]);
        w.to_bytes()
    })
}

fn exercise(bytes: Vec<u8>) {
    let Ok(idx) = LayerIndex::from_bytes(bytes) else {
        return;
    };
    let mut paths: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"a/c".to_vec(),
        b"e/\xff".to_vec(),
    ];
    for e in idx.iter().take(1000) {
        if let Ok(e) = e {
            let _ = e.to_entry();
            paths.push(e.path());
        }
    }
    for p in &paths {
        let _ = idx.lookup(p);
        let _ = idx.marker(p);
        if let Ok(rd) = idx.readdir(p) {
            for e in rd.take(1000) {
                let _ = e.map(|e| e.to_entry());
            }
        }
    }
    let _ = idx.checkpoints().count();
    let _ = idx.checkpoint_for(100);
    let _ = idx.spans().count();
    let view = MergedView::new(vec![idx]);
    for p in &paths {
        let _ = view.lookup(p);
        let _ = view.lookup_below(p, 0);
        let _ = view.readdir(p);
    }
    for r in view.walk().take(2000) {
        let _ = r;
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => {
            let mut bytes = base().to_vec();
            for patch in rest.chunks_exact(5) {
                let at = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]) as usize;
                if let Some(len) = bytes.len().checked_sub(1) {
                    bytes[at % (len + 1)] = patch[4];
                }
            }
            format::seal(&mut bytes);
            exercise(bytes);
        }
        _ => {
            exercise(data.to_vec());
            let mut sealed = data.to_vec();
            format::seal(&mut sealed);
            exercise(sealed);
        }
    }
});
