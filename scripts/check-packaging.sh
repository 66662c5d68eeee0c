#!/usr/bin/env bash
# Checks the packaging files that only run elsewhere: the macOS CI workflow parses as YAML and
# keeps its build, lint and signature steps; the Homebrew cask is valid Ruby naming the app,
# the helper's launchd label and a .dmg; the plists parse. (No Mac here: these are the checks
# that can run on Linux.) Needs python3-yaml and ruby (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import plistlib, yaml

wf = yaml.safe_load(open(".github/workflows/macos.yml"))
jobs = wf["jobs"]
assert jobs["macos"]["runs-on"].startswith("macos"), jobs["macos"]["runs-on"]
assert jobs["macos"]["needs"] == "guest-images"
run = "\n".join(s.get("run", "") for s in jobs["macos"]["steps"])
for needed in ("package.sh --universal", "plutil -lint", "codesign --verify --deep --strict", "cargo test"):
    assert needed in run, f"the macOS job lost its step: {needed}"
guest = "\n".join(s.get("run", "") for s in jobs["guest-images"]["steps"])
assert 'GUEST_ARCHES="amd64 arm64"' in guest and "guest-image/build.sh" in guest
print("ok: .github/workflows/macos.yml parses; jobs:", ", ".join(jobs))

for path in ("src-tauri/Info.plist", "src-tauri/launchd/dev.dockroute.helper.plist"):
    plistlib.load(open(path, "rb"))
print("ok: the plists parse")
PY

cask=packaging/homebrew/dockroute.rb
ruby -c "$cask" >/dev/null
for needed in 'cask "dockroute"' 'app "Dockroute.app"' 'launchctl: "dev.dockroute.helper"' '.dmg"' 'depends_on macos:'; do
  grep -qF "$needed" "$cask" || { echo "FAIL: $cask lacks $needed" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
grep -qF "version \"$version\"" "$cask" || { echo "FAIL: $cask is not at version $version" >&2; exit 1; }
echo "ok: $cask is valid Ruby (ruby -c) for version $version"
