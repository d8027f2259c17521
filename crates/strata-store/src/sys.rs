//! The one system call strata makes without a safe wrapper: `fcntl(2)` with an open-file-description lock.
//!
//! rustix's `fcntl_lock` takes classic POSIX record locks (`F_SETLKW`), which belong to the *process*: two
//! threads never conflict, and closing any descriptor of the file drops them all. Open-file-description (OFD)
//! locks (`F_OFD_SETLKW`, Linux ≥ 3.15) belong to the descriptor instead, so each lock strata takes excludes
//! every other descriptor — in this process or another — and conflicts with the POSIX locks containers/storage
//! takes on the same file (the kernel checks both kinds against each other).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The kind of lock to take on a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// `F_RDLCK`: many holders at once.
    Shared,
    /// `F_WRLCK`: one holder, no shared holders.
    Exclusive,
}

/// Locks the whole file behind `fd` (start 0, length 0 = to the end, however it grows) with an OFD lock.
/// `wait`: block until granted (`F_OFD_SETLKW`, retried on `EINTR`); otherwise fail at once with
/// `WouldBlock` if another holder conflicts (`F_OFD_SETLK`). The lock is released when every descriptor of
/// this open file description is closed.
pub(crate) fn ofd_lock(fd: BorrowedFd<'_>, kind: LockKind, wait: bool) -> io::Result<()> {
    let l_type = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value, and every field the
    // kernel reads is set below (l_pid must be 0 for OFD locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    lock.l_pid = 0;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: `fd` is a live descriptor borrowed for the duration of the call, and `lock` is a valid,
        // exclusively borrowed `struct flock` that outlives it; F_OFD_SETLK(W) reads it and may write it.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut lock as *mut libc::flock) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN | libc::EACCES) if !wait => {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, err));
            }
            _ => return Err(err),
        }
    }
}
