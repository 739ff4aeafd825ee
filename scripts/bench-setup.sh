#!/usr/bin/env bash
# Install the tools the benchmarks compare nexus with. Safe to run again: it only installs
# what is missing (or whose pinned version changed).
#
#   scripts/bench-setup.sh [local|ssh|all]      default: all
#
#   local  hyperfine, GNU time, make (apt-get); just (cargo install, into .bench-tools/)
#   ssh    local, plus openssh-server/-client (apt-get) and a Python venv in
#          .bench-tools/venv with ansible-core, pyinfra and parallel-ssh
#
# Everything that is not a system package goes under BENCH_TOOLS (default
# <repo>/.bench-tools, gitignored): bin/just, venv/. apt-get needs root or sudo; without
# either, the script says what to install and exits 1.
#
# Versions (pinned so runs stay comparable; override from the environment):
#   ANSIBLE_CORE_VERSION=2.19.14 PYINFRA_VERSION=3.10.0 PSSH_VERSION=2.16.0.post1
#   JUST_VERSION= (empty: the newest on crates.io; needs >= 1.42 for [parallel] and --jobs)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_TOOLS="${BENCH_TOOLS:-$REPO/.bench-tools}"
WHAT="${1:-all}"
ANSIBLE_CORE_VERSION="${ANSIBLE_CORE_VERSION:-2.19.14}"
PYINFRA_VERSION="${PYINFRA_VERSION:-3.10.0}"
PSSH_VERSION="${PSSH_VERSION:-2.16.0.post1}"
JUST_VERSION="${JUST_VERSION:-}"

say() { printf '[bench-setup] %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

case "$WHAT" in local|ssh|all) ;; *) fail "usage: $0 [local|ssh|all]" ;; esac

# ---- system packages -----------------------------------------------------------------
packages=()
command -v hyperfine >/dev/null || packages+=(hyperfine)
[ -x /usr/bin/time ] || packages+=(time)
command -v make >/dev/null || packages+=(make)
if [ "$WHAT" != local ]; then
  [ -x /usr/sbin/sshd ] || packages+=(openssh-server)
  command -v ssh >/dev/null || packages+=(openssh-client)
  command -v ssh-keygen >/dev/null || packages+=(openssh-client)
  python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
fi

run_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

if [ ${#packages[@]} -gt 0 ]; then
  say "apt-get install ${packages[*]}"
  if ! command -v apt-get >/dev/null; then
    fail "no apt-get here: install ${packages[*]} with the system's package manager, then run this again"
  fi
  # openssh-server's install script would start a system sshd on port 22; a policy-rc.d
  # that refuses service starts keeps it from doing so (removed again right after).
  policy=""
  if [[ " ${packages[*]} " == *" openssh-server "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
    if printf '#!/bin/sh\nexit 101\n' | run_root tee /usr/sbin/policy-rc.d >/dev/null; then
      run_root chmod 755 /usr/sbin/policy-rc.d; policy=1
    fi
  fi
  ok=1
  run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 ||
    { run_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
      run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1; } ||
    ok=""
  [ -n "$policy" ] && run_root rm -f /usr/sbin/policy-rc.d
  [ -n "$ok" ] || fail "could not apt-get install ${packages[*]} (needs root or passwordless sudo); install them by hand, then run this again"
fi

# ---- just ----------------------------------------------------------------------------
export PATH="$BENCH_TOOLS/bin:$PATH"
just_ok() {
  command -v just >/dev/null || return 1
  [ -z "$JUST_VERSION" ] || just --version | grep -qF " $JUST_VERSION" || return 1
  just --help 2>/dev/null | grep -q -- '--jobs'
}
if ! just_ok; then
  command -v cargo >/dev/null || fail "just is missing and cargo is not installed (https://rustup.rs), or put a just >= 1.42 on PATH"
  mkdir -p "$BENCH_TOOLS"
  say "cargo install just ${JUST_VERSION:+$JUST_VERSION }--locked --root $BENCH_TOOLS (a few minutes, once)"
  cargo install -q just ${JUST_VERSION:+--version "$JUST_VERSION"} --locked --root "$BENCH_TOOLS" ||
    fail "cargo install just failed"
fi

# ---- Python peers --------------------------------------------------------------------
if [ "$WHAT" != local ]; then
  venv="$BENCH_TOOLS/venv"
  pins="ansible-core==$ANSIBLE_CORE_VERSION pyinfra==$PYINFRA_VERSION parallel-ssh==$PSSH_VERSION"
  if [ ! -x "$venv/bin/python" ]; then
    say "python3 -m venv $venv"
    python3 -m venv "$venv" || fail "python3 -m venv failed"
  fi
  if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
    say "pip install $pins (once; a few minutes)"
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q $pins || fail "pip install failed"
    echo "$pins" > "$venv/.pins"
  fi
fi

# ---- what is there now ---------------------------------------------------------------
{
  echo "hyperfine  $(hyperfine --version)"
  echo "make       $(make --version | head -1)"
  echo "just       $(just --version)"
  if [ "$WHAT" != local ]; then
    echo "ssh        $(ssh -V 2>&1)"
    echo "ansible    $("$BENCH_TOOLS/venv/bin/ansible" --version 2>/dev/null | head -1)"
    echo "pyinfra    $("$BENCH_TOOLS/venv/bin/pyinfra" --version 2>&1 | head -1)"
    echo "pssh       parallel-ssh $("$BENCH_TOOLS/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("parallel-ssh"))')"
  fi
} >&2
