# Shared by scripts/build-musl.sh and scripts/build-aarch64.sh (sourced, not run): the
# packages a fresh Debian 12 machine lacks for a build, the choice of Rust toolchain,
# and the C cross-compiler settings that libssh2, OpenSSL and zlib need.
#
# Route: rustup's standard library for the target when `rustup target add` works (the
# ordinary way); else Debian's own Rust (rustc-web, cargo-web) with its aarch64 standard
# library (libstd-rust-web-dev:arm64), called by path so a rustup toolchain stays the
# default. NEXUS_CROSS_ROUTE=rustup|debian forces one.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=release-lto
CARGO=${CARGO:-cargo}
say() { echo "$(basename "$0"): $*" >&2; }
die() { say "$*"; exit 1; }

# apt-get install the packages not yet installed (as root, or with passwordless sudo).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || die "needs these packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    as_root=(sudo -n)
  fi
  if [[ " ${missing[*]}" == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "dpkg --add-architecture arm64"
    "${as_root[@]}" dpkg --add-architecture arm64
    APT_UPDATED=""
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sets ROUTE for TARGET: rustup when its standard library is (or can be) installed.
choose_route() {
  local target=$1
  ROUTE=${NEXUS_CROSS_ROUTE:-}
  if [ -z "$ROUTE" ]; then
    if command -v rustup >/dev/null 2>&1 &&
      { rustup target list --installed 2>/dev/null | grep -qx "$target" ||
        timeout 300 rustup target add "$target" >&2; }; then
      ROUTE=rustup
    else
      say "rustup has no $target here: using Debian's rustc-web and its standard library"
      ROUTE=debian
    fi
  fi
  case $ROUTE in rustup | debian) ;; *) die "NEXUS_CROSS_ROUTE must be rustup or debian, not $ROUTE" ;; esac
}

# Debian's Rust for the debian route: rustc-web and cargo-web, called by path.
debian_rust() {
  apt_install rustc-web cargo-web
  CARGO=/usr/bin/cargo
  export RUSTC=/usr/bin/rustc
  local v
  v=$("$RUSTC" --version)
  say "Debian's $v"
}

# Print a file's name, `file`'s verdict and its size; fail unless it is statically linked.
report() {
  local bin=$1 want=$2
  [ -f "$bin" ] || die "no binary at $bin"
  local what
  what=$(file -b "$bin")
  echo "$bin"
  echo "  $what"
  echo "  $(stat -c %s "$bin") bytes"
  [[ $what == *"$want"* ]] || die "expected $want: $what"
  [[ $what == *"statically linked"* ]] || die "not statically linked: $what"
}
