#!/bin/sh
# Removes softphone-bridge from a Mac (run as root; pkgs have no uninstaller of their own):
# stops every user's daemon, removes the app, the LaunchAgent, the workstation trust and its files.
# Each user's own data (~/Library/Application Support/softphone-bridge) is left to them.
set -u
PLIST=/Library/LaunchAgents/com.softphone-bridge.agent.plist
APP=/Applications/softphone-bridge.app/Contents/MacOS/softphone-bridge
SUPPORT="/Library/Application Support/softphone-bridge"
for uid in $(ps -axo uid=,comm= | awk '/softphone-bridge$/ {print $1}' | sort -u); do
  launchctl bootout "gui/$uid" "$PLIST" 2>/dev/null || true
done
pkill -x softphone-bridge 2>/dev/null || true
if [ -d "$SUPPORT/workstation" ]; then
  HOME=/var/empty "$APP" --data-dir "$SUPPORT/workstation" certs uninstall --system || true
fi
rm -rf /Applications/softphone-bridge.app "$PLIST" "$SUPPORT/workstation" "$SUPPORT/tls"
pkgutil --forget com.softphone-bridge.pkg 2>/dev/null || true
