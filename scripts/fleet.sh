#!/usr/bin/env bash
# A loopback "fleet" for the SSH benchmarks: OpenSSH sshd on 127.0.0.1 answering for hosts
# h1..hN, which exist only as aliases in a generated ssh_config.
#
#   scripts/fleet.sh start N    start sshd (unless running) and write client files for h1..hN
#   scripts/fleet.sh env        `export FLEET_...=` lines; use: eval "$(scripts/fleet.sh env)"
#   scripts/fleet.sh status     pids and N; exit 1 when nothing runs
#   scripts/fleet.sh stop       close ssh masters, stop the relay and sshd by the pids in
#                               their pidfiles, remove the state dir (KEEP_STATE=1 keeps it)
#
# Settings (environment):
#   BENCH_STATE        state dir (default ${TMPDIR:-/tmp}/nexus-fleet); nothing is written
#                      elsewhere except /run/sshd, which sshd itself requires
#   BENCH_PORT         first sshd port (default 22022)
#   BENCH_SSHD_COUNT   K sshd processes on ports BENCH_PORT..BENCH_PORT+K-1 (default 1);
#                      host hI is served by sshd number (I-1) mod K
#   BENCH_RTT_MS       D > 0: a delay relay listens on BENCH_PORT+100+k in front of
#                      sshd k and adds D ms per round trip; every client file points at it
#   BENCH_RELAY        rust (default): the relay is examples/delay_relay.rs (built here with
#                      cargo; one thread on epoll, a fraction of the Python relay's CPU,
#                      which on a 2-core machine competes with sshd and the client);
#                      py: scripts/delay-relay.py (also the fallback when cargo fails)
#   BENCH_MAX_STARTUPS sshd MaxStartups (default 2000: a 1000-host run logs in at once)
#   BENCH_REMOTE_RC=1  let the remote shell read ~/.bashrc (by default sshd sets SHLVL=1,
#                      and Debian's bash then skips the rc file of non-interactive sessions;
#                      a heavy rc file would otherwise dominate every remote command)
#   BENCH_TOOLS        for `env`: its venv/bin and bin go on PATH (default <repo>/.bench-tools)
#
# Files in the state dir: host_key, client_key(.pub) (ed25519, no passphrase),
# sshd-K.conf, sshd-K.pid, sshd.log, relay.pid, relay.log, and for clients:
#   ssh_config          Host h1..hN -> 127.0.0.1:port, user root, the client key only,
#                       no host key checking, BatchMode
#   hosts.txt           h1..hN, one a line
#   inventory.ini       Ansible; every host its own ansible_control_path (all hosts are the
#                       same address, port and user, so the default ControlPath hash would
#                       put every host on one shared connection)
#   ansible.cfg, ansible-pipelining.cfg   inventory, no host key checking, no facts
#   inventory.py        pyinfra: `fleet`, a list of (name, data) pairs
#   fleet.env           what `env` prints
# Only 127.0.0.1 is listened on or connected to. sshd runs as the calling user; logging in
# as root needs the script to run as root (the benchmarks do).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${BENCH_STATE:-${TMPDIR:-/tmp}/nexus-fleet}"
PORT="${BENCH_PORT:-22022}"
COUNT="${BENCH_SSHD_COUNT:-1}"
RTT="${BENCH_RTT_MS:-0}"
RELAY="${BENCH_RELAY:-rust}"
MAX_STARTUPS="${BENCH_MAX_STARTUPS:-2000}"
BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
SSHD=/usr/sbin/sshd
USER_NAME="$(id -un)"

say() { printf '[fleet] %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# The port clients use for sshd k: the relay's when there is one.
front_port() { if [ "$RTT" != 0 ]; then echo $((PORT + 100 + $1)); else echo $((PORT + $1)); fi; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_in() { cat "$1" 2>/dev/null | head -1 || true; }

sshd_conf() { # k
  local k="$1"
  {
    echo "# written by scripts/fleet.sh"
    echo "ListenAddress 127.0.0.1"
    echo "Port $((PORT + k))"
    echo "HostKey $STATE/host_key"
    echo "PidFile none"
    echo "AuthorizedKeysFile $STATE/client_key.pub"
    echo "PubkeyAuthentication yes"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM no"
    echo "PermitRootLogin prohibit-password"
    echo "StrictModes no"  # the state dir may be under a world-writable /tmp
    echo "MaxStartups $MAX_STARTUPS"
    echo "MaxSessions 100"
    echo "UseDNS no"
    echo "PrintMotd no"
    echo "PrintLastLog no"
    echo "X11Forwarding no"
    echo "LogLevel ERROR"
    echo "Subsystem sftp internal-sftp"
    [ "${BENCH_REMOTE_RC:-0}" = 1 ] || echo "SetEnv SHLVL=1"
  } > "$STATE/sshd-$k.conf"
}

client_files() { # n
  local n="$1" i k port key="$STATE/client_key"
  local cfg="$STATE/ssh_config" hosts="$STATE/hosts.txt" ini="$STATE/inventory.ini" py="$STATE/inventory.py"
  : > "$cfg"; : > "$hosts"
  echo "[fleet]" > "$ini"
  printf '# pyinfra inventory written by scripts/fleet.sh: %s aliases of 127.0.0.1\nfleet = [\n' "$n" > "$py"
  for ((i = 1; i <= n; i++)); do
    k=$(((i - 1) % COUNT))
    port="$(front_port "$k")"
    printf 'Host h%s\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n' \
      "$i" "$port" "$USER_NAME" "$key" >> "$cfg"
    echo "h$i" >> "$hosts"
    echo "h$i ansible_host=127.0.0.1 ansible_port=$port ansible_control_path=$STATE/acp/h$i" >> "$ini"
    printf '    ("h%s", {"ssh_hostname": "127.0.0.1", "ssh_port": %s, "ssh_user": "%s", "ssh_key": "%s",\n             "ssh_strict_host_key_checking": "no", "ssh_known_hosts_file": "/dev/null"}),\n' \
      "$i" "$port" "$USER_NAME" "$key" >> "$py"
  done
  echo "]" >> "$py"
  printf '\n[fleet:vars]\nansible_user=%s\nansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\n' \
    "$USER_NAME" "$key" >> "$ini"
  local pipe f
  for pipe in False True; do
    f="$STATE/ansible.cfg"; [ "$pipe" = True ] && f="$STATE/ansible-pipelining.cfg"
    cat > "$f" <<EOF
# written by scripts/fleet.sh
[defaults]
inventory = $ini
host_key_checking = False
interpreter_python = /usr/bin/python3
gathering = explicit
retry_files_enabled = False
deprecation_warnings = False
local_tmp = $STATE/ansible-tmp

[ssh_connection]
pipelining = $pipe
control_path_dir = $STATE/acp
ssh_args = -C -o ControlMaster=auto -o ControlPersist=300s -o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
EOF
  done
  local pidfiles=""
  for ((k = 0; k < COUNT; k++)); do pidfiles="$pidfiles $STATE/sshd-$k.pid"; done
  cat > "$STATE/fleet.env" <<EOF
export BENCH_STATE=$STATE
export FLEET_N=$n
export FLEET_PORT=$(front_port 0)
export FLEET_SSHD_PORT=$PORT
export FLEET_SSHD_COUNT=$COUNT
export FLEET_RTT_MS=$RTT
export FLEET_USER=$USER_NAME
export FLEET_SSH_CONFIG=$cfg
export FLEET_HOSTS=$hosts
export FLEET_KEY=$key
export FLEET_SSHD_PIDFILES="${pidfiles# }"
export FLEET_SSHD_CONFIG=$STATE/sshd-0.conf
export FLEET_ANSIBLE_INV=$ini
export FLEET_ANSIBLE_CFG=$STATE/ansible.cfg
export FLEET_ANSIBLE_CFG_PIPELINING=$STATE/ansible-pipelining.cfg
export FLEET_PYINFRA_INV=$py
EOF
}

start() {
  local n="${1:-}" k pid
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || fail "usage: $0 start N (N >= 1)"
  [[ "$COUNT" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_SSHD_COUNT must be a positive integer"
  [[ "$RTT" =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "BENCH_RTT_MS must be a number of milliseconds"
  [ -x "$SSHD" ] || fail "$SSHD is missing: scripts/bench-setup.sh ssh (or apt-get install openssh-server)"
  mkdir -p "$STATE/acp" "$STATE/cm" "$STATE/ansible-tmp"
  chmod 700 "$STATE"
  [ -f "$STATE/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C nexus-fleet-host -f "$STATE/host_key"
  [ -f "$STATE/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C nexus-fleet-client -f "$STATE/client_key"
  [ -d /run/sshd ] || mkdir -p /run/sshd 2>/dev/null || true  # sshd's privilege separation dir

  for ((k = 0; k < COUNT; k++)); do
    pid="$(pid_in "$STATE/sshd-$k.pid")"
    if alive "$pid"; then continue; fi
    sshd_conf "$k"
    "$SSHD" -t -f "$STATE/sshd-$k.conf" || fail "sshd rejects $STATE/sshd-$k.conf"
    # -D: no daemon (we hold the pid); -E: log to a file. No inherited stdio: a caller
    # reading our output through a pipe would otherwise wait for sshd to exit.
    "$SSHD" -D -E "$STATE/sshd.log" -f "$STATE/sshd-$k.conf" </dev/null >/dev/null 2>&1 &
    echo $! > "$STATE/sshd-$k.pid"
    say "sshd $k: pid $! on 127.0.0.1:$((PORT + k))"
  done

  if [ "$RTT" != 0 ] && ! alive "$(pid_in "$STATE/relay.pid")"; then
    local args=()
    for ((k = 0; k < COUNT; k++)); do args+=(--forward "$(front_port "$k"):$((PORT + k))"); done
    local relay_cmd=(python3 "$REPO/scripts/delay-relay.py")
    if [ "$RELAY" = rust ]; then
      if (cd "$REPO" && cargo build --release --example delay_relay -q) >>"$STATE/relay.log" 2>&1; then
        relay_cmd=("$REPO/target/release/examples/delay_relay")
      else
        say "could not build examples/delay_relay.rs (see $STATE/relay.log): using delay-relay.py"
      fi
    fi
    "${relay_cmd[@]}" --rtt-ms "$RTT" "${args[@]}" --pid-file "$STATE/relay.pid" \
      </dev/null >>"$STATE/relay.log" 2>&1 &
    local relay=$!
    for _ in $(seq 50); do [ -s "$STATE/relay.pid" ] && break; sleep 0.1; done
    [ -s "$STATE/relay.pid" ] || { kill "$relay" 2>/dev/null || true; fail "delay relay did not start (see $STATE/relay.log)"; }
    say "delay relay: pid $relay ($(basename "${relay_cmd[-1]}")), +$RTT ms per round trip"
  fi

  client_files "$n"

  # Ready when one host per sshd accepts a login (bounded wait).
  for ((k = 0; k < COUNT && k < n; k++)); do
    local ok=""
    for _ in $(seq 100); do
      if ssh -F "$STATE/ssh_config" -o ConnectTimeout=2 "h$((k + 1))" true 2>/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { tail -5 "$STATE/sshd.log" >&2 2>/dev/null || true; fail "no login on h$((k + 1)) (port $(front_port "$k"))"; }
  done
  say "ready: h1..h$n on 127.0.0.1:$PORT$( [ "$COUNT" -gt 1 ] && echo "..$((PORT + COUNT - 1))")$( [ "$RTT" != 0 ] && echo ", +$RTT ms RTT via $(front_port 0)"); state in $STATE"
}

stop_pid() { # pidfile what
  local pid; pid="$(pid_in "$1")"
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    say "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

stop() {
  [ -d "$STATE" ] || { say "nothing to stop: no $STATE"; return 0; }
  local s f
  for s in "$STATE"/acp/* "$STATE"/cm/*; do
    [ -S "$s" ] && ssh -o ControlPath="$s" -O exit fleet-master >/dev/null 2>&1 || true
  done
  stop_pid "$STATE/relay.pid" "delay relay"
  for f in "$STATE"/sshd-*.pid; do
    [ -e "$f" ] || continue
    stop_pid "$f" "sshd $(basename "$f" .pid)"
  done
  if [ "${KEEP_STATE:-0}" = 1 ]; then say "kept $STATE"; else rm -rf "$STATE"; fi
}

status() {
  local f pid up=""
  for f in "$STATE"/sshd-*.pid "$STATE"/relay.pid; do
    [ -e "$f" ] || continue
    pid="$(pid_in "$f")"
    alive "$pid" && up="$up $(basename "$f" .pid)=$pid"
  done
  if [ -z "$up" ]; then echo "stopped"; return 1; fi
  echo "running:$up; $(grep -h 'FLEET_N=' "$STATE/fleet.env" 2>/dev/null | sed 's/export //')"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  status) status ;;
  env)
    [ -f "$STATE/fleet.env" ] || fail "no fleet in $STATE (run: $0 start N)"
    cat "$STATE/fleet.env"
    echo "export PATH=$BENCH_TOOLS/venv/bin:$BENCH_TOOLS/bin:\$PATH"
    ;;
  *) echo "usage: $0 start N | stop | env | status" >&2; exit 2 ;;
esac
