#!/usr/bin/env python3
"""Drive parallel-ssh (libssh2 through ssh2-python) for scripts/bench-peers.sh.

usage: pssh-run.py --hosts N --port P[,P2...] --key FILE [--user root] [--show] [--defaults] -- CMD...

Opens one session to each of N hosts, all 127.0.0.1:P (the loopback fleet of
scripts/fleet.sh; every host its own connection; with several ports, host K uses the
(K-1) mod count-th, as fleet.sh spreads hosts over BENCH_SSHD_COUNT sshd), runs CMD on all
of them at once (pool_size N) and reads every output line. --defaults keeps the library's
defaults instead (pool_size 100, num_retries 3, timeout None). With --show, each line is printed as `hK: LINE` (stderr lines
as `hK! LINE` on stderr). The last line is `pssh-run: K of N hosts exited 0`; the exit
status is 0 only when K == N.
"""
import argparse
import sys

from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig


def main():
    ap = argparse.ArgumentParser(description="parallel-ssh on the loopback fleet")
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", required=True, help="port, or ports separated by commas")
    ap.add_argument("--defaults", action="store_true", help="parallel-ssh's own pool_size, retries, timeout")
    ap.add_argument("--user", default="root")
    ap.add_argument("--key", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--show", action="store_true")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    words = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not words:
        ap.error("no command given")

    ports = [int(p) for p in a.port.split(",")]
    extra = {} if a.defaults else {"pool_size": a.hosts, "num_retries": 1, "timeout": a.timeout}
    if len(ports) > 1:
        extra["host_config"] = [HostConfig(port=ports[k % len(ports)]) for k in range(a.hosts)]
    client = ParallelSSHClient([a.address] * a.hosts, user=a.user, port=ports[0], pkey=a.key, **extra)
    results = client.run_command(" ".join(words), stop_on_errors=False)
    client.join(results, timeout=None if a.defaults else a.timeout)
    good = 0
    for k, res in enumerate(results, start=1):
        if res.exception is not None:
            print(f"h{k}! {type(res.exception).__name__}: {res.exception}", file=sys.stderr)
            continue
        # Reading the output is part of the work every tool does: read it all, always.
        for line in res.stdout:
            if a.show:
                print(f"h{k}: {line}")
        for line in res.stderr:
            if a.show:
                print(f"h{k}! {line}", file=sys.stderr)
        if res.exit_code == 0:
            good += 1
    print(f"pssh-run: {good} of {a.hosts} hosts exited 0")
    return 0 if good == a.hosts else 1


if __name__ == "__main__":
    sys.exit(main())
