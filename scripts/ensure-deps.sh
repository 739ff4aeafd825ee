#!/usr/bin/env bash
# Installs what `make test` needs and a fresh Debian machine lacks. Idempotent, quiet when
# everything is there. Installing needs root: as root it uses apt-get; as another user it
# uses `sudo -n apt-get` when that works without a password, and otherwise names what is
# missing and the command that installs it, and fails.
set -euo pipefail
need=()
want() { # PACKAGE: add it once
  local p
  for p in "${need[@]}"; do [ "$p" = "$1" ] && return 0; done
  need+=("$1")
}
# /usr/sbin is often not on a normal user's PATH: look there too.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have sshd || want openssh-server
have ssh-keygen || want openssh-client
have ssh-agent || want openssh-client
have ssh-add || want openssh-client
have ssh || want openssh-client
have dropbear || want dropbear-bin
have dropbearkey || want dropbear-bin
have file || want file
have script || want bsdutils
# The man page test renders `nexus man` with man-db and groff (`man --warnings -l`).
have man || want man-db
have groff || want groff-base
# The SSH tests run `sudo = true` commands (root may always use sudo -n); the pre-flight
# tests ask sudo whether it works for the user running them.
have sudo || want sudo
[ ${#need[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "ensure-deps: the test suite needs these packages, which are not installed: ${need[*]}" >&2
    echo "ensure-deps: installing them needs root; run as root: apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
fi
echo "ensure-deps: installing ${need[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
