#!/usr/bin/env bash
# `make demo`: the demo pipeline on this machine, in normal and verbose mode; then a
# pipeline that mixes local and remote tasks, against a throwaway sshd on 127.0.0.1
# (scripts/demo-sshd.sh; needs openssh-server: scripts/ensure-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/nexus
[ -x "$bin" ] || cargo build --release
demo=testdata/demo/nexus.toml
remote_dir=""
cleanup() {
  rm -rf testdata/demo/.demo-state
  if [ -n "$remote_dir" ]; then
    ./scripts/demo-sshd.sh stop "$remote_dir" || true
    rm -rf "$remote_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== nexus list"
"$bin" -c "$demo" list
echo
echo "== nexus run release    (parallel tasks, a dependency chain, a retry that succeeds)"
"$bin" -c "$demo" run release
echo
echo "== nexus run test -v    (live output, tagged per task)"
"$bin" -c "$demo" run test -v

echo
echo "== remote: a throwaway sshd on 127.0.0.1 posing as web-1, web-2, db-1"
remote_dir="$(mktemp -d "${TMPDIR:-/tmp}/nexus-demo-remote.XXXXXX")"
./scripts/demo-sshd.sh start "$remote_dir"
echo "sshd on 127.0.0.1:$(cat "$remote_dir/port"), pid $(cat "$remote_dir/sshd.pid"); hosts from $remote_dir/ssh_config"
remote="$remote_dir/nexus.toml"
sed "s|@DIR@|$remote_dir|g" testdata/demo-remote/nexus.toml.in > "$remote"
echo
echo "== nexus run release    (local build, migrate on db-1, serial deploy, parallel health check)"
"$bin" -c "$remote" run release
echo
echo "== nexus run release -v (output tagged task@host)"
"$bin" -c "$remote" run release -v
echo
./scripts/demo-sshd.sh stop "$remote_dir"
echo "sshd stopped"
