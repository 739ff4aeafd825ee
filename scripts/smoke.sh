#!/usr/bin/env bash
# Smoke test of a built nexus binary, under qemu-user when it is for another architecture:
# `--version`, a local task, and an SSH task against a throwaway sshd on 127.0.0.1
# (scripts/demo-sshd.sh). CI runs it on the aarch64 static binary under
# qemu-aarch64-static (no binfmt_misc needed: qemu is called directly).
#
#   scripts/smoke.sh BINARY [QEMU]     e.g. scripts/smoke.sh target/aarch64-unknown-linux-gnu/release-lto/nexus qemu-aarch64-static
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: $0 BINARY [QEMU]}")
qemu=${2:-}
run=("$bin")
if [ -n "$qemu" ]; then
  if ! command -v "$qemu" >/dev/null 2>&1; then
    # shellcheck source=scripts/cross-common.sh
    source scripts/cross-common.sh
    apt_install qemu-user-static
  fi
  run=("$qemu" "$bin")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nexus-smoke.XXXXXX")
cleanup() {
  ./scripts/demo-sshd.sh stop "$work/sshd" || true
  rm -rf "$work"
}
trap cleanup EXIT
export NEXUS_HOME=$work/home
failed=0

check() { # NAME EXPECTED-SUBSTRING COMMAND...: the command exits 0 and prints the text
  local name=$1 want=$2
  shift 2
  local out
  if ! out=$("$@" 2>&1); then
    echo "FAIL: $name: exit status $?" && echo "$out"
    failed=1
  elif [[ $out != *"$want"* ]]; then
    echo "FAIL: $name: no \"$want\" in:" && echo "$out"
    failed=1
  else
    echo "ok: $name: $(grep -F -m1 -- "$want" <<<"$out")"
  fi
}

check "--version" "nexus " "${run[@]}" --version

mkdir -p "$work/local"
cat >"$work/local/nexus.toml" <<'EOF'
[tasks.hello]
run = "echo hello from {{ host }} on $(uname -m)"
EOF
check "a local task" "hello from local" "${run[@]}" -c "$work/local/nexus.toml" run hello

mkdir -p "$work/sshd"
./scripts/demo-sshd.sh start "$work/sshd"
cat >"$work/sshd/nexus.toml" <<EOF
[config]
ssh_config = "$work/sshd/ssh_config"
known_hosts = "$work/sshd/known_hosts"
host_key_checking = "strict"

[hosts]
web = "web-1"

[tasks.remote]
on = "web"
run = "echo remote task on \$NEXUS_HOST"
EOF
check "an SSH task" "remote task on web-1" "${run[@]}" -c "$work/sshd/nexus.toml" run remote

[ "$failed" -eq 0 ] || { echo "smoke: FAILED ($bin)" >&2; exit 1; }
echo "smoke: passed ($bin${qemu:+ under $qemu})"
