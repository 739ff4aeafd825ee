#!/usr/bin/env bash
# File transfers (issue 12): nexus's upload step against the tools people use to put files
# on hosts, side by side in one run, on the loopback fleet (scripts/fleet.sh) at 0 ms and
# at 20 ms round-trip time (scripts/delay-relay.py; this kernel has no netem), to 1 and
# to 10 hosts:
#
#   W1  2,000 files of 4 KiB in 50 directories: cold (nothing there), no change, 1 % of
#       the files changed
#   W2  one file of 256 MiB: cold
#
# Tools (each host gets its own destination directory; all hosts at once):
#   nexus     `nexus run` of a task with { upload = "w1/", to = ".../{{ host }}/..." }
#   tar       tar -c | ssh HOST 'tar -x'            (the floor of a cold copy)
#   rsync     rsync -a -e 'ssh -F ...'
#   scp       scp -r (OpenSSH's default SFTP protocol)
#   ansible   ansible-playbook with ansible.builtin.copy, pipelining on, forks = hosts
#   pyinfra   pyinfra files.sync (W1) / files.put (W2), --parallel hosts
#
# Targets (issue 12, ratios of medians in the same run): W1 cold <= 1.1x tar; W1 no-change
# and 1 %-change <= 1.0x rsync; W1 cold >= 20x faster than ansible copy at 20 ms with 10
# hosts; W2 throughput >= 0.9x scp at 20 ms; nexus's peak RSS <= 64 MB during W2.
#
#   scripts/bench-files.sh
#
# Environment:
#   RUNS=3            rounds of the fast tools (nexus, tar, rsync); SLOW_RUNS=1 for scp,
#                     ansible and pyinfra (minutes at 20 ms)
#   RTTS="0 20"       round-trip times; HOSTS="1 10"
#   TOOLS="nexus tar rsync scp ansible pyinfra"
#   SLOW_LIMIT=300    seconds a slow tool may take; one that takes longer is stopped (its
#                     process group killed) and reported as "> SLOW_LIMIT" (a lower bound)
#   SLOW_AT="20:10"   where Ansible and pyinfra are timed (RTT:HOSTS pairs): copying 2,000
#                     files takes them minutes; scp is timed everywhere
#   W2_MB=256         size of W2
#   WORKLOADS="w1 w2" which workloads to time
#   W1_SCP=1          0: time scp in W2 only (its W1 cold at 20 ms takes minutes per host
#                     count and no target compares with it)
#   NEXUS_BIN         use this binary (else cargo build --release)
#   BENCH_TOOLS       where bench-setup.sh put ansible and pyinfra (default
#                     /work/.bench-tools if present, else <repo>/.bench-tools)
#   DST_FS=tmpfs      where the "hosts" write: a tmpfs mounted for the run (or /dev/shm);
#                     disk: /tmp, where ext4's allocator makes rounds after a mass delete
#                     slow for every tool
#   OUT               default <repo>/.bench-out/files (raw times, summary.md)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
SLOW_RUNS="${SLOW_RUNS:-1}"
SLOW_AT="${SLOW_AT:-20:10}"
export SLOW_LIMIT="${SLOW_LIMIT:-300}"
RTTS="${RTTS:-0 20}"
HOSTS="${HOSTS:-1 10}"
TOOLS="${TOOLS:-nexus tar rsync scp ansible pyinfra}"
W2_MB="${W2_MB:-256}"
WORKLOADS="${WORKLOADS:-w1 w2}"
W1_SCP="${W1_SCP:-1}"
OUT="${OUT:-$REPO/.bench-out/files}"
IDLE_PCT="${IDLE_PCT:-70}"
WAIT_IDLE="${WAIT_IDLE:-30}"
if [ -z "${BENCH_TOOLS:-}" ]; then
  if [ -d /work/.bench-tools/venv ]; then BENCH_TOOLS=/work/.bench-tools; else BENCH_TOOLS="$REPO/.bench-tools"; fi
fi
export BENCH_TOOLS
log() { echo "bench-files: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/bench-common.sh
. "$REPO/scripts/bench-common.sh"

[ "$(id -u)" = 0 ] || die "run as root (the fleet logs in as the calling user, root in CI)"
for t in rsync scp ssh tar; do command -v "$t" >/dev/null || die "$t is missing (apt-get install rsync openssh-client)"; done
case " $TOOLS " in *" ansible "*|*" pyinfra "*)
  [ -x "$BENCH_TOOLS/venv/bin/ansible-playbook" ] || die "no ansible in $BENCH_TOOLS/venv: scripts/bench-setup.sh ssh (or TOOLS without ansible pyinfra)";;
esac
mkdir -p "$OUT"
build_nexus
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench-files.XXXXXX")"
DST=/tmp/nexus-bench-files-dst
export BENCH_STATE="$WORK/fleet"
mounted=""
cleanup() {
  "$REPO/scripts/fleet.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK" "$DST" 2>/dev/null || true
  [ -z "$mounted" ] || umount "$mounted" 2>/dev/null || true
  [ -z "$mounted" ] || rmdir "$mounted" 2>/dev/null || true
}
trap cleanup EXIT
# The hosts' files go to a tmpfs of their own (DST_FS=disk: to /tmp as before). Every
# round deletes the last round's 20,000 files, and on ext4 that makes the next round's
# file creation slow for everyone (the inode allocator scans the recently deleted inodes:
# 10 parallel `tar -x` of W1 took 3 s, then 7.7, 13.7 and 16.6 s in four rounds in a
# row), which measured the disk's history instead of the tools.
if [ "${DST_FS:-tmpfs}" = tmpfs ]; then
  mkdir -p "$DST"
  if mount -t tmpfs -o size=16g nexus-bench-dst "$DST" 2>/dev/null; then
    mounted="$DST"
  elif [ -w /dev/shm ]; then
    DST=/dev/shm/nexus-bench-files-dst
  else
    log "no tmpfs for the destinations (not root, no /dev/shm): using $DST on disk"
  fi
fi

# ---- fixtures -----------------------------------------------------------------------------
log "fixtures: W1 (2,000 x 4 KiB in 50 directories), W2 (${W2_MB} MiB)"
python3 - "$WORK" "$W2_MB" <<'PY'
import os, sys
work, mb = sys.argv[1], int(sys.argv[2])
for d in range(50):
    p = os.path.join(work, "w1", f"d{d:02}")
    os.makedirs(p)
    for f in range(40):
        with open(os.path.join(p, f"f{f:02}.txt"), "wb") as fh:
            fh.write(os.urandom(4096))
os.makedirs(os.path.join(work, "w2"))
with open(os.path.join(work, "w2", "big.bin"), "wb") as fh:
    for _ in range(mb):
        fh.write(os.urandom(1 << 20))
PY

# The 1 % change: 20 files (every 100th) get new content before each timed run.
change_files() { python3 -c '
import os, sys
w = sys.argv[1]
names = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(w) for f in fs)
for p in names[::100]:
    open(p, "wb").write(os.urandom(4096))' "$WORK/w1"; }

# ---- per-tool commands --------------------------------------------------------------------
# cmd TOOL WORKLOAD N: the command that copies WORKLOAD to hosts h1..hN
cmd() {
  local tool="$1" w="$2" n="$3" src dst
  case "$w" in w1) src="$WORK/w1" ;; w2) src="$WORK/w2/big.bin" ;; esac
  dst="$DST/\$h/$tool"
  local each="head -n $n $FLEET_HOSTS | xargs -P $n -I{} env h={} sh -c"
  case "$tool" in
    nexus) echo "cd $WORK/proj && NEXUS_HOME=$WORK/nexus-home $NEXUS run $w$n -q --no-resume" ;;
    tar)
      if [ "$w" = w1 ]; then
        echo "$each 'tar -C $src -cf - . | ssh -F $FLEET_SSH_CONFIG \$h \"mkdir -p $dst && tar -xf - -C $dst\"'"
      else
        echo "$each 'tar -C $WORK/w2 -cf - big.bin | ssh -F $FLEET_SSH_CONFIG \$h \"mkdir -p $dst && tar -xf - -C $dst\"'"
      fi ;;
    rsync)
      if [ "$w" = w1 ]; then
        echo "$each 'rsync -a -e \"ssh -F $FLEET_SSH_CONFIG\" --rsync-path=\"mkdir -p $dst && rsync\" $src/ \$h:$dst/'"
      else
        echo "$each 'rsync -a -e \"ssh -F $FLEET_SSH_CONFIG\" --rsync-path=\"mkdir -p $dst && rsync\" $src \$h:$dst/'"
      fi ;;
    scp)
      echo "$each 'ssh -F $FLEET_SSH_CONFIG \$h mkdir -p $dst && scp -q -r -F $FLEET_SSH_CONFIG $src \$h:$dst/'" ;;
    ansible)
      echo "cd $WORK && env ANSIBLE_CONFIG=$FLEET_ANSIBLE_CFG_PIPELINING $BENCH_TOOLS/venv/bin/ansible-playbook -i $FLEET_ANSIBLE_INV -f $n -l $(head -n "$n" "$FLEET_HOSTS" | paste -sd, -) $WORK/$w.yml" ;;
    pyinfra)
      echo "cd $WORK && $BENCH_TOOLS/venv/bin/pyinfra $WORK/inventory$n.py $WORK/$w.py -y --parallel $n" ;;
  esac
}

write_configs() {
  local n
  mkdir -p "$WORK/proj"
  ln -sfn "$WORK/w1" "$WORK/proj/w1"
  ln -sfn "$WORK/w2" "$WORK/proj/w2"
  {
    printf '[config]\nssh_config = "%s"\nhost_key_checking = "off"\n\n[hosts]\n' "$FLEET_SSH_CONFIG"
    for n in $HOSTS; do
      printf 'fleet%s = [%s]\n' "$n" "$(head -n "$n" "$FLEET_HOSTS" | sed 's/.*/"&"/' | paste -sd, -)"
    done
    for n in $HOSTS; do
      printf '\n[tasks.w1%s]\non = "fleet%s"\nrun = [{ upload = "w1/", to = "%s/{{ host }}/nexus/" }]\n' "$n" "$n" "$DST"
      printf '\n[tasks.w2%s]\non = "fleet%s"\nrun = [{ upload = "w2/big.bin", to = "%s/{{ host }}/nexus/" }]\n' "$n" "$n" "$DST"
    done
  } > "$WORK/proj/nexus.toml"
  for n in $HOSTS; do
    { cat "$FLEET_PYINFRA_INV"; printf '\nfleet = fleet[:%s]\n' "$n"; } > "$WORK/inventory$n.py"
  done
  cat > "$WORK/w1.yml" <<EOF
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy: { src: "$WORK/w1/", dest: "$DST/{{ inventory_hostname }}/ansible/" }
EOF
  cat > "$WORK/w2.yml" <<EOF
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy: { src: "$WORK/w2/big.bin", dest: "$DST/{{ inventory_hostname }}/ansible/" }
EOF
  cat > "$WORK/w1.py" <<EOF
from pyinfra import host
from pyinfra.operations import files
files.sync(src="$WORK/w1", dest="$DST/" + host.name + "/pyinfra")
EOF
  cat > "$WORK/w2.py" <<EOF
from pyinfra import host
from pyinfra.operations import files
files.directory(path="$DST/" + host.name + "/pyinfra")
files.put(src="$WORK/w2/big.bin", dest="$DST/" + host.name + "/pyinfra/big.bin")
EOF
}

# ---- driver -------------------------------------------------------------------------------
# measure CASE ROUNDS PREP TOOL... : per round, every tool in turn (order flipped each
# round): PREP (untimed: 'clean' removes the tool's destinations, 'change' edits 1 % of
# W1, 'none'), then the tool's command, timed; W2 nexus also under GNU time for peak RSS.
measure() {
  local case="$1" rounds="$2" prep="$3" w="$4" n="$5"; shift 5
  local spec="$WORK/spec.txt" t
  : > "$spec"
  for t in "$@"; do printf '%s\t%s\n' "$t" "$(cmd "$t" "$w" "$n")" >> "$spec"; done
  python3 - "$OUT/$case.json" "$rounds" "$prep" "$DST" "$WORK/w1" "$spec" <<'PY'
import json, os, shutil, signal, subprocess, sys, time
out, rounds, prep, dst, w1, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
tools = [l.rstrip("\n").split("\t", 1) for l in open(spec) if l.strip()]
res = {t: [] for t, _ in tools}
rss = {}
censored = {}
limit = float(os.environ.get("SLOW_LIMIT", "300"))
def clean(tool):
    if os.path.isdir(dst):
        for h in os.listdir(dst):
            shutil.rmtree(os.path.join(dst, h, tool), ignore_errors=True)
def change():
    names = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(w1) for f in fs)
    for p in names[::100]:
        with open(p, "wb") as fh:
            fh.write(os.urandom(4096))
for r in range(rounds):
    order = tools if r % 2 == 0 else tools[::-1]
    for t, c in order:
        if prep == "clean":
            clean(t)
        elif prep == "change":
            change()
        timed = c
        if t == "nexus" and "w2" in out:
            timed = f"/usr/bin/time -f '%M' -o {out}.rss sh -c {json.dumps(c)}"
        t0 = time.perf_counter()
        p = subprocess.Popen(timed, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=limit if t in ("ansible", "pyinfra", "scp") else None)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            res[t].append(limit)
            censored[t] = True
            print(f"  {os.path.basename(out)[:-5]} {t}: stopped after {limit:.0f}s", file=sys.stderr)
            continue
        d = time.perf_counter() - t0
        p.stderr = err
        if p.returncode != 0:
            sys.exit(f"{t}: exited {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}")
        res[t].append(d)
        if timed != c:
            rss.setdefault(t, []).append(int(open(out + ".rss").read().split()[-1]))
        print(f"  {os.path.basename(out)[:-5]} {t}: {d:.3f}s", file=sys.stderr)
json.dump({"results": [{"tool": t, "times": res[t], "censored": censored.get(t, False)} for t, _ in tools],
           "peak_rss_kb": rss}, open(out, "w"))
PY
}

has() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }
pick() { local t out=(); for t in "$@"; do has "$t" && out+=("$t"); done; echo "${out[@]}"; }

for rtt in $RTTS; do
  "$REPO/scripts/fleet.sh" stop >/dev/null 2>&1 || true
  maxn=0; for n in $HOSTS; do [ "$n" -gt "$maxn" ] && maxn=$n; done
  log "fleet of $maxn hosts at ${rtt} ms"
  BENCH_RTT_MS="$rtt" "$REPO/scripts/fleet.sh" start "$maxn" >/dev/null
  eval "$(BENCH_RTT_MS="$rtt" "$REPO/scripts/fleet.sh" env)"
  write_configs
  wait_idle >/dev/null
  for n in $HOSTS; do
    c="rtt${rtt}-h${n}"
    slow=(); [ "$W1_SCP" = 1 ] && slow=(scp)
    case " $SLOW_AT " in *" $rtt:$n "*) slow+=(ansible pyinfra) ;; esac
    case " $WORKLOADS " in *" w1 "*)
      # W1 cold: fast tools several rounds, slow ones (minutes at 20 ms) SLOW_RUNS rounds.
      # shellcheck disable=SC2046
      measure "$c-w1-cold" "$RUNS" clean w1 "$n" $(pick nexus tar rsync)
      # shellcheck disable=SC2046
      [ "${#slow[@]}" -gt 0 ] && [ -n "$(pick "${slow[@]}")" ] && measure "$c-w1-cold-slow" "$SLOW_RUNS" clean w1 "$n" $(pick nexus "${slow[@]}")
      # No change and 1 % changed: the destinations hold W1 from the cold rounds.
      # shellcheck disable=SC2046
      measure "$c-w1-nochange" "$RUNS" none w1 "$n" $(pick nexus rsync)
      # shellcheck disable=SC2046
      measure "$c-w1-change1" "$RUNS" change w1 "$n" $(pick nexus rsync)
      # shellcheck disable=SC2046
      case " ${slow[*]} " in *" ansible "*|*" pyinfra "*) true ;; *) false ;; esac && [ -n "$(pick ansible pyinfra)" ] &&
        measure "$c-w1-nochange-slow" "$SLOW_RUNS" none w1 "$n" $(pick nexus ansible pyinfra)
    ;; esac
    case " $WORKLOADS " in *" w2 "*)
      # shellcheck disable=SC2046
      measure "$c-w2-cold" "$RUNS" clean w2 "$n" $(pick nexus tar rsync scp) ;;
    esac
    rm -rf "$DST" 2>/dev/null || true
  done
done

python3 - "$OUT" "$rev" <<'PY' | tee "$OUT/summary.md"
import glob, json, os, statistics, sys
out, rev = sys.argv[1], sys.argv[2]
print(f"nexus: {rev}\n")
print("| case | tool | runs | median s | vs nexus |")
print("|---|---|---:|---:|---:|")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    d = json.load(open(f))
    case = os.path.basename(f)[:-5]
    med = {r["tool"]: statistics.median(r["times"]) for r in d["results"] if r["times"]}
    cens = {r["tool"]: r.get("censored", False) for r in d["results"]}
    for t, m in med.items():
        ratio = m / med["nexus"] if "nexus" in med and med["nexus"] > 0 else float("nan")
        gt = "> " if cens[t] else ""
        print(f"| {case} | {t} | {len(next(r for r in d['results'] if r['tool']==t)['times'])} | {gt}{m:.3f} | {gt}{ratio:.2f}x |")
    for t, kb in d.get("peak_rss_kb", {}).items():
        print(f"| {case} | {t} peak RSS | | {max(kb)/1024:.1f} MB | |")
PY
