# Homebrew cask for the Dockroute app (the universal .dmg that .github/workflows/macos.yml
# builds). Install: brew install --cask ./packaging/homebrew/dockroute.rb
# For a tap, replace the URL's owner and the sha256 with the release's (`shasum -a 256 *.dmg`).
cask "dockroute" do
  version "0.1.0"
  sha256 :no_check

  url "https://github.com/dockroute/dockroute/releases/download/v#{version}/Dockroute_#{version}_universal.dmg"
  name "Dockroute"
  desc "Reach every Docker container by its IP address"
  homepage "https://github.com/dockroute/dockroute"

  depends_on macos: ">= :ventura"

  app "Dockroute.app"

  # The helper is registered by the app through SMAppService (System Settings > Login Items);
  # launchd forgets it with the app. What it leaves behind:
  uninstall launchctl: "dev.dockroute.helper",
            quit:      "dev.dockroute.app"

  zap trash: [
    "/Library/Application Support/Dockroute",
    "/Library/Logs/dockroute-helper.log",
    "~/Library/Application Support/dev.dockroute.app",
    "~/Library/Preferences/dev.dockroute.app.plist",
  ]
end
