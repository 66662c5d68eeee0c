#!/usr/bin/env bash
# Builds, once, the base image of the Dockroute guest image: a minimal Debian bookworm rootfs
# (debootstrap --variant=minbase) plus iptables (both iptables-legacy and iptables-nft) and
# iproute2, without apt lists, docs, man pages and locales. It is imported with
# `docker import` (no registry is reachable). Root; needs debootstrap (install-engines.sh).
#   output: $DOCKROUTE_CACHE/base-rootfs.tar (kept; delete it to rebuild). DOCKROUTE_CACHE
#   defaults to $DOCKROUTE_CI_CACHE (.ci/run's cache), then /var/tmp/dockroute-ci.
set -euo pipefail
CACHE=${DOCKROUTE_CACHE:-${DOCKROUTE_CI_CACHE:-/var/tmp/dockroute-ci}}
OUT="$CACHE/base-rootfs.tar"
started=$(date +%s)

[ "$(id -u)" = 0 ] || { echo "base-rootfs.sh: run as root" >&2; exit 1; }
mkdir -p "$CACHE"
# One builder at a time (tests may ask for the image in parallel); the others wait, then find it.
exec 9>"$CACHE/base-rootfs.lock"
flock -w 900 9 || { echo "base-rootfs.sh: another build holds $CACHE/base-rootfs.lock" >&2; exit 1; }
# Cached: nothing to do or say (setup.sh and guest-image/build.sh call this every time).
if [ -s "$OUT" ]; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: run install-engines.sh" >&2; exit 1; }

# The mirror of the machine's own bookworm source (falls back to deb.debian.org).
mirror=$(awk -v RS= '/Suites:[^\n]*bookworm/ && !/security/ {print; exit}' \
  /etc/apt/sources.list.d/debian.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "$CACHE/base-rootfs.XXXXXX")
root="$work/root"
cleanup() {
  # debootstrap mounts proc/sys inside the target; never leave them behind.
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> debootstrap --variant=minbase bookworm (+ iptables, iproute2) from $mirror"
debootstrap --variant=minbase --include=iptables,iproute2 \
  --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log" >&2
  echo "debootstrap failed" >&2
  exit 1
}

# Small: no package lists, caches, docs, man pages, locales or logs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/var/log/* "$root"/tmp/* \
  "$root"/root/.bash_history
# Docker provides these at run time.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
chroot "$root" sh -c 'iptables-legacy --version && iptables-nft --version && ip -V' 2>&1 | grep -v "find runtime libbpf" | sed 's/^/  rootfs: /'

tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$OUT"
echo "base rootfs: $OUT $(du -h "$OUT" | cut -f1) ($(( $(date +%s) - started )) s)"
