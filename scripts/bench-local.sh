#!/usr/bin/env bash
# nexus against `make -j` and `just` on three generated task graphs (scripts/gen-dag.py), in one run.
#
#   scripts/bench-local.sh            build nexus (release), check, time, print the table
#
# Tools: hyperfine, GNU time, make and just (>= 1.42); scripts/bench-setup.sh local installs
# what is missing (SETUP=0 skips that; a just that cannot be installed is reported as skipped).
#
# Workloads (scripts/gen-dag.py, SEED=42, JOBS=8; see its docstring):
#   chain    1000 tasks `true`, each after the previous   -> per-task overhead
#   fan      200 independent `sleep 0.05`, 8 slots         -> lower bound 1.25 s
#   layered  300 `sleep 0.01`, 30 random layers, 8 slots  -> lower bound 0.375 s
# Per workload: every tool first runs a `.check` variant (each task appends its name to a
# log; the run counts only if every task ran exactly once, after all of its deps), then ONE
# hyperfine invocation times all tools that passed, so they share the machine's conditions.
# Then: `nexus --version` and `nexus validate` (1000-task chain) medians, and the peak RSS
# of nexus (`/usr/bin/time -f %M`, or scripts/measure.py's maxrss_kb) on every command above.
#
# Targets (ratios from the same run):
#   chain    nexus <= 1.2 x make (the faster of make -j1 / make -j8)
#   fan      nexus <= 1.05 x the 1.25 s lower bound
#   layered  nexus <= 1.0 x make -j8
#   `nexus --version` < 5 ms, `nexus validate` on the chain < 20 ms, peak RSS < 15 MB
#
# Environment:
#   RUNS=10 WARMUP=1          hyperfine runs per command (RUNS_STARTUP=50 for --version/validate)
#   WORKLOADS="chain fan layered"
#   MODES="..."               only these tool modes (names as in the table: nexus, make-j1,
#                             make-j8, just-serial, just-parallel-j8, nexus-text, nexus-plain)
#   EXTRA_MODES="..."         add modes to the defaults (e.g. "nexus-text nexus-plain",
#                             or just-serial on fan, left out by default: 10 s a run by design)
#   JOBS=8 SEED=42            passed to gen-dag.py
#   SETUP=1                   run scripts/bench-setup.sh local first when a tool is missing
#   BENCH_TOOLS               default: <repo>/.bench-tools (bench-setup.sh installs just here)
#   OUT                       default: <repo>/.bench-out/local (raw hyperfine JSON, summary)
#   NEXUS_BIN                 use this binary and skip `cargo build --release`
#   NEXUS_REV                 build this committed revision (e.g. HEAD) from `git archive` in
#                             a temp tree instead of the work tree (target/bench-rev/)
#   DAG_DIR                   where to generate the workloads (default: a temp dir, removed
#                             unless KEEP_DAG=1; copies go to $OUT/files/)
#   STEP_TIMEOUT=300          seconds, bound on every single run
#   WAIT_IDLE=60              before each hyperfine invocation, wait up to this many seconds
#                             for the CPUs to be >= IDLE_PCT (85) % idle (the machine is shared;
#                             other processes' load hurts nexus's thread hand-offs more than
#                             make's); 0 = do not wait. The idle share is recorded either way.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
GEN_DAG="$REPO/scripts/gen-dag.py"
MEASURE="$REPO/scripts/measure.py"
SETUP="${SETUP:-1}"
BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
OUT="${OUT:-$REPO/.bench-out/local}"
RUNS="${RUNS:-10}"
RUNS_STARTUP="${RUNS_STARTUP:-50}"
WARMUP="${WARMUP:-1}"
WORKLOADS="${WORKLOADS:-chain fan layered}"
JOBS="${JOBS:-8}"
SEED="${SEED:-42}"
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"
WAIT_IDLE="${WAIT_IDLE:-60}"
IDLE_PCT="${IDLE_PCT:-85}"
export PATH="$BENCH_TOOLS/bin:$PATH"

log() { printf '[bench-local %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 missing"
command -v make >/dev/null || die "make missing"

# shellcheck source=scripts/bench-common.sh
source "$REPO/scripts/bench-common.sh"

# ---- tools ---------------------------------------------------------------------------
mkdir -p "$OUT"
if [ "$SETUP" = 1 ] && ! { command -v hyperfine && [ -x /usr/bin/time ] && command -v just &&
                            just --help 2>/dev/null | grep -q -- --jobs; } >/dev/null 2>&1; then
  log "scripts/bench-setup.sh local (installs what is missing; the first time takes minutes)"
  "$REPO/scripts/bench-setup.sh" local > "$OUT/setup.log" 2>&1 ||
    log "WARNING: bench-setup.sh local failed: $(tail -1 "$OUT/setup.log")"
fi
command -v hyperfine >/dev/null || die "hyperfine missing: run scripts/bench-setup.sh local (or apt-get install hyperfine)"
if [ -x /usr/bin/time ]; then RSS_TOOL="/usr/bin/time -f %M"; else RSS_TOOL="scripts/measure.py maxrss_kb"; fi

JUST_SKIP=""
command -v just >/dev/null || JUST_SKIP="just not installed (scripts/bench-setup.sh local installs it)"
JUST_PARALLEL_SKIP=""
if [ -z "$JUST_SKIP" ] && ! grep -q -- '--jobs' <<< "$(just --help 2>/dev/null)"; then
  JUST_PARALLEL_SKIP="$(just --version) has no --jobs (needs a just with [parallel] and --jobs)"
fi
[ -n "$JUST_SKIP" ] && log "just SKIPPED: $JUST_SKIP"
[ -n "$JUST_PARALLEL_SKIP" ] && log "just-parallel SKIPPED: $JUST_PARALLEL_SKIP"

# ---- nexus ---------------------------------------------------------------------------
build_nexus

mkdir -p "$OUT"
if [ -z "${DAG_DIR:-}" ]; then DAG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-local.XXXXXX")"; made_tmp=1; else made_tmp=""; mkdir -p "$DAG_DIR"; fi
case "$DAG_DIR" in *' '*) die "DAG_DIR must not contain spaces (hyperfine -N splits on them)";; esac
cleanup() { if [ -n "$made_tmp" ] && [ "${KEEP_DAG:-0}" != 1 ]; then rm -rf "$DAG_DIR"; fi; }
trap cleanup EXIT
# Time a private copy: other people's `cargo build` may replace target/release/nexus mid-run.
cp "$NEXUS" "$DAG_DIR/nexus"
NEXUS_SRC="$NEXUS"
NEXUS="$DAG_DIR/nexus"
log "nexus: copy of $NEXUS_SRC ($("$NEXUS" --version 2>&1 | head -1), sha256 $(sha256sum "$NEXUS" | cut -c1-12)); DAG files in $DAG_DIR; results in $OUT"

# ---- machine facts -------------------------------------------------------------------
python3 - "$OUT/meta.json" "$NEXUS" "$RSS_TOOL" "$JUST_SKIP" "$JUST_PARALLEL_SKIP" "$RUNS" "$WARMUP" "$REPO" "${rev:-}" <<'EOF'
import json, os, platform, subprocess, sys, time
out, nexus, rss_tool, just_skip, jp_skip, runs, warmup, repo, rev = sys.argv[1:]
def sh(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception as e:
        return f"n/a ({e.__class__.__name__})"
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
meta = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nproc": os.cpu_count(), "cpu": cpu,
    "kernel": platform.release(), "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "nexus": sh(nexus, "--version"), "nexus_sha256": sh("sha256sum", nexus).split()[0], "source": rev,
    "make": sh("make", "--version"), "just": just_skip and f"skipped: {just_skip}" or sh("just", "--version"),
    "just_parallel_skip": jp_skip, "hyperfine": sh("hyperfine", "--version"), "rss_tool": rss_tool,
    "runs": int(runs), "warmup": int(warmup),
}
json.dump(meta, open(out, "w"), indent=1)
EOF
load1="$(cut -d' ' -f1 /proc/loadavg)"
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)" "$load1"; then
  log "WARNING: load average $load1 at start: another process is using the CPUs; numbers will be noisy"
fi

# ---- modes ---------------------------------------------------------------------------
default_modes() {
  case "$1" in
    chain) echo "nexus make-j1 make-j$JOBS just-serial just-parallel-j$JOBS" ;;
    fan)   echo "nexus make-j$JOBS just-parallel-j$JOBS" ;;       # just-serial: 200 x 0.05 s = 10 s
    *)     echo "nexus make-j$JOBS just-serial just-parallel-j$JOBS" ;;
  esac
}

# cmd_for MODE DIR [check]: the command line (no shell; hyperfine -N)
cmd_for() {
  local mode="$1" d="$2" chk="${3:-}"
  local toml="$d/nexus.toml" sfx=""
  if [ -n "$chk" ]; then toml="$d/nexus.check.toml"; sfx=".check"; fi
  case "$mode" in
    nexus)            echo "$NEXUS -c $toml run all -q" ;;
    nexus-plain)      echo "$NEXUS -c $toml run all -q --plain" ;;
    nexus-text)       echo "$NEXUS -c $toml run all" ;;
    make-j*)          echo "make -s -C $d -f Makefile$sfx -j${mode#make-j} all" ;;
    just-serial)      echo "just --justfile $d/justfile$sfx all" ;;
    just-parallel-j*) echo "just --justfile $d/justfile.parallel$sfx --jobs ${mode#just-parallel-j} all" ;;
    *) return 1 ;;
  esac
}

# peak_rss_kb CMD...: peak RSS (KB) of the command's largest process
peak_rss_kb() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o "$DAG_DIR/rss.txt" "$@" > /dev/null 2>&1 || return 1
    tail -1 "$DAG_DIR/rss.txt"
  else
    python3 "$MEASURE" -- "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["maxrss_kb"])'
  fi
}

: > "$OUT/skipped.txt"
: > "$OUT/rss.tsv"
rss_note() { # tag kb: keep the largest of 3 runs
  printf '%s\t%s\n' "$1" "$2" >> "$OUT/rss.tsv"
}
measure_rss() { # tag CMD...
  local tag="$1" best=0 kb; shift
  for _ in 1 2 3; do
    kb="$(peak_rss_kb "$@")" || { log "$tag: RSS run failed"; return 0; }
    [ "$kb" -gt "$best" ] && best="$kb"
  done
  rss_note "$tag" "$best"
}

# ---- workloads -----------------------------------------------------------------------
for w in $WORKLOADS; do
  d="$DAG_DIR/$w"
  o="$OUT/$w"
  rm -rf "$o"; mkdir -p "$d" "$o"
  meta="$(python3 "$GEN_DAG" "$w" "$d" --seed "$SEED" --jobs "$JOBS" --check-log "$d/check.log")"
  log "$w: $meta"
  python3 "$REPO/scripts/dag_to_nexus.py" "$d/tasks.json" -o "$d/nexus.toml"
  python3 "$REPO/scripts/dag_to_nexus.py" "$d/tasks.json" --check "$d/check.log" -o "$d/nexus.check.toml"
  cp "$d/tasks.json" "$o/tasks.json"

  modes=""
  for m in $(default_modes "$w") ${EXTRA_MODES:-}; do
    if [ -n "${MODES:-}" ] && [[ " $MODES " != *" $m "* ]]; then continue; fi
    [[ " $modes " == *" $m "* ]] && continue
    if [[ "$m" == just* ]] && [ -n "$JUST_SKIP" ]; then
      printf '%s\t%s\t%s\n' "$w" "$m" "$JUST_SKIP" >> "$OUT/skipped.txt"; continue
    fi
    if [[ "$m" == just-parallel* ]] && [ -n "$JUST_PARALLEL_SKIP" ]; then
      printf '%s\t%s\t%s\n' "$w" "$m" "$JUST_PARALLEL_SKIP" >> "$OUT/skipped.txt"; continue
    fi
    # 1. check run: every task exactly once, each after all of its deps
    rm -f "$d/check.log"
    set +e
    # shellcheck disable=SC2046
    timeout -k 5 "$STEP_TIMEOUT" $(cmd_for "$m" "$d" check) > "$o/$m.check.out" 2>&1
    crc=$?
    set -e
    if chk="$(python3 "$REPO/scripts/dag_to_nexus.py" verify "$d/tasks.json" "$d/check.log" --rc "$crc")"; then
      log "$w/$m: check ok $chk"
      modes="$modes $m"
    else
      log "$w/$m: CHECK FAILED, not timed: $chk (output: $o/$m.check.out)"
      tail -3 "$o/$m.check.out" >&2 || true
      printf '%s\t%s\t%s\n' "$w" "$m" "check failed: $chk" >> "$OUT/skipped.txt"
    fi
    echo "$chk" > "$o/$m.check.json"
  done
  [ -n "$modes" ] || { log "$w: nothing to time"; continue; }

  # 2. one hyperfine invocation for all modes of this workload
  args=()
  for m in $modes; do args+=(-n "$m" "timeout -k 5 $STEP_TIMEOUT $(cmd_for "$m" "$d")"); done
  idle="$(wait_idle)"
  echo "$idle" > "$o/idle_before.txt"
  log "$w: hyperfine -N --warmup $WARMUP --runs $RUNS:$modes (CPUs $idle % idle before)"
  echo "load before: $(cat /proc/loadavg); CPU idle over 2 s before: $idle %" > "$o/hyperfine.log"
  if ! hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$o/hyperfine.json" \
      "${args[@]}" 2>&1 | tee -a "$o/hyperfine.log" | grep -E '^(Benchmark|  Time|  Range)' >&2; then
    :
  fi
  echo "load after: $(cat /proc/loadavg)" >> "$o/hyperfine.log"
  [ -s "$o/hyperfine.json" ] || log "$w: HYPERFINE FAILED (see $o/hyperfine.log)"

  # 3. peak RSS of nexus (and of the others, for context)
  for m in $modes; do
    # shellcheck disable=SC2046
    measure_rss "$w/$m" $(cmd_for "$m" "$d")
  done
done

# ---- start-up: --version and validate ------------------------------------------------
chain_toml="$DAG_DIR/chain/nexus.toml"
[ -f "$chain_toml" ] || { mkdir -p "$DAG_DIR/chain"; python3 "$GEN_DAG" chain "$DAG_DIR/chain" --seed "$SEED" --jobs "$JOBS" > /dev/null;
                          python3 "$REPO/scripts/dag_to_nexus.py" "$DAG_DIR/chain/tasks.json" -o "$chain_toml"; }
mkdir -p "$OUT/startup"
"$NEXUS" -c "$chain_toml" validate > "$OUT/startup/validate.out" 2>&1 || die "nexus validate failed on the chain: $(cat "$OUT/startup/validate.out")"
idle="$(wait_idle)"; echo "$idle" > "$OUT/startup/idle_before.txt"
log "startup: hyperfine -N --warmup 3 --runs $RUNS_STARTUP: nexus --version, nexus validate (chain)"
hyperfine -N --style basic --warmup 3 --runs "$RUNS_STARTUP" --export-json "$OUT/startup/hyperfine.json" \
  -n "nexus --version" "$NEXUS --version" \
  -n "nexus validate (chain, 1001 tasks)" "$NEXUS -c $chain_toml validate" \
  2>&1 | tee "$OUT/startup/hyperfine.log" | grep -E '^(Benchmark|  Time|  Range)' >&2 || true
measure_rss "startup/--version" "$NEXUS" --version
measure_rss "startup/validate" "$NEXUS" -c "$chain_toml" validate

if [ -n "$made_tmp" ] && [ "${KEEP_DAG:-0}" != 1 ]; then
  mkdir -p "$OUT/files"; cp -r "$DAG_DIR"/. "$OUT/files/"; rm -f "$OUT/files/rss.txt"
fi

# ---- summary -------------------------------------------------------------------------
python3 - "$OUT" "$WORKLOADS" <<'EOF' | tee "$OUT/summary.md"
import json, os, statistics, sys
out, workloads = sys.argv[1], sys.argv[2].split()
meta = json.load(open(os.path.join(out, "meta.json")))
meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]

def results(path):
    try:
        data = json.load(open(path))["results"]
    except (OSError, ValueError, KeyError):
        return {}
    res = {}
    for r in data:
        times = r.get("times") or []
        med = r.get("median", statistics.median(times) if times else None)
        res[r["command"]] = {"median": med, "mean": r["mean"], "stddev": r.get("stddev"),
                             "min": r["min"], "max": r["max"], "user": r.get("user"), "system": r.get("system"),
                             "runs": len(times)}
    return res

rss = {}
try:
    for line in open(os.path.join(out, "rss.tsv")):
        k, v = line.rstrip("\n").split("\t")
        rss[k] = int(v)
except OSError:
    pass
skipped = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "skipped.txt")) if l.strip()]

summary = {"meta": meta, "workloads": {}, "startup": {}, "rss_kb": rss, "skipped": skipped, "targets": []}
targets = summary["targets"]
def target(name, value, limit, unit, detail):
    ok = value is not None and value <= limit
    targets.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": ok, "detail": detail})

cols = ["nexus", "make-j1", "make-j8", "just-serial", "just-parallel-j8", "nexus-plain", "nexus-text"]
print(f"# nexus vs make / just — local DAG workloads\n")
print(f"{meta['date']}, {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}, "
      f"load {' '.join(meta['loadavg_start'])} at start, {' '.join(meta['loadavg_end'])} at end; "
      f"{meta['nexus']} built from {meta['source']}, {meta['make']}, just: {meta['just']}, {meta['hyperfine']}; "
      f"hyperfine -N, {meta['warmup']} warmup + {meta['runs']} runs per command.\n")
print("## Medians (s)\n")
present = []
for w in workloads:
    r = results(os.path.join(out, w, "hyperfine.json"))
    tj = json.load(open(os.path.join(out, w, "tasks.json")))
    try:
        idle = int(open(os.path.join(out, w, "idle_before.txt")).read())
    except (OSError, ValueError):
        idle = None
    summary["workloads"][w] = {"results": r, "lower_bound_s": tj["lower_bound_s"], "ideal_fifo_s": tj["ideal_fifo_s"],
                               "tasks": tj["tasks_total"], "cpu_idle_pct_before": idle}
    present += [c for c in r if c not in present]
order = [c for c in cols if c in present] + [c for c in present if c not in cols]
print("| workload | lower bound | " + " | ".join(order) + " |")
print("|---|---:|" + "---:|" * len(order))
for w in workloads:
    s = summary["workloads"][w]
    cells = []
    for c in order:
        x = s["results"].get(c)
        cells.append(f"{x['median']:.3f} (±{x['stddev'] or 0:.3f})" if x else "–")
    print(f"| {w} ({s['tasks']} tasks) | {s['lower_bound_s']:.3f} | " + " | ".join(cells) + " |")
print("\n(± is hyperfine's standard deviation)\n")
print("## CPU time per run, user + sys of the tool and its children (s, hyperfine mean)\n")
print("| workload | CPUs idle before | " + " | ".join(order) + " |")
print("|---|---:|" + "---:|" * len(order))
for w in workloads:
    s = summary["workloads"][w]
    cells = []
    for c in order:
        x = s["results"].get(c)
        cells.append(f"{x['user'] + x['system']:.3f}" if x and x["user"] is not None else "–")
    idle = s["cpu_idle_pct_before"]
    print(f"| {w} | {'?' if idle is None else idle} % | " + " | ".join(cells) + " |")
print()

print("## Ratios (nexus median / other median)\n")
print("| workload | " + " | ".join(f"nexus / {c}" for c in order if c != "nexus") + " | nexus / lower bound |")
print("|---|" + "---:|" * (len(order)))
for w in workloads:
    s = summary["workloads"][w]
    n = s["results"].get("nexus")
    cells = []
    ratios = {}
    for c in order:
        if c == "nexus":
            continue
        x = s["results"].get(c)
        if n and x:
            ratios[c] = n["median"] / x["median"]
            cells.append(f"{ratios[c]:.2f}")
        else:
            cells.append("–")
    lb = s["lower_bound_s"]
    if n and lb:
        ratios["lower_bound"] = n["median"] / lb
    cells.append(f"{ratios['lower_bound']:.2f}" if "lower_bound" in ratios else "–")
    s["ratios"] = ratios
    print(f"| {w} | " + " | ".join(cells) + " |")
    if not n:
        continue
    if w == "chain":
        makes = {c: s["results"][c]["median"] for c in ("make-j1", "make-j8") if c in s["results"]}
        if makes:
            best = min(makes, key=makes.get)
            target("chain: nexus <= 1.2 x make", n["median"] / makes[best], 1.2, "x",
                   f"nexus {n['median']:.3f} s vs {best} {makes[best]:.3f} s (faster make)")
    elif w == "fan":
        target("fan: nexus <= 1.05 x 1.25 s bound", n["median"] / lb, 1.05, "x",
               f"nexus {n['median']:.3f} s vs bound {lb:.3f} s")
    elif w == "layered" and "make-j8" in s["results"]:
        m = s["results"]["make-j8"]["median"]
        target("layered: nexus <= 1.0 x make -j8", n["median"] / m, 1.0, "x",
               f"nexus {n['median']:.3f} s vs make-j8 {m:.3f} s")

st = results(os.path.join(out, "startup", "hyperfine.json"))
summary["startup"] = st
print("\n## Start-up\n")
print("| command | median | mean ± sd | min |")
print("|---|---:|---:|---:|")
for c, x in st.items():
    print(f"| {c} | {x['median']*1000:.2f} ms | {x['mean']*1000:.2f} ± {(x['stddev'] or 0)*1000:.2f} ms | {x['min']*1000:.2f} ms |")
for c, x in st.items():
    if "--version" in c:
        target("nexus --version < 5 ms", x["median"] * 1000, 5, "ms", f"median of {x['runs']} runs")
    elif "validate" in c:
        target("nexus validate (1000-task chain) < 20 ms", x["median"] * 1000, 20, "ms", f"median of {x['runs']} runs")

print(f"\n## Peak RSS ({meta['rss_tool']}, largest of 3 runs)\n")
print("| command | peak RSS |")
print("|---|---:|")
for k, v in rss.items():
    print(f"| {k} | {v / 1024:.1f} MB |")
nexus_rss = {k: v for k, v in rss.items() if k.split("/", 1)[1].startswith(("nexus", "--version", "validate"))}
if nexus_rss:
    worst = max(nexus_rss, key=nexus_rss.get)
    target("nexus peak RSS < 15 MB", nexus_rss[worst] / 1024, 15, "MB", f"largest: {worst}")

print("\n## Targets\n")
print("| target | measured | limit | met |")
print("|---|---:|---:|---|")
for t in targets:
    val = f"{t['value']:.2f} {t['unit']}" if t["value"] is not None else "–"
    print(f"| {t['target']} | {val} ({t['detail']}) | {t['limit']} {t['unit']} | {'yes' if t['met'] else '**NO**'} |")
if skipped:
    print("\n## Skipped\n")
    for w, m, why in skipped:
        print(f"- {w}/{m}: {why}")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
EOF
log "raw results: $OUT (summary.md, summary.json, <workload>/hyperfine.json)"
