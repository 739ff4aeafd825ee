#!/usr/bin/env bash
# Pre-flight of N loopback hosts against connecting to them once (`nexus run` of `true`):
# the issue's target is preflight < 2x. Uses scripts/fleet.sh on its own port and state
# dir, and stops it on exit. Needs hyperfine (scripts/bench-setup.sh local installs it).
# Knobs: N (100), RUNS (5), NEXUS_BIN, BENCH_OUT, BENCH_STATE, BENCH_PORT.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
fleet=$repo/scripts/fleet.sh
N=${N:-100}
RUNS=${RUNS:-5}
export BENCH_STATE=${BENCH_STATE:-/tmp/nexus-bench-preflight}
export BENCH_PORT=${BENCH_PORT:-23022}
out=${BENCH_OUT:-$repo/.bench-out}/preflight
mkdir -p "$out"
bin=${NEXUS_BIN:-$repo/target/release/nexus}
[ -x "$bin" ] || (cd "$repo" && cargo build --release)
command -v hyperfine >/dev/null || "$repo/scripts/bench-setup.sh" local >&2
tmp=$(mktemp -d)
cp "$bin" "$tmp/nexus"
trap '"$fleet" stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$fleet" start "$N" 2> "$tmp/fleet.log" || { cat "$tmp/fleet.log" >&2; exit 1; }
eval "$("$fleet" env)"
hosts=$(seq 1 "$N" | sed 's/^/"h/; s/$/"/' | paste -sd, -)
cat > "$tmp/nexus.toml" <<TOML
[config]
ssh_config = "$FLEET_SSH_CONFIG"
max_connections = 1000
[hosts]
fleet = [$hosts]
[tasks.t]
on = "fleet"
run = "true"
TOML
export NEXUS_HOME="$tmp/home"
n="$tmp/nexus -c $tmp/nexus.toml"
# Sanity: both succeed on every host.
$n preflight t --plain >/dev/null 2>&1 || { echo "preflight failed"; $n preflight t --format quiet --plain; exit 1; }
$n run t -q --no-resume >/dev/null 2>&1
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/n$N.json" \
  -n "run (connect once + true)" "$n run t -q --no-resume" \
  -n "preflight --parallel 10" "$n preflight t" \
  -n "preflight --parallel 100" "$n preflight t --parallel 100" >/dev/null 2>&1
python3 - "$out/n$N.json" "$N" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: statistics.median(r["times"]) for r in res}
base = med["run (connect once + true)"]
print(f"N = {sys.argv[2]} hosts, medians of {len(res[0]['times'])} runs")
print("| command | median (s) | ratio to run |")
print("|---|---:|---:|")
for k, v in med.items():
    print(f"| {k} | {v:.3f} | {v/base:.2f}x |")
PY
