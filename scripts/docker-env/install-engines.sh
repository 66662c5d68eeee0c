#!/usr/bin/env bash
# Installs the engines the Docker end-to-end tests run (root, idempotent, Debian 12):
#   Engine 20.10  bookworm's docker.io, installed normally: /usr/sbin/dockerd
#   Engine 28     Debian sid's docker.io, only *extracted* (never installed) into
#                 $DOCKROUTE_CACHE/docker28/ (…/usr/sbin/dockerd, version in …/VERSION);
#                 it runs with bookworm's containerd and runc.
#   Podman 4.3    bookworm's podman, netavark 1.4 (iptables) and aardvark-dns, installed
#                 normally: /usr/bin/podman
#   Podman 5      sid's podman, netavark (nftables driver) and aardvark-dns, only extracted into
#                 $DOCKROUTE_CACHE/podman5/ with the sid C library and the few libraries they
#                 need, their ELF interpreter and rpath pointed there (patchelf): sid builds
#                 want a newer glibc than bookworm's. Runs with bookworm's conmon and runc.
# No dockerd, containerd or podman service is left running or enabled in the root namespace:
# the tests start their own inside network namespaces (tests-e2e/src/docker/).
# Env: DOCKROUTE_CACHE, defaulting to $DOCKROUTE_CI_CACHE (.ci/run's cache), then /var/tmp/dockroute-ci;
#      DOCKROUTE_DOCKER28_VERSION, an exact sid version (default: whatever sid has).
# Prints nothing when every engine is there already (setup.sh runs it every time).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
D28="$DOCKROUTE_CACHE/docker28"
P5="$DOCKROUTE_CACHE/podman5"
# What Podman 5 takes from sid besides itself: netavark and aardvark-dns of its release, and
# the libraries the three need that bookworm has too old (a check below runs each).
P5_PACKAGES=(podman netavark aardvark-dns libc6 libgcc-s1 libgpgme45 libassuan9 libgpg-error0 libseccomp2
  libsubid6 libsqlite3-0)
LEGACY_SID_LIST=/etc/apt/sources.list.d/dockroute-sid.sources
LEGACY_SID_PIN=/etc/apt/preferences.d/dockroute-sid
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=300 -o APT::Get::Assume-Yes=true -qq)
started=$(date +%s)
step() { echo "==> $*"; }

[ "$(id -u)" = 0 ] || { echo "install-engines.sh: run as root" >&2; exit 1; }

# Never a dockerd/containerd of the packages in the root namespace. Runs only right after this
# script installed docker.io or containerd: a machine whose own Docker service someone set up
# on purpose is left alone (a warning at the end names a root-namespace dockerd, if any).
quiet_services() {
  if [ -d /run/systemd/system ]; then
    # systemd: the package enables docker.service, docker.socket (socket activation would start
    # dockerd on the first `docker` call) and containerd.service. Stop and disable all three.
    for u in docker.socket docker.service containerd.service podman.socket podman.service podman-restart.service; do
      systemctl disable --now "$u" >/dev/null 2>&1 || true
    done
  fi
  if command -v update-rc.d >/dev/null; then
    for s in docker containerd; do
      if [ -e "/etc/init.d/$s" ]; then update-rc.d "$s" disable >/dev/null 2>&1 || true; fi
    done
  fi
  # Anything the install started anyway: processes of the packaged binaries in the root network
  # namespace that started after this script did. Tests' daemons live in other namespaces.
  root_net=$(readlink /proc/self/ns/net) # this script runs in the root namespace
  boot=$(awk '/^btime/ {print $2}' /proc/stat)
  hz=$(getconf CLK_TCK)
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in /usr/bin/dockerd | /usr/sbin/dockerd | /usr/bin/containerd) ;; *) continue ;; esac
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$root_net" ] || continue
    start_ticks=$(awk '{print $22}' "$p/stat" 2>/dev/null) || continue
    if (( boot + start_ticks / hz >= started - 1 )); then
      pid=${p#/proc/}
      echo "stopping $exe (pid $pid) that the package install started in the root namespace"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do [ -d "$p" ] || break; sleep 0.2; done
      if [ -d "$p" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  done
}

# --- 1. bookworm packages -------------------------------------------------------------------
# podman's own units (podman.socket, podman.service, podman-restart.service) are disabled below.
packages=(docker.io containerd runc iptables debootstrap busybox-static nftables iproute2
  podman netavark aardvark-dns conmon jq patchelf)
mapfile -t missing < <(missing_packages "${packages[@]}")
installed=
if ((${#missing[@]})); then
  installed=1
  step "apt-get install ${missing[*]} (bookworm)"
  # A policy-rc.d answering 101 keeps the maintainer scripts from starting dockerd/containerd
  # (invoke-rc.d and deb-systemd-invoke both honour it). Keep one that is already there.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# dockroute install-engines.sh: no service starts during install\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  cleanup_policy() { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup_policy EXIT
  "${APT[@]}" update
  "${APT[@]}" --no-install-recommends install "${missing[@]}" >/dev/null
  cleanup_policy
  trap - EXIT
  case " ${missing[*]} " in *" docker.io "* | *" containerd "* | *" podman "*) quiet_services ;; esac
fi

# --- 2. Engine 28 and Podman 5 from sid, extracted only --------------------------------------
# apt reads sid's package list from a source of its own, in a directory of its own: this
# machine's apt configuration stays as it was (no sid source, no pin), whichever format its
# sources are in. The archive and its key are those of the machine's bookworm entry
# (debian_archive in lib.sh), else deb.debian.org with Debian's archive keyring.
sid_work=
sid_download() { # NAME PACKAGE...: the .debs of sid's PACKAGEs into $sid_work/NAME
  local name=$1 dir
  shift
  if [ -z "$sid_work" ]; then
    local archive mirror keyring
    archive=$(debian_archive bookworm)
    mirror=${archive%% *} keyring=${archive#* }
    [ "$keyring" != - ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || { echo "no $keyring to check sid's signature with (apt-get install debian-archive-keyring)" >&2; exit 1; }
    sid_work=$(mktemp -d)
    trap 'rm -rf "$sid_work"' EXIT
    mkdir -p "$sid_work/lists/partial" "$sid_work/cache/archives/partial" "$sid_work/parts"
    echo "deb [signed-by=$keyring] $mirror sid main" >"$sid_work/sid.list"
    # apt fetches as its sandbox user _apt, which needs to reach the dir and write the lists and
    # the download.
    chmod 755 "$sid_work"
    if id _apt >/dev/null 2>&1; then chown -R _apt "$sid_work/lists" "$sid_work/cache"; fi
    SID_APT=("${APT[@]}" -o "Dir::Etc::SourceList=$sid_work/sid.list" -o "Dir::Etc::SourceParts=$sid_work/parts"
      -o "Dir::Etc::Preferences=$sid_work/parts/none" -o "Dir::Etc::PreferencesParts=$sid_work/parts"
      -o "Dir::State::Lists=$sid_work/lists" -o "Dir::Cache=$sid_work/cache")
    "${SID_APT[@]}" update
  fi
  dir=$sid_work/$name
  mkdir -p "$dir"
  chmod 755 "$dir"
  if id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
  (cd "$dir" && "${SID_APT[@]}" download "$@")
}

dockerd28=$(find "$D28" -path '*/sbin/dockerd' -o -path '*/bin/dockerd' 2>/dev/null | head -n1 || true)
if [ -z "$dockerd28" ] || [ ! -x "$dockerd28" ] || [ ! -s "$D28/VERSION" ]; then
  installed=1
  step "Engine 28: apt-get download docker.io from sid (a private apt list; nothing installed from sid)"
  # sid moves on: DOCKROUTE_DOCKER28_VERSION picks an exact version while sid still has it.
  want=docker.io
  [ -z "${DOCKROUTE_DOCKER28_VERSION:-}" ] || want="docker.io=$DOCKROUTE_DOCKER28_VERSION"
  sid_download deb "$want"
  deb=$(ls "$sid_work"/deb/docker.io_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  rm -rf "$D28.tmp"
  mkdir -p "$D28.tmp"
  dpkg -x "$deb" "$D28.tmp"
  echo "$version" >"$D28.tmp/VERSION"
  dpkg-deb -f "$deb" Depends >"$D28.tmp/DEPENDS"
  rm -rf "$D28"
  mv "$D28.tmp" "$D28"
  dockerd28=$(find "$D28" -path '*/sbin/dockerd' -o -path '*/bin/dockerd' | head -n1)
  [ -x "$dockerd28" ] || { echo "no dockerd in docker.io $version" >&2; exit 1; }
  echo "extracted docker.io $version into $D28"
  case "$version" in 28.*) ;; *) echo "warning: sid's docker.io is $version, not Engine 28" >&2 ;; esac
fi

if [ ! -x "$P5/usr/bin/podman" ] || [ ! -s "$P5/VERSION" ]; then
  installed=1
  step "Podman 5: apt-get download ${P5_PACKAGES[*]} from sid (extracted, never installed)"
  sid_download p5 "${P5_PACKAGES[@]}"
  rm -rf "$P5.tmp"
  mkdir -p "$P5.tmp"
  for deb in "$sid_work"/p5/*.deb; do dpkg -x "$deb" "$P5.tmp"; done
  version=$(dpkg-deb -f "$(ls "$sid_work"/p5/podman_*.deb)" Version)
  case "$(dpkg --print-architecture)" in
    amd64) lib=$P5/usr/lib/x86_64-linux-gnu loader=ld-linux-x86-64.so.2 ;;
    arm64) lib=$P5/usr/lib/aarch64-linux-gnu loader=ld-linux-aarch64.so.1 ;;
    *) echo "Podman 5: unsupported CPU $(dpkg --print-architecture)" >&2; exit 1 ;;
  esac
  # The final path goes into the binaries: they are patched for where they will live.
  for bin in usr/bin/podman usr/lib/podman/netavark usr/lib/podman/aardvark-dns; do
    patchelf --set-interpreter "$lib/$loader" --force-rpath --set-rpath "$lib" "$P5.tmp/$bin"
  done
  echo "$version" >"$P5.tmp/VERSION"
  rm -rf "$P5"
  mv "$P5.tmp" "$P5"
  for bin in usr/bin/podman usr/lib/podman/netavark usr/lib/podman/aardvark-dns; do
    "$P5/$bin" --version >/dev/null || { echo "$P5/$bin does not run" >&2; rm -rf "$P5"; exit 1; }
  done
  echo "extracted podman $version into $P5"
fi
if [ -n "$sid_work" ]; then
  rm -rf "$sid_work"
  trap - EXIT
fi

# Earlier versions of this script added a sid source and a -1 pin to the machine's apt
# configuration; the private list above replaced them. Each file is removed only if it is
# still the one this script wrote (its first line says so).
for f in "$LEGACY_SID_LIST" "$LEGACY_SID_PIN"; do
  if [ -f "$f" ] && head -n1 "$f" | grep -q '^# .*Dockroute'; then
    rm -f "$f"
    echo "removed $f (an earlier install-engines.sh wrote it; sid is no longer an apt source here)"
  fi
done

# --- 3. report (what was installed; a warning about a root-namespace dockerd every time) -----
if [ -n "$installed" ]; then
  echo "Engine 20: /usr/sbin/dockerd: $(/usr/sbin/dockerd --version)"
  echo "Engine 28: $dockerd28: $("$dockerd28" --version)"
  echo "Podman 4: /usr/bin/podman: $(/usr/bin/podman --version)"
  echo "Podman 5: $P5/usr/bin/podman: $("$P5/usr/bin/podman" --version)"
  echo "containerd: $(containerd --version)"
  echo "runc: $(runc --version | head -n1)"
  echo "install-engines.sh done in $(( $(date +%s) - started )) s"
fi
root_net=$(readlink /proc/self/ns/net)
for p in /proc/[0-9]*; do
  case "$(readlink "$p/exe" 2>/dev/null)" in /usr/bin/dockerd | /usr/sbin/dockerd) ;; *) continue ;; esac
  if [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$root_net" ]; then
    echo "warning: a dockerd (pid ${p#/proc/}) runs in the root network namespace; the tests do not need it" >&2
  fi
done
