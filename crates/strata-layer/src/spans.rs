//! Span digests: the sha256 of each checkpoint span's compressed bytes, computed during the one pass that
//! reads a layer ([`SpanHasher`], on its own thread), and checked on every range read of the blob later
//! ([`fetch_span`], used by [`crate::random::LayerReader`]).
//!
//! Where spans lie is the index format's rule ([`SpanDigest`], docs/FORMAT.md): the blob is cut at every
//! checkpoint — a checkpoint at bit `b` ends the span before it at byte `⌈b/8⌉` and starts the next at
//! byte `⌊b/8⌋`, so a checkpoint inside a byte puts that byte in both — and a run longer than
//! [`MAX_SPAN_BYTES`] is cut every `MAX_SPAN_BYTES` bytes.
//!
//! The checkpoints are found by the inflating thread after it took the bytes in, so the hasher is told of
//! them as they are recorded and of the compressed chunks once the inflater is done with them (in that
//! order, on one channel), and hashes only bytes no checkpoint can still fall in: those more than
//! [`LAG`] bytes before the end of the chunks it was given. It never holds more than a few chunks.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

use sha2::{Digest as _, Sha256};
use strata_image::ImageSource;
use strata_index::SpanDigest;
use strata_index::format::MAX_SPAN_BYTES;
use strata_oci::Digest;

use crate::decode::MAX_HELD_BITS;

/// A span that could not be checked: carried through the decoders' `io::Error`s, and turned into
/// [`crate::Error::Span`] by the reader, which knows the layer.
#[derive(Debug)]
pub(crate) struct SpanFailure {
    /// The span's position in the index's span table.
    pub(crate) span: usize,
    /// Its byte range in the blob.
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// What is wrong.
    pub(crate) reason: String,
}

impl fmt::Display for SpanFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "span {} (bytes {}..{}): {}",
            self.span, self.start, self.end, self.reason
        )
    }
}

impl std::error::Error for SpanFailure {}

/// The span holding blob byte `at` (the last one starting at or before it), with its position; `None` past
/// the blob's end.
pub(crate) fn find_span(spans: &[SpanDigest], at: u64) -> Option<(usize, SpanDigest)> {
    let j = spans.partition_point(|s| s.start <= at).checked_sub(1)?;
    let span = *spans.get(j)?;
    (at < span.end).then_some((j, span))
}

/// The shortest span a [`probe`] reads: shorter ones (a gzip member's header, the same in every blob) say
/// nothing of the bytes that follow.
const PROBE_MIN_BYTES: u64 = 64;

/// Checks that blob `digest` of `source` is the one `index` was made of before anything is served through
/// it: reads one span — the shortest of at least 64 bytes, the last of equals (a blob's tail holds a gzip
/// member's CRC-32 of all it decompresses to) — and checks its sha256, if that span has at most
/// `max_bytes`. An index of other bytes (published for a blob the registry now serves differently, a stale
/// cache) is refused for the cost of one short range read rather than at the first file read; spans not
/// probed are still checked as they are read. Returns whether a span was probed (`false`: none is short
/// enough, nothing was read). An index without span digests cannot be checked and is refused.
///
/// # Errors
/// [`crate::Error::Span`] naming the span when its bytes differ or the blob is shorter; the source's error
/// when the read fails; [`crate::Error::Format`] for an index without span digests.
pub fn probe(
    source: &dyn ImageSource,
    digest: &Digest,
    index: &strata_index::LayerIndex,
    max_bytes: u64,
) -> crate::Result<bool> {
    let spans: Vec<SpanDigest> = index.spans().collect();
    if spans.is_empty() {
        return Err(crate::Error::Format {
            layer: digest.to_string(),
            reason: "its index has no span digests: what the source serves cannot be checked"
                .into(),
        });
    }
    let chosen = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.len() >= PROBE_MIN_BYTES)
        .min_by_key(|(j, s)| (s.len(), std::cmp::Reverse(*j)))
        .or_else(|| spans.iter().enumerate().next_back());
    let Some((chosen, _)) = chosen.filter(|(_, s)| s.len() <= max_bytes) else {
        return Ok(false);
    };
    let mut buf = Vec::new();
    fetch_span(source, digest, &spans, chosen, &mut buf)
        .map_err(|e| span_error(digest, e, |e| format!("probing a span: {e}")))?;
    Ok(true)
}

/// The error of a read of blob `digest` through its spans: a [`SpanFailure`] is [`crate::Error::Span`], a
/// source's error passed on as [`crate::Error::Source`], anything else [`crate::Error::Format`] with the
/// reason `describe` gives.
pub(crate) fn span_error(
    digest: &Digest,
    e: io::Error,
    describe: impl FnOnce(&io::Error) -> String,
) -> crate::Error {
    let reason = describe(&e);
    let format = |reason| crate::Error::Format {
        layer: digest.to_string(),
        reason,
    };
    let Some(inner) = e.into_inner() else {
        return format(reason);
    };
    match inner.downcast::<SpanFailure>() {
        Ok(span) => crate::Error::Span {
            layer: digest.to_string(),
            span: span.span,
            start: span.start,
            end: span.end,
            path: None,
            reason: span.reason,
        },
        Err(inner) => match inner.downcast::<strata_image::Error>() {
            Ok(source) => crate::Error::Source(*source),
            Err(_) => format(reason),
        },
    }
}

/// Reads span `j` of `spans` whole from blob `digest` of `source` into `buf` and checks its sha256: on
/// success `buf` holds exactly its bytes; a short read or a mismatch is a [`SpanFailure`] (and `buf` is left
/// empty), a source's error is passed on as it is.
pub(crate) fn fetch_span(
    source: &dyn ImageSource,
    digest: &Digest,
    spans: &[SpanDigest],
    j: usize,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.clear();
    let Some(span) = spans.get(j).copied() else {
        return Ok(());
    };
    let failure = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            SpanFailure {
                span: j,
                start: span.start,
                end: span.end,
                reason,
            },
        )
    };
    // At most MAX_SPAN_BYTES + 1: checked when the index was opened.
    let len = usize::try_from(span.len())
        .ok()
        .filter(|&n| n as u64 <= MAX_SPAN_BYTES + 1)
        .ok_or_else(|| failure("the span is longer than a span may be".into()))?;
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        let n = source
            .read_blob_at(digest, span.start + filled as u64, &mut buf[filled..])
            .map_err(io::Error::other);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        filled += n.min(len - filled);
    }
    if filled < len {
        buf.clear();
        return Err(failure(format!(
            "the source served {filled} of its {len} bytes: the blob is shorter than its index says"
        )));
    }
    let got: [u8; 32] = Sha256::digest(&buf[..]).into();
    if got != span.sha256 {
        buf.clear();
        return Err(failure(format!(
            "its bytes have sha256 {} but the index says {}: the source serves other bytes than the \
             layer that was indexed",
            hex(&got),
            hex(&span.sha256)
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes the hasher stays behind the end of the chunks it was given: a checkpoint recorded later lies at
/// most [`MAX_HELD_BITS`] before the input consumed when it is recorded.
const LAG: u64 = MAX_HELD_BITS / 8 + 8;

/// What the inflating thread tells the hasher, in the order it happens.
pub(crate) enum SpanMsg {
    /// The next compressed chunk, which the inflater has consumed entirely.
    Bytes(Vec<u8>),
    /// A checkpoint was recorded at this bit offset.
    Cut(u64),
    /// The blob is over: every chunk was sent.
    End,
}

/// Computes the span digests of a blob from [`SpanMsg`]s: see the module docs.
pub(crate) struct SpanHasher {
    spans: Vec<SpanDigest>,
    /// The span being hashed: its first byte and how many bytes it has so far.
    start: u64,
    len: u64,
    hasher: Sha256,
    /// Next byte of the blob to hash.
    pos: u64,
    /// Checkpoint bit offsets not yet reached, ascending.
    cuts: VecDeque<u64>,
    /// Chunks not wholly hashed yet, each with its offset in the blob.
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// Offset of the byte after the last chunk given.
    received: u64,
}

impl SpanHasher {
    fn new() -> SpanHasher {
        SpanHasher {
            spans: Vec::new(),
            start: 0,
            len: 0,
            hasher: Sha256::new(),
            pos: 0,
            cuts: VecDeque::new(),
            chunks: VecDeque::new(),
            received: 0,
        }
    }

    /// Runs the hasher over `rx` until [`SpanMsg::End`], handing each chunk, once hashed, to `spare`
    /// (when it has room). `None` when the sender hung up before the end (the pass failed).
    pub(crate) fn run(
        rx: &Receiver<SpanMsg>,
        spare: &SyncSender<Vec<u8>>,
    ) -> Option<io::Result<Vec<SpanDigest>>> {
        let mut h = SpanHasher::new();
        loop {
            let step = match rx.recv().ok()? {
                SpanMsg::Bytes(chunk) => {
                    h.received = h.received.saturating_add(chunk.len() as u64);
                    h.chunks.push_back((h.received - chunk.len() as u64, chunk));
                    h.advance(h.received.saturating_sub(LAG), spare)
                }
                SpanMsg::Cut(bit) => {
                    h.cuts.push_back(bit);
                    Ok(())
                }
                SpanMsg::End => return Some(h.finish(spare)),
            };
            if let Err(e) = step {
                return Some(Err(e));
            }
        }
    }

    /// Ends the span being hashed at `end`; the next starts at `next`.
    fn close(&mut self, end: u64, next: u64) {
        let hasher = std::mem::replace(&mut self.hasher, Sha256::new());
        self.spans.push(SpanDigest {
            start: self.start,
            end,
            sha256: hasher.finalize().into(),
        });
        self.start = next;
        self.len = 0;
    }

    /// Hashes the bytes `pos..end` (all given), into the span being hashed.
    fn feed(&mut self, end: u64, spare: &SyncSender<Vec<u8>>) {
        while self.pos < end {
            let Some((at, chunk)) = self.chunks.front() else {
                return;
            };
            let chunk_end = at.saturating_add(chunk.len() as u64);
            if chunk_end <= self.pos {
                if let Some((_, done)) = self.chunks.pop_front() {
                    let _ = spare.try_send(done);
                }
                continue;
            }
            // Both within the chunk: fit in usize.
            let from = usize::try_from(self.pos - at).unwrap_or(usize::MAX);
            let to = usize::try_from(end.min(chunk_end) - at).unwrap_or(usize::MAX);
            let Some(bytes) = chunk.get(from..to) else {
                return;
            };
            self.hasher.update(bytes);
            self.len += bytes.len() as u64;
            self.pos += bytes.len() as u64;
        }
    }

    /// The byte at `at`, if given and not yet dropped.
    fn byte(&self, at: u64) -> Option<u8> {
        self.chunks.iter().find_map(|(start, chunk)| {
            let i = usize::try_from(at.checked_sub(*start)?).ok()?;
            chunk.get(i).copied()
        })
    }

    /// Hashes up to byte `limit`, cutting spans at the checkpoints and every [`MAX_SPAN_BYTES`].
    fn advance(&mut self, limit: u64, spare: &SyncSender<Vec<u8>>) -> io::Result<()> {
        while self.pos < limit {
            if let Some(&bit) = self.cuts.front() {
                let at = bit / 8;
                if at < self.pos || (at == self.pos && (self.len == 0 || bit % 8 == 0)) {
                    self.cuts.pop_front();
                    if at == self.pos && self.len > 0 {
                        // At a byte boundary: the span ends here, the next starts here.
                        self.close(at, at);
                    } else if at != self.start || self.len > 1 {
                        // Never when LAG holds: the spans would be wrong, so the pass fails.
                        return Err(io::Error::other(format!(
                            "a checkpoint at bit {bit} was recorded after its bytes were hashed"
                        )));
                    }
                    // (A checkpoint where the span starts anyway adds nothing.)
                    continue;
                }
                if at == self.pos {
                    // Inside this byte: the span ends after it, and the next one starts with it.
                    self.cuts.pop_front();
                    let Some(byte) = self.byte(at) else {
                        return Err(io::Error::other("the span hasher lost a byte"));
                    };
                    self.feed(at + 1, spare);
                    self.close(at + 1, at);
                    self.hasher.update([byte]);
                    self.len = 1;
                    continue;
                }
            }
            if self.len >= MAX_SPAN_BYTES {
                self.close(self.pos, self.pos);
            }
            let mut end = limit.min(self.start.saturating_add(MAX_SPAN_BYTES));
            if let Some(&bit) = self.cuts.front() {
                end = end.min(bit / 8);
            }
            self.feed(end, spare);
        }
        Ok(())
    }

    /// Hashes what is left and closes the last span.
    fn finish(mut self, spare: &SyncSender<Vec<u8>>) -> io::Result<Vec<SpanDigest>> {
        // Checkpoints at the very end (nothing follows them) cut nothing.
        let end = self.received;
        self.cuts.retain(|&bit| bit / 8 < end);
        self.advance(end, spare)?;
        if self.len > 0 {
            self.close(end, end);
        }
        for (_, chunk) in self.chunks.drain(..) {
            let _ = spare.try_send(chunk);
        }
        Ok(self.spans)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::mpsc::{channel, sync_channel};

    use super::*;

    /// The spans the format's rule gives for `blob` cut at `bits`, hashed directly.
    fn expected(blob: &[u8], bits: &[u64]) -> Vec<SpanDigest> {
        let mut cuts: Vec<(u64, u64)> = vec![];
        let size = blob.len() as u64;
        let mut start = 0u64;
        let mut points: Vec<u64> = bits.to_vec();
        points.push(size * 8);
        for b in points {
            let (end, next) = (b.div_ceil(8), b / 8);
            if end <= start {
                continue;
            }
            // Cut every MAX_SPAN_BYTES from start, the last part ending at `end`.
            while end - start > MAX_SPAN_BYTES && !(end - start == MAX_SPAN_BYTES + 1 && b % 8 != 0)
            {
                cuts.push((start, start + MAX_SPAN_BYTES));
                start += MAX_SPAN_BYTES;
            }
            cuts.push((start, end));
            start = next;
        }
        cuts.into_iter()
            .map(|(s, e)| SpanDigest {
                start: s,
                end: e,
                sha256: Sha256::digest(&blob[s as usize..e as usize]).into(),
            })
            .collect()
    }

    /// Feeds `blob` in `chunk`-byte chunks, each checkpoint told as soon as the "inflater" passes it.
    fn hash(blob: &[u8], bits: &[u64], chunk: usize) -> Vec<SpanDigest> {
        let (tx, rx) = channel();
        let (spare_tx, _spare_rx) = sync_channel(4);
        let mut next_cut = 0;
        for (i, c) in blob.chunks(chunk).enumerate() {
            let end = ((i * chunk + c.len()) * 8) as u64;
            while next_cut < bits.len() && bits[next_cut] < end {
                tx.send(SpanMsg::Cut(bits[next_cut])).unwrap();
                next_cut += 1;
            }
            tx.send(SpanMsg::Bytes(c.to_vec())).unwrap();
        }
        for &b in &bits[next_cut..] {
            tx.send(SpanMsg::Cut(b)).unwrap();
        }
        tx.send(SpanMsg::End).unwrap();
        SpanHasher::run(&rx, &spare_tx).unwrap().unwrap()
    }

    #[test]
    fn spans_follow_checkpoints_and_are_cut_at_the_limit() {
        let max = MAX_SPAN_BYTES as usize;
        let blob: Vec<u8> = (0..(2 * max + 5000))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let cases: &[&[u64]] = &[
            &[],
            &[80],
            &[80, 8003, 16000, 24001],
            &[0, 77, ((max + 100) * 8 + 3) as u64],
            // A checkpoint inside the byte where the limit cuts: the span takes it too.
            &[80, ((max + 10) * 8 + 5) as u64],
            &[(max * 8 + 4) as u64],
        ];
        for bits in cases {
            let want = expected(&blob, bits);
            for chunk in [1000, 256 << 10, 4099] {
                let got = hash(&blob, bits, chunk);
                assert_eq!(got, want, "{bits:?} in {chunk}-byte chunks");
            }
            strata_index::IndexWriter::new().set_spans(want.clone());
        }
        // The spans of a blob cover it, as the index reader wants.
        let spans = hash(&blob, &[80, 8003], 4096);
        assert_eq!(spans.first().unwrap().start, 0);
        assert_eq!(spans.last().unwrap().end, blob.len() as u64);
        assert_eq!(spans[1].start, 10);
        assert_eq!(spans[1].end, 1001);
        assert_eq!(spans[2].start, 1000);
    }

    #[test]
    fn an_empty_blob_has_no_spans() {
        assert!(hash(&[], &[], 10).is_empty());
    }
}
