#!/usr/bin/env bash
# Run a command (default: `make test`) as an unprivileged user, on a copy of this work tree:
# how CI shows that the suite passes without root. Run it as root; it is idempotent.
#
#   scripts/test-as-user.sh [USER] [-- COMMAND...]        (USER defaults to nexusci)
#
# - creates USER (a normal user with a home directory) when it does not exist;
# - gives it root's Rust toolchain: used in place when USER can run it, else a hard-linked
#   copy in USER's home (rustup keeps toolchains under /root, mode 0700, and opening /root
#   to everyone is not needed for this), refreshed when root's toolchain changes;
# - gives it its own CARGO_HOME, seeded with root's registry (cargo fetches the rest);
# - copies the work tree (tracked files and untracked ones git does not ignore, as they are
#   on disk) to ~USER/nexus, keeping its target/ between runs;
# - runs COMMAND there as USER with a clean environment (PATH without /usr/sbin, like a
#   login of a normal user), passing on CI, CARGO_TERM_COLOR and RUST_BACKTRACE.
set -euo pipefail

user=nexusci
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  user=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
cmd=("$@")
[ ${#cmd[@]} -gt 0 ] || cmd=(make test)

say() { echo "test-as-user: $*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  say "run this as root: it creates the user $user and runs the command as that user"
  exit 2
fi
cd "$(dirname "$0")/.."
src=$PWD

if ! id "$user" >/dev/null 2>&1; then
  say "creating user $user"
  useradd --create-home --shell /bin/bash "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
as_user() { runuser -u "$user" -- "$@"; }

# The toolchain root uses, where USER can run it.
sysroot=$(rustc --print sysroot)
if as_user test -x "$sysroot/bin/cargo" && as_user "$sysroot/bin/rustc" -V >/dev/null 2>&1; then
  toolchain=$sysroot
else
  toolchain=$home/.nexus-toolchain
  want=$(rustc -vV)
  if [ "$(cat "$toolchain.stamp" 2>/dev/null)" != "$want" ]; then
    say "linking root's toolchain ($sysroot) into $toolchain"
    rm -rf "$toolchain" "$toolchain.stamp"
    # Hard links: no copy on one file system; the files stay root's and read-only to USER.
    cp -al "$sysroot" "$toolchain" 2>/dev/null || {
      rm -rf "$toolchain"
      cp -a "$sysroot" "$toolchain"
    }
    printf '%s' "$want" >"$toolchain.stamp"
  fi
fi

# USER's own CARGO_HOME, seeded with root's downloaded crates and index.
cargo_home=$home/.cargo
root_registry=${CARGO_HOME:-$HOME/.cargo}/registry
install -d -o "$user" -g "$group" "$cargo_home"
if [ -d "$root_registry" ]; then
  mkdir -p "$cargo_home/registry"
  cp -R "$root_registry/." "$cargo_home/registry/"
  chown -R "$user:$group" "$cargo_home/registry"
fi

# The work tree as it is on disk, into ~USER/nexus (its target/ is kept).
dest=$home/nexus
install -d -o "$user" -g "$group" "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | as_user tar -xf - -C "$dest"
else
  tar --exclude=./target -cf - . | as_user tar -xf - -C "$dest"
fi

say "running as $user in $dest: ${cmd[*]}"
env_pass=()
for v in CI CARGO_TERM_COLOR RUST_BACKTRACE; do
  [ -n "${!v:-}" ] && env_pass+=("$v=${!v}")
done
cd "$dest"
exec runuser -u "$user" -- env -i \
  HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/bash LANG=C.UTF-8 \
  PATH="$toolchain/bin:/usr/local/bin:/usr/bin:/bin" \
  CARGO_HOME="$cargo_home" "${env_pass[@]}" \
  "${cmd[@]}"
