#!/usr/bin/env bash
# Rollout comparison (issue 14): nexus and Ansible roll one change out to N hosts (default
# 20) of the loopback fleet (scripts/fleet.sh) in 25% batches with a failure budget of
# zero. Each host runs a step, changes a config file that notifies a `restart` handler,
# runs a `migrate` step, then passes a health check. Host BAD (default h8, in the second
# batch) fails: in scenario `health` its health check, in scenario `step` its `migrate`
# step (after the notification, before the handler could run).
#
#   scripts/bench-rollout.sh [ROUNDS]     default 3 rounds per tool, alternating
#
# nexus:   strategy = "rolling", batch = "25%", max_fail = 0,
#          wait_for = { cmd, timeout = TIMEOUT, interval = INTERVAL }, notify = "restart"
# Ansible: serial: "25%", max_fail_percentage: 0, the check as a task with
#          until/retries/delay (Ansible's `delay` is whole seconds), notify: restart
#
# Each round, per scenario and tool: run 1 with BAD broken, then run 2 with BAD repaired. Every remote
# command appends "WHAT HOST NANOSECONDS" to a log on this machine (the hosts are aliases of
# 127.0.0.1), from which, for run 1:
#   started_after  hosts of later batches than BAD's that started (touched after the
#                  failure; hosts of BAD's own batch were started with it)
#   fail_to_end    ms from the failure (BAD's last probe, or its migrate step) to the
#                  tool's exit
#   wall           s from the tool's start to its exit
#   handler_bad    handler runs on BAD in run 1, and in run 2 (the next invocation)
#   never_restarted  hosts whose config changed in run 1 and whose handler ran in neither
#                  run 1 nor run 2 (a lost handler: the service keeps the old config)
# Results: $BENCH_OUT/rollout/results.json and summary.txt. The fleet is left running
# (scripts/fleet.sh stop). Environment: N, BAD, INTERVAL (default 1s), TIMEOUT (3s),
# BENCH_OUT (default <repo>/.bench-out), BENCH_TOOLS (scripts/bench-setup.sh ssh),
# NEXUS_BIN / NEXUS_REV (see bench-common.sh).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
N="${N:-20}"
BAD="${BAD:-h8}"
INTERVAL="${INTERVAL:-1s}"
TIMEOUT="${TIMEOUT:-3s}"
BENCH_OUT="${BENCH_OUT:-$REPO/.bench-out}"
export BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
OUT="$BENCH_OUT/rollout"
WORK="$OUT/work"

log() { printf '[bench-rollout %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [ROUNDS]"
secs() { python3 -c 'import sys; s=sys.argv[1]; print(float(s[:-2])/1000 if s.endswith("ms") else float(s.rstrip("s")))' "$1"; }
interval_s="$(secs "$INTERVAL")"
timeout_s="$(secs "$TIMEOUT")"
retries="$(python3 -c "import math; print(max(1, math.ceil($timeout_s / max(1, round($interval_s)))))")"
delay="$(python3 -c "print(max(1, round($interval_s)))")"

build_nexus
"$REPO/scripts/fleet.sh" start "$N"
eval "$("$REPO/scripts/fleet.sh" env)"
ANSIBLE="$BENCH_TOOLS/venv/bin/ansible-playbook"
[ -x "$ANSIBLE" ] || die "no ansible-playbook in $BENCH_TOOLS/venv: scripts/bench-setup.sh ssh"

rm -rf "$WORK"
mkdir -p "$WORK/state"
LOGF="$WORK/log"
STATE="$WORK/state"
export NEXUS_HOME="$WORK/nexus-home"

hosts="$(seq -s ', ' -f '"h%g"' 1 "$N")"
cat > "$WORK/nexus.toml" <<EOF
[config]
ssh_config = "$FLEET_SSH_CONFIG"
host_key_checking = "off"

[hosts]
web = [$hosts]

[tasks.deploy]
on = "web"
strategy = "rolling"
batch = "25%"
max_fail = 0
wait_for = { cmd = "echo probe \$NEXUS_HOST \$(date +%s%N) >> $LOGF; test ! -e $STATE/bad-\$NEXUS_HOST", timeout = "$TIMEOUT", interval = "$INTERVAL" }
run = [
  "echo start \$NEXUS_HOST \$(date +%s%N) >> $LOGF",
  { cmd = "echo v2 > $STATE/app-\$NEXUS_HOST.conf", unless = "grep -qx v2 $STATE/app-\$NEXUS_HOST.conf", notify = "restart" },
  "echo migrate \$NEXUS_HOST \$(date +%s%N) >> $LOGF; test ! -e $STATE/broken-\$NEXUS_HOST",
]

[handlers.restart]
run = "echo restart \$NEXUS_HOST \$(date +%s%N) >> $LOGF"
EOF

cat > "$WORK/playbook.yml" <<EOF
- hosts: fleet
  serial: "25%"
  max_fail_percentage: 0
  gather_facts: false
  tasks:
    - name: start
      ansible.builtin.shell: echo start {{ inventory_hostname }} \$(date +%s%N) >> $LOGF
    - name: config
      ansible.builtin.copy:
        content: "v2\n"
        dest: "$STATE/app-{{ inventory_hostname }}.conf"
      notify: restart
    - name: migrate
      ansible.builtin.shell: echo migrate {{ inventory_hostname }} \$(date +%s%N) >> $LOGF; test ! -e $STATE/broken-{{ inventory_hostname }}
    - name: health
      ansible.builtin.shell: echo probe {{ inventory_hostname }} \$(date +%s%N) >> $LOGF; test ! -e $STATE/bad-{{ inventory_hostname }}
      register: health
      until: health.rc == 0
      retries: $retries
      delay: $delay
  handlers:
    - name: restart
      ansible.builtin.shell: echo restart {{ inventory_hostname }} \$(date +%s%N) >> $LOGF
EOF

# run TOOL -> "START_NS END_NS RC"
run_tool() {
  local start end rc=0
  start="$(date +%s%N)"
  case "$1" in
    nexus) (cd "$WORK" && "$NEXUS" run deploy --plain -q --no-resume) > "$WORK/$1.out" 2>&1 || rc=$? ;;
    ansible) ANSIBLE_CONFIG="$FLEET_ANSIBLE_CFG" "$ANSIBLE" -i "$FLEET_ANSIBLE_INV" -f "$N" "$WORK/playbook.yml" > "$WORK/$1.out" 2>&1 || rc=$? ;;
  esac
  end="$(date +%s%N)"
  echo "$start $end $rc"
}

# fresh SCENARIO: no config files, no log, no pending handlers, BAD broken
fresh() {
  rm -rf "$STATE" "$NEXUS_HOME" "$LOGF"
  mkdir -p "$STATE"
  : > "$LOGF"
  case "$1" in
    health) touch "$STATE/bad-$BAD" ;;
    step) touch "$STATE/broken-$BAD" ;;
  esac
}

: > "$OUT/rounds.jsonl"
for ((r = 1; r <= ROUNDS; r++)); do
  order="nexus ansible"
  [ $((r % 2)) -eq 0 ] && order="ansible nexus"
  for scenario in health step; do
  for tool in $order; do
    fresh "$scenario"
    read -r s1 e1 rc1 < <(run_tool "$tool")
    cp "$LOGF" "$WORK/$tool.$scenario.run1.log"
    rm -f "$STATE/bad-$BAD" "$STATE/broken-$BAD"
    : > "$LOGF"
    read -r s2 e2 rc2 < <(run_tool "$tool")
    cp "$LOGF" "$WORK/$tool.$scenario.run2.log"
    N="$N" python3 - "$tool" "$scenario" "$BAD" "$s1" "$e1" "$rc1" "$rc2" "$WORK/$tool.$scenario.run1.log" "$WORK/$tool.$scenario.run2.log" >> "$OUT/rounds.jsonl" <<'PY'
import json, os, sys
tool, scenario, bad, s1, e1, rc1, rc2, log1, log2 = sys.argv[1:]
s1, e1 = int(s1), int(e1)
def lines(p):
    return [l.split() for l in open(p) if len(l.split()) == 3]
one, two = lines(log1), lines(log2)
# The failure: BAD's last probe (health), or its migrate step (step).
what = "probe" if scenario == "health" else "migrate"
marks = [int(t) for w, h, t in one if h == bad and w == what]
last = max(marks) if marks else None
n = int(os.environ["N"])
size = -(-n * 25 // 100)
batch = lambda h: (int(h[1:]) - 1) // size
starts = {}
for w, h, t in one:
    if w == "start":
        starts.setdefault(h, int(t))
print(json.dumps({
    "tool": tool, "scenario": scenario, "rc1": int(rc1), "rc2": int(rc2),
    "wall_s": round((e1 - s1) / 1e9, 3),
    "started": len(starts),
    "started_after": sum(1 for h in starts if batch(h) > batch(bad)),
    "probe_to_end_ms": round((e1 - last) / 1e6, 1) if last else None,
    "handler_runs_run1": sum(1 for w, h, t in one if w == "restart"),
    "handler_bad_run1": sum(1 for w, h, t in one if w == "restart" and h == bad),
    "handler_bad_run2": sum(1 for w, h, t in two if w == "restart" and h == bad),
    "never_restarted": len(set(starts) - {h for w, h, t in one + two if w == "restart"}),
}))
PY
    log "round $r $scenario $tool: $(tail -1 "$OUT/rounds.jsonl")"
  done
  done
done

python3 - "$OUT" "$rev" "$N" "$BAD" "$INTERVAL" "$TIMEOUT" "$retries" "$delay" <<'PY'
import json, statistics, sys
out, rev, n, bad, interval, timeout, retries, delay = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{out}/rounds.jsonl")]
res = {"nexus": rev, "n": int(n), "bad": bad, "interval": interval, "timeout": timeout,
       "ansible_retries": int(retries), "ansible_delay_s": int(delay), "tools": {}}
lines = [f"rollout of {n} hosts, 25% batches, max fail 0, {bad} fails; nexus: {rev}",
         "scenario tool     rc1  started  started_after  fail_to_end_ms  wall_s  handler_on_bad(run1, run2)  never_restarted"]
for scenario, tool in [(s, t) for s in ("health", "step") for t in ("nexus", "ansible")]:
    rs = [r for r in rows if r["tool"] == tool and r["scenario"] == scenario]
    med = lambda k: statistics.median(r[k] for r in rs if r[k] is not None)
    agg = {k: med(k) for k in ("wall_s", "probe_to_end_ms", "started", "started_after",
                               "handler_bad_run1", "handler_bad_run2", "rc1", "never_restarted")}
    agg["rounds"] = rs
    res["tools"][f"{scenario} {tool}"] = agg
    lines.append(f"{scenario:8} {tool:8} {agg['rc1']:>3}  {agg['started']:>7}  {agg['started_after']:>13}  "
                 f"{agg['probe_to_end_ms']:>14}  {agg['wall_s']:>6}  {agg['handler_bad_run1']}, {agg['handler_bad_run2']}{agg['never_restarted']:>27}")
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
open(f"{out}/summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
