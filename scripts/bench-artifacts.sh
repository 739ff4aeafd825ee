#!/usr/bin/env bash
# Artifacts (issue 16): a 100 MiB artifact made by a local task and handed to a task on 3
# hosts, against three parallel `scp` of the same file, on the loopback fleet
# (scripts/fleet.sh) at 0 ms and at 20 ms round-trip time (scripts/delay-relay.py).
#
#   nexus   `nexus run deploy`: `build` (local) declares dist/app.bin as an artifact
#           (already made: its command only checks it is there), `deploy` on h1..h3
#           depends on it; each run starts with empty destinations, so the file is
#           staged and sent to every host. Peak RSS from scripts/measure.py.
#   scp     scp of dist/app.bin to each of the 3 hosts, at once.
#
# Targets (ratios of medians in the same run): nexus <= 1.1x scp; nexus's peak RSS <= 64 MB.
#
#   sudo scripts/bench-artifacts.sh      (the fleet logs in as root)
#
# Environment: RUNS=3, RTTS="0 20", SIZE_MB=100, NEXUS_BIN / NEXUS_REV (scripts/bench-common.sh),
# BENCH_PORT (default 22122: another benchmark may hold 22022), BENCH_STATE (default
# ${TMPDIR:-/tmp}/nexus-fleet-artifacts), OUT (default <repo>/.bench-out/artifacts).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
RTTS="${RTTS:-0 20}"
SIZE_MB="${SIZE_MB:-100}"
OUT="${OUT:-$REPO/.bench-out/artifacts}"
export BENCH_PORT="${BENCH_PORT:-22122}"
export BENCH_STATE="${BENCH_STATE:-${TMPDIR:-/tmp}/nexus-fleet-artifacts}"
log() { echo "bench-artifacts: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

mkdir -p "$OUT"
build_nexus
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-artifacts.XXXXXX")"
DEST="$WORK/dest"
cleanup() {
  "$REPO/scripts/fleet.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/project/dist"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$WORK/project/dist/app.bin"

summary="$OUT/summary.md"
{
  echo "# Artifacts: ${SIZE_MB} MiB from a local task to 3 hosts ($rev)"
  echo
  echo "| RTT | nexus median s | scp x3 median s | ratio | nexus peak RSS MB |"
  echo "|---|---|---|---|---|"
} > "$summary"

for rtt in $RTTS; do
  "$REPO/scripts/fleet.sh" stop >/dev/null 2>&1 || true
  BENCH_RTT_MS="$rtt" "$REPO/scripts/fleet.sh" start 3 >/dev/null
  eval "$("$REPO/scripts/fleet.sh" env)"
  cat > "$WORK/project/nexus.toml" <<EOF
[config]
ssh_config = "$FLEET_SSH_CONFIG"
host_key_checking = "off"

[hosts]
web = ["h1", "h2", "h3"]

[tasks.build]
run = "test -s dist/app.bin"
artifacts = ["dist/app.bin"]

[tasks.deploy]
on = "web"
deps = ["build"]
dir = "$DEST/{{ host }}"
run = "true"
EOF
  fresh="rm -rf $DEST && mkdir -p $DEST/h1 $DEST/h2 $DEST/h3"
  nexus_cmd="$fresh && cd $WORK/project && NEXUS_HOME=$WORK/home $NEXUS run deploy -q"
  scp_cmd="$fresh && printf 'h1\nh2\nh3\n' | xargs -P 3 -I{} scp -q -F $FLEET_SSH_CONFIG $WORK/project/dist/app.bin {}:$DEST/{}/app.bin"
  log "RTT ${rtt} ms: $RUNS rounds"
  alternate "rtt$rtt" "$RUNS" nexus "$nexus_cmd" scp "$scp_cmd"
  rss="$(python3 "$REPO/scripts/measure.py" -- sh -c "$nexus_cmd" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["maxrss_kb"]/1024, 1))')"
  python3 - "$OUT/rtt$rtt.json" "$rtt" "$rss" >> "$summary" <<'PY'
import json, statistics, sys
d = {r["command"]: r["times"] for r in json.load(open(sys.argv[1]))["results"]}
n, s = statistics.median(d["nexus"]), statistics.median(d["scp"])
print(f"| {sys.argv[2]} ms | {n:.2f} | {s:.2f} | {n / s:.2f}x | {sys.argv[3]} |")
PY
done
cat "$summary"
