#!/bin/sh
# Builds softphone-bridge.pkg on a Mac (Xcode command-line tools, Rust with both Apple targets):
#   packaging/macos/build.sh [VERSION]
# A universal binary in an app bundle, the LaunchAgent, the postinstall script; then productbuild.
# Sign and notarize with your Developer ID (productsign, notarytool) before pushing it by MDM.
set -eu
cd "$(dirname "$0")/../.."
VERSION=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)}
OUT=target/macos
rm -rf "$OUT" && mkdir -p "$OUT/root/Applications/softphone-bridge.app/Contents/MacOS" "$OUT/root/Library/LaunchAgents"
for target in aarch64-apple-darwin x86_64-apple-darwin; do
  cargo build --release --locked -p softphone-bridge --target "$target"
done
lipo -create -output "$OUT/root/Applications/softphone-bridge.app/Contents/MacOS/softphone-bridge" \
  target/aarch64-apple-darwin/release/softphone-bridge target/x86_64-apple-darwin/release/softphone-bridge
cat > "$OUT/root/Applications/softphone-bridge.app/Contents/Info.plist" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
  <key>CFBundleIdentifier</key><string>com.softphone-bridge.app</string>
  <key>CFBundleName</key><string>softphone-bridge</string>
  <key>CFBundleExecutable</key><string>softphone-bridge</string>
  <key>CFBundleShortVersionString</key><string>$VERSION</string>
  <key>LSUIElement</key><true/>
  <key>NSMicrophoneUsageDescription</key><string>The softphone sends your voice on calls.</string>
</dict></plist>
PLIST
cp packaging/macos/com.softphone-bridge.agent.plist "$OUT/root/Library/LaunchAgents/"
pkgbuild --root "$OUT/root" --scripts packaging/macos/scripts --identifier com.softphone-bridge.pkg \
  --version "$VERSION" --install-location / "$OUT/softphone-bridge-component.pkg"
productbuild --package "$OUT/softphone-bridge-component.pkg" "$OUT/softphone-bridge-$VERSION.pkg"
echo "built $OUT/softphone-bridge-$VERSION.pkg"
