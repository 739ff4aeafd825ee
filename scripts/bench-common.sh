# Shared by scripts/bench-*.sh: sourced after the caller defines log and die, and sets
# REPO, IDLE_PCT and WAIT_IDLE.

# cpu_idle_pct: share of CPU time idle over the next 2 s, from /proc/stat
cpu_idle_pct() {
  python3 -c '
import time
def snap():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return f[3] + f[4], sum(f)
i0, t0 = snap(); time.sleep(2); i1, t1 = snap()
print(round(100 * (i1 - i0) / max(1, t1 - t0)))'
}
# wait_idle: wait (bounded by WAIT_IDLE s) until the CPUs are >= IDLE_PCT % idle; echo the last sample
wait_idle() {
  local idle start=$SECONDS
  idle="$(cpu_idle_pct)"
  while [ "$idle" -lt "$IDLE_PCT" ] && [ $((SECONDS - start)) -lt "$WAIT_IDLE" ]; do
    log "CPUs only $idle % idle (other processes); waiting for >= $IDLE_PCT % (up to ${WAIT_IDLE}s)"
    sleep 3
    idle="$(cpu_idle_pct)"
  done
  [ "$idle" -lt "$IDLE_PCT" ] && log "WARNING: CPUs $idle % idle: timing anyway, numbers will be noisy"
  echo "$idle"
}

# build_nexus: set NEXUS (the binary to time) and rev (what it was built from): NEXUS_BIN
# as given, NEXUS_REV built from `git archive` (the work tree may be mid-edit; its own
# target dir under target/ keeps the dependencies between runs), else the work tree.
build_nexus() {
  local src
  if [ -n "${NEXUS_BIN:-}" ]; then
    NEXUS="$(cd "$(dirname "$NEXUS_BIN")" && pwd)/$(basename "$NEXUS_BIN")"
    log "using NEXUS_BIN=$NEXUS (no build)"
    rev="binary $NEXUS (NEXUS_BIN)"
  elif [ -n "${NEXUS_REV:-}" ]; then
    rev="$(git -C "$REPO" rev-parse --short=12 "$NEXUS_REV")" || die "unknown NEXUS_REV=$NEXUS_REV"
    src="$(mktemp -d "${TMPDIR:-/tmp}/nexus-rev.XXXXXX")"
    git -C "$REPO" archive "$rev" | tar -x -C "$src"
    log "cargo build --release of $rev (NEXUS_REV=$NEXUS_REV) in $src"
    CARGO_TARGET_DIR="$REPO/target/bench-rev" cargo build --release -q --manifest-path "$src/Cargo.toml" ||
      { rm -rf "$src"; die "cargo build --release of $rev failed"; }
    rm -rf "$src"
    NEXUS="$REPO/target/bench-rev/release/nexus"
    rev="commit $rev (NEXUS_REV=$NEXUS_REV, clean tree)"
  else
    log "cargo build --release"
    (cd "$REPO" && cargo build --release -q) ||
      die "cargo build --release failed (work tree mid-edit? NEXUS_REV=HEAD builds the last commit, NEXUS_BIN=PATH uses a binary)"
    NEXUS="$REPO/target/release/nexus"
    rev="work tree at $(git -C "$REPO" describe --always --dirty --abbrev=12 2>/dev/null || echo '?')"
  fi
  [ -x "$NEXUS" ] || die "no nexus binary at $NEXUS"
}

# alternate NAME RUNS LABEL CMD [LABEL CMD ...]: every CMD once per round, the order
# flipped each round, after WARMUP rounds (default 1), so that a shared machine's drift
# lands on all of them alike. Writes $OUT/NAME.json: per command, wall seconds ("times")
# and user+sys CPU seconds of its processes ("cpu"). A command that exits non-zero stops it.
alternate() {
  local name="$1"
  shift
  WARMUP="${WARMUP:-1}" python3 - "$OUT/$name.json" "$@" <<'PY'
import json, os, resource, subprocess, sys, time
out, pairs = sys.argv[1], sys.argv[2:]
runs, warmup = int(pairs.pop(0)), int(os.environ["WARMUP"])
cmds = list(zip(pairs[0::2], pairs[1::2]))
times = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
def used():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for r in range(runs + warmup):
    order = cmds if r % 2 == 0 else cmds[::-1]
    for n, c in order:
        u, t = used(), time.perf_counter()
        p = subprocess.run(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d, cu = time.perf_counter() - t, used() - u
        if p.returncode != 0:
            sys.exit(f"{c} exited {p.returncode}")
        if r >= warmup:
            times[n].append(d)
            cpu[n].append(cu)
json.dump({"results": [{"command": n, "times": times[n], "cpu": cpu[n]} for n, _ in cmds]}, open(out, "w"))
PY
}
