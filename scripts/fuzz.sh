#!/usr/bin/env bash
# Fuzz nexus's parsers with cargo-fuzz (fuzz/; libFuzzer, the nightly toolchain): each
# target for FUZZ_SECONDS seconds (default 60), one after the other.
#
#   scripts/fuzz.sh [TARGET...]      targets: config ssh_config known_hosts journal
#
# The corpus grows in fuzz/corpus/TARGET (not in git), seeded from the repository's
# examples and from testdata/fuzz/TARGET (minimized inputs worth keeping). A finding
# stops the script: the input is in fuzz/artifacts/TARGET/; replay it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`. Each input has
# 10 s and 2 GB: a slow or hungry input is a finding too.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config ssh_config known_hosts journal)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing; install it with: cargo install cargo-fuzz" >&2
  exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
  exit 2
fi

seed() {
  local target=$1 corpus=$2
  case $target in
    config) cp nexus.toml.example "$corpus/example.toml"; cp testdata/demo/nexus.toml "$corpus/demo.toml" ;;
    ssh_config) for f in testdata/ssh_config/*.conf; do
        grep -qi include "$f" || cp "$f" "$corpus/"
      done ;;
  esac
  if [ -d "testdata/fuzz/$target" ]; then
    cp testdata/fuzz/"$target"/* "$corpus/" 2>/dev/null || true
  fi
}

for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus"
  seed "$t" "$corpus"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  # Floods of errors need room: nexus.toml inputs up to 64 KB.
  [ "$t" = config ] && args+=(-max_len=65536)
  echo "fuzz: $t for ${seconds}s" >&2
  cargo +nightly fuzz run "$t" "$corpus" -- "${args[@]}"
done
