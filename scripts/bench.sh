#!/usr/bin/env bash
# Data-path benchmark, one network-namespace topology, one run, in this order: raw kernel
# forwarding; wireguard-go; Dockroute over UDP, then the helper's DNS server against dnsmasq
# (scripts/bench/dns.sh), HTTPS through the helper's front against plain HTTP to the same
# container (requests/s, p50/p99, TLS handshakes/s: scripts/bench/https.sh) and a teammate through the share; Dockroute over its TCP fallback path
# (`transport tcp`); the teammate reference (wireguard-go ⇄ wireguard-go); last, the guest's
# idle CPU in real Docker (Engine 28.5 in a namespace, the guest container's cgroup, children
# included: tests-e2e/tests/sleep.rs). Run as root.
#
#   sudo scripts/bench.sh [--quick] [--json PATH] [--no-build] [--keep] [--no-offload] [--profile DIR]
#                         [--profile-only DIR] [--profile-seconds N] [--profile-transport udp|tcp]
#
#   --profile DIR: after Dockroute's UDP suite, one more TCP 1-stream run with `perf record`
#   on the helper and on the guest (on-CPU samples, 999 Hz, call graphs from DWARF), each
#   written to DIR/{helper,guest}.perf.data, with the top symbols (DIR/*.top.txt) and the
#   split between kernel and user time (DIR/*.split.txt); then one unrecorded TCP 1-stream run
#   counting both ends' syscalls (DIR/*.stat.tsv), pings counting their wake-ups and CPU
#   (DIR/*.ping-stat.tsv), and their memory before and after (DIR/memory.tsv). Needs `perf`
#   (Debian: linux-perf).
#   --profile-only DIR: the topology, Dockroute, that profile, nothing else (no raw, no
#   wireguard-go, no suites); --profile-seconds N: each profiled run's length (default: the
#   mode's iperf3 length); --profile-transport tcp: profile the TCP fallback path instead.
#   scripts/bench/profile.sh wraps it and draws the flame graphs.
#
#   drb-mac  veth-vm  198.18.240.1/24          (iperf3/ping/TCP-RR clients; helper; wg "mac" end)
#     |  veth
#   drb-vm   veth-mac 198.18.240.2/24          (forwarding on; guest; wg "vm" end)
#            br0      198.19.240.1/24
#     |  bridge
#   drb-ctr  eth0     198.19.240.10/24         (iperf3 server, TCP-RR server)
#
#   wg link 198.18.241.0/24 (mac .1, vm .2), Dockroute link 198.18.242.0/24 (config `addr`).
#
#   drb-tm   veth-mac 198.18.243.2/24 ⇄ drb-mac veth-tm 198.18.243.1/24   (a teammate, sharing)
#
# Sharing (teammate → container): the teammate's wireguard-go, configured from what
# `dockroute-helper share add` printed, through the helper (expose 198.18.243.1:2512) and the
# tunnel; against wireguard-go ⇄ wireguard-go between drb-tm and drb-mac (wg link
# 198.18.244.0/24) with drb-mac forwarding to the container: TCP 1 stream, ICMP and TCP RTT.
#
# Per path: TCP 1 and 8 streams, UDP packet rate (1400-byte IP packets), ICMP and TCP
# request/response RTT, CPU time per GB of the tunnel processes, and for the tunnels idle CPU
# and RSS; DNS: queries per second answered and p50/p99 latency (dnsperf). Prints tables
# (absolute numbers, Dockroute/raw, Dockroute/wireguard-go, TCP/UDP, share/wireguard-go) and
# writes it as JSON (default $CARGO_TARGET_DIR/bench.json, i.e. target/bench.json).
# Offloads: the veths keep their defaults (TSO/GSO on, GRO off), so "raw" moves 64 KB TCP
# super-packets through veth and bridge unsegmented: the limit of this machine's kernel path,
# and what Docker's own veths do. The tunnels' TUN devices segment at their MTU. --no-offload
# turns TSO/GSO/GRO off on every veth for a per-packet raw baseline (affects raw only).
# Everything it creates (namespaces drb-*, processes, interfaces, /tmp/drb-bench.*) is removed
# on exit, including on errors and Ctrl-C. All waits and loops are bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 BUILD=1 KEEP=0 OFFLOAD=default JSON_OUT= PROFILE= PROFILE_ONLY=0 PROFILE_SECONDS= PROFILE_TRANSPORT=udp
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --json) JSON_OUT=${2:?--json needs a path}; shift ;;
    --json=*) JSON_OUT=${1#--json=} ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;; # keep the raw results directory (/tmp/drb-bench.*) for inspection
    --no-offload) OFFLOAD=off ;; # TSO/GSO/GRO off on every veth (see the note on offloads below)
    --profile) PROFILE=${2:?--profile needs a directory}; shift ;;
    --profile-only) PROFILE=${2:?--profile-only needs a directory}; PROFILE_ONLY=1; shift ;;
    --profile-seconds) PROFILE_SECONDS=${2:?--profile-seconds needs a number}; shift ;;
    --profile-transport) PROFILE_TRANSPORT=${2:?--profile-transport needs udp or tcp}; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

[[ $PROFILE_SECONDS =~ ^[0-9]*$ ]] || { echo "--profile-seconds: a whole number of seconds" >&2; exit 2; }
[[ $PROFILE_TRANSPORT == udp || $PROFILE_TRANSPORT == tcp ]] || { echo "--profile-transport: udp or tcp" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench.sh needs root (network namespaces, TUN devices)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$CARGO_TARGET_DIR/release"
JSON_OUT=${JSON_OUT:-$CARGO_TARGET_DIR/bench.json}

if [[ $QUICK == 1 ]]; then
  T=2 PINGS=200 RR=500 IDLE=5 MODE=quick DOCKER_IDLE=10
else
  T=10 PINGS=1000 RR=2000 IDLE=5 MODE=full DOCKER_IDLE=60
fi
PROFILE_SECONDS=${PROFILE_SECONDS:-$T}
UDP_LEN=${UDP_LEN:-1372} # UDP payload: 1372 + 8 + 20 = 1400-byte IP packets, fit every MTU here

MAC=drb-mac VM=drb-vm CTR=drb-ctr TM=drb-tm
TM_MAC_IP=198.18.243.1 TM_IP=198.18.243.2 TMWG_MAC=198.18.244.1 TMWG_TM=198.18.244.2 TMWG_PORT=51821
TMWG_IF_MAC=drbwg-tm TMWG_IF_TM=drbwg-t SHARE_IF_TM=drbshare
MAC_IP=198.18.240.1 VM_IP=198.18.240.2 BR_IP=198.19.240.1 CTR_IP=198.19.240.10 CTR_NET=198.19.240.0/24
WG_MAC=198.18.241.1 WG_VM=198.18.241.2 WG_PORT=51820 WG_IF_MAC=drbwg-m WG_IF_VM=drbwg-v
DR_ADDR=198.18.242.1/24 DR_PORT=2511
IPERF_PORT=5201 RR_PORT=7777

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
missing=()
for pair in iperf3:iperf3 ping:iputils-ping wireguard-go:wireguard-go wg:wireguard-tools ethtool:ethtool \
  dnsperf:dnsperf dnsmasq:dnsmasq-base dig:bind9-dnsutils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  timeout 600 apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=$(command -v python3)

if [[ $BUILD == 1 ]]; then
  log "building dockroute-helper and dockroute-guest (release)"
  cargo build --release --quiet -p dockroute-helper -p dockroute-guest
fi
[[ -x $BIN/dockroute-helper && -x $BIN/dockroute-guest ]] || die "no binaries in $BIN (drop --no-build)"

# --- lifecycle -----------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/drb-bench.XXXXXX)
RES=$WORK/res
mkdir -p "$RES"
pids=()
FG_PID=
START_NS=$(date +%s%N)

# Stop one process we started: TERM, up to 5 s, then KILL. Never by name.
stop_pid() {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $FG_PID ]] && stop_pid "$FG_PID"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
  for ns in $MAC $VM $CTR $TM; do ip netns del "$ns" 2>/dev/null; done
  rm -f "/etc/netns/$MAC/hosts"; rmdir "/etc/netns/$MAC" /etc/netns 2>/dev/null
  rm -f /var/run/wireguard/$WG_IF_MAC.sock /var/run/wireguard/$WG_IF_VM.sock
  rm -f /var/run/wireguard/$TMWG_IF_MAC.sock /var/run/wireguard/$TMWG_IF_TM.sock /var/run/wireguard/$SHARE_IF_TM.sock
  if [[ $KEEP == 1 ]]; then echo "bench: raw results kept in $WORK" >&3; else rm -rf "$WORK"; fi
  exit $rc
}
# fd 3 = the script's stderr: a trap can fire while a command's stderr is redirected to a file.
exec 3>&2
trap cleanup EXIT
trap 'echo "bench: interrupted, cleaning up" >&3; exit 130' INT TERM

# Start a process in the background inside a namespace; its pid ends up in $LAST_PID and pids.
# `ip netns exec` execs the command, so the pid is the command's own.
spawn() {
  local ns=$1 out=$2; shift 2
  ip netns exec "$ns" "$@" >"$out" 2>&1 3>&- &
  LAST_PID=$!
  pids+=("$LAST_PID")
}
forget_pid() { local p=$1 i; for i in "${!pids[@]}"; do [[ ${pids[$i]} == "$p" ]] && unset 'pids[i]'; done; pids=("${pids[@]}"); }

# Wait (bounded) until a command succeeds.
wait_for() { # seconds, command...
  local secs=$1 i; shift
  for ((i = 0; i < secs * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
# Foreground work runs as a background job plus `wait`: `wait` returns at once when a trapped
# signal arrives (a plain foreground child would delay the trap until it ends, and a child that
# handles SIGINT itself, like ping or iperf3, would make bash ignore the Ctrl-C). Background jobs
# ignore SIGINT, so cleanup stops them.
FG_PID=
run_fg() {
  local rc=0
  "$@" &
  FG_PID=$!
  wait "$FG_PID" || rc=$?
  FG_PID=
  return $rc
}
in_ns() { local ns=$1; shift; run_fg timeout -k 2 60 ip netns exec "$ns" "$@"; }
pause() { run_fg sleep "$1"; }

# utime+stime (clock ticks, all threads including exited ones) of a process.
cpu_ticks() { local s; s=$(cat "/proc/$1/stat") && s=${s##*) } && awk '{print $12 + $13}' <<<"$s"; }
# Run time of the live threads in ns (finer than ticks; for the idle measurement).
sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# The DNS rows: dns_bench. The HTTPS rows: https_bench.
. "$ROOT/scripts/bench/dns.sh"
. "$ROOT/scripts/bench/https.sh"

# --- topology ------------------------------------------------------------------------------
log "topology: $MAC <-veth-> $VM <-bridge-> $CTR (mode $MODE, ${T}s per iperf3 test)"
for ns in $MAC $VM $CTR $TM; do ip netns del "$ns" 2>/dev/null || true; done
for ns in $MAC $VM $CTR $TM; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add veth-tm netns $MAC type veth peer name veth-mac netns $TM
ip -n $MAC addr add $TM_MAC_IP/24 dev veth-tm && ip -n $MAC link set veth-tm up
ip -n $TM addr add $TM_IP/24 dev veth-mac && ip -n $TM link set veth-mac up
ip link add veth-vm netns $MAC type veth peer name veth-mac netns $VM
ip -n $MAC addr add $MAC_IP/24 dev veth-vm && ip -n $MAC link set veth-vm up
ip -n $VM addr add $VM_IP/24 dev veth-mac && ip -n $VM link set veth-mac up
ip -n $VM link add br0 type bridge && ip -n $VM addr add $BR_IP/24 dev br0 && ip -n $VM link set br0 up
ip link add eth0 netns $CTR type veth peer name veth-ctr netns $VM
ip -n $VM link set veth-ctr master br0 up
ip -n $CTR addr add $CTR_IP/24 dev eth0 && ip -n $CTR link set eth0 up
ip -n $CTR route add default via $BR_IP
ip netns exec $VM sysctl -qw net.ipv4.ip_forward=1
if [[ $OFFLOAD == off ]]; then
  for dev in "$MAC:veth-vm" "$VM:veth-mac" "$VM:veth-ctr" "$CTR:eth0"; do
    ip netns exec "${dev%%:*}" ethtool -K "${dev#*:}" tso off gso off gro off 2>/dev/null || true
  done
fi

spawn $CTR "$WORK/iperf3-server.log" iperf3 -s -B $CTR_IP -p $IPERF_PORT
spawn $CTR "$WORK/rr-server.log" "$PY" "$ROOT/scripts/bench/tcprr.py" server $CTR_IP $RR_PORT
wait_for 10 sh -c "ip netns exec $CTR ss -Hltn | grep -q ':$IPERF_PORT ' && ip netns exec $CTR ss -Hltn | grep -q ':$RR_PORT '" \
  || die "servers in $CTR did not start"

# --- metadata ------------------------------------------------------------------------------
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RES/meta.tsv"; }
meta mode "$MODE"
meta iperf_seconds "$T"
meta pings "$PINGS"
meta rr_count "$RR"
meta idle_seconds "$IDLE"
meta udp_payload "$UDP_LEN"
meta veth_offload "$OFFLOAD"
meta spin_us "${DOCKROUTE_SPIN_US:-default}"
meta cpu_model "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
meta nproc "$(nproc)"
meta kernel "$(uname -r)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta clk_tck "$(getconf CLK_TCK)"
meta iperf3 "$(iperf3 --version 2>&1 | head -1)"
meta wireguard_go "$(wireguard-go --version 2>&1 | head -1)"
meta dockroute_commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty)"
meta date "$(date -u +%FT%TZ)"
for dev in "$MAC:veth-vm" "$VM:veth-mac" "$VM:veth-ctr" "$CTR:eth0"; do
  offl=$(ip netns exec "${dev%%:*}" ethtool -k "${dev#*:}" 2>/dev/null \
    | awk '/^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-checksumming|rx-checksumming):/ {sub(/:$/, "", $1); printf "%s=%s ", $1, $2}' || true)
  meta "offload ${dev}" "${offl% }"
done

# Where the tunnel's CPU goes under iperf3 (--profile): both ends sampled, one after the other,
# each during its own TCP 1-stream run, then a run counting their syscalls (not sampled, so the
# counts are not perturbed); bounded by iperf3's own duration.
SYSCALLS=(read write readv writev recvfrom sendto recvmsg sendmsg recvmmsg sendmmsg epoll_wait epoll_pwait futex sched_yield)
profile_dockroute() {
  local dir=$1 end pid rec stats=() ev
  command -v perf >/dev/null || { log "profile: perf missing (Debian: linux-perf), skipped"; return 0; }
  mkdir -p "$dir"
  memory_of_ends "before traffic" >"$dir/memory.tsv"
  for end in helper guest; do
    [[ $end == helper ]] && pid=$HELPER_PID || pid=$GUEST_PID
    log "profile: $end (pid $pid), perf record during TCP 1 stream (${PROFILE_SECONDS}s)"
    perf record -q -F 999 --call-graph dwarf,16384 -p "$pid" -o "$dir/$end.perf.data" -- sleep "$PROFILE_SECONDS" \
      >"$dir/$end.record.log" 2>&1 &
    rec=$!
    in_ns $MAC iperf3 -c $CTR_IP -p $IPERF_PORT -t "$PROFILE_SECONDS" -J >"$dir/$end.iperf3.json" 2>/dev/null || true
    wait "$rec" || true
    perf report -i "$dir/$end.perf.data" --no-children -g none --sort sym --stdio 2>/dev/null |
      grep -v '^#' | grep '%' | head -40 >"$dir/$end.top.txt" || true
    perf report -i "$dir/$end.perf.data" --no-children -g none --sort dso --stdio 2>/dev/null |
      grep -v '^#' | grep '%' | head -15 >"$dir/$end.split.txt" || true
    log "profile: $end, top symbols in $dir/$end.top.txt"
  done
  log "profile: syscalls of both ends during TCP 1 stream (${PROFILE_SECONDS}s)"
  ev=raw_syscalls:sys_enter,context-switches,task-clock
  for n in "${SYSCALLS[@]}"; do
    [[ -d /sys/kernel/tracing/events/syscalls/sys_enter_$n ]] && ev+=",syscalls:sys_enter_$n"
  done
  for end in helper guest; do
    [[ $end == helper ]] && pid=$HELPER_PID || pid=$GUEST_PID
    perf stat -x $'\t' -e "$ev" -p "$pid" -o "$dir/$end.stat.tsv" -- sleep "$PROFILE_SECONDS" >/dev/null 2>&1 &
    stats+=($!)
  done
  in_ns $MAC iperf3 -c $CTR_IP -p $IPERF_PORT -t "$PROFILE_SECONDS" -J >"$dir/syscalls.iperf3.json" 2>/dev/null || true
  for rec in "${stats[@]}"; do wait "$rec" || true; done
  # The round trip: pings 10 ms apart (each finds both ends asleep, as a user's request does),
  # counting each end's wake-ups, syscalls and CPU time per ping.
  local pings=$((PROFILE_SECONDS * 100))
  log "profile: context switches and CPU of both ends per ping ($pings pings, 10 ms apart)"
  stats=()
  for end in helper guest; do
    [[ $end == helper ]] && pid=$HELPER_PID || pid=$GUEST_PID
    perf stat -x $'\t' -e raw_syscalls:sys_enter,context-switches,task-clock -p "$pid" -o "$dir/$end.ping-stat.tsv" \
      -- sleep "$((PROFILE_SECONDS + 2))" >/dev/null 2>&1 &
    stats+=($!)
  done
  in_ns $MAC ping -c "$pings" -i 0.01 -W 1 $CTR_IP >"$dir/ping.txt" 2>&1 || true
  for rec in "${stats[@]}"; do wait "$rec" || true; done
  sleep 2 # the driver frees its idle TUN write buffers a second after the last write
  memory_of_ends "after traffic, idle 2 s" >>"$dir/memory.tsv"
}
# One line per end: $1 (when), then RSS, peak RSS, anonymous and file-backed RSS (kB), threads.
memory_of_ends() {
  local end pid
  for end in helper guest; do
    [[ $end == helper ]] && pid=$HELPER_PID || pid=$GUEST_PID
    printf '%s\t%s' "$1" "$end"
    for k in VmRSS VmHWM RssAnon RssFile Threads; do printf '\t%s=%s' "$k" "$(status_kb "$pid" "$k")"; done
    printf '\n'
  done
}

# --- the measurements, same for every path -------------------------------------------------
# $1 scenario name; $2.. "label:pid" of the tunnel processes whose CPU is counted.
run_suite() {
  local name=$1; shift
  local d=$RES/$name p
  mkdir -p "$d"
  if ! wait_for 10 ip netns exec $MAC ping -c 1 -W 1 $CTR_IP; then
    echo "unreachable" >"$d/error"; log "$name: $CTR_IP unreachable from $MAC, skipping"; return 0
  fi
  in_ns $MAC ping -c 5 -i 0.05 -W 1 $CTR_IP >/dev/null 2>&1 || true # warm caches / ARP

  log "$name: TCP 1 stream (${T}s)"
  for p in "$@"; do echo "${p%%:*}_ticks_before $(cpu_ticks "${p#*:}")" >>"$d/cpu.txt"; done
  in_ns $MAC iperf3 -c $CTR_IP -p $IPERF_PORT -t "$T" -J >"$d/tcp1.json" 2>"$d/tcp1.err" || true
  for p in "$@"; do echo "${p%%:*}_ticks_after $(cpu_ticks "${p#*:}")" >>"$d/cpu.txt"; done
  sleep 0.5
  log "$name: TCP 8 streams (${T}s)"
  in_ns $MAC iperf3 -c $CTR_IP -p $IPERF_PORT -t "$T" -P 8 -J >"$d/tcp8.json" 2>"$d/tcp8.err" || true
  sleep 0.5
  log "$name: UDP ${UDP_LEN}-byte payload, unlimited rate (${T}s)"
  in_ns $MAC iperf3 -c $CTR_IP -p $IPERF_PORT -t "$T" -u -l "$UDP_LEN" -b 0 -J >"$d/udp.json" 2>"$d/udp.err" || true
  pause 1 # let the queues the UDP flood filled drain before timing RTTs
  log "$name: ICMP RTT ($PINGS pings, 10 ms apart)"
  in_ns $MAC ping -c "$PINGS" -i 0.01 -W 1 $CTR_IP >"$d/ping.txt" 2>&1 || true
  log "$name: TCP request/response RTT ($RR exchanges)"
  in_ns $MAC "$PY" "$ROOT/scripts/bench/tcprr.py" client $CTR_IP $RR_PORT "$RR" >"$d/rr.json" 2>"$d/rr.err" || true
}

# Teammate → container through one path: $1 scenario. TCP 1 stream, ICMP and TCP RTT.
run_share_suite() {
  local name=$1 d=$RES/$1
  mkdir -p "$d"
  if ! wait_for 20 ip netns exec $TM ping -c 1 -W 1 $CTR_IP; then
    echo "unreachable" >"$d/error"; log "$name: $CTR_IP unreachable from $TM, skipping"; return 0
  fi
  log "$name: TCP 1 stream (${T}s)"
  in_ns $TM iperf3 -c $CTR_IP -p $IPERF_PORT -t "$T" -J >"$d/tcp1.json" 2>"$d/tcp1.err" || true
  sleep 0.5
  log "$name: ICMP RTT ($PINGS pings, 10 ms apart)"
  in_ns $TM ping -c "$PINGS" -i 0.01 -W 1 $CTR_IP >"$d/ping.txt" 2>&1 || true
  log "$name: TCP request/response RTT ($RR exchanges)"
  in_ns $TM "$PY" "$ROOT/scripts/bench/tcprr.py" client $CTR_IP $RR_PORT "$RR" >"$d/rr.json" 2>"$d/rr.err" || true
}

# Idle CPU and memory of tunnel processes: $1 scenario, $2.. "label:pid".
measure_idle() {
  local name=$1; shift
  local d=$RES/$name p
  log "$name: idle CPU over ${IDLE}s, no traffic"
  sleep 1
  for p in "$@"; do
    echo "${p%%:*}_idle_ticks_before $(cpu_ticks "${p#*:}")"
    echo "${p%%:*}_idle_sched_before $(sched_ns "${p#*:}")"
  done >>"$d/idle.txt"
  local t0 t1
  t0=$(date +%s%N)
  pause "$IDLE"
  t1=$(date +%s%N)
  for p in "$@"; do
    echo "${p%%:*}_idle_ticks_after $(cpu_ticks "${p#*:}")"
    echo "${p%%:*}_idle_sched_after $(sched_ns "${p#*:}")"
    echo "${p%%:*}_rss_kb $(status_kb "${p#*:}" VmRSS)"
    echo "${p%%:*}_hwm_kb $(status_kb "${p#*:}" VmHWM)"
  done >>"$d/idle.txt"
  echo "idle_wall_ns $((t1 - t0))" >>"$d/idle.txt"
}

# --- Dockroute: the helper in $MAC and the guest in $VM, fresh secret, until the tunnel carries
# a ping. start_dockroute LOG_SUFFIX "EXTRA CONFIG LINES" [GUEST ARGS...]; sets HELPER_PID, GUEST_PID.
start_dockroute() {
  local suffix=$1 extra=$2; shift 2
  printf 'addr %s\naddr6 none\nhost %s\nport %s\nroute %s\n%s' "$DR_ADDR" "$MAC_IP" "$DR_PORT" "$CTR_NET" "$extra" \
    >"$WORK/dockroute.conf"
  rm -f "$WORK/dockroute.secret"
  spawn $MAC "$WORK/helper$suffix.log" "$BIN/dockroute-helper" run --config "$WORK/dockroute.conf" --socket "$WORK/helper.sock"
  HELPER_PID=$LAST_PID
  wait_for 10 test -s "$WORK/dockroute.secret" || die "helper wrote no secret: $(tail -5 "$WORK/helper$suffix.log")"
  install -m 600 "$WORK/dockroute.secret" "$WORK/guest.secret"
  spawn $VM "$WORK/guest$suffix.log" "$BIN/dockroute-guest" --server $MAC_IP:$DR_PORT --secret-file "$WORK/guest.secret" \
    --tun-name dockroute0 --no-firewall "$@"
  GUEST_PID=$LAST_PID
  if ! wait_for 15 sh -c "ip -n $MAC route show $CTR_NET | grep -q dockroute0 && ip netns exec $MAC ping -c 1 -W 1 $CTR_IP"; then
    log "dockroute$suffix: tunnel did not come up; helper log:"; tail -5 "$WORK/helper$suffix.log" >&2
    log "guest log:"; tail -5 "$WORK/guest$suffix.log" >&2
  fi
}

if [[ $PROFILE_ONLY == 1 ]]; then
  if [[ $PROFILE_TRANSPORT == tcp ]]; then start_dockroute -tcp $'transport tcp\n' --transport tcp; else start_dockroute "" ""; fi
  meta profile_transport "$PROFILE_TRANSPORT"
  meta dockroute_mtu "$(ip -n $MAC -o link show dockroute0 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
  meta profile_seconds "$PROFILE_SECONDS"
  profile_dockroute "$PROFILE"
  cp "$RES/meta.tsv" "$PROFILE/meta.tsv"
  exit 0
fi

# --- 1. raw kernel forwarding --------------------------------------------------------------
log "raw: $MAC routes $CTR_NET via $VM_IP (veth, kernel forwarding)"
ip -n $MAC route add $CTR_NET via $VM_IP
run_suite raw
ip -n $MAC route del $CTR_NET via $VM_IP

# --- 2. wireguard-go -----------------------------------------------------------------------
log "wireguard-go: $WG_IF_MAC ($WG_MAC) in $MAC <-> $WG_IF_VM ($WG_VM) in $VM over the veth"
umask 077
wg genkey >"$WORK/wg-mac.key"; wg pubkey <"$WORK/wg-mac.key" >"$WORK/wg-mac.pub"
wg genkey >"$WORK/wg-vm.key"; wg pubkey <"$WORK/wg-vm.key" >"$WORK/wg-vm.pub"
umask 022
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error
spawn $MAC "$WORK/wg-mac.log" wireguard-go -f $WG_IF_MAC; WG_PID_MAC=$LAST_PID
spawn $VM "$WORK/wg-vm.log" wireguard-go -f $WG_IF_VM; WG_PID_VM=$LAST_PID
wait_for 10 test -S /var/run/wireguard/$WG_IF_MAC.sock || die "wireguard-go ($MAC) did not start: $(cat "$WORK/wg-mac.log")"
wait_for 10 test -S /var/run/wireguard/$WG_IF_VM.sock || die "wireguard-go ($VM) did not start: $(cat "$WORK/wg-vm.log")"
ip netns exec $MAC wg set $WG_IF_MAC private-key "$WORK/wg-mac.key" listen-port $WG_PORT \
  peer "$(cat "$WORK/wg-vm.pub")" endpoint $VM_IP:$WG_PORT allowed-ips $WG_VM/32,$CTR_NET
ip netns exec $VM wg set $WG_IF_VM private-key "$WORK/wg-vm.key" listen-port $WG_PORT \
  peer "$(cat "$WORK/wg-mac.pub")" endpoint $MAC_IP:$WG_PORT allowed-ips $WG_MAC/32
ip -n $MAC addr add $WG_MAC/24 dev $WG_IF_MAC && ip -n $MAC link set $WG_IF_MAC up
ip -n $VM addr add $WG_VM/24 dev $WG_IF_VM && ip -n $VM link set $WG_IF_VM up
ip -n $MAC route add $CTR_NET dev $WG_IF_MAC
meta wg_mtu "$(ip -n $MAC -o link show $WG_IF_MAC | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
run_suite wireguard-go "mac:$WG_PID_MAC" "vm:$WG_PID_VM"
measure_idle wireguard-go "mac:$WG_PID_MAC" "vm:$WG_PID_VM"
stop_pid "$WG_PID_VM"; forget_pid "$WG_PID_VM"
stop_pid "$WG_PID_MAC"; forget_pid "$WG_PID_MAC"
ip -n $MAC route del $CTR_NET 2>/dev/null || true

# --- 3. Dockroute --------------------------------------------------------------------------
log "dockroute: helper in $MAC (UDP $MAC_IP:$DR_PORT, link $DR_ADDR), guest in $VM"
start_dockroute "" ""
meta dockroute_mtu "$(ip -n $MAC -o link show dockroute0 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
run_suite dockroute "helper:$HELPER_PID" "guest:$GUEST_PID"
measure_idle dockroute "helper:$HELPER_PID" "guest:$GUEST_PID"
[[ -n $PROFILE ]] && profile_dockroute "$PROFILE"
dns_bench "$WORK/helper.sock" "${DR_ADDR%/*}" "${CTR_NET%.*}"
https_bench "$WORK/helper.sock" "${DR_ADDR%/*}" "$CTR_IP"
# --- 4. sharing: a teammate through the helper, against wireguard-go ⇄ wireguard-go ------------
log "teammate-dockroute: exposing $CTR_NET on $TM_MAC_IP:2512 (config hot reload), wireguard-go in $TM"
printf 'route %s expose\nexpose %s:2512\n' "$CTR_NET" "$TM_MAC_IP" >>"$WORK/dockroute.conf"
SHARED=0
for _ in $(seq 1 50); do
  if "$BIN/dockroute-helper" share add teammate --socket "$WORK/helper.sock" >"$WORK/teammate.conf" 2>"$WORK/share.err"; then
    SHARED=1; break
  fi
  sleep 0.1
done
if [[ $SHARED == 1 ]]; then
  TM_ADDR=$(sed -n 's/^Address = //p' "$WORK/teammate.conf")
  TM_MTU=$(sed -n 's/^MTU = //p' "$WORK/teammate.conf")
  cp "$WORK/teammate.conf" "$WORK/$SHARE_IF_TM.conf"
  wg-quick strip "$WORK/$SHARE_IF_TM.conf" >"$WORK/$SHARE_IF_TM.wg"
  spawn $TM "$WORK/wg-share.log" wireguard-go -f $SHARE_IF_TM; SHARE_WG_PID=$LAST_PID
  wait_for 10 test -S /var/run/wireguard/$SHARE_IF_TM.sock || die "wireguard-go ($TM) did not start"
  ip netns exec $TM wg setconf $SHARE_IF_TM "$WORK/$SHARE_IF_TM.wg"
  ip -n $TM addr add "$TM_ADDR" dev $SHARE_IF_TM && ip -n $TM link set $SHARE_IF_TM mtu "$TM_MTU" up
  ip -n $TM route add $CTR_NET dev $SHARE_IF_TM
  meta share_mtu "$TM_MTU"
  run_share_suite teammate-dockroute
  ip -n $TM route del $CTR_NET dev $SHARE_IF_TM 2>/dev/null || true
  stop_pid "$SHARE_WG_PID"; forget_pid "$SHARE_WG_PID"
else
  log "teammate-dockroute: share add failed: $(cat "$WORK/share.err")"
  mkdir -p "$RES/teammate-dockroute" && echo "share add failed" >"$RES/teammate-dockroute/error"
fi

kill -0 "$HELPER_PID" 2>/dev/null || log "dockroute: the helper exited during the run"
kill -0 "$GUEST_PID" 2>/dev/null || log "dockroute: the guest exited during the run"
stop_pid "$GUEST_PID"; forget_pid "$GUEST_PID"
stop_pid "$HELPER_PID"; forget_pid "$HELPER_PID"

# --- 5. Dockroute over its TCP fallback path -------------------------------------------------
log "dockroute-tcp: the same, with transport tcp on both ends"
# A config of its own: the share's expose lines above are not part of this path.
start_dockroute -tcp $'transport tcp\n' --transport tcp
run_suite dockroute-tcp "helper:$HELPER_PID" "guest:$GUEST_PID"
measure_idle dockroute-tcp "helper:$HELPER_PID" "guest:$GUEST_PID"
stop_pid "$GUEST_PID"; forget_pid "$GUEST_PID"
stop_pid "$HELPER_PID"; forget_pid "$HELPER_PID"

# --- 6. the teammate reference: wireguard-go ⇄ wireguard-go, the Mac forwarding in the kernel --
log "teammate-wireguard-go: $TMWG_IF_TM ($TMWG_TM) in $TM <-> $TMWG_IF_MAC ($TMWG_MAC) in $MAC, which forwards to $CTR_NET"
umask 077
wg genkey >"$WORK/tmwg-mac.key"; wg pubkey <"$WORK/tmwg-mac.key" >"$WORK/tmwg-mac.pub"
wg genkey >"$WORK/tmwg-tm.key"; wg pubkey <"$WORK/tmwg-tm.key" >"$WORK/tmwg-tm.pub"
umask 022
spawn $MAC "$WORK/tmwg-mac.log" wireguard-go -f $TMWG_IF_MAC; TMWG_PID_MAC=$LAST_PID
spawn $TM "$WORK/tmwg-tm.log" wireguard-go -f $TMWG_IF_TM; TMWG_PID_TM=$LAST_PID
wait_for 10 test -S /var/run/wireguard/$TMWG_IF_MAC.sock || die "wireguard-go ($MAC, teammate side) did not start"
wait_for 10 test -S /var/run/wireguard/$TMWG_IF_TM.sock || die "wireguard-go ($TM) did not start"
ip netns exec $MAC wg set $TMWG_IF_MAC private-key "$WORK/tmwg-mac.key" listen-port $TMWG_PORT \
  peer "$(cat "$WORK/tmwg-tm.pub")" allowed-ips $TMWG_TM/32
ip netns exec $TM wg set $TMWG_IF_TM private-key "$WORK/tmwg-tm.key" \
  peer "$(cat "$WORK/tmwg-mac.pub")" endpoint $TM_MAC_IP:$TMWG_PORT allowed-ips $CTR_NET persistent-keepalive 25
ip -n $MAC addr add $TMWG_MAC/24 dev $TMWG_IF_MAC && ip -n $MAC link set $TMWG_IF_MAC up
ip -n $TM addr add $TMWG_TM/24 dev $TMWG_IF_TM && ip -n $TM link set $TMWG_IF_TM up
ip -n $TM route add $CTR_NET dev $TMWG_IF_TM
# The reference path forwards in the kernel (the helper is gone, and its route with it): drb-mac
# routes the container network via drb-vm, drb-vm routes the wg link back via drb-mac.
ip netns exec $MAC sysctl -qw net.ipv4.ip_forward=1
ip -n $MAC route add $CTR_NET via $VM_IP
ip -n $VM route add 198.18.244.0/24 via $MAC_IP
run_share_suite teammate-wireguard-go
stop_pid "$TMWG_PID_TM"; forget_pid "$TMWG_PID_TM"
stop_pid "$TMWG_PID_MAC"; forget_pid "$TMWG_PID_MAC"
# --- 7. the guest's idle CPU in real Docker ------------------------------------------------
# Engine 28.5 in a namespace, one container, the guest container's cgroup over DOCKER_IDLE
# seconds (the e2e harness does the Docker part; it needs the debug binaries it runs).
if [[ -x ${DOCKROUTE_CACHE:-/var/tmp/dockroute-ci}/docker28/usr/sbin/dockerd ]] && command -v cargo-nextest >/dev/null 2>&1; then
  log "docker: the guest's idle CPU over ${DOCKER_IDLE}s in Engine 28.5 (tests-e2e/tests/sleep.rs)"
  if [[ $BUILD == 1 ]]; then cargo build -q -p dockroute -p dockroute-helper -p dockroute-guest -p dockroute-e2e --bins; fi
  DOCKROUTE_IDLE_SECONDS=$DOCKER_IDLE run_fg timeout -k 5 600 cargo nextest run -p dockroute-e2e --test sleep \
    --no-capture -E 'test(idle_cpu)' >"$RES/docker-idle.log" 2>&1 || log "docker idle measurement failed (see the report)"
  grep -h 'MEASURED guest_idle_cpu_pct' "$RES/docker-idle.log" >"$RES/docker-idle.txt" || tail -20 "$RES/docker-idle.log" >"$RES/docker-idle.txt"
else
  log "docker: no Engine 28.5 in the cache or no cargo-nextest; skipping the Docker idle measurement"
fi

# --- report --------------------------------------------------------------------------------
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta runtime_s "$(awk -v a="$START_NS" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')"
mkdir -p "$(dirname "$JSON_OUT")"
"$PY" "$ROOT/scripts/bench/report.py" "$RES" "$JSON_OUT"
"$PY" "$ROOT/scripts/bench/dns_report.py" "$RES" "$JSON_OUT"
"$PY" "$ROOT/scripts/bench/https_report.py" "$RES" "$JSON_OUT"
