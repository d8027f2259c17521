//! Read-ahead for [`BlobContents`](super::BlobContents): the streams of reads being followed, and which
//! checkpoint spans the worker threads decode ahead of them (one span ahead at first, doubling as a reader
//! moves on, as the kernel grows its own read-ahead).

use std::sync::mpsc;

use super::blob::{Inner, Layer, Place};
use super::cache::lock;

/// A read-ahead job: decompress span `span` of layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Job {
    pub(super) layer: usize,
    pub(super) span: usize,
}

/// Read-ahead state: the streams of reads being followed.
#[derive(Default)]
pub(super) struct Ahead {
    pub(super) streams: Vec<Stream>,
    pub(super) tick: u64,
}

/// A reader going forward through a layer (one file, or files in order): where it is, and how far its
/// spans were queued.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stream {
    pub(super) layer: usize,
    /// The span it reads now (the furthest it has read).
    pub(super) at: usize,
    /// The piece of the span it read last.
    pub(super) piece: u64,
    /// The last span queued for it (`at` or below: none).
    pub(super) queued: usize,
    /// Where the content of the file it read last ends.
    pub(super) file_end: u64,
    /// It went from one file to another: it reads files in order.
    pub(super) files: bool,
    /// Spans it may have queued past the one it reads: 1 at first, doubling each time it moves on to
    /// the next span, up to [`Inner::ahead_spans`] (as the kernel grows its read-ahead).
    pub(super) ahead: usize,
    pub(super) used: u64,
}

/// Streams followed at once; the least recently used one is forgotten.
const MAX_STREAMS: usize = 16;

/// The largest span (in pieces) read ahead: spans larger than this (a zstd layer in one frame) are read
/// only as asked, by the reader's own decoder.
pub(super) const MAX_AHEAD_CHUNKS: u64 = 8;

impl Inner {
    /// The first piece of `job`'s span a reader still heads for: the furthest it asked for if it is in the
    /// span, else 0; `None` if no reader heads for the span (any more).
    pub(super) fn wanted(&self, job: Job) -> Option<u64> {
        lock(&self.ahead)
            .streams
            .iter()
            .filter(|st| st.layer == job.layer && (st.at..=st.queued).contains(&job.span))
            .map(|st| if st.at == job.span { st.piece } else { 0 })
            .min()
    }

    /// A read-ahead job: the span's pieces from the first one a reader still wants (see
    /// [`Inner::wanted`]) that is neither cached nor read already (see [`super::cache::PieceCache::retire`]) to the last
    /// such one, by one decoder (errors are left for the readers to meet). Skipped when no reader is
    /// heading for the span any more.
    pub(super) fn run(&self, job: Job) {
        let Some(layer) = self.layers.get(job.layer) else {
            return;
        };
        let Some(span) = layer.span(job.span) else {
            return;
        };
        if span.pieces == 0 {
            return;
        }
        let mut state = self.cache.lock();
        let (from, until) = loop {
            if !state.busy.contains(&(job.layer, job.span)) {
                // (Lock order: the cache's state, then the read-ahead state; never the other way.)
                let Some(wanted) = self.wanted(job) else {
                    return;
                };
                let needed = |p: &u64| state.needed(&(job.layer, job.span, *p));
                let from = (wanted..span.pieces).find(needed);
                let until = (wanted..span.pieces).rev().find(needed);
                match from.zip(until) {
                    Some(range) => {
                        state.busy.insert((job.layer, job.span));
                        break range;
                    }
                    None => return,
                }
            }
            // A reader is decoding a piece of it: take over when it is done.
            state = self.cache.wait(state);
        };
        drop(state);
        let _ = self.decode(job.layer, layer, job.span, &span, from, until);
    }

    /// Notes that piece `at` of layer `index` is being read for a file whose content ends at tar offset
    /// `file_end`, and queues the spans that the reader will want and are not queued yet: the rest of
    /// the span being read and the later spans the rest of the file covers, and, when the read
    /// continues a reader going through files in order, the next [`Inner::window`] spans; at most
    /// [`Stream::ahead`] spans past the one being read, and [`Inner::ahead_bytes`] of them. Returns the first piece of `at`'s span the reader has not asked
    /// for before this one (`at`'s own when there is none, or when it was asked for from elsewhere).
    pub(super) fn read_ahead(
        &self,
        index: usize,
        layer: &Layer,
        at: &Place,
        file_end: u64,
        jobs: &mpsc::Sender<Job>,
    ) -> u64 {
        let Place { s, span, p } = *at;
        let mut ahead = lock(&self.ahead);
        ahead.tick += 1;
        let tick = ahead.tick;
        // The stream this read continues: one whose queued spans reach `s` (out-of-order requests may
        // come from just behind it).
        let found = ahead.streams.iter().position(|st| {
            st.layer == index && st.at.saturating_sub(1) <= s && s <= st.queued.saturating_add(1)
        });
        let stream = match found {
            Some(i) => &mut ahead.streams[i],
            None => {
                if ahead.streams.len() >= MAX_STREAMS
                    && let Some(i) = (0..ahead.streams.len()).min_by_key(|&i| ahead.streams[i].used)
                {
                    ahead.streams.swap_remove(i);
                }
                ahead.streams.push(Stream {
                    layer: index,
                    at: s,
                    piece: p,
                    queued: s,
                    file_end,
                    files: false,
                    ahead: 1,
                    used: tick,
                });
                let last = ahead.streams.len() - 1;
                let stream = &mut ahead.streams[last];
                // A file going on past this piece: the rest of the span too (a worker decodes it from
                // this piece on, or from the next one if the reader's decoder got there first).
                let piece_end = span.piece(p).0.saturating_add(span.piece_len);
                if p.saturating_add(1) < span.pieces && file_end > piece_end {
                    let _ = jobs.send(Job {
                        layer: index,
                        span: s,
                    });
                }
                stream
            }
        };
        let (was_at, was_piece) = (stream.at, stream.piece);
        let stepped = found.is_some()
            && ((was_at == s && was_piece.saturating_add(1) == p)
                || (was_at.saturating_add(1) == s && p == 0));
        let unasked = match found {
            Some(_) if was_at == s && was_piece < p => was_piece + 1,
            Some(_) if was_at < s => 0,
            _ => p,
        };
        stream.used = tick;
        if stream.file_end != file_end {
            stream.file_end = file_end;
            stream.files = true;
        }
        if s > stream.at || (s == stream.at && p > stream.piece) {
            if s > stream.at {
                stream.ahead = stream.ahead.saturating_mul(2).min(self.ahead_spans);
            }
            stream.at = s;
            stream.piece = p;
        }
        let mut end = file_end;
        if stepped && stream.files {
            // A reader of files in order: the next `window` spans too.
            let next = layer
                .starts
                .get(s.saturating_add(1 + self.window))
                .copied()
                .unwrap_or(layer.tar_size);
            end = end.max(next);
        }
        let mut bytes = 0u64;
        let mut next = s + 1;
        while end > span.end
            && next <= s.saturating_add(stream.ahead)
            && let Some(later) = layer.span(next)
        {
            if later.start >= end || later.pieces > MAX_AHEAD_CHUNKS || later.pieces == 0 {
                break;
            }
            bytes = bytes.saturating_add(later.len());
            if bytes > self.ahead_bytes {
                break;
            }
            if next > stream.queued {
                if jobs
                    .send(Job {
                        layer: index,
                        span: next,
                    })
                    .is_err()
                {
                    break;
                }
                stream.queued = next;
            }
            next += 1;
        }
        unasked
    }
}
