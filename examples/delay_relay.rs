//! A TCP relay on 127.0.0.1 that adds a fixed round-trip delay, for kernels without
//! netem: the same relay as `scripts/delay-relay.py`, in one thread on epoll, so that on
//! a 2-core benchmark machine it takes a fraction of the CPU the Python one takes (the
//! relay's CPU is not a cost a real network puts on the client's or the server's cores).
//! `scripts/fleet.sh` builds and starts it when `BENCH_RTT_MS` is set.
//!
//! usage: delay_relay --rtt-ms MS --forward LISTEN:TARGET [--forward ...]
//!                    [--pid-file FILE] [--max-seconds S]
//!
//! Listens on 127.0.0.1:LISTEN for each --forward and connects every client to
//! 127.0.0.1:TARGET. Bytes going either way are held for MS/2 milliseconds before they
//! are passed on, in order, so a request and its answer together take MS longer than
//! over plain loopback. A half-close (EOF) travels with the same delay. At most 8 MiB
//! wait in one direction of one connection; reading from that side pauses until they
//! are written. SIGTERM or SIGINT (the default action) stops it, as does --max-seconds
//! (default 6 h). It never listens on or connects to anything but 127.0.0.1.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

const READ_SIZE: usize = 64 * 1024;
const HIGH_WATER: usize = 8 * 1024 * 1024;
const LISTENER: u64 = 1 << 63;
/// The epoll token of the timer descriptor.
const TIMER: u64 = 1 << 62;

/// One direction of one connection: what was read, and when it may be written.
#[derive(Default)]
struct Lane {
    /// (due, bytes); empty bytes stand for EOF.
    items: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes of the front item already written.
    written: usize,
    queued: usize,
    read_done: bool,
    delivered: bool,
}

struct Conn {
    /// [client, server]; lane 0 carries client -> server, lane 1 server -> client.
    socks: [TcpStream; 2],
    lanes: [Lane; 2],
    /// The events each socket is registered for; 0: not registered (a socket waiting for
    /// nothing is taken out of the epoll set, or a hung-up one would wake it at once,
    /// again and again).
    registered: [u32; 2],
}

impl Conn {
    /// The epoll events socket `side` should wait for: input while its lane reads and
    /// has room, output while the lane into it has bytes due that did not fit.
    fn interest(&self, side: usize, now: Instant) -> u32 {
        let inbound = &self.lanes[side];
        let outbound = &self.lanes[1 - side];
        let mut ev = 0;
        if !inbound.read_done && inbound.queued <= HIGH_WATER {
            ev |= libc::EPOLLIN as u32;
        }
        if outbound.items.front().is_some_and(|(due, _)| *due <= now) {
            ev |= libc::EPOLLOUT as u32;
        }
        ev
    }
}

struct Relay {
    epoll: RawFd,
    /// A timerfd armed for the earliest due chunk: epoll_wait's own timeout counts in
    /// whole milliseconds, which made every delayed chunk up to 1 ms late (the login
    /// through the relay took 35 ms longer than through the Python relay).
    timer: RawFd,
    delay: Duration,
    listeners: Vec<(TcpListener, u16)>,
    conns: HashMap<u64, Conn>,
    next_id: u64,
    /// (due, connection, lane) in due order (earliest first through Reverse).
    timers: BinaryHeap<std::cmp::Reverse<(Instant, u64, usize)>>,
}

fn ctl(epoll: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: a valid epoll descriptor and socket, and an event struct that outlives the call.
    let rc = unsafe { libc::epoll_ctl(epoll, op, fd, &mut ev) };
    assert!(
        rc == 0 || op == libc::EPOLL_CTL_DEL,
        "epoll_ctl: {}",
        std::io::Error::last_os_error()
    );
}

impl Relay {
    fn accept(&mut self, index: usize) {
        loop {
            let (client, target) = match self.listeners[index].0.accept() {
                Ok((c, _)) => (c, self.listeners[index].1),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("delay_relay: accept: {e}");
                    return;
                }
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue; // the client sees its connection closed
            };
            let id = self.next_id;
            self.next_id += 1;
            for s in [&client, &server] {
                let _ = s.set_nodelay(true);
                s.set_nonblocking(true).expect("nonblocking socket");
            }
            let conn = Conn {
                socks: [client, server],
                lanes: Default::default(),
                registered: [0; 2],
            };
            self.conns.insert(id, conn);
            self.update(id);
        }
    }

    /// Read what socket `side` of `id` has into its lane.
    fn read(&mut self, id: u64, side: usize, buf: &mut [u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let due = Instant::now() + self.delay;
        loop {
            let lane = &mut c.lanes[side];
            if lane.read_done || lane.queued > HIGH_WATER {
                break;
            }
            match c.socks[side].read(buf) {
                Ok(0) => {
                    lane.read_done = true;
                    lane.items.push_back((due, Vec::new()));
                    self.timers.push(std::cmp::Reverse((due, id, side)));
                }
                Ok(n) => {
                    lane.queued += n;
                    lane.items.push_back((due, buf[..n].to_vec()));
                    self.timers.push(std::cmp::Reverse((due, id, side)));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(id),
            }
        }
        self.update(id);
    }

    /// Write lane `lane` of `id` as far as its due items and the socket allow.
    fn flush(&mut self, id: u64, lane: usize) {
        let now = Instant::now();
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let out = &c.socks[1 - lane];
        let l = &mut c.lanes[lane];
        while let Some((due, data)) = l.items.front() {
            if *due > now {
                break;
            }
            if data.is_empty() {
                let _ = out.shutdown(Shutdown::Write);
                l.items.pop_front();
                l.delivered = true;
                break;
            }
            match (&*out).write(&data[l.written..]) {
                Ok(n) => {
                    l.written += n;
                    if l.written == data.len() {
                        l.queued -= data.len();
                        l.written = 0;
                        l.items.pop_front();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(id),
            }
        }
        self.update(id);
    }

    /// Set both sockets' interest, or close the connection when both EOFs are delivered.
    fn update(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.lanes[0].delivered && c.lanes[1].delivered {
            return self.close(id);
        }
        let now = Instant::now();
        for side in 0..2 {
            let (want, had) = (c.interest(side, now), c.registered[side]);
            if want == had {
                continue;
            }
            let op = match (had, want) {
                (0, _) => libc::EPOLL_CTL_ADD,
                (_, 0) => libc::EPOLL_CTL_DEL,
                _ => libc::EPOLL_CTL_MOD,
            };
            ctl(
                self.epoll,
                op,
                c.socks[side].as_raw_fd(),
                want,
                id << 1 | side as u64,
            );
            c.registered[side] = want;
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            for side in 0..2 {
                if c.registered[side] != 0 {
                    ctl(
                        self.epoll,
                        libc::EPOLL_CTL_DEL,
                        c.socks[side].as_raw_fd(),
                        0,
                        0,
                    );
                }
            }
        }
    }

    /// Arm the timer to fire `after` from now (at least 1 ns: zero would disarm it).
    fn arm(&self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: our timerfd and a valid itimerspec.
        let rc = unsafe { libc::timerfd_settime(self.timer, 0, &spec, std::ptr::null_mut()) };
        assert!(
            rc == 0,
            "timerfd_settime: {}",
            std::io::Error::last_os_error()
        );
    }

    fn run(&mut self, until: Instant) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            while let Some(&std::cmp::Reverse((due, id, lane))) = self.timers.peek() {
                if due > now {
                    break;
                }
                self.timers.pop();
                self.flush(id, lane);
            }
            let next = self.timers.peek().map_or(until, |r| r.0 .0).min(until);
            self.arm(next.saturating_duration_since(now));
            // SAFETY: `events` has room for the number of events passed.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    -1,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert!(e.kind() == ErrorKind::Interrupted, "epoll_wait: {e}");
                continue;
            }
            for ev in &events[..n as usize] {
                let (token, flags) = (ev.u64, ev.events);
                if token == TIMER {
                    let mut expirations = [0u8; 8];
                    // SAFETY: reading 8 bytes into an 8-byte buffer from our timerfd.
                    unsafe { libc::read(self.timer, expirations.as_mut_ptr().cast(), 8) };
                    continue;
                }
                if token & LISTENER != 0 {
                    self.accept((token & !LISTENER) as usize);
                    continue;
                }
                let (id, side) = (token >> 1, (token & 1) as usize);
                if flags & (libc::EPOLLOUT as u32) != 0 {
                    self.flush(id, 1 - side);
                }
                if flags & ((libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0 {
                    self.read(id, side, &mut buf);
                }
            }
        }
    }
}

struct Options {
    rtt_ms: f64,
    forwards: Vec<(u16, u16)>,
    pid_file: Option<String>,
    max_seconds: f64,
}

fn options() -> Options {
    let mut rtt_ms: Option<f64> = None;
    let mut forwards: Vec<(u16, u16)> = Vec::new();
    let mut pid_file: Option<String> = None;
    let mut max_seconds = 6.0 * 3600.0;
    let mut args = std::env::args().skip(1);
    let usage = "usage: delay_relay --rtt-ms MS --forward LISTEN:TARGET [--forward ...] [--pid-file FILE] [--max-seconds S]";
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs a value\n{usage}"))
        };
        match a.as_str() {
            "--rtt-ms" => rtt_ms = Some(value().parse().expect("--rtt-ms: a number")),
            "--forward" => {
                let v = value();
                let (l, t) = v.split_once(':').expect("--forward LISTEN:TARGET");
                forwards.push((
                    l.parse().expect("LISTEN port"),
                    t.parse().expect("TARGET port"),
                ));
            }
            "--pid-file" => pid_file = Some(value()),
            "--max-seconds" => max_seconds = value().parse().expect("--max-seconds: a number"),
            _ => panic!("unknown argument {a}\n{usage}"),
        }
    }
    assert!(!forwards.is_empty(), "{usage}");
    Options {
        rtt_ms: rtt_ms.expect(usage),
        forwards,
        pid_file,
        max_seconds,
    }
}

fn main() {
    let Options {
        rtt_ms,
        forwards,
        pid_file,
        max_seconds,
    } = options();
    // SAFETY: plain syscall; the descriptor is owned by the relay until exit.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        epoll >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: plain syscall; the descriptor is owned by the relay until exit.
    let timer = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    };
    assert!(
        timer >= 0,
        "timerfd_create: {}",
        std::io::Error::last_os_error()
    );
    ctl(
        epoll,
        libc::EPOLL_CTL_ADD,
        timer,
        libc::EPOLLIN as u32,
        TIMER,
    );
    let mut relay = Relay {
        epoll,
        timer,
        delay: Duration::from_secs_f64(rtt_ms / 2000.0),
        listeners: Vec::new(),
        conns: HashMap::new(),
        next_id: 0,
        timers: BinaryHeap::new(),
    };
    for (i, (listen, target)) in forwards.into_iter().enumerate() {
        // std's listener has a backlog of 128; sshd's own is 128 too, and nexus paces
        // its handshakes per endpoint well below that.
        let l = TcpListener::bind(("127.0.0.1", listen))
            .unwrap_or_else(|e| panic!("listen on 127.0.0.1:{listen}: {e}"));
        l.set_nonblocking(true).expect("nonblocking listener");
        ctl(
            epoll,
            libc::EPOLL_CTL_ADD,
            l.as_raw_fd(),
            libc::EPOLLIN as u32,
            LISTENER | i as u64,
        );
        relay.listeners.push((l, target));
    }
    if let Some(p) = &pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).expect("pid file");
    }
    relay.run(Instant::now() + Duration::from_secs_f64(max_seconds));
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
}
