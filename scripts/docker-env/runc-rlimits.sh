#!/bin/bash
# The OCI runtime the Podman end-to-end tests give podman: runc, with every container's
# RLIMIT_NOFILE and RLIMIT_NPROC lowered to this process's hard limits first.
#
# Why: rootful Podman always asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576, and raising a
# hard limit needs CAP_SYS_RESOURCE, which root lacks on the machine the tests run on, so every
# container failed with "error setting rlimit type 7: operation not permitted" (containers.conf
# `default_ulimits` was not honoured by Podman 4.3). A user's machine has the capability; this
# is the test machine's quirk, so the test harness pays for it here and the product sends no
# ulimits. Only `create`/`run` (the bundle's config.json) and `exec` (--process) are changed.
set -euo pipefail
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
cap_file() {
  local f=$1
  [ -f "$f" ] || return 0
  jq --argjson nofile "$nofile" --argjson nproc "$nproc" '
    def cap($n): .hard = ([.hard, $n] | min) | .soft = ([.soft, $n] | min);
    def fix: if . == null then . else map(
        if .type == "RLIMIT_NOFILE" then cap($nofile)
        elif .type == "RLIMIT_NPROC" then cap($nproc) else . end) end;
    if has("process") then .process.rlimits |= fix else .rlimits |= fix end' "$f" >"$f.rlimits"
  mv "$f.rlimits" "$f"
}
prev=
for arg in "$@"; do
  case "$prev" in
    --bundle | -b) cap_file "$arg/config.json" ;;
    --process | -p) cap_file "$arg" ;;
  esac
  case "$arg" in
    --bundle=*) cap_file "${arg#--bundle=}/config.json" ;;
    --process=*) cap_file "${arg#--process=}" ;;
  esac
  prev=$arg
done
exec /usr/sbin/runc "$@"
