#!/usr/bin/env bash
# The cost of secrets: `nexus secret get NAME` from a store of 200 secrets, with a key
# file and with a passphrase typed on a terminal (script(1) gives nexus a pty), against
# `nexus validate` of the same project (a nexus process that touches no secret), the
# same get from a store of one secret, and `ansible-vault view` of an equivalent vault
# (200 values in one vaulted file, password from a file). Medians of alternating rounds,
# run. The passphrase runs are compared with `read -r x; nexus validate` under script
# (the typed line read, no key derived). Also counts the key derivations of one passphrase run (--log-level debug).
#
#   scripts/bench-secrets.sh       build nexus (release), measure, print a summary
#
# Targets (issue 13), medians of the same run:
#   key file:   get from 200 secrets - validate  <= 5 ms
#   passphrase: exactly one key derivation per process
#   end to end: `nexus run` of a task whose command uses one secret of the 200 (key
#               file) - the same command with a literal value  <= 5 ms
#
# Environment:
#   RUNS=30              rounds (passphrase commands: RUNS/3)
#   NEXUS_BIN            use this binary instead of building target/release/nexus
#   ANSIBLE_VAULT        default: .bench-tools/venv/bin/ansible-vault (scripts/bench-setup.sh ssh)
#   OUT                  default: <repo>/.bench-out/secrets (raw times as JSON, summary.md)
#   WAIT_IDLE=60         wait up to this many seconds for >= 85 % idle CPUs first (0: don't)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-30}"
OUT="${OUT:-$REPO/.bench-out/secrets}"
IDLE_PCT="${IDLE_PCT:-85}"
WAIT_IDLE="${WAIT_IDLE:-60}"
log() { echo "bench-secrets: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

command -v script >/dev/null || die "script (util-linux) is missing"
VAULT="${ANSIBLE_VAULT:-}"
if [ -z "$VAULT" ]; then
  for v in "$REPO/.bench-tools/venv/bin/ansible-vault" /work/.bench-tools/venv/bin/ansible-vault; do
    [ -x "$v" ] && VAULT="$v" && break
  done
fi
[ -n "$VAULT" ] || die "ansible-vault is missing: scripts/bench-setup.sh ssh (or ANSIBLE_VAULT=PATH)"

mkdir -p "$OUT"
build_nexus
DIR="$(mktemp -d /tmp/nexus-bench-secrets.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
export NEXUS_HOME="$DIR/state"
unset NEXUS_MASTER_KEY NEXUS_KEYFILE CI

# Three projects: 200 secrets and 1 secret with key files, 200 with a passphrase.
PASS="bench passphrase 42"
for p in many one phrase; do
  mkdir -p "$DIR/$p"
  printf '[tasks.a]\nrun = "true"\n' >"$DIR/$p/nexus.toml"
done
# The end-to-end pair: the same shell command, with a literal and with a secret.
cat >>"$DIR/many/nexus.toml" <<'TOML'
[tasks.plain]
run = """v='value-literal'; test -n "$v" """
[tasks.secret]
run = """v={{ secret("S100") | quote }}; test -n "$v" """
TOML
(cd "$DIR/many" && "$NEXUS" secret init --keyfile k.key 2>/dev/null)
(cd "$DIR/one" && "$NEXUS" secret init --keyfile k.key 2>/dev/null)
log "filling the stores (200 secrets each)"
printf 'value-one-0001\n' | (cd "$DIR/one" && "$NEXUS" secret set S100 --keyfile k.key 2>/dev/null)
: >"$DIR/vars.yml"
for i in $(seq -w 1 200); do
  v="value-$i-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  printf '%s\n' "$v" | (cd "$DIR/many" && "$NEXUS" secret set "S$i" --keyfile k.key 2>/dev/null)
  echo "S$i: $v" >>"$DIR/vars.yml"
done
# The passphrase store: a copy of the 200, re-keyed to the passphrase.
rm -rf "$DIR/phrase/.nexus" && mkdir -p "$DIR/phrase/.nexus"
cp "$DIR/many/.nexus/secrets.enc" "$DIR/phrase/.nexus/"
printf '%s\n%s\n' "$PASS" "$PASS" | (cd "$DIR/phrase" &&
  script -qec "$NEXUS secret rotate-key --keyfile $DIR/many/k.key" /dev/null >/dev/null)
echo "$PASS" >"$DIR/vault-pass"
"$VAULT" encrypt --vault-password-file "$DIR/vault-pass" "$DIR/vars.yml" >/dev/null 2>&1
want="$(grep -c . <(cd "$DIR/many" && "$NEXUS" secret list))"
[ "$want" = 201 ] || die "the store has $want lines in its list, not 201"

# One passphrase run: how many key derivations?
derivations="$(printf '%s\n' "$PASS" | (cd "$DIR/phrase" &&
  script -qec "$NEXUS secret get S100 --log-level debug" /dev/null) | grep -c 'deriving the master key' || true)"
log "key derivations in one passphrase run: $derivations"

idle="$(wait_idle)"
log "CPUs $idle % idle; timing in alternating rounds"
export WARMUP=2
cd "$DIR/many"
alternate keyfile "$RUNS" \
  "nexus validate (no secrets)" "$NEXUS validate" \
  "nexus secret get (1 secret, key file)" "$NEXUS secret get S100 --keyfile $DIR/one/k.key -c $DIR/one/nexus.toml" \
  "nexus secret get (200 secrets, key file)" "$NEXUS secret get S100 --keyfile k.key" \
  "ansible-vault view (200 values, password file)" "$VAULT view --vault-password-file $DIR/vault-pass $DIR/vars.yml" \
  "nexus run (no secret)" "$NEXUS run plain -q --no-resume" \
  "nexus run (1 secret of 200, key file)" "$NEXUS run secret -q --no-resume --keyfile k.key"
cd "$DIR/phrase"
alternate passphrase "$((RUNS / 3 < 5 ? 5 : RUNS / 3))" \
  "script + read + nexus validate (no secrets)" "printf '%s\\n' '$PASS' | script -qec 'read -r x; $NEXUS validate' /dev/null" \
  "script + nexus secret get (200 secrets, passphrase)" "printf '%s\\n' '$PASS' | script -qec '$NEXUS secret get S100' /dev/null"

python3 - "$OUT" "$derivations" "$rev" "$idle" <<'PY' | tee "$OUT/summary.md"
import json, sys, platform, os
out, derivations, rev, idle = sys.argv[1:5]
rows, cpus = [], {}
med = lambda xs: sorted(xs)[len(xs) // 2] * 1000
for f in ("keyfile.json", "passphrase.json"):
    for r in json.load(open(os.path.join(out, f)))["results"]:
        rows.append((r["command"], med(r["times"])))
        cpus[r["command"]] = med(r["cpu"])
m = dict(rows)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"nexus: {rev}; {cpu}, {os.cpu_count()} CPUs; CPUs {idle} % idle at the start\n")
print("| command | median ms | median CPU ms |\n|---|---:|---:|")
for name, ms in rows:
    print(f"| {name} | {ms:.2f} | {cpus[name]:.2f} |")
base = m["nexus validate (no secrets)"]
many = m["nexus secret get (200 secrets, key file)"]
one = m["nexus secret get (1 secret, key file)"]
vault = m["ansible-vault view (200 values, password file)"]
pb = m["script + read + nexus validate (no secrets)"]
pg = m["script + nexus secret get (200 secrets, passphrase)"]
print()
print(f"- key file, 200 secrets: +{many - base:.2f} ms over validate (target <= 5 ms); "
      f"+{many - one:.2f} ms over a 1-secret store")
print(f"- ansible-vault view / nexus secret get (200, key file): {vault / many:.0f}x")
rs, rp = m["nexus run (1 secret of 200, key file)"], m["nexus run (no secret)"]
print(f"- end to end: nexus run with 1 secret of 200 (key file) +{rs - rp:.2f} ms over the same run "
      f"without (target <= 5 ms); ansible-vault view / that run: {vault / rs:.0f}x")
cb = cpus["script + read + nexus validate (no secrets)"]
cg = cpus["script + nexus secret get (200 secrets, passphrase)"]
print(f"- passphrase: +{pg - pb:.0f} ms wall, +{cg - cb:.0f} ms CPU over validate under script "
      f"(Argon2id m=64 MiB t=3 p=1; script(1) itself waits about 250 ms, which hides the "
      f"derivation in wall time); "
      f"{derivations} key derivation(s) per process (target: 1); "
      f"ansible-vault view / nexus with passphrase: {vault / pg:.1f}x")
PY
