//! The few system calls std does not wrap, behind safe functions: file locks, poll,
//! process-group signals, pidfds, the signal pipe. Every `unsafe` block of nexus outside
//! the SSH transport lives here, each with the reason it is sound.
//! Must not: hold policy (callers decide what to lock, poll or kill, and when).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Take an exclusive lock on `file`, waiting for it (released when the file is closed).
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_EX)
}

/// Take an exclusive lock on `file` if no other open file holds one. Ok(false): held.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor owned by `file`, alive for the call.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What to wait for on one descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub fd: Option<RawFd>,
    pub read: bool,
    pub write: bool,
}

impl Wait {
    pub fn read(fd: Option<RawFd>) -> Wait {
        Wait {
            fd,
            read: true,
            write: false,
        }
    }
}

/// poll(2) over `waits` for at most `timeout`; per entry, whether it is ready (readable,
/// writable, hung up or in error). An entry with no descriptor is never ready.
/// Interrupted by a signal: nothing ready.
pub fn poll(waits: &[Wait], timeout: Duration) -> Vec<bool> {
    let mut fds: Vec<libc::pollfd> = waits
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd.unwrap_or(-1),
            events: if w.read { libc::POLLIN } else { 0 } | if w.write { libc::POLLOUT } else { 0 },
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid array of pollfd of the given length; negative fds are
    // ignored by poll.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return vec![false; waits.len()];
    }
    fds.iter().map(|f| f.revents != 0).collect()
}

/// Whether `fd` has hung up or failed (a closed peer), without waiting.
pub fn hung_up(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Send `signal` to every process of group `pgid`. Errors (no such group) are ignored.
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    if pgid == 0 || pgid > i32::MAX as u32 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Whether process group `pgid` still has members (zombies included).
pub fn group_exists(pgid: u32) -> bool {
    if pgid == 0 || pgid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(-(pgid as i32), 0) == 0 }
}

/// A pidfd for `pid` (Linux 5.3+): readable when the process exits. None where the kernel
/// has none.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A pipe whose ends are non-blocking and close-on-exec: (read, write). They are never
/// closed (the signal pipe lives as long as the process).
pub fn pipe_nonblocking() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Write one byte to `fd`, ignoring errors. Async-signal-safe (write(2) only).
pub fn write_byte(fd: RawFd) {
    let b = 1u8;
    // SAFETY: write(2) of one byte from a live stack variable; errors are ignored.
    unsafe {
        libc::write(fd, (&b as *const u8).cast(), 1);
    }
}

/// Run `handler` on SIGINT and SIGTERM (restarting interrupted calls), and ignore SIGPIPE
/// (a closed pipe to a child is an error to report, not a reason to die). The handler
/// must only do async-signal-safe work.
pub fn on_interrupt(handler: extern "C" fn(libc::c_int)) {
    // SAFETY: sigaction with a zeroed, then filled, struct; the handler is a plain
    // extern "C" function whose safety the caller promises.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Bytes available to an unprivileged user on the file system holding `path`.
#[allow(clippy::useless_conversion)] // the field types differ between targets
pub fn free_space(path: &std::path::Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: statvfs reads a NUL-terminated path and fills the zeroed struct we pass.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; both pointers are valid for the call.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}
