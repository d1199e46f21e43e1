//! Scripted flows with sipp playing the PBX: an incoming call with the contract's SIP headers,
//! malformed and oversized messages in the middle of it (the call must survive), a hold
//! re-INVITE, and BYE.

mod common;
mod lab;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{CRM, Daemon, eventually};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbx_call_survives_garbage_and_carries_the_contract_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/lab/sipp-pbx.xml")).expect("scenario");
    // A ~60 KB header value in a malformed message: rejected by the parser, never fatal.
    let scenario = dir.path().join("pbx.xml");
    std::fs::write(&scenario, template.replace("@JUNK@", &"x".repeat(60_000))).expect("write");
    let port = lab::free_port();
    let mut sipp = Command::new("sipp")
        .args(["-sf"])
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-timeout", "60", "-nostdin"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (package sip-tester) is installed");
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{port}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n"
    ));
    let mut page = daemon.connect(CRM).await;
    let incoming = page.event("incomingCall").await;
    let payload = &incoming["payload"];
    assert_eq!(payload["callerANI"], "+15557654321", "P-Asserted-Identity wins over From");
    assert_eq!(payload["partnerId"], "215fd887-39be-4935-981f-2670d6afeaa7");
    assert_eq!(payload["language"], "es_MX");
    let id = payload["conversationId"].as_str().expect("id").to_owned();
    page.request("answer", json!({"conversationId": id})).await;
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["ivrExitPath"], "billing");
    // The garbage and the re-INVITE come next; the call ends only with sipp's BYE.
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["conversationId"], id.as_str());
    assert!(daemon.log().contains("dropped a malformed SIP message"), "the junk was seen and dropped");
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["line"]["state"], "registered", "the line is intact");
    let status = eventually("sipp to finish", Duration::from_secs(20), || sipp.try_wait().ok().flatten());
    assert!(status.success(), "sipp's scenario failed (exit {status:?}); see {}", dir.path().display());
}
