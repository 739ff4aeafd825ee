#!/usr/bin/env bash
# Up-to-date checks against go-task (`method: checksum` and `method: timestamp`) and make
# (an mtime rule), on one task whose sources are 20,000 files of 1 KiB in 200 directories
# plus 4 large files (512 MiB each by default):
#
#   no-op check   everything built, nothing changed: how long until the tool says so
#   cold check    no state (nexus: no stat cache and no record; go-task: no .task/):
#                 every source hashed, then the (trivial) command runs. The files are in
#                 the page cache (the fixture was just written and read); nothing drops it.
#
# Medians of alternating rounds (every command once per round, the order flipped each
# round, after a warm-up round), same run. Then the correctness matrix of issue 15 on a
# small project, scripted for every tool: which tool decides wrongly in which row.
#
# Targets (issue 15): no-op <= 1.0x go-task timestamp and <= 0.3x go-task checksum;
# cold <= 1.0x go-task checksum; no wrong decision where a peer makes one.
#
#   scripts/bench-uptodate.sh      build nexus (release), make the fixture, measure
#
# Environment:
#   BIG_MB=512        size of each of the 4 large files (the disk is shared: `df` is checked
#                     first, and the fixture needs 4 x BIG_MB + 20 MiB)
#   RUNS=10           rounds of the no-op check; RUNS_COLD=5 of the cold one
#   NEXUS_BIN         use this binary instead of building target/release/nexus
#   TASK_BIN          go-task (default: .bench-tools/venv/bin/task; else
#                     `pip install go-task-bin` into /work/.bench-tools/venv)
#   OUT               default: <repo>/.bench-out/uptodate (raw times, matrix, summary.md)
#   KEEP=1            keep the fixture (its path is printed)
#   WAIT_IDLE=60      wait up to this many seconds for >= 85 % idle CPUs first (0: don't)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIG_MB="${BIG_MB:-512}"
RUNS="${RUNS:-10}"
RUNS_COLD="${RUNS_COLD:-5}"
OUT="${OUT:-$REPO/.bench-out/uptodate}"
IDLE_PCT="${IDLE_PCT:-85}"
WAIT_IDLE="${WAIT_IDLE:-60}"
log() { echo "bench-uptodate: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

TASK="${TASK_BIN:-}"
if [ -z "$TASK" ]; then
  for t in "$REPO/.bench-tools/venv/bin/task" /work/.bench-tools/venv/bin/task; do
    [ -x "$t" ] && TASK="$t" && break
  done
fi
if [ -z "$TASK" ] && [ -x /work/.bench-tools/venv/bin/pip ]; then
  log "go-task missing: pip install go-task-bin into /work/.bench-tools/venv"
  /work/.bench-tools/venv/bin/pip install -q go-task-bin && TASK=/work/.bench-tools/venv/bin/task
fi
[ -n "$TASK" ] || die "go-task is missing: pip install go-task-bin (or TASK_BIN=PATH)"
command -v make >/dev/null || die "make is missing"
command -v git >/dev/null || die "git is missing"

mkdir -p "$OUT"
build_nexus
export NEXUS="$NEXUS" TASK

# The disk is shared: make sure the fixture fits with room to spare.
TMPBASE="${TMPDIR:-/tmp}"
need_kb=$(((4 * BIG_MB + 20) * 1024))
free_kb="$(df -Pk "$TMPBASE" | awk 'NR == 2 { print $4 }')"
log "fixture needs $((need_kb / 1024)) MiB; $((free_kb / 1024)) MiB free in $TMPBASE"
[ "$free_kb" -gt $((need_kb * 2 + 1024 * 1024)) ] ||
  die "not enough free space in $TMPBASE for BIG_MB=$BIG_MB (need twice the fixture and 1 GiB more); try BIG_MB=64"

DIR="$(mktemp -d "$TMPBASE/nexus-bench-uptodate.XXXXXX")"
if [ "${KEEP:-}" = 1 ]; then
  log "fixture kept in $DIR"
else
  trap 'rm -rf "$DIR"' EXIT
fi
export NEXUS_HOME="$DIR/state"
unset CI NEXUS_CONFIG NEXUS_LOG_LEVEL

log "writing 20,000 files of 1 KiB in 200 directories and 4 files of $BIG_MB MiB"
python3 - "$DIR/big" "$BIG_MB" <<'PY'
import os, sys
root, big_mb = sys.argv[1], int(sys.argv[2])
for d in range(200):
    p = os.path.join(root, "src", f"d{d:03}")
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(os.path.join(p, f"f{f:03}.txt"), "wb") as fh:
            fh.write(os.urandom(1024))
os.makedirs(os.path.join(root, "data"), exist_ok=True)
chunk = os.urandom(1 << 20)
for b in range(4):
    with open(os.path.join(root, "data", f"big{b}.bin"), "wb") as fh:
        for i in range(big_mb):
            # Each MiB differs (a counter in front), so no two pieces are alike.
            fh.write(f"{b}:{i}:".encode().ljust(16, b"\0") + chunk[16:])
PY
cd "$DIR/big"
cat >nexus.toml <<'EOF'
[tasks.build]
sources = ["src/**", "data/*"]
outputs = ["out/nexus"]
run = "mkdir -p out && echo built > out/nexus"
EOF
cat >Taskfile.yml <<'EOF'
version: '3'
tasks:
  checksum:
    method: checksum
    sources: ['src/**/*', 'data/*']
    generates: ['out/checksum']
    cmds: ['mkdir -p out && echo built > out/checksum']
  timestamp:
    method: timestamp
    sources: ['src/**/*', 'data/*']
    generates: ['out/timestamp']
    cmds: ['mkdir -p out && echo built > out/timestamp']
EOF
cat >Makefile <<'EOF'
MAKEFLAGS += -r
SRCS := $(wildcard src/*/*) $(wildcard data/*)
out/make: $(SRCS)
	mkdir -p out && echo built > $@
EOF
log "first builds (and the page cache filled)"
"$NEXUS" run build -q >/dev/null 2>&1
"$TASK" checksum >/dev/null 2>&1
"$TASK" timestamp >/dev/null 2>&1
make -s out/make >/dev/null
sleep 1
# Each tool must now say "nothing to do".
"$NEXUS" run build -v 2>&1 | grep -q 'up to date' || die "nexus did not skip the built task"
"$TASK" checksum 2>&1 | grep -qi 'up to date' || die "go-task checksum did not skip"
"$TASK" timestamp 2>&1 | grep -qi 'up to date' || die "go-task timestamp did not skip"
make -q out/make || die "make -q says out/make is not up to date"

idle="$(wait_idle)"
log "CPUs $idle % idle; timing in alternating rounds"
alternate noop "$RUNS" \
  "nexus run build (up to date)" "$NEXUS run build" \
  "go-task checksum (up to date)" "$TASK checksum" \
  "go-task timestamp (up to date)" "$TASK timestamp" \
  "make (up to date)" "make -s out/make"
log "cold checks: the state removed before each run"
alternate cold "$RUNS_COLD" \
  "nexus run build (no state)" "rm -rf $NEXUS_HOME/uptodate && $NEXUS run build" \
  "go-task checksum (no .task)" "rm -rf .task/checksum && $TASK checksum"
hashed="$("$NEXUS" run build -B --log-level debug 2>&1 | grep -o '[0-9]* files checked, [0-9]* hashed' | head -1 || true)"
log "a forced run after a cold one: $hashed"

log "the correctness matrix"
python3 - "$OUT/matrix.json" <<'PY'
import json, os, subprocess, sys, tempfile, time

NEXUS, TASK = os.environ["NEXUS"], os.environ["TASK"]
TOOLS = ["make", "go-task timestamp", "go-task checksum", "nexus"]

FILES = {
    "nexus.toml": """[tasks.build]
sources = ["src/**"]
outputs = ["out/n"]
run = "mkdir -p out && cat src/*.c > out/n && echo ran >> log-nexus"
[tasks.gen]
run = "date +%s%N > src/gen.c"
[tasks.build-gen]
deps = ["gen"]
sources = ["src/**"]
outputs = ["out/ng"]
run = "mkdir -p out && cat src/*.c > out/ng && echo ran >> log-nexus"
""",
    "Taskfile.yml": """version: '3'
tasks:
  checksum:
    method: checksum
    sources: ['src/**/*']
    generates: ['out/c']
    cmds: ['mkdir -p out && cat src/*.c > out/c && echo ran >> log-go-task-checksum']
  timestamp:
    method: timestamp
    sources: ['src/**/*']
    generates: ['out/t']
    cmds: ['mkdir -p out && cat src/*.c > out/t && echo ran >> log-go-task-timestamp']
  gen:
    cmds: ['date +%s%N > src/gen.c']
  checksum-gen:
    deps: [gen]
    method: checksum
    sources: ['src/**/*']
    generates: ['out/cg']
    cmds: ['mkdir -p out && cat src/*.c > out/cg && echo ran >> log-go-task-checksum']
  timestamp-gen:
    deps: [gen]
    method: timestamp
    sources: ['src/**/*']
    generates: ['out/tg']
    cmds: ['mkdir -p out && cat src/*.c > out/tg && echo ran >> log-go-task-timestamp']
""",
    "Makefile": """SRCS := $(wildcard src/*)
out/m: $(SRCS)
\tmkdir -p out && cat src/*.c > out/m && echo ran >> log-make
.PHONY: FORCE
src/gen.c: FORCE
\tdate +%s%N > $@
out/mg: src/gen.c $(SRCS)
\tmkdir -p out && cat src/*.c > out/mg && echo ran >> log-make
""",
}

def sh(d, cmd):
    subprocess.run(cmd, shell=True, cwd=d, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "NEXUS_HOME": d + "/.home"})

def invoke(d, tool, gen=False, force=False):
    cmd = {
        "make": f"make {'-B ' if force else ''}-s {'out/mg' if gen else 'out/m'}",
        "go-task timestamp": f"{TASK} {'--force ' if force else ''}timestamp{'-gen' if gen else ''}",
        "go-task checksum": f"{TASK} {'--force ' if force else ''}checksum{'-gen' if gen else ''}",
        "nexus": f"{NEXUS} run {'-B ' if force else ''}{'build-gen' if gen else 'build'}",
    }[tool]
    sh(d, cmd)

def ran(d, tool):
    p = os.path.join(d, "log-" + tool.replace(" ", "-"))
    return sum(1 for _ in open(p)) if os.path.exists(p) else 0

def project():
    d = tempfile.mkdtemp(prefix="nexus-matrix.")
    os.makedirs(d + "/src")
    for n, text in FILES.items():
        open(os.path.join(d, n), "w").write(text)
    open(d + "/src/a.c", "w").write("int a;\n")
    open(d + "/src/b.c", "w").write("int b;\n")
    return d

def settle():
    time.sleep(1.1)

def edit_same_size_old_mtime(d):
    open(d + "/src/a.c", "w").write("int x;\n")
    sh(d, "touch -d '2020-01-01 00:00:00' src/a.c")

def change_commands(d):
    for n in FILES:
        p = os.path.join(d, n)
        text = open(p).read().replace("cat src/*.c", "cat src/a.c src/*.c")
        open(p, "w").write(text)

def branch_away_and_back(d):
    sh(d, "git checkout -q other && git checkout -q main")

def git_setup(d):
    g = "git -c user.name=t -c user.email=t@e -c init.defaultBranch=main"
    sh(d, f"{g} init -q && {g} add src && {g} commit -qm one && git checkout -q -b other"
          f" && echo 'int other;' > src/a.c && {g} commit -qam two && git checkout -q main")

# (row, should run, setup before the first build, action, gen, force)
ROWS = [
    ("first run", True, None, "first", False, False),
    ("unchanged", False, None, None, False, False),
    ("touch, content unchanged", False, None, lambda d: sh(d, "touch src/a.c"), False, False),
    ("content edited", True, None, lambda d: open(d + "/src/a.c", "a").write("int c;\n"), False, False),
    ("edited, old mtime put back (touch -d)", True,
     lambda d: sh(d, "touch -d '2020-01-01 00:00:00' src/a.c"), edit_same_size_old_mtime, False, False),
    ("output deleted", True, None, lambda d: sh(d, "rm -f out/*"), False, False),
    ("output edited", True, None, lambda d: sh(d, "for f in out/*; do echo x > $f; done"), False, False),
    ("command changed", True, None, change_commands, False, False),
    ("forced (-B, --force)", True, None, None, False, True),
    ("git branch away and back", False, git_setup, branch_away_and_back, False, False),
    ("a dependency rewrote a source", True, None, None, True, False),
]

results = []
for name, should, setup, action, gen, force in ROWS:
    d = project()
    if setup:
        setup(d)
    if action != "first":
        for t in TOOLS:
            invoke(d, t, gen=gen)
        settle()
        if action:
            action(d)
        settle()
    row = {"row": name, "should_run": should, "tools": {}}
    for t in TOOLS:
        before = ran(d, t)
        invoke(d, t, gen=gen, force=force)
        did = ran(d, t) > before
        verdict = "ok" if did == should else ("WRONG (skipped)" if should else "ran, not needed")
        row["tools"][t] = {"ran": did, "verdict": verdict}
    results.append(row)
    subprocess.run(["rm", "-rf", d])
json.dump(results, open(sys.argv[1], "w"), indent=1)
PY

python3 - "$OUT" "$rev" "$idle" "$BIG_MB" "$hashed" "$(uptime)" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, rev, idle, big, hashed, load = sys.argv[1:7]
def med(f, key):
    res = json.load(open(os.path.join(out, f)))["results"]
    return {r["command"]: sorted(r[key])[len(r[key]) // 2] for r in res}
noop, cold = med("noop.json", "times"), med("cold.json", "times")
noop_cpu, cold_cpu = med("noop.json", "cpu"), med("cold.json", "cpu")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"nexus: {rev}; {cpu}, {os.cpu_count()} CPUs; CPUs {idle} % idle at the start; at the end: {load.strip()}")
print(f"fixture: 20,000 files of 1 KiB in 200 directories + 4 files of {big} MiB (one task's sources)\n")
print("| check | command | median wall ms | median CPU ms (user+sys) |\n|---|---|---:|---:|")
for k, v in noop.items():
    print(f"| no-op | {k} | {v * 1000:.1f} | {noop_cpu[k] * 1000:.1f} |")
for k, v in cold.items():
    print(f"| cold | {k} | {v * 1000:.1f} | {cold_cpu[k] * 1000:.1f} |")
ok = lambda r, t: "met" if r <= t else "NOT met"
def ratios(tab, unit):
    n = tab["nexus run build (up to date)"]
    ts, cs = tab["go-task timestamp (up to date)"], tab["go-task checksum (up to date)"]
    nc, gc = (cold if unit == "wall" else cold_cpu)["nexus run build (no state)"], (cold if unit == "wall" else cold_cpu)["go-task checksum (no .task)"]
    print(f"- {unit}: no-op nexus / go-task timestamp = {n / ts:.2f}x (target <= 1.0: {ok(n / ts, 1.0)}); "
          f"no-op nexus / go-task checksum = {n / cs:.3f}x (target <= 0.3: {ok(n / cs, 0.3)}); "
          f"no-op nexus / make = {n / tab['make (up to date)']:.2f}x; "
          f"cold nexus / go-task checksum = {nc / gc:.2f}x (target <= 1.0: {ok(nc / gc, 1.0)})")
print()
ratios(noop, "wall")
ratios(noop_cpu, "CPU")
print(f"- a forced run right after: {hashed} (the stat cache)\n")
m = json.load(open(os.path.join(out, "matrix.json")))
tools = list(m[0]["tools"])
print("| row | should | " + " | ".join(tools) + " |")
print("|---|---|" + "---|" * len(tools))
for r in m:
    cells = [r["tools"][t]["verdict"] for t in tools]
    print(f"| {r['row']} | {'run' if r['should_run'] else 'skip'} | " + " | ".join(cells) + " |")
wrong = [(r["row"], t) for r in m for t in tools if r["tools"][t]["verdict"].startswith("WRONG")]
print()
print("- wrong decisions: " + ("; ".join(f"{t} in '{row}'" for row, t in wrong) or "none"))
print(f"- nexus wrong decisions: {sum(1 for _, t in wrong if t == 'nexus')} (target 0)")
PY
