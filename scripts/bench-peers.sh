#!/usr/bin/env bash
# Time the tools nexus is compared with, each running one command on the N hosts of the
# loopback fleet (scripts/fleet.sh). scripts/bench-ssh.sh calls this; it also runs alone.
#
#   scripts/bench-peers.sh N [CMD]        CMD defaults to `true`
#
# Tools (TOOLS, space-separated; every one with N-way concurrency):
#   ssh               xargs -P N ssh -F ssh_config hK CMD: OpenSSH, one new connection per host
#   ssh-c25519        the same with KexAlgorithms=curve25519-sha256 (OpenSSH 9's default
#                     sntrup761x25519 costs the client much more CPU per connection)
#   ssh-mux           the same through ControlMaster sockets kept open between runs (the
#                     check run opens them): no handshake in the timed runs
#   ansible           ansible all -m ansible.builtin.command -a CMD -f N; pipelining off;
#                     its control masters are closed before every run (cold)
#   ansible-pipe      the same with pipelining on
#   ansible-pipe-mux  pipelining on, masters kept between runs (warm)
#   pyinfra           pyinfra inventory.py exec -y --parallel N -- CMD
#   pssh              parallel-ssh, one session per host (scripts/pssh-run.py)
# Default TOOLS: ssh ssh-c25519 ssh-mux pssh pyinfra ansible.
#
# Per tool, in $BENCH_OUT/ssh/n<N>/<CMD as a file name>/:
#   1. check: the tool runs `printf 'PEERCHECK-%s\n' ok` everywhere; the output must show
#      PEERCHECK-ok N times, from N different hosts where the tool names them. TOOL.check.log,
#      TOOL.verify.json {"tool", "n", "rc", "marks", "distinct_hosts", "masters"}. A tool that
#      fails is reported in summary.txt and not timed.
#   2. hyperfine -N --warmup WARMUP --runs RUNS of run-TOOL.sh (prepare-TOOL.sh before each
#      run) -> TOOL.json; a non-zero exit fails the timing.
#   3. one run under scripts/measure.py (client CPU, sshd CPU, largest RSS) -> TOOL.measure.json
#      with "ok_hosts" added (how many hosts the run's output shows as successful), and
#      TOOL.net.json: growth of the kernel's ListenOverflows counter during steps 1-3.
#
# Environment: TOOLS, RUNS=5, WARMUP=1, TOOL_TIMEOUT=300 (seconds per invocation),
# BENCH_OUT (default <repo>/.bench-out), BENCH_TOOLS (default <repo>/.bench-tools: the venv
# of scripts/bench-setup.sh ssh), and fleet.sh's BENCH_STATE/BENCH_PORT/... The fleet is
# started (or resized) to N here and left running: stop it with scripts/fleet.sh stop.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
N="${1:?usage: $0 N [CMD]}"
CMD="${2:-true}"
TOOLS="${TOOLS:-ssh ssh-c25519 ssh-mux pssh pyinfra ansible}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
TOOL_TIMEOUT="${TOOL_TIMEOUT:-300}"
BENCH_OUT="${BENCH_OUT:-$REPO/.bench-out}"
export BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
CHECK_CMD="printf 'PEERCHECK-%s\n' ok"
CHECK_MARK="PEERCHECK-ok"

say() { printf '[bench-peers %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

command -v hyperfine >/dev/null || fail "hyperfine missing: scripts/bench-setup.sh ssh"
"$REPO/scripts/fleet.sh" start "$N"
eval "$("$REPO/scripts/fleet.sh" env)"
# parallel-ssh asks git for its own version when imported; with the venv inside this work
# tree that would be the repository's git (two extra processes and an error on stderr).
export GIT_CEILING_DIRECTORIES="$BENCH_TOOLS${GIT_CEILING_DIRECTORIES:+:$GIT_CEILING_DIRECTORIES}"
mkdir -p "$BENCH_STATE/cm"

slug="$(printf '%s' "$CMD" | tr -c 'A-Za-z0-9._-' '_')"
D="$BENCH_OUT/ssh/n$N/$slug"
mkdir -p "$D"
server_args=()
for f in $FLEET_SSHD_PIDFILES; do server_args+=(--server-pidfile "$f"); done

# tool_line TOOL CMD: the shell command that runs TOOL once with CMD on all hosts
tool_line() {
  local tool="$1" q ssh_x="xargs -a $FLEET_HOSTS -P $N -I{} ssh -F $FLEET_SSH_CONFIG"
  q="$(printf '%q' "$2")"
  case "$tool" in
    ssh)              echo "$ssh_x {} $q" ;;
    ssh-c25519)       echo "$ssh_x -o KexAlgorithms=curve25519-sha256 {} $q" ;;
    ssh-mux)          echo "$ssh_x -o ControlMaster=auto -o ControlPath=$BENCH_STATE/cm/%n -o ControlPersist=600 {} $q" ;;
    ansible)          echo "env ANSIBLE_CONFIG=$FLEET_ANSIBLE_CFG ansible all -i $FLEET_ANSIBLE_INV -m ansible.builtin.command -a $q -f $N" ;;
    ansible-pipe*)    echo "env ANSIBLE_CONFIG=$FLEET_ANSIBLE_CFG_PIPELINING ansible all -i $FLEET_ANSIBLE_INV -m ansible.builtin.command -a $q -f $N" ;;
    pyinfra)          echo "pyinfra $FLEET_PYINFRA_INV exec -y --parallel $N -- $q" ;;
    pssh)             echo "python3 $REPO/scripts/pssh-run.py --hosts $N --port $FLEET_PORT --user $FLEET_USER --key $FLEET_KEY --show -- $q" ;;
    *) return 1 ;;
  esac
}

# script FILE BODY: an executable wrapper with this run's PATH
script() {
  {
    echo '#!/usr/bin/env bash'
    echo "export PATH=$(printf '%q' "$PATH") GIT_CEILING_DIRECTORIES=$(printf '%q' "$GIT_CEILING_DIRECTORIES")"
    echo "cd $(printf '%q' "$D")"
    echo "$2"
  } > "$1"
  chmod +x "$1"
}

close_masters() { # DIR...
  local s
  for s in "$@"; do
    for s in "$s"/*; do
      [ -S "$s" ] && ssh -o ControlPath="$s" -O exit peer-master >/dev/null 2>&1 || true
    done
  done
}

overflows() { awk '/^TcpExt:/ { if (!k) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") k = i } else print $k }' /proc/net/netstat; }

# hosts_ok TOOL LOG RC: hosts the log shows as successful for the timed command
hosts_ok() {
  local tool="$1" log="$2" rc="$3"
  case "$tool" in
    ssh*)     if [ "$rc" = 0 ]; then echo "$N"; else echo 0; fi ;;  # xargs: 0 only if every ssh was
    ansible*) grep -cE '^h[0-9]+ \| CHANGED \| rc=0' "$log" || true ;;
    pyinfra)  grep -cE '^\s*\[h[0-9]+\] Success' "$log" || true ;;
    pssh)     { sed -n 's/^pssh-run: \([0-9]*\) of .*/\1/p' "$log" | tail -1; } || true ;;
  esac
}

# named_hosts TOOL LOG: distinct hosts that printed the check mark (ssh: marks only)
named_hosts() {
  local tool="$1" log="$2"
  case "$tool" in
    ansible*) { grep -oE '^h[0-9]+ \| CHANGED' "$log" || true; } | sort -u | wc -l ;;
    pyinfra)  { grep -oE "^\s*\[h[0-9]+\] +$CHECK_MARK" "$log" || true; } | tr -d ' ' | sort -u | wc -l ;;
    pssh)     { grep -oE "^h[0-9]+: $CHECK_MARK" "$log" || true; } | sort -u | wc -l ;;
    *)        grep -c "$CHECK_MARK" "$log" || true ;;
  esac
}

: > "$D/summary.txt"
note() { printf '%-17s %s\n' "$1" "$2" | tee -a "$D/summary.txt" >&2; }
say "N=$N CMD='$CMD' TOOLS='$TOOLS' -> $D"
for tool in $TOOLS; do
  line="$(tool_line "$tool" "$CMD")" || { note "$tool" "UNKNOWN TOOL"; continue; }
  rm -f "$D/$tool".{json,measure.json,verify.json,check.log,measure.log,hyperfine.log,net.json}
  script "$D/run-$tool.sh" "exec timeout -k 5 $TOOL_TIMEOUT $line"
  script "$D/check-$tool.sh" "exec timeout -k 5 $TOOL_TIMEOUT $(tool_line "$tool" "$CHECK_CMD")"
  case "$tool" in
    ansible|ansible-pipe) script "$D/prepare-$tool.sh" "$(declare -f close_masters); close_masters $BENCH_STATE/acp" ;;
    *)                    script "$D/prepare-$tool.sh" "true" ;;
  esac
  close_masters "$BENCH_STATE/acp" "$BENCH_STATE/cm"
  lo0="$(overflows)"

  # 1. check
  "$D/prepare-$tool.sh"
  set +e; "$D/check-$tool.sh" > "$D/$tool.check.log" 2>&1; crc=$?; set -e
  marks="$(grep -c "$CHECK_MARK" "$D/$tool.check.log" || true)"
  named="$(named_hosts "$tool" "$D/$tool.check.log")"
  masters=null
  case "$tool" in
    ssh-mux) masters=0
             while read -r h; do
               ssh -F "$FLEET_SSH_CONFIG" -o ControlPath="$BENCH_STATE/cm/%n" -O check "$h" 2>/dev/null && masters=$((masters + 1))
             done < "$FLEET_HOSTS" ;;
    ansible-pipe-mux) masters="$(find "$BENCH_STATE/acp" -type s | wc -l)" ;;
  esac
  printf '{"tool": "%s", "n": %s, "rc": %s, "marks": %s, "distinct_hosts": %s, "masters": %s}\n' \
    "$tool" "$N" "$crc" "$marks" "$named" "$masters" > "$D/$tool.verify.json"
  if [ "$crc" != 0 ] || [ "$marks" != "$N" ] || [ "$named" != "$N" ]; then
    note "$tool" "CHECK FAILED: rc $crc, $marks/$N marks, $named hosts ($D/$tool.check.log)"
    tail -4 "$D/$tool.check.log" >&2 || true
    continue
  fi

  # 2. timing
  set +e
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --prepare "$D/prepare-$tool.sh" \
    -n "$tool" --export-json "$D/$tool.json" "$D/run-$tool.sh" > "$D/$tool.hyperfine.log" 2>&1
  hrc=$?
  set -e
  if [ "$hrc" != 0 ]; then
    note "$tool" "TIMING FAILED: hyperfine rc $hrc ($D/$tool.hyperfine.log)"
    tail -4 "$D/$tool.hyperfine.log" >&2 || true
    rm -f "$D/$tool.json"
    continue
  fi

  # 3. one measured run
  "$D/prepare-$tool.sh"
  set +e
  python3 "$REPO/scripts/measure.py" "${server_args[@]}" --timeout "$((TOOL_TIMEOUT + 30))" \
    --log "$D/$tool.measure.log" -- "$D/run-$tool.sh" > "$D/$tool.measure.json.tmp"
  mrc=$?
  set -e
  ok="$(hosts_ok "$tool" "$D/$tool.measure.log" "$mrc")"
  python3 - "$D/$tool.measure.json.tmp" "$D/$tool.measure.json" "${ok:-0}" <<'EOF'
import json, os, sys
src, dst, ok = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    m = json.load(open(src))
except ValueError:
    m = {"error": "measure.py printed no result"}
m["ok_hosts"] = ok
json.dump(m, open(dst, "w"))
os.unlink(src)
EOF
  echo "{\"listen_overflows\": $(( $(overflows) - lo0 ))}" > "$D/$tool.net.json"
  note "$tool" "$(python3 - "$D/$tool.json" "$D/$tool.measure.json" "$N" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"][0]
m = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
print(f"median {statistics.median(r['times']):.3f} s (min {min(r['times']):.3f}, max {max(r['times']):.3f}, "
      f"{len(r['times'])} runs); measured run: wall {m.get('wall_s', float('nan')):.2f} s, client CPU "
      f"{m.get('client_cpu_s', float('nan')):.2f} s, sshd CPU {m.get('server_cpu_s', float('nan')):.2f} s, "
      f"ok {m['ok_hosts']}/{n}")
EOF
)"
done
close_masters "$BENCH_STATE/acp"
say "done: $D/summary.txt"
