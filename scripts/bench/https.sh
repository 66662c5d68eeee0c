# Sourced by scripts/bench.sh (uses its spawn, stop_pid, forget_pid, wait_for, in_ns, log, meta,
# $MAC, $CTR, $RES, $WORK, $PY, $ROOT, $QUICK): the HTTPS rows. nginx in drb-ctr answers "hello"
# with keep-alive; from drb-mac, in the same run, wrk asks it
#   - over plain HTTP at the container's address through the tunnel (the baseline), and
#   - over HTTPS at `b9.docker` through the helper's front, by the container's own address as
#     DNS answers it (the helper's nftables redirect of port 443 to the front on the link
#     address, TLS with a leaf from the local CA, then the splice through the tunnel to the
#     same container): the path a browser takes;
# each with keep-alive (requests/s, p50/p99) and with `Connection: close` (a new connection,
# and over HTTPS a full handshake, per request). `tls_handshakes.py` adds full TLS handshakes
# per second against the front (new connection, no resumption, SNI, verified against the local
# CA; no request) beside plain TCP connects per second to the container on the same path. wrk
# does not verify certificates: it measures, the e2e test proves trust.
# `b9.docker` resolves through /etc/netns/drb-mac/hosts (what `ip netns exec` puts over
# /etc/hosts), removed again by https_bench and by bench.sh's cleanup.

HTTPS_NAME=b9 # dns_names.py: b<i> → prefix.(i % 250 + 1), so b9 is the container's .10

# $1 the helper's API socket, $2 the link address, $3 the container's address.
https_bench() {
  local sock=$1 link=$2 ctr=$3 d=$RES/https secs=10 conns=8 kind url
  [[ $QUICK == 1 ]] && secs=3
  mkdir -p "$d"
  for tool in wrk nginx openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool missing (scripts/setup.sh installs it)" >"$d/error"; return 0; }
  done
  if ! "$PY" "$ROOT/scripts/bench/dns_names.py" "$sock" 100 "${ctr%.*}" >/dev/null 2>"$d/names.err"; then
    echo "set_names failed: $(cat "$d/names.err")" >"$d/error"
    return 0
  fi
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $WORK/nginx/body;
  server { listen $ctr:80; location / { return 200 "hello\n"; } } }
CONF
  spawn "$CTR" "$WORK/nginx.log" nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/stderr.log"
  local nginx_pid=$LAST_PID
  mkdir -p "/etc/netns/$MAC"
  printf '%s %s.docker\n' "$ctr" "$HTTPS_NAME" >"/etc/netns/$MAC/hosts"
  if ! wait_for 10 sh -c "ip netns exec $MAC curl -sk --max-time 2 https://$HTTPS_NAME.docker/ | grep -q hello"; then
    log "https: the front does not serve $HTTPS_NAME.docker; skipping (see $d/error)"
    { echo "no answer through the front"; ip netns exec "$MAC" curl -skv --max-time 2 "https://$HTTPS_NAME.docker/" 2>&1 | tail -5; } >"$d/error"
  else
    for kind in keepalive close; do
      local -a hdr=()
      [[ $kind == close ]] && hdr=(-H "Connection: close")
      for url in "http://$ctr/" "https://$HTTPS_NAME.docker/"; do
        log "https: wrk ${url%%:*} ($kind, $conns connections, ${secs}s)"
        in_ns "$MAC" wrk -t1 -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "$url" >"$d/${url%%:*}-$kind.txt" 2>&1 || true
      done
    done
    log "https: full TLS handshakes against the front, then plain TCP connects to the container (${secs}s each)"
    in_ns "$MAC" "$PY" "$ROOT/scripts/bench/tls_handshakes.py" "$ctr" 443 "$secs" \
      --tls "$HTTPS_NAME.docker" "$WORK/dockroute.ca.pem" >"$d/handshakes.json" 2>&1 || true
    in_ns "$MAC" "$PY" "$ROOT/scripts/bench/tls_handshakes.py" "$ctr" 80 "$secs" --tcp-only \
      >"$d/connects.json" 2>&1 || true
  fi
  rm -f "/etc/netns/$MAC/hosts"
  rmdir "/etc/netns/$MAC" /etc/netns 2>/dev/null || true
  stop_pid "$nginx_pid"
  forget_pid "$nginx_pid"
  meta wrk "$(wrk --version 2>&1 | head -1)"
  meta openssl "$(openssl version)"
}
