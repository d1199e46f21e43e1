//! Files the daemon serves. They are compiled in, so the daemon is one self-contained binary.

pub const SHIM_JS: &str = include_str!("../../../js-shim/softphone-bridge.js");
pub const SHIM_DTS: &str = include_str!("../../../js-shim/softphone-bridge.d.ts");
pub const BRIDGE_HTML: &str = include_str!("../../../js-shim/bridge.html");
pub const BRIDGE_JS: &str = include_str!("../../../js-shim/bridge.js");
pub const DEMO_HTML: &str = include_str!("../../../examples/crm-demo.html");

/// The ES-module form of the shim: the same code, then named exports of its global.
pub fn shim_module() -> String {
    format!(
        "{SHIM_JS}\nconst SoftphoneBridge = globalThis.SoftphoneBridge;\nexport default SoftphoneBridge;\n\
         export const {{ connect, useWrapper, WindowProxy, BridgeError, diagnose }} = SoftphoneBridge;\n"
    )
}
