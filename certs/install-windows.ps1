# Trust this agent's softphone-bridge CA in the current user's Root store. Run as the agent at logon
# (for example from a Group Policy logon script).
$ErrorActionPreference = 'Stop'
$bin = if ($env:SOFTPHONE_BRIDGE_BIN) { $env:SOFTPHONE_BRIDGE_BIN } else { 'softphone-bridge.exe' }
& $bin certs show
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& $bin certs install
exit $LASTEXITCODE
