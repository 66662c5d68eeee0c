#!/usr/bin/env bash
# Installs the two Docker Engines the Docker end-to-end tests run (root, idempotent, Debian 12):
#   Engine 20.10  bookworm's docker.io, installed normally: /usr/sbin/dockerd
#   Engine 28     Debian sid's docker.io, only *extracted* (never installed) into
#                 $DOCKROUTE_CACHE/docker28/ (…/usr/sbin/dockerd, version in …/VERSION);
#                 it runs with bookworm's containerd and runc.
# No dockerd or containerd is left running or enabled in the root namespace: the tests start
# their own dockerd inside network namespaces (tests-e2e/src/docker/).
# Env: DOCKROUTE_CACHE, defaulting to $DOCKROUTE_CI_CACHE (.ci/run's cache), then /var/tmp/dockroute-ci;
#      DOCKROUTE_DOCKER28_VERSION, an exact sid version (default: whatever sid has).
# Prints nothing when both engines are there already (setup.sh runs it every time).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
D28="$DOCKROUTE_CACHE/docker28"
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
    for u in docker.socket docker.service containerd.service; do
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
packages=(docker.io containerd runc iptables debootstrap busybox-static nftables iproute2)
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
  case " ${missing[*]} " in *" docker.io "* | *" containerd "*) quiet_services ;; esac
fi

# --- 2. Engine 28 from sid, extracted only ----------------------------------------------------
# apt reads sid's package list from a source of its own, in a directory of its own: this
# machine's apt configuration stays as it was (no sid source, no pin), whichever format its
# sources are in. The archive and its key are those of the machine's bookworm entry
# (debian_archive in lib.sh), else deb.debian.org with Debian's archive keyring.
dockerd28=$(find "$D28" -path '*/sbin/dockerd' -o -path '*/bin/dockerd' 2>/dev/null | head -n1 || true)
if [ -z "$dockerd28" ] || [ ! -x "$dockerd28" ] || [ ! -s "$D28/VERSION" ]; then
  installed=1
  archive=$(debian_archive bookworm)
  mirror=${archive%% *} keyring=${archive#* }
  [ "$keyring" != - ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || { echo "no $keyring to check sid's signature with (apt-get install debian-archive-keyring)" >&2; exit 1; }
  step "Engine 28: apt-get download docker.io from sid ($mirror, a private apt list; nothing installed from sid)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/deb"
  echo "deb [signed-by=$keyring] $mirror sid main" >"$work/sid.list"
  # apt fetches as its sandbox user _apt, which needs to reach $work and write the lists and
  # the download.
  chmod 755 "$work"
  if id _apt >/dev/null 2>&1; then chown -R _apt "$work/lists" "$work/cache" "$work/deb"; fi
  SID_APT=("${APT[@]}" -o "Dir::Etc::SourceList=$work/sid.list" -o "Dir::Etc::SourceParts=$work/parts"
    -o "Dir::Etc::Preferences=$work/parts/none" -o "Dir::Etc::PreferencesParts=$work/parts"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  "${SID_APT[@]}" update
  # sid moves on: DOCKROUTE_DOCKER28_VERSION picks an exact version while sid still has it.
  want=docker.io
  [ -z "${DOCKROUTE_DOCKER28_VERSION:-}" ] || want="docker.io=$DOCKROUTE_DOCKER28_VERSION"
  (cd "$work/deb" && "${SID_APT[@]}" download "$want")
  deb=$(ls "$work"/deb/docker.io_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  rm -rf "$D28.tmp"
  mkdir -p "$D28.tmp"
  dpkg -x "$deb" "$D28.tmp"
  echo "$version" >"$D28.tmp/VERSION"
  dpkg-deb -f "$deb" Depends >"$D28.tmp/DEPENDS"
  rm -rf "$D28"
  mv "$D28.tmp" "$D28"
  rm -rf "$work"
  trap - EXIT
  dockerd28=$(find "$D28" -path '*/sbin/dockerd' -o -path '*/bin/dockerd' | head -n1)
  [ -x "$dockerd28" ] || { echo "no dockerd in docker.io $version" >&2; exit 1; }
  echo "extracted docker.io $version into $D28"
  case "$version" in 28.*) ;; *) echo "warning: sid's docker.io is $version, not Engine 28" >&2 ;; esac
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
