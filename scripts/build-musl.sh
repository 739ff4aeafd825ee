#!/usr/bin/env bash
# `make musl` / `make aarch64-musl`: a statically linked nexus on musl libc, for
# containers and small systems, cross-built on x86_64 Debian 12 as root (it installs what
# it needs with apt-get). Profile release-lto.
#
#   scripts/build-musl.sh            target/x86_64-unknown-linux-musl/release-lto/nexus
#   scripts/build-musl.sh aarch64    target/aarch64-unknown-linux-musl/release-lto/nexus
#
# OpenSSL is built from source for musl (feature vendored-openssl: no musl OpenSSL is
# packaged); libssh2 and zlib are built by their -sys crates. The C compiler is musl-gcc
# (musl-tools) for x86_64, and for aarch64 the cross gcc with musl's specs file
# (musl-dev:arm64), through a wrapper written to target/cross/. The Rust standard library
# for musl comes from rustup; Debian packages none (see docs/install.md for what that
# leaves to do on a machine without rustup's musl targets).
set -euo pipefail
# shellcheck source=scripts/cross-common.sh
source "$(dirname "$0")/cross-common.sh"
arch=${1:-x86_64}
target=$arch-unknown-linux-musl
triple=${target//-/_}
case $arch in
  x86_64)
    apt_install musl-tools make perl file
    cc=musl-gcc
    ar=ar
    ;;
  aarch64)
    apt_install gcc-aarch64-linux-gnu musl-dev:arm64 make perl file
    mkdir -p "$repo/target/cross"
    cc=$repo/target/cross/aarch64-linux-musl-gcc
    printf '#!/bin/sh\n# gcc for aarch64 musl: the cross gcc with musl'"'"'s specs (as musl-gcc is for x86_64)\nexec aarch64-linux-gnu-gcc "$@" -specs /usr/lib/aarch64-linux-musl/musl-gcc.specs\n' >"$cc"
    chmod +x "$cc"
    ar=aarch64-linux-gnu-ar
    # rustc links with its own musl start files and libc (self-contained).
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
    ;;
  *) die "usage: $0 [x86_64|aarch64]" ;;
esac
choose_route "$target"
[ "$ROUTE" = rustup ] ||
  die "no rustup standard library for $target here, and Debian packages none for musl: see docs/install.md (musl without rustup)"
export "CC_$triple=$cc" "AR_$triple=$ar"
# As `make static`: no PIE, so `file` says "statically linked" (not static-pie).
upper=$(echo "$triple" | tr '[:lower:]' '[:upper:]')
export "CARGO_TARGET_${upper}_RUSTFLAGS=-C relocation-model=static"
cd "$repo"
say "cargo build --profile $PROFILE --target $target --features vendored-openssl ($ROUTE)"
"$CARGO" build --locked --profile "$PROFILE" --target "$target" --features vendored-openssl
case $arch in
  x86_64) want="x86-64" ;;
  aarch64) want="ARM aarch64" ;;
esac
report "${CARGO_TARGET_DIR:-target}/$target/$PROFILE/nexus" "$want"
