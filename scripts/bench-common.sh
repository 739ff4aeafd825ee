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
