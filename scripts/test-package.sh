#!/usr/bin/env bash
# Proves the .deb that scripts/package.sh built (root; creates the network namespace "dr-pkg",
# so run it where no other end-to-end test runs: test-all.sh does, or under the e2e lock):
#  1. it holds the app, the helper, the systemd unit, a desktop entry, maintainer scripts, and
#     the guest image tarballs for both CPUs, each an image whose config says its CPU and
#     whose layers match the config (the amd64 guest runs here, the arm64 one under
#     qemu-user when qemu-user-static is installed);
#  2. the packaged helper, extracted into a clean root and started with no config at all (in
#     the namespace, --config pointing into that root), writes the default config (0644, its
#     directory 0755, no `addr` pin) and answers `dockroute-helper status`;
#  3. the maintainer scripts, run in a chroot of the guest's Debian base with a recording
#     systemctl, create the `dockroute` group and enable the unit, and purge removes the
#     group only if they created it.
#   CARGO_TARGET_DIR  where package.sh built (default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
CACHE=${DOCKROUTE_CACHE:-${DOCKROUTE_CI_CACHE:-/var/tmp/dockroute-ci}}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
deb="$CARGO_TARGET_DIR/release/bundle/deb/Dockroute_${version}_$(dpkg --print-architecture).deb"
NS=dr-pkg
[ "$(id -u)" = 0 ] || { echo "test-package.sh: run as root" >&2; exit 1; }
[ -s "$deb" ] || { echo "test-package.sh: $deb missing: run scripts/package.sh" >&2; exit 1; }
work=$(mktemp -d /var/tmp/dr-pkg-test.XXXXXX)
helper_pid=""
cleanup() {
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

echo "==> 1. contents of $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{sub(/^\.\//, "", $6); print $6}' >"$work/files"
for f in usr/bin/dockroute usr/bin/dockroute-helper usr/lib/systemd/system/dockroute-helper.service \
  usr/share/applications/Dockroute.desktop "usr/lib/Dockroute/dockroute-guest-$version-amd64.tar" \
  "usr/lib/Dockroute/dockroute-guest-$version-arm64.tar"; do
  grep -qx "$f" "$work/files" || fail "$f is not in the package"
done
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
for s in postinst prerm postrm; do [ -x "$work/control/$s" ] || fail "no $s maintainer script"; done
grep -q '^Depends:.*iproute2' "$work/control/control" || fail "the package does not depend on iproute2"
ok "app, helper, unit, desktop entry, guest tarballs for amd64 and arm64, maintainer scripts"

root="$work/root"
dpkg-deb -x "$deb" "$root"
cmp -s "$root/usr/lib/systemd/system/dockroute-helper.service" packaging/linux/dockroute-helper.service ||
  fail "the packaged unit is not packaging/linux/dockroute-helper.service"
for arch in amd64 arm64; do
  python3 - "$root/usr/lib/Dockroute/dockroute-guest-$version-$arch.tar" "$arch" "dockroute-guest:$version" \
    "$work/guest-$arch" <<'PY'
import hashlib, json, sys, tarfile
path, arch, tag, binary_out = sys.argv[1:]
with tarfile.open(path) as t:
    (manifest,) = json.load(t.extractfile("manifest.json"))
    config = json.load(t.extractfile(manifest["Config"]))
    assert manifest["RepoTags"] == [tag], manifest["RepoTags"]
    assert (config["os"], config["architecture"]) == ("linux", arch), (config["os"], config["architecture"])
    diff_ids = ["sha256:" + hashlib.sha256(t.extractfile(l).read()).hexdigest() for l in manifest["Layers"]]
    assert diff_ids == config["rootfs"]["diff_ids"], "layers do not match the config's diff_ids"
    entry = config["config"]["Entrypoint"][0].lstrip("/")
    with tarfile.open(fileobj=t.extractfile(manifest["Layers"][-1])) as top:
        open(binary_out, "wb").write(top.extractfile(entry).read())
    with tarfile.open(fileobj=t.extractfile(manifest["Layers"][0])) as base:
        names = set(base.getnames())
        for tool in ("./usr/sbin/xtables-legacy-multi", "./usr/sbin/xtables-nft-multi", "./usr/bin/ip"):
            assert tool in names, f"{tool} missing from the base layer"
print(f"ok: {path.rsplit('/', 1)[-1]}: {tag}, linux/{arch}, {len(diff_ids)} layers matching the config")
PY
  chmod +x "$work/guest-$arch"
done
"$work/guest-amd64" --version | grep -qx "dockroute-guest $version" || fail "the amd64 guest does not run"
ok "the amd64 guest runs: $("$work/guest-amd64" --version)"
if command -v qemu-aarch64-static >/dev/null; then
  out=$(qemu-aarch64-static "$work/guest-arm64" --version) || fail "the arm64 guest does not run under qemu"
  [ "$out" = "dockroute-guest $version" ] || fail "the arm64 guest says $out"
  ok "the arm64 guest runs under qemu-user: $out"
else
  echo "skipped: running the arm64 guest (qemu-user-static not installed)"
fi

echo "==> 2. the packaged helper from nothing (namespace $NS)"
conf="$root/etc/dockroute/dockroute.conf" sock="$root/run/dockroute.sock"
[ ! -e "$root/etc/dockroute" ] || fail "the package ships /etc/dockroute; the helper should make it"
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "$root/run"
ip netns exec "$NS" "$root/usr/bin/dockroute-helper" run --config "$conf" --socket "$sock" 2>"$work/helper.log" &
helper_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$work/helper.log" >&2; fail "the helper did not come up"; }
"$root/usr/bin/dockroute-helper" status --socket "$sock" >"$work/status" || { cat "$work/helper.log" >&2; fail "status"; }
ok "status answered: $(head -n1 "$work/status")"
[ "$(stat -c %a "$conf")" = 644 ] && [ "$(stat -c %a "$root/etc/dockroute")" = 755 ] || fail "modes of the written config"
grep -qx "port 2511" "$conf" && ! grep -q "^addr" "$conf" || fail "the written config: $(cat "$conf")"
[ "$(stat -c %a "$root/etc/dockroute/dockroute.secret")" = 600 ] || fail "the secret's mode"
grep -q "did not exist: wrote the default config" "$work/helper.log" || fail "the helper did not say it wrote the config"
ok "wrote $conf (0644, directory 0755, no addr pin) and the secret (0600)"
kill "$helper_pid"
wait "$helper_pid" || true
helper_pid=""
[ ! -e "$sock" ] || fail "the helper left its socket behind"

echo "==> 3. maintainer scripts in a chroot"
bash scripts/docker-env/base-rootfs.sh >/dev/null
chroot_root="$work/chroot"
# One run of a maintainer script in a fresh copy of the Debian base, systemd "running" or not.
fresh_root() {
  rm -rf "$chroot_root"
  mkdir -p "$chroot_root"
  tar -xf "$CACHE/base-rootfs.tar" -C "$chroot_root"
  cp "$work/control/postinst" "$work/control/prerm" "$work/control/postrm" "$chroot_root/tmp/"
  printf '#!/bin/sh\necho "$*" >>/tmp/systemctl.calls\n' >"$chroot_root/usr/local/sbin/systemctl"
  chmod +x "$chroot_root/usr/local/sbin/systemctl"
  if [ "$1" = systemd ]; then mkdir -p "$chroot_root/run/systemd/system"; fi
}
in_chroot() { chroot "$chroot_root" env PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
calls() { if [ -f "$chroot_root/tmp/systemctl.calls" ]; then tr '\n' ';' <"$chroot_root/tmp/systemctl.calls"; fi; }
has_group() { in_chroot getent group dockroute >/dev/null; }

fresh_root systemd
has_group && fail "the base already has a dockroute group"
in_chroot /tmp/postinst configure
has_group || fail "postinst did not create the group"
[ -d "$chroot_root/etc/dockroute" ] || fail "postinst did not create /etc/dockroute"
[ "$(calls)" = "daemon-reload;enable dockroute-helper.service;restart dockroute-helper.service;" ] ||
  fail "postinst ran systemctl $(calls)"
in_chroot /tmp/postinst configure 1.0 # an upgrade
[ "$(grep -c created-group "$chroot_root/var/lib/dockroute/package.state")" = 1 ] || fail "an upgrade recorded the group twice"
: >"$chroot_root/tmp/systemctl.calls"
in_chroot /tmp/prerm remove
in_chroot /tmp/postrm remove
[ "$(calls)" = "disable --now dockroute-helper.service;daemon-reload;" ] || fail "prerm/postrm ran systemctl $(calls)"
has_group || fail "a plain remove took the group"
echo "port 2511" >"$chroot_root/etc/dockroute/dockroute.conf"
echo "00" >"$chroot_root/etc/dockroute/dockroute.secret"
echo "{}" >"$chroot_root/etc/dockroute/dockroute.share.json"
in_chroot /tmp/postrm purge
has_group && fail "purge left the group postinst created"
[ ! -e "$chroot_root/var/lib/dockroute" ] && [ ! -e "$chroot_root/etc/dockroute" ] || fail "purge left files behind"
ok "with systemd: group created, unit enabled and restarted, disabled on remove; purge removed group and config"

fresh_root no-systemd
in_chroot groupadd --system dockroute
in_chroot /tmp/postinst configure
[ -z "$(calls)" ] || fail "postinst ran systemctl without systemd: $(calls)"
in_chroot /tmp/prerm remove
in_chroot /tmp/postrm purge
has_group || fail "purge removed an admin's own dockroute group"
ok "without systemd: no systemctl; an existing dockroute group survives purge"
echo "package test passed"
