#!/usr/bin/env bash
# Installs what building, running and testing Dockroute needs on Debian 12, as root. demo.sh and
# test-all.sh call it first; it installs only what is missing, so a repeat takes about a second
# and prints nothing:
#   system packages; Rust through rustup (if there is no rustup) with the targets for the macOS
#   type-check and the static musl guests; Docker Engine 20.10 (bookworm) and 28 (sid,
#   extracted), and the guest's base rootfs for both CPUs (scripts/docker-env/; the app ships
#   both guest images); for the tests also cargo-fuzz, cargo-nextest, tauri-driver and tauri-cli
#   (packaging) into $DOCKROUTE_TOOLS (see lib.sh), and qemu-user-static, python3-yaml and ruby
#   (the other CPU's guest run under emulation, the macOS workflow and cask checked).
#
#   scripts/setup.sh [--demo]    --demo: only what demo.sh needs (no test tools)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
for_tests=1
case "${1:-}" in
  --demo) for_tests= ;;
  "") ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (sudo)" >&2; exit 1; }

packages=(build-essential curl ca-certificates busybox-static iproute2 python3 clang iptables nftables keyutils
  iperf3 wireguard-go wireguard-tools iputils-ping ethtool nginx-light wrk
  # packaging checks: the other CPU's guest under emulation, the macOS workflow and cask
  qemu-user-static python3-yaml ruby
  # container names: dig for the DNS tests, dnsperf and dnsmasq (the baseline) for the benchmark
  bind9-dnsutils dnsperf dnsmasq-base
  # HTTPS for container names: openssl (forging a leaf, s_time), an NSS database for `ca trust --nss`
  openssl libnss3-tools
  # the Tauri app: build, then run under a virtual X server and drive through WebDriver
  pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  webkit2gtk-driver xvfb xauth dbus dbus-x11 xclip)
# Installed without their Recommends: wireguard-tools recommends wireguard-modules, which only
# kernel images provide, so apt would add a kernel (an RT one, picked first) and make it the
# next boot's default, on a machine whose kernel has had WireGuard built in since Linux 5.6.
# Chromium's Recommends (fonts, a UPower client, …) are not needed to load a page headless.
no_recommends=(wireguard-tools chromium)
# The tests only: a real browser loading https://web.docker/ headless.
[ -z "$for_tests" ] || packages+=(chromium)
mapfile -t missing < <(missing_packages "${packages[@]}")
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  plain=() bare=()
  for p in "${missing[@]}"; do
    if [[ " ${no_recommends[*]} " == *" $p "* ]]; then bare+=("$p"); else plain+=("$p"); fi
  done
  if ((${#bare[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
  fi
  if ((${#plain[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${plain[@]}" >/dev/null
  fi
  # nginx is the load suite's server inside test namespaces, not a service of this machine.
  if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

# Debian's own cargo is too old for the workspace: Rust comes from rustup (for root: ~root/.cargo).
if ! command -v rustup >/dev/null; then
  echo "==> rustup: the stable Rust toolchain (into ${CARGO_HOME:-$HOME/.cargo})"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --no-modify-path --profile minimal --component rustfmt,clippy >/dev/null
fi
components=$(rustup component list --installed)
for component in rustfmt clippy; do
  if [ -n "$for_tests" ] && ! grep -q "^$component-" <<<"$components"; then
    echo "==> rustup component add $component"
    rustup component add "$component"
  fi
done
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
[ -z "$for_tests" ] || targets+=(aarch64-apple-darwin)
installed_targets=$(rustup target list --installed)
for target in "${targets[@]}"; do
  if ! grep -qx "$target" <<<"$installed_targets"; then
    echo "==> rustup target add $target"
    rustup target add "$target"
  fi
done

bash "$here/docker-env/install-engines.sh"
# The guest's base for this machine's CPU and for the other one (the app ships both images).
for arch in amd64 arm64; do bash "$here/docker-env/base-rootfs.sh" "$arch"; done

if [ -n "$for_tests" ]; then
  # crate, the binary it installs, version (tauri-cli installs `cargo-tauri`, and must match the
  # app's Tauri 2)
  while read -r crate bin version; do
    if ! command -v "$bin" >/dev/null; then
      echo "==> cargo install $crate (into $DOCKROUTE_TOOLS)"
      cargo install --quiet --locked --root "$DOCKROUTE_TOOLS" "$crate" --version "$version"
    fi
  done <<'TOOLS'
cargo-fuzz cargo-fuzz *
cargo-nextest cargo-nextest *
tauri-driver tauri-driver *
tauri-cli cargo-tauri ^2
TOOLS
fi
