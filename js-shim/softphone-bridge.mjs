// The shim as an ES module (npm: `import SoftphoneBridge, { connect } from 'softphone-bridge'`).
// The daemon serves the same module at https://localhost:PORT/shim.mjs, built from these lines
// (daemon/src/api/assets.rs reads this file): the classic script, then the exports below.
import './softphone-bridge.js';

const SoftphoneBridge = globalThis.SoftphoneBridge;
export default SoftphoneBridge;
export const { connect, diagnose, useWrapper, WindowProxy, Phone, Call, BridgeError } = SoftphoneBridge;
