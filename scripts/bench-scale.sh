#!/usr/bin/env bash
# nexus on 300 to 10,000 hosts from one coordinator (issue 18), with default settings, on
# the loopback fleet of scripts/fleet.sh spread over several sshd processes.
#
#   scripts/bench-scale.sh          build nexus (release), run every step, print the tables
#
# Steps (every heavy step runs alone; the machine has 2 cores, shared):
#   0. limits of the machine (ulimit -n, pid_max, threads-max, cgroup pids, ephemeral ports,
#      somaxconn, sshd MaxStartups) -> limits.json.
#   1. sweep: for N in $NS, `BENCH_SSHD_COUNT=$SSHD_COUNT fleet.sh start N`, then RUNS runs
#      (RUNS_BIG for N >= BIG_FROM) of `nexus -c nexus.toml run t -q`, task `true` on h1..hN,
#      each under scripts/measure.py: wall, nexus CPU, sshd CPU (every sshd listener and all
#      its descendants, the per-connection and per-session processes included: their own and
#      reaped children's CPU, before and after), peak RSS (GNU time %M), peak open
#      descriptors and threads of the nexus process (/proc/PID/fd and /proc/PID/stat sampled
#      every SAMPLE_S s), machine CPU busy and steal (/proc/stat), load. Also TCP accepts
#      (PassiveOpens) and ListenOverflows growth. A run counts only if it exits 0 and -q
#      prints `ok t (...)`. The sshd CPU floor is sshd CPU / 2 cores; the target is
#      wall <= 1.3 x floor.
#   2. peers: at PEERS_N (1000) on the same fleet, ROUNDS_PEERS rounds, each running once, in
#      an order rotated per round: nexus (same command), OpenSSH (`xargs -P 256 ssh`),
#      pyinfra (`exec -y`, its default --parallel) and parallel-ssh (ParallelSSHClient with
#      its defaults: pool_size 100, 3 retries), each under measure.py; failures counted from
#      each tool's output.
#   3. latency: the fleet again with BENCH_RTT_MS=$RTT_MS (the delay relay, fleet.sh, in front of
#      every sshd): RUNS_RTT runs at RTT_N hosts, and RUNS_ONE runs on one host through the
#      relay and straight to its sshd, alternately: the difference is one host's handshake-and-command
#      latency, the part of a run no parallelism can hide. Target: wall <= 1.3 x floor + that.
#      The relay's CPU is measured apart (it shares the cores).
#   4. $OUT/summary.md and $OUT/summary.json.
#
# nexus.toml holds only what the fleet needs: ssh_config = the fleet's, host_key_checking
# = "off" (the fleet's host key is not in known_hosts); every other setting is nexus's
# default (max_connections 256, pool_size 4, parallel_limit 10, handshakes_per_endpoint 6,
# connect_timeout 10s).
#
# Environment:
#   NS="300 1000 3000 10000"  RUNS=3  RUNS_BIG=1  BIG_FROM=3000
#   PEERS_N=1000  ROUNDS_PEERS=2  PEERS="ssh pyinfra pssh"  XARGS_P=256   (ROUNDS_PEERS=0 skips)
#   RTT_MS=20  RTT_N=1000  RUNS_RTT=2  RUNS_ONE=5                         (RTT_MS=0 skips)
#   SSHD_COUNT=8  BENCH_PORT=23022 (ports BENCH_PORT..+SSHD_COUNT-1, relay +100..)
#   STEP_TIMEOUT=900 (s, bound on every run)  SAMPLE_S=0.2
#   WAIT_IDLE=60 IDLE_PCT=85  before each timed step wait (bounded) for idle CPUs; recorded
#   NEXUS_BIN / NEXUS_REV     as scripts/bench-ssh.sh (a binary, or a committed revision)
#   BENCH_TOOLS               venv with pyinfra and parallel-ssh (default <repo>/.bench-tools)
#   BENCH_OUT                 default <repo>/.bench-out; results in $BENCH_OUT/scale
#   BENCH_STATE               fleet state (default ${TMPDIR:-/tmp}/nexus-bench-scale-fleet);
#                             the fleet is stopped on exit (trap)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
NS="${NS-300 1000 3000 10000}"
RUNS="${RUNS:-3}"
RUNS_BIG="${RUNS_BIG:-1}"
BIG_FROM="${BIG_FROM:-3000}"
PEERS_N="${PEERS_N:-1000}"
ROUNDS_PEERS="${ROUNDS_PEERS:-2}"
PEERS="${PEERS-ssh pyinfra pssh}"
XARGS_P="${XARGS_P:-256}"
RTT_MS="${RTT_MS:-20}"
RTT_N="${RTT_N:-1000}"
RUNS_RTT="${RUNS_RTT:-2}"
RUNS_ONE="${RUNS_ONE:-5}"
SSHD_COUNT="${SSHD_COUNT:-8}"
STEP_TIMEOUT="${STEP_TIMEOUT:-900}"
SAMPLE_S="${SAMPLE_S:-0.2}"
WAIT_IDLE="${WAIT_IDLE:-60}"
IDLE_PCT="${IDLE_PCT:-85}"
export BENCH_OUT="${BENCH_OUT:-$REPO/.bench-out}"
export BENCH_STATE="${BENCH_STATE:-${TMPDIR:-/tmp}/nexus-bench-scale-fleet}"
export BENCH_PORT="${BENCH_PORT:-23022}"
export BENCH_SSHD_COUNT="$SSHD_COUNT"
export BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
export PATH="$BENCH_TOOLS/venv/bin:$BENCH_TOOLS/bin:$PATH"
# parallel-ssh asks git for its version at import (see bench-peers.sh)
export GIT_CEILING_DIRECTORIES="$BENCH_TOOLS${GIT_CEILING_DIRECTORIES:+:$GIT_CEILING_DIRECTORIES}"
OUT="$BENCH_OUT/scale"
FLEET="$REPO/scripts/fleet.sh"
MEASURE="$REPO/scripts/measure.py"

log() { printf '[bench-scale %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x /usr/bin/time ] || die "/usr/bin/time missing (scripts/bench-setup.sh ssh)"
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing (scripts/bench-setup.sh ssh)"

# shellcheck source=scripts/bench-common.sh
source "$REPO/scripts/bench-common.sh"
build_nexus

for ((k = 0; k < SSHD_COUNT; k++)); do
  for p in $((BENCH_PORT + k)) $((BENCH_PORT + 100 + k)); do
    if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$p\$" && ! "$FLEET" status > /dev/null 2>&1; then
      die "port $p is in use by another process (someone else's fleet?); set BENCH_PORT"
    fi
  done
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-scale.XXXXXX")"
cleanup() {
  "$FLEET" stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$NEXUS" "$WORK/nexus"  # others' builds may replace target/release/nexus mid-run
NEXUS_SRC="$NEXUS"
NEXUS="$WORK/nexus"
export NEXUS_HOME="$WORK/nexus-home"
fresh_home() { rm -rf "$NEXUS_HOME"; mkdir -p "$NEXUS_HOME"; }
rm -rf "$OUT"; mkdir -p "$OUT"
log "nexus: copy of $NEXUS_SRC ($("$NEXUS" --version 2>&1 | head -1)), $rev; results in $OUT"

# ---- 0. limits -------------------------------------------------------------------------
python3 - "$OUT/meta.json" "$NEXUS" "$rev" "$SSHD_COUNT" <<'EOF'
import json, os, platform, resource, subprocess, sys, time
out, nexus, rev, count = sys.argv[1:]
def rd(p):
    try:
        return open(p).read().strip()
    except OSError:
        return None
def sh(*c):
    try:
        p = subprocess.run(c, capture_output=True, text=True, timeout=30)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
    except Exception as e:
        return f"n/a ({e.__class__.__name__})"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
nproc_soft, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
venv_py = os.path.join(os.environ.get("BENCH_TOOLS", ""), "venv", "bin", "python")
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M %Z"), "nproc": os.cpu_count(), "cpu": cpu,
    "kernel": platform.release(), "loadavg_start": rd("/proc/loadavg"),
    "nexus": sh(nexus, "--version"), "source": rev, "ssh": sh("ssh", "-V"),
    "pyinfra": sh("pyinfra", "--version"),
    "parallel_ssh": sh(venv_py, "-c", "import importlib.metadata as m; print(m.version('parallel-ssh'))"),
    "sshd_count": int(count),
    "limits": {
        "nofile_soft": soft, "nofile_hard": hard, "nproc_soft": nproc_soft, "nproc_hard": nproc_hard,
        "pid_max": rd("/proc/sys/kernel/pid_max"), "threads_max": rd("/proc/sys/kernel/threads-max"),
        "cgroup_pids_max": rd("/sys/fs/cgroup/pids.max") or rd("/sys/fs/cgroup/pids/pids.max"),
        "ip_local_port_range": rd("/proc/sys/net/ipv4/ip_local_port_range"),
        "tcp_tw_reuse": rd("/proc/sys/net/ipv4/tcp_tw_reuse"), "somaxconn": rd("/proc/sys/net/core/somaxconn"),
        "tcp_max_syn_backlog": rd("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
        "file_max": rd("/proc/sys/fs/file-max"),
    },
}
json.dump(meta, open(out, "w"), indent=1)
print(json.dumps(meta["limits"]))
EOF

# ---- helpers ---------------------------------------------------------------------------
tcp_counter() { # FILE SECTION NAME
  awk -v sec="$2:" -v name="$3" '$1 == sec { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (k[i] == name) print $i } }' "$1"
}
passive_opens() { tcp_counter /proc/net/snmp Tcp PassiveOpens; }
listen_overflows() { tcp_counter /proc/net/netstat TcpExt ListenOverflows; }
time_wait() { ss -tan state time-wait 2>/dev/null | tail -n +2 | wc -l; }

start_fleet() { # N [RTT]
  BENCH_RTT_MS="${2:-0}" "$FLEET" start "$1" 2> "$WORK/fleet.log" || { cat "$WORK/fleet.log" >&2; die "fleet.sh start $1 failed"; }
  eval "$("$FLEET" env)"
}

# write_toml FILE N: task `t` running `true` on h1..hN, defaults but for what the fleet needs
write_toml() {
  python3 - "$1" "$2" "$FLEET_SSH_CONFIG" <<'EOF'
import sys
path, n, cfg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hosts = ", ".join(f'"h{i}"' for i in range(1, n + 1))
open(path, "w").write(f'''# generated by scripts/bench-scale.sh: {n} hosts of the scripts/fleet.sh loopback fleet
[config]
ssh_config = "{cfg}"
host_key_checking = "off"

[hosts]
fleet = [{hosts}]

[tasks.t]
on = "fleet"
run = "true"
''')
EOF
}

# measured STEP TAG N TOOL JSONL -- CMD...: one run under measure.py; appends one JSON line
# (measure.py's fields plus step, tag, n, tool, ok, failures, TCP counters) to JSONL
measured() {
  local step="$1" tag="$2" n="$3" tool="$4" jsonl="$5"; shift 6
  local args=() f po0 lo0 mrc idle
  for f in $FLEET_SSHD_PIDFILES; do args+=(--server-pidfile "$f"); done
  [ -s "$BENCH_STATE/relay.pid" ] && args+=(--aux-pidfile "$BENCH_STATE/relay.pid")
  [ "$tool" = nexus ] && fresh_home
  idle="$(wait_idle)"
  po0="$(passive_opens)"; lo0="$(listen_overflows)"
  set +e
  python3 "$MEASURE" "${args[@]}" --fds --interval "$SAMPLE_S" --timeout "$STEP_TIMEOUT" \
    --log "$WORK/run.log" -- "$@" > "$WORK/measure.json"
  mrc=$?
  set -e
  local po=$(( $(passive_opens) - po0 )) lo=$(( $(listen_overflows) - lo0 )) tw
  tw="$(time_wait)"
  cp "$WORK/run.log" "$OUT/logs/$step-$tag-$tool-n$n.log" 2>/dev/null || true
  python3 - "$WORK/measure.json" "$WORK/run.log" "$step" "$tag" "$n" "$tool" "$po" "$lo" "$tw" "$idle" >> "$jsonl" <<'EOF'
import json, re, sys
src, logf, step, tag, n, tool, po, lo, tw, idle = sys.argv[1:]
n = int(n)
try:
    m = json.load(open(src))
except ValueError:
    m = {"rc": None, "error": "measure.py printed no result"}
text = open(logf, errors="replace").read()
rc = m.get("rc")
if tool == "nexus":
    # -q: one line `ok t (...)` and exit 0; a failing run names its hosts
    lines = [l for l in text.splitlines() if l.strip() and "host key checking is off" not in l]
    ok = rc == 0 and any(re.fullmatch(r"ok t \(.*\)", l) for l in lines)
    good = n if ok else None
    failures = 0 if ok else (n if rc is None else None)
    m["output_tail"] = lines[-3:]
elif tool == "ssh":
    # xargs: 0 only if every ssh exited 0; every failing ssh prints a line (LogLevel ERROR)
    errs = [l for l in text.splitlines() if l.strip()]
    failures = 0 if rc == 0 else len(errs)
    good = n - failures if rc is not None else 0
    m["output_tail"] = errs[-3:]
elif tool == "pyinfra":
    good = len(set(re.findall(r"^\s*\[(h\d+)\]\s+Success", text, re.M)))
    failures = n - good
    m["output_tail"] = text.splitlines()[-3:]
elif tool == "pssh":
    k = re.findall(r"^pssh-run: (\d+) of", text, re.M)
    good = int(k[-1]) if k else 0
    failures = n - good
    m["output_tail"] = text.splitlines()[-3:]
m.update(step=step, tag=tag, n=n, tool=tool, ok=(rc == 0 and failures == 0), ok_hosts=good,
         failures=failures, passive_opens=int(po), listen_overflows=int(lo), time_wait_after=int(tw),
         idle_before_pct=int(idle))
print(json.dumps(m))
EOF
  local last; last="$(tail -1 "$jsonl")"
  log "$step $tag $tool N=$n: $(python3 -c '
import json, sys
m = json.loads(sys.argv[1]); f = lambda k: m.get(k, float("nan"))
floor = f("server_cpu_s") / 2
print("rc %s ok %s failures %s; wall %.2f s, sshd CPU %.2f s (floor %.2f, ratio %.2f), client CPU %.2f s, RSS %.1f MB, fds %s, threads %s, others CPU %.1f s, load %s, accepts %s, overflows %s"
      % (m.get("rc"), m.get("ok"), m.get("failures"), f("wall_s"), f("server_cpu_s"), floor,
         f("wall_s") / floor if floor else float("nan"), f("client_cpu_s"), (m.get("maxrss_kb") or 0) / 1024,
         m.get("peak_fds"), m.get("peak_threads"),
         f("machine_busy_cpu_s") - f("client_cpu_s") - f("server_cpu_s") - m.get("aux_cpu_s", 0),
         m.get("loadavg_start"), m.get("passive_opens"), m.get("listen_overflows")))' "$last")"
}

peer_cmd() { # TOOL N: the command line of a peer on the current fleet
  local ports k
  case "$1" in
    ssh)     echo "xargs -a $FLEET_HOSTS -P $XARGS_P -I{} ssh -F $FLEET_SSH_CONFIG {} true" ;;
    pyinfra) echo "pyinfra $FLEET_PYINFRA_INV exec -y -- true" ;;
    pssh)    ports="$FLEET_SSHD_PORT"
             for ((k = 1; k < FLEET_SSHD_COUNT; k++)); do ports="$ports,$((FLEET_SSHD_PORT + k))"; done
             echo "python3 $REPO/scripts/pssh-run.py --defaults --hosts $2 --port $ports --user $FLEET_USER --key $FLEET_KEY -- true" ;;
    *) return 1 ;;
  esac
}

mkdir -p "$OUT/logs"
RES="$OUT/runs.jsonl"
: > "$RES"

# ---- 1. sweep --------------------------------------------------------------------------
for n in $NS; do
  start_fleet "$n"
  write_toml "$WORK/n$n.toml" "$n"; cp "$WORK/n$n.toml" "$OUT/nexus-n$n.toml"
  runs="$RUNS"; [ "$n" -ge "$BIG_FROM" ] && runs="$RUNS_BIG"
  for ((i = 1; i <= runs; i++)); do
    measured sweep "run$i" "$n" nexus "$RES" -- "$NEXUS" -c "$WORK/n$n.toml" run t -q
  done
done

# ---- 2. peers at PEERS_N ---------------------------------------------------------------
if [ "$ROUNDS_PEERS" -gt 0 ] && [ -n "$PEERS_N" ]; then
  n="$PEERS_N"
  start_fleet "$n"
  [ -f "$WORK/n$n.toml" ] || write_toml "$WORK/n$n.toml" "$n"
  tools=(nexus $PEERS)
  for t in $PEERS; do peer_cmd "$t" "$n" > "$OUT/peer-$t.cmd"; done
  for ((r = 0; r < ROUNDS_PEERS; r++)); do
    k=$((r % ${#tools[@]}))
    for t in "${tools[@]:k}" "${tools[@]:0:k}"; do
      if [ "$t" = nexus ]; then
        measured peers "round$((r + 1))" "$n" nexus "$RES" -- "$NEXUS" -c "$WORK/n$n.toml" run t -q
      else
        # shellcheck disable=SC2046
        measured peers "round$((r + 1))" "$n" "$t" "$RES" -- $(peer_cmd "$t" "$n")
      fi
    done
  done
fi

# ---- 3. latency ------------------------------------------------------------------------
if [ "$RTT_MS" != 0 ]; then
  "$FLEET" stop > /dev/null 2>&1 || true
  start_fleet "$RTT_N" "$RTT_MS"
  write_toml "$WORK/one-rtt.toml" 1
  write_toml "$WORK/rtt.toml" "$RTT_N"; cp "$WORK/rtt.toml" "$OUT/nexus-rtt-n$RTT_N.toml"
  # h1 straight to its sshd (no relay), from a copy of the fleet's ssh_config
  awk -v port="$FLEET_SSHD_PORT" 'NR > 1 && /^Host /{exit} /^  Port /{$0 = "  Port " port} {print}' \
    "$FLEET_SSH_CONFIG" > "$WORK/ssh_config-direct"
  sed "s|^ssh_config = .*|ssh_config = \"$WORK/ssh_config-direct\"|" "$WORK/one-rtt.toml" > "$WORK/one-direct.toml"
  # one host through the relay and straight, alternately (same fleet, same minutes)
  for ((i = 1; i <= RUNS_ONE; i++)); do
    measured one-rtt "run$i" 1 nexus "$RES" -- "$NEXUS" -c "$WORK/one-rtt.toml" run t -q
    measured one-direct "run$i" 1 nexus "$RES" -- "$NEXUS" -c "$WORK/one-direct.toml" run t -q
  done
  for ((i = 1; i <= RUNS_RTT; i++)); do
    measured rtt "run$i" "$RTT_N" nexus "$RES" -- "$NEXUS" -c "$WORK/rtt.toml" run t -q
  done
fi
"$FLEET" stop 2>&1 | grep -v '^$' >&2 || true

# ---- 4. summary ------------------------------------------------------------------------
python3 - "$OUT" "$RTT_MS" <<'EOF' | tee "$OUT/summary.md"
import json, os, statistics, sys
out, rtt_ms = sys.argv[1], float(sys.argv[2])
meta = json.load(open(os.path.join(out, "meta.json")))
runs = [json.loads(l) for l in open(os.path.join(out, "runs.jsonl")) if l.strip()]
cores = meta["nproc"]
med = statistics.median

def others(r):
    return r.get("machine_busy_cpu_s", 0) - r.get("client_cpu_s", 0) - r.get("server_cpu_s", 0) - r.get("aux_cpu_s", 0)

def adjusted(r):
    """wall / (sshd CPU / the cores left to this run): cores minus what other processes and
    the hypervisor (steal) took on average during the run; None if that leaves < 0.2 core"""
    w = r.get("wall_s") or 0
    if not w or "server_cpu_s" not in r:
        return None
    left = cores - (max(0.0, others(r)) + r.get("machine_steal_s", 0)) / w
    return w / (r["server_cpu_s"] / left) if left >= 0.2 and r["server_cpu_s"] > 0 else None

def fmt(x, spec=".2f"):
    return "–" if x is None else format(x, spec)

print(f"# nexus at scale: loopback fleet, {meta['sshd_count']} sshd\n")
print(f"{meta['date']}; {cores} CPUs ({meta['cpu']}), Linux {meta['kernel']}; load at start {meta['loadavg_start']}.")
print(f"nexus {meta['nexus']} ({meta['source']}); {meta['ssh']}; pyinfra {meta['pyinfra']}; parallel-ssh {meta['parallel_ssh']}.")
print(f"Limits: {json.dumps(meta['limits'])}\n")
print("floor = sshd CPU / %d cores; ratio = wall / floor (target <= 1.3). 'others' = CPU that other processes of the "
      "shared machine took during the run (/proc/stat busy - nexus - sshd - relay); 'steal' = CPU the hypervisor "
      "gave to other VMs; 'adj. ratio' = wall / (sshd CPU / cores left), cores left = %d - (others + steal) / wall.\n" % (cores, cores))

def table(rows, title):
    print(f"## {title}\n")
    print("| step | N | tool | run | exit | failures | wall s | sshd CPU s | floor s | ratio | client CPU s | (client+sshd)/2 s | peak RSS MB | peak fds | peak threads | others CPU s | steal s | adj. ratio | load | accepts | overflows |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        sc = r.get("server_cpu_s", float("nan")); fl = sc / cores
        print(f"| {r['step']} | {r['n']} | {r['tool']} | {r['tag']} | {r.get('rc')} | {r.get('failures')} | {r.get('wall_s', float('nan')):.2f} | "
              f"{sc:.2f} | {fl:.2f} | {r.get('wall_s', float('nan')) / fl if fl else float('nan'):.2f} | {r.get('client_cpu_s', float('nan')):.2f} | "
              f"{(r.get('client_cpu_s', 0) + sc) / cores:.2f} | {(r.get('maxrss_kb') or 0) / 1024:.1f} | {r.get('peak_fds')} | {r.get('peak_threads')} | "
              f"{others(r):.1f} | {r.get('machine_steal_s', float('nan')):.1f} | {fmt(adjusted(r))} | {r.get('loadavg_start')} | {r.get('passive_opens')} | {r.get('listen_overflows')} |")
    print()

table([r for r in runs if r["step"] in ("sweep", "one-direct", "one-rtt", "rtt")], "nexus runs")
table([r for r in runs if r["step"] == "peers"], "side by side (rounds)")

summary = {"meta": meta, "sweep": {}, "peers": {}, "rtt": None}
print("## Medians\n")
print("| N | runs ok | wall s | floor s | wall / floor | adj. ratio | max peak RSS MB | max peak fds | max threads |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted({r["n"] for r in runs if r["step"] == "sweep"}):
    rs = [r for r in runs if r["step"] == "sweep" and r["n"] == n]
    ok = [r for r in rs if r["ok"]]
    w = med([r["wall_s"] for r in rs]); fl = med([r["server_cpu_s"] / cores for r in rs])
    rat = med([r["wall_s"] / (r["server_cpu_s"] / cores) for r in rs])
    rss = max((r.get("maxrss_kb") or 0) for r in rs) / 1024
    adj = [adjusted(r) for r in rs if adjusted(r) is not None]
    adj = med(adj) if adj else None
    summary["sweep"][n] = dict(runs=len(rs), ok=len(ok), wall=w, floor=fl, ratio=rat, adjusted=adj, rss_mb=rss,
                               fds=max(r.get("peak_fds") or 0 for r in rs), threads=max(r.get("peak_threads") or 0 for r in rs))
    s = summary["sweep"][n]
    print(f"| {n} | {len(ok)}/{len(rs)} | {w:.2f} | {fl:.2f} | {rat:.2f} | {fmt(adj)} | {rss:.1f} | {s['fds']} | {s['threads']} |")
print()
pr = [r for r in runs if r["step"] == "peers"]
if pr:
    print("## Side by side (medians over rounds)\n")
    print("| tool | N | runs | wall s | failures (per run) | sshd CPU s | client CPU s | wall / nexus |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    nx = None
    for t in ["nexus", "ssh", "pyinfra", "pssh"]:
        rs = [r for r in pr if r["tool"] == t]
        if not rs:
            continue
        w = med([r["wall_s"] for r in rs])
        if t == "nexus":
            nx = w
        summary["peers"][t] = dict(wall=w, failures=[r.get("failures") for r in rs])
        print(f"| {t} | {rs[0]['n']} | {len(rs)} | {w:.2f} | {', '.join(str(r.get('failures')) for r in rs)} | "
              f"{med([r.get('server_cpu_s', 0) for r in rs]):.2f} | {med([r.get('client_cpu_s', 0) for r in rs]):.2f} | {w / nx if nx else float('nan'):.2f} |")
    print()
rr = [r for r in runs if r["step"] == "rtt"]
if rr:
    one_rtt = med([r["wall_s"] for r in runs if r["step"] == "one-rtt"])
    one = med([r["wall_s"] for r in runs if r["step"] == "one-direct"])
    # paired: run i through the relay against run i straight, taken one after the other
    pairs = {r["tag"]: r["wall_s"] for r in runs if r["step"] == "one-rtt"}
    diffs = [pairs[r["tag"]] - r["wall_s"] for r in runs if r["step"] == "one-direct" and r["tag"] in pairs]
    lat = med(diffs) if diffs else one_rtt - one
    w = med([r["wall_s"] for r in rr]); fl = med([r["server_cpu_s"] / cores for r in rr])
    relay = med([r.get("aux_cpu_s", 0) for r in rr])
    limit = 1.3 * fl + lat
    summary["rtt"] = dict(rtt_ms=rtt_ms, one_host=one, one_host_rtt=one_rtt, latency=lat, wall=w, floor=fl,
                          relay_cpu=relay, limit=limit, ok=[r["ok"] for r in rr])
    print(f"## Through the latency relay ({rtt_ms:g} ms)\n")
    print(f"One host: {one:.3f} s direct, {one_rtt:.3f} s through the relay (medians); median of the paired differences {lat:.3f} s = "
          f"{lat * 1000 / rtt_ms:.1f} round trips for connect, handshake, login and the command.\n")
    print(f"N = {rr[0]['n']}: wall {w:.2f} s (median of {len(rr)}), floor {fl:.2f} s, relay CPU {relay:.2f} s; "
          f"target 1.3 x floor + {lat:.2f} s = {limit:.2f} s: {'met' if w <= limit else 'NOT met'} "
          f"(wall / (floor + latency) = {w / (fl + lat):.2f}).\n")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1, default=str)
EOF
log "done: $OUT/summary.md"
