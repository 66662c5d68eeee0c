#!/usr/bin/env bash
# Installs what building and testing Dockroute needs on Debian 12 (run as root, idempotent):
# system packages, Docker Engine 20.10 (bookworm) and 28 (sid, extracted), the guest's base
# rootfs (both CPUs), the Rust targets (macOS type-check, static musl guests), cargo-fuzz, and for
# the app WebKitGTK (build), Xvfb + WebKitWebDriver + tauri-driver (WebDriver tests), tauri-cli
# (packaging).
set -euo pipefail
TOOLS=${DOCKROUTE_TOOLS:-$HOME/.cargo}

packages=(busybox-static iproute2 python3 clang iptables nftables keyutils iperf3 wireguard-go wireguard-tools iputils-ping ethtool
  # packaging: the other CPU's guest run under emulation, the macOS workflow and cask checked
  qemu-user-static python3-yaml ruby
  # the Tauri app: build, then run under a virtual X server and drive through WebDriver
  pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  webkit2gtk-driver xvfb xauth dbus dbus-x11 xclip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for target in aarch64-apple-darwin x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  if ! rustup target list --installed | grep -qx "$target"; then
    echo "==> rustup target add $target"
    rustup target add "$target"
  fi
done

here=$(dirname "$0")
bash "$here/docker-env/install-engines.sh"
# The guest's base for this machine's CPU and for the other one (the app ships both images).
for arch in amd64 arm64; do bash "$here/docker-env/base-rootfs.sh" "$arch"; done

if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  echo "==> cargo install cargo-fuzz (into $TOOLS)"
  cargo install --locked --root "$TOOLS" cargo-fuzz
fi
if [ ! -x "$TOOLS/bin/cargo-tauri" ]; then
  echo "==> cargo install tauri-cli (into $TOOLS)"
  cargo install --locked --root "$TOOLS" tauri-cli --version '^2'
fi
if [ ! -x "$TOOLS/bin/tauri-driver" ]; then
  echo "==> cargo install tauri-driver (into $TOOLS)"
  cargo install --locked --root "$TOOLS" tauri-driver
fi
echo "setup done"
