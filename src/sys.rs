//! The few system calls std does not wrap, behind safe functions: file locks, poll,
//! process-group signals, pidfds, the signal pipe, a TCP connect that a cancellation can
//! interrupt, shutdown(2) and recv(2) without waiting. Every `unsafe` block of nexus outside
//! the SSH transport lives here, each with the reason it is sound.
//! Must not: hold policy (callers decide what to lock, poll or kill, and when).

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

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

/// Take a shared lock on `file` if no other open file holds an exclusive one. Ok(false):
/// held.
pub fn try_lock_shared(file: &File) -> io::Result<bool> {
    match flock(file, libc::LOCK_SH | libc::LOCK_NB) {
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

/// Whether process group `pgid` has a member that is not a zombie (a zombie waits for a
/// parent to reap it; it runs nothing). Scans /proc: for the end of a session, not loops.
pub fn group_running(pgid: u32) -> bool {
    if !group_exists(pgid) {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .and_then(live_group_of)
            == Some(pgid)
    })
}

/// The process group of `pid`, unless it is a zombie or gone (from /proc/PID/stat).
pub fn live_group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses): state, ppid, pgrp.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let pgrp = f.nth(1)?.parse().ok()?;
    (state != "Z").then_some(pgrp)
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

/// Make a file past its size limit (RLIMIT_FSIZE) a write error to report, not death:
/// SIGXFSZ gets a handler that does nothing. A handler, not SIG_IGN, because handlers
/// are reset by exec: the commands nexus starts keep the default.
pub fn survive_file_size_limit() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: sigaction with a zeroed, then filled, struct; the handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = nothing as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGXFSZ, &sa, std::ptr::null_mut());
    }
}

/// Open `path` for reading without waiting for a writer: with O_NONBLOCK, opening a
/// FIFO returns at once (reads from a regular file are not affected by the flag).
pub fn open_read_nonblocking(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
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

/// The real uid.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// (name, home directory) of `uid` from the passwd database.
pub fn passwd(uid: u32) -> Option<(String, String)> {
    use std::ffi::CStr;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter; buf outlives the call and
        // the strings read from pwd point into buf, copied before it is dropped.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            if rc != 0 || result.is_null() || pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
                return None;
            }
            let name = CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
            let dir = CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned();
            return Some((name, dir));
        }
    }
}

/// This machine's host name (empty when it cannot be read).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The port of a TCP service name from the services database (`ssh` -> 22).
pub fn service_port(name: &str) -> Option<u16> {
    let name = std::ffi::CString::new(name).ok()?;
    let proto = std::ffi::CString::new("tcp").ok()?;
    // SAFETY: both strings are valid NUL-terminated C strings; the returned entry is
    // read at once (getservbyname's static buffer) and not kept.
    unsafe {
        let se = libc::getservbyname(name.as_ptr(), proto.as_ptr());
        if se.is_null() {
            return None;
        }
        let port = u16::from_be((*se).s_port as u16);
        (port > 0).then_some(port)
    }
}

/// Whether `name` is one numeric address (IPv4 or IPv6, no lookup).
pub fn is_numeric_address(name: &str) -> bool {
    let (Ok(c), Ok(port)) = (std::ffi::CString::new(name), std::ffi::CString::new("22")) else {
        return false;
    };
    // SAFETY: hints is a valid zeroed addrinfo; res is freed when set, and read only
    // before that.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        hints.ai_flags = libc::AI_NUMERICHOST | libc::AI_NUMERICSERV;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), port.as_ptr(), &hints, &mut res) != 0 || res.is_null() {
            return false;
        }
        let single = (*res).ai_next.is_null();
        libc::freeaddrinfo(res);
        single
    }
}

/// Turn off echo on terminal `fd` (a newline is still echoed); the old mode, to give to
/// `restore_echo`. None when `fd` is not a terminal.
pub fn echo_off(fd: RawFd) -> Option<libc::termios> {
    // SAFETY: termios calls on a descriptor the caller keeps open; a zeroed termios is a
    // valid out-parameter.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return None;
        }
        let old = t;
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        libc::tcsetattr(fd, libc::TCSANOW, &t);
        Some(old)
    }
}

/// Put back the terminal mode `echo_off` returned.
pub fn restore_echo(fd: RawFd, old: &libc::termios) {
    // SAFETY: restoring a mode read from this terminal.
    unsafe {
        libc::tcsetattr(fd, libc::TCSANOW, old);
    }
}

/// A new pipe (read end, write end), both close-on-exec. (std::io::pipe does this from
/// Rust 1.87; nexus builds with 1.85.)
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: pipe2 writes two new descriptors into `fds` or fails and writes nothing.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Ask for a pipe buffer of `size` bytes (Linux; the kernel may give less or refuse).
/// Fewer, larger hand-offs between a command that prints a lot and nexus.
pub fn grow_pipe(fd: RawFd, size: usize) {
    let size = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: fcntl on a descriptor the caller keeps open; failure is harmless.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, size);
    }
}

/// `addr` as a sockaddr for connect(2), and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero bytes are a valid sockaddr_in.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero bytes are a valid sockaddr_in6.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A TCP connection to `addr`, made within `timeout`: `TimedOut` after it, `Interrupted`
/// as soon as `wake` becomes readable (a cancellation). The stream comes back blocking.
pub fn tcp_connect(
    addr: &SocketAddr,
    timeout: Duration,
    wake: Option<RawFd>,
) -> io::Result<TcpStream> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes for the duration of the call.
    let r = unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        wait_connected(socket.as_raw_fd(), timeout, wake)?;
    }
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Wait for a non-blocking connect(2) on `fd` to finish; its result.
fn wait_connected(fd: RawFd, timeout: Duration, wake: Option<RawFd>) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let socket = Wait {
        fd: Some(fd),
        read: false,
        write: true,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // A signal interrupts poll (nothing ready): the loop waits again for what is left.
        let ready = poll(
            &[socket, Wait::read(wake)],
            left.max(Duration::from_millis(1)),
        );
        if ready[1] {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        if ready[0] {
            break;
        }
    }
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `err`, an int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// shutdown(2) both directions of socket `fd`: a read or write blocked on it (in this
/// or another thread) returns at once, and so does every later one. The descriptor stays
/// open. Errors (not a socket, not connected) are ignored.
pub fn shutdown(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown(2) on a descriptor the caller keeps open; no memory is touched.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
    }
}

/// recv(2) from socket `fd` without waiting: Ok(0) at the end of the stream,
/// `WouldBlock` when nothing is queued. With `peek` the bytes stay queued.
pub fn recv_now(fd: BorrowedFd<'_>, buf: &mut [u8], peek: bool) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | if peek { libc::MSG_PEEK } else { 0 };
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Raise the soft limit of open files to the hard limit; (soft, hard) afterwards.
pub fn raise_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (1024, 1024);
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

type AddChdir =
    unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const libc::c_char) -> libc::c_int;

/// posix_spawn_file_actions_addchdir_np, where the C library has it (glibc 2.29, musl
/// 1.1.24), looked up when nexus runs as std looks it up: linked directly, nexus would not
/// build or start on an older glibc. None there, and in static binaries (dlsym finds
/// nothing in them).
fn addchdir() -> Option<AddChdir> {
    static F: std::sync::OnceLock<Option<AddChdir>> = std::sync::OnceLock::new();
    *F.get_or_init(|| {
        let name = c"posix_spawn_file_actions_addchdir_np";
        // SAFETY: dlsym with a NUL-terminated name; the symbol, where it exists, is the C
        // library's function of this signature.
        unsafe {
            let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
            (!p.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, AddChdir>(p))
        }
    })
}

/// Whether `spawn` can start a command in a directory other than nexus's.
pub fn can_spawn_in_dir() -> bool {
    addchdir().is_some()
}

/// A process `spawn` started; reaped with waitpid(2), as std's `Child` is.
#[derive(Debug)]
pub struct Spawned {
    pid: libc::pid_t,
    status: Option<std::process::ExitStatus>,
}

impl Spawned {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// The exit status if the process has exited (it is reaped then), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    /// Wait for the exit.
    pub fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        loop {
            if let Some(s) = self.reap(0)? {
                return Ok(s);
            }
        }
    }

    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<std::process::ExitStatus>> {
        use std::os::unix::process::ExitStatusExt;
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let mut raw: libc::c_int = 0;
        // SAFETY: waitpid on our own child, writing its status into a local.
        let r = unsafe { libc::waitpid(self.pid, &mut raw, flags) };
        match r {
            0 => Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            _ => {
                let s = std::process::ExitStatus::from_raw(raw);
                self.status = Some(s);
                Ok(Some(s))
            }
        }
    }
}

/// The signals a started command gets with their default action: all but those nexus
/// was started with ignored (`nohup nexus ...` keeps SIGHUP ignored in its commands, as
/// a shell would). SIGPIPE is always default: nexus ignores it for itself, its commands
/// must not inherit that. Looked up once, at the first spawn.
fn default_signals() -> &'static libc::sigset_t {
    static SET: std::sync::OnceLock<SigSet> = std::sync::OnceLock::new();
    &SET.get_or_init(|| {
        // SAFETY: sigemptyset/sigaddset on a local set; sigaction only reads the current
        // disposition of each signal into a zeroed struct.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in 1..65 {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                let mut old: libc::sigaction = std::mem::zeroed();
                let ignored = libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN;
                if !ignored || sig == libc::SIGPIPE {
                    // Fails for the C library's internal signals: they are left as they are.
                    libc::sigaddset(&mut set, sig);
                }
            }
            SigSet(set)
        }
    })
    .0
}

struct SigSet(libc::sigset_t);

/// Start `program` (an absolute path) with `argv` and `envp` (each `K=V`), in `dir` if
/// given, its stdin, stdout and stderr the given descriptors, as the leader of a new
/// process group, with no signal blocked and every signal but the ignored ones at its
/// default action.
///
/// It is std's `Command::spawn` through posix_spawn(3), minus one thing: std leaves the
/// C library to reset each signal's disposition in the child, which glibc does by
/// asking and then setting all 64 of them (128 system calls in the vfork child, while
/// nexus waits); with the set of signals to reset given, it sets them without asking.
pub fn spawn(
    program: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    envp: &[&std::ffi::CStr],
    dir: Option<&std::ffi::CStr>,
    stdio: [BorrowedFd<'_>; 3],
) -> io::Result<Spawned> {
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    };
    let ptrs = |v: &mut dyn Iterator<Item = &std::ffi::CStr>| -> Vec<*mut libc::c_char> {
        v.map(|s| s.as_ptr() as *mut libc::c_char)
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect()
    };
    let argv = ptrs(&mut argv.iter().map(|a| a.as_c_str()));
    let envp = ptrs(&mut envp.iter().copied());
    let defaults = default_signals();
    // SAFETY: the attribute and file-action objects are initialized before use and
    // destroyed on every path (the guards); every pointer handed to posix_spawn (the
    // program, the NULL-terminated argv and envp arrays, the signal sets) outlives the
    // call; the descriptors are borrowed, so open for its duration.
    unsafe {
        /// Destroys an initialized posix_spawn object when dropped.
        struct Destroy<T>(*mut T, unsafe extern "C" fn(*mut T) -> libc::c_int);
        impl<T> Drop for Destroy<T> {
            fn drop(&mut self) {
                // SAFETY: the object was initialized before the guard was made, and is
                // destroyed once, here.
                unsafe { (self.1)(self.0) };
            }
        }
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check(libc::posix_spawnattr_init(&mut attr))?;
        let _attr = Destroy(&mut attr, libc::posix_spawnattr_destroy);
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        let _actions = Destroy(&mut actions, libc::posix_spawn_file_actions_destroy);
        for (target, fd) in stdio.iter().enumerate() {
            // A descriptor already at its place would keep its close-on-exec flag.
            if fd.as_raw_fd() <= 2 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a standard descriptor to hand over is one of 0, 1, 2",
                ));
            }
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                fd.as_raw_fd(),
                target as libc::c_int,
            ))?;
        }
        if let Some(dir) = dir {
            let Some(addchdir) = addchdir() else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this C library cannot change directory in posix_spawn",
                ));
            };
            check(addchdir(&mut actions, dir.as_ptr()))?;
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
        check(libc::posix_spawnattr_setsigdefault(&mut attr, defaults))?;
        check(libc::posix_spawnattr_setpgroup(&mut attr, 0))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(
            &mut attr,
            flags as libc::c_short,
        ))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions,
            &attr,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        Ok(Spawned { pid, status: None })
    }
}
