#!/usr/bin/env bash
# Checks the packaging files that only run elsewhere: the macOS CI workflow parses as YAML and
# keeps its build, lint, signing, notarization and verification steps (Developer ID with the
# secrets, ad-hoc and said so without); the Homebrew cask is valid Ruby naming the app, the
# helper's launchd label and a .dmg, and installs and removes the helper the other way in; the
# plists parse. (No Mac here: these are the checks that can run on Linux; the universal build's
# helper staging is replayed against tauri's own lookups in src-tauri/tests/tauri_staging.rs.)
# Needs python3-yaml and ruby (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import plistlib, yaml

wf = yaml.safe_load(open(".github/workflows/macos.yml"))
jobs = wf["jobs"]
assert jobs["macos"]["runs-on"].startswith("macos"), jobs["macos"]["runs-on"]
assert jobs["macos"]["needs"] == "guest-images"
steps = jobs["macos"]["steps"]
run = "\n".join(s.get("run", "") for s in steps)
for needed in ("package.sh --universal", "plutil -lint", "codesign --verify --deep --strict", "cargo test",
               "xcrun notarytool submit", "xcrun stapler staple", "spctl -a -vv", "xcrun stapler validate",
               "SIGNING=developer-id", "SIGNING=ad-hoc", "::warning title=Ad-hoc signed::"):
    assert needed in run, f"the macOS job lost its step: {needed}"
# Tauri's signing variables come from the repository's secrets, and only a Developer ID build
# is notarized.
env = jobs["macos"]["env"]
for var in ("APPLE_CERTIFICATE", "APPLE_CERTIFICATE_PASSWORD", "APPLE_SIGNING_IDENTITY", "APPLE_ID",
            "APPLE_PASSWORD", "APPLE_TEAM_ID"):
    assert env.get(var) == "${{ secrets.%s }}" % var, f"{var} is not taken from the secrets: {env.get(var)}"
notarize = [s for s in steps if "notarytool" in s.get("run", "")]
assert len(notarize) == 1 and notarize[0].get("if") == "env.SIGNING == 'developer-id'", notarize
guest = "\n".join(s.get("run", "") for s in jobs["guest-images"]["steps"])
assert 'GUEST_ARCHES="amd64 arm64"' in guest and "guest-image/build.sh" in guest
print("ok: .github/workflows/macos.yml parses; jobs:", ", ".join(jobs))

for path in ("src-tauri/Info.plist", "src-tauri/launchd/dev.dockroute.helper.plist"):
    plistlib.load(open(path, "rb"))
print("ok: the plists parse")
PY

cask=packaging/homebrew/dockroute.rb
ruby -c "$cask" >/dev/null
for needed in 'cask "dockroute"' 'app "Dockroute.app"' 'launchctl: "dev.dockroute.helper"' '.dmg"' 'depends_on macos:' \
  'postflight do' 'args: ["install", "--app-bundle", "#{appdir}/Dockroute.app"]' 'sudo: true' \
  'uninstall_preflight do' 'args: ["uninstall"]' '"/Library/PrivilegedHelperTools/dev.dockroute.helper"'; do
  grep -qF "$needed" "$cask" || { echo "FAIL: $cask lacks $needed" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
grep -qF "version \"$version\"" "$cask" || { echo "FAIL: $cask is not at version $version" >&2; exit 1; }
echo "ok: $cask is valid Ruby (ruby -c) for version $version"
