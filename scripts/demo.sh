#!/usr/bin/env bash
# `make demo`: the demo pipeline on this machine, in normal and verbose mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/nexus
[ -x "$bin" ] || cargo build --release
demo=testdata/demo/nexus.toml
cleanup() { rm -rf testdata/demo/.demo-state; }
trap cleanup EXIT

echo "== nexus list"
"$bin" -c "$demo" list
echo
echo "== nexus run release    (parallel tasks, a dependency chain, a retry that succeeds)"
"$bin" -c "$demo" run release
echo
echo "== nexus run test -v    (live output, tagged per task)"
"$bin" -c "$demo" run test -v
