#!/usr/bin/env bash
# The set-up on a machine that has never seen our packages: a minimal Debian 12 (debootstrap
# --variant=minbase, a tarball made once) is unpacked into a fresh directory, and the README's
# commands run their set-up there as a new user would run them:
#   1. as root, without sudo (a minimal Debian has none): `scripts/setup.sh --demo` (what
#      `scripts/demo.sh` runs first), then `scripts/setup.sh` (what `scripts/test-all.sh` runs);
#   2. both again, through sudo from an ordinary account: they must print nothing (done).
# It fails unless dockerd, containerd, runc, podman (with netavark and aardvark-dns) and
# debootstrap are installed by dpkg, Engine 28 and Podman 5 are extracted into the chroot's own
# cache (and Podman 5 runs), both base rootfs tarballs exist, no kernel was
# installed, and no service the packages bring was left running.
#
# Inside: this checkout (read-only at /dockroute); what a machine of this kind comes with
# (DESIGN.md): its Rust toolchain (~/.rustup and ~/.cargo) and cargo-nextest, read-only, its
# certificate authorities and apt's proxy and date-check settings; the cargo-installed tools of
# $DOCKROUTE_TOOLS (read-only where setup.sh looks for them: they take half an hour to build);
# /proc, /sys, /dev, a copy of resolv.conf, and a policy-rc.d that keeps maintainer scripts
# from starting services (as in any chroot). Everything runs in a mount namespace of its own, on
# a tmpfs mounted there: when the check ends, however it ends (a failure, Ctrl-C, a kill), the
# namespace goes and with it every mount and the whole tree; only its empty mount point is
# left for this script (or the next run) to remove.
#
# Cached under $DOCKROUTE_CACHE/fresh-machine/: the minbase tarball, and apt's downloads and
# package lists (so a repeat does not download ~600 MB again). Root; needs debootstrap
# (setup.sh installs it). Prints the time of each part.
#   scripts/fresh-machine.sh [--keep] [--demo]
#     --keep  the tree on disk instead, left for a look (its path is printed)
#     --demo  then the README's first command itself, `scripts/demo.sh`, in the fresh machine
#             (network namespaces and a dockerd on this machine's kernel: run it under the e2e
#             lock). It builds into $DOCKROUTE_CACHE/fresh-machine/demo-target and uses this
#             machine's ~/.cargo read-write (cargo locks and may fetch there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
keep= demo=
if [ "${1:-}" != --inside ]; then
  for arg in "$@"; do
    case "$arg" in
      --keep) keep=1 ;;
      --demo) demo=1 ;;
      *) echo "usage: $0 [--keep] [--demo]" >&2; exit 2 ;;
    esac
  done
fi
[ "$(id -u)" = 0 ] || { echo "fresh-machine.sh: run as root" >&2; exit 1; }
FRESH="$DOCKROUTE_CACHE/fresh-machine"
TARBALL="$FRESH/bookworm-minbase.tar"
USER_NAME=newcomer
now() { date +%s%N; }
secs() { echo "$(( ($(now) - $1) / 1000000000 )).$(( ($(now) - $1) / 100000000 % 10 ))"; }

# --- inside the mount namespace: unpack, mount, run, check (`--inside ROOT [keep]`) ---------
if [ "${1:-}" = --inside ]; then
  root=$2 keep=${3:-} demo=${4:-}
  mount --make-rprivate /
  [ -n "$keep" ] || mount -t tmpfs -o mode=755 fresh-machine "$root"
  t=$(now)
  tar --numeric-owner --xattrs -C "$root" -xf "$TARBALL"
  # What every chroot build system adds: no service starts from a maintainer script, names
  # resolve.
  printf '#!/bin/sh\n# fresh-machine.sh: no service starts in this chroot\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  cp -L /etc/hosts "$root/etc/hosts" # sudo looks its host name up
  # The machine's own certificate authorities (ca-certificates adds them when it is installed).
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -rL /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  # The archive is reached the way this machine's apt reaches it: its proxies and its date
  # checks (a mirror whose Release files must not be judged by their Valid-Until) come along.
  { apt-config dump || true; } |
    grep -E '^Acquire::(Check-Valid-Until|Check-Date|Max-ValidTime|Retries|(https?|ftp)::Proxy)( |::)' \
      >"$root/etc/apt/apt.conf.d/99fresh-machine-host-acquire" || true
  # The tree is thrown away: dpkg need not sync each file to disk, nor unpack documentation, and
  # man-db need not index pages (what is installed, and what its scripts do, stay the same).
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fresh-machine-unsafe-io"
  printf 'path-exclude /usr/share/%s/*\n' doc man info locale >"$root/etc/dpkg/dpkg.cfg.d/fresh-machine-no-docs"
  echo "man-db man-db/auto-update boolean false" | chroot "$root" debconf-set-selections
  echo "==> a fresh Debian 12 (minbase) in $root$([ -n "$keep" ] || echo " (a tmpfs)") ($(secs "$t") s to unpack)"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=755 tmpfs "$root/run"
  ro_bind() { mkdir -p "$root$2" && mount --bind "$1" "$root$2" && mount -o remount,bind,ro "$root$2"; }
  ro_bind "$repo" /dockroute
  ro_bind "${RUSTUP_HOME:-$HOME/.rustup}" /root/.rustup
  if [ -n "$demo" ]; then
    mkdir -p "$root/root/.cargo" "$FRESH/demo-target" "$root/var/tmp/demo-target"
    mount --bind "${CARGO_HOME:-$HOME/.cargo}" "$root/root/.cargo"
    mount --bind "$FRESH/demo-target" "$root/var/tmp/demo-target"
  else
    ro_bind "${CARGO_HOME:-$HOME/.cargo}" /root/.cargo
  fi
  # Where setup.sh looks by default: sudo's reset environment carries no DOCKROUTE_TOOLS.
  ro_bind "$DOCKROUTE_TOOLS" /var/tmp/dockroute-ci/tools
  # What a machine of this kind comes with besides rustup (DESIGN.md: cargo-nextest).
  nextest=$(command -v cargo-nextest || true)
  if [ -n "$nextest" ] && [ "$nextest" != "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-nextest" ]; then
    touch "$root$nextest" && mount --bind "$nextest" "$root$nextest" && mount -o remount,bind,ro "$root$nextest"
  fi
  mkdir -p "$FRESH/apt-archives" "$FRESH/apt-lists"
  mount --bind "$FRESH/apt-archives" "$root/var/cache/apt/archives"
  mount --bind "$FRESH/apt-lists" "$root/var/lib/apt/lists"
  in_root() { # a login-like environment: nothing of ours leaks in but the tools' path
    chroot "$root" env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  }
  fail() { echo "FAIL: $*" >&2; exit 1; }

  echo "==> 1. as root, no sudo: scripts/setup.sh --demo, then scripts/setup.sh (a failure prints its log's end)"
  for args in --demo ""; do
    t=$(now)
    log="$root/var/log/dockroute-setup-${args#--}.log"
    [ -n "$args" ] || log="$root/var/log/dockroute-setup-tests.log"
    if ! in_root bash -c "cd /dockroute && scripts/setup.sh $args" >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      fail "scripts/setup.sh${args:+ $args} failed in the fresh machine"
    fi
    echo "    scripts/setup.sh ${args:-(tests)}: $(secs "$t") s, $(grep -c '^==> ' "$log") steps"
  done
  for pkg in docker.io containerd runc debootstrap podman netavark aardvark-dns conmon; do
    status=$(in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || fail "$pkg is not installed ($status)"
  done
  # A set-up never installs a kernel (it would become the next boot's default).
  kernels=$(in_root dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'linux-image*' 2>/dev/null | awk '$1 == "ii" {print $2}' || true)
  [ -z "$kernels" ] || fail "the set-up installed a kernel: $kernels"
  for bin in /usr/sbin/dockerd /usr/bin/containerd /usr/sbin/runc /usr/sbin/debootstrap /usr/bin/podman; do
    [ -x "$root$bin" ] || fail "$bin is missing"
  done
  cache=$root/var/tmp/dockroute-ci
  case "$(cat "$cache/docker28/VERSION" 2>/dev/null)" in 28.*) ;; *) fail "no Engine 28 in the fresh machine's cache" ;; esac
  [ -x "$cache/docker28/usr/sbin/dockerd" ] || fail "no Engine 28 dockerd"
  case "$(cat "$cache/podman5/VERSION" 2>/dev/null)" in 5.*) ;; *) fail "no Podman 5 in the fresh machine's cache" ;; esac
  p5=$(in_root /var/tmp/dockroute-ci/podman5/usr/bin/podman --version 2>&1) || fail "Podman 5 does not run: $p5"
  for tar in base-rootfs.tar base-rootfs-arm64.tar; do
    [ -s "$cache/$tar" ] || fail "no $tar in the fresh machine's cache"
  done
  echo "ok: dpkg has docker.io $(in_root dpkg-query -W -f='${Version}' docker.io), containerd, runc, debootstrap," \
    "podman $(in_root dpkg-query -W -f='${Version}' podman);" \
    "Engine 28 $(cat "$cache/docker28/VERSION") and Podman 5 $(cat "$cache/podman5/VERSION") extracted; both base rootfs tarballs"

  echo "==> 2. again, through sudo from an ordinary account: nothing to do, nothing printed"
  out=$(in_root bash -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null &&
    useradd --create-home --shell /bin/bash $USER_NAME &&
    echo '$USER_NAME ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/$USER_NAME" 2>&1) || { echo "$out" >&2; fail "cannot set up sudo"; }
  for args in --demo ""; do
    t=$(now)
    out=$(in_root su --login "$USER_NAME" -c "cd /dockroute && sudo scripts/setup.sh $args" 2>&1) ||
      { echo "$out" >&2; fail "sudo scripts/setup.sh${args:+ $args} failed"; }
    [ -z "$out" ] || { echo "$out" >&2; fail "sudo scripts/setup.sh${args:+ $args} found something to do"; }
    echo "    sudo scripts/setup.sh ${args:-(tests)}: nothing to do ($(secs "$t") s)"
  done

  # policy-rc.d kept every service down; anything running from the tree now was left behind.
  left=()
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && left+=("${p#/proc/}:$(tr '\0' ' ' <"$p/cmdline")")
  done
  ((${#left[@]} == 0)) || fail "processes left running in the fresh machine: ${left[*]}"
  echo "ok: no process left running in the fresh machine"

  if [ -n "$demo" ]; then
    echo "==> 3. the README's first command in the fresh machine, as root: scripts/demo.sh"
    t=$(now)
    log="$root/var/log/dockroute-demo.log"
    if ! in_root bash -c "cd /dockroute && CARGO_TARGET_DIR=/var/tmp/demo-target scripts/demo.sh" >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      fail "scripts/demo.sh failed in the fresh machine"
    fi
    grep -E '^(==>|demo ok)|web.docker ->|hello from' "$log" | sed 's/^/    /'
    echo "    scripts/demo.sh: $(secs "$t") s"
    left=()
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && left+=("${p#/proc/}:$(tr '\0' ' ' <"$p/cmdline")")
    done
    ((${#left[@]} == 0)) || fail "processes left running after the demo: ${left[*]}"
  fi
  exit 0
fi

# --- outside: the tarball, the tree, the namespace, and the teardown -----------------------
command -v debootstrap >/dev/null || { echo "fresh-machine.sh: no debootstrap (run scripts/setup.sh)" >&2; exit 1; }
for t in cargo-fuzz tauri-driver cargo-tauri; do
  [ -x "$DOCKROUTE_TOOLS/bin/$t" ] || { echo "fresh-machine.sh: no $t in $DOCKROUTE_TOOLS (run scripts/setup.sh)" >&2; exit 1; }
done
mkdir -p "$FRESH"
exec 9>"$FRESH/lock"
flock -w 1800 9 || { echo "fresh-machine.sh: another run holds $FRESH/lock" >&2; exit 1; }
started=$(now)

# Removes a tree only when nothing is mounted below it (a mount there would be a host
# directory: never delete through it), and only within one file system.
remove_tree() {
  local tree=$1
  if awk -v r="$tree" '$2 == r || index($2, r "/") == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    echo "fresh-machine.sh: something is still mounted below $tree; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$tree"
}
kill_in_tree() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  return 0
}
# Trees of runs that were killed (the lock says no run is active).
for stale in "$FRESH"/root.*; do
  [ -d "$stale" ] || continue
  kill_in_tree "$stale"
  remove_tree "$stale" && echo "removed $stale, left by an interrupted run"
done

if [ ! -s "$TARBALL" ]; then
  t=$(now)
  archive=$(debian_archive bookworm)
  echo "==> debootstrap --variant=minbase bookworm (once; cached as $TARBALL)"
  tmp=$(mktemp -d "$FRESH/debootstrap.XXXXXX")
  if ! debootstrap --variant=minbase bookworm "$tmp/root" "${archive%% *}" >"$tmp/log" 2>&1; then
    tail -n 30 "$tmp/log" >&2
    awk -v r="$tmp" 'index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
    remove_tree "$tmp"
    exit 1
  fi
  awk -v r="$tmp" 'index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  # debootstrap keeps the packages it downloaded: not part of an installed system.
  rm -f "$tmp"/root/var/cache/apt/archives/*.deb
  tar --numeric-owner --xattrs -C "$tmp/root" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
  remove_tree "$tmp"
  echo "    minbase tarball: $(du -h "$TARBALL" | cut -f1) in $(secs "$t") s"
fi

root=$(mktemp -d "$FRESH/root.XXXXXX")
chmod 755 "$root"
binfmt_before=$(ls /proc/sys/fs/binfmt_misc 2>/dev/null || true)
teardown() {
  local status=$?
  set +e
  kill_in_tree "$root"
  if [ -n "$keep" ]; then
    echo "kept the fresh machine's tree: $root (remove it with: rm -rf --one-file-system $root)"
  else
    remove_tree "$root" # the empty mount point: the tree went with the namespace
  fi
  if [ "$(ls /proc/sys/fs/binfmt_misc 2>/dev/null || true)" != "$binfmt_before" ]; then
    echo "FAIL: the kernel's binfmt_misc entries changed during the check" >&2
    status=1
  fi
  echo "fresh machine: $([ $status = 0 ] && echo ok || echo FAILED) in $(secs "$started") s"
  exit $status
}
trap teardown EXIT
trap 'exit 130' INT TERM
unshare --mount --propagation private -- bash "$here/fresh-machine.sh" --inside "$root" "$keep" "$demo"
