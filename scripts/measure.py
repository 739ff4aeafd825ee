#!/usr/bin/env python3
"""Run a command once; print what it cost as one JSON object.

usage: measure.py [--server-pidfile FILE]... [--timeout SEC] [--log FILE] -- CMD [ARG]...

Fields:
  cmd, rc        the command and its exit status (null if it was killed at --timeout)
  wall_s         wall-clock time from start to exit
  client_cpu_s   user + system CPU of CMD and everything it started. This process makes
                 itself a child subreaper, so daemonised descendants (ssh ControlPersist
                 masters, for one) are reparented here and counted when they exit; ones
                 still alive at the end are counted from /proc.
  maxrss_kb      peak resident set of the largest single process among them (the number
                 `/usr/bin/time -f %M` prints; CMD runs under /usr/bin/time for it, because
                 a process started from this interpreter inherits its resident size as the
                 high-water mark until it execs; without GNU time the field is null)
  server_cpu_s   (with --server-pidfile) CPU used during the run by the processes named
                 in those pidfiles (the sshd listeners) and all their descendants, ended
                 or not: their own and their reaped children's time, before and after
  peak_procs     most processes seen at once in CMD's tree (sampled every --interval s, 0.05)
  aux_cpu_s      (with --aux-pidfile) the same as server_cpu_s for other helpers (a relay)
  peak_fds, peak_threads   (with --fds) most open descriptors / threads of one process in
                 CMD's tree, sampled every --interval s (/proc/PID/fd, /proc/PID/stat)
  machine_busy_cpu_s, machine_steal_s   (with --fds) CPU time all CPUs spent busy (user, nice,
                 system, irq, softirq) and stolen by the hypervisor during the run, from
                 /proc/stat: busy minus client, server and aux CPU is what other processes
                 of a shared machine took
  loadavg_start, loadavg_end   (with --fds) /proc/loadavg's 1-minute figure

Used by scripts/bench-ssh.sh, scripts/bench-peers.sh and scripts/bench-local.sh.
"""
import argparse
import ctypes
import json
import os
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36


def stat_of(pid):
    """(ppid, own+children CPU ticks) from /proc/PID/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2:].split()
    # fields[1] = ppid; [11..14] = utime, stime, cutime, cstime
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rfind(b")") + 2:].split()[17])
    except (OSError, ValueError, IndexError):
        return 0


def fds_of(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def cpu_stat():
    """(busy, steal) ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def snapshot():
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            s = stat_of(int(entry))
            if s is not None:
                procs[int(entry)] = s
    return procs


def tree(procs, roots):
    """roots and all their descendants present in procs."""
    kids = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in procs]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(kids.get(p, []))
    return seen


def ticks(procs, pids):
    return sum(procs[p][1] for p in pids if p in procs)


def read_pids(files):
    pids = []
    for name in files:
        try:
            with open(name) as f:
                pids.append(int(f.read().split()[0]))
        except (OSError, ValueError, IndexError):
            print(f"measure.py: no pid in {name}", file=sys.stderr)
    return pids


def main():
    ap = argparse.ArgumentParser(description="cost of one run of a command")
    ap.add_argument("--server-pidfile", action="append", default=[])
    ap.add_argument("--aux-pidfile", action="append", default=[])
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--fds", action="store_true")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--log", help="write CMD's stdout and stderr here (default: discard)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command given")

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    servers = read_pids(a.server_pidfile)
    aux = read_pids(a.aux_pidfile)
    before = snapshot()
    server_before = ticks(before, tree(before, servers))
    aux_before = ticks(before, tree(before, aux))
    stat_before = cpu_stat()
    load_before = loadavg()

    # posix_spawn (vfork underneath): a fork of this Python process would add its own
    # page-table copy and resident size to the child's rusage.
    out = a.log or os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
    rss_file = f"/tmp/measure-{os.getpid()}.rss"
    argv = [gnu_time, "-q", "-f", "%M", "-o", rss_file] + cmd if gnu_time else cmd
    t0 = time.monotonic()
    try:
        child = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions, setpgroup=0)
    except OSError as e:
        print(f"measure.py: cannot start {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 127

    me = os.getpid()
    peak_procs = [0]
    peak_fds = [0]
    peak_threads = [0]
    done = threading.Event()

    def watch():
        while not done.wait(a.interval):
            now = snapshot()
            mine = tree(now, [me]) - {me}
            peak_procs[0] = max(peak_procs[0], len(mine))
            if a.fds:
                for p in mine:
                    peak_fds[0] = max(peak_fds[0], fds_of(p))
                    peak_threads[0] = max(peak_threads[0], threads_of(p))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    rc = None
    cpu, maxrss = 0.0, 0
    deadline = t0 + a.timeout

    def reaped(usage, pid=None):
        nonlocal cpu, maxrss
        cpu += usage.ru_utime + usage.ru_stime
        if not (gnu_time and pid == child):  # time's own figure: read from its file below
            maxrss = max(maxrss, usage.ru_maxrss)

    # wait4 per process (not RUSAGE_CHILDREN: that also holds whatever the interpreter's
    # launcher ran before it exec'd into this process).
    while rc is None:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                os.killpg(child, 9)  # its own group: the command under time goes too
            time.sleep(0.002)
            continue
        reaped(usage, pid)
        if pid == child:
            rc = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    done.set()
    watcher.join()
    while True:  # descendants that ended meanwhile, reparented to us
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped(usage)

    if gnu_time:
        try:
            with open(rss_file) as f:
                lines = [l for l in f.read().split() if l.isdigit()]
            maxrss = max(maxrss, int(lines[-1]))
        except (OSError, IndexError):
            maxrss = None  # killed at --timeout: time wrote nothing
        try:
            os.unlink(rss_file)
        except OSError:
            pass
    elif maxrss is not None:
        maxrss = None

    after = snapshot()
    alive = tree(after, [me]) - {me}
    client = cpu + ticks(after, alive) / TICK
    result = {
        "cmd": cmd,
        "rc": rc,
        "wall_s": round(wall, 4),
        "client_cpu_s": round(client, 3),
        "maxrss_kb": maxrss,
        "peak_procs": peak_procs[0],
    }
    if servers:
        result["server_cpu_s"] = round((ticks(after, tree(after, servers)) - server_before) / TICK, 3)
    if aux:
        result["aux_cpu_s"] = round((ticks(after, tree(after, aux)) - aux_before) / TICK, 3)
    if a.fds:
        busy, steal = cpu_stat()
        result.update(peak_fds=peak_fds[0], peak_threads=peak_threads[0],
                      machine_busy_cpu_s=round((busy - stat_before[0]) / TICK, 2),
                      machine_steal_s=round((steal - stat_before[1]) / TICK, 2),
                      loadavg_start=load_before, loadavg_end=loadavg())
    print(json.dumps(result))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
