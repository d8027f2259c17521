//! The merged view: OCI layer rules, case by case and against a bottom-up reference model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Rng, dir, entry, file, hardlink, index, opaque, random_entry, whiteout};
use strata_index::{Entry, EntryKind, IMPLICIT_DIR_MODE, LayerIndex, MergedView, split_parent};

fn view(layers: Vec<Vec<Entry>>) -> MergedView {
    MergedView::new(layers.into_iter().map(index).collect())
}

/// `name@layer` for each visible child, `name@layer*` for a synthesized directory.
fn ls(v: &MergedView, d: &str) -> Vec<String> {
    v.readdir(d.as_bytes())
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}@{}{}",
                String::from_utf8_lossy(m.entry.name()),
                m.layer,
                if m.entry.is_implicit() { "*" } else { "" }
            )
        })
        .collect()
}

/// `(layer, kind)` of the visible entry at `p`.
fn at(v: &MergedView, p: &str) -> Option<(usize, EntryKind)> {
    v.lookup(p.as_bytes()).unwrap().map(|(l, e)| (l, e.kind()))
}

fn paths(v: &MergedView) -> Vec<String> {
    v.walk()
        .map(|r| String::from_utf8_lossy(&r.unwrap().0).into_owned())
        .collect()
}

#[test]
fn whiteout_hides_lower_file() {
    let v = view(vec![
        vec![dir("etc"), file("etc/passwd"), file("etc/group")],
        vec![whiteout("etc/passwd")],
    ]);
    assert_eq!(at(&v, "etc/passwd"), None);
    assert_eq!(at(&v, "etc/group"), Some((0, EntryKind::File)));
    assert_eq!(ls(&v, "etc"), ["group@0"]);
    // The whiteout's layer implies etc; a real lower directory gives its metadata.
    assert_eq!(at(&v, "etc"), Some((0, EntryKind::Dir)));
    assert_eq!(ls(&v, ""), ["etc@0"]);
    assert_eq!(paths(&v), ["etc", "etc/group"]);
}

#[test]
fn whiteout_of_a_dir_hides_its_tree() {
    let v = view(vec![
        vec![dir("a"), dir("a/b"), file("a/b/c"), file("a/d"), file("x")],
        vec![whiteout("a")],
    ]);
    assert_eq!(at(&v, "a"), None);
    assert_eq!(at(&v, "a/b"), None);
    assert_eq!(at(&v, "a/b/c"), None);
    assert!(ls(&v, "a").is_empty());
    assert!(ls(&v, "a/b").is_empty());
    assert_eq!(paths(&v), ["x"]);
}

#[test]
fn recreated_after_whiteout() {
    let v = view(vec![
        vec![dir("a"), file("a/old"), file("f")],
        vec![whiteout("a"), whiteout("f")],
        vec![dir("a"), file("a/new"), file("f")],
    ]);
    assert_eq!(at(&v, "a"), Some((2, EntryKind::Dir)));
    assert_eq!(ls(&v, "a"), ["new@2"]);
    assert_eq!(at(&v, "a/old"), None);
    assert_eq!(at(&v, "f"), Some((2, EntryKind::File)));
    // Recreated in the same layer as the whiteout: the layer's own entries stay.
    let v = view(vec![
        vec![dir("a"), file("a/old")],
        vec![file("a/new"), whiteout("a")],
    ]);
    assert_eq!(ls(&v, "a"), ["new@1"]);
    let (l, e) = v.lookup(b"a").unwrap().unwrap();
    assert_eq!((l, e.is_implicit(), e.mode()), (1, true, IMPLICIT_DIR_MODE));
}

#[test]
fn opaque_dir_keeps_its_own_layer() {
    // Entries of the opaque layer before and after the marker, in tar order.
    let v = view(vec![
        vec![
            dir("d"),
            file("d/lower1"),
            dir("d/sub"),
            file("d/sub/deep"),
            file("keep"),
        ],
        vec![
            file("d/before"),
            dir("d"),
            opaque("d"),
            file("d/after"),
            dir("d/sub"),
        ],
        vec![file("d/top")],
    ]);
    assert_eq!(ls(&v, "d"), ["after@1", "before@1", "sub@1", "top@2"]);
    assert_eq!(at(&v, "d/lower1"), None);
    assert_eq!(at(&v, "d/sub/deep"), None);
    assert!(ls(&v, "d/sub").is_empty());
    assert_eq!(at(&v, "d"), Some((1, EntryKind::Dir)));
    assert_eq!(at(&v, "keep"), Some((0, EntryKind::File)));
    // An opaque marker without a directory entry: the directory keeps the lower metadata.
    let mut d = dir("d");
    d.mode = 0o700;
    let v = view(vec![vec![d, file("d/x")], vec![opaque("d"), file("d/y")]]);
    let (l, e) = v.lookup(b"d").unwrap().unwrap();
    assert_eq!((l, e.mode(), e.is_implicit()), (0, 0o700, false));
    assert_eq!(ls(&v, "d"), ["y@1"]);
    // An opaque marker alone makes an empty directory.
    let v = view(vec![vec![file("d/x")], vec![opaque("d")]]);
    assert_eq!(ls(&v, ""), ["d@1*"]);
    assert!(ls(&v, "d").is_empty());
}

#[test]
fn file_replaced_by_dir() {
    let v = view(vec![
        vec![file("a"), file("b")],
        vec![dir("a"), file("a/x"), file("b/y")],
    ]);
    assert_eq!(at(&v, "a"), Some((1, EntryKind::Dir)));
    assert_eq!(ls(&v, "a"), ["x@1"]);
    // b: lower is a file, upper only implies it: synthesized.
    let (l, e) = v.lookup(b"b").unwrap().unwrap();
    assert_eq!((l, e.kind(), e.is_implicit()), (1, EntryKind::Dir, true));
    assert_eq!(ls(&v, ""), ["a@1", "b@1*"]);
    assert_eq!(paths(&v), ["a", "a/x", "b", "b/y"]);
}

#[test]
fn dir_replaced_by_file() {
    let v = view(vec![
        vec![dir("a"), file("a/x"), dir("a/s"), file("a/s/y")],
        vec![file("a")],
        vec![file("a/z")],
    ]);
    // Layer 2 makes a a directory again, holding only its own entries.
    assert_eq!(at(&v, "a/x"), None);
    assert_eq!(at(&v, "a/s/y"), None);
    assert_eq!(ls(&v, "a"), ["z@2"]);
    let (l, e) = v.lookup(b"a").unwrap().unwrap();
    assert_eq!((l, e.is_implicit()), (2, true));
    let v = view(vec![vec![dir("a"), file("a/x")], vec![file("a")]]);
    assert_eq!(at(&v, "a"), Some((1, EntryKind::File)));
    assert_eq!(at(&v, "a/x"), None);
    assert!(ls(&v, "a").is_empty());
    assert_eq!(paths(&v), ["a"]);
}

#[test]
fn implicit_parents() {
    let v = view(vec![vec![file("a/b/c"), file("a/b-c"), file("a/b/d/e")]]);
    assert_eq!(ls(&v, ""), ["a@0*"]);
    assert_eq!(ls(&v, "a"), ["b@0*", "b-c@0"]);
    assert_eq!(ls(&v, "a/b"), ["c@0", "d@0*"]);
    let (_, e) = v.lookup(b"a/b").unwrap().unwrap();
    assert_eq!(
        (e.mode(), e.uid(), e.gid(), e.path()),
        (0o755, 0, 0, b"a/b".to_vec())
    );
    assert_eq!(
        paths(&v),
        ["a", "a/b", "a/b/c", "a/b/d", "a/b/d/e", "a/b-c"]
    );
    // A lower real directory gives the metadata of an implicit upper one.
    let mut d = dir("a");
    d.uid = 42;
    let v = view(vec![vec![d, file("a/old")], vec![file("a/b/c")]]);
    let (l, e) = v.lookup(b"a").unwrap().unwrap();
    assert_eq!((l, e.uid(), e.is_implicit()), (0, 42, false));
    assert_eq!(ls(&v, "a"), ["b@1*", "old@0"]);
    assert_eq!(ls(&v, ""), ["a@0"]);
}

#[test]
fn hardlink_to_lower_layer() {
    let mut target = file("usr/bin/python3.12");
    target.size = 1234;
    let v = view(vec![
        vec![dir("usr"), dir("usr/bin"), target],
        vec![hardlink("usr/bin/python3", "usr/bin/python3.12")],
        vec![whiteout("usr/bin/python3.12")],
    ]);
    let (l, link) = v.lookup(b"usr/bin/python3").unwrap().unwrap();
    assert_eq!((l, link.kind()), (1, EntryKind::Hardlink));
    // Hidden at the top, but the hardlink still resolves from its own layer.
    assert_eq!(at(&v, "usr/bin/python3.12"), None);
    let (tl, t) = v.lookup_below(link.link(), l).unwrap().unwrap();
    assert_eq!((tl, t.size()), (0, 1234));
    // A layer index past the top is the whole view.
    assert!(v.lookup_below(b"usr/bin/python3.12", 99).unwrap().is_none());
    assert_eq!(
        v.lookup_below(b"usr/bin/python3.12", 0).unwrap().unwrap().0,
        0
    );
}

#[test]
fn markers_never_returned_and_root() {
    let v = view(vec![vec![whiteout("gone"), opaque("o")]]);
    assert_eq!(ls(&v, ""), ["o@0*"]);
    assert!(v.lookup(b"").unwrap().is_none());
    assert!(v.lookup(b"gone").unwrap().is_none());
    let empty = MergedView::new(Vec::new());
    assert!(empty.readdir(b"").unwrap().is_empty());
    assert_eq!(empty.walk().count(), 0);
}

// ----- reference model -----

/// A node of the reference tree: layer, and the entry (None = synthesized directory).
type Tree = BTreeMap<Vec<u8>, (usize, Option<Entry>)>;

fn is_dir(n: &(usize, Option<Entry>)) -> bool {
    n.1.as_ref().is_none_or(|e| e.kind == EntryKind::Dir)
}

fn ancestors(p: &[u8]) -> Vec<Vec<u8>> {
    p.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| p[..i].to_vec())
        .collect()
}

fn remove_under(t: &mut Tree, p: &[u8]) {
    let mut prefix = p.to_vec();
    prefix.push(b'/');
    t.retain(|k, _| !k.starts_with(&prefix));
}

/// Applies layers bottom-up, the way an extractor would.
fn reference(layers: &[Vec<Entry>]) -> Tree {
    let mut t = Tree::new();
    for (l, entries) in layers.iter().enumerate() {
        // The layer as its index holds it: last wins per (path, class).
        let mut real: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        let mut markers: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        for e in entries {
            if matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                markers.insert(e.path.clone(), e.clone());
            } else {
                real.insert(e.path.clone(), e.clone());
            }
        }
        // Markers act on the lower layers.
        for (p, m) in &markers {
            if m.kind == EntryKind::Whiteout {
                t.remove(p);
            }
            remove_under(&mut t, p);
        }
        let blocked = |p: &[u8]| {
            ancestors(p)
                .iter()
                .any(|a| real.get(a).is_some_and(|e| e.kind != EntryKind::Dir))
        };
        let mut implicit: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (p, m) in &markers {
            implicit.extend(ancestors(p));
            if m.kind == EntryKind::Opaque {
                implicit.insert(p.clone());
            }
        }
        for p in real.keys().filter(|p| !blocked(p)) {
            implicit.extend(ancestors(p));
        }
        for p in implicit
            .iter()
            .filter(|p| !blocked(p) && !real.contains_key(*p))
        {
            match t.get(p) {
                Some(n) if n.1.as_ref().is_some_and(|e| e.kind == EntryKind::Dir) => {}
                _ => {
                    t.insert(p.clone(), (l, None));
                }
            }
        }
        for (p, e) in real.iter().filter(|(p, _)| !blocked(p)) {
            if e.kind != EntryKind::Dir {
                remove_under(&mut t, p);
            }
            t.insert(p.clone(), (l, Some(e.clone())));
        }
        // A non-directory swallows its lower subtree, whichever layer set it.
        let files: Vec<Vec<u8>> = t
            .iter()
            .filter(|(_, n)| !is_dir(n))
            .map(|(k, _)| k.clone())
            .collect();
        for f in files {
            remove_under(&mut t, &f);
        }
    }
    t
}

fn components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/').collect()
}

#[test]
fn matches_reference_model() {
    const ALPHABET: &[&[u8]] = &[b"a", b"b", b"a-", b"\xff"];
    let mut rng = Rng::new(7);
    for case in 0..3000 {
        let layers: Vec<Vec<Entry>> = (0..1 + rng.below(4))
            .map(|_| {
                (0..rng.below(12))
                    .map(|_| random_entry(&mut rng, 3, ALPHABET))
                    .collect()
            })
            .collect();
        let v = MergedView::new(
            layers
                .iter()
                .cloned()
                .map(index)
                .collect::<Vec<LayerIndex>>(),
        );
        let want = reference(&layers);
        let mut want_order: Vec<&Vec<u8>> = want.keys().collect();
        want_order.sort_by(|a, b| components(a).cmp(&components(b)));

        let walked: Vec<(Vec<u8>, usize, Option<Entry>)> = v
            .walk()
            .map(|r| {
                let (p, m) = r.unwrap();
                assert_eq!(m.entry.path(), p);
                (
                    p,
                    m.layer,
                    (!m.entry.is_implicit()).then(|| m.entry.to_entry()),
                )
            })
            .collect();
        let got: Tree = walked
            .iter()
            .map(|(p, l, e)| (p.clone(), (*l, e.clone())))
            .collect();
        if got != want {
            panic!("case {case}: layers {layers:#?}\nwant {want:#?}\ngot {got:#?}");
        }
        let got_order: Vec<&Vec<u8>> = walked.iter().map(|(p, _, _)| p).collect();
        assert_eq!(got_order, want_order, "case {case}: walk order");

        // lookup agrees, at visible paths and at every path any layer mentions.
        let mut probe: BTreeSet<Vec<u8>> = want.keys().cloned().collect();
        for e in layers.iter().flatten() {
            probe.insert(e.path.clone());
            probe.extend(ancestors(&e.path));
        }
        for p in &probe {
            let got = v
                .lookup(p)
                .unwrap()
                .map(|(l, e)| (l, (!e.is_implicit()).then(|| e.to_entry())));
            assert_eq!(
                got.as_ref(),
                want.get(p),
                "case {case}: lookup {:?}\n{layers:#?}",
                String::from_utf8_lossy(p)
            );
            // readdir of a non-directory or absent path is empty.
            if !want.get(p).is_some_and(is_dir) {
                assert!(
                    v.readdir(p).unwrap().is_empty(),
                    "case {case}: readdir {p:?}"
                );
            }
        }
        // lookup_below(p, top) is lookup(p).
        if let Some(p) = probe.iter().next() {
            let top = v.layers().len() - 1;
            let a = v.lookup(p).unwrap().map(|(l, e)| (l, e.to_entry()));
            let b = v
                .lookup_below(p, top)
                .unwrap()
                .map(|(l, e)| (l, e.to_entry()));
            assert_eq!(a, b);
        }
        let _ = split_parent(b"");
    }
}

#[test]
fn entry_helper_sanity() {
    assert_eq!(entry(b"x", EntryKind::Dir).mode, 0o755);
}

#[test]
fn the_root_is_the_topmost_layers_root_entry() {
    let root = |mode: u32, mtime: i64| Entry {
        mode,
        mtime,
        ..entry(b"", EntryKind::Dir)
    };
    // No layer has one: synthesized like an implicit directory.
    let v = view(vec![vec![file("a")]]);
    let r = v.root().unwrap();
    assert!(r.entry.is_implicit());
    assert_eq!((r.entry.mode(), r.entry.mtime()), (IMPLICIT_DIR_MODE, 0));
    // The topmost layer with one wins; a layer above without one changes nothing.
    let v = view(vec![
        vec![root(0o700, 1), file("a")],
        vec![root(0o750, 2)],
        vec![file("b")],
    ]);
    let r = v.root().unwrap();
    assert_eq!((r.layer, r.entry.mode(), r.entry.mtime()), (1, 0o750, 2));
    assert_eq!(ls(&v, ""), ["a@0", "b@2"]);
    assert!(v.lookup(b"").unwrap().is_none());
}
