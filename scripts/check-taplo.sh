#!/usr/bin/env bash
# The editor-facing check of `nexus schema` (docs/editors.md): taplo, the TOML toolkit
# behind Even Better TOML, validates nexus.toml files against the schema as an editor
# does. It must accept nexus.toml.example, `nexus init`'s file and the demo configs, and
# refuse a file with a misspelled key, naming the key; the `#:schema` comment and a
# `.taplo.toml` rule must each bring the schema in.
#
#   scripts/check-taplo.sh            uses target/release/nexus (built when missing)
#   NEXUS_BIN=PATH scripts/check-taplo.sh
#
# taplo: the one on PATH, else npm's @taplo/cli (taplo compiled to WebAssembly, the same
# checker as the crate taplo-cli), installed into .bench-tools/taplo: a second, where
# `cargo install taplo-cli --no-default-features --features lint,native-tls` took 18
# minutes here (5 minutes of CPU) on 2 busy cores. Both gave the same results: taplo
# 0.9.0 (npm) and 0.10.0 (crate).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
TAPLO_NPM_VERSION=0.7.0

die() { echo "check-taplo: $*" >&2; exit 1; }

bin=${NEXUS_BIN:-$repo/target/release/nexus}
if [ ! -x "$bin" ]; then
  cargo build --release -q
fi
bin=$(realpath "$bin")

if command -v taplo >/dev/null 2>&1; then
  taplo=(taplo)
else
  tools=$repo/.bench-tools/taplo
  if [ ! -x "$tools/node_modules/.bin/taplo" ]; then
    command -v npm >/dev/null 2>&1 ||
      die "needs taplo (cargo install taplo-cli) or npm to install @taplo/cli (apt-get install npm)"
    mkdir -p "$tools"
    npm install --silent --no-audit --no-fund --prefix "$tools" "@taplo/cli@$TAPLO_NPM_VERSION" >/dev/null ||
      die "npm install @taplo/cli@$TAPLO_NPM_VERSION failed"
  fi
  taplo=("$tools/node_modules/.bin/taplo")
fi
echo "check-taplo: $("${taplo[@]}" --version)"

work=$(mktemp -d "${TMPDIR:-/tmp}/nexus-taplo.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" schema >"$work/nexus.schema.json"
schema="file://$work/nexus.schema.json"
failed=0

# taplo checks files named *.toml only: each case gets a directory and a nexus.toml.
case_dir() { mkdir -p "$work/$1" && echo "$work/$1"; }

good() { # NAME FILE: taplo accepts it
  local d
  d=$(case_dir "$1")
  cp "$2" "$d/nexus.toml"
  if "${taplo[@]}" check --schema "$schema" "$d/nexus.toml" >"$d/out" 2>&1; then
    echo "ok: $1 is valid"
  else
    echo "FAIL: taplo refused $1:" && cat "$d/out"
    failed=1
  fi
}

bad() { # NAME EXPECTED-TEXT [taplo args...]: taplo refuses the case's nexus.toml, saying EXPECTED-TEXT
  local name=$1 want=$2
  shift 2
  if (cd "$work/$name" && "${taplo[@]}" check "$@" nexus.toml) >"$work/$name/out" 2>&1; then
    echo "FAIL: taplo accepted $name" && cat "$work/$name/out"
    failed=1
  elif ! grep -qF "$want" "$work/$name/out"; then
    echo "FAIL: taplo refused $name without saying: $want" && cat "$work/$name/out"
    failed=1
  else
    echo "ok: $name is refused ($want)"
  fi
}

good nexus.toml.example nexus.toml.example
(cd "$work" && mkdir init && cd init && NEXUS_HOME="$work/home" "$bin" init >/dev/null)
mv "$work/init/nexus.toml" "$work/init.toml"
good "nexus init" "$work/init.toml"
good testdata/demo testdata/demo/nexus.toml
sed "s|@DIR@|/tmp/demo|g" testdata/demo-remote/nexus.toml.in >"$work/demo-remote.toml"
good testdata/demo-remote "$work/demo-remote.toml"

misspelled=$'[config]\nparalel_limit = 4\n\n[tasks.t]\nrun = "true"\n'
d=$(case_dir misspelled-key)
printf '%s' "$misspelled" >"$d/nexus.toml"
bad misspelled-key "'paralel_limit' was unexpected" --schema "$schema"

# The ways docs/editors.md gives: a `#:schema` comment, and a .taplo.toml rule.
d=$(case_dir schema-comment)
cp "$work/nexus.schema.json" "$d/"
printf '#:schema ./nexus.schema.json\n%s' "$misspelled" >"$d/nexus.toml"
bad schema-comment "'paralel_limit' was unexpected"
d=$(case_dir taplo-config)
cp "$work/nexus.schema.json" "$d/"
printf '[[rule]]\ninclude = ["**/nexus.toml"]\n\n[rule.schema]\npath = "./nexus.schema.json"\n' >"$d/.taplo.toml"
printf '%s' "$misspelled" >"$d/nexus.toml"
bad taplo-config "'paralel_limit' was unexpected"

[ "$failed" -eq 0 ] || die "taplo disagrees with the schema's intent (above)"
echo "check-taplo: taplo accepts the good configs and refuses a misspelled key"
