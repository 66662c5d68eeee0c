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
SID_LIST=/etc/apt/sources.list.d/dockroute-sid.sources
SID_PIN=/etc/apt/preferences.d/dockroute-sid
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
  # With the sid source present (after a first run) its -1 pin keeps every package on bookworm.
  "${APT[@]}" --no-install-recommends install "${missing[@]}" >/dev/null
  cleanup_policy
  trap - EXIT
  case " ${missing[*]} " in *" docker.io "* | *" containerd "*) quiet_services ;; esac
fi

# --- 3. Engine 28 from sid, extracted only ---------------------------------------------------
dockerd28=$(find "$D28" -path '*/sbin/dockerd' -o -path '*/bin/dockerd' 2>/dev/null | head -n1 || true)
if [ -z "$dockerd28" ] || [ ! -x "$dockerd28" ] || [ ! -s "$D28/VERSION" ]; then
  installed=1
  step "Engine 28: apt source for sid (pinned to -1), apt-get download docker.io/sid"
  # Derive the sid source from the main Debian stanza (not -security) of debian.sources.
  src=/etc/apt/sources.list.d/debian.sources
  [ -r "$src" ] || { echo "no $src to derive the sid source from" >&2; exit 1; }
  stanza=$(awk -v RS= '/Suites:[^\n]*bookworm/ && !/debian-security/ && !/Suites:[^\n]*security/ {print; exit}' "$src")
  uris=$(printf '%s\n' "$stanza" | sed -n 's/^URIs:[[:space:]]*//p' | head -n1)
  keyring=$(printf '%s\n' "$stanza" | sed -n 's/^Signed-By:[[:space:]]*//p' | head -n1)
  [ -n "$uris" ] || { echo "no URIs in the bookworm stanza of $src" >&2; exit 1; }
  {
    echo "# Added by Dockroute scripts/docker-env/install-engines.sh: only to download docker.io"
    echo "# (Engine 28). Pinned to -1 in $SID_PIN, so nothing is ever installed from it."
    echo "Types: deb"
    echo "URIs: $uris"
    echo "Suites: sid"
    echo "Components: main"
    [ -z "$keyring" ] || echo "Signed-By: $keyring"
  } >"$SID_LIST.tmp"
  printf '%s\n' "# Dockroute: never install from sid (install-engines.sh only downloads docker.io)" \
    "Package: *" "Pin: release n=sid" "Pin-Priority: -1" >"$SID_PIN"
  mv "$SID_LIST.tmp" "$SID_LIST"
  "${APT[@]}" update
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt downloads as its sandbox user _apt, which needs to write there.
  if id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
  # sid moves on: DOCKROUTE_DOCKER28_VERSION picks an exact version while sid still has it.
  want=docker.io/sid
  [ -z "${DOCKROUTE_DOCKER28_VERSION:-}" ] || want="docker.io=$DOCKROUTE_DOCKER28_VERSION"
  (cd "$work" && "${APT[@]}" download "$want")
  deb=$(ls "$work"/docker.io_*.deb)
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

# --- 4. report (what was installed; a warning about a root-namespace dockerd every time) -----
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
