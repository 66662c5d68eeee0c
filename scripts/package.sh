#!/usr/bin/env bash
# Builds the packages this OS can build, with Tauri's bundler (`cargo tauri build`):
#   Linux: $CARGO_TARGET_DIR/release/bundle/deb/Dockroute_<version>_<arch>.deb with the app
#          (/usr/bin/dockroute, a desktop entry), the helper (/usr/bin/dockroute-helper), its
#          systemd unit, the guest image tarballs for both CPUs (/usr/lib/Dockroute/), and
#          maintainer scripts that create the `dockroute` group and enable the service
#          (packaging/linux/). Needs root only for the guest's base rootfs (debootstrap, once).
#   macOS: the .app and .dmg for this Mac's CPU, or for both with --universal (lipo'd helper).
#          The guest tarballs cannot be built on a Mac (debootstrap): put them in
#          src-tauri/guest/ first (the CI workflow builds them on Linux).
# tauri-cli is installed into $DOCKROUTE_TOOLS (default /var/tmp/dockroute-ci/tools) once.
#   CARGO_TARGET_DIR  where to build (default ./target)
#
#   scripts/package.sh --stage-mac-helpers DIR AARCH64_HELPER X86_64_HELPER
#     only stages the two macOS helpers in DIR the way --universal does (LIPO: the lipo to run);
#     src-tauri/tests/tauri_staging.rs replays tauri's lookups against the result.
set -euo pipefail

# The helper as Tauri's externalBin, `binaries/dockroute-helper-<target triple>`, for every
# lookup `cargo tauri build --target universal-apple-darwin` makes: it builds each CPU on its own
# (tauri-cli), and each build's tauri-build copies `…-aarch64-apple-darwin` or
# `…-x86_64-apple-darwin` next to that CPU's app binary; the bundler then copies
# `…-universal-apple-darwin` into the .app. The same three serve `--target aarch64-apple-darwin`
# and `--target x86_64-apple-darwin`.
stage_mac_helpers() {
  local dir=$1 arm=$2 intel=$3
  cp "$arm" "$dir/dockroute-helper-aarch64-apple-darwin"
  cp "$intel" "$dir/dockroute-helper-x86_64-apple-darwin"
  "${LIPO:-lipo}" -create -output "$dir/dockroute-helper-universal-apple-darwin" "$arm" "$intel"
}
if [ "${1:-}" = --stage-mac-helpers ]; then
  [ $# = 4 ] || { echo "usage: $0 --stage-mac-helpers DIR AARCH64_HELPER X86_64_HELPER" >&2; exit 2; }
  stage_mac_helpers "$2" "$3" "$4"
  exit 0
fi

cd "$(dirname "$0")/.."
TOOLS=${DOCKROUTE_TOOLS:-/var/tmp/dockroute-ci/tools}
export PATH="$TOOLS/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
universal=0
[ "${1:-}" = --universal ] && universal=1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
step() { echo; echo "==> $*"; }

if ! cargo tauri --version >/dev/null 2>&1; then
  step "cargo install tauri-cli (into $TOOLS; once, it takes a while)"
  cargo install --locked --root "$TOOLS" tauri-cli --version '^2'
fi

# Tauri's externalBin naming: binaries/dockroute-helper-<target triple>.
mkdir -p src-tauri/binaries src-tauri/guest
rm -f src-tauri/binaries/dockroute-helper-*
if [ "$(uname -s)" = Darwin ] && [ "$universal" = 1 ]; then
  step "helper for both Mac CPUs"
  for t in aarch64-apple-darwin x86_64-apple-darwin; do cargo build --quiet --release -p dockroute-helper --target "$t"; done
  stage_mac_helpers src-tauri/binaries "$CARGO_TARGET_DIR"/{aarch64,x86_64}-apple-darwin/release/dockroute-helper
  tauri_args=(--target universal-apple-darwin)
else
  triple=$(rustc -vV | sed -n 's/^host: //p')
  step "helper ($triple)"
  cargo build --quiet --release -p dockroute-helper
  cp "$CARGO_TARGET_DIR/release/dockroute-helper" "src-tauri/binaries/dockroute-helper-$triple"
  # The release profile keeps debug info (for profiling); a package does not need it.
  [ "$(uname -s)" = Linux ] && objcopy --strip-debug "src-tauri/binaries/dockroute-helper-$triple"
  tauri_args=()
fi

if [ "$(uname -s)" = Linux ]; then
  step "guest image tarballs (amd64, arm64)"
  GUEST_ARCHES="amd64 arm64" bash guest-image/build.sh --no-load
  rm -f src-tauri/guest/*.tar
  for arch in amd64 arm64; do
    tar="$CARGO_TARGET_DIR/dockroute-guest-$version-$arch.tar"
    ln -f "$tar" src-tauri/guest/ 2>/dev/null || cp "$tar" src-tauri/guest/
  done
  tauri_args+=(--bundles deb)
fi
for arch in amd64 arm64; do
  [ -s "src-tauri/guest/dockroute-guest-$version-$arch.tar" ] || {
    echo "package.sh: src-tauri/guest/dockroute-guest-$version-$arch.tar is missing" >&2
    exit 1
  }
done

step "cargo tauri build ${tauri_args[*]}"
# The externalBin and resources are added only here (tauri.bundle.conf.json): in tauri.conf.json
# every `cargo build` of the app would need them, and would copy the staged helper over
# target/*/dockroute-helper.
if [ "$(uname -s)" = Linux ]; then
  # Built, stripped of its debug info, then bundled (a Mac's bundle is signed, so left as built).
  (cd src-tauri && cargo tauri build --ci --no-bundle --config tauri.bundle.conf.json)
  objcopy --strip-debug "$CARGO_TARGET_DIR/release/dockroute"
  (cd src-tauri && cargo tauri bundle --ci --config tauri.bundle.conf.json "${tauri_args[@]}")
else
  (cd src-tauri && cargo tauri build --ci --config tauri.bundle.conf.json "${tauri_args[@]}")
fi
find "$CARGO_TARGET_DIR" -path '*/release/bundle/*' -name "*$version*" \( -name '*.deb' -o -name '*.dmg' \) \
  -print 2>/dev/null | sed 's/^/built /'
