#!/usr/bin/env bash
# Builds the guest: static (musl) dockroute-guest for x86_64 and aarch64, the image
# dockroute-guest:<version> for this machine's architecture, and its `docker save` tarball
# target/dockroute-guest-<version>.tar that the app bundles.
#
#   guest-image/build.sh [--base local|release]
#     local   (default) base imported from a debootstrap rootfs: works with no registry
#     release base built from Dockerfile.base (FROM debian:bookworm-slim)
#   Docker engine: DOCKER_HOST / the docker CLI's defaults. Output dir: CARGO_TARGET_DIR or
#   ./target; GUEST_TAR overrides the tarball's path.
set -euo pipefail
cd "$(dirname "$0")/.."
base_mode=local
[ "${1:-}" = "--base" ] && base_mode=${2:?--base local|release}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
musl_dir="$target_dir/musl"
image="dockroute-guest:$version" base="dockroute-guest-base:$version"

echo "==> static binaries ($version)"
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  # rust-lld links the self-contained musl runtime: no cross C toolchain needed.
  CARGO_TARGET_DIR="$musl_dir" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build --quiet --release --target "$triple" -p dockroute-guest
done
# A private build context per run, so parallel builds (tests) never see each other's files.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp guest-image/Dockerfile "$context/"
mkdir -p "$context/dist/amd64" "$context/dist/arm64"
cp "$musl_dir/x86_64-unknown-linux-musl/release/dockroute-guest" "$context/dist/amd64/"
cp "$musl_dir/aarch64-unknown-linux-musl/release/dockroute-guest" "$context/dist/arm64/"
strip "$context/dist/amd64/dockroute-guest" 2>/dev/null || true

case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) echo "unsupported $(uname -m)" >&2; exit 1 ;; esac

echo "==> base image $base ($base_mode)"
if [ "$base_mode" = local ]; then
  bash scripts/docker-env/base-rootfs.sh >&2
  rootfs="${DOCKROUTE_CACHE:-${DOCKROUTE_CI_CACHE:-/var/tmp/dockroute-ci}}/base-rootfs.tar"
  docker import --message "dockroute guest base (debootstrap)" "$rootfs" "$base" >/dev/null
else
  docker build -q -t "$base" -f guest-image/Dockerfile.base guest-image >/dev/null
fi

echo "==> image $image"
DOCKER_BUILDKIT=0 docker build -q -t "$image" --build-arg BASE="$base" --build-arg ARCH="$arch" "$context" >/dev/null
tar_out=${GUEST_TAR:-$target_dir/dockroute-guest-$version.tar}
mkdir -p "$(dirname "$tar_out")"
docker save -o "$tar_out" "$image"
echo "built $image and $tar_out ($(du -h "$tar_out" | cut -f1))"
