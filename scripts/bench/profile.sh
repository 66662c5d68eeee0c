#!/usr/bin/env bash
# Where the tunnel's CPU goes: the helper and the guest (release builds) sampled by `perf record`
# (999 Hz, call graphs from DWARF) while iperf3 pushes one TCP stream through the tunnel in
# bench.sh's namespace topology (`bench.sh --profile-only`), one end at a time; then one
# unsampled run counting both ends' syscalls. Writes, under the directory it prints:
#   {helper,guest}.perf.data   the samples (`perf report -i …` to dig further)
#   {helper,guest}.folded      folded stacks (inferno-collapse-perf --all: kernel frames end in _[k])
#   {helper,guest}.svg         flame graphs
#   summary.md                 per end: top functions by self time, self time by kind of work
#                              (copies, syscalls, locking, scheduler, …), time by syscall; and
#                              syscalls per data packet (scripts/bench/profile_table.py)
#   *.top.txt, *.split.txt     perf report's own top symbols and kernel/user split
# Run as root, under the machine's measurement lock:
#
#   flock /var/tmp/dockroute-e2e.lock scripts/bench/profile.sh [--out DIR] [--seconds N] [--transport udp|tcp] [--no-build]
#
# DOCKROUTE_SPIN_US=N in the environment sets both ends' busy-poll after traffic (µs, 0 = off;
# default 100 on more than one CPU): the round trip's table shows what the spin costs and saves.
# Needs perf (Debian: linux-perf) and inferno (crates.io; installed with `cargo install` into
# $DOCKROUTE_PROFILE_TOOLS, default $CARGO_TARGET_DIR/profile-tools, when not on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

OUT= SECS=5 TRANSPORT=udp BENCH_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT=${2:?--out needs a directory}; shift ;;
    --seconds) SECS=${2:?--seconds needs a number}; shift ;;
    --transport) TRANSPORT=${2:?--transport needs udp or tcp}; shift ;;
    --no-build) BENCH_ARGS+=(--no-build) ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $EUID -eq 0 ]] || { echo "profile.sh needs root (bench.sh's namespaces, perf on other processes)" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile.sh needs perf (Debian: apt-get install linux-perf)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TOOLS=${DOCKROUTE_PROFILE_TOOLS:-$CARGO_TARGET_DIR/profile-tools}
export PATH=$TOOLS/bin:$PATH
if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
  echo "==> installing inferno into $TOOLS (cargo install)" >&2
  cargo install --quiet --locked inferno --root "$TOOLS"
fi

OUT=${OUT:-$(mktemp -d /tmp/dockroute-profile.XXXXXX)}
mkdir -p "$OUT"
"$ROOT/scripts/bench.sh" --profile-only "$OUT" --profile-seconds "$SECS" --profile-transport "$TRANSPORT" "${BENCH_ARGS[@]}"

for end in helper guest; do
  [[ -s $OUT/$end.perf.data ]] || { echo "profile.sh: no samples for the $end (see $OUT/$end.record.log)" >&2; continue; }
  echo "==> $end: folding stacks and drawing the flame graph" >&2
  perf evlist -i "$OUT/$end.perf.data" 2>/dev/null | head -1 >"$OUT/$end.event.txt" || true
  perf script -i "$OUT/$end.perf.data" 2>/dev/null | inferno-collapse-perf --all >"$OUT/$end.folded"
  inferno-flamegraph --title "dockroute-$end, TCP 1 stream over $TRANSPORT (iperf3, ${SECS}s)" \
    <"$OUT/$end.folded" >"$OUT/$end.svg"
done
python3 "$ROOT/scripts/bench/profile_table.py" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "profile: written to $OUT"
