//! The unpacker's pool of file writers: regular files' contents and metadata written on a few threads.
//!
//! The unpacker creates every regular file itself, in tar order, through the safe resolution of
//! [`super::fsops`] (`openat2` with `RESOLVE_IN_ROOT` for the parent, `O_CREAT | O_EXCL | O_NOFOLLOW` for the
//! name), and hands the open file, its bytes and its metadata to this pool. A worker only ever writes through
//! that file descriptor — `write`, `fchown`, `fchmod`, `fsetxattr`, `futimens`, `close` — and never resolves
//! a path, so it cannot reach anything the unpacker did not open.
//!
//! The tree's names are therefore exactly those of a serial unpack at every moment; only regular files'
//! contents and metadata lag behind. A later entry that removes or replaces the path unlinks the name (the
//! worker then fills an orphaned inode that is freed on close), and a hardlink to the file shares the inode,
//! which receives its contents whenever the worker gets to it. The unpacker waits for the pool
//! ([`Writers::wait`]) before anything that reads or sets a pending file's metadata, and before directory
//! metadata is applied at the end.
//!
//! Memory and descriptors are bounded: at most the budget given to [`Writers::new`] in bytes and [`MAX_JOBS`] files are in
//! flight; a submitter waits for room.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use super::fsops::{self, Meta};

/// Files in flight at most (each holds an open descriptor; several unpackers may run at once, and the usual
/// soft limit is 1024 descriptors).
pub(crate) const MAX_JOBS: usize = 64;
/// Recycled buffers kept at most, and the bytes they may hold in all.
const SPARE_BUFFERS: usize = 64;
const SPARE_BYTES: usize = 16 << 20;
/// Files and bytes queued before an idle writer is woken: waking a thread per small file would cost more
/// than writing it.
const WAKE_JOBS: usize = 16;
const WAKE_BYTES: usize = 1 << 20;

/// One regular file to fill: created and opened by the unpacker.
pub(crate) struct FileJob {
    /// The new file, open for writing.
    pub file: File,
    /// Its whole content.
    pub data: Vec<u8>,
    /// Owner, mode (with setuid/setgid/sticky) and mtime to apply after the content.
    pub meta: Meta,
    /// Xattrs to apply.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Its path in the target (for errors).
    pub path: Vec<u8>,
}

/// The first failure of a worker: the file's path in the target, and the error.
pub(crate) type Failure = (Vec<u8>, io::Error);

struct State {
    queue: VecDeque<FileJob>,
    /// Bytes of the files queued or being written.
    bytes: usize,
    /// Files queued or being written.
    jobs: usize,
    failed: Option<Failure>,
    skipped_xattrs: u64,
    closing: bool,
    spare: Vec<Vec<u8>>,
    /// The capacity of the spare buffers.
    spare_bytes: usize,
    /// Bytes of the files queued and not yet taken by a writer.
    queued_bytes: usize,
    /// Workers waiting for a job (so that queueing wakes one only when one sleeps).
    idle: usize,
    /// Whether the submitter waits for a job to finish (so that workers wake it only then).
    waiting: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued, or the pool closes.
    queued: Condvar,
    /// Signalled when a job is done.
    done: Condvar,
    chown: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; if one did, the state is still consistent enough to
        // report and shut down.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a job to finish, first waking idle workers if jobs are queued (they may be waiting for a
    /// batch to fill).
    fn wait_done<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if st.idle > 0 && !st.queue.is_empty() {
            self.queued.notify_all();
        }
        st.waiting = true;
        self.done.wait(st).unwrap_or_else(PoisonError::into_inner)
    }
}

/// A pool of writer threads, started on first use.
pub(crate) struct Writers {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    want: usize,
    budget: usize,
}

impl Writers {
    /// A pool of `threads` writers (none are started before the first [`submit`](Writers::submit)) keeping at
    /// most `budget` bytes in flight; `chown` sets owners from the metadata.
    pub(crate) fn new(threads: usize, budget: usize, chown: bool) -> Writers {
        Writers {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    bytes: 0,
                    jobs: 0,
                    failed: None,
                    skipped_xattrs: 0,
                    closing: false,
                    spare: Vec::new(),
                    spare_bytes: 0,
                    queued_bytes: 0,
                    idle: 0,
                    waiting: false,
                }),
                queued: Condvar::new(),
                done: Condvar::new(),
                chown,
            }),
            threads: Vec::new(),
            want: threads,
            budget,
        }
    }

    /// An empty buffer with room for `len` bytes: the smallest spare one that fits, or a new one.
    pub(crate) fn buffer(&self, len: usize) -> Vec<u8> {
        let mut st = self.shared.lock();
        let best = (st.spare.iter().enumerate())
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let b = st.spare.swap_remove(i);
                st.spare_bytes -= b.capacity();
                b
            }
            None => Vec::with_capacity(len),
        }
    }

    /// Queues `job`, waiting while the pool is full. Fails with the first failure of an earlier job, if any
    /// (`job` is then dropped unwritten). If no thread can be started, writes it on the calling thread.
    pub(crate) fn submit(&mut self, job: FileJob) -> Result<(), Failure> {
        if self.threads.len() < self.want {
            self.start();
        }
        if self.threads.is_empty() {
            let skipped = write_file(job, self.shared.chown)?;
            self.shared.lock().skipped_xattrs += skipped;
            return Ok(());
        }
        let len = job.data.len();
        let mut st = self.shared.lock();
        loop {
            if let Some(f) = st.failed.take() {
                return Err(f);
            }
            let full = st.jobs >= MAX_JOBS || (st.jobs > 0 && st.bytes + len > self.budget);
            if !full {
                break;
            }
            st = self.shared.wait_done(st);
        }
        st.bytes += len;
        st.jobs += 1;
        st.queued_bytes += len;
        st.queue.push_back(job);
        let wake = st.idle > 0 && (st.queue.len() >= WAKE_JOBS || st.queued_bytes >= WAKE_BYTES);
        drop(st);
        if wake {
            self.shared.queued.notify_one();
        }
        Ok(())
    }

    /// Waits until every submitted file is written; fails with the first failure, if any.
    pub(crate) fn wait(&self) -> Result<(), Failure> {
        let mut st = self.shared.lock();
        while st.jobs > 0 {
            st = self.shared.wait_done(st);
        }
        match st.failed.take() {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Xattrs the workers skipped so far.
    pub(crate) fn skipped_xattrs(&self) -> u64 {
        self.shared.lock().skipped_xattrs
    }

    /// Starts the missing threads; a thread that cannot be started is simply not there.
    fn start(&mut self) {
        while self.threads.len() < self.want {
            let shared = Arc::clone(&self.shared);
            match thread::Builder::new()
                .name("strata-write".into())
                .spawn(move || work(&shared))
            {
                Ok(t) => self.threads.push(t),
                Err(_) => {
                    self.want = self.threads.len();
                    break;
                }
            }
        }
    }
}

impl Drop for Writers {
    /// Drops what is still queued (the unpack was abandoned, or has already waited), lets running writes end,
    /// and joins the threads.
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            let dropped = st.queue.len();
            st.queue.clear();
            st.jobs -= dropped;
        }
        self.shared.queued.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A worker: writes queued files until the pool closes.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if let Some(job) = st.queue.pop_front() {
                    st.queued_bytes -= job.data.len();
                    break job;
                }
                if st.closing {
                    return;
                }
                st.idle += 1;
                st = shared
                    .queued
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
                st.idle -= 1;
            }
        };
        let len = job.data.len();
        let (result, buf) = write_file_keep(job, shared.chown);
        let mut st = shared.lock();
        st.bytes -= len;
        st.jobs -= 1;
        match result {
            Ok(skipped) => st.skipped_xattrs += skipped,
            Err(f) => {
                if st.failed.is_none() {
                    st.failed = Some(f);
                }
            }
        }
        if st.spare.len() < SPARE_BUFFERS && st.spare_bytes + buf.capacity() <= SPARE_BYTES {
            st.spare_bytes += buf.capacity();
            st.spare.push(buf);
        }
        let wake = std::mem::take(&mut st.waiting);
        drop(st);
        if wake {
            shared.done.notify_all();
        }
    }
}

/// Writes one file: its content, then owner, mode, xattrs and times (in the order that keeps each, see
/// [`fsops::set_fd_meta`]), then closes it. Returns the number of skipped xattrs.
pub(crate) fn write_file(job: FileJob, chown: bool) -> Result<u64, Failure> {
    write_file_keep(job, chown).0
}

/// [`write_file`], also giving back the emptied buffer.
fn write_file_keep(job: FileJob, chown: bool) -> (Result<u64, Failure>, Vec<u8>) {
    let FileJob {
        mut file,
        mut data,
        meta,
        xattrs,
        path,
    } = job;
    let result = file
        .write_all(&data)
        .and_then(|()| {
            fsops::set_fd_meta(file.as_fd(), &meta, Some(meta.mode), chown, &xattrs, true)
                .map_err(io::Error::from)
        })
        .map_err(|e| (path, e));
    drop(file);
    data.clear();
    (result, data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn meta() -> Meta {
        Meta {
            uid: 0,
            gid: 0,
            mode: 0o644,
            mtime: 1_600_000_000,
            mtime_nsec: 0,
        }
    }

    fn job(file: File, data: &[u8], path: &str) -> FileJob {
        FileJob {
            file,
            data: data.to_vec(),
            meta: meta(),
            xattrs: Vec::new(),
            path: path.as_bytes().to_vec(),
        }
    }

    #[test]
    fn writes_within_the_budget_and_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writers::new(3, 1000, false);
        for i in 0..200 {
            let p = dir.path().join(format!("f{i}"));
            let f = File::create(&p).unwrap();
            w.submit(job(f, &vec![b'a' + (i % 26) as u8; 300], "f"))
                .unwrap();
            let st = w.shared.lock();
            assert!(
                st.bytes <= 1000 && st.jobs <= MAX_JOBS,
                "{} bytes",
                st.bytes
            );
        }
        w.wait().unwrap();
        for i in 0..200 {
            let got = std::fs::read(dir.path().join(format!("f{i}"))).unwrap();
            assert_eq!(got, vec![b'a' + (i % 26) as u8; 300]);
        }
        // A file over the budget still goes, alone.
        let f = File::create(dir.path().join("big")).unwrap();
        w.submit(job(f, &[7; 5000], "big")).unwrap();
        w.wait().unwrap();
        assert_eq!(std::fs::read(dir.path().join("big")).unwrap().len(), 5000);
    }

    #[test]
    fn a_failure_is_reported_once_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ro");
        std::fs::write(&p, "").unwrap();
        for threads in [0, 2] {
            let mut w = Writers::new(threads, 1 << 20, false);
            // Opened read-only: writing fails (EBADF).
            let r = w.submit(job(File::open(&p).unwrap(), b"data", "dir/ro"));
            let failure = match r {
                Err(f) => f,
                Ok(()) => w.wait().unwrap_err(),
            };
            assert_eq!(failure.0, b"dir/ro");
            w.wait().unwrap();
            let f = File::create(dir.path().join("ok")).unwrap();
            w.submit(job(f, b"fine", "ok")).unwrap();
            w.wait().unwrap();
        }
    }

    #[test]
    fn dropping_the_pool_ends_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writers::new(2, 1 << 20, false);
        for i in 0..50 {
            let f = File::create(dir.path().join(format!("f{i}"))).unwrap();
            w.submit(job(f, b"x", "f")).unwrap();
        }
        drop(w); // joins; what was still queued is not written, nothing hangs
    }
}
