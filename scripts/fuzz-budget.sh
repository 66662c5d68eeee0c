#!/usr/bin/env bash
# Every fuzz target within a fixed budget: the seconds given (default 360) split evenly across
# FUZZ_TARGETS (scripts/lib.sh), at least 10 s each, so a new target makes each share smaller,
# not the run longer. The fuzz crates are built first, outside the budget. The corpus grows in
# $CARGO_TARGET_DIR/fuzz-corpus/<target> between runs. Part of test-all.sh.
#
#   scripts/fuzz-budget.sh [SECONDS]
#
# Prints one `crate:target: <executions> executions in <s>s, no crash` line per target, then the
# build and fuzzing times; exits non-zero on the first crash (its input is in
# <crate>/fuzz/artifacts/<target>).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
budget=${1:-360}
seconds=$((budget / ${#FUZZ_TARGETS[@]}))
((seconds >= 10)) || seconds=10
echo "${#FUZZ_TARGETS[@]} fuzz targets, ${seconds}s each (budget ${budget}s)"
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler accept them.
fuzz() { (cd "$1" && shift && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" cargo fuzz "$@"); }

start=$SECONDS
for crate in $(printf '%s\n' "${FUZZ_TARGETS[@]%%:*}" | sort -u); do
  log="$CARGO_TARGET_DIR/fuzz-build-$crate.log"
  if ! fuzz "$crate" build >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "the fuzz crate $crate/fuzz does not build" >&2
    exit 1
  fi
done
echo "fuzz crates built in $((SECONDS - start))s"

start=$SECONDS
for entry in "${FUZZ_TARGETS[@]}"; do
  crate=${entry%%:*} target=${entry#*:}
  corpus="$CARGO_TARGET_DIR/fuzz-corpus/$target"
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  mkdir -p "$corpus"
  if ! fuzz "$crate" run "$target" "$corpus" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $entry failed (crash inputs, if any, are in $crate/fuzz/artifacts/$target)" >&2
    exit 1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$entry: ${execs:-?} executions in ${seconds}s, no crash"
done
echo "fuzzing took $((SECONDS - start))s in all"
