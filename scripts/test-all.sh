#!/usr/bin/env bash
# Every check Dockroute has, in one command (run as root: the end-to-end tests create network
# namespaces and TUN devices). It first installs what is missing (scripts/setup.sh).
# Everything it writes goes to CARGO_TARGET_DIR, the caches of lib.sh or git-ignored paths
# (cargo-fuzz's fuzz/artifacts, tauri-build's src-tauri/gen): `git status` stays clean.
#   FUZZ_SECONDS   time per fuzz target (default 60)
#   CARGO_TARGET_DIR  where to build (default ./target)
#   DOCKROUTE_ARTIFACTS  where the app's WebDriver tests save dashboard screenshots
#                        (default $CARGO_TARGET_DIR/e2e-artifacts)
#   DOCKROUTE_CACHE, DOCKROUTE_TOOLS  see scripts/lib.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
step() { echo; echo "==> $*"; }

bash scripts/setup.sh

step "the set-up's functions (missing_packages, debian_archive) under set -euo pipefail"
bash scripts/check-scripts.sh

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "macOS type-check (aarch64-apple-darwin), tests included"
CC_aarch64_apple_darwin=clang CFLAGS_aarch64_apple_darwin="$(darwin_check_cflags)" \
  cargo check --workspace --all-targets --target aarch64-apple-darwin --quiet

step "fuzz: ${FUZZ_SECONDS}s per target"
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler accept them.
for entry in "${FUZZ_TARGETS[@]}"; do
  crate=${entry%%:*} target=${entry#*:}
  corpus="$CARGO_TARGET_DIR/fuzz-corpus/$target"
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  mkdir -p "$corpus"
  if ! (cd "$crate" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" \
        cargo fuzz run "$target" "$corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed (crash inputs, if any, are in $crate/fuzz/artifacts/$target)" >&2
    exit 1
  fi
  echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | tr -d ' ') in ${FUZZ_SECONDS}s, no crash"
done

step "benchmark, short (prints numbers; no thresholds)"
bash scripts/bench.sh --quick --json "$CARGO_TARGET_DIR/bench-quick.json"
step "protocol core micro-benchmark, short (frames/s per core; no thresholds)"
cargo bench --quiet -p dockroute-engine --bench proto -- --warm-up-time 1 --measurement-time 2 --noplot 2>&1 \
  | grep -E '^(data|handshake)|thrpt' | grep -v '%'


step "build the binaries the end-to-end tests run"
cargo build --workspace --bins --quiet

export DOCKROUTE_ARTIFACTS=${DOCKROUTE_ARTIFACTS:-$CARGO_TARGET_DIR/e2e-artifacts}
step "tests: unit, property, end-to-end (network namespaces) and the app through WebDriver (screenshots: $DOCKROUTE_ARTIFACTS)"
cargo nextest run --workspace --no-fail-fast --failure-output final

step "packaging: the macOS workflow, the Homebrew cask and the plists parse"
bash scripts/check-packaging.sh
step "package: the .deb (Tauri's bundler), then the packaged helper started from nothing and the maintainer scripts"
bash scripts/package.sh
bash scripts/test-package.sh

step "a fresh machine: the README's set-up (setup.sh --demo, setup.sh, then both through sudo) in a minbase Debian 12 chroot"
bash scripts/fresh-machine.sh
