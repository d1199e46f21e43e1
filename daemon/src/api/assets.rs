//! Files the daemon serves. They are compiled in, so the daemon is one self-contained binary.

pub const SHIM_JS: &str = include_str!("../../../js-shim/softphone-bridge.js");
pub const SHIM_DTS: &str = include_str!("../../../js-shim/softphone-bridge.d.ts");
pub const BRIDGE_HTML: &str = include_str!("../../../js-shim/bridge.html");
pub const BRIDGE_JS: &str = include_str!("../../../js-shim/bridge.js");
pub const DEMO_HTML: &str = include_str!("../../../examples/crm-demo.html");
pub const PANEL_HTML: &str = include_str!("../../pages/panel.html");
pub const PANEL_JS: &str = include_str!("../../pages/panel.js");

/// The npm package's ES module: an import of the classic script, then its exports.
const SHIM_MJS: &str = include_str!("../../../js-shim/softphone-bridge.mjs");

/// The ES-module form of the shim: the same code, then the npm module's exports (its lines after
/// the import of the classic script, which is inlined here instead).
pub fn shim_module() -> String {
    let exports = SHIM_MJS
        .split_once("import './softphone-bridge.js';")
        .map_or(SHIM_MJS, |(_, rest)| rest);
    format!("{SHIM_JS}\n{exports}")
}
