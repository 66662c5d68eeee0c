#!/usr/bin/env bash
# The load and fault suite in one command (run as root, under the e2e lock when others share
# the machine: `flock /var/tmp/dockroute-e2e.lock scripts/load.sh --long`).
#
#   scripts/load.sh [--long]
#
# Short form (the default; what scripts/test-all.sh runs through nextest): a few minutes.
# Long form: the figures. Both run tests-e2e/tests/load.rs one test at a time, against release
# helper, guest and load tool (DOCKROUTE_BIN_DIR), on namespace topologies and a dockerd in a
# namespace (addresses in 198.18.0.0/15 only):
#   - 10,000 (short: 2,000) concurrent TCP connections through the tunnel to nginx, every one
#     answered; wrk req/s through the tunnel against raw forwarding on the same topology;
#   - a handshake and garbage flood (UDP and TCP) at the helper's port during wrk: the session
#     unchanged, throughput under flood ≥ half of without (asserted in the long form), the
#     helper's RSS before/peak/after;
#   - a soak of mixed traffic, 10 minutes (short: 30 s): RSS and descriptors before/after,
#     bound 8 MiB and no descriptor more;
#   - kill loops, 20 rounds (short: 3) each of kill -9 helper, kill -9 guest, SIGSTOP/SIGCONT
#     of the guest for 30 s (short: 5 s), kill -9 dockerd: recovery p50/p99, nothing left behind;
#   and in the long form fuzz campaigns of 10 million executions per target, corpus kept in
#   $DOCKROUTE_CACHE/fuzz-corpus/<target>, crashes = 0.
# Prints every `MEASURED` line at the end and how long it took. Bounded: every test has its
# own limits and the whole run is killed after 90 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
LONG=0
case "${1:-}" in
  --long) LONG=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
  *) echo "usage: $0 [--long]" >&2; exit 2 ;;
esac
[[ $EUID -eq 0 ]] || { echo "load.sh needs root (network namespaces, TUN devices, dockerd)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
START=$(date +%s)
OUT=$(mktemp /tmp/dockroute-load.XXXXXX)
trap 'rm -f "$OUT"' EXIT

mapfile -t missing < <(missing_packages nginx-light wrk iproute2 nftables)
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "==> building: release helper, guest and load tool; the debug test and app binaries"
cargo build --release -q -p dockroute-helper -p dockroute-guest -p dockroute-e2e --bins
cargo build -q --workspace --bins
export DOCKROUTE_BIN_DIR=$CARGO_TARGET_DIR/release DOCKROUTE_LOAD_LONG=$LONG

echo "==> load and fault tests ($([[ $LONG == 1 ]] && echo long || echo short) form), one at a time"
timeout -k 30 5400 cargo nextest run -p dockroute-e2e --test load --no-capture --test-threads 1 \
  --no-fail-fast --failure-output final 2>&1 | tee "$OUT"
status=${PIPESTATUS[0]}

if [[ $LONG == 1 ]]; then
  echo "==> fuzz: 10,000,000 executions per target (corpus in $DOCKROUTE_CACHE/fuzz-corpus)"
  # Niced: hours of fuzzing should not starve whatever else the machine does.
  nice -n 10 bash scripts/fuzz-long.sh 2>&1 | tee -a "$OUT" || status=1
fi

echo
echo "==> figures ($(( $(date +%s) - START )) s in all; rerun: sudo scripts/load.sh$([[ $LONG == 1 ]] && echo ' --long'))"
grep -h 'MEASURED' "$OUT" | sed 's/^.*MEASURED/MEASURED/' || true
exit "$status"
