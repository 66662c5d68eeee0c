#!/usr/bin/env bash
# The HTTPS end-to-end test's clients, run by tests-e2e/tests/https.rs inside a mount
# namespace of its own (`unshare --mount --propagation private`): /etc/ssl/certs and
# /usr/local/share/ca-certificates are copies (as they are) on a tmpfs there, so `dockroute-helper ca trust`
# runs Debian's real update-ca-certificates against a system store nobody else sees, and the
# machine's own store is never touched. Each check prints `== NAME`, its output, `exit=N`.
#
#   clients.sh HELPER CONFIG NETNS LINK_ADDR STORE_DIR
set -uo pipefail
helper=$1 config=$2 ns=$3 link=$4 store=$5
here=$(dirname "$0")
py=/usr/bin/python3  # Debian's: its ssl module reads the system store (/usr/lib/ssl → /etc/ssl/certs)

mount -t tmpfs dr-https-store "$store" || exit 90
mkdir -p "$store/certs" "$store/local"
cp -a /etc/ssl/certs/. "$store/certs/" || exit 91
cp -a /usr/local/share/ca-certificates/. "$store/local/" || exit 91
mount --bind "$store/certs" /etc/ssl/certs || exit 92
mount --bind "$store/local" /usr/local/share/ca-certificates || exit 93

check() {
  local name=$1; shift
  echo "== $name"
  "$@" 2>&1
  echo "exit=$?"
}
in_ns() { timeout -k 2 20 ip netns exec "$ns" "$@"; }

check curl_before_trust in_ns curl -sS --max-time 5 https://web.docker/
check trust "$helper" ca trust --config "$config"
check store_has_it sh -c 'ls /usr/local/share/ca-certificates; grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt'
check curl_web in_ns curl -sS --max-time 5 https://web.docker/
check curl_admin in_ns curl -sS --max-time 5 https://admin.web.docker/
check curl_gone in_ns curl -sS --max-time 5 --resolve "gone.docker:443:$link" -w '\nstatus=%{http_code}\n' https://gone.docker/
check curl_ip_no_sni in_ns curl -sS --max-time 5 "https://$link/"
check own_443 in_ns curl -sS --max-time 5 http://tls.docker:443/
check python in_ns "$py" -c 'import urllib.request; print(urllib.request.urlopen("https://web.docker/", timeout=5).read().decode().strip())'
check websocket in_ns "$py" "$here/ws_client.py" ws.docker "hello over wss"
# A browser's NSS database (Chromium on Linux reads ~/.pki/nssdb): one the test makes.
mkdir -p "$store/nssdb"
# Chromium on Linux trusts local roots through ~/.pki/nssdb; it runs as root, so unsandboxed.
chromium_load() {
  HOME="$store/home" timeout -k 2 60 ip netns exec "$ns" chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$store/chromium-profile" --dump-dom "https://web.docker/"
}
mkdir -p "$store/home/.pki"
check chromium_before_trust chromium_load
check nss_trust sh -c "certutil -N -d sql:$store/nssdb --empty-password && \"$helper\" ca trust --no-system --nss $store/nssdb --config \"$config\" && certutil -L -d sql:$store/nssdb"
ln -s "$store/nssdb" "$store/home/.pki/nssdb"
rm -rf "$store/chromium-profile"
check chromium chromium_load
check untrust "$helper" ca untrust --config "$config"
check nss_after_untrust certutil -L -d "sql:$store/nssdb"
check curl_after_untrust in_ns curl -sS --max-time 5 https://web.docker/
check store_after_untrust sh -c 'ls /usr/local/share/ca-certificates | grep dockroute; find /etc/ssl/certs -xtype l; grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt' 
