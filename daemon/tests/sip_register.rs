//! The line against a real registrar: Kamailio on loopback challenges with digest auth; the
//! daemon registers over UDP and TCP, reports it on the WebSocket, recovers when the registrar
//! appears late, reports bad credentials, and unregisters when it stops.

mod common;
mod lab;

use std::time::Duration;

use common::{CRM, Daemon};
use lab::Kamailio;

fn account(kamailio: &Kamailio, transport: &str, user: &str, password: &str) -> String {
    format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"{transport}\"\nusername = \"{user}\"\npassword = \"{password}\"\n",
        kamailio.port
    )
}

async fn registers_and_unregisters(transport: &str, algorithm: &str) {
    let kamailio = Kamailio::start(algorithm);
    let mut daemon = Daemon::start(&account(&kamailio, transport, "1001", "secret1001"));
    let mut page = daemon.connect(CRM).await;
    if page.hello()["payload"]["state"]["line"]["state"] != "registered" {
        let payload = page.registration("registered").await;
        assert_eq!(payload["extension"], "1001");
    }
    let contacts = kamailio.wait_contacts("1001");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    // What the platform's User Login step needs, for IT at the command line too.
    let status = daemon.cli(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("line:     registered (extension 1001)"),
        "{status}"
    );
    assert!(
        contacts[0].ends_with(&format!(";transport={}", transport)),
        "{contacts:?}"
    );
    // Nobody is registered as 1003: Kamailio answers 404 and the call ends unanswered.
    let (reply, _) = page
        .request("start_call", serde_json::json!({"dialTo": "1003"}))
        .await;
    let conversation = reply["result"]["conversationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!conversation.is_empty(), "{reply}");
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["conversationId"], conversation.as_str());
    assert_eq!(ended["payload"]["duration"], 0);

    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        kamailio.contacts("1001").is_empty(),
        "unregistered on shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_udp_with_sha256_digest() {
    registers_and_unregisters("udp", "SHA-256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tcp_with_md5_digest() {
    registers_and_unregisters("tcp", "MD5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_not_retried_in_a_loop() {
    let kamailio = Kamailio::start("SHA-256");
    let daemon = Daemon::start(&account(&kamailio, "udp", "1001", "not-the-password"));
    let mut page = daemon.connect(CRM).await;
    // Kamailio's 401 may come before the page connects: then the snapshot says why.
    let payload = page.registration_failure().await;
    let reason = payload["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("401") && reason.contains("credentials rejected"),
        "{payload}"
    );
    assert!(!page.hello().to_string().contains("not-the-password"));
    assert!(kamailio.contacts("1001").is_empty());
    let (reply, _) = page
        .request("start_call", serde_json::json!({"dialTo": "1002"}))
        .await;
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("failing to register"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_that_appears_late_is_found_by_reconnecting() {
    let port = lab::free_port();
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\nusername = \"1002\"\npassword = \"secret1002\"\n"
    ));
    let mut page = daemon.connect(CRM).await;
    let payload = page.registration("failed").await;
    assert!(
        payload["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("reconnecting"),
        "{payload}"
    );
    let kamailio = Kamailio::start_on(port, "SHA-256");
    let payload = page.registration("registered").await;
    assert_eq!(payload["extension"], "1002");
    assert_eq!(kamailio.contacts("1002").len(), 1);
}
