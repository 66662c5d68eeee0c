# Homebrew cask for the Dockroute app (the universal .dmg that .github/workflows/macos.yml
# builds). Install: brew install --cask ./packaging/homebrew/dockroute.rb
# For a tap, replace the URL's owner and the sha256 with the release's (`shasum -a 256 *.dmg`).
#
# The helper comes in the other way than the app's own (SMAppService, which macOS refuses for a
# build without a Developer ID): brew already asks for the administrator's password, so the
# postflight runs `dockroute-helper install` with it. That installs the same LaunchDaemon
# (label dev.dockroute.helper) from a root-owned copy of the helper and replaces an SMAppService
# registration the app may have made; the app sees the plist and leaves the helper to it. A
# `brew upgrade` runs it again, so the helper is always the app's version.
cask "dockroute" do
  version "0.1.0"
  sha256 :no_check

  url "https://github.com/dockroute/dockroute/releases/download/v#{version}/Dockroute_#{version}_universal.dmg"
  name "Dockroute"
  desc "Reach every Docker container by its IP address"
  homepage "https://github.com/dockroute/dockroute"

  depends_on macos: ">= :ventura"

  app "Dockroute.app"

  postflight do
    system_command "#{appdir}/Dockroute.app/Contents/MacOS/dockroute-helper",
                   args: ["install", "--app-bundle", "#{appdir}/Dockroute.app"],
                   sudo: true
  end

  # Before the app goes: its helper removes what it installed (the plist, the copy in
  # /Library/PrivilegedHelperTools, resolver files), keeping the config and secret for zap.
  uninstall_preflight do
    helper = "#{appdir}/Dockroute.app/Contents/MacOS/dockroute-helper"
    system_command helper, args: ["uninstall"], sudo: true if File.exist?(helper)
  end

  uninstall launchctl: "dev.dockroute.helper",
            quit:      "dev.dockroute.app",
            delete:    [
              "/Library/LaunchDaemons/dev.dockroute.helper.plist",
              "/Library/PrivilegedHelperTools/dev.dockroute.helper",
            ]

  zap trash: [
    "/Library/Application Support/Dockroute",
    "/Library/Logs/dockroute-helper.log",
    "~/Library/Application Support/dev.dockroute.app",
    "~/Library/Preferences/dev.dockroute.app.plist",
  ]
end
