//! The piece cache of [`BlobContents`](super::BlobContents): decompressed pieces of checkpoint spans in a
//! bounded least-recently-used map, shared by every reader and read-ahead worker, with the record of which
//! spans a thread is decoding (so no span is decoded by two threads at once).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A decompressed piece.
pub(super) type Piece = Arc<PieceData>;

pub(super) struct PieceData {
    pub(super) bytes: Vec<u8>,
    /// Bytes copied out of it so far (counted only for pieces inside one file).
    pub(super) copied: AtomicUsize,
}

/// A piece's key: (layer, span, piece).
pub(super) type Key = (usize, usize, u64);

/// The least-recently-used cache of decompressed pieces, and which spans are being decoded.
pub(super) struct PieceCache {
    /// Budget, in bytes.
    pub(super) capacity: u64,
    pub(super) state: Mutex<CacheState>,
    /// Signalled when a piece arrives or a span's decoder finishes.
    pub(super) changed: Condvar,
}

#[derive(Default)]
pub(super) struct CacheState {
    pub(super) pieces: HashMap<Key, (Piece, u64)>,
    pub(super) bytes: u64,
    pub(super) tick: u64,
    /// The spans (layer, span) a thread is decoding.
    pub(super) busy: HashSet<(usize, usize)>,
    /// Buffers of evicted pieces, for the next ones.
    pub(super) spare: Vec<Vec<u8>>,
    /// Pieces dropped once read (see [`PieceCache::retire`]), oldest first: read-ahead skips them.
    pub(super) retired: HashSet<Key>,
    pub(super) retired_order: VecDeque<Key>,
}

/// Buffers kept for reuse.
const MAX_SPARE: usize = 16;

/// Retired pieces remembered.
const MAX_RETIRED: usize = 4096;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these structures inconsistent: use them anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CacheState {
    /// Whether piece `key` is neither cached nor read already.
    pub(super) fn needed(&self, key: &Key) -> bool {
        !self.pieces.contains_key(key) && !self.retired.contains(key)
    }

    /// Keeps the buffer of a piece no longer cached, if nobody holds the piece any more.
    fn recycle(&mut self, piece: Piece) {
        if self.spare.len() < MAX_SPARE
            && let Ok(data) = Arc::try_unwrap(piece)
        {
            self.spare.push(data.bytes);
        }
    }

    pub(super) fn get(&mut self, layer: usize, span: usize, piece: u64) -> Option<Piece> {
        self.tick += 1;
        let tick = self.tick;
        let (data, used) = self.pieces.get_mut(&(layer, span, piece))?;
        *used = tick;
        Some(Arc::clone(data))
    }
}

impl PieceCache {
    pub(super) fn new(capacity: u64) -> PieceCache {
        PieceCache {
            capacity,
            state: Mutex::new(CacheState::default()),
            changed: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, CacheState> {
        lock(&self.state)
    }

    pub(super) fn wait<'a>(&self, guard: MutexGuard<'a, CacheState>) -> MutexGuard<'a, CacheState> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of `len` bytes to decode into (a spare one if there is one).
    pub(super) fn buffer(&self, len: usize) -> Vec<u8> {
        let mut buf = lock(&self.state).spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Caches `piece` as `key` (replacing what was there), evicting the least recently used pieces beyond
    /// the budget, and wakes the threads waiting for pieces.
    pub(super) fn insert(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        state.retired.remove(&key);
        self.put(state, key, piece);
    }

    /// Caches `piece` as `key` like [`PieceCache::insert`], unless it was read already (see
    /// [`PieceCache::retire`]): then its buffer goes to the next piece.
    pub(super) fn offer(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        if state.retired.contains(&key) {
            state.recycle(piece);
            return;
        }
        self.put(state, key, piece);
    }

    fn put(&self, mut state: MutexGuard<'_, CacheState>, key: Key, piece: Piece) {
        state.tick += 1;
        let tick = state.tick;
        state.bytes = state.bytes.saturating_add(piece.bytes.len() as u64);
        if let Some((old, _)) = state.pieces.insert(key, (piece, tick)) {
            state.bytes = state.bytes.saturating_sub(old.bytes.len() as u64);
        }
        while state.bytes > self.capacity && state.pieces.len() > 1 {
            let Some(oldest) = state
                .pieces
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = state.pieces.remove(&oldest) {
                state.bytes = state.bytes.saturating_sub(old.bytes.len() as u64);
                state.recycle(old);
            }
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Drops `piece` (the one cached as `key`, if it still is) from the cache, once all of it was read
    /// for a file it lies within, and keeps its buffer for the next piece unless someone else still
    /// holds it. The kernel keeps the file's pages: read-ahead does not decompress it again (a reader
    /// asking for it again does).
    pub(super) fn retire(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        if state.retired.insert(key) {
            state.retired_order.push_back(key);
            if state.retired_order.len() > MAX_RETIRED
                && let Some(old) = state.retired_order.pop_front()
            {
                state.retired.remove(&old);
            }
        }
        if state
            .pieces
            .get(&key)
            .is_some_and(|(p, _)| Arc::ptr_eq(p, &piece))
            && let Some((cached, _)) = state.pieces.remove(&key)
        {
            state.bytes = state.bytes.saturating_sub(cached.bytes.len() as u64);
            drop(cached);
            state.recycle(piece);
        }
    }
}

/// A span marked as being decoded; unmarked (and the waiting threads woken) when dropped, whatever
/// happened.
pub(super) struct Busy<'a> {
    pub(super) cache: &'a PieceCache,
    pub(super) key: (usize, usize),
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.cache.lock().busy.remove(&self.key);
        self.cache.changed.notify_all();
    }
}
