//! A PBX with a self-signed certificate. Many PBX admins make theirs with `openssl req -x509`,
//! which marks it `CA:TRUE`; given as `[account] ca_file`, the line used to refuse it
//! (webpki's `CaUsedAsEndEntity`) while OpenSSL-based softphones accept it. Now the line accepts
//! exactly the certificate the admin pinned, as the only certificate in `ca_file` or as
//! `tls_fingerprint = "sha256:…"`, over TLS and WSS against Kamailio serving such a certificate,
//! and refuses any other with an error that says it is not the pinned one.

mod common;
mod lab;

use std::path::PathBuf;

use common::{CRM, Daemon};
use lab::{Kamailio, openssl_fingerprint, openssl_self_signed};

/// Kamailio serving an `openssl req -x509` certificate on its TLS and WSS ports.
struct SelfSignedPbx {
    kamailio: Kamailio,
    /// The certificate Kamailio serves, as the admin would copy it off the PBX.
    certificate: PathBuf,
    /// Its SHA-256 as OpenSSL prints it, `sha256:AB:CD:…`.
    fingerprint: String,
    dir: tempfile::TempDir,
}

impl SelfSignedPbx {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (certificate, key) = openssl_self_signed(dir.path(), "pbx");
        let kamailio = Kamailio::start_with_certificate("MD5", &certificate, &key);
        let fingerprint = openssl_fingerprint(&certificate);
        Self {
            kamailio,
            certificate,
            fingerprint,
            dir,
        }
    }

    fn tls_account(&self, trust: &str) -> String {
        format!(
            "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"tls\"\nusername = \"1001\"\npassword = \"secret1001\"\n{trust}\n",
            self.kamailio.tls_port.expect("tls")
        )
    }

    fn wss_account(&self, trust: &str) -> String {
        format!(
            "[account]\nserver = \"wss://127.0.0.1:{}\"\nusername = \"1001\"\npassword = \"secret1001\"\n{trust}\n",
            self.kamailio.ws_ports.expect("ws").1
        )
    }

    fn ca_file(&self) -> String {
        format!("ca_file = \"{}\"", self.certificate.display())
    }

    fn pin(&self) -> String {
        format!("tls_fingerprint = \"{}\"", self.fingerprint)
    }

    /// The line registers with this config, and Kamailio holds its contact.
    async fn registers(&self, config: &str) {
        let daemon = Daemon::start(config);
        let mut page = daemon.connect(CRM).await;
        if page.hello()["payload"]["state"]["line"]["state"] != "registered" {
            let payload = page.registration("registered").await;
            assert_eq!(payload["extension"], "1001", "{payload}");
        }
        let contacts = self.kamailio.wait_contacts("1001");
        assert_eq!(contacts.len(), 1, "{contacts:?}");
    }

    /// The line fails to register with this config; returns the reason it reports to pages.
    async fn refused(&self, config: &str) -> String {
        let daemon = Daemon::start(config);
        let mut page = daemon.connect(CRM).await;
        let failed = page.registration_failure().await;
        assert!(self.kamailio.contacts("1001").is_empty());
        let reason = failed["reason"].as_str().unwrap_or_default().to_owned();
        eprintln!("refused: {reason}");
        reason
    }
}

/// Another `openssl req -x509` certificate, for the same names, that the PBX does not serve.
fn other_certificate(pbx: &SelfSignedPbx) -> PathBuf {
    openssl_self_signed(pbx.dir.path(), "other").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registers_with_the_self_signed_certificate_as_ca_file() {
    let pbx = SelfSignedPbx::start();
    pbx.registers(&pbx.tls_account(&pbx.ca_file())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registers_with_the_certificate_pinned_by_fingerprint() {
    let pbx = SelfSignedPbx::start();
    pbx.registers(&pbx.tls_account(&pbx.pin())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_registers_with_the_self_signed_certificate_as_ca_file() {
    let pbx = SelfSignedPbx::start();
    pbx.registers(&pbx.wss_account(&pbx.ca_file())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_registers_with_the_certificate_pinned_by_fingerprint() {
    let pbx = SelfSignedPbx::start();
    pbx.registers(&pbx.wss_account(&pbx.pin())).await;
}

/// A pin that is not the served certificate's: both transports refuse it, say it is the pin that
/// does not match, and print what the server presented (public) so IT can fix the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_fails_and_says_so_printing_the_presented_fingerprint() {
    let pbx = SelfSignedPbx::start();
    let wrong = openssl_fingerprint(&other_certificate(&pbx));
    for account in [
        pbx.tls_account(&format!("tls_fingerprint = \"{wrong}\"")),
        pbx.wss_account(&format!("tls_fingerprint = \"{wrong}\"")),
    ] {
        let reason = pbx.refused(&account).await;
        assert!(
            reason.contains("does not match the pinned") && reason.contains("tls_fingerprint"),
            "{reason}"
        );
        assert!(
            reason.contains(&pbx.fingerprint),
            "the presented fingerprint, so IT can fix the pin: {reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_self_signed_certificate_in_ca_file_is_refused_and_says_so() {
    let pbx = SelfSignedPbx::start();
    let other = other_certificate(&pbx);
    let reason = pbx
        .refused(&pbx.tls_account(&format!("ca_file = \"{}\"", other.display())))
        .await;
    assert!(
        reason.contains("not the certificate in") && reason.contains(&pbx.fingerprint),
        "{reason}"
    );
}

/// A page provisions a wss account with the seed's parameters; IT's `[provisioning] ca_file`
/// holds the PBX's self-signed certificate, which the provisioned line now accepts too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_wss_account_accepts_the_self_signed_certificate_in_provisioning_ca_file() {
    let pbx = SelfSignedPbx::start();
    let daemon = Daemon::start(&format!(
        "[provisioning]\nallowed_origins = [\"{CRM}\"]\n{}\n",
        pbx.ca_file()
    ));
    let mut page = daemon.connect(CRM).await;
    let plain = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let params = serde_json::json!({
        "auth_key": "k-7f3a", "server": format!("wss://127.0.0.1:{}", pbx.kamailio.ws_ports.expect("ws").1),
        "turn_port": 3478, "customer_id": 77, "user_id": 1001, "username": "1001", "password": "secret1001",
        "expire_date": expires.format(&plain).expect("date"), "debug_console": false, "debug_html": false
    });
    let (reply, _) = page.request("provision", params).await;
    assert_eq!(reply["result"]["extension"], "1001", "{reply}");
    let registered = page.registration("registered").await;
    assert_eq!(registered["extension"], "1001", "{registered}");
    assert_eq!(pbx.kamailio.wait_contacts("1001").len(), 1);
}

#[test]
fn config_check_names_a_malformed_tls_fingerprint() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in [
        "sha256:12:34",
        "sha1:21:D1:1D:85:AF:3C:F5:24:1D:03:3C:F1:E8:31:15:61:02:9A:71:3B",
        "21D11D85AF3CF5241D033CF1E8311561029A713B6C7713019DBF9C5B495D89C1",
        "sha256:ZZD11D85AF3CF5241D033CF1E8311561029A713B6C7713019DBF9C5B495D89C1",
    ] {
        let out = common::check_config(
            dir.path(),
            "pin.toml",
            &format!(
                "[account]\nserver = \"127.0.0.1:5061\"\ntransport = \"tls\"\nusername = \"1001\"\ntls_fingerprint = \"{bad}\"\n"
            ),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains("tls_fingerprint"), "{bad}: {err}");
    }
    let out = common::check_config(
        dir.path(),
        "good.toml",
        "[account]\nserver = \"127.0.0.1:5061\"\ntransport = \"tls\"\nusername = \"1001\"\n\
         tls_fingerprint = \"sha256:21:D1:1D:85:AF:3C:F5:24:1D:03:3C:F1:E8:31:15:61:02:9A:71:3B:6C:77:13:01:9D:BF:9C:5B:49:5D:89:C1\"\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
