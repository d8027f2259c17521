//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_index::{Entry, EntryKind, IndexWriter, LayerIndex};

/// A small deterministic PRNG (splitmix64), so the property tests need no extra crate and replay exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// An entry with plausible defaults.
pub fn entry(path: &[u8], kind: EntryKind) -> Entry {
    Entry {
        path: path.to_vec(),
        kind,
        mode: match kind {
            EntryKind::Dir => 0o755,
            _ => 0o644,
        },
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        link: Vec::new(),
        dev_major: 0,
        dev_minor: 0,
        xattrs: Vec::new(),
        offset: 0,
    }
}

pub fn file(path: &str) -> Entry {
    entry(path.as_bytes(), EntryKind::File)
}

pub fn dir(path: &str) -> Entry {
    entry(path.as_bytes(), EntryKind::Dir)
}

pub fn whiteout(path: &str) -> Entry {
    entry(path.as_bytes(), EntryKind::Whiteout)
}

pub fn opaque(path: &str) -> Entry {
    entry(path.as_bytes(), EntryKind::Opaque)
}

pub fn hardlink(path: &str, target: &str) -> Entry {
    let mut e = entry(path.as_bytes(), EntryKind::Hardlink);
    e.link = target.as_bytes().to_vec();
    e
}

/// An index of `entries`, in this (tar) order.
pub fn index(entries: impl IntoIterator<Item = Entry>) -> LayerIndex {
    let mut w = IndexWriter::new();
    for e in entries {
        w.try_push(e).unwrap();
    }
    LayerIndex::from_bytes(w.to_bytes()).unwrap()
}

pub fn kind_class(kind: EntryKind) -> u8 {
    u8::from(matches!(kind, EntryKind::Whiteout | EntryKind::Opaque))
}

/// A random entry: a path of 1–`depth` components over a small alphabet (with non-UTF-8 bytes), any kind.
pub fn random_entry(rng: &mut Rng, depth: u64, alphabet: &[&[u8]]) -> Entry {
    const KINDS: [EntryKind; 9] = [
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Symlink,
        EntryKind::Hardlink,
        EntryKind::CharDevice,
        EntryKind::BlockDevice,
        EntryKind::Fifo,
        EntryKind::Whiteout,
        EntryKind::Opaque,
    ];
    let n = 1 + rng.below(depth);
    let mut path = Vec::new();
    for i in 0..n {
        if i > 0 {
            path.push(b'/');
        }
        let part: &[u8] = alphabet[rng.below(alphabet.len() as u64) as usize];
        path.extend_from_slice(part);
    }
    let kind = *rng.pick(&KINDS);
    let mut e = entry(&path, kind);
    e.mode = rng.below(0o10000) as u32;
    e.uid = rng.next_u64() as u32;
    e.gid = rng.next_u64() as u32;
    e.size = if kind == EntryKind::File {
        rng.next_u64() >> rng.below(64)
    } else {
        0
    };
    e.mtime = rng.next_u64() as i64;
    e.mtime_nsec = rng.below(1_000_000_000) as u32;
    e.offset = rng.next_u64();
    if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) {
        let len = rng.below(40) as usize;
        e.link = (0..len).map(|_| rng.next_u64() as u8).collect();
    }
    if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        e.dev_major = rng.next_u64() as u32;
        e.dev_minor = rng.next_u64() as u32;
    }
    for _ in 0..rng.below(3) {
        let name = format!("user.x{}", rng.below(4)).into_bytes();
        let value = (0..rng.below(20)).map(|_| rng.next_u64() as u8).collect();
        e.xattrs.push((name, value));
    }
    e
}
