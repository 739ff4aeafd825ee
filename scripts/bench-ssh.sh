#!/usr/bin/env bash
# nexus against OpenSSH, parallel-ssh, pyinfra and Ansible on the loopback SSH fleet of
# scripts/fleet.sh (one sshd on 127.0.0.1 posing as hosts h1..hN), all in one run.
#
#   scripts/bench-ssh.sh              build nexus (release), check, time, print the tables
#
# Steps (every heavy step runs alone; the machine has 2 cores):
#   1. for N in $NS (10 50 100 200): `scripts/fleet.sh start N`; nexus runs `true` on all N
#      hosts (`nexus -c nexus.toml run t -q`): a check run (`--format json`: task_finish
#      must list N hosts, all "success"; `-q`: exit 0 and one line `ok t (...)`), then
#      hyperfine, peak RSS (/usr/bin/time -f %M, largest of 3 runs) and one run under
#      scripts/measure.py (client CPU vs sshd CPU). Then the peers through scripts/bench-peers.sh, same N,
#      same fleet: TOOLS="$PEERS" (Ansible only for N <= ANSIBLE_MAX_N, RUNS_ANSIBLE runs).
#   1b. interleaved: the sweep times each tool in a block of its own, and on a shared machine
#      whose speed drifts over minutes the ratio of two blocks carries that drift. At
#      TARGET_N, ROUNDS_AB rounds each run nexus and every non-Ansible peer once (order
#      rotated per round) -> interleaved.json; the targets are reported on both.
#   2. pooled: POOLED_CMDS (10) commands `true` in one task on POOLED_N (50) hosts against
#      the same task with 1 command, in one hyperfine invocation; per command per host =
#      (median(10) - median(1)) / 9 / 50, compared with OpenSSH with warm ControlMaster
#      masters (bench-peers.sh, TOOLS=ssh-mux: hyperfine mean / N). Then ROUNDS_AB interleaved
#      rounds of the three (pooled/interleaved.json), judged the same way on their medians.
#   3. big: N_BIG (1000) hosts, one check run (--format json) and RUNS_BIG timed runs, each
#      under /usr/bin/time (wall, peak RSS); sshd's MaxStartups must be >= N_BIG.
#   4. $OUT/summary.md (tables, ratios, targets met or not) and $OUT/summary.json.
#
# Targets (ratios of medians from the same run, at TARGET_N = 100):
#   nexus <= 0.75 x ssh-c25519, <= 0.6 x pyinfra, <= 0.6 x pssh, ansible / nexus >= 15;
#   pooled: per command per host <= 0.3 x ssh-mux per host; peak RSS <= 60 MB at N = 200;
#   the N_BIG run completes with peak RSS < 200 MB.
#
# Environment:
#   NS="10 50 100 200"        fleet sizes for step 1 (NS="" skips step 1)
#   PEERS="ssh-c25519 pssh pyinfra ansible"   bench-peers.sh tools (also: ssh, ansible-pipe, ...)
#   RUNS=5 WARMUP=1           hyperfine runs for nexus and the peers
#   RUNS_ANSIBLE=3            runs for the Ansible tools (~35 s a run at N = 100)
#   ANSIBLE_MAX_N=100         Ansible tools only for N <= this (0: never)
#   TARGET_N=100              the N the ratio targets are judged at
#   ROUNDS_AB=10              step 1b: interleaved rounds at TARGET_N (0 skips it)
#   POOLED_N=50 POOLED_CMDS=10 RUNS_POOLED=10   step 2 (POOLED=0 skips it)
#   N_BIG=1000 RUNS_BIG=1     step 3 (N_BIG=0 skips it); BIG_MEASURE=1 adds a measure.py run
#   BIG_VARIANT='connect_timeout = "60s"'   step 3 is repeated with this line added to [config]
#                             (reported apart; the target is judged on the plain config; empty: skip)
#   PARALLEL_LIMIT=10 MAX_CONNECTIONS=1000      written to every nexus.toml [config]
#   NEXUS_BIN                 use this binary and skip `cargo build --release`
#   NEXUS_REV                 build this committed revision (e.g. HEAD) from `git archive` in a
#                             temp tree (target/bench-rev/) instead of the work tree
#   BENCH_TOOLS               venv with ansible/pyinfra/parallel-ssh (default <repo>/.bench-tools);
#                             SETUP=1 (default) runs scripts/bench-setup.sh ssh first
#   BENCH_OUT                 default <repo>/.bench-out; results in OUT=$BENCH_OUT/ssh
#                             (n<N>/true/ holds nexus.* next to bench-peers.sh's files; pooled/,
#                             big/, meta.json, summary.md, summary.json). OUT is emptied at the
#                             start unless KEEP_OUT=1.
#   BENCH_STATE               fleet state dir (default ${TMPDIR:-/tmp}/nexus-bench-ssh-fleet,
#                             not fleet.sh's default, so a fleet started by hand is not touched)
#   BENCH_PORT=22022          must be free; the fleet is stopped on exit (trap)
#   STEP_TIMEOUT=300          seconds, bound on every single nexus run (TOOL_TIMEOUT for peers)
#   NEXUS_HOME                nexus keeps a journal of every run there and, at the start of every
#                             run, reads all kept journals (up to 200). The script points it at a
#                             private dir ($WORK/nexus-home) that is emptied before every nexus
#                             step (check, hyperfine, each RSS run, measure.py, each big run), so
#                             the history is at most the runs of that step and ~/.local/state/nexus
#                             is not filled with bench runs.
#   HISTORY=1 HISTORY_N=200   the N=HISTORY_N step also measures nexus with a full history: 199
#                             copies of one journal of that step's runs (what `nexus run` keeps),
#                             3 RSS runs, and a local `true` task with that history and without
#   WAIT_IDLE=60 IDLE_PCT=85  before each timing step wait (bounded) for idle CPUs; recorded
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
NS="${NS-10 50 100 200}"
PEERS="${PEERS-ssh-c25519 pssh pyinfra ansible}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
RUNS_ANSIBLE="${RUNS_ANSIBLE:-3}"
ANSIBLE_MAX_N="${ANSIBLE_MAX_N:-100}"
ROUNDS_AB="${ROUNDS_AB:-10}"
TARGET_N="${TARGET_N:-100}"
POOLED="${POOLED:-1}"
POOLED_N="${POOLED_N:-50}"
POOLED_CMDS="${POOLED_CMDS:-10}"
RUNS_POOLED="${RUNS_POOLED:-10}"
N_BIG="${N_BIG:-1000}"
RUNS_BIG="${RUNS_BIG:-1}"
BIG_MEASURE="${BIG_MEASURE:-1}"
BIG_VARIANT="${BIG_VARIANT-connect_timeout = \"60s\"}"
PARALLEL_LIMIT="${PARALLEL_LIMIT:-10}"
MAX_CONNECTIONS="${MAX_CONNECTIONS:-1000}"
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"
WAIT_IDLE="${WAIT_IDLE:-60}"
IDLE_PCT="${IDLE_PCT:-85}"
SETUP="${SETUP:-1}"
HISTORY="${HISTORY:-1}"
HISTORY_N="${HISTORY_N:-200}"
export BENCH_OUT="${BENCH_OUT:-$REPO/.bench-out}"
export BENCH_STATE="${BENCH_STATE:-${TMPDIR:-/tmp}/nexus-bench-ssh-fleet}"
export BENCH_PORT="${BENCH_PORT:-22022}"
OUT="$BENCH_OUT/ssh"
FLEET="$REPO/scripts/fleet.sh"
PEERS_SH="$REPO/scripts/bench-peers.sh"
MEASURE="$REPO/scripts/measure.py"
export BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
export PATH="$BENCH_TOOLS/venv/bin:$BENCH_TOOLS/bin:$PATH"

log() { printf '[bench-ssh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 missing"
case "$BENCH_STATE$BENCH_OUT" in *' '*) die "BENCH_STATE and BENCH_OUT must not contain spaces (hyperfine -N splits on them)";; esac

# ---- tools (bench-setup.sh ssh: hyperfine, time, openssh-server, venv with the peers) ----
mkdir -p "$OUT"
if [ "$SETUP" = 1 ]; then
  log "scripts/bench-setup.sh ssh (idempotent; installs the peers once, may take minutes the first time)"
  "$REPO/scripts/bench-setup.sh" ssh > "$OUT/setup.log" 2>&1 || log "WARNING: bench-setup.sh failed (see $OUT/setup.log); peers that are missing will fail their check and be reported"
fi
command -v hyperfine >/dev/null || die "hyperfine missing (run scripts/bench-setup.sh ssh)"
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time, or scripts/bench-setup.sh ssh)"
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing (run scripts/bench-setup.sh ssh)"

# shellcheck source=scripts/bench-common.sh
source "$REPO/scripts/bench-common.sh"

# ---- nexus ---------------------------------------------------------------------------
build_nexus

# ---- fleet ---------------------------------------------------------------------------
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$BENCH_PORT\$"; then
  if ! "$FLEET" status > /dev/null 2>&1; then
    die "port $BENCH_PORT is in use by another process (someone else's fleet?); set BENCH_PORT"
  fi
  log "a fleet from $BENCH_STATE is already running on $BENCH_PORT: reusing it (stopped on exit)"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-ssh.XXXXXX")"
cleanup() {
  "$FLEET" stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Time a private copy: other people's `cargo build` may replace target/release/nexus mid-run.
cp "$NEXUS" "$WORK/nexus"
export NEXUS_HOME="$WORK/nexus-home"
# fresh_home: an empty run history for the next nexus step
fresh_home() { rm -rf "$NEXUS_HOME"; mkdir -p "$NEXUS_HOME"; }
fresh_home
NEXUS_SRC="$NEXUS"
NEXUS="$WORK/nexus"
if [ "${KEEP_OUT:-0}" != 1 ]; then rm -rf "$OUT"/n[0-9]* "$OUT/pooled" "$OUT/big" "$OUT"/summary.* "$OUT"/meta.json; fi
mkdir -p "$OUT"
log "nexus: copy of $NEXUS_SRC ($("$NEXUS" --version 2>&1 | head -1), sha256 $(sha256sum "$NEXUS" | cut -c1-12)); work dir $WORK; results in $OUT"

python3 - "$OUT/meta.json" "$NEXUS" "$rev" "$RUNS" "$WARMUP" "$RUNS_ANSIBLE" "$ANSIBLE_MAX_N" "$PEERS" "$NS" \
  "$PARALLEL_LIMIT" "$MAX_CONNECTIONS" "$POOLED_N" "$POOLED_CMDS" "$RUNS_POOLED" "$N_BIG" "$RUNS_BIG" "$TARGET_N" "$POOLED" <<'EOF'
import json, os, platform, subprocess, sys, time
(out, nexus, rev, runs, warmup, runs_ansible, ansible_max_n, peers, ns, plimit, maxconn,
 pooled_n, pooled_cmds, runs_pooled, n_big, runs_big, target_n, pooled) = sys.argv[1:]
def sh(*c):
    try:
        p = subprocess.run(c, capture_output=True, text=True, timeout=60)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
    except Exception as e:
        return f"n/a ({e.__class__.__name__})"
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
mem = "?"
for l in open("/proc/meminfo"):
    if l.startswith("MemTotal"):
        mem = f"{int(l.split()[1]) / 1024 / 1024:.0f} GiB"; break
osname = "?"
try:
    for l in open("/etc/os-release"):
        if l.startswith("PRETTY_NAME="):
            osname = l.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
venv_py = os.path.join(os.environ.get("BENCH_TOOLS", ""), "venv", "bin", "python")
pssh = sh(venv_py, "-c", "import importlib.metadata as m; print(m.version('parallel-ssh'))")
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M %Z"), "nproc": os.cpu_count(), "cpu": cpu, "mem": mem,
    "kernel": platform.release(), "os": osname, "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "nexus": sh(nexus, "--version"), "nexus_sha256": sh("sha256sum", nexus).split()[0], "source": rev,
    "ssh": sh("ssh", "-V"), "hyperfine": sh("hyperfine", "--version"), "ansible": sh("ansible", "--version"),
    "pyinfra": sh("pyinfra", "--version"), "parallel_ssh": pssh, "python": sh(venv_py, "--version"),
    "runs": int(runs), "warmup": int(warmup), "runs_ansible": int(runs_ansible), "ansible_max_n": int(ansible_max_n),
    "peers": peers.split(), "ns": [int(x) for x in ns.split()], "parallel_limit": int(plimit),
    "max_connections": int(maxconn), "pooled": pooled == "1", "pooled_n": int(pooled_n),
    "pooled_cmds": int(pooled_cmds), "runs_pooled": int(runs_pooled), "n_big": int(n_big or 0),
    "runs_big": int(runs_big), "target_n": int(target_n),
}
json.dump(meta, open(out, "w"), indent=1)
EOF

# write_toml FILE N CMDS [EXTRA]: one task `t` running CMDS x `true` on h1..hN; EXTRA: more [config] lines
write_toml() {
  python3 - "$1" "$2" "$3" "$FLEET_SSH_CONFIG" "$PARALLEL_LIMIT" "$MAX_CONNECTIONS" "${4:-}" <<'EOF'
import sys
path, n, cmds, ssh_config, plimit, maxconn, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
hosts = ", ".join(f'"h{i}"' for i in range(1, n + 1))
run = '"true"' if cmds == 1 else "[" + ", ".join(['"true"'] * cmds) + "]"
open(path, "w").write(f'''# generated by scripts/bench-ssh.sh: {n} hosts of the scripts/fleet.sh loopback fleet
[config]
ssh_config = "{ssh_config}"
host_key_checking = "off"
parallel_limit = {plimit}
max_connections = {maxconn}
{extra}
[hosts]
fleet = [{hosts}]

[tasks.t]
on = "fleet"
run = {run}
''')
EOF
}

# TCP counters: PassiveOpens (connections accepted, i.e. sessions opened: nothing else
# listens on loopback here, so approximate on a shared machine) and ListenOverflows
# (sshd's accept queue, backlog 128, was full: that client waits for a 1 s SYN retransmit)
passive_opens() {
  awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (k[i] == "PassiveOpens") print $i } }' /proc/net/snmp
}
listen_overflows() {
  awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (k[i] == "ListenOverflows") print $i } }' /proc/net/netstat
}

# check_json JSONL N CMDS RC: the task_finish event lists N hosts, all "success", and every
# host has CMDS successful command_finish events; prints a JSON verdict, fails if not met
check_json() {
  python3 - "$@" <<'EOF'
import collections, json, sys
path, n, cmds, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
hosts, per_host, bad = None, collections.Counter(), 0
for line in open(path, errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        bad += 1; continue
    if ev.get("event") == "task_finish" and ev.get("task") == "t":
        hosts = ev.get("hosts") or {}
    elif ev.get("event") == "command_finish" and ev.get("status") == "success":
        per_host[ev.get("host")] += 1
ok_hosts = sum(1 for s in (hosts or {}).values() if s == "success")
full = sum(1 for h in (hosts or {}) if per_host[h] == cmds)
v = {"rc": rc, "n": n, "hosts_listed": len(hosts or {}), "ok_hosts": ok_hosts,
     "hosts_with_all_cmds": full, "cmds_per_host": cmds, "unparsed_lines": bad}
v["ok"] = rc == 0 and len(hosts or {}) == n and ok_hosts == n and full == n
print(json.dumps(v))
sys.exit(0 if v["ok"] else 1)
EOF
}

# timed_run TAG FILE -- CMD...: one run under /usr/bin/time; appends
# {"tag","rc","wall_s","maxrss_kb","user_s","sys_s","passive_opens","listen_overflows"} to FILE
timed_run() {
  local tag="$1" file="$2"; shift 3
  local po0 lo0 rc wall="" rss="" user="" sys=""
  po0="$(passive_opens)"; lo0="$(listen_overflows)"
  set +e
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.txt" timeout -k 5 "$STEP_TIMEOUT" "$@" > "$WORK/run.out" 2> "$WORK/run.err"
  rc=$?
  set -e
  local po=$(( $(passive_opens) - po0 )) lo=$(( $(listen_overflows) - lo0 ))
  read -r wall rss user sys < <(tail -1 "$WORK/time.txt" 2>/dev/null) || true
  printf '{"tag":"%s","rc":%s,"wall_s":%s,"maxrss_kb":%s,"user_s":%s,"sys_s":%s,"passive_opens":%s,"listen_overflows":%s}\n' \
    "$tag" "$rc" "${wall:-null}" "${rss:-null}" "${user:-null}" "${sys:-null}" "$po" "$lo" >> "$file"
  return "$rc"
}

# verify_note FILE: one line from a nexus.verify.json
verify_note() {
  python3 - "$1" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1])); j = v.get("json_run") or {}
print(f"{v.get('ok_hosts')}/{v.get('n')} hosts success, {v.get('hosts_with_all_cmds')} with all "
      f"{v.get('cmds_per_host')} commands, {j.get('passive_opens')} TCP accepts, {j.get('listen_overflows')} listen overflows, "
      f"json run {j.get('wall_s')} s / {j.get('maxrss_kb')} KB; -q: {v.get('q_stdout')}")
EOF
}

sshd_pidfile_args() { local f; for f in $FLEET_SSHD_PIDFILES; do [ -f "$f" ] && printf -- '--server-pidfile\n%s\n' "$f"; done; return 0; }

# nexus_check D N CMDS TOML: json check + -q check; writes D/nexus.verify.json; 0 if ok
nexus_check() {
  local d="$1" n="$2" cmds="$3" toml="$4" rc v qline
  rm -f "$WORK/check.tsv"
  fresh_home
  set +e
  timed_run check "$WORK/check.tsv" -- "$NEXUS" -c "$toml" run t --format json
  rc=$?
  set -e
  cp "$WORK/run.out" "$d/nexus.verify.jsonl"; head -c 20000 "$WORK/run.err" > "$d/nexus.verify.stderr"
  v="$(check_json "$d/nexus.verify.jsonl" "$n" "$cmds" "$rc" || true)"
  # -q: exit 0 and exactly one line `ok t (...)` on stdout
  set +e
  fresh_home
  timeout -k 5 "$STEP_TIMEOUT" "$NEXUS" -c "$toml" run t -q > "$d/nexus.q.out" 2> "$WORK/q.err"
  local qrc=$?
  grep -v 'host key checking is off' "$WORK/q.err" | head -c 20000 > "$d/nexus.q.stderr" || true
  set -e
  qline="$(cat "$d/nexus.q.out")"
  python3 - "$v" "$qrc" "$qline" "$(cat "$WORK/check.tsv")" > "$d/nexus.verify.json" <<'EOF'
import json, re, sys
v = json.loads(sys.argv[1] or '{"ok": false}'); qrc = int(sys.argv[2]); q = sys.argv[3]
v["q_rc"] = qrc; v["q_stdout"] = q
v["q_ok"] = qrc == 0 and re.fullmatch(r"ok t \(.*\)", q) is not None
v["json_run"] = json.loads(sys.argv[4])
v["ok"] = bool(v.get("ok")) and v["q_ok"]
print(json.dumps(v))
EOF
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] else 1)' "$d/nexus.verify.json"
}

# nexus_rss D TOML: 3 runs under /usr/bin/time -> D/nexus.rss.jsonl
nexus_rss() {
  local d="$1" toml="$2"
  rm -f "$d/nexus.rss.jsonl"
  for i in 1 2 3; do fresh_home; timed_run "rss$i" "$d/nexus.rss.jsonl" -- "$NEXUS" -c "$toml" run t -q || log "RSS run $i failed (rc $?)"; done
}

# nexus_measure D TOML NAME: one run under measure.py (client vs sshd CPU) -> D/NAME.measure.json
nexus_measure() {
  local d="$1" toml="$2" name="$3"
  local args=(); mapfile -t args < <(sshd_pidfile_args)
  fresh_home
  python3 "$MEASURE" "${args[@]}" --timeout "$((STEP_TIMEOUT + 30))" --log "$d/$name.measure.log" -- \
    "$NEXUS" -c "$toml" run t -q > "$d/$name.measure.json" || log "$name: measure.py run failed"
}

# nexus_history D TOML: nexus with a full run history. `nexus run` keeps the newest 200
# journals (KEEP_RUNS) and reads all of them when it starts; fill the history with 199 copies
# of the journal of the last RSS run (same N), then 3 RSS runs, and a local `true` task with
# that history and with none -> D/nexus.history.jsonl
nexus_history() {
  local d="$1" toml="$2" j i hist="$WORK/history"
  j="$(ls -t "$NEXUS_HOME"/runs/*.jsonl 2>/dev/null | head -1)"
  [ -n "$j" ] || { log "history: no journal in $NEXUS_HOME/runs (nexus without a journal?): skipped"; echo '{"skipped": "no journal"}' > "$d/nexus.history.json"; return 0; }
  rm -rf "$hist"; mkdir -p "$hist/runs"
  for i in $(seq -w 1 199); do cp "$j" "$hist/runs/20000101T0000${i}000Z-hist.jsonl"; done
  printf '{"journal_bytes": %s, "journals": 199, "history_bytes": %s}\n' "$(stat -c %s "$j")" "$(du -sb "$hist/runs" | cut -f1)" > "$d/nexus.history.json"
  printf '[tasks.l]\nrun = "true"\n' > "$WORK/local.toml"
  rm -f "$d/nexus.history.jsonl"
  log "history: 3 runs at N=$n with 199 kept journals of $(stat -c %s "$j") bytes each"
  for i in 1 2 3; do
    rm -rf "$NEXUS_HOME"; cp -r "$hist" "$NEXUS_HOME"
    timed_run "full-history$i" "$d/nexus.history.jsonl" -- "$NEXUS" -c "$toml" run t -q || log "history run $i failed"
  done
  for i in 1 2 3; do
    rm -rf "$NEXUS_HOME"; cp -r "$hist" "$NEXUS_HOME"
    timed_run "local-true-full-history$i" "$d/nexus.history.jsonl" -- "$NEXUS" -c "$WORK/local.toml" run l -q || true
    fresh_home
    timed_run "local-true-no-history$i" "$d/nexus.history.jsonl" -- "$NEXUS" -c "$WORK/local.toml" run l -q || true
  done
  rm -rf "$hist"; fresh_home
  log "history: $(python3 -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
for tag in ("full-history", "local-true-full-history", "local-true-no-history"):
    x = [r for r in rs if r["tag"].rstrip("0123456789") == tag]
    print(tag, "max RSS %.0f MB," % (max(r["maxrss_kb"] for r in x) / 1024), "wall", " ".join("%.2f" % r["wall_s"] for r in x), end="; ")
' "$d/nexus.history.jsonl")"
}

hyperfine_nexus() { # D JSON RUNS NAME CMD [NAME CMD...]
  local d="$1" json="$2" runs="$3"; shift 3
  local args=() idle
  while [ $# -gt 0 ]; do args+=(-n "$1" "timeout -k 5 $STEP_TIMEOUT $2"); shift 2; done
  idle="$(wait_idle)"
  echo "$idle" > "$d/idle_before.txt"
  fresh_home
  echo "load before: $(cat /proc/loadavg); CPU idle over 2 s before: $idle %" > "$d/$json.hyperfine.log"
  set +e
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$runs" --export-json "$d/$json.json" "${args[@]}" \
    >> "$d/$json.hyperfine.log" 2>&1
  local hrc=$?
  set -e
  echo "load after: $(cat /proc/loadavg)" >> "$d/$json.hyperfine.log"
  grep -E '^(Benchmark|  Time|  Range)' "$d/$json.hyperfine.log" >&2 || true
  [ "$hrc" = 0 ] || { log "HYPERFINE FAILED rc=$hrc (see $d/$json.hyperfine.log)"; rm -f "$d/$json.json"; }
}

run_peers() { # N TOOLS RUNS
  local n="$1" tools="$2" runs="$3" idle
  [ -n "$tools" ] || return 0
  idle="$(wait_idle)"
  echo "$tools: CPUs $idle % idle before" >> "$OUT/n$n/true/peers_idle_before.txt"
  log "N=$n peers: TOOLS=\"$tools\" RUNS=$runs bench-peers.sh $n (CPUs $idle % idle before)"
  local prc=0
  TOOLS="$tools" RUNS="$runs" WARMUP="$WARMUP" "$PEERS_SH" "$n" true > "$WORK/peers.log" 2>&1 || prc=$?
  cat "$WORK/peers.log" >> "$OUT/n$n/true/peers.log"
  grep -vE '(fleet ready|sshd\[)' "$WORK/peers.log" >&2 || true
  [ "$prc" = 0 ] || log "bench-peers.sh $n failed (rc $prc); the tools it did not finish are reported as missing"
}

# interleave OUT_JSON ROUNDS META_JSON NAME CMD [NAME CMD...]: one untimed run of every CMD
# (warm caches; ssh-mux (re)opens its masters), then ROUNDS rounds that run every CMD once, in
# an order rotated per round. Runs of names starting with "nexus" get an empty history.
# OUT_JSON: META_JSON's fields + rounds, tools, times (s, successful runs), failures.
interleave() {
  python3 - "$@" <<'EOF' >&2
import json, os, shlex, shutil, statistics, subprocess, sys, time
out, rounds, meta, *pairs = sys.argv[1:]
rounds = int(rounds)
tools = pairs[0::2]
cmds = dict(zip(tools, (shlex.split(c) for c in pairs[1::2])))
times = {t: [] for t in tools}
failures = {t: 0 for t in tools}
home = os.environ["NEXUS_HOME"]
def run(t):
    if t.startswith("nexus"):
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(home)
    t0 = time.perf_counter()
    rc = subprocess.run(cmds[t], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode
    return rc, time.perf_counter() - t0
for t in tools:
    run(t)
for r in range(rounds):
    k = r % len(tools)
    for t in tools[k:] + tools[:k]:
        rc, dt = run(t)
        if rc == 0:
            times[t].append(dt)
        else:
            failures[t] += 1
json.dump(dict(json.loads(meta), rounds=rounds, tools=tools, times=times, failures=failures,
               loadavg_end=open("/proc/loadavg").read().split()[:3]), open(out, "w"), indent=1)
for t in tools:
    v = times[t]
    print(f"  {t:12s} median {statistics.median(v):.3f} s  min {min(v):.3f}  max {max(v):.3f}  failures {failures[t]}" if v
          else f"  {t:12s} no successful run ({failures[t]} failures)")
EOF
}

# ---- 1. the sweep --------------------------------------------------------------------
ansible_tools=""; other_tools=""
for t in $PEERS; do
  case "$t" in ansible*) ansible_tools="$ansible_tools $t" ;; *) other_tools="$other_tools $t" ;; esac
done
for n in $NS; do
  "$FLEET" start "$n" 2> "$WORK/fleet.log" || { cat "$WORK/fleet.log" >&2; die "fleet.sh start $n failed"; }
  eval "$("$FLEET" env)"
  d="$OUT/n$n/true"; mkdir -p "$d"
  toml="$WORK/n$n.toml"; write_toml "$toml" "$n" 1; cp "$toml" "$d/nexus.toml"
  if nexus_check "$d" "$n" 1 "$toml"; then
    log "N=$n nexus: check ok ($(verify_note "$d/nexus.verify.json"))"
    log "N=$n nexus: hyperfine -N --warmup $WARMUP --runs $RUNS"
    hyperfine_nexus "$d" nexus "$RUNS" nexus "$NEXUS -c $toml run t -q"
    nexus_rss "$d" "$toml"
    if [ "$HISTORY" = 1 ] && [ "$n" = "$HISTORY_N" ]; then nexus_history "$d" "$toml"; fi
    nexus_measure "$d" "$toml" nexus
  else
    log "N=$n nexus: CHECK FAILED, not timed: $(cat "$d/nexus.verify.json")"
    tail -3 "$d/nexus.verify.stderr" >&2 || true
  fi
  run_peers "$n" "$(echo $other_tools)" "$RUNS"
  if [ -n "$ansible_tools" ]; then
    if [ "$n" -le "$ANSIBLE_MAX_N" ]; then
      run_peers "$n" "$(echo $ansible_tools)" "$RUNS_ANSIBLE"
    else
      echo "not run: N > ANSIBLE_MAX_N=$ANSIBLE_MAX_N" > "$d/ansible.skipped"
      log "N=$n: Ansible skipped (N > ANSIBLE_MAX_N=$ANSIBLE_MAX_N)"
    fi
  fi
done

# ---- 1b. interleaved rounds at TARGET_N ----------------------------------------------
d="$OUT/n$TARGET_N/true"
# The peers' wrappers come from the sweep (or, with NS="" KEEP_OUT=1, from an earlier one).
if [ "$ROUNDS_AB" -gt 0 ] && [ -d "$d" ]; then
  "$FLEET" start "$TARGET_N" 2> "$WORK/fleet.log" || { cat "$WORK/fleet.log" >&2; die "fleet.sh start $TARGET_N failed"; }
  eval "$("$FLEET" env)"
  [ -f "$WORK/n$TARGET_N.toml" ] || write_toml "$WORK/n$TARGET_N.toml" "$TARGET_N" 1
  ab=(nexus "timeout -k 5 $STEP_TIMEOUT $NEXUS -c $WORK/n$TARGET_N.toml run t -q")
  for t in $other_tools; do [ -f "$d/run-$t.sh" ] && ab+=("$t" "bash $d/run-$t.sh"); done
  idle="$(wait_idle)"
  log "N=$TARGET_N interleaved: $ROUNDS_AB rounds (CPUs $idle % idle before)"
  interleave "$OUT/interleaved.json" "$ROUNDS_AB" "{\"n\": $TARGET_N}" "${ab[@]}"
fi

# ---- 2. pooled sessions: POOLED_CMDS commands per host in one task -------------------
if [ "$POOLED" = 1 ]; then
  n="$POOLED_N"
  "$FLEET" start "$n" 2> "$WORK/fleet.log" || { cat "$WORK/fleet.log" >&2; die "fleet.sh start $n failed"; }
  eval "$("$FLEET" env)"
  d="$OUT/pooled"; mkdir -p "$d" "$OUT/n$n/true"
  write_toml "$WORK/p1.toml" "$n" 1; write_toml "$WORK/pK.toml" "$n" "$POOLED_CMDS"
  cp "$WORK/p1.toml" "$d/nexus-1cmd.toml"; cp "$WORK/pK.toml" "$d/nexus-${POOLED_CMDS}cmd.toml"
  if nexus_check "$d" "$n" "$POOLED_CMDS" "$WORK/pK.toml"; then
    log "pooled: check ok ($POOLED_CMDS commands x $n hosts: $(verify_note "$d/nexus.verify.json"))"
    log "pooled: hyperfine -N --warmup $WARMUP --runs $RUNS_POOLED: 1 vs $POOLED_CMDS commands on $n hosts"
    hyperfine_nexus "$d" nexus "$RUNS_POOLED" nexus-1cmd "$NEXUS -c $WORK/p1.toml run t -q" \
      "nexus-${POOLED_CMDS}cmd" "$NEXUS -c $WORK/pK.toml run t -q"
    nexus_measure "$d" "$WORK/p1.toml" nexus-1cmd
    nexus_measure "$d" "$WORK/pK.toml" "nexus-${POOLED_CMDS}cmd"
  else
    log "pooled: CHECK FAILED, not timed: $(cat "$d/nexus.verify.json")"
  fi
  run_peers "$n" ssh-mux "$RUNS_POOLED"
  # Interleaved: one run each of nexus (1 and POOLED_CMDS commands) and ssh-mux (its masters
  # are still warm from the step above) per round, ROUNDS_AB rounds.
  if [ "$ROUNDS_AB" -gt 0 ] && [ -f "$OUT/n$n/true/run-ssh-mux.sh" ]; then
    log "pooled interleaved: $ROUNDS_AB rounds of nexus-1cmd, nexus-${POOLED_CMDS}cmd, ssh-mux"
    interleave "$d/interleaved.json" "$ROUNDS_AB" "{\"n\": $n, \"cmds\": $POOLED_CMDS}" \
      nexus-1cmd "timeout -k 5 $STEP_TIMEOUT $NEXUS -c $WORK/p1.toml run t -q" \
      "nexus-${POOLED_CMDS}cmd" "timeout -k 5 $STEP_TIMEOUT $NEXUS -c $WORK/pK.toml run t -q" \
      ssh-mux "bash $OUT/n$n/true/run-ssh-mux.sh"
  fi
fi

# ---- 3. big fleet --------------------------------------------------------------------
if [ -n "$N_BIG" ] && [ "$N_BIG" != 0 ]; then
  n="$N_BIG"
  "$FLEET" start "$n" 2> "$WORK/fleet.log" || { cat "$WORK/fleet.log" >&2; die "fleet.sh start $n failed"; }
  eval "$("$FLEET" env)"
  d="$OUT/big"; mkdir -p "$d"
  ms="$(awk '$1 == "MaxStartups" {print $2}' "$FLEET_SSHD_CONFIG")"
  echo "${ms:-10:30:100 (sshd default)}" > "$d/maxstartups.txt"
  if [ "${ms%%:*}" -lt "$n" ] 2>/dev/null || [ -z "$ms" ]; then
    log "WARNING: sshd MaxStartups is ${ms:-default}, below N_BIG=$n: sshd will drop connections (fleet.sh writes BENCH_MAX_STARTUPS, default 2000)"
  fi
  big_runs() { # DIR TOML LABEL
    local bd="$1" bt="$2" label="$3" idle i
    mkdir -p "$bd"; cp "$bt" "$bd/nexus.toml"
    idle="$(wait_idle)"; echo "$idle" > "$bd/idle_before.txt"
    log "big ($label): N=$n check run (--format json, under /usr/bin/time)"
    if nexus_check "$bd" "$n" 1 "$bt"; then
      log "big ($label): check ok: $(verify_note "$bd/nexus.verify.json")"
    else
      log "big ($label): CHECK FAILED: $(verify_note "$bd/nexus.verify.json")"
    fi
    rm -f "$bd/nexus.runs.jsonl"
    for ((i = 1; i <= RUNS_BIG; i++)); do
      idle="$(wait_idle)"
      fresh_home
      timed_run "run$i" "$bd/nexus.runs.jsonl" -- "$NEXUS" -c "$bt" run t -q || log "big ($label) run $i failed"
      log "big ($label): run $i: $(tail -1 "$bd/nexus.runs.jsonl") (CPUs $idle % idle before)"
    done
  }
  write_toml "$WORK/big.toml" "$n" 1
  big_runs "$d" "$WORK/big.toml" "config as above"
  mtoml="$WORK/big.toml"
  if [ -n "$BIG_VARIANT" ]; then
    write_toml "$WORK/big-variant.toml" "$n" 1 "$BIG_VARIANT"
    echo "$BIG_VARIANT" > "$d/variant.txt"
    big_runs "$d/variant" "$WORK/big-variant.toml" "$BIG_VARIANT"
    mtoml="$WORK/big-variant.toml"
  fi
  # measure.py on the variant when there is one (the plain config may not complete)
  if [ "$BIG_MEASURE" = 1 ]; then nexus_measure "$d" "$mtoml" nexus; fi
fi

"$FLEET" stop 2>&1 | grep -v '^$' >&2 || true

# ---- 4. summary ----------------------------------------------------------------------
python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, statistics, sys
out = sys.argv[1]
meta = json.load(open(os.path.join(out, "meta.json")))
meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]

def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def jsonl(p):
    try:
        return [json.loads(l) for l in open(p) if l.strip()]
    except (OSError, ValueError):
        return []

def hf(p, name=None):
    d = load(p)
    if not d:
        return None
    for r in d["results"]:
        if name is None or r["command"] == name:
            times = r.get("times") or []
            r = dict(r)
            r["median"] = r.get("median", statistics.median(times) if times else None)
            r["runs"] = len(times)
            return r
    return None

ORDER = ["ssh", "ssh-c25519", "pssh", "pyinfra", "ansible", "ansible-pipe", "ansible-pipe-mux"]
TOOLS = ["nexus"] + [t for t in ORDER if t in meta["peers"]] + [t for t in meta["peers"] if t not in ORDER]
ns = meta["ns"]

def cell(n, tool):
    """(result dict or None, text for the table)"""
    d = os.path.join(out, f"n{n}", "true")
    if tool == "nexus":
        v = load(os.path.join(d, "nexus.verify.json"))
        if v is None:
            return None, "not run"
        if not v.get("ok"):
            return None, f"CHECK FAILED ({v.get('ok_hosts')}/{n} ok, rc {v.get('rc')}, -q rc {v.get('q_rc')})"
        r = hf(os.path.join(d, "nexus.json"))
        return (r, f"**{r['median']:.3f}** ({r['min']:.3f}–{r['max']:.3f})") if r else (None, "HYPERFINE FAILED")
    if tool.startswith("ansible") and os.path.exists(os.path.join(d, "ansible.skipped")):
        return None, "not run (N > ANSIBLE_MAX_N)"
    v = load(os.path.join(d, f"{tool}.verify.json"))
    if v is None:
        return None, "not run / no result"
    if v["rc"] != 0 or v["marks"] != n or v["distinct_hosts"] != n:
        return None, f"VERIFY FAILED (rc {v['rc']}, {v['distinct_hosts']}/{n} hosts)"
    r = hf(os.path.join(d, f"{tool}.json"))
    if r is None:
        return None, "TIMING FAILED (non-zero exit)"
    return r, f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"

res = {}
print("# nexus vs OpenSSH / parallel-ssh / pyinfra / Ansible: loopback SSH fleet\n")
print(f"{meta['date']}, {meta['nproc']} CPUs ({meta['cpu']}), {meta['mem']}, Linux {meta['kernel']}, {meta['os']}; "
      f"load {' '.join(meta['loadavg_start'])} at start, {' '.join(meta['loadavg_end'])} at end.\n")
print(f"nexus: {meta['nexus']}, {meta['source']} (sha256 {meta['nexus_sha256'][:12]}); {meta['ssh']}; {meta['hyperfine']}; "
      f"{meta['ansible']}; {meta['pyinfra']}; parallel-ssh {meta['parallel_ssh']}; {meta['python']}.\n")
print(f"Command `true` on every host; one sshd on 127.0.0.1:{os.environ.get('BENCH_PORT', '22022')} (scripts/fleet.sh). hyperfine -N, "
      f"{meta['warmup']} warmup + {meta['runs']} runs (Ansible: {meta['runs_ansible']} runs, N <= {meta['ansible_max_n']}). "
      f"nexus.toml: parallel_limit = {meta['parallel_limit']}, max_connections = {meta['max_connections']}, host_key_checking = \"off\".\n")
print("## Medians (s; min–max)\n")
print("| tool | " + " | ".join(f"N={n}" for n in ns) + " |")
print("|---|" + "---:|" * len(ns))
for tool in TOOLS:
    cells = []
    for n in ns:
        r, txt = cell(n, tool)
        res.setdefault(n, {})[tool] = r
        cells.append(txt)
    print(f"| {tool} | " + " | ".join(cells) + " |")

print("\n## Ratios (nexus median / peer median; below 1 = nexus faster)\n")
peers = [t for t in TOOLS if t != "nexus"]
print("| N | " + " | ".join(f"/ {t}" for t in peers) + " |")
print("|---:|" + "---:|" * len(peers))
ratios = {}
for n in ns:
    nx = res[n].get("nexus")
    cells = []
    for t in peers:
        p = res[n].get(t)
        if nx and p:
            ratios.setdefault(n, {})[t] = nx["median"] / p["median"]
            x = ratios[n][t]
            cells.append(f"{x:.2f}" + (f" ({1 / x:.1f}x faster)" if t.startswith("ansible") else ""))
        else:
            cells.append("–")
    print(f"| {n} | " + " | ".join(cells) + " |")

print("\n## CPU per run (one run under measure.py; s) and peak memory\n")
print(f"CPU floor = (client CPU + sshd CPU) / {meta['nproc']} cores: no tool can finish faster while client and sshd share the cores.\n")
print("| tool | N | wall | client CPU | sshd CPU | CPU floor | client CPU ms/host | largest process RSS MB | connections (TCP accepts) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for tool in TOOLS:
    for n in ns:
        d = os.path.join(out, f"n{n}", "true")
        m = load(os.path.join(d, f"{tool}.measure.json"))
        if not m:
            continue
        conn = "–"
        if tool == "nexus":
            v = load(os.path.join(d, "nexus.verify.json")) or {}
            conn = str((v.get("json_run") or {}).get("passive_opens", "–"))
        floor = (m["client_cpu_s"] + m.get("server_cpu_s", 0)) / meta["nproc"]
        print(f"| {tool} | {n} | {m['wall_s']:.2f} | {m['client_cpu_s']:.2f} | {m.get('server_cpu_s', float('nan')):.2f} | {floor:.2f} | "
              f"{1000 * m['client_cpu_s'] / n:.1f} | {m['maxrss_kb'] / 1024:.1f} | {conn} |")

print("\n## nexus peak RSS (/usr/bin/time -f %M, largest of 3 runs)\n")
print("| N | peak RSS MB | wall s of those runs |")
print("|---:|---:|---|")
rss = {}
for n in ns:
    runs = jsonl(os.path.join(out, f"n{n}", "true", "nexus.rss.jsonl"))
    if runs:
        rss[n] = max(r["maxrss_kb"] for r in runs)
        walls = ", ".join("%.2f" % r["wall_s"] for r in runs)
        print(f"| {n} | {rss[n] / 1024:.1f} | {walls} |")

hist = None
hn = None
for n in ns:
    hj = jsonl(os.path.join(out, f"n{n}", "true", "nexus.history.jsonl"))
    if hj:
        hist, hn = hj, n
        hmeta = load(os.path.join(out, f"n{n}", "true", "nexus.history.json")) or {}
if hist:
    def grp(tag):
        return [r for r in hist if r["tag"].rstrip("0123456789") == tag]
    print(f"\n## nexus with a full run history (N={hn})\n")
    print(f"`nexus run` keeps the newest 200 run journals and reads all of them at the start of every run. Here the history is "
          f"{hmeta.get('journals')} copies of one journal of a {hn}-host run ({hmeta.get('journal_bytes', 0) / 1024:.0f} KB each, "
          f"{hmeta.get('history_bytes', 0) / 1024 / 1024:.1f} MB in all). Every other nexus number on this page uses an empty history.\n")
    print("| run | rc | wall s | peak RSS MB | user+sys s |")
    print("|---|---:|---:|---:|---:|")
    for r in hist:
        print(f"| {r['tag']} | {r['rc']} | {r['wall_s']:.2f} | {r['maxrss_kb'] / 1024:.1f} | {r['user_s'] + r['sys_s']:.2f} |")

targets = []
def target(name, value, limit, op, unit, detail):
    met = value is not None and (value <= limit if op == "<=" else value >= limit if op == ">=" else value < limit)
    targets.append({"target": name, "value": value, "limit": limit, "op": op, "unit": unit, "met": met, "detail": detail})

tn = meta["target_n"]
r_t = ratios.get(tn, {})
nx = res.get(tn, {}).get("nexus")
for tool, lim in (("ssh-c25519", 0.75), ("pyinfra", 0.6), ("pssh", 0.6)):
    p = res.get(tn, {}).get(tool)
    target(f"N={tn}: nexus <= {lim} x {tool}", r_t.get(tool), lim, "<=", "x",
           f"nexus {nx['median']:.3f} s vs {tool} {p['median']:.3f} s" if nx and p else f"{tool}: {cell(tn, tool)[1] if tn in ns else 'not run'}")
pab = load(os.path.join(out, "pooled", "interleaved.json"))
if pab and all(pab["times"].get(t) for t in pab["tools"]):
    pm = {t: statistics.median(v) for t, v in pab["times"].items()}
    per_cmd = (pm[f"nexus-{pab['cmds']}cmd"] - pm["nexus-1cmd"]) / (pab["cmds"] - 1) / pab["n"]
    per_mux = pm["ssh-mux"] / pab["n"]
    target("pooled, interleaved: nexus per command per host <= 0.3 x ssh-mux per host", per_cmd / per_mux, 0.3, "<=", "x",
           f"{per_cmd * 1000:.2f} ms vs {per_mux * 1000:.2f} ms, medians of {pab['rounds']} rounds")
ab = load(os.path.join(out, "interleaved.json"))
ab_med = {}
if ab:
    ab_med = {t: statistics.median(v) for t, v in ab["times"].items() if v}
    for tool, lim in (("ssh-c25519", 0.75), ("pyinfra", 0.6), ("pssh", 0.6)):
        if tool in ab_med and "nexus" in ab_med:
            target(f"N={ab['n']}, interleaved: nexus <= {lim} x {tool}", ab_med["nexus"] / ab_med[tool], lim, "<=", "x",
                   f"nexus {ab_med['nexus']:.3f} s vs {tool} {ab_med[tool]:.3f} s, medians of {ab['rounds']} rounds")
p = res.get(tn, {}).get("ansible")
target(f"N={tn}: nexus >= 15 x faster than ansible", (p["median"] / nx["median"]) if nx and p else None, 15, ">=", "x",
       f"ansible {p['median']:.2f} s / nexus {nx['median']:.3f} s" if nx and p else f"ansible: {cell(tn, 'ansible')[1] if tn in ns else 'not run'}")

# pooled
pooled = {}
if meta.get("pooled"):
    pn, k = meta["pooled_n"], meta["pooled_cmds"]
    d = os.path.join(out, "pooled")
    v = load(os.path.join(d, "nexus.verify.json")) or {}
    r1 = hf(os.path.join(d, "nexus.json"), "nexus-1cmd")
    rk = hf(os.path.join(d, "nexus.json"), f"nexus-{k}cmd")
    mux_v = load(os.path.join(out, f"n{pn}", "true", "ssh-mux.verify.json"))
    mux = hf(os.path.join(out, f"n{pn}", "true", "ssh-mux.json"))
    m1 = load(os.path.join(d, "nexus-1cmd.measure.json"))
    mk = load(os.path.join(d, f"nexus-{k}cmd.measure.json"))
    print(f"\n## Pooled sessions: {k} commands `true` x {pn} hosts in one task\n")
    print(f"Check run: {v.get('hosts_with_all_cmds', '?')}/{pn} hosts ran all {k} commands successfully; "
          f"{(v.get('json_run') or {}).get('passive_opens', '?')} TCP connections were accepted during it "
          f"(one session per host means {pn}).\n")
    print("| | median s | mean s | min–max s | runs | client CPU s (measure.py) | sshd CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r, m in ((f"nexus, 1 command", r1, m1), (f"nexus, {k} commands", rk, mk), (f"ssh-mux (warm masters), 1 command", mux,
                        load(os.path.join(out, f"n{pn}", "true", "ssh-mux.measure.json")))):
        if r:
            print(f"| {name} | {r['median']:.3f} | {r['mean']:.3f} | {r['min']:.3f}–{r['max']:.3f} | {r['runs']} | "
                  f"{m['client_cpu_s'] if m else '–'} | {m.get('server_cpu_s', '–') if m else '–'} |")
        else:
            print(f"| {name} | FAILED / not run | | | | | |")
    if r1 and rk:
        per = (rk["median"] - r1["median"]) / (k - 1) / pn
        per_mean = (rk["mean"] - r1["mean"]) / (k - 1) / pn
        pooled = {"nexus_per_cmd_host_s": per, "nexus_per_cmd_host_mean_s": per_mean}
        line = (f"\nnexus per extra command per host: ({rk['median']:.3f} − {r1['median']:.3f}) / {k - 1} / {pn} = "
                f"**{per * 1000:.2f} ms** (from means: {per_mean * 1000:.2f} ms)")
        if m1 and mk:
            cpu = (mk["client_cpu_s"] - m1["client_cpu_s"]) / (k - 1) / pn
            scpu = (mk.get("server_cpu_s", 0) - m1.get("server_cpu_s", 0)) / (k - 1) / pn
            pooled.update({"nexus_client_cpu_per_cmd_host_s": cpu, "sshd_cpu_per_cmd_host_s": scpu})
            line += f"; CPU per extra command per host: nexus {cpu * 1000:.2f} ms, sshd side {scpu * 1000:.2f} ms"
        print(line + ".")
    if mux:
        pooled["ssh_mux_per_host_s"] = mux["mean"] / pn
        print(f"ssh-mux per host: mean {mux['mean']:.3f} s / {pn} = **{mux['mean'] / pn * 1000:.2f} ms** "
              f"(median {mux['median'] / pn * 1000:.2f} ms).")
    elif mux_v:
        print(f"ssh-mux: verify {mux_v}")
    target(f"pooled: nexus per command per host <= 0.3 x ssh-mux per host",
           (pooled["nexus_per_cmd_host_s"] / pooled["ssh_mux_per_host_s"]) if "nexus_per_cmd_host_s" in pooled and "ssh_mux_per_host_s" in pooled else None,
           0.3, "<=", "x",
           f"{pooled['nexus_per_cmd_host_s'] * 1000:.2f} ms vs {pooled['ssh_mux_per_host_s'] * 1000:.2f} ms"
           if "nexus_per_cmd_host_s" in pooled and "ssh_mux_per_host_s" in pooled else "missing data")

if 200 in rss:
    target("peak RSS <= 60 MB at N=200", rss[200] / 1024, 60, "<=", "MB", "largest of 3 runs, empty run history")
if hist and hn == 200:
    fh = grp("full-history")
    if fh:
        target("peak RSS <= 60 MB at N=200, full run history", max(r["maxrss_kb"] for r in fh) / 1024, 60, "<=", "MB",
               "largest of 3 runs, 199 kept journals")

big = {}
if meta.get("n_big"):
    nb = meta["n_big"]
    d = os.path.join(out, "big")
    v = load(os.path.join(d, "nexus.verify.json")) or {}
    m = load(os.path.join(d, "nexus.measure.json"))
    try:
        ms = open(os.path.join(d, "maxstartups.txt")).read().strip()
    except OSError:
        ms = "?"
    print(f"\n## {nb} hosts (sshd MaxStartups {ms})\n")
    try:
        variant = open(os.path.join(d, "variant.txt")).read().strip()
    except OSError:
        variant = None
    print("| config | run | rc | hosts ok | wall s | peak RSS MB | user+sys s | TCP accepts | listen overflows |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    def big_rows(bd, label):
        v = load(os.path.join(bd, "nexus.verify.json")) or {}
        runs = jsonl(os.path.join(bd, "nexus.runs.jsonl"))
        jr = v.get("json_run") or {}
        if jr:
            print(f"| {label} | check (`--format json`) | {jr['rc']} | {v.get('ok_hosts')}/{nb} | {jr['wall_s']:.2f} | {jr['maxrss_kb'] / 1024:.1f} | "
                  f"{jr['user_s'] + jr['sys_s']:.2f} | {jr['passive_opens']} | {jr['listen_overflows']} |")
        if "q_ok" in v:
            print(f"| {label} | check (`-q`, untimed) | – | {'all' if v['q_ok'] else 'not all'} | "
                  f"stdout `{v.get('q_stdout', '')}` | | | | |")
        for r in runs:
            print(f"| {label} | {r['tag']} (`-q`) | {r['rc']} | {'all' if r['rc'] == 0 else 'not all'} | {r['wall_s']:.2f} | {r['maxrss_kb'] / 1024:.1f} | "
                  f"{r['user_s'] + r['sys_s']:.2f} | {r['passive_opens']} | {r['listen_overflows']} |")
        allruns = ([jr] if jr else []) + runs
        ok = bool(v.get("ok")) and all(r["rc"] == 0 for r in runs)
        peak = max((r["maxrss_kb"] for r in allruns), default=None)
        completed = sum(1 for r in allruns if r["rc"] == 0) + (1 if v.get("q_ok") else 0)
        attempts = len(allruns) + (1 if "q_ok" in v else 0)
        errs = {}
        try:
            for l in open(os.path.join(bd, "nexus.verify.jsonl")):
                e = json.loads(l)
                if e.get("event") == "command_finish" and e.get("status") != "success":
                    k = (e.get("error") or e.get("status")).split("\n")[0]
                    errs[k] = errs.get(k, 0) + 1
        except (OSError, ValueError):
            pass
        return {"ok": ok, "peak_rss_kb": peak, "wall_s": [r["wall_s"] for r in allruns], "errors": errs,
                "completed": completed, "attempts": attempts}
    big = big_rows(d, "as above")
    if variant:
        big["variant"] = big_rows(os.path.join(d, "variant"), f"+ `{variant}`")
        big["variant"]["config"] = variant
    for label, b in [("as above", big)] + ([(f"+ {variant}", big["variant"])] if variant else []):
        for err, c in b["errors"].items():
            print(f"\n{label}: {c} hosts failed in the check run: `{err}`")
    if m:
        print(f"\nUnder measure.py ({'+ ' + variant if variant else 'config as above'}; one more run; its 50 ms sampler over ~{nb} sshd processes slows it): "
              f"rc {m['rc']}, wall {m['wall_s']:.2f} s, client CPU {m['client_cpu_s']:.2f} s, sshd CPU {m.get('server_cpu_s', float('nan')):.2f} s.")
    ok, peak = big["ok"], big["peak_rss_kb"]
    def big_detail(b):
        walls = ", ".join("%.2f" % w for w in b["wall_s"])
        rss_txt = "%.0f MB" % (b["peak_rss_kb"] / 1024) if b["peak_rss_kb"] else "?"
        return (f"{'completed' if b['ok'] else 'DID NOT COMPLETE'}: {b['completed']} of {b['attempts']} runs succeeded on all hosts; "
                f"peak RSS {rss_txt}; timed wall {walls} s")
    target(f"{nb} hosts: completes, peak RSS < 200 MB", peak / 1024 if peak and ok else None, 200, "<", "MB", big_detail(big))
    if variant:
        bv = big["variant"]
        target(f"(same, with `{variant}`: not the prescribed config)", bv["peak_rss_kb"] / 1024 if bv["peak_rss_kb"] and bv["ok"] else None,
               200, "<", "MB", big_detail(bv))

if ab_med:
    print(f"\n## Interleaved rounds at N={ab['n']} ({ab['rounds']} rounds, each tool once per round, order rotated)\n")
    print("| tool | median s | min–max s | failed runs | nexus / tool |")
    print("|---|---:|---:|---:|---:|")
    for t in ab["tools"]:
        v = ab["times"][t]
        if not v:
            print(f"| {t} | – | – | {ab['failures'][t]} | – |")
            continue
        ratio = f"{ab_med['nexus'] / ab_med[t]:.2f}" if "nexus" in ab_med and t != "nexus" else "–"
        print(f"| {t} | {ab_med[t]:.3f} | {min(v):.3f}–{max(v):.3f} | {ab['failures'][t]} | {ratio} |")
print("\n## Targets\n")
print("| target | measured | limit | met |")
print("|---|---|---:|---|")
for t in targets:
    val = (f"{t['value']:.3f} x" if t["unit"] == "x" else f"{t['value']:.1f} {t['unit']}") if t["value"] is not None else "–"
    print(f"| {t['target']} | {val} ({t['detail']}) | {t['op']} {t['limit']} {t['unit']} | {'yes' if t['met'] else '**NO**'} |")

json.dump({"meta": meta, "results": {str(n): {t: r for t, r in v.items()} for n, v in res.items()},
           "ratios": {str(n): v for n, v in ratios.items()}, "rss_kb": {str(n): v for n, v in rss.items()},
           "pooled": pooled, "big": big, "interleaved": ab, "targets": targets},
          open(os.path.join(out, "summary.json"), "w"), indent=1, default=str)
EOF
log "raw results: $OUT (summary.md, summary.json, n<N>/true/, pooled/, big/)"
