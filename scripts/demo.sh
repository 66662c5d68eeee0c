#!/usr/bin/env bash
# The main job on Linux: a "mac" network namespace runs dockroute-helper, a "vm" namespace runs
# dockroute-guest, a "ctr" namespace behind a bridge in the vm plays the container (busybox
# httpd). The mac side then reaches the container by its IP through the tunnel, and everything
# is removed again. Run as root. Addresses: 198.18.0.0/15 only (the benchmarking range).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN="$CARGO_TARGET_DIR/release"
MAC=dr-demo-mac VM=dr-demo-vm CTR=dr-demo-ctr
WORK=$(mktemp -d /tmp/dockroute-demo.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in $MAC $VM $CTR; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> building (release)"
cargo build --release --quiet -p dockroute-helper -p dockroute-guest

echo "==> topology: $MAC <-veth-> $VM <-bridge-> $CTR"
for ns in $MAC $VM $CTR; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add veth-vm netns $MAC type veth peer name veth-mac netns $VM
ip -n $MAC addr add 198.18.200.1/24 dev veth-vm && ip -n $MAC link set veth-vm up
ip -n $VM addr add 198.18.200.2/24 dev veth-mac && ip -n $VM link set veth-mac up
ip -n $VM link add br0 type bridge && ip -n $VM addr add 198.19.200.1/24 dev br0 && ip -n $VM link set br0 up
ip link add eth0 netns $CTR type veth peer name veth-ctr netns $VM
ip -n $VM link set veth-ctr master br0 up
ip -n $CTR addr add 198.19.200.10/24 dev eth0 && ip -n $CTR link set eth0 up
ip -n $CTR route add default via 198.19.200.1
mkdir -p "$WORK/www" && echo "hello from the container at 198.19.200.10" > "$WORK/www/index.html"
ip netns exec $CTR busybox httpd -f -p 80 -h "$WORK/www" & pids+=($!)

cat > "$WORK/dockroute.conf" <<CONF
addr 198.18.201.1/24
addr6 none
host 198.18.200.1
port 2511
route 198.19.200.0/24
CONF
echo "==> helper in $MAC with config:"; sed 's/^/    /' "$WORK/dockroute.conf"
ip netns exec $MAC "$BIN/dockroute-helper" run --config "$WORK/dockroute.conf" 2> "$WORK/helper.log" & pids+=($!)
for _ in $(seq 50); do grep -q "routes via tunnel" "$WORK/helper.log" 2>/dev/null && break; sleep 0.1; done
# The app copies the secret into the VM; here the vm namespace shares our filesystem.
install -m 600 "$WORK/dockroute.secret" "$WORK/guest.secret"

echo "==> guest in $VM"
ip netns exec $VM "$BIN/dockroute-guest" --server 198.18.200.1:2511 --secret-file "$WORK/guest.secret" 2> "$WORK/guest.log" & pids+=($!)
for _ in $(seq 50); do grep -q "session up" "$WORK/guest.log" 2>/dev/null && break; sleep 0.1; done
grep -h "session up" "$WORK/guest.log" | sed 's/^/    /'

echo "==> from $MAC: routes"
ip -n $MAC route | sed 's/^/    /'
echo "==> from $MAC: ping 198.19.200.10"
ip netns exec $MAC busybox ping -c 3 -W 2 198.19.200.10 | sed 's/^/    /'
echo "==> from $MAC: GET http://198.19.200.10/"
body=$(timeout 5 ip netns exec $MAC busybox wget -q -Y off -O - http://198.19.200.10/)
echo "    $body"

echo "==> stopping (helper and guest remove their routes and devices)"
cleanup
trap - EXIT
echo "demo ok: reached the container by IP through the tunnel"
