#!/usr/bin/env bash
# A command printing 1 GB (lines of 100 bytes) through nexus in each output mode, with
# stdout to /dev/null, against the same command run by `sh` with its output to /dev/null.
# Peak RSS and wall time per mode; rounds alternate between the modes and sh, so that
# drift of a shared machine's speed lands on all of them.
#
#   scripts/bench-output.sh            build nexus (release), measure, print a summary
#
# Targets (issue: reliability): peak RSS <= 64 MB in every mode; wall time <= 1.5 x sh.
# Also measured: `sh -c "CMD | cat"`, the floor for any program that reads the output
# (one more pipe: the command's writes and the reader's reads are copies sh does not make).
#
# Environment:
#   BYTES=1000000000   how much the command prints
#   ROUNDS=3           rounds (each: sh, then every mode once, order rotated)
#   MODES="stream verbose grouped quiet json"
#   NEXUS_BIN          use this binary instead of building target/release/nexus
#   OUT                default: <repo>/.bench-out/output
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BYTES="${BYTES:-1000000000}"
ROUNDS="${ROUNDS:-3}"
MODES="${MODES:-stream verbose grouped quiet json}"
OUT="${OUT:-$REPO/.bench-out/output}"
mkdir -p "$OUT"
NEXUS="${NEXUS_BIN:-}"
if [ -z "$NEXUS" ]; then
  (cd "$REPO" && cargo build --release --quiet)
  NEXUS="$REPO/target/release/nexus"
fi
command -v /usr/bin/time >/dev/null || { echo "bench-output: needs GNU time (/usr/bin/time)" >&2; exit 2; }
DIR="$(mktemp -d /tmp/nexus-bench-output.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
LINE="the quick brown fox jumps over the lazy dog, again and again, line after line, until done."
CMD="yes '$LINE' | head -c $BYTES"
cat >"$DIR/nexus.toml" <<EOF
[tasks.flood]
run = "$CMD"
EOF
export NEXUS_HOME="$DIR/state"

args_of() {
  case "$1" in
    stream) echo "" ;;
    verbose) echo "-v" ;;
    grouped) echo "--output grouped" ;;
    quiet) echo "--output quiet" ;;
    json) echo "--format json" ;;
  esac
}

# One run: "seconds peak_kb" on stdout.
measure() {
  /usr/bin/time -o "$DIR/time.txt" -f "%e %M" "$@" >/dev/null 2>"$DIR/stderr.txt" ||
    { echo "bench-output: $* failed:" >&2; cat "$DIR/stderr.txt" >&2; exit 1; }
  cat "$DIR/time.txt"
}

for m in sh cat $MODES; do : >"$OUT/$m.txt"; done
modes=($MODES)
for r in $(seq 1 "$ROUNDS"); do
  measure sh -c "$CMD" >>"$OUT/sh.txt"
  measure sh -c "$CMD | cat" >>"$OUT/cat.txt"
  n=${#modes[@]}
  for i in $(seq 0 $((n - 1))); do
    m=${modes[$(((i + r) % n))]}
    # shellcheck disable=SC2046
    measure "$NEXUS" -c "$DIR/nexus.toml" run flood $(args_of "$m") >>"$OUT/$m.txt"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sh_s=$(cut -d' ' -f1 "$OUT/sh.txt" | median)
{
  echo "# $((BYTES / 1000000)) MB of output (lines of ${#LINE}+1 bytes), stdout to /dev/null ($(date -u +%FT%TZ), $(nproc) CPUs)"
  echo
  echo "nexus: $("$NEXUS" --version); rounds: $ROUNDS"
  echo
  cat_s=$(cut -d' ' -f1 "$OUT/cat.txt" | median)
  echo "| mode | wall median (s) | / sh | / sh with \`| cat\` | peak RSS max (MB) |"
  echo "|---|---:|---:|---:|---:|"
  for m in sh cat $MODES; do
    s=$(cut -d' ' -f1 "$OUT/$m.txt" | median)
    rss=$(cut -d' ' -f2 "$OUT/$m.txt" | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')
    case $m in sh) name="sh -c CMD" ;; cat) name="sh -c 'CMD | cat'" ;; *) name="nexus $m" ;; esac
    echo "| $name | $s | $(python3 -c "print(f'{$s/$sh_s:.2f}')") | $(python3 -c "print(f'{$s/$cat_s:.2f}')") | $rss |"
  done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
