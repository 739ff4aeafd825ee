#!/usr/bin/env python3
"""Synthetic task graphs for scripts/bench-local.sh, written for every runner we time.

usage: gen-dag.py WORKLOAD DIR [--seed N] [--jobs K] [--check-log PATH]

WORKLOAD is one of:
  chain     1000 tasks running `true`; task k needs task k-1 (per-task overhead)
  fan       200 independent tasks running `sleep 0.05` (slot filling; bound 1.25 s at K=8)
  layered   300 tasks running `sleep 0.01` in 30 layers; every task of a layer needs 1-3
            tasks of the layer before it, and about 3 in 10 also one task of an older
            layer (bound max(0.30 s, 3.0 s / K) = 0.375 s at K=8). Drawn from --seed.

Files written to DIR (the same graph in each):
  tasks.json          the graph and its numbers: {"workload", "seed", "jobs", "root",
                      "root_deps", "tasks": [{"name", "deps", "command"}], "tasks_total",
                      "edges", "critical_path_tasks", "critical_path_s", "work_s",
                      "lower_bound_s", "ideal_fifo_s", "ideal_cp_first_s"}
  Makefile            phony targets; `make -jK all`
  justfile            plain recipes (just runs dependencies one after another)
  justfile.parallel   recipes with dependencies carry `[parallel]`; `just --jobs K all`
With --check-log, also Makefile.check, justfile.check and justfile.parallel.check, in
which every task appends its name to PATH after its command, so a run can be checked
(scripts/dag_to_nexus.py verify). nexus.toml files come from scripts/dag_to_nexus.py.

Tasks are listed deps first. `all` is the root: it needs the tasks nothing else needs
and runs nothing. lower_bound_s = max(longest chain, total work / K) in seconds;
ideal_fifo_s and ideal_cp_first_s are the makespans of a runner with no overhead at all
on K slots that starts ready tasks in the order they became ready, or longest remaining
chain first. Prints tasks.json without the task list on stdout, as one JSON line.
"""
import argparse
import heapq
import json
import os
import random


def name(k):
    return f"t{k:04d}"


def chain_tasks(_seed):
    out = []
    for k in range(1, 1001):
        out.append({"name": name(k), "deps": [name(k - 1)] if k > 1 else [], "command": "true"})
    return out, 0.0


def fan_tasks(_seed):
    return [{"name": name(k), "deps": [], "command": "sleep 0.05"} for k in range(1, 201)], 0.05


def layered_tasks(seed, total=300, layers=30):
    rng = random.Random(seed)
    # Every layer gets one task, the others land on layers drawn at random.
    sizes = [1] * layers
    for _ in range(total - layers):
        sizes[rng.randrange(layers)] += 1
    out, by_layer, k = [], [], 0
    for depth, size in enumerate(sizes):
        this = []
        for _ in range(size):
            k += 1
            deps = set()
            if depth > 0:
                below = by_layer[depth - 1]
                want = min(len(below), 1 + rng.randrange(3))
                deps.update(rng.sample(below, want))
                if depth > 1 and rng.random() < 0.3:
                    older = by_layer[rng.randrange(depth - 1)]
                    deps.add(older[rng.randrange(len(older))])
            this.append(name(k))
            out.append({"name": name(k), "deps": sorted(deps), "command": "sleep 0.01"})
        by_layer.append(this)
    return out, 0.01


WORKLOADS = {"chain": chain_tasks, "fan": fan_tasks, "layered": layered_tasks}


def longest_chain(tasks):
    """Tasks on the longest dependency chain (tasks come deps first)."""
    depth = {}
    for t in tasks:
        depth[t["name"]] = 1 + max([depth[d] for d in t["deps"]] or [0])
    return max(depth.values())


def ideal_makespan(tasks, seconds, slots, policy):
    """Makespan of a zero-overhead runner on `slots`; policy "fifo" or "cp"."""
    if seconds == 0:
        return 0.0
    index = {t["name"]: i for i, t in enumerate(tasks)}
    waiting = [len(t["deps"]) for t in tasks]
    users = [[] for _ in tasks]
    for i, t in enumerate(tasks):
        for d in t["deps"]:
            users[index[d]].append(i)
    below = [0] * len(tasks)  # length of the longest chain from this task to a sink
    for i in reversed(range(len(tasks))):
        below[i] = 1 + max([below[u] for u in users[i]] or [0])
    order = 0

    def rank(i):
        nonlocal order
        order += 1
        return (order, i) if policy == "fifo" else (-below[i], i)

    ready = [rank(i) for i in range(len(tasks)) if waiting[i] == 0]
    heapq.heapify(ready)
    busy, clock = [], 0.0  # (finish time, task)
    while ready or busy:
        while ready and len(busy) < slots:
            _, i = heapq.heappop(ready)
            heapq.heappush(busy, (clock + seconds, i))
        clock, i = heapq.heappop(busy)
        finished = [i]
        while busy and busy[0][0] == clock:
            finished.append(heapq.heappop(busy)[1])
        for j in finished:
            for u in users[j]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    heapq.heappush(ready, rank(u))
    return round(clock, 4)


def with_log(t, log):
    return t["command"] if log is None else f"{t['command']} && echo {t['name']} >> {log}"


def write_makefile(path, tasks, roots, log=None):
    lines = ["# written by scripts/gen-dag.py", ".PHONY: all " + " ".join(t["name"] for t in tasks), "",
             "all: " + " ".join(roots), ""]
    for t in tasks:
        lines += [f"{t['name']}: {' '.join(t['deps'])}".rstrip(), f"\t@{with_log(t, log)}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_justfile(path, tasks, roots, parallel, log=None):
    lines = ["# written by scripts/gen-dag.py"]
    if parallel:
        lines.append("[parallel]")
    lines += ["all: " + " ".join(roots), ""]
    for t in tasks:
        if parallel and t["deps"]:
            lines.append("[parallel]")
        lines += [f"{t['name']}: {' '.join(t['deps'])}".rstrip(), f"    @{with_log(t, log)}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description="task graphs for the local benchmarks")
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--check-log", default=None)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    tasks, seconds = WORKLOADS[a.workload](a.seed)
    needed = {d for t in tasks for d in t["deps"]}
    roots = [t["name"] for t in tasks if t["name"] not in needed]
    cp = longest_chain(tasks)
    work = seconds * len(tasks)
    info = {
        "workload": a.workload,
        "seed": a.seed,
        "jobs": a.jobs,
        "root": "all",
        "root_deps": roots,
        "tasks_total": len(tasks),
        "edges": sum(len(t["deps"]) for t in tasks),
        "task_seconds": seconds,
        "critical_path_tasks": cp,
        "critical_path_s": round(cp * seconds, 4),
        "work_s": round(work, 4),
        "lower_bound_s": round(max(cp * seconds, work / a.jobs), 4),
        "ideal_fifo_s": ideal_makespan(tasks, seconds, a.jobs, "fifo"),
        "ideal_cp_first_s": ideal_makespan(tasks, seconds, a.jobs, "cp"),
        "generator": "scripts/gen-dag.py",
    }
    with open(os.path.join(a.dir, "tasks.json"), "w") as f:
        json.dump(dict(info, tasks=tasks), f, indent=1)
    variants = [("", None)] + ([(".check", a.check_log)] if a.check_log else [])
    for suffix, log in variants:
        write_makefile(os.path.join(a.dir, "Makefile" + suffix), tasks, roots, log)
        write_justfile(os.path.join(a.dir, "justfile" + suffix), tasks, roots, False, log)
        write_justfile(os.path.join(a.dir, "justfile.parallel" + suffix), tasks, roots, True, log)
    print(json.dumps({k: v for k, v in info.items() if k != "root_deps"}))


if __name__ == "__main__":
    main()
