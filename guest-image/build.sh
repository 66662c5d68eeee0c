#!/usr/bin/env bash
# Builds the guest: static (musl) dockroute-guest for x86_64 and aarch64, and an image
# dockroute-guest:<version> per CPU as a `docker save` tarball that the app bundles:
#   target/dockroute-guest-<version>-amd64.tar, target/dockroute-guest-<version>-arm64.tar
# (each image's config says its architecture; the app loads the one matching the engine's).
# The one for this machine's CPU is also loaded into Docker and linked as
# target/dockroute-guest-<version>.tar.
#
#   guest-image/build.sh [--base local|release] [--no-load]
#     local   (default) base rootfs from debootstrap (scripts/docker-env/base-rootfs.sh, either
#             CPU, no emulation needed): works with no registry
#     release base built from Dockerfile.base (FROM debian:bookworm-slim) per platform; the
#             other CPU needs a builder that can emulate it (binfmt/qemu)
#     --no-load  leave Docker alone (packaging)
#   Docker engine: DOCKER_HOST / the docker CLI's defaults. Output dir: CARGO_TARGET_DIR or
#   ./target. GUEST_TAR: write this machine's CPU's tarball there instead, and (unless
#   GUEST_ARCHES says otherwise) build only that one: what the tests and the demo use.
#   GUEST_ARCHES: the CPUs to build, default "amd64 arm64".
set -euo pipefail
cd "$(dirname "$0")/.."
base_mode=local load=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base_mode=${2:?--base local|release}; shift 2 ;;
    --no-load) load=0; shift ;;
    *) echo "usage: guest-image/build.sh [--base local|release] [--no-load]" >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
musl_dir="$target_dir/musl"
image="dockroute-guest:$version"
cache=${DOCKROUTE_CACHE:-${DOCKROUTE_CI_CACHE:-/var/tmp/dockroute-ci}}
case "$(uname -m)" in x86_64) host_arch=amd64 ;; aarch64|arm64) host_arch=arm64 ;; *) echo "unsupported $(uname -m)" >&2; exit 1 ;; esac
if [ -n "${GUEST_TAR:-}" ]; then arches=${GUEST_ARCHES:-$host_arch}; else arches=${GUEST_ARCHES:-amd64 arm64}; fi

echo "==> static binaries ($version)"
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  # rust-lld links the self-contained musl runtime: no cross C toolchain needed.
  CARGO_TARGET_DIR="$musl_dir" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build --quiet --release --target "$triple" -p dockroute-guest
done
sysroot=$(rustc --print sysroot)
objcopy="$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-objcopy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The base rootfs tarball for one CPU, built once and cached.
base_rootfs() {
  local arch=$1
  if [ "$base_mode" = local ]; then
    bash scripts/docker-env/base-rootfs.sh "$arch" >&2
    if [ "$arch" = "$(dpkg --print-architecture 2>/dev/null || echo "$host_arch")" ]; then
      echo "$cache/base-rootfs.tar"
    else
      echo "$cache/base-rootfs-$arch.tar"
    fi
  else
    local tag="dockroute-guest-base:$version-$arch" id
    docker build -q --platform "linux/$arch" -t "$tag" -f guest-image/Dockerfile.base guest-image >/dev/null
    id=$(docker create --platform "linux/$arch" "$tag" /bin/true)
    docker export "$id" >"$work/base-$arch.tar"
    docker rm "$id" >/dev/null
    echo "$work/base-$arch.tar"
  fi
}

tar_of() { echo "$target_dir/dockroute-guest-$version-$1.tar"; }
mkdir -p "$target_dir"
for arch in $arches; do
  case "$arch" in amd64) triple=x86_64-unknown-linux-musl ;; arm64) triple=aarch64-unknown-linux-musl ;;
    *) echo "unsupported GUEST_ARCHES entry $arch" >&2; exit 1 ;; esac
  echo "==> image $image ($arch, base: $base_mode)"
  binary="$work/dockroute-guest-$arch"
  cp "$musl_dir/$triple/release/dockroute-guest" "$binary"
  # llvm's objcopy (shipped with the Rust toolchain) strips either CPU's binary.
  LD_LIBRARY_PATH="$sysroot/lib" "$objcopy" --strip-all "$binary" 2>/dev/null || strip "$binary" 2>/dev/null || true
  out=$(tar_of "$arch")
  if [ -n "${GUEST_TAR:-}" ] && [ "$arch" = "$host_arch" ]; then out=$GUEST_TAR; fi
  mkdir -p "$(dirname "$out")"
  python3 guest-image/image-tar.py "$arch" "$(base_rootfs "$arch")" "$binary" "$image" "$out.partial" | sed 's/^/    /'
  mv "$out.partial" "$out"
  echo "built $out ($(du -h "$out" | cut -f1))"
done

host_tar=${GUEST_TAR:-$(tar_of "$host_arch")}
if [ -z "${GUEST_TAR:-}" ] && [ -s "$host_tar" ]; then
  # What the app looked for before it chose by CPU, and what --guest-image-tar users pass.
  ln -f "$host_tar" "$target_dir/dockroute-guest-$version.tar"
fi
if [ "$load" = 1 ] && [ -s "$host_tar" ]; then
  docker load -q -i "$host_tar" >/dev/null
  echo "loaded $image ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$image"))"
fi
