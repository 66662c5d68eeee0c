# Sourced by scripts/bench.sh (uses its spawn, stop_pid, wait_for, in_ns, log, $MAC, $RES,
# $WORK, $PY, $QUICK): the DNS rows. dnsperf asks the helper's DNS server on its link address
# for names it was given through the API, then, as the baseline in the same run and the same
# namespace, dnsmasq holding the same names. Queries per second answered (NOERROR) and the
# p50/p99 latency per server; scripts/bench/dns_report.py prints them with the ratios.
#
# Why dnsmasq: it is cheap to stand up and comparable. One small binary (dnsmasq-base: no
# service that would start on install and take port 53), the names as --host-record flags (no
# zone file, no config), answered from memory by one single-threaded process, as ours are.
# nsd would need a zone file and a config, and Debian's package starts a service of its own.

DNS_NAMES=100
DNS_BASELINE_ADDR=198.18.245.1  # on lo in drb-mac: an address no interface there has

# $1 the helper's API socket, $2 its DNS address (the link address), $3 the /24 prefix the
# names' addresses come from (e.g. 198.19.240).
dns_bench() {
  local sock=$1 server=$2 prefix=$3 d=$RES/dns secs n i target
  mkdir -p "$d"
  for tool in dnsperf dnsmasq dig; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool missing (scripts/setup.sh installs it)" >"$d/error"; return 0; }
  done
  secs=10
  [[ $QUICK == 1 ]] && secs=2
  if ! "$PY" "$ROOT/scripts/bench/dns_names.py" "$sock" "$DNS_NAMES" "$prefix" >"$WORK/dns-names.txt" 2>"$d/names.err"; then
    echo "set_names failed: $(cat "$d/names.err")" >"$d/error"
    return 0
  fi
  sed 's/$/.docker A/' "$WORK/dns-names.txt" >"$WORK/dns-queries.txt"
  local -a records=()
  while read -r n; do
    i=${n#b}
    records+=("--host-record=$n.docker,$prefix.$((i % 250 + 1))")
  done <"$WORK/dns-names.txt"
  ip -n "$MAC" addr add "$DNS_BASELINE_ADDR/32" dev lo
  spawn "$MAC" "$WORK/dnsmasq.log" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address="$DNS_BASELINE_ADDR" --port=53 --local=/docker/ --local-ttl=5 \
    --pid-file= --log-facility=- "${records[@]}"
  local dnsmasq_pid=$LAST_PID
  for target in "dockroute:$server" "dnsmasq:$DNS_BASELINE_ADDR"; do
    if ! wait_for 5 sh -c "ip netns exec $MAC dig +short +tries=1 +time=1 @${target#*:} b1.docker A | grep -q ."; then
      log "dns: ${target%%:*} at ${target#*:} does not answer b1.docker; skipping it"
      echo "no answer for b1.docker" >"$d/${target%%:*}.error"
      continue
    fi
    log "dns: dnsperf against ${target%%:*} (${target#*:}), $DNS_NAMES names, ${secs}s"
    # -v: one line per response with its latency, for the percentiles.
    in_ns "$MAC" dnsperf -s "${target#*:}" -d "$WORK/dns-queries.txt" -l "$secs" -c 4 -q 64 -v \
      >"$d/${target%%:*}.txt" 2>&1 || true
  done
  stop_pid "$dnsmasq_pid"
  forget_pid "$dnsmasq_pid"
  ip -n "$MAC" addr del "$DNS_BASELINE_ADDR/32" dev lo 2>/dev/null || true
  meta dnsperf "$(dnsperf -h 2>&1 | awk '/^Version/ {print $2; exit}')"
  meta dnsmasq "$(dnsmasq --version 2>&1 | head -1)"
}
