#!/usr/bin/env bash
# Fuzz campaigns of a fixed number of executions per target (default 10 million), the corpus kept
# in $DOCKROUTE_CACHE/fuzz-corpus/<target> between runs. Part of `scripts/load.sh --long`.
#
#   scripts/fuzz-long.sh [--runs N] [crate:target ...]   (default: every target)
#
# Prints one `MEASURED fuzz <target>: <executions> executions in <s> s, crashes 0, corpus <n>
# inputs` line per target; exits non-zero on the first crash (its input is in
# <crate>/fuzz/artifacts/<target>). Bounded: each target is killed after two hours (the slowest,
# iptables_save, does about 2,000 executions a second here on a busy machine: 10 M in 80 min).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUNS=10000000
if [[ ${1:-} == --runs ]]; then RUNS=$2; shift 2; fi
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${FUZZ_TARGETS[@]}")
status=0
for entry in "${TARGETS[@]}"; do
  crate=${entry%%:*} target=${entry#*:}
  corpus="$DOCKROUTE_CACHE/fuzz-corpus/$target"
  log="$CARGO_TARGET_DIR/fuzz-long-$target.log"
  mkdir -p "$corpus"
  # Build first, so the time below is fuzzing only.
  (cd "$crate" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" cargo fuzz build "$target") >"$log" 2>&1
  start=$(date +%s%3N)
  if (cd "$crate" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" timeout -k 30 7200 \
        cargo fuzz run "$target" "$corpus" "fuzz/corpus/$target" -- -runs="$RUNS" -print_final_stats=1) >>"$log" 2>&1; then
    ms=$(( $(date +%s%3N) - start ))
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "MEASURED fuzz $target: ${execs:-?} executions in $((ms / 1000)) s, crashes 0, corpus $(ls "$corpus" | wc -l) inputs"
  else
    tail -n 40 "$log"
    echo "MEASURED fuzz $target: FAILED (crash inputs, if any, in $crate/fuzz/artifacts/$target)"
    status=1
  fi
done
exit "$status"
