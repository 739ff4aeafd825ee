#!/usr/bin/env bash
# Daily use against just and make (issue 11): one project of 25 recipes written three ways
# (nexus.toml, justfile, Makefile), timed in alternating rounds in one run:
#
#   trivial   the `hello` recipe (`echo hello`): nexus run hello, nexus hello, just hello,
#             make hello
#   list      nexus list, just --list (make has no list)
#   stream    a recipe printing STREAM_MB MiB of lines (`yes ... | head -c`), every tool's
#             stdout to /dev/null; `sh -c` of the same pipeline is the floor
#
# Targets (issue 11): trivial nexus run <= 1.5x just; nexus list <= 1.0x just --list;
# streaming output must not cost throughput (scripts/bench-output.sh has the 1 GB case).
#
#   scripts/bench-daily.sh
#
# Environment:
#   RUNS=30           rounds of trivial and list; RUNS_STREAM=7 of stream
#   STREAM_MB=200     size of the streamed output
#   NEXUS_BIN         use this binary instead of building target/release/nexus
#   JUST_BIN          default: just on PATH, else /work/.bench-tools/bin/just or
#                     <repo>/.bench-tools/bin/just (scripts/bench-setup.sh local installs it)
#   OUT               default: <repo>/.bench-out/daily (raw times and summary.md)
#   WAIT_IDLE=60      wait up to this many seconds for >= 85 % idle CPUs first (0: don't)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-30}"
RUNS_STREAM="${RUNS_STREAM:-7}"
STREAM_MB="${STREAM_MB:-200}"
OUT="${OUT:-$REPO/.bench-out/daily}"
IDLE_PCT="${IDLE_PCT:-85}"
WAIT_IDLE="${WAIT_IDLE:-60}"
log() { echo "bench-daily: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

JUST="${JUST_BIN:-$(command -v just || true)}"
for j in /work/.bench-tools/bin/just "$REPO/.bench-tools/bin/just"; do
  [ -z "$JUST" ] && [ -x "$j" ] && JUST="$j"
done
[ -n "$JUST" ] || die "just is missing: scripts/bench-setup.sh local (or JUST_BIN=PATH)"
command -v make >/dev/null || die "make is missing"

mkdir -p "$OUT"
build_nexus
DIR="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-daily.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
export NEXUS_HOME="$DIR/home"
bytes=$((STREAM_MB * 1024 * 1024))
stream="yes 'a line of output from a build, about sixty bytes long......' | head -c $bytes"

# 25 recipes: hello, stream, and 23 ordinary ones (a short shell line each; a few
# depend on others), as a ported justfile would have.
python3 - "$DIR" "$stream" <<'PY'
import sys
d, stream = sys.argv[1:3]
names = ["build", "test", "lint", "fmt", "check", "doc", "bench", "clean", "install",
         "release", "deploy", "logs", "db-migrate", "db-reset", "seed", "serve", "watch",
         "coverage", "audit", "outdated", "changelog", "version", "ci"]
recipes = [("hello", "echo hello", []), ("stream", stream, [])]
for i, n in enumerate(names):
    deps = [names[i - 1]] if i % 5 == 4 else []
    recipes.append((n, f"echo {n} step {i} >/dev/null", deps))
toml, just, make = [], [], [".PHONY: " + " ".join(n for n, _, _ in recipes), ""]
for n, cmd, deps in recipes:
    toml.append(f"[tasks.{n}]\ndesc = \"the {n} recipe\"\n"
                + (f"deps = {deps!r}\n".replace("'", '"') if deps else "")
                + f"run = {cmd!r}\n")
    just.append(f"# the {n} recipe\n{n}:{''.join(' ' + x for x in deps)}\n    {cmd}\n")
    make.append(f"{n}:{''.join(' ' + x for x in deps)}\n\t@{cmd}\n")
open(f"{d}/nexus.toml", "w").write("\n".join(toml))
open(f"{d}/justfile", "w").write("\n".join(just))
open(f"{d}/Makefile", "w").write("\n".join(make))
PY
cd "$DIR"
"$NEXUS" validate >/dev/null || die "nexus validate failed on $DIR/nexus.toml"
[ "$("$NEXUS" run hello 2>/dev/null)" = hello ] || die "nexus run hello did not print hello"
[ "$("$JUST" hello 2>/dev/null)" = hello ] || die "just hello did not print hello"
[ "$(make -s hello)" = hello ] || die "make hello did not print hello"
[ "$("$NEXUS" run stream 2>/dev/null | wc -c)" = "$bytes" ] || die "nexus run stream lost output"
[ "$("$NEXUS" list | grep -c recipe)" = 25 ] || die "nexus list does not show the 25 recipes"

idle="$(wait_idle)"
log "CPUs $idle % idle; timing in alternating rounds"
export WARMUP=2
alternate trivial "$RUNS" \
  "nexus run hello" "$NEXUS run hello" \
  "nexus hello" "$NEXUS hello" \
  "just hello" "$JUST hello" \
  "make hello" "make -s hello"
alternate list "$RUNS" \
  "nexus list" "$NEXUS list" \
  "just --list" "$JUST --list"
alternate stream "$RUNS_STREAM" \
  "sh -c (floor)" "sh -c \"$stream\"" \
  "nexus run stream" "$NEXUS run stream" \
  "just stream" "$JUST stream" \
  "make stream" "make -s stream"

python3 - "$OUT" "$rev" "$idle" "$("$JUST" --version)" "$STREAM_MB" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, rev, idle, justv, mb = sys.argv[1:6]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"nexus: {rev}; {justv}; {cpu}, {os.cpu_count()} CPUs; CPUs {idle} % idle at the start\n")
print("| case | command | median wall ms | median CPU ms (user+sys) |\n|---|---|---:|---:|")
med = {}
for case in ("trivial", "list", "stream"):
    for r in json.load(open(os.path.join(out, case + ".json")))["results"]:
        t, c = sorted(r["times"]), sorted(r["cpu"])
        med[r["command"]] = t[len(t) // 2] * 1000
        print(f"| {case} | `{r['command']}` | {med[r['command']]:.1f} | {c[len(c) // 2] * 1000:.1f} |")
def ratio(a, b, target=None):
    x = med[a] / med[b]
    verdict = "" if target is None else f" (target <= {target}: {'met' if x <= target else 'NOT met'})"
    return f"- `{a}` / `{b}` = {x:.2f}x{verdict}"
print()
print(ratio("nexus run hello", "just hello", 1.5))
print(ratio("nexus hello", "just hello", 1.5))
print(ratio("nexus list", "just --list", 1.0))
print(ratio("nexus run stream", "sh -c (floor)"))
print(ratio("just stream", "sh -c (floor)"))
print(ratio("nexus run stream", "just stream"))
print(f"\n(stream: {mb} MiB of 60-byte lines, every tool's stdout to /dev/null; just and make hand the command their own stdout, nexus reads it through a pipe to keep the head and tail for the journal and the failure report)")
PY
