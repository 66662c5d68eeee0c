#!/usr/bin/env bash
# Every check Dockroute has, in one command (run as root: the end-to-end tests create network
# namespaces and TUN devices). It first installs what is missing (scripts/setup.sh).
# Everything it writes goes to CARGO_TARGET_DIR, the caches of lib.sh or git-ignored paths
# (cargo-fuzz's fuzz/artifacts, tauri-build's src-tauri/gen): `git status` stays clean.
#   FUZZ_BUDGET    seconds of fuzzing (wall time, one target per core at once), split evenly
#                  across the fuzz targets (default 120; every target runs, at least 10 s;
#                  scripts/fuzz-budget.sh)
#   CARGO_TARGET_DIR  where to build (default ./target)
#   DOCKROUTE_ARTIFACTS  where the app's WebDriver tests save dashboard screenshots
#                        (default $CARGO_TARGET_DIR/e2e-artifacts)
#   DOCKROUTE_CACHE, DOCKROUTE_TOOLS  see scripts/lib.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
FUZZ_BUDGET=${FUZZ_BUDGET:-120}
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

step "fuzz: every target within FUZZ_BUDGET (${FUZZ_BUDGET}s)"
bash scripts/fuzz-budget.sh "$FUZZ_BUDGET"

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
