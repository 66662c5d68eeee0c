#!/usr/bin/env bash
# Tests the set-up's shell functions (scripts/lib.sh) the way setup.sh and the engine and rootfs
# scripts use them: under `set -euo pipefail`, where a command failing inside `$(…)`, `<(…)` or a
# pipeline silently changes the answer or ends the script.
#   missing_packages  against this machine's real dpkg-query (a package dpkg never knew, one it
#                     has), then against dpkg-query outputs recorded on Debian 12 for the states
#                     that are not "installed", and with no dpkg-query at all;
#   debian_archive    against apt source files in both formats, as the Debian 12 installer,
#                     debootstrap and Debian's cloud images write them.
# No root needed; nothing outside a temporary directory is written.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() { # name, expected, actual
  if [ "$2" == "$3" ]; then
    echo "ok: $1"
  else
    printf 'FAIL: %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3" >&2
    failures=$((failures + 1))
  fi
}
lines() { printf '%s\n' "$@"; }

# --- missing_packages ----------------------------------------------------------------------
never=dockroute-test-no-such-package
check "a package dpkg never knew is missing, the installed ones are not (real dpkg-query, set -euo pipefail)" \
  "$(lines $never ${never}2)" "$(bash -euo pipefail -c ". scripts/lib.sh; missing_packages bash $never dpkg ${never}2")"
# The way setup.sh, install-engines.sh and load.sh read it.
mapfile -t missing < <(missing_packages coreutils $never)
check "read through mapfile and a process substitution" "$never" "${missing[*]}"
check "nothing missing prints nothing" "" "$(missing_packages bash dpkg)"

# dpkg-query's answers for packages that are not installed, as Debian 12's dpkg 1.21 prints them
# (`dpkg-query -W -f='${Package} ${Status}\n'`; the states from dpkg-query(1)'s status fields,
# recorded on this machine's kind with `dpkg -r`, an interrupted unpack and `apt-mark hold`).
mkdir -p "$work/bin"
cat >"$work/bin/dpkg-query" <<'SH'
#!/bin/sh
printf '%s\n' 'removed-pkg deinstall ok config-files' 'half-pkg install ok half-configured' \
  'unpacked-pkg install ok unpacked' 'held-pkg hold ok installed' 'fine-pkg install ok installed' \
  'purge-pkg purge ok not-installed'
echo "dpkg-query: no packages found matching never-pkg" >&2
exit 1
SH
chmod +x "$work/bin/dpkg-query"
check "removed, half-configured, unpacked, purged and unknown packages are missing; held and installed ones are not" \
  "$(lines removed-pkg half-pkg unpacked-pkg purge-pkg never-pkg)" \
  "$(PATH="$work/bin:$PATH" missing_packages removed-pkg half-pkg unpacked-pkg held-pkg fine-pkg purge-pkg never-pkg)"
check "a package whose name another one's begins with is not taken for it" \
  "fine" "$(PATH="$work/bin:$PATH" missing_packages fine)"
mkdir -p "$work/no-dpkg"
for tool in bash cat; do ln -s "$(command -v "$tool")" "$work/no-dpkg/$tool"; done
check "without dpkg-query every package is missing (more, never less)" \
  "$(lines bash coreutils)" "$(PATH="$work/no-dpkg" missing_packages bash coreutils)"

# --- debian_archive ------------------------------------------------------------------------
apt_dir() { # name: a fresh /etc/apt stand-in; files come from the heredocs after each call
  rm -rf "${work:?}/apt/$1"
  mkdir -p "$work/apt/$1/sources.list.d"
  echo "$work/apt/$1"
}
archive() { APT_SOURCES_DIR=$1 bash -euo pipefail -c ". scripts/lib.sh; debian_archive ${2:-}"; }

# Debian 12's installer (netinst, a mirror picked in the installer; apt-setup's sources.list).
d=$(apt_dir installer)
cat >"$d/sources.list" <<'EOF'
#deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 NETINST with firmware 20240210-11:27]/ bookworm contrib main non-free-firmware

deb http://ftp.de.debian.org/debian/ bookworm main non-free-firmware
deb-src http://ftp.de.debian.org/debian/ bookworm main non-free-firmware

deb http://security.debian.org/debian-security bookworm-security main non-free-firmware
deb-src http://security.debian.org/debian-security bookworm-security main non-free-firmware

# bookworm-updates, to get updates before a point release is made;
# see https://www.debian.org/doc/manuals/debian-reference/ch02.en.html#_updates_and_backports
deb http://ftp.de.debian.org/debian/ bookworm-updates main non-free-firmware
deb-src http://ftp.de.debian.org/debian/ bookworm-updates main non-free-firmware
EOF
check "the installer's one-line sources.list" "http://ftp.de.debian.org/debian/ -" "$(archive "$d")"

# debootstrap (what it writes into the target it made; the fresh-machine check's chroot has it).
d=$(apt_dir debootstrap)
echo "deb http://deb.debian.org/debian bookworm main" >"$d/sources.list"
check "debootstrap's sources.list" "http://deb.debian.org/debian -" "$(archive "$d")"

# Debian 12's cloud images (this machine's kind): deb822 only, no sources.list.
d=$(apt_dir cloud)
cat >"$d/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
check "a cloud image's deb822 debian.sources" \
  "http://deb.debian.org/debian /usr/share/keyrings/debian-archive-keyring.gpg" "$(archive "$d")"
check "another suite from the same file" "http://deb.debian.org/debian-security /usr/share/keyrings/debian-archive-keyring.gpg" \
  "$(archive "$d" bookworm-security)"
check "a suite nobody lists: deb.debian.org" "http://deb.debian.org/debian -" "$(archive "$d" sid)"

# deb822 details: a disabled stanza, source-only stanzas, an inline key, lower-case field names,
# a field continued on the next line.
d=$(apt_dir deb822-details)
cat >"$d/sources.list.d/mirrors.sources" <<'EOF'
# the office mirror, switched off
Enabled: no
Types: deb
URIs: http://mirror.office.example/debian
Suites: bookworm
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

types: deb deb-src
uris: http://ftp.fr.debian.org/debian
  http://ftp.de.debian.org/debian
suites: bookworm
components: main
signed-by:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ…
 -----END PGP PUBLIC KEY BLOCK-----
EOF
check "deb822: disabled and source-only stanzas skipped; the first URI; an inline key is no path" \
  "http://ftp.fr.debian.org/debian -" "$(archive "$d")"

# One-line details: options in brackets (with and without spaces), a CD-ROM entry, a .list file.
d=$(apt_dir one-line-details)
cat >"$d/sources.list" <<'EOF'
deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm main
deb-src http://deb.debian.org/debian bookworm main
EOF
echo "deb [ arch=amd64 signed-by=/etc/apt/keyrings/mirror.gpg ] http://mirror.example/debian bookworm main" \
  >"$d/sources.list.d/mirror.list"
check "one-line: a CD-ROM and a deb-src skipped; options with spaces; a .list file" \
  "http://mirror.example/debian /etc/apt/keyrings/mirror.gpg" "$(archive "$d")"
echo "deb [signed-by=/k.gpg arch=amd64] https://m.example/debian bookworm main" >"$d/sources.list.d/mirror.list"
check "one-line: options without spaces" "https://m.example/debian /k.gpg" "$(archive "$d")"

# Both formats: apt reads sources.list first, then sources.list.d/ (.list before .sources here).
d=$(apt_dir both)
echo "deb http://one-line.example/debian bookworm main" >"$d/sources.list"
printf 'Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm\nComponents: main\n' >"$d/sources.list.d/debian.sources"
check "both formats: sources.list first" "http://one-line.example/debian -" "$(archive "$d")"
echo "# nothing here any more" >"$d/sources.list"
check "both formats: an empty sources.list falls through to deb822" "http://deb822.example/debian -" "$(archive "$d")"

d=$(apt_dir empty)
check "no sources at all: deb.debian.org, and no failure under pipefail" "http://deb.debian.org/debian -" "$(archive "$d")"
check "no apt directory at all" "http://deb.debian.org/debian -" "$(archive "$work/no-such-dir")"

if ((failures)); then
  echo "check-scripts.sh: $failures failed" >&2
  exit 1
fi
echo "ok: the set-up's functions (missing_packages, debian_archive)"
