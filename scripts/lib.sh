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
FUZZ_TARGETS=(engine:frame_decoder engine:config_parser engine:tcp_frames
  engine:ip_routes engine:netstat engine:route_output engine:route_socket
  api:api_frames api:pair api:guest_args
  privileged-helper:dns_query privileged-helper:share_datagram privileged-helper:dns_names
  privileged-helper:resolver_record privileged-helper:share_state privileged-helper:wg_endpoint
  guest-image:iptables_save controller:container_names controller:rules_file)
DOCKROUTE_TOOLS=${DOCKROUTE_TOOLS:-$DOCKROUTE_CACHE/tools}
export DOCKROUTE_CACHE DOCKROUTE_TOOLS
# sudo's secure_path drops ~/.cargo/bin: put rustup's and the tools' bin directories back.
export PATH="$DOCKROUTE_TOOLS/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Prints those of the named Debian packages that are not installed (one dpkg-query for all).
# dpkg-query exits 1 when dpkg has never heard of one of them (a fresh machine): its lines for
# the others still count, so its status is not the answer and must not end a `set -e` caller.
missing_packages() {
  local installed p
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do
    [[ $'\n'$installed$'\n' == *$'\n'"$p install ok installed"$'\n'* ]] || echo "$p"
  done
}

# C flags for `cargo check --target aarch64-apple-darwin` on Linux: ring (the share's WireGuard)
# compiles C, and there is no macOS SDK here (scripts/darwin-check/README).
darwin_check_cflags() {
  local inc
  inc="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/darwin-check/include"
  echo "-ffreestanding -nostdinc -isystem $inc -isystem $(clang -print-resource-dir)/include"
}
