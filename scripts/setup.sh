#!/usr/bin/env bash
# Installs what building and testing Dockroute needs on Debian 12 (run as root, idempotent):
# system packages, the macOS target for the type-check, and cargo-fuzz.
set -euo pipefail
TOOLS=${DOCKROUTE_TOOLS:-$HOME/.cargo}

packages=(busybox-static iproute2 python3 clang iptables keyutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx aarch64-apple-darwin; then
  echo "==> rustup target add aarch64-apple-darwin"
  rustup target add aarch64-apple-darwin
fi

if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  echo "==> cargo install cargo-fuzz (into $TOOLS)"
  cargo install --locked --root "$TOOLS" cargo-fuzz
fi
echo "setup done"
