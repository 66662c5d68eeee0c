#!/usr/bin/env bash
# Builds, once per CPU, the base image of the Dockroute guest image: a minimal Debian bookworm
# rootfs (debootstrap --variant=minbase) plus iptables (both iptables-legacy and iptables-nft)
# and iproute2, without apt lists, docs, man pages and locales. It is imported with
# `docker import` or written into the image tarball (no registry is reachable). Root; needs
# debootstrap (install-engines.sh).
#   base-rootfs.sh [ARCH]   ARCH: amd64 or arm64, default this machine's (dpkg's name)
#   output: $DOCKROUTE_CACHE/base-rootfs.tar for this machine's CPU, base-rootfs-ARCH.tar for
#   the other one (kept; delete to rebuild). DOCKROUTE_CACHE defaults to $DOCKROUTE_CI_CACHE
#   (.ci/run's cache), then /var/tmp/dockroute-ci.
#
# The other CPU's rootfs cannot run debootstrap's second stage (it runs that CPU's binaries:
# dpkg, maintainer scripts). Its first stage (--foreign) still resolves, downloads and unpacks
# the required packages; the rest are unpacked here, and the maintainer scripts' effects the
# guest relies on are made by hand (foreign_second_stage below). If qemu-user-static is
# installed, the result is smoke-tested by running its iptables and ip under emulation.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
CACHE=$DOCKROUTE_CACHE
host_arch=$(dpkg --print-architecture)
arch=${1:-$host_arch}
case "$arch" in amd64|arm64) ;; *) echo "base-rootfs.sh: unsupported ARCH $arch (amd64 or arm64)" >&2; exit 1 ;; esac
if [ "$arch" = "$host_arch" ]; then OUT="$CACHE/base-rootfs.tar"; else OUT="$CACHE/base-rootfs-$arch.tar"; fi
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

# The mirror of the machine's own bookworm source, in either apt format (else deb.debian.org).
archive=$(debian_archive bookworm)
mirror=${archive%% *}

work=$(mktemp -d "$CACHE/base-rootfs.XXXXXX")
root="$work/root"
cleanup() {
  # debootstrap mounts proc/sys inside the target; never leave them behind.
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

qemu=""
case "$arch" in amd64) qemu=qemu-x86_64-static ;; arm64) qemu=qemu-aarch64-static ;; esac
# Runs a command of the rootfs: natively, or under qemu-user for the other CPU ("" if neither).
in_root() {
  if [ "$arch" = "$host_arch" ]; then
    chroot "$root" "$@"
  elif command -v "$qemu" >/dev/null; then
    cp "$(command -v "$qemu")" "$root/.qemu"
    chroot "$root" /.qemu "$@"
    local rc=$?
    rm -f "$root/.qemu"
    return $rc
  else
    return 127
  fi
}

# What debootstrap's second stage would have done, as far as a container depends on it: every
# package unpacked, users and groups, the directories and links base-files makes, the
# alternatives iptables' and others' postinst scripts register, the time zone, the linker
# cache, dpkg's record of what is installed. Not made: dpkg's per-package file lists, PAM and
# debconf state, systemd unit links (nothing in the container logs in, configures or boots).
foreign_second_stage() {
  local archives="$root/var/cache/apt/archives" pkg deb
  # Unpack the packages the first stage only downloaded; /bin, /sbin, /lib are symlinks into
  # /usr (merged /usr) and must stay so.
  for pkg in $(cat "$root/debootstrap/base"); do
    deb=$(awk -v p="$pkg" '$1 == p {print $2}' "$root/debootstrap/debpaths")
    dpkg-deb --fsys-tarfile "$root$deb" | tar -C "$root" --keep-directory-symlink -xf -
  done
  # dpkg's status: every package debootstrap fetched, installed.
  : >"$root/var/lib/dpkg/status"
  for deb in "$archives"/*.deb; do
    { dpkg-deb -f "$deb" | sed '/^Package:/a Status: install ok installed'; echo; } >>"$root/var/lib/dpkg/status"
  done
  # base-passwd's postinst: the system users and groups; passwd's: their shadow files.
  cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
  cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
  local days=$(( $(date +%s) / 86400 ))
  awk -F: -v d="$days" '{print $1 ":*:" d ":0:99999:7:::"}' "$root/etc/passwd" >"$root/etc/shadow"
  awk -F: '{print $1 ":*::"}' "$root/etc/group" >"$root/etc/gshadow"
  chmod 644 "$root/etc/passwd" "$root/etc/group"
  chgrp "$(awk -F: '$1 == "shadow" {print $3}' "$root/etc/group")" "$root/etc/shadow" "$root/etc/gshadow"
  chmod 640 "$root/etc/shadow" "$root/etc/gshadow"
  # base-files' postinst: its directories and root's dotfiles; with libc-bin's and
  # debianutils': the files they copy into /etc.
  local d
  for d in etc/opt media mnt opt srv usr/local/bin usr/local/etc usr/local/games usr/local/include \
    usr/local/lib usr/local/sbin usr/local/share/man usr/local/src run/mount; do
    install -d -m 755 "$root/$d"
  done
  install -d -m 1777 "$root/run/lock"
  install -d -m 2775 -g "$(awk -F: '$1 == "mail" {print $3}' "$root/etc/group")" "$root/var/mail"
  install -d -m 755 "$root/var/opt"
  rm -rf "$root/var/run" "$root/var/lock"
  ln -s /run "$root/var/run"
  ln -s /run/lock "$root/var/lock"
  ln -sfn ../mail "$root/var/spool/mail"
  ln -sfn share/man "$root/usr/local/man"
  ln -sfn debian "$root/etc/dpkg/origins/default"
  : >"$root/etc/environment"
  : >"$root/etc/subuid"
  : >"$root/etc/subgid"
  install -m 644 "$root/usr/share/base-files/dot.profile" "$root/root/.profile"
  install -m 644 "$root/usr/share/base-files/dot.bashrc" "$root/root/.bashrc"
  cp "$root/usr/share/base-files/profile" "$root/usr/share/base-files/motd" "$root/etc/"
  cp "$root/usr/share/libc-bin/nsswitch.conf" "$root/etc/"
  printf '# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/dash\n/usr/bin/dash\n' \
    >"$root/etc/shells"
  # tzdata's postinst.
  ln -sfn /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
  echo Etc/UTC >"$root/etc/timezone"
  # The alternatives, as the packages' postinst scripts register them (update-alternatives
  # only makes symlinks, so this machine's runs it for the other CPU's tree). iptables-nft is
  # the default (priority 20 over legacy's 10), as in Debian.
  local ua=(update-alternatives --quiet --root "$root" --install)
  local t kind
  for t in iptables ip6tables; do
    for kind in legacy:10 nft:20; do
      "${ua[@]}" "/usr/sbin/$t" "$t" "/usr/sbin/$t-${kind%:*}" "${kind#*:}" \
        --slave "/usr/sbin/$t-restore" "$t-restore" "/usr/sbin/$t-${kind%:*}-restore" \
        --slave "/usr/sbin/$t-save" "$t-save" "/usr/sbin/$t-${kind%:*}-save"
    done
  done
  for t in arptables ebtables; do
    "${ua[@]}" "/usr/sbin/$t" "$t" "/usr/sbin/$t-nft" 20 \
      --slave "/usr/sbin/$t-restore" "$t-restore" "/usr/sbin/$t-nft-restore" \
      --slave "/usr/sbin/$t-save" "$t-save" "/usr/sbin/$t-nft-save"
  done
  "${ua[@]}" /usr/bin/awk awk /usr/bin/mawk 5 --slave /usr/bin/nawk nawk /usr/bin/mawk
  "${ua[@]}" /usr/bin/pager pager /bin/more 50
  "${ua[@]}" /usr/sbin/rmt rmt /usr/sbin/rmt-tar 50
  "${ua[@]}" /usr/bin/which which /usr/bin/which.debianutils 0
  # libc-bin's trigger: the linker cache, written by the rootfs's own ldconfig when it can run.
  in_root /sbin/ldconfig 2>/dev/null || echo "  rootfs: no $qemu: no ld.so.cache (the loader's default paths apply)"
  # What the first stage leaves for the second one.
  rm -rf "$root/debootstrap" "$archives"/*.deb
  if [ -L "$root/proc" ]; then rm "$root/proc" && mkdir -m 555 "$root/proc"; fi
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
}

if [ "$arch" = "$host_arch" ]; then
  echo "==> debootstrap --variant=minbase bookworm (+ iptables, iproute2) from $mirror"
  foreign=()
else
  echo "==> debootstrap --foreign --arch=$arch --variant=minbase bookworm (+ iptables, iproute2) from $mirror"
  foreign=(--foreign "--arch=$arch")
fi
debootstrap "${foreign[@]}" --variant=minbase --include=iptables,iproute2 \
  --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log" >&2
  echo "debootstrap failed" >&2
  exit 1
}
if [ "$arch" != "$host_arch" ]; then
  foreign_second_stage
fi

# Small: no package lists, caches, docs, man pages, locales or logs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/var/log/* "$root"/tmp/* \
  "$root"/root/.bash_history
# Docker provides these at run time.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
# Each tool on its own (under qemu-user a program cannot start another of its CPU). qemu-user
# has no netfilter netlink, so there the nft tools are checked by where the links point.
tools=("/usr/sbin/iptables-legacy --version" "/usr/sbin/ip6tables-legacy --version" "/usr/bin/ip -V")
if [ "$arch" = "$host_arch" ]; then
  tools+=("/usr/sbin/iptables-nft --version" "/usr/sbin/iptables --version" "/usr/sbin/ip6tables --version")
else
  # Follows symlinks inside the rootfs (readlink -f would leave it at the first absolute one).
  resolve() {
    local p=$1 n target
    for n in 1 2 3 4 5 6 7 8; do
      target=$(readlink "$root$p") || break
      case "$target" in /*) p=$target ;; *) p="$(dirname "$p")/$target" ;; esac
    done
    echo "$p"
  }
  for t in iptables ip6tables iptables-save ip6tables-restore; do
    case "$(resolve "/usr/sbin/$t")" in
      /usr/sbin/xtables-nft-multi) ;;
      *) echo "base-rootfs.sh: $t is not iptables-nft in the $arch rootfs" >&2; exit 1 ;;
    esac
  done
  echo "  rootfs ($arch): iptables, ip6tables (-save, -restore) -> xtables-nft-multi"
fi
for tool in "${tools[@]}"; do
  # shellcheck disable=SC2086 # the tool and its argument
  if in_root $tool >"$work/check.log" 2>&1; then
    # (grep exits 1 when it keeps no line: not a failure of the tool)
    { grep -v "find runtime libbpf" "$work/check.log" || true; } | sed "s/^/  rootfs ($arch): /"
  elif [ $? = 127 ] && [ "$arch" != "$host_arch" ]; then
    echo "  rootfs ($arch): not run ($qemu is not installed)"
    break
  else
    cat "$work/check.log" >&2
    echo "base-rootfs.sh: the $arch rootfs does not run $tool" >&2
    exit 1
  fi
done

tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$OUT"
echo "base rootfs ($arch): $OUT $(du -h "$OUT" | cut -f1) ($(( $(date +%s) - started )) s)"
