#!/usr/bin/env bash
# Smoke test of the harness on real namespaces: a kill run must be valid (exit 0),
# and the planted bug (kill-and-wipe) must be caught (exit 1 with lost > 0).
#   jepsen/smoke.sh PATH/TO/vigild
# Exits 77 (skipped) without root, iproute2, iptables or python3-grpcio; for ctest:
#   add_test(NAME jepsen_smoke COMMAND ${CMAKE_SOURCE_DIR}/jepsen/smoke.sh $<TARGET_FILE:vigild>)
#   set_tests_properties(jepsen_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
set -uo pipefail
cd "$(dirname "$0")"
vigild=${1:?usage: smoke.sh PATH/TO/vigild}
skip() { echo "jepsen smoke: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs iproute2"
command -v iptables >/dev/null || skip "needs iptables (tools/install-deps --jepsen)"
/usr/bin/python3 -c 'import grpc, snappy, google.protobuf' 2>/dev/null \
  || skip "needs python3-grpcio python3-snappy python3-protobuf (tools/install-deps --jepsen)"
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
common=(--workload samples --nodes 1 --time 15 --quiet-max 3 --settle 2 --vigild "$vigild" --store "$store")

./run "${common[@]}" --nemesis kill --seed 1
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: kill run exited $rc, want 0 (valid)"; exit 1; }

./run "${common[@]}" --nemesis kill-and-wipe --seed 1
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: kill-and-wipe run exited $rc, want 1 (violation)"; exit 1; }
lost=$(/usr/bin/python3 -c 'import json,glob,sys
r=json.load(open(glob.glob(sys.argv[1]+"/*kill-and-wipe*/results.json")[0]))
print(r["checkers"]["samples"]["lost"])' "$store")
[ "$lost" -gt 0 ] || { echo "FAIL: kill-and-wipe lost=$lost, want > 0"; exit 1; }
leftover=$(ip netns list | grep -cE '^vj[0-9a-f]{5}n' || true)
echo "jepsen smoke: kill valid; kill-and-wipe caught lost=$lost; leftover namespaces now: $leftover"
echo "2 passed, 0 failed"
