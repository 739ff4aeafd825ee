#!/usr/bin/env bash
# A throwaway OpenSSH sshd on 127.0.0.1 for the remote part of `make demo`.
#
#   scripts/demo-sshd.sh start DIR   generate keys, write configs, start sshd, wait for it
#   scripts/demo-sshd.sh stop DIR    stop the sshd started in DIR (by its pidfile)
#
# DIR (e.g. from mktemp -d) receives:
#   host_ed25519{,.pub}   the server's host key
#   client{,.pub}         the client key; client.pub is the sshd's AuthorizedKeysFile
#   sshd_config sshd.pid sshd.log
#   ssh_config            host aliases web-1, web-2, db-1 -> 127.0.0.1:PORT
#   known_hosts           `[127.0.0.1]:PORT <host key>`, so nexus can check strictly
#   port                  the port sshd listens on
# Only 127.0.0.1 is listened on or connected to. `stop` leaves DIR in place.
set -euo pipefail

SSHD=/usr/sbin/sshd
ALIASES=(web-1 web-2 db-1)

die() { echo "demo-sshd: $*" >&2; exit 1; }

port_open() {  # $1 = port; true when 127.0.0.1:$1 accepts a TCP connection
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

cmd_start() {
  local d="$1"
  [ -d "$d" ] || die "no such directory: $d"
  d="$(cd "$d" && pwd)"
  [ -x "$SSHD" ] || die "$SSHD missing: run scripts/ensure-deps.sh (apt-get install openssh-server)"
  local user port
  user="$(id -un)"
  port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"

  rm -f "$d/host_ed25519" "$d/host_ed25519.pub" "$d/client" "$d/client.pub"
  ssh-keygen -q -t ed25519 -N '' -C nexus-demo-host -f "$d/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C nexus-demo-client -f "$d/client"

  cat > "$d/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/client.pub
# DIR sits under a world-writable /tmp
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100
LogLevel ERROR
UseDNS no
PrintMotd no
PrintLastLog no
# Debian's bash sources ~/.bashrc for commands run by sshd when SHLVL < 2; a heavy rc
# file would slow every remote command down (and could print noise). SHLVL=1 skips it.
SetEnv SHLVL=1
EOF
  mkdir -p /run/sshd 2>/dev/null || true   # privilege-separation directory
  "$SSHD" -t -f "$d/sshd_config" || die "sshd rejected $d/sshd_config"
  # Without -D sshd daemonizes and writes its pidfile; no inherited stdout/stderr,
  # so a caller's pipe still sees EOF.
  "$SSHD" -f "$d/sshd_config" -E "$d/sshd.log" </dev/null >/dev/null 2>&1 \
    || { cat "$d/sshd.log" >&2 2>/dev/null || true; die "sshd did not start"; }

  # Wait (bounded: 50 x 0.1 s) until the port accepts connections and the pidfile
  # (written right after the listener is up) is there.
  local ok=""
  for _ in $(seq 50); do
    if [ -s "$d/sshd.pid" ] && port_open "$port"; then ok=1; break; fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    cat "$d/sshd.log" >&2 2>/dev/null || true
    cmd_stop "$d"
    die "sshd is not listening on 127.0.0.1:$port after 5 s"
  fi

  : > "$d/ssh_config"
  local h
  for h in "${ALIASES[@]}"; do
    cat >> "$d/ssh_config" <<EOF
Host $h
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $d/client
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
EOF
  done
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_ed25519.pub")" > "$d/known_hosts"
  echo "$port" > "$d/port"
}

alive() {  # $1 = pid; a zombie counts as gone (the daemon's parent is init, which may reap late)
  local stat
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"   # fields after "pid (comm) ": the state comes first
  [[ "$stat" != Z* && "$stat" != X* ]]
}

cmd_stop() {
  local d="$1" pid
  [ -d "$d" ] || return 0
  d="$(cd "$d" && pwd)"
  [ -f "$d/sshd_config" ] || return 0
  # The daemonized sshd writes its pidfile just after it starts listening: if a start
  # was interrupted right there, give it a moment (bounded: 10 x 0.1 s).
  if [ ! -s "$d/sshd.pid" ] && pgrep -f -- "-f $d/sshd_config " >/dev/null; then
    for _ in $(seq 10); do [ -s "$d/sshd.pid" ] && break; sleep 0.1; done
  fi
  [ -s "$d/sshd.pid" ] || return 0
  pid="$(cat "$d/sshd.pid" 2>/dev/null || true)"
  # Only the sshd started with this DIR's config (the PID may have been reused).
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$d/sshd_config"; then
    kill "$pid" 2>/dev/null || true
    # Wait (bounded: 50 x 0.1 s), then insist.
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$d/sshd.pid"
}

case "${1:-}:${2:-}" in
  start:?*) cmd_start "$2" ;;
  stop:?*) cmd_stop "$2" ;;
  *) echo "usage: $0 start DIR | stop DIR" >&2; exit 2 ;;
esac
