#!/usr/bin/env bash
# Smoke test of the fault-injection suite on real namespaces, against a real 3-node
# cluster (vigild --peers), in about 3 minutes:
#   1. samples + register workloads side by side under kill and partition faults:
#      must be valid (exit 0), with both faults applied and both workloads acked;
#   2. the planted bug: the stale-read scenario (isolate the leader, write through the
#      majority, read from the old leader) with vigild --unsafe_stale_register_reads
#      must be caught by the linearizability checker (exit 1);
#   3. the same scenario without the flag must be valid (exit 0): reads from the
#      isolated leader are refused, never stale;
#   4. the samples checker's planted bug: kill-and-wipe on one node must lose samples;
#   5. membership: nodes added (vigild --join, vigilctl cluster add-node), replaced or
#      removed under writes for 25 s: valid, every change settled, at least one node
#      joined (about 50 s).
#   jepsen/smoke.sh PATH/TO/vigild [PATH/TO/vigilctl]   (default: tools/vigilctl of
#   vigild's build directory)
# Exits 77 (skipped) without root, iproute2, iptables or python3-grpcio (ctest:
# SKIP_RETURN_CODE 77, see tests/CMakeLists.txt).
set -uo pipefail
# Absolute paths first: the script runs from jepsen/.
vigild=$(realpath -m "${1:?usage: smoke.sh PATH/TO/vigild [PATH/TO/vigilctl]}")
vigilctl=$(realpath -m "${2:-$(dirname "$vigild")/../tools/vigilctl}")
cd "$(dirname "$0")"
skip() { echo "jepsen smoke: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs iproute2"
command -v iptables >/dev/null || skip "needs iptables (tools/install-deps --jepsen)"
/usr/bin/python3 -c 'import grpc, snappy, google.protobuf' 2>/dev/null \
  || skip "needs python3-grpcio python3-snappy python3-protobuf (tools/install-deps --jepsen)"
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
# Generous waits: a slow, shared 2-core CI machine must not make these flaky.
common=(--vigild "$vigild" --store "$store" --ready-timeout 120 --cluster-timeout 120)

# result RUN_GLOB EXPR: evaluates a Python expression over that run's results.json (r).
result() {
  /usr/bin/python3 -c 'import json,glob,sys
r=json.load(open(glob.glob(sys.argv[1]+"/"+sys.argv[2]+"/results.json")[0]))
print(eval("(" + sys.argv[3] + ")"))' "$store" "$1" "$2"
}

# gflags exits non-zero after --helpfull: capture first (pipefail), then look.
help=$("$vigild" --helpfull 2>&1 || true)
grep -qE -- '^ +-peers ' <<<"$help" || fail "$vigild has no --peers flag: cannot form a cluster"
grep -qE -- '^ +-unsafe_stale_register_reads ' <<<"$help" \
  || fail "$vigild has no --unsafe_stale_register_reads flag (the planted bug)"
{
  ./run "${common[@]}" --workload samples,register --nemesis kill,partition --nodes 3 \
    --time 40 --quiet-min 2 --quiet-max 4 --fault-min 3 --fault-max 6 --settle 5 --seed 1
  rc=$?
  [ $rc -eq 0 ] || fail "cluster kill,partition run exited $rc, want 0 (valid)"
  check=$(result '*samples+register*' \
    'r["clustered"] and r["checkers"]["samples"]["acked"] > 0
     and sum(1 for w in r["fault_windows"] if w[2] == "kill") > 0
     and sum(1 for w in r["fault_windows"] if w[2].startswith("partition")) > 0
     and r["checkers"]["register"]["ops"] - r["checkers"]["register"]["info_ops"] > 0
     and r["checkers"]["raft"]["valid"] is True')
  [ "$check" = True ] || fail "cluster run: want clustered, samples and register ops acked, kill and partition applied, raft checked"
  passed=$((passed + 1))
  echo "jepsen smoke: 3-node cluster, samples+register under kill,partition: valid"

  ./run "${common[@]}" --workload stale-read --nodes 3 --time 400 --probe-rounds 8 --seed 2 \
    --vigild-arg=--unsafe_stale_register_reads
  rc=$?
  [ $rc -eq 1 ] || fail "stale-read with --unsafe_stale_register_reads exited $rc, want 1 (caught)"
  failures=$(result '*stale-read*' 'len(r["checkers"]["stale-read"]["failures"])')
  [ "$failures" -gt 0 ] || fail "stale-read with the flag: no linearizability failure reported"
  passed=$((passed + 1))
  echo "jepsen smoke: planted stale read caught by the linearizability checker"
  rm -rf "${store:?}"/*stale-read*

  ./run "${common[@]}" --workload stale-read --nodes 3 --time 400 --probe-rounds 2 --seed 2
  rc=$?
  [ $rc -eq 0 ] || fail "stale-read without the flag exited $rc, want 0 (valid)"
  passed=$((passed + 1))
  echo "jepsen smoke: the same scenario without the flag: valid"
}

./run "${common[@]}" --workload samples --nodes 1 --time 15 --quiet-max 3 --settle 2 \
  --nemesis kill-and-wipe --seed 1
rc=$?
[ $rc -eq 1 ] || fail "kill-and-wipe run exited $rc, want 1 (violation)"
lost=$(result '*kill-and-wipe*' 'r["checkers"]["samples"]["lost"]')
[ "$lost" -gt 0 ] || fail "kill-and-wipe lost=$lost, want > 0"
passed=$((passed + 1))
leftover=$(ip netns list | grep -cE '^vj[0-9a-f]{5}n' || true)
echo "jepsen smoke: kill-and-wipe caught lost=$lost; leftover namespaces now: $leftover"

[ -x "$vigilctl" ] || fail "no vigilctl at $vigilctl (build tools/vigilctl, or pass its path)"
./run "${common[@]}" --vigilctl "$vigilctl" --workload samples --nemesis membership --nodes 3 \
  --time 25 --quiet-min 1 --quiet-max 2 --fault-min 1 --fault-max 2 --settle 2 --seed 1
rc=$?
[ $rc -eq 0 ] || fail "membership run exited $rc, want 0 (valid)"
check=$(result '*membership*' \
  'r["checkers"]["membership"]["ok"] >= 1 and r["checkers"]["membership"]["info"] == 0
   and r["checkers"]["membership"]["adds"] + r["checkers"]["membership"]["replaces"] >= 1
   and r["checkers"]["raft"]["joined"] >= 1
   and r["checkers"]["samples"]["acked"] > 0 and r["checkers"]["raft"]["valid"] is True')
[ "$check" = True ] || fail "membership run: want settled changes, a node joined, samples acked, raft checked"
passed=$((passed + 1))
echo "jepsen smoke: membership changes under writes: valid"
echo "$passed passed, 0 failed"
