#!/usr/bin/env bash
# Runs the helper with a system trust store of its own, for tests/app_https.rs: started as
# `unshare --mount --propagation private bash helper_private_store.sh …` inside the "mac"
# namespace, it puts copies of /etc/ssl/certs and /usr/local/share/ca-certificates on a tmpfs
# and bind-mounts them over the real ones, then becomes the helper (exec: same pid). So the
# app's Trust button makes the helper run Debian's real update-ca-certificates against a store
# only this process (and `nsenter -t PID -m`) sees: the machine's own store is never touched.
#
#   helper_private_store.sh HELPER CONFIG SOCKET STORE_DIR
set -euo pipefail
helper=$1 config=$2 socket=$3 store=$4
mkdir -p "$store"
mount -t tmpfs dr-app-store "$store"
mkdir -p "$store/certs" "$store/local"
cp -a /etc/ssl/certs/. "$store/certs/"
mount --bind "$store/certs" /etc/ssl/certs
mount --bind "$store/local" /usr/local/share/ca-certificates
exec "$helper" run --config "$config" --socket "$socket"
