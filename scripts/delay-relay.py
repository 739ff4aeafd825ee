#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 that adds a fixed round-trip delay, for kernels without netem.

usage: delay-relay.py --rtt-ms MS --forward LISTEN:TARGET [--forward ...]
                      [--pid-file FILE] [--max-seconds S]

Listens on 127.0.0.1:LISTEN for each --forward and connects every client to
127.0.0.1:TARGET. Bytes going either way are held for MS/2 milliseconds before they are
passed on, in order, so a request and its answer together take MS longer than over
plain loopback. A half-close (EOF) travels with the same delay. scripts/fleet.sh starts
one relay in front of its sshd processes when BENCH_RTT_MS is set.

SIGTERM or SIGINT stops it (open connections are dropped); so does --max-seconds
(default 6 h), so a relay that nobody stops does not stay forever. The pid file is
written when it listens and removed when it exits. It never listens on or connects to
anything but 127.0.0.1.
"""
import argparse
import asyncio
import collections
import os
import signal
import sys
import time

READ_SIZE = 64 * 1024
HIGH_WATER = 8 * 1024 * 1024  # bytes in flight in one direction before reading pauses


class Lane:
    """One direction of one connection: what was read, and when it may be written."""

    def __init__(self, delay):
        self.delay = delay
        self.items = collections.deque()  # (due, bytes); b"" stands for EOF
        self.queued = 0
        self.arrived = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    async def take_in(self, reader):
        while True:
            await self.room.wait()
            data = await reader.read(READ_SIZE)
            self.items.append((time.monotonic() + self.delay, data))
            self.queued += len(data)
            if self.queued > HIGH_WATER:
                self.room.clear()
            self.arrived.set()
            if not data:
                return

    async def give_out(self, writer):
        while True:
            while not self.items:
                self.arrived.clear()
                await self.arrived.wait()
            due, data = self.items.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
            self.queued -= len(data)
            if self.queued <= HIGH_WATER:
                self.room.set()


async def connection(c_reader, c_writer, target, delay):
    try:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        c_writer.close()
        return
    up, down = Lane(delay), Lane(delay)
    jobs = [asyncio.ensure_future(j) for j in (
        up.take_in(c_reader), up.give_out(s_writer),
        down.take_in(s_reader), down.give_out(c_writer))]
    try:
        # Done when both directions have delivered their EOF, or either side fails.
        await asyncio.gather(*jobs)
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for j in jobs:
            j.cancel()
        for w in (c_writer, s_writer):
            try:
                w.close()
            except OSError:
                pass


async def serve(args):
    delay = args.rtt_ms / 2000.0
    servers = []
    for spec in args.forward:
        listen, target = (int(x) for x in spec.split(":", 1))
        servers.append(await asyncio.start_server(
            lambda r, w, t=target: connection(r, w, t, delay), "127.0.0.1", listen, backlog=4096))
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    for s in servers:
        s.close()


def main():
    ap = argparse.ArgumentParser(description="TCP relay adding round-trip delay on 127.0.0.1")
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--forward", action="append", required=True, metavar="LISTEN:TARGET")
    ap.add_argument("--pid-file")
    ap.add_argument("--max-seconds", type=float, default=6 * 3600)
    args = ap.parse_args()
    try:
        asyncio.run(serve(args))
    finally:
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
