#!/usr/bin/env bash
# The main job on Linux, with real Docker: a "mac" network namespace runs dockroute-helper; a
# "vm" namespace runs a real dockerd (Engine 28 if installed, else 20.10) and, started by
# `dockroute --headless`, the guest container; a sample container on a new Docker network is
# then reached by its IP from the "mac" side (curl-like GET and ping) and found by its name
# through the helper's DNS (web.docker), and everything is
# removed. Run as root; it first installs what is missing (scripts/setup.sh --demo).
# Addresses: 198.18.0.0/15 and 198.19.0.0/16 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
bash scripts/setup.sh --demo
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN="$CARGO_TARGET_DIR/release"
MAC=dr-demo-mac VM=dr-demo-vm
WORK=$(mktemp -d /tmp/drdemo.XXXXXX)
DOCKER=$(command -v docker)
export DOCKER_HOST="unix://$WORK/docker.sock"
pids=()

dockerd=$DOCKROUTE_CACHE/docker28/usr/sbin/dockerd
[ -x "$dockerd" ] || dockerd=/usr/sbin/dockerd
[ -x "$dockerd" ] || { echo "no dockerd although setup.sh ran" >&2; exit 1; }

cleanup() {
  set +e
  if [ -z "${demo_ok:-}" ]; then
    echo "==> the demo failed; logs:" >&2
    for f in helper app dockerd; do echo "--- $f" >&2; tail -n 30 "$WORK/$f.log" >&2; done
    echo "--- guest container" >&2; "$DOCKER" logs dockroute-guest 2>&1 | tail -n 30 >&2
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ -S "$WORK/docker.sock" ]; then
    ids=$("$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" rm -f $ids >/dev/null 2>&1
  fi
  if [ -f "$WORK/dockerd.pid" ]; then
    kill -TERM "$(cat "$WORK/dockerd.pid")" 2>/dev/null
    for _ in $(seq 100); do [ -f "$WORK/dockerd.pid" ] || break; sleep 0.1; done
  fi
  grep " $WORK" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for ns in $MAC $VM; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> building (release): helper, app, guest image"
cargo build --release --quiet -p dockroute-helper -p dockroute
for ns in $MAC $VM; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add veth-vm netns $MAC type veth peer name veth-mac netns $VM
ip -n $MAC addr add 198.18.200.1/24 dev veth-vm && ip -n $MAC link set veth-vm up
ip -n $VM addr add 198.18.200.2/24 dev veth-mac && ip -n $VM link set veth-mac up

echo "==> dockerd $("$dockerd" --version | cut -d, -f1) in the \"$VM\" namespace"
cat > "$WORK/daemon.json" <<JSON
{"bip": "198.18.210.1/24", "default-address-pools": [{"base": "198.18.212.0/22", "size": 24}]}
JSON
nsenter --net=/run/netns/$VM "$dockerd" --config-file "$WORK/daemon.json" --data-root "$WORK/data" \
  --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" -H "$DOCKER_HOST" >"$WORK/dockerd.log" 2>&1 &
for _ in $(seq 150); do "$DOCKER" version >/dev/null 2>&1 && break; sleep 0.2; done
"$DOCKER" version --format '    server {{.Server.Version}}, API {{.Server.APIVersion}}'
GUEST_TAR="$WORK/guest.tar" bash guest-image/build.sh | sed 's/^/    /'
"$DOCKER" rmi -f "dockroute-guest:$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" >/dev/null

cat > "$WORK/dockroute.conf" <<CONF
addr 198.18.201.1/24
addr6 none
host 198.18.200.1
port 2511
CONF
echo "==> helper in \"$MAC\""
ip netns exec $MAC "$BIN/dockroute-helper" run --config "$WORK/dockroute.conf" --socket "$WORK/api.sock" 2>"$WORK/helper.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$WORK/api.sock" ] && break; sleep 0.1; done

echo "==> dockroute --headless (finds dockerd through DOCKER_HOST, starts the guest container)"
"$BIN/dockroute" --headless --helper-socket "$WORK/api.sock" --host-address 198.18.200.1 \
  --guest-image-tar "$WORK/guest.tar" 2>"$WORK/app.log" &
pids+=($!)
for _ in $(seq 100); do "$BIN/dockroute-helper" status --socket "$WORK/api.sock" 2>/dev/null | grep -q alive && break; sleep 0.2; done

echo "==> docker network create --subnet 198.19.200.0/24 demo; docker run ... httpd"
"$DOCKER" import - dr-busybox < <(d=$(mktemp -d); mkdir -p "$d/bin"; cp /bin/busybox "$d/bin/"; for a in sh httpd mkdir; do ln -s busybox "$d/bin/$a"; done; tar -C "$d" -c .; rm -rf "$d") >/dev/null
"$DOCKER" network create --subnet 198.19.200.0/24 demo >/dev/null
"$DOCKER" run -d --name web --network demo --stop-timeout 1 dr-busybox sh -c \
  'mkdir -p /www && echo "hello from a container, reached by its IP" > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
ip=$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' web)
for _ in $(seq 50); do ip -n $MAC route | grep -q "198.19.200.0/24 dev dockroute0" && break; sleep 0.1; done
"$BIN/dockroute-helper" status --socket "$WORK/api.sock" | sed 's/^/    /'

echo "==> from \"$MAC\": ping $ip"
ip netns exec $MAC busybox ping -c 3 -W 2 "$ip" | sed 's/^/    /'
echo "==> from \"$MAC\": GET http://$ip/"
body=$(timeout 5 ip netns exec $MAC busybox wget -q -Y off -O - "http://$ip/")
echo "    $body"
echo "==> from \"$MAC\": by name, dig @198.18.201.1 web.docker (the helper's DNS for container names)"
name_ip=
for _ in $(seq 50); do
  name_ip=$(ip netns exec $MAC dig +short +time=1 +tries=1 @198.18.201.1 web.docker A 2>/dev/null || true)
  [ "$name_ip" = "$ip" ] && break
  sleep 0.1
done
[ "$name_ip" = "$ip" ] || { echo "web.docker answered '$name_ip', not $ip" >&2; exit 1; }
echo "    web.docker -> $name_ip"

echo "==> stopping: the app removes the guest and withdraws the routes, the helper its device"
demo_ok=1
cleanup
trap - EXIT
echo "demo ok: reached a Docker container by its IP through the tunnel, and by its name"
