# Sourced by the scripts (not run): where the caches and tools live, and the PATH that finds
# them, so a script that has just run setup.sh finds what it installed.
#   DOCKROUTE_CACHE  engines, base rootfs (default $DOCKROUTE_CI_CACHE, .ci/run's cache, then
#                    /var/tmp/dockroute-ci)
#   DOCKROUTE_TOOLS  where `cargo install` puts cargo-fuzz, cargo-nextest and tauri-driver
#                    (default $DOCKROUTE_CACHE/tools)
DOCKROUTE_CACHE=${DOCKROUTE_CACHE:-${DOCKROUTE_CI_CACHE:-/var/tmp/dockroute-ci}}
# Every fuzz target, as crate:target (fuzz-budget.sh, in test-all.sh, splits a time budget
# across them; fuzz-long.sh runs each for a number of executions). One per parser that input
# from outside reaches.
FUZZ_TARGETS=(engine:frame_decoder engine:tcp_frames
  engine:ip_routes engine:netstat engine:route_output engine:route_socket
  api:api_frames api:pair api:guest_args
  privileged-helper:dns_query privileged-helper:share_datagram privileged-helper:dns_names
  privileged-helper:resolver_record privileged-helper:share_state privileged-helper:wg_endpoint
  privileged-helper:config_parser
  guest-image:iptables_save controller:container_names controller:rules_file)
DOCKROUTE_TOOLS=${DOCKROUTE_TOOLS:-$DOCKROUTE_CACHE/tools}
export DOCKROUTE_CACHE DOCKROUTE_TOOLS
# sudo's secure_path drops ~/.cargo/bin: put rustup's and the tools' bin directories back.
export PATH="$DOCKROUTE_TOOLS/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Prints those of the named Debian packages that are not installed (one dpkg-query for all).
# dpkg-query exits 1 when dpkg has never heard of one of them (a fresh machine): its lines for
# the others still count, so its status is not the answer and must not end a `set -e` caller.
# Only a package dpkg reports installed ("install ok installed", or "hold ok installed" for a
# held one) is left out: whatever goes wrong here (no dpkg-query at all) lists more, never less.
missing_packages() {
  local installed p
  installed=$'\n'$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)$'\n'
  for p in "$@"; do
    [[ $installed == *$'\n'"$p install ok installed"$'\n'* || $installed == *$'\n'"$p hold ok installed"$'\n'* ]] ||
      echo "$p"
  done
}

# C flags for `cargo check --target aarch64-apple-darwin` on Linux: ring (the share's WireGuard)
# compiles C, and there is no macOS SDK here (scripts/darwin-check/README).
darwin_check_cflags() {
  local inc
  inc="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/darwin-check/include"
  echo "-ffreestanding -nostdinc -isystem $inc -isystem $(clang -print-resource-dir)/include"
}

# The Debian archive apt uses here for SUITE (default bookworm; not -security, -updates or
# -backports), as "URI KEYRING" (KEYRING "-" when the entry names none, or names an inline key).
# Reads both formats apt reads, in apt's order: one-line entries (/etc/apt/sources.list and
# sources.list.d/*.list, as the Debian installer and debootstrap write them) and deb822 stanzas
# (sources.list.d/*.sources, as cloud images write them). Falls back to deb.debian.org. Never
# fails: a missing file is no entry (under pipefail a failing reader would end the caller).
#   APT_SOURCES_DIR  the apt directory to read (default /etc/apt; tests point it elsewhere)
debian_archive() {
  local suite=${1:-bookworm} dir=${APT_SOURCES_DIR:-/etc/apt} f found=
  local files=("$dir/sources.list")
  for f in "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do files+=("$f"); done
  for f in "${files[@]}"; do
    [ -r "$f" ] || continue
    case "$f" in
      *.sources) found=$(awk -v suite="$suite" -f - "$f" <<'AWK' || true
# deb822: stanzas end at a blank line; a field's continuation lines start with white space.
function flush() {
  if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false|0)$/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
    split(uris, u, " "); key = (signed ~ /^\//) ? signed : "-"; print u[1], key; done = 1; exit
  }
  types = uris = suites = signed = enabled = ""
}
/^[ \t]*#/ { next }
/^[ \t]*$/ { flush(); next }
/^[ \t]/ { next }
{
  name = tolower($1); sub(/:.*/, "", name); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
  if (name == "types") types = value; else if (name == "uris") uris = value
  else if (name == "suites") suites = value; else if (name == "signed-by") signed = value
  else if (name == "enabled") enabled = tolower(value)
}
END { if (!done) flush() }
AWK
        ) ;;
      *) found=$(awk -v suite="$suite" '
          # deb [option=value ...] URI SUITE COMPONENT...
          $1 != "deb" { next }
          {
            key = "-"; i = 2
            if ($2 ~ /^\[/) {
              for (; i <= NF; i++) {
                if ($i ~ /^\[?signed-by=/) { key = $i; sub(/^\[?signed-by=/, "", key); sub(/\]$/, "", key) }
                if ($i ~ /\]$/) { i++; break }
              }
            }
            if ($(i + 1) == suite && $i !~ /^cdrom:/) { print $i, (key ~ /^\//) ? key : "-"; exit }
          }' "$f" || true) ;;
    esac
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
  done
  echo "http://deb.debian.org/debian -"
}
