#!/usr/bin/env bash
# `make aarch64`: a statically linked nexus for 64-bit ARM Linux (Raspberry Pi 3 and
# later, Graviton, ...), cross-built on x86_64 Debian 12 as root (it installs what it
# needs with apt-get). Profile release-lto.
#
#   scripts/build-aarch64.sh        glibc, crt-static: target/aarch64-unknown-linux-gnu/release-lto/nexus
#   scripts/build-aarch64.sh musl   musl: scripts/build-musl.sh aarch64
#
# glibc route: the cross gcc links, Debian's arm64 OpenSSL and zlib (libssl-dev:arm64,
# zlib1g-dev:arm64) are linked in statically; the Rust standard library comes from rustup
# (aarch64-unknown-linux-gnu) or, where rustup cannot fetch it, from Debian
# (libstd-rust-web-dev:arm64 with rustc-web: see cross-common.sh). The result runs under
# qemu-aarch64-static too: scripts/smoke.sh.
set -euo pipefail
# shellcheck source=scripts/cross-common.sh
source "$(dirname "$0")/cross-common.sh"
case ${1:-gnu} in
  gnu) ;;
  musl) exec "$repo/scripts/build-musl.sh" aarch64 ;;
  *) die "usage: $0 [gnu|musl]" ;;
esac
target=aarch64-unknown-linux-gnu
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross libssl-dev:arm64 zlib1g-dev:arm64 pkg-config file
choose_route "$target"
if [ "$ROUTE" = debian ]; then
  debian_rust
  apt_install libstd-rust-web-dev:arm64
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# The cross gcc does not search the multiarch include directory (openssl/configuration.h).
export CFLAGS_aarch64_unknown_linux_gnu=-I/usr/include/aarch64-linux-gnu
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
# As `make static`: glibc and everything else linked in, no PIE.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"
cd "$repo"
say "cargo build --profile $PROFILE --target $target ($ROUTE)"
"$CARGO" build --locked --profile "$PROFILE" --target "$target"
report "${CARGO_TARGET_DIR:-target}/$target/$PROFILE/nexus" "ARM aarch64"
