//! Plain descriptor I/O outside the runtime's reactor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Writes what `fd` (a non-blocking pipe or socket) takes of `buf` now, without waiting:
/// `ErrorKind::WouldBlock` when it takes nothing. For a descriptor a tokio object owns, this
/// bypasses its readiness, which stays correct: a later write through tokio that finds the
/// descriptor full clears it and waits.
pub(crate) fn write_now(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is a descriptor borrowed for the duration of the call, and `buf` is a
    // valid slice of `buf.len()` readable bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
