#!/bin/sh
# Trust this agent's softphone-bridge CA.
#   install-linux.sh            as the agent, at login: this user's Chromium/Chrome and Firefox NSS databases
#   install-linux.sh --system   as root: the system store, with SOFTPHONE_BRIDGE_DATA_DIR set to the agent's
#                               data folder, e.g. /home/agent/.local/share/softphone-bridge
# As root, the agent's folder is only read: nothing in it is created, written or chmod'ed, no symbolic link
# in it (or on the way to it) is followed, and the CA is installed, from memory, only when it carries critical
# name constraints permitting exactly localhost, 127.0.0.1 and ::1 and is the CA recorded when it was made.
set -eu
BIN=${SOFTPHONE_BRIDGE_BIN:-softphone-bridge}
if [ "$(id -u)" = 0 ]; then
  case " $* " in
    *" --system "*) ;;
    *) echo "as root only --system applies (NSS databases are per user: run this as the agent)" >&2; exit 2 ;;
  esac
  if [ -z "${SOFTPHONE_BRIDGE_DATA_DIR:-}" ]; then
    echo "as root, set SOFTPHONE_BRIDGE_DATA_DIR to the agent's data folder" >&2
    exit 2
  fi
else
  command -v certutil >/dev/null 2>&1 || { echo "certutil missing: apt-get install libnss3-tools" >&2; exit 1; }
fi
if [ -n "${SOFTPHONE_BRIDGE_DATA_DIR:-}" ]; then
  "$BIN" certs show --data-dir "$SOFTPHONE_BRIDGE_DATA_DIR"
  "$BIN" certs install --data-dir "$SOFTPHONE_BRIDGE_DATA_DIR" "$@"
else
  "$BIN" certs show
  "$BIN" certs install "$@"
fi
