#!/usr/bin/env bash
# Every fuzz target within a fixed budget of wall time: the seconds given (default 120), with
# FUZZ_JOBS targets fuzzing at once (default: one per core; libFuzzer uses one core), so each
# of FUZZ_TARGETS (scripts/lib.sh) gets budget × jobs / targets seconds, at least 10: a new
# target makes each share smaller, not the run longer. The fuzz crates are built first, outside
# the budget. The corpus grows in $CARGO_TARGET_DIR/fuzz-corpus/<target> between runs. Part of
# test-all.sh.
#
#   scripts/fuzz-budget.sh [SECONDS]
#
# Prints one `crate:target: <executions> executions in <s>s, no crash` line per target, in
# FUZZ_TARGETS' order, then the build and fuzzing times; exits non-zero when a target crashed
# (the log's end is printed; the input is in <crate>/fuzz/artifacts/<target>).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
budget=${1:-120}
jobs_max=${FUZZ_JOBS:-$(nproc)}
((jobs_max >= 1)) || jobs_max=1
seconds=$((budget * jobs_max / ${#FUZZ_TARGETS[@]}))
((seconds >= 10)) || seconds=10
echo "${#FUZZ_TARGETS[@]} fuzz targets, ${seconds}s each, ${jobs_max} at once (budget ${budget}s)"
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

# One target: its log in $CARGO_TARGET_DIR/fuzz-<target>.log, and `ok` or `crash` beside it.
fuzz_one() {
  local crate=${1%%:*} target=${1#*:}
  local corpus="$CARGO_TARGET_DIR/fuzz-corpus/$target" log="$CARGO_TARGET_DIR/fuzz-$target.log"
  mkdir -p "$corpus"
  if fuzz "$crate" run "$target" "$corpus" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    echo ok >"$log.verdict"
  else
    echo crash >"$log.verdict"
  fi
}

start=$SECONDS
for entry in "${FUZZ_TARGETS[@]}"; do
  rm -f "$CARGO_TARGET_DIR/fuzz-${entry#*:}.log.verdict"
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
  fuzz_one "$entry" &
done
wait

failed=0
for entry in "${FUZZ_TARGETS[@]}"; do
  crate=${entry%%:*} target=${entry#*:}
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  if [[ $(cat "$log.verdict" 2>/dev/null) != ok ]]; then
    tail -n 60 "$log"
    echo "fuzz target $entry failed (crash inputs, if any, are in $crate/fuzz/artifacts/$target)" >&2
    failed=1
    continue
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$entry: ${execs:-?} executions in ${seconds}s, no crash"
done
echo "fuzzing took $((SECONDS - start))s in all"
exit "$failed"
