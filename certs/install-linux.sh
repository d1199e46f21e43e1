#!/bin/sh
# Trust this agent's softphone-bridge CA in their browsers. Run as the agent at login.
#   install-linux.sh            Chromium/Chrome and Firefox NSS databases of this user
#   install-linux.sh --system   also the system store (run as root, with SOFTPHONE_BRIDGE_DATA_DIR set
#                               to the agent's data folder, e.g. /home/agent/.local/share/softphone-bridge)
set -eu
BIN=${SOFTPHONE_BRIDGE_BIN:-softphone-bridge}
if [ -n "${SOFTPHONE_BRIDGE_DATA_DIR:-}" ]; then
  DATA="--data-dir $SOFTPHONE_BRIDGE_DATA_DIR"
else
  DATA=""
fi
command -v certutil >/dev/null 2>&1 || { echo "certutil missing: apt-get install libnss3-tools" >&2; exit 1; }
# shellcheck disable=SC2086
"$BIN" $DATA certs show
# shellcheck disable=SC2086
"$BIN" $DATA certs install "$@"
