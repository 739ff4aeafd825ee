#!/usr/bin/env bash
# Installs what `make test` needs and a fresh Debian machine lacks. Idempotent, quiet when
# everything is there. Uses apt-get (root on CI; sudo when available otherwise).
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v dropbear >/dev/null 2>&1 || [ -x /usr/sbin/dropbear ] || need+=(dropbear-bin)
command -v file >/dev/null 2>&1 || need+=(file)
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
# The SSH tests run `sudo = true` commands; root may always use sudo -n.
command -v sudo >/dev/null 2>&1 || need+=(sudo)
[ ${#need[@]} -eq 0 ] && exit 0
echo "ensure-deps: installing ${need[*]}" >&2
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
