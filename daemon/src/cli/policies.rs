//! `softphone-bridge policies --origin URL`: the browser policies that let CRM origins reach the
//! daemon on localhost without a prompt. Chrome and Edge ask before a page may reach the local
//! device (Local Network Access, Chrome/Edge 139+; loopback split out in 146+); IT lists its CRM
//! origins in both policies, `LocalNetworkAccessAllowedForUrls` and `LoopbackNetworkAllowedForUrls`.
//! Printed per OS in the form each OS's management takes: managed-policy JSON on Linux, a `.reg`
//! file on Windows, a `.mobileconfig` profile on macOS.

/// The two policies, each a list of URL patterns.
pub const POLICIES: [&str; 2] = [
    "LocalNetworkAccessAllowedForUrls",
    "LoopbackNetworkAllowedForUrls",
];

/// Managed-policy JSON for Chrome (`/etc/opt/chrome/policies/managed/`), Chromium
/// (`/etc/chromium/policies/managed/`) and Edge (`/etc/opt/edge/policies/managed/`).
/// With `ca` (DER), also `CACertificates`: Chrome on Linux trusts only its own root store and the
/// user's NSS database, not the system store, so a machine-wide localhost CA needs the policy.
pub fn linux_json(origins: &[String], ca: Option<&[u8]>) -> String {
    use base64::Engine;
    let list = serde_json::Value::from(origins.to_vec());
    let mut policy: serde_json::Map<String, serde_json::Value> = if origins.is_empty() {
        serde_json::Map::new()
    } else {
        POLICIES
            .iter()
            .map(|name| ((*name).to_owned(), list.clone()))
            .collect()
    };
    if let Some(der) = ca {
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        policy.insert("CACertificates".into(), serde_json::json!([encoded]));
    }
    serde_json::to_string_pretty(&policy).unwrap_or_default()
}

/// A `.reg` file for Chrome and Edge, machine-wide (HKLM; Group Policy or Intune can push it).
pub fn windows_reg(origins: &[String]) -> String {
    let mut out = String::from("Windows Registry Editor Version 5.00\r\n");
    for vendor in ["Google\\Chrome", "Microsoft\\Edge"] {
        for policy in POLICIES {
            out.push_str(&format!(
                "\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\{vendor}\\{policy}]\r\n"
            ));
            for (i, origin) in origins.iter().enumerate() {
                let escaped = origin.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!("\"{}\"=\"{escaped}\"\r\n", i + 1));
            }
        }
    }
    out
}

/// A configuration profile for Chrome (`com.google.Chrome`) and Edge (`com.microsoft.Edge`),
/// for an MDM (Jamf, Intune, Kandji) to install.
pub fn macos_mobileconfig(origins: &[String], uuid: impl Fn(u8) -> String) -> String {
    let strings: String = origins
        .iter()
        .map(|o| format!("          <string>{}</string>\n", xml_escaped(o)))
        .collect();
    let keys: String = POLICIES
        .iter()
        .map(|p| format!("        <key>{p}</key>\n        <array>\n{strings}        </array>\n"))
        .collect();
    let payloads: String = [("com.google.Chrome", 1u8), ("com.microsoft.Edge", 2)]
        .iter()
        .map(|(domain, n)| {
            format!(
                "    <dict>\n        <key>PayloadType</key>\n        <string>{domain}</string>\n        <key>PayloadIdentifier</key>\n        <string>com.softphone-bridge.policies.{domain}</string>\n        <key>PayloadUUID</key>\n        <string>{}</string>\n        <key>PayloadVersion</key>\n        <integer>1</integer>\n{keys}    </dict>\n",
                uuid(*n)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n    <key>PayloadContent</key>\n    <array>\n{payloads}    </array>\n    <key>PayloadDisplayName</key>\n    <string>softphone-bridge: CRM pages may reach the phone on localhost</string>\n    <key>PayloadIdentifier</key>\n    <string>com.softphone-bridge.policies</string>\n    <key>PayloadScope</key>\n    <string>System</string>\n    <key>PayloadType</key>\n    <string>Configuration</string>\n    <key>PayloadUUID</key>\n    <string>{}</string>\n    <key>PayloadVersion</key>\n    <integer>1</integer>\n</dict>\n</plist>\n",
        uuid(0)
    )
}

fn xml_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<String> {
        vec![
            "https://crm.example.com".into(),
            "https://*.force.com".into(),
        ]
    }

    #[test]
    fn linux_json_lists_the_origins_under_both_policies() {
        let parsed: serde_json::Value =
            serde_json::from_str(&linux_json(&origins(), None)).expect("JSON");
        for policy in POLICIES {
            assert_eq!(parsed[policy], serde_json::json!(origins()), "{policy}");
        }
        assert!(parsed.get("CACertificates").is_none());
    }

    #[test]
    fn a_ca_alone_becomes_the_ca_certificates_policy_only() {
        let parsed: serde_json::Value =
            serde_json::from_str(&linux_json(&[], Some(b"\x30\x03der"))).expect("JSON");
        assert_eq!(parsed, serde_json::json!({"CACertificates": ["MANkZXI="]}));
    }

    #[test]
    fn the_reg_file_numbers_each_origin_per_browser_and_policy() {
        let reg = windows_reg(&origins());
        assert!(reg.starts_with("Windows Registry Editor Version 5.00\r\n"));
        for key in [
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome\\LocalNetworkAccessAllowedForUrls]",
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Edge\\LoopbackNetworkAllowedForUrls]",
        ] {
            let at = reg.find(key).expect(key);
            assert!(
                reg[at..]
                    .contains("\"1\"=\"https://crm.example.com\"\r\n\"2\"=\"https://*.force.com\""),
                "{reg}"
            );
        }
    }

    #[test]
    fn the_profile_is_a_plist_for_both_browsers_with_escaped_origins() {
        let profile = macos_mobileconfig(&["https://a.example/?x=1&y=<2>".into()], |n| {
            format!("00000000-0000-4000-8000-00000000000{n}")
        });
        assert!(profile.contains("<string>com.google.Chrome</string>"));
        assert!(profile.contains("<string>com.microsoft.Edge</string>"));
        assert!(profile.contains("<string>https://a.example/?x=1&amp;y=&lt;2&gt;</string>"));
        assert_eq!(
            profile.matches("<dict>").count(),
            profile.matches("</dict>").count()
        );
        assert_eq!(
            profile
                .matches("<key>LoopbackNetworkAllowedForUrls</key>")
                .count(),
            2
        );
    }
}
