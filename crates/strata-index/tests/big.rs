//! 100k entries: lookups and readdirs stay correct and fast (timings printed with `--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::time::Instant;

use common::{dir, file, whiteout};
use strata_index::{Entry, IndexWriter, LayerIndex, MergedView};

/// 100 top dirs × 10 subdirs × 99 files + the 1,100 dirs = 100,100 entries, pushed in a scrambled order.
fn big_layer() -> Vec<Entry> {
    let mut v = Vec::with_capacity(100_100);
    for t in 0..100 {
        v.push(dir(&format!("d{t:03}")));
        for s in 0..10 {
            v.push(dir(&format!("d{t:03}/s{s}")));
            for f in 0..99 {
                let mut e = file(&format!("d{t:03}/s{s}/file-{f:02}.txt"));
                e.size = f;
                v.push(e);
            }
        }
    }
    v.reverse();
    v
}

fn per_op(start: Instant, n: usize) -> String {
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    format!("{ns:.0} ns/op")
}

#[test]
fn hundred_thousand_entries() {
    let entries = big_layer();
    let n = entries.len();

    let t = Instant::now();
    let mut w = IndexWriter::new();
    for e in &entries {
        w.push(e.clone());
    }
    let bytes = w.to_bytes();
    println!(
        "write {n} entries: {:?}, {} bytes",
        t.elapsed(),
        bytes.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.idx");
    w.write(&path).unwrap();
    let t = Instant::now();
    let idx = LayerIndex::open(&path).unwrap();
    println!("open (mmap + checksum): {:?}", t.elapsed());
    assert_eq!(idx.len(), n);

    let t = Instant::now();
    for e in &entries {
        let r = idx.lookup(&e.path).unwrap().unwrap();
        assert_eq!(r.size(), e.size);
    }
    println!("lookup hit: {}", per_op(t, n));

    let t = Instant::now();
    for i in 0..n {
        let p = format!("d{:03}/s{}/missing-{i}", i % 100, i % 10);
        assert!(idx.lookup(p.as_bytes()).unwrap().is_none());
    }
    println!("lookup miss: {}", per_op(t, n));

    let t = Instant::now();
    let mut seen = 0;
    for top in 0..100 {
        for s in 0..10 {
            let d = format!("d{top:03}/s{s}");
            let mut last: Vec<u8> = Vec::new();
            for e in idx.readdir(d.as_bytes()).unwrap() {
                let e = e.unwrap();
                assert!(e.name() > &last[..]);
                last = e.name().to_vec();
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 99_000);
    println!("readdir of a 99-entry dir: {}", per_op(t, 1000));
    let t = Instant::now();
    assert_eq!(idx.readdir(b"").unwrap().count(), 100);
    println!("readdir root (100 entries): {:?}", t.elapsed());

    // A three-layer view over it.
    let mut upper = Vec::new();
    for t in (0..100).step_by(3) {
        upper.push(whiteout(&format!("d{t:03}/s1")));
        upper.push(file(&format!("d{t:03}/s2/new.txt")));
    }
    let top = vec![file("d050/s5/file-00.txt"), file("etc/hostname")];
    let layer = |v: Vec<Entry>| {
        let mut w = IndexWriter::new();
        v.into_iter().for_each(|e| w.push(e));
        LayerIndex::from_bytes(w.to_bytes()).unwrap()
    };
    let view = MergedView::new(vec![idx, layer(upper), layer(top)]);
    let t = Instant::now();
    let mut found = 0;
    for e in &entries {
        found += usize::from(view.lookup(&e.path).unwrap().is_some());
    }
    println!("merged lookup (3 layers, depth ≤ 3): {}", per_op(t, n));
    assert_eq!(found, n - 34 * 100);
    let t = Instant::now();
    for top in 0..100 {
        let d = format!("d{top:03}/s2");
        let c = view.readdir(d.as_bytes()).unwrap().len();
        assert_eq!(c, if top % 3 == 0 { 100 } else { 99 });
    }
    println!(
        "merged readdir of a ~100-entry dir (3 layers): {}",
        per_op(t, 100)
    );
    let t = Instant::now();
    let walked = view.walk().count();
    println!("merged walk of {walked} entries: {:?}", t.elapsed());
    assert_eq!(walked, n - 34 * 100 + 34 + 2);
}
