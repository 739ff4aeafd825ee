#!/usr/bin/env bash
# Per-task overhead: the 1000-task chain of `true` (scripts/gen-dag.py chain), nexus
# against `make -j8`, in alternating runs (nexus and make take turns, the order flips each
# round) so that drift of a shared machine's speed lands on both. Then the same with one
# CPU-bound process (`sh -c 'while :; do :; done'`) running beside both, started and
# stopped by PID. Then `nexus --version` and `nexus validate` of the chain file
# (hyperfine), and peak RSS (GNU time).
#
#   scripts/bench-chain.sh                 build nexus (release), measure, print a summary
#
# Targets (issue: reshape the core), medians of the same run:
#   idle   nexus <= 1.0 x make -j8      busy   nexus <= 1.3 x make -j8
#   nexus --version < 2 ms              nexus validate (1000 tasks) < 10 ms
#
# Environment:
#   ROUNDS=15            alternating rounds per condition (each round: one nexus, one make)
#   CONDITIONS="idle busy"
#   NEXUS_BIN            use this binary instead of building target/release/nexus
#   OUT                  default: <repo>/.bench-out/chain (raw times, summary.md)
#   WAIT_IDLE=60         wait up to this many seconds for >= 85 % idle CPUs first (0: don't)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-15}"
CONDITIONS="${CONDITIONS:-idle busy}"
OUT="${OUT:-$REPO/.bench-out/chain}"
IDLE_PCT="${IDLE_PCT:-85}"
WAIT_IDLE="${WAIT_IDLE:-60}"
log() { echo "bench-chain: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

mkdir -p "$OUT"
NEXUS="${NEXUS_BIN:-}"
if [ -z "$NEXUS" ]; then
  (cd "$REPO" && cargo build --release --quiet)
  NEXUS="$REPO/target/release/nexus"
fi
DIR="$(mktemp -d /tmp/nexus-bench-chain.XXXXXX)"
BUSY_PID=""
cleanup() {
  [ -n "$BUSY_PID" ] && kill "$BUSY_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

python3 "$REPO/scripts/gen-dag.py" chain "$DIR" --seed 42 --jobs 8 >/dev/null
python3 "$REPO/scripts/dag_to_nexus.py" "$DIR/tasks.json" -o "$DIR/nexus.toml" >/dev/null
export NEXUS_HOME="$DIR/state"

# One timed run of "$@" with output to /dev/null: seconds, on stdout.
timed() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = time.perf_counter() - t
if r.returncode != 0:
    sys.exit(f"{sys.argv[1:]} exited {r.returncode}")
print(f"{d:.6f}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

nexus_cmd=("$NEXUS" -c "$DIR/nexus.toml" run all -q)
make_cmd=(make -s -C "$DIR" -f Makefile -j8 all)

summary="$OUT/summary.md"
{
  echo "# chain of 1000 x true: nexus vs make -j8 ($(date -u +%FT%TZ), $(nproc) CPUs)"
  echo
  echo "nexus: $("$NEXUS" --version)"
  echo "rounds per condition: $ROUNDS (alternating; order flipped each round)"
  echo
  echo "| condition | nexus median (s) | make -j8 median (s) | ratio | paired ratio |"
  echo "|---|---:|---:|---:|---:|"
} >"$summary"

for cond in $CONDITIONS; do
  wait_idle >/dev/null || true
  if [ "$cond" = busy ]; then
    sh -c 'while :; do :; done' &
    BUSY_PID=$!
  fi
  : >"$OUT/$cond.nexus"
  : >"$OUT/$cond.make"
  # A warm-up of each.
  timed "${nexus_cmd[@]}" >/dev/null
  timed "${make_cmd[@]}" >/dev/null
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      timed "${nexus_cmd[@]}" >>"$OUT/$cond.nexus"
      timed "${make_cmd[@]}" >>"$OUT/$cond.make"
    else
      timed "${make_cmd[@]}" >>"$OUT/$cond.make"
      timed "${nexus_cmd[@]}" >>"$OUT/$cond.nexus"
    fi
  done
  if [ -n "$BUSY_PID" ]; then
    kill "$BUSY_PID" 2>/dev/null || true
    wait "$BUSY_PID" 2>/dev/null || true
    BUSY_PID=""
  fi
  n=$(median <"$OUT/$cond.nexus")
  m=$(median <"$OUT/$cond.make")
  ratio=$(python3 -c "print(f'{$n/$m:.2f}')")
  # The median of each round's nexus/make: a drift of the machine's speed between
  # rounds (this one's can move by half within a run) cancels within a round.
  paired=$(paste "$OUT/$cond.nexus" "$OUT/$cond.make" |
    awk '{print $1/$2}' | median | xargs printf '%.3f')
  echo "| $cond | $n | $m | $ratio | $paired |" >>"$summary"
  echo "$cond: nexus $n s, make -j8 $m s, ratio $ratio, paired $paired" >&2
done

wait_idle >/dev/null || true
hyperfine -N --warmup 5 --runs 100 --export-json "$OUT/startup.json" \
  "$NEXUS --version" "$NEXUS -c $DIR/nexus.toml validate" >/dev/null 2>&1
startup=$(python3 - "$OUT/startup.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"{r[0]['median']*1000:.2f} {r[1]['median']*1000:.2f}")
PY
)
read -r version_ms validate_ms <<<"$startup"
rss=$(/usr/bin/time -f %M "${nexus_cmd[@]}" 2>&1 >/dev/null | tail -1)
{
  echo
  echo "| measure | median |"
  echo "|---|---:|"
  echo "| nexus --version | ${version_ms} ms |"
  echo "| nexus validate (1000 tasks) | ${validate_ms} ms |"
  echo "| peak RSS of the chain run | ${rss} KB |"
} >>"$summary"
cat "$summary"
